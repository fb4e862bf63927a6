/* q_tensor.c - one tensor: validate, quantize rows in parallel, measure the error.
 *
 * Rows are cut into fixed chunks (independent of the thread count); every chunk writes its
 * own blocks and its own error partials, summed serially in chunk order afterwards, so
 * bytes and statistics are identical for any number of threads. Types that ggml quantizes only
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

typedef struct chunk_stats { double sq_err, sq_ref, max_err; int64_t first_bad; } chunk_stats;

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

int slm_quantize_tensor(int type, const float *src, int64_t nrow, int64_t ncols, const float *imatrix,
                        void *dst, slm_qstats *stats, slm_err *err) {
    const slm_dtype_traits *tr = slm_dtype_get(type);
    if (!tr || !slm_dtype_can_write(type)) return slm_errf(err, SLM_E_UNSUPPORTED, "cannot quantize to type %s", slm_dtype_name(type));
    if (ncols <= 0 || ncols % tr->blck_size)
        return slm_errf(err, SLM_E_ARG, "row length %lld is not a multiple of %s's block size %lld", (long long)ncols, tr->name,
                        (long long)tr->blck_size);
    if (!imatrix && slm_dtype_needs_imatrix(type))
        return slm_errf(err, SLM_E_ARG, "%s needs importance weights (an imatrix): ggml does not quantize it without", tr->name);
    const size_t rowb = slm_dtype_row_size(type, ncols);
    const int64_t rows_per_chunk = ncols >= CHUNK_ELEMS ? 1 : (CHUNK_ELEMS + ncols - 1) / ncols;
    const int64_t nchunk = (nrow + rows_per_chunk - 1) / rows_per_chunk;
    const int nth = slm_threads_get();
    chunk_stats *cs = NULL;
    float *scratch = NULL;
    int rc;
    if ((rc = slm_calloc((void **)&cs, (size_t)(nchunk ? nchunk : 1), sizeof(*cs), err, "quantization statistics"))) return rc;
    if (stats && (rc = slm_alloc((void **)&scratch, (size_t)nth * (size_t)ncols * sizeof(float), err, "dequantization scratch"))) goto done;

    /* 1. every value finite (before anything is written) */
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < nchunk; c++) {
        int64_t r0 = c * rows_per_chunk, nr = SLM_MIN(rows_per_chunk, nrow - r0);
        int64_t bad = slm_first_nonfinite(src + r0 * ncols, nr * ncols);
        cs[c].first_bad = bad < 0 ? -1 : r0 * ncols + bad;
    }
    for (int64_t c = 0; c < nchunk; c++) {
        if (cs[c].first_bad >= 0) {
            int64_t i = cs[c].first_bad;
            float v = src[i];
            rc = slm_errf(err, SLM_E_DATA, "%s at index %lld (row %lld, column %lld)", isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf",
                          (long long)i, (long long)(i / ncols), (long long)(i % ncols));
            goto done;
        }
    }

    /* 2. quantize, then measure each chunk while it is hot in cache */
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < nchunk; c++) {
        int64_t r0 = c * rows_per_chunk, nr = SLM_MIN(rows_per_chunk, nrow - r0);
        uint8_t *out = (uint8_t *)dst + (size_t)r0 * rowb;
        slm_quantize_chunk(type, src + r0 * ncols, out, nr, ncols, imatrix);
        if (!scratch) continue;
        float *y = scratch + (size_t)slm_thread_id() * (size_t)ncols;
        double se = 0, sr = 0, mx = 0;
        for (int64_t r = 0; r < nr; r++) {
            const float *x = src + (r0 + r) * ncols;
            slm_dequantize_rows(type, out + (size_t)r * rowb, y, 1, ncols);
            row_error(x, y, ncols, &se, &sr, &mx);
        }
        cs[c].sq_err = se;
        cs[c].sq_ref = sr;
        cs[c].max_err = mx;
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
done:
    slm_free(scratch);
    slm_free(cs);
    return rc;
}
