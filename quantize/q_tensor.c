/* q_tensor.c - one tensor: validate, quantize rows in parallel, measure the error.
 *
 * Rows are cut into fixed chunks (independent of the thread count); every chunk is checked,
 * quantized and measured in one pass while it is in cache, writes its own blocks and its own
 * error partials, summed serially in chunk order afterwards, so bytes and statistics are
 * identical for any number of threads (and for the streaming export, which runs the same
 * chunks on its own threads). Types that ggml quantizes only
 * with importance weights (IQ2_XXS, IQ2_XS, IQ1_S) are refused here without them, before any kernel
 * runs.
 */
#include "quantize.h"

#include <math.h>
#include <string.h>

#include "core/dtype.h"
#include "quantize/qtypes.h"
#include "core/mem.h"
#include "core/slm.h"
#include "core/thread.h"
#include "quants.h"

#define CHUNK_ELEMS (32 * 512) /* llama.cpp's minimum chunk; rows per chunk >= 1 */

/* Squared error, squared reference and max |x - y| of one row, in 8 fixed lanes of float
   (the compiler vectorises them; the order is fixed, so results never depend on threads). */
static void row_error(const float *restrict x, const float *restrict y, int64_t n, double *se, double *sr, double *mx) {
    float e[8] = {0}, r[8] = {0}, m[8] = {0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        for (int k = 0; k < 8; k++) {
            float d = x[j + k] - y[j + k];
            e[k] += d * d;
            r[k] += x[j + k] * x[j + k];
            float a = d < 0 ? -d : d;
            m[k] = a > m[k] ? a : m[k];
        }
    }
    double es = 0, rs = 0, ms = 0;
    for (; j < n; j++) {
        double d = (double)x[j] - (double)y[j];
        es += d * d;
        rs += (double)x[j] * (double)x[j];
        ms = fabs(d) > ms ? fabs(d) : ms;
    }
    for (int k = 0; k < 8; k++) {
        es += e[k];
        rs += r[k];
        ms = m[k] > ms ? m[k] : ms;
    }
    *se += es;
    *sr += rs;
    if (ms > *mx) *mx = ms;
}

int64_t slm_qchunk_rows(int64_t ncols) { return ncols >= CHUNK_ELEMS ? 1 : (CHUNK_ELEMS + ncols - 1) / ncols; }

void slm_quantize_chunk_stats(int type, const float *src, int64_t nr, int64_t ncols, const float *imatrix, void *dst,
                              float *scratch, slm_qchunk *out) {
    *out = (slm_qchunk){0, 0, 0, slm_first_nonfinite(src, nr * ncols), 0};
    if (out->first_bad >= 0) { /* no kernel sees a NaN or Inf */
        out->bad_value = src[out->first_bad];
        return;
    }
    slm_quantize_chunk(type, src, dst, nr, ncols, imatrix);
    if (!scratch) return;
    const size_t rowb = slm_dtype_row_size(type, ncols);
    for (int64_t r = 0; r < nr; r++) { /* the rows are still in cache */
        slm_dequantize_rows(type, (const uint8_t *)dst + (size_t)r * rowb, scratch, 1, ncols);
        row_error(src + r * ncols, scratch, ncols, &out->sq_err, &out->sq_ref, &out->max_err);
    }
}

int slm_quantize_check(int type, int64_t ncols, const float *imatrix, slm_err *err) {
    const slm_dtype_traits *tr = slm_dtype_get(type);
    if (!tr || !slm_dtype_can_write(type)) return slm_errf(err, SLM_E_UNSUPPORTED, "cannot quantize to type %s", slm_dtype_name(type));
    if (ncols <= 0 || ncols % tr->blck_size)
        return slm_errf(err, SLM_E_ARG, "row length %lld is not a multiple of %s's block size %lld", (long long)ncols, tr->name,
                        (long long)tr->blck_size);
    if (!imatrix && slm_dtype_needs_imatrix(type))
        return slm_errf(err, SLM_E_ARG, "%s needs importance weights (an imatrix): ggml does not quantize it without", tr->name);
    return SLM_OK;
}

int slm_qchunk_reduce(const slm_qchunk *cs, int64_t nchunk, int64_t nrow, int64_t ncols, slm_qstats *stats, slm_err *err) {
    const int64_t rows_per_chunk = slm_qchunk_rows(ncols);
    for (int64_t c = 0; c < nchunk; c++) {
        if (cs[c].first_bad >= 0) {
            int64_t i = c * rows_per_chunk * ncols + cs[c].first_bad;
            float v = cs[c].bad_value;
            return slm_errf(err, SLM_E_DATA, "%s at index %lld (row %lld, column %lld)", isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf",
                            (long long)i, (long long)(i / ncols), (long long)(i % ncols));
        }
    }
    if (stats) {
        memset(stats, 0, sizeof(*stats));
        stats->n = nrow * ncols;
        for (int64_t c = 0; c < nchunk; c++) {
            stats->sum_sq_err += cs[c].sq_err;
            stats->sum_sq_ref += cs[c].sq_ref;
            if (cs[c].max_err > stats->max_abs_err) stats->max_abs_err = cs[c].max_err;
        }
    }
    return SLM_OK;
}

int slm_quantize_tensor(int type, const float *src, int64_t nrow, int64_t ncols, const float *imatrix,
                        void *dst, slm_qstats *stats, slm_err *err) {
    SLM_TRY(slm_quantize_check(type, ncols, imatrix, err));
    const size_t rowb = slm_dtype_row_size(type, ncols);
    const int64_t rows_per_chunk = slm_qchunk_rows(ncols);
    const int64_t nchunk = (nrow + rows_per_chunk - 1) / rows_per_chunk;
    const int nth = slm_threads_get();
    slm_qchunk *cs = NULL;
    float *scratch = NULL;
    int rc;
    if ((rc = slm_calloc((void **)&cs, (size_t)(nchunk ? nchunk : 1), sizeof(*cs), err, "quantization statistics"))) return rc;
    if (stats && (rc = slm_alloc((void **)&scratch, (size_t)nth * (size_t)ncols * sizeof(float), err, "dequantization scratch"))) goto done;

    /* one pass per chunk: finite check, quantize, measure while it is hot in cache */
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < nchunk; c++) {
        int64_t r0 = c * rows_per_chunk, nr = SLM_MIN(rows_per_chunk, nrow - r0);
        float *y = scratch ? scratch + (size_t)slm_thread_id() * (size_t)ncols : NULL;
        slm_quantize_chunk_stats(type, src + r0 * ncols, nr, ncols, imatrix, (uint8_t *)dst + (size_t)r0 * rowb, y, &cs[c]);
    }
    rc = slm_qchunk_reduce(cs, nchunk, nrow, ncols, stats, err);
done:
    slm_free(scratch);
    slm_free(cs);
    return rc;
}
