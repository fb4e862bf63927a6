/* prune.h - pruning as a tensor source: the input model's tensors, rewritten on the fly.
 *
 * Owns: the choice of what to remove and the pruned rows themselves.
 *  - structured (shapes shrink, the file really is smaller): FFN channels (gate/up rows with the
 *    matching down columns), attention head groups (q heads with their shared kv head, o_proj
 *    columns with them), whole blocks (renumbered). Scores: Minitron-style mean |activation|
 *    from calibration statistics, else weight norms; blocks by ShortGPT's cosine similarity.
 *    Uniform widths keep the config's one width; otherwise per-layer widths (GGUF "deci").
 *  - unstructured (shapes kept, weights set to exactly 0): magnitude (per row, per tensor or
 *    global threshold), Wanda (|W| * sqrt(E[x^2]) per output row), SparseGPT (OBS through the
 *    inverse Hessian from the Gram matrix: kept weights compensate); each with N:M groups.
 *    Sparsity is exact: per row k = round(s * ncols) (rows), per tensor round(s * n), globally
 *    round(s * total) (ties broken by position).
 * The pruned model is an slm_tensor_src (core/tensor.h): the export pipeline streams it into a
 * GGUF (or safetensors) like any other model, rows computed as they are read.
 * Must not: read or write files, print; include quantize/ policy.
 */
#ifndef SLM_PRUNE_H
#define SLM_PRUNE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/tensor.h"
#include "model/calib.h"
#include "model/config.h"

typedef enum slm_prune_method {
    SLM_PRUNE_MAGNITUDE = 1,
    SLM_PRUNE_WANDA,
    SLM_PRUNE_SPARSEGPT,
    SLM_PRUNE_FFN,
    SLM_PRUNE_HEADS,
    SLM_PRUNE_LAYERS,
} slm_prune_method;

/* Magnitude pruning's comparison set (Wanda and SparseGPT compare within rows). */
typedef enum slm_prune_scope { SLM_PRUNE_SCOPE_ROW = 0, SLM_PRUNE_SCOPE_TENSOR, SLM_PRUNE_SCOPE_GLOBAL } slm_prune_scope;

/* Which tensors unstructured pruning touches, at what sparsity (first match wins). */
typedef struct slm_prune_pattern {
    const char *regex;  /* POSIX extended, matched against GGUF names */
    double sparsity;    /* < 0: the run's --sparsity */
} slm_prune_pattern;

typedef struct slm_prune_opts {
    int method;             /* slm_prune_method */
    double sparsity;        /* in [0, 1): fraction of weights / channels / head groups / blocks removed */
    int nm_n, nm_m;         /* N:M: keep N of every M consecutive weights of a row (0: off) */
    int scope;              /* slm_prune_scope (magnitude) */
    int uniform;            /* structured: every layer keeps the same width */
    int align;              /* structured FFN: kept channels per layer a multiple of this (0: 32) */
    const slm_prune_pattern *patterns; /* unstructured: none -> every 2-D weight of the blocks */
    size_t n_patterns;
    const slm_calib *calib; /* statistics of the input model, or NULL (weight norms; magnitude) */
    double damp;            /* SparseGPT: dampening, fraction of mean diag(H) (0: 0.01) */
    int block;              /* SparseGPT: columns per mask-selection block (0: 128) */
} slm_prune_opts;

/* One output tensor. */
typedef struct slm_prune_tensor {
    slm_tensor_info info;   /* output name and shape; dtype F32 when the data changes */
    size_t src;             /* input tensor index */
    int changed;
    int32_t *rows;          /* input row of each output row, NULL: the same (owned) */
    int32_t *cols;          /* input column of each output column, NULL: the same (owned) */
    const slm_calib_input *stats; /* Wanda / SparseGPT: the statistics of its input */
    double sparsity;        /* unstructured target, 0: none */
    uint32_t thresh_bits;   /* per tensor / global magnitude: prune |w| below this (float bits) ... */
    int64_t ties, ties_left; /* ... and this many weights equal to it, first come first pruned */
    float *col_scale;       /* Wanda: sqrt(E[x^2]) per column; SparseGPT: dead columns (0) */
    double *hinv;           /* SparseGPT: upper Cholesky factor U of H^-1 = U^T U (ncols^2) */
    int64_t zeros, n_values; /* counted in the rows produced (after the whole tensor: achieved) */
    int64_t src_params;     /* parameters of the input tensor */
} slm_prune_tensor;

typedef struct slm_prune {
    const slm_tensor_src *in;
    slm_model_config in_cfg, cfg; /* input and output configs */
    slm_prune_opts o;
    slm_prune_tensor *t;
    size_t n;
    float *buf;             /* scratch: gathered input rows */
    size_t buf_elems;
    void *rowscratch;       /* per thread: 4n ints + 2n floats of the widest row */
    int n_threads;
    int64_t widest;         /* the longest row of the model */
    slm_tensor_src out;
} slm_prune;

/* Plans the pruning of in (config cfg) and fills p->out. Refuses (SLM_E_ARG, one line): sparsity
   outside [0, 1), N:M that does not divide a pruned row (or N >= M), statistics of another model,
   a method that needs statistics without them, removing every head group (or block) of a layer
   (or model), a pattern that matches no tensor. */
int slm_prune_plan(slm_prune *p, const slm_tensor_src *in, const slm_model_config *cfg, const slm_prune_opts *o,
                   slm_err *err);
void slm_prune_free(slm_prune *p);

/* Name of a method ("magnitude" ...), and the method of a name (-1 when unknown). */
const char *slm_prune_method_name(int method);

/* ---- kernels (exported for the tests) ------------------------------------------------------ */

/* Zeroes exactly k of the n values with the smallest score (|w| * scale[j], scale NULL: |w|),
   ties by position; with N:M (m > 0) exactly m - nk of every m. idx: 4n ints of scratch. */
void slm_prune_row_select(float *w, int64_t n, const float *scale, int64_t k, int nk, int m, int32_t *idx);
/* SparseGPT on one row w (n values) with U (upper Cholesky factor of H^-1, n x n): prunes
   round(s * n) weights (N:M when m > 0) block by block and updates the rest. tmp: 2n floats,
   idx: 4n ints. */
void slm_prune_row_sparsegpt(float *w, int64_t n, const double *U, double s, int nk, int m, int block, float *tmp,
                             int32_t *idx);
/* U with H^-1 = U^T U from the Gram matrix G (n x n) of count rows: H = 2 G / count, dead
   columns (zero diagonal) get 1 and are returned in dead[] (1: dead), damp * mean(diag) added. */
int slm_prune_hinv(const double *G, int64_t n, int64_t count, double damp, double *U, float *dead, slm_err *err);

#endif
