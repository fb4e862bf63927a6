/* quant_rows.c - type dispatch over rows: ggml_quantize_chunk's switch, to_float row by row,
 * and their OpenMP versions.
 *
 * Owns: which types slm can write and read as blocks, slm_quantize_chunk[_kernel] (serial, same
 * bytes as ggml_quantize_chunk with start = 0), the CPU check that enables the AVX2 kernels,
 * slm_dequantize_rows_mt (fixed chunks of rows, schedule(static):
 * identical bytes for any thread count).
 * Must not: allocate, print, or call anything fallible inside a parallel region; know about
 * files or tensors. Preconditions are SLM_ASSERTed here, once, like ggml's dispatch point.
 */
#include "quantize/quants.h"

#include <string.h>

#include "core/cpu.h"
#include "core/dtype.h"
#include "core/slm.h"
#include "core/thread.h"

/* Rows per parallel work item: small enough to balance 2..64 threads on a 4096-row tensor,
 * large enough that scheduling costs nothing next to a row of k-quant solvers. */
#define ROWS_PER_CHUNK 16

typedef size_t (*quantize_kernel_fn)(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                     const float *imatrix, slm_quant_kernel kernel);
typedef void (*dequantize_fn)(const void *restrict x, float *restrict y, int64_t k);

/* The block types, by ggml type id: slm_quantize_<t>_kernel and slm_dequantize_row_<t>.
 * F32/F16/BF16 are handled in the switches below. */
static const struct {
    int type;
    quantize_kernel_fn quantize;
    dequantize_fn dequantize;
} block_kernels[] = {
    {SLM_DTYPE_Q4_0, slm_quantize_q4_0_kernel, slm_dequantize_row_q4_0},
    {SLM_DTYPE_Q4_1, slm_quantize_q4_1_kernel, slm_dequantize_row_q4_1},
    {SLM_DTYPE_Q5_0, slm_quantize_q5_0_kernel, slm_dequantize_row_q5_0},
    {SLM_DTYPE_Q5_1, slm_quantize_q5_1_kernel, slm_dequantize_row_q5_1},
    {SLM_DTYPE_Q8_0, slm_quantize_q8_0_kernel, slm_dequantize_row_q8_0},
    {SLM_DTYPE_Q2_K, slm_quantize_q2_K_kernel, slm_dequantize_row_q2_K},
    {SLM_DTYPE_Q3_K, slm_quantize_q3_K_kernel, slm_dequantize_row_q3_K},
    {SLM_DTYPE_Q4_K, slm_quantize_q4_K_kernel, slm_dequantize_row_q4_K},
    {SLM_DTYPE_Q5_K, slm_quantize_q5_K_kernel, slm_dequantize_row_q5_K},
    {SLM_DTYPE_Q6_K, slm_quantize_q6_K_kernel, slm_dequantize_row_q6_K},
    {SLM_DTYPE_IQ4_NL, slm_quantize_iq4_nl_kernel, slm_dequantize_row_iq4_nl},
    {SLM_DTYPE_IQ4_XS, slm_quantize_iq4_xs_kernel, slm_dequantize_row_iq4_xs},
    {SLM_DTYPE_IQ2_XXS, slm_quantize_iq2_xxs_kernel, slm_dequantize_row_iq2_xxs},
    {SLM_DTYPE_IQ2_XS, slm_quantize_iq2_xs_kernel, slm_dequantize_row_iq2_xs},
    {SLM_DTYPE_IQ3_XXS, slm_quantize_iq3_xxs_kernel, slm_dequantize_row_iq3_xxs},
    {SLM_DTYPE_IQ1_S, slm_quantize_iq1_s_kernel, slm_dequantize_row_iq1_s},
    {SLM_DTYPE_IQ3_S, slm_quantize_iq3_s_kernel, slm_dequantize_row_iq3_s},
    {SLM_DTYPE_IQ2_S, slm_quantize_iq2_s_kernel, slm_dequantize_row_iq2_s},
    {SLM_DTYPE_IQ1_M, slm_quantize_iq1_m_kernel, slm_dequantize_row_iq1_m},
};

static int kernel_index(int type) {
    for (size_t i = 0; i < SLM_ARRAY_LEN(block_kernels); i++) {
        if (block_kernels[i].type == type) return (int)i;
    }
    return -1;
}

