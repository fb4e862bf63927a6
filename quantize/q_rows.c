/* q_rows.c - type dispatch over rows through the type table: ggml_quantize_chunk, to_float row
 * by row, and the threaded dequantizer.
 *
 * Owns: slm_quantize_chunk[_kernel] (serial, same bytes as ggml_quantize_chunk with start = 0),
 * slm_dequantize_rows[_mt] (fixed chunks of rows, schedule(static): identical floats for any
 * thread count), the CPU check that enables the AVX2 kernels.
 * Must not: allocate, print, or call anything fallible inside a parallel region; know about
 * files or tensors. Preconditions are SLM_ASSERTed here, once, like ggml's dispatch point.
 */
#include "quantize/quants.h"

#include <string.h>

#include "core/cpu.h"
#include "core/slm.h"
#include "core/thread.h"
#include "quantize/qtypes.h"

/* Checks the API contract and returns the bytes of one row. */
static size_t checked_row_size(const slm_dtype_traits *tr, int type, const void *data, int64_t nrow, int64_t n_per_row) {
    SLM_ASSERT(tr);
    SLM_ASSERT(nrow >= 0 && n_per_row > 0);
    size_t row_size = slm_dtype_row_size(type, n_per_row); /* 0: not a multiple of the block size */
    SLM_ASSERT(row_size > 0);
    size_t total;
    SLM_ASSERT(slm_mul_ok(row_size, (size_t)nrow, &total));
    SLM_ASSERT(!tr->is_quantized || ((uintptr_t)data & 1) == 0); /* blocks hold uint16_t fields */
    return row_size;
}

size_t slm_quantize_chunk(int type, const float *src, void *dst, int64_t nrow, int64_t n_per_row,
                          const float *imatrix) {
    return slm_quantize_chunk_kernel(type, SLM_KERNEL_AUTO, src, dst, nrow, n_per_row, imatrix);
}

size_t slm_quantize_chunk_kernel(int type, slm_quant_kernel kernel, const float *src, void *dst, int64_t nrow,
                                 int64_t n_per_row, const float *imatrix) {
    const slm_dtype_traits *tr = slm_dtype_get(type);
    SLM_ASSERT(tr && tr->quantize);
    SLM_ASSERT(imatrix || !tr->needs_imatrix);
    const size_t row_size = checked_row_size(tr, type, dst, nrow, n_per_row);
    const size_t written = tr->quantize(src, dst, nrow, n_per_row, imatrix, kernel);
    SLM_ASSERT(written == (size_t)nrow * row_size);
    return written;
}

void slm_dequantize_rows(int type, const void *src, float *dst, int64_t nrow, int64_t n_per_row) {
    const slm_dtype_traits *tr = slm_dtype_get(type);
    SLM_ASSERT(tr && tr->to_float);
    const size_t row_size = checked_row_size(tr, type, src, nrow, n_per_row);
    for (int64_t r = 0; r < nrow; r++) tr->to_float((const char *)src + (size_t)r * row_size, dst + r * n_per_row, n_per_row);
}

void slm_dequantize_rows_mt(int type, const void *src, float *dst, int64_t nrow, int64_t n_per_row) {
    const slm_dtype_traits *tr = slm_dtype_get(type);
    SLM_ASSERT(tr && tr->to_float);
    const size_t row_size = checked_row_size(tr, type, src, nrow, n_per_row);
    const int n_threads = slm_threads_get();
    SLM_UNUSED(n_threads); /* without -fopenmp */
#pragma omp parallel for schedule(static) num_threads(n_threads)
    for (int64_t r = 0; r < nrow; r++) tr->to_float((const char *)src + (size_t)r * row_size, dst + r * n_per_row, n_per_row);
}

int slm_quant_cpu_has_avx2(void) { return slm_cpu_has_avx2(); }

const char *slm_quant_kernel_name(int type) {
    const slm_dtype_traits *tr = slm_dtype_get(type);
    return tr && tr->is_quantized && tr->quantize && slm_quant_use_avx2(SLM_KERNEL_AUTO) ? "avx2" : "ref";
}
