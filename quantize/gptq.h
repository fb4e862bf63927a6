/* gptq.h - GPTQ (Frantar et al. 2022) emitting ggml's block formats: a weight matrix is quantized
 * column after column and each column's rounding error is fed back into the columns not yet
 * quantized through the inverse Hessian H = 2 X^T X / n of the layer's input (only its shape
 * matters: any positive multiple of X^T X gives the same result).
 *
 * Owns: the factor (damping, dead columns, column order, upper Cholesky factor U of H^-1), the
 * column loop with lazy batches, and how ggml blocks are filled: when the first column of a block
 * (32 values, or a 256-value super-block) is reached, the block's scales and mins are chosen by
 * the codec's own quantizer (quantize/qtypes.h: what llama-quantize runs, importance-weighted
 * when an imatrix is given) from the block's current, error-updated weights; each column's code
 * is then the level those scales give nearest to its updated weight (the codec's own code while
 * the weight is still the value the codec saw), and w - dequant(code) is fed back.
 * Types whose codes are not per value (the lattice types IQ1_*, IQ2_*, IQ3_*) are quantized a
 * whole block at a time by the codec at its first column; the error of every column of the block
 * is still fed back to the columns after it.
 * Must not: read files, print; allocate inside parallel regions. Rows are independent given H and
 * are processed in fixed tiles: the output does not depend on the thread count.
 *
 * Dead columns (X^T X diagonal 0: the input never moved) keep their weight, get H_ii = 1 and no
 * off-diagonal terms: they are rounded as by RTN and push no error elsewhere (the paper zeroes
 * them; a column silent on the calibration text need not be silent on other text).
 *
 * Column order and ggml blocks (act-order): the block layout of a row is fixed (columns
 * 32b..32b+31 share a scale), so any processing order is correct as long as a block's scales are
 * chosen when its first column in processing order is reached, from the current values of all its
 * columns (none of which is quantized yet), and pending lazy updates reach those columns first
 * (a lazy batch is cut short there). SLM_GPTQ_ACT_BLOCKS keeps blocks contiguous in processing
 * order (blocks by their summed diag(H), descending; inside a block columns by diag(H),
 * descending): every block's scales see the error of all blocks before it. SLM_GPTQ_ACT is the
 * paper's global order (diag(H) descending): most blocks then get their scales early, before most
 * of the feedback arrives.
 */
#ifndef SLM_GPTQ_H
#define SLM_GPTQ_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef enum slm_gptq_order {
    SLM_GPTQ_NATURAL = 0,    /* columns 0, 1, 2, ... */
    SLM_GPTQ_ACT = 1,        /* diag(H) descending over the whole row */
    SLM_GPTQ_ACT_BLOCKS = 2, /* blocks by summed diag(H) descending, inside each diag(H) descending */
} slm_gptq_order;

typedef struct slm_gptq_opts {
    double damp;    /* added to diag(H): damp * mean(diag(H)); 0 = default 0.01 */
    int batch;      /* lazy batch: columns updated together; 0 = default 128 */
    int order;      /* slm_gptq_order */
} slm_gptq_opts;

/* Quantizes W (nrow, ncols, row-major f32) to type with GPTQ error feedback through the inverse of
   the Hessian gram (ncols, ncols, symmetric, e.g. X^T X of the calibration inputs). dst gets nrow
   rows of ggml blocks, exactly slm_dtype_row_size(type, ncols) bytes each. imatrix: NULL or ncols
   importance weights, used as llama-quantize uses them when the codec chooses a block's scales.
   deq: NULL or (nrow, ncols) floats, the dequantized output (what to_float of dst gives).
   o: NULL for the defaults. Plain types (F32, F16, BF16) are converted as they are.
   SLM_E_ARG: type not writable, ncols not a multiple of its block, imatrix missing for a type that
   needs it; SLM_E_DATA: a NaN/Inf weight or Hessian entry, or a Hessian not positive definite even
   after raising the damping 1000-fold; SLM_E_NOMEM. Uses slm_threads_get() threads. */
int slm_gptq_quantize(int type, const float *W, int64_t nrow, int64_t ncols, const double *gram, const float *imatrix,
                      const slm_gptq_opts *o, void *dst, float *deq, slm_err *err);

/* The factor of one Hessian for one block size (what every tensor reading the same input shares:
   attn_q/k/v, ffn_gate/up; and every slab of rows of a tensor). */
typedef struct slm_gptq_factor {
    int64_t n, block;   /* columns; the block size the column order was made for */
    int64_t *perm;      /* processing position -> column */
    float *U;           /* (n, n) upper triangular, processing order: P H^-1 P^T = U^T U */
    int batch;
} slm_gptq_factor;

/* Builds f for gram (n, n) and blocks of `block` columns (the type's blck_size). Errors as
   slm_gptq_quantize's for the Hessian. */
int slm_gptq_factor_make(slm_gptq_factor *f, const double *gram, int64_t n, int64_t block, const slm_gptq_opts *o,
                         slm_err *err);
/* slm_gptq_quantize with a factor made for ncols and type's block size. */
int slm_gptq_quantize_f(const slm_gptq_factor *f, int type, const float *W, int64_t nrow, int64_t ncols,
                        const float *imatrix, void *dst, float *deq, slm_err *err);
/* Safe on a zeroed or freed factor. */
void slm_gptq_factor_free(slm_gptq_factor *f);

/* The proxy GPTQ minimizes: tr(dW H dW^T) = sum over rows of d^T H d, d = row of W - Q (both
   (nrow, ncols)), H = gram. In double. */
double slm_gptq_output_error(const float *W, const float *Q, int64_t nrow, int64_t ncols, const double *gram);

#endif