static int is_plain(int type) { return type == SLM_DTYPE_F32 || type == SLM_DTYPE_F16 || type == SLM_DTYPE_BF16; }

int slm_quant_can_quantize(int type) { return is_plain(type) || kernel_index(type) >= 0; }

int slm_quant_can_dequantize(int type) { return is_plain(type) || kernel_index(type) >= 0; }

/* Checks the API contract and returns the bytes of one row. */
static size_t checked_row_size(int type, const void *data, int64_t nrow, int64_t n_per_row) {
    SLM_ASSERT(slm_quant_can_quantize(type));
    SLM_ASSERT(nrow >= 0 && n_per_row > 0);
    size_t row_size = slm_dtype_row_size(type, n_per_row); /* 0: not a multiple of the block size */
    SLM_ASSERT(row_size > 0);
    size_t total;
    SLM_ASSERT(slm_mul_ok(row_size, (size_t)nrow, &total));
    SLM_ASSERT(is_plain(type) || ((uintptr_t)data & 1) == 0); /* blocks hold uint16_t fields */
    return row_size;
}

/* Serial body shared by the entry points; the arguments are already checked. */
static size_t quantize_rows(int type, slm_quant_kernel kernel, const float *src, void *dst, int64_t nrow,
                            int64_t n_per_row, const float *imatrix) {
    const int64_t n = nrow * n_per_row;
    switch (type) {
    case SLM_DTYPE_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        return (size_t)n * sizeof(float);
    case SLM_DTYPE_F16:
        slm_f32_to_f16_row(dst, src, n);
        return (size_t)n * 2;
    case SLM_DTYPE_BF16:
        slm_f32_to_bf16_row(dst, src, n);
        return (size_t)n * 2;
    default:
        return block_kernels[kernel_index(type)].quantize(src, dst, nrow, n_per_row, imatrix, kernel);
    }
}

size_t slm_quantize_chunk(int type, const float *src, void *dst, int64_t nrow, int64_t n_per_row,
                          const float *imatrix) {
    return slm_quantize_chunk_kernel(type, SLM_KERNEL_AUTO, src, dst, nrow, n_per_row, imatrix);
}

size_t slm_quantize_chunk_kernel(int type, slm_quant_kernel kernel, const float *src, void *dst, int64_t nrow,
                                 int64_t n_per_row, const float *imatrix) {
    const size_t row_size = checked_row_size(type, dst, nrow, n_per_row);
    const size_t written = quantize_rows(type, kernel, src, dst, nrow, n_per_row, imatrix);
    SLM_ASSERT(written == (size_t)nrow * row_size);
    return written;
}

static void dequantize_row(int type, const void *src, float *dst, int64_t n) {
    switch (type) {
    case SLM_DTYPE_F32:
        slm_f32_copy_row(dst, src, n);
        break;
    case SLM_DTYPE_F16:
        slm_f16_to_f32_row(dst, src, n);
        break;
    case SLM_DTYPE_BF16:
        slm_bf16_to_f32_row(dst, src, n);
        break;
    default:
        block_kernels[kernel_index(type)].dequantize(src, dst, n);
        break;
    }
}

void slm_dequantize_rows(int type, const void *src, float *dst, int64_t nrow, int64_t n_per_row) {
    const size_t row_size = checked_row_size(type, src, nrow, n_per_row);
    for (int64_t r = 0; r < nrow; r++) {
        dequantize_row(type, (const char *)src + (size_t)r * row_size, dst + r * n_per_row, n_per_row);
    }
}

void slm_dequantize_rows_mt(int type, const void *src, float *dst, int64_t nrow, int64_t n_per_row) {
    const size_t row_size = checked_row_size(type, src, nrow, n_per_row);
    const int n_threads = slm_threads_get();
    SLM_UNUSED(n_threads); /* without -fopenmp */
#pragma omp parallel for schedule(static) num_threads(n_threads)
    for (int64_t r = 0; r < nrow; r++) {
        dequantize_row(type, (const char *)src + (size_t)r * row_size, dst + r * n_per_row, n_per_row);
    }
}

int slm_quant_cpu_has_avx2(void) { return slm_cpu_has_avx2(); }

const char *slm_quant_kernel_name(int type) {
    return kernel_index(type) >= 0 && slm_quant_use_avx2(SLM_KERNEL_AUTO) ? "avx2" : "ref";
}
