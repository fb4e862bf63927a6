/* quantize.h - quantize one tensor (f32 rows in, ggml blocks out) with its error statistics.
 *
 * Owns: the finite-value check, the parallel row loop over the kernels of quants.h, and the
 * per-tensor error of dequantize(quantize(x)) against x (the data for the report).
 * Must not: read or write files; allocate inside parallel regions.
 */
#ifndef SLM_QUANTIZE_H
#define SLM_QUANTIZE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct slm_qstats {
    int64_t n;            /* values compared */
    double sum_sq_err;    /* sum (x - q)^2 */
    double sum_sq_ref;    /* sum x^2 */
    double max_abs_err;   /* max |x - q| */
} slm_qstats;

/* Quantizes nrow rows of ncols values to type (any type slm_dtype_can_write accepts,
   including F32/F16/BF16). imatrix: NULL or ncols importance weights. stats may be NULL.
   Fails with SLM_E_DATA naming the first NaN/Inf (row, column); no kernel sees one, but dst's
   other chunks may have been written (callers discard dst on failure). Fails
   with SLM_E_ARG when ncols is not a multiple of the type's block size or when imatrix is NULL for
   a type ggml quantizes only with importance weights (slm_dtype_needs_imatrix). Output bytes do not
   depend on the thread count. */
int slm_quantize_tensor(int type, const float *src, int64_t nrow, int64_t ncols, const float *imatrix,
                        void *dst, slm_qstats *stats, slm_err *err);

/* ---- the pieces of slm_quantize_tensor, for callers that run the chunks themselves (the
   streaming export): the same chunks give the same bytes and the same statistics. */

/* Rows per chunk for rows of ncols values (chunks of >= 32 * 512 values, at least one row). */
int64_t slm_qchunk_rows(int64_t ncols);

typedef struct slm_qchunk {
    double sq_err, sq_ref, max_err; /* this chunk's error partials */
    int64_t first_bad;              /* index (in the chunk) of the first NaN/Inf, or -1 */
    float bad_value;                /* that value */
} slm_qchunk;

/* slm_quantize_tensor's refusals (type, block size, importance weights), before any chunk. */
int slm_quantize_check(int type, int64_t ncols, const float *imatrix, slm_err *err);
/* One chunk of nr rows, one pass: NaN/Inf check (nothing quantized if one is found), quantize
   into dst, and with scratch (ncols floats) the error partials. Thread-safe; never fails. */
void slm_quantize_chunk_stats(int type, const float *src, int64_t nr, int64_t ncols, const float *imatrix, void *dst,
                              float *scratch, slm_qchunk *out);
/* The chunks of nrow rows, in order: the first NaN/Inf as slm_quantize_tensor's error (index,
   row and column relative to the first chunk), else their statistics summed into stats (may
   be NULL). */
int slm_qchunk_reduce(const slm_qchunk *cs, int64_t nchunk, int64_t nrow, int64_t ncols, slm_qstats *stats, slm_err *err);

static inline double slm_qstats_rmse(const slm_qstats *s) { return s->n ? __builtin_sqrt(s->sum_sq_err / (double)s->n) : 0; }
static inline double slm_qstats_rel_rmse(const slm_qstats *s) {
    return s->sum_sq_ref > 0 ? __builtin_sqrt(s->sum_sq_err / s->sum_sq_ref) : 0;
}

#endif
