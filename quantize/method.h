/* method.h - how a tensor's rows become ggml blocks when calibration statistics are at hand:
 * the method enum `slm quantize --method` names, its parameters, and their names for the report.
 *
 *   rtn       round to nearest: ggml's quantizer without importance weights
 *   imatrix   ggml's quantizer with llama.cpp's importance weights (E[x^2] per column)
 *   awq       AWQ (quantize/awq.h): per-channel scales s = E|x|^alpha searched per linear group,
 *             folded into the preceding RMSNorm / v rows / up rows; then imatrix rounding with
 *             the importance rescaled by 1/s^2
 *   gptq      GPTQ (quantize/gptq.h, branch gptq): column-by-column with error feedback through
 *             the inverse Hessian (the calibration's Gram matrix)
 *   awq+gptq  AWQ's scales, then GPTQ on the scaled weights
 * Must not: know files or the CLI.
 */
#ifndef SLM_METHOD_H
#define SLM_METHOD_H

#include <stddef.h>

typedef enum slm_qmethod {
    SLM_QMETHOD_RTN = 0,
    SLM_QMETHOD_IMATRIX,
    SLM_QMETHOD_AWQ,
    SLM_QMETHOD_GPTQ,
    SLM_QMETHOD_AWQ_GPTQ,
    SLM_QMETHOD_COUNT
} slm_qmethod;

typedef struct slm_qmethod_params {
    int awq_grid;          /* alpha = 0, 1/grid, ..., 1 (grid + 1 points); default 20 */
    double awq_alpha;      /* >= 0: this alpha for every group, no search (tests); default -1 */
    int awq_clip;          /* 1: also search a clipping ratio per tensor (max |w| shrunk) */
    long awq_score_flops;  /* rows scored per tensor: the most with rows * n^2 <= this (0: all) */
    double gptq_damp;      /* GPTQ: damping, a fraction of the mean diagonal of H; default 0.01 */
    int gptq_block;        /* GPTQ: lazy-batch columns; default 128 */
    int gptq_act_order;    /* GPTQ column order (slm_gptq_order): 0 natural, 1 blocks by summed H diagonal then
                              columns inside by it (default), 2 columns by decreasing H diagonal */
} slm_qmethod_params;

void slm_qmethod_params_default(slm_qmethod_params *p);
/* "rtn", "imatrix", "awq", "gptq", "awq+gptq"; NULL outside the enum. */
const char *slm_qmethod_name(int m);
/* The enum for a name (exact, lower case), or -1. */
int slm_qmethod_from_name(const char *name);
/* The parameters that method m uses as "key=value ..." (e.g. "alpha_grid=20 clip=0"); "" for
   rtn and imatrix. Returns buf. */
const char *slm_qmethod_params_str(int m, const slm_qmethod_params *p, char *buf, size_t cap);

static inline int slm_qmethod_uses_awq(int m) { return m == SLM_QMETHOD_AWQ || m == SLM_QMETHOD_AWQ_GPTQ; }
static inline int slm_qmethod_uses_gptq(int m) { return m == SLM_QMETHOD_GPTQ || m == SLM_QMETHOD_AWQ_GPTQ; }
/* Every method but rtn rounds with importance weights when the statistics have them. */
static inline int slm_qmethod_uses_imatrix(int m) { return m != SLM_QMETHOD_RTN; }

#endif
