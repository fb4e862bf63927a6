/* q_legacy.c - ggml's legacy 32-element block formats: q4_0 q4_1 q5_0 q5_1 q8_0.
 *
 * Owns: slm_quantize_row_<t>_ref, slm_dequantize_row_<t>, slm_quantize_<t>[_kernel] with ggml's
 * importance-weighted _impl paths, each reproducing ggml's bytes exactly: same float
 * expressions in the same order, float32 only, no fused multiply-add; and their AVX2 twins
 * (end of file), which must give the scalar code's bytes for every input.
 * Must not: reorder or "simplify" a float expression (the golden tests compare bytes), allocate,
 * print, or know about files. The shared solvers live in q_kquants.c.
 */
#define SLM_QUANTS_AVX2_HELPERS
#include "quantize/quants.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "core/dtype.h"
#include "core/slm.h"

#if SLM_X86_KERNELS
/* AVX2 paths (end of file), bit-exact with the scalar ones: unweighted rows block by block, and
 * the weights of 8 blocks for the importance-weighted paths. */
static void quantize_row_q4_0_avx2(const float *restrict x, slm_block_q4_0 *restrict y, int64_t nb);
static void quantize_row_q4_1_avx2(const float *restrict x, slm_block_q4_1 *restrict y, int64_t nb);
static void quantize_row_q5_0_avx2(const float *restrict x, slm_block_q5_0 *restrict y, int64_t nb);
static void quantize_row_q5_1_avx2(const float *restrict x, slm_block_q5_1 *restrict y, int64_t nb);
static void quantize_row_q8_0_avx2(const float *restrict x, slm_block_q8_0 *restrict y, int64_t nb);
static void weights_8x32_avx2(float *restrict weight, const float *restrict x, const float *restrict qw, float sigma2);
#endif

/* ====================== 4-bit, symmetric: x = (q - 8) * d */

void slm_quantize_row_q4_0_ref(const float *restrict x, void *restrict vy, int64_t k) {
    const int qk = SLM_QK4_0;
    SLM_ASSERT(k % qk == 0);
    const int64_t nb = k / qk;
    slm_block_q4_0 *restrict y = vy;

    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * qk;
        float amax = 0.0f; /* absolute max */
        float max = 0.0f;  /* the value that has it, sign included */
        for (int j = 0; j < qk; j++) {
            const float v = xb[j];
            if (amax < fabsf(v)) {
                amax = fabsf(v);
                max = v;
            }
        }

        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = slm_f32_to_f16(d);

        for (int j = 0; j < qk / 2; ++j) {
            const float x0 = xb[0 + j] * id;
            const float x1 = xb[qk / 2 + j] * id;
            const uint8_t xi0 = (uint8_t)SLM_MIN(15, (int8_t)slm_cvtt_i32(x0 + 8.5f));
            const uint8_t xi1 = (uint8_t)SLM_MIN(15, (int8_t)slm_cvtt_i32(x1 + 8.5f));
            y[i].qs[j] = (uint8_t)(xi0 | (xi1 << 4));
        }
    }
}

void slm_dequantize_row_q4_0(const void *restrict vx, float *restrict y, int64_t k) {
    const int qk = SLM_QK4_0;
    SLM_ASSERT(k % qk == 0);
    const int64_t nb = k / qk;
    const slm_block_q4_0 *restrict x = vx;

    for (int64_t i = 0; i < nb; i++) {
        const float d = slm_f16_to_f32(x[i].d);
        for (int j = 0; j < qk / 2; ++j) {
            const int x0 = (x[i].qs[j] & 0x0F) - 8;
            const int x1 = (x[i].qs[j] >> 4) - 8;
            y[i * qk + j + 0] = x0 * d;
            y[i * qk + j + qk / 2] = x1 * d;
        }
    }
}

/* sigma2 = mean of x^2 over the whole row: the weighted paths depend on the row, not just the block. */
static float row_sigma2(const float *x, int64_t n_per_row) {
    float sum_x2 = 0;
    for (int64_t j = 0; j < n_per_row; ++j) sum_x2 += x[j] * x[j];
    return sum_x2 / n_per_row;
}

/* weight[j] = qw[j] * sqrt(sigma2 + x[j]^2): the imatrix weighting of every legacy _impl path. */
static void block_weights(float *restrict weight, const float *restrict xb, const float *restrict qw, float sigma2) {
    for (int j = 0; j < 32; ++j) weight[j] = qw[j] * sqrtf(sigma2 + xb[j] * xb[j]);
}

/* 32 4-bit codes: value j in the low nibble of qs[j], value j+16 in the high nibble. */
static void pack_nibbles(uint8_t *restrict qs, const uint8_t *restrict L) {
    for (int j = 0; j < 16; ++j) qs[j] = (uint8_t)(L[j] | (L[j + 16] << 4));
}

/* ggml's quantize_row_q4_0_impl: make_qx_quants with nmax 8, weights
 * qw * sqrt(sigma2 + x^2), sigma2 the row's mean x^2. With AVX2, 8 blocks at a time. */
static void quantize_row_q4_0_impl(const float *restrict x, slm_block_q4_0 *restrict y, int64_t n_per_row,
                                   const float *restrict quant_weights, int avx2) {
    float weight[8 * SLM_QK4_0];
    int8_t L[8 * SLM_QK4_0];
    const float sigma2 = row_sigma2(x, n_per_row);
    const int64_t nb = n_per_row / SLM_QK4_0;
    int64_t ib = 0;
#if SLM_X86_KERNELS
    for (; avx2 && ib + 8 <= nb; ib += 8) {
        float scales[8];
        weights_8x32_avx2(weight, x + SLM_QK4_0 * ib, quant_weights + SLM_QK4_0 * ib, sigma2);
        slm_make_qx_quants_8x32(8, x + SLM_QK4_0 * ib, weight, L, scales);
        for (int b = 0; b < 8; b++) {
            y[ib + b].d = slm_f32_to_f16(scales[b]);
            pack_nibbles(y[ib + b].qs, (const uint8_t *)L + 32 * b);
        }
    }
#endif
    SLM_UNUSED(avx2);
    for (; ib < nb; ++ib) {
        const float *xb = x + SLM_QK4_0 * ib;
        block_weights(weight, xb, quant_weights + SLM_QK4_0 * ib, sigma2);
        const float d = slm_make_qx_quants(SLM_QK4_0, 8, xb, L, 1, weight);
        y[ib].d = slm_f32_to_f16(d);
        pack_nibbles(y[ib].qs, (const uint8_t *)L);
    }
}

size_t slm_quantize_q4_0_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                const float *imatrix, slm_quant_kernel kernel) {
    SLM_ASSERT(n_per_row % SLM_QK4_0 == 0);
    const int64_t nb = n_per_row / SLM_QK4_0;
    const int avx2 = slm_quant_use_avx2(kernel);
    slm_block_q4_0 *y = dst;
    if (!imatrix) {
#if SLM_X86_KERNELS
        if (avx2) {
            quantize_row_q4_0_avx2(src, y, nrow * nb);
            return (size_t)(nrow * nb) * sizeof(slm_block_q4_0);
        }
#endif
        slm_quantize_row_q4_0_ref(src, y, nrow * n_per_row);
        return (size_t)(nrow * nb) * sizeof(slm_block_q4_0);
    }
    for (int64_t row = 0; row < nrow; ++row) {
        quantize_row_q4_0_impl(src + row * n_per_row, y + row * nb, n_per_row, imatrix, avx2);
    }
    return (size_t)(nrow * nb) * sizeof(slm_block_q4_0);
}

/* ====================== 4-bit with min: x = q * d + m */

void slm_quantize_row_q4_1_ref(const float *restrict x, void *restrict vy, int64_t k) {
    const int qk = SLM_QK4_1;
    SLM_ASSERT(k % qk == 0);
    const int64_t nb = k / qk;
    slm_block_q4_1 *restrict y = vy;

    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * qk;
        float min = FLT_MAX;
        float max = -FLT_MAX;
        for (int j = 0; j < qk; j++) {
            const float v = xb[j];
            if (v < min) min = v;
            if (v > max) max = v;
        }

        const float d = (max - min) / ((1 << 4) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = slm_f32_to_f16(d);
        y[i].m = slm_f32_to_f16(min);

        for (int j = 0; j < qk / 2; ++j) {
            const float x0 = (xb[0 + j] - min) * id;
            const float x1 = (xb[qk / 2 + j] - min) * id;
            const uint8_t xi0 = (uint8_t)SLM_MIN(15, (int8_t)slm_cvtt_i32(x0 + 0.5f));
            const uint8_t xi1 = (uint8_t)SLM_MIN(15, (int8_t)slm_cvtt_i32(x1 + 0.5f));
            y[i].qs[j] = (uint8_t)(xi0 | (xi1 << 4));
        }
    }
}

void slm_dequantize_row_q4_1(const void *restrict vx, float *restrict y, int64_t k) {
    const int qk = SLM_QK4_1;
    SLM_ASSERT(k % qk == 0);
    const int64_t nb = k / qk;
    const slm_block_q4_1 *restrict x = vx;

    for (int64_t i = 0; i < nb; i++) {
        const float d = slm_f16_to_f32(x[i].d);
        const float m = slm_f16_to_f32(x[i].m);
        for (int j = 0; j < qk / 2; ++j) {
            const int x0 = (x[i].qs[j] & 0x0F);
            const int x1 = (x[i].qs[j] >> 4);
            y[i * qk + j + 0] = x0 * d + m;
            y[i * qk + j + qk / 2] = x1 * d + m;
        }
    }
}

/* ggml's quantize_row_q4_1_impl: make_qkx3_quants with nmax 15, weights
 * qw * sqrt(sigma2 + x^2), sigma2 the row's mean x^2. With AVX2, 8 blocks at a time. */
static void quantize_row_q4_1_impl(const float *restrict x, slm_block_q4_1 *restrict y, int64_t n_per_row,
                                   const float *restrict quant_weights, int avx2) {
    float weight[8 * SLM_QK4_1];
    uint8_t L[8 * SLM_QK4_1], Laux[SLM_QK4_1];
    const float sigma2 = row_sigma2(x, n_per_row);
    const int64_t nb = n_per_row / SLM_QK4_1;
    int64_t ib = 0;
#if SLM_X86_KERNELS
    for (; avx2 && ib + 8 <= nb; ib += 8) {
        float scales[8];
        weights_8x32_avx2(weight, x + SLM_QK4_1 * ib, quant_weights + SLM_QK4_1 * ib, sigma2);
        float mins[8];
        slm_make_qkx3_quants_8x32(15, x + SLM_QK4_1 * ib, weight, L, scales, mins, -0.9f, 0.05f, 36);
        for (int b = 0; b < 8; b++) {
            y[ib + b].d = slm_f32_to_f16(scales[b]);
            y[ib + b].m = slm_f32_to_f16(-mins[b]);
            pack_nibbles(y[ib + b].qs, L + 32 * b);
        }
    }
#endif
    SLM_UNUSED(avx2);
    for (; ib < nb; ++ib) {
        const float *xb = x + SLM_QK4_1 * ib;
        block_weights(weight, xb, quant_weights + SLM_QK4_1 * ib, sigma2);
        float min;
        const float d = slm_make_qkx3_quants(SLM_QK4_1, 15, xb, weight, L, &min, Laux, -0.9f, 0.05f, 36, 0);
        y[ib].d = slm_f32_to_f16(d);
        y[ib].m = slm_f32_to_f16(-min);
        pack_nibbles(y[ib].qs, L);
    }
}

size_t slm_quantize_q4_1_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                const float *imatrix, slm_quant_kernel kernel) {
    SLM_ASSERT(n_per_row % SLM_QK4_1 == 0);
    const int64_t nb = n_per_row / SLM_QK4_1;
    const int avx2 = slm_quant_use_avx2(kernel);
    slm_block_q4_1 *y = dst;
    if (!imatrix) {
#if SLM_X86_KERNELS
        if (avx2) {
            quantize_row_q4_1_avx2(src, y, nrow * nb);
            return (size_t)(nrow * nb) * sizeof(slm_block_q4_1);
        }
#endif
        slm_quantize_row_q4_1_ref(src, y, nrow * n_per_row);
        return (size_t)(nrow * nb) * sizeof(slm_block_q4_1);
    }
    for (int64_t row = 0; row < nrow; ++row) {
        quantize_row_q4_1_impl(src + row * n_per_row, y + row * nb, n_per_row, imatrix, avx2);
    }
    return (size_t)(nrow * nb) * sizeof(slm_block_q4_1);
}

/* ====================== 5-bit, symmetric: x = (q - 16) * d */

/* Packs 32 5-bit codes: low nibbles into qs (value j low, value j+16 high), 5th bits into qh. */
static void pack_q5(uint8_t qs[16], uint8_t qh_out[4], const uint8_t *L) {
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
        const uint8_t xi0 = L[j];
        const uint8_t xi1 = L[j + 16];
        qs[j] = (uint8_t)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
        /* the 5th bit of value j goes to bit j of qh */
        qh |= ((xi0 & 0x10u) >> 4) << (j + 0);
        qh |= ((xi1 & 0x10u) >> 4) << (j + 16);
    }
    memcpy(qh_out, &qh, sizeof qh);
}

void slm_quantize_row_q5_0_ref(const float *restrict x, void *restrict vy, int64_t k) {
    const int qk = SLM_QK5_0;
    SLM_ASSERT(k % qk == 0);
    const int64_t nb = k / qk;
    slm_block_q5_0 *restrict y = vy;

    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * qk;
        float amax = 0.0f;
        float max = 0.0f;
        for (int j = 0; j < qk; j++) {
            const float v = xb[j];
            if (amax < fabsf(v)) {
                amax = fabsf(v);
                max = v;
            }
        }

        const float d = max / -16;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = slm_f32_to_f16(d);

        uint8_t L[SLM_QK5_0];
        for (int j = 0; j < qk / 2; ++j) {
            const float x0 = xb[0 + j] * id;
            const float x1 = xb[qk / 2 + j] * id;
            L[j] = (uint8_t)SLM_MIN(31, (int8_t)slm_cvtt_i32(x0 + 16.5f));
            L[j + qk / 2] = (uint8_t)SLM_MIN(31, (int8_t)slm_cvtt_i32(x1 + 16.5f));
        }
        pack_q5(y[i].qs, y[i].qh, L);
    }
}

void slm_dequantize_row_q5_0(const void *restrict vx, float *restrict y, int64_t k) {
    const int qk = SLM_QK5_0;
    SLM_ASSERT(k % qk == 0);
    const int64_t nb = k / qk;
    const slm_block_q5_0 *restrict x = vx;

    for (int64_t i = 0; i < nb; i++) {
        const float d = slm_f16_to_f32(x[i].d);
        uint32_t qh;
        memcpy(&qh, x[i].qh, sizeof qh);
        for (int j = 0; j < qk / 2; ++j) {
            const uint8_t xh_0 = ((qh >> (j + 0)) << 4) & 0x10;
            const uint8_t xh_1 = ((qh >> (j + 12))) & 0x10;
            const int32_t x0 = ((x[i].qs[j] & 0x0F) | xh_0) - 16;
            const int32_t x1 = ((x[i].qs[j] >> 4) | xh_1) - 16;
            y[i * qk + j + 0] = x0 * d;
            y[i * qk + j + qk / 2] = x1 * d;
        }
    }
}

/* ggml's quantize_row_q5_0_impl: make_qx_quants with nmax 16, weights
 * qw * sqrt(sigma2 + x^2), sigma2 the row's mean x^2. With AVX2, 8 blocks at a time. */
static void quantize_row_q5_0_impl(const float *restrict x, slm_block_q5_0 *restrict y, int64_t n_per_row,
                                   const float *restrict quant_weights, int avx2) {
    float weight[8 * SLM_QK5_0];
    int8_t L[8 * SLM_QK5_0];
    const float sigma2 = row_sigma2(x, n_per_row);
    const int64_t nb = n_per_row / SLM_QK5_0;
    int64_t ib = 0;
#if SLM_X86_KERNELS
    for (; avx2 && ib + 8 <= nb; ib += 8) {
        float scales[8];
        weights_8x32_avx2(weight, x + SLM_QK5_0 * ib, quant_weights + SLM_QK5_0 * ib, sigma2);
        slm_make_qx_quants_8x32(16, x + SLM_QK5_0 * ib, weight, L, scales);
        for (int b = 0; b < 8; b++) {
            y[ib + b].d = slm_f32_to_f16(scales[b]);
            pack_q5(y[ib + b].qs, y[ib + b].qh, (const uint8_t *)L + 32 * b);
        }
    }
#endif
    SLM_UNUSED(avx2);
    for (; ib < nb; ++ib) {
        const float *xb = x + SLM_QK5_0 * ib;
        block_weights(weight, xb, quant_weights + SLM_QK5_0 * ib, sigma2);
        const float d = slm_make_qx_quants(SLM_QK5_0, 16, xb, L, 1, weight);
        y[ib].d = slm_f32_to_f16(d);
        pack_q5(y[ib].qs, y[ib].qh, (const uint8_t *)L);
    }
}

size_t slm_quantize_q5_0_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                const float *imatrix, slm_quant_kernel kernel) {
    SLM_ASSERT(n_per_row % SLM_QK5_0 == 0);
    const int64_t nb = n_per_row / SLM_QK5_0;
    const int avx2 = slm_quant_use_avx2(kernel);
    slm_block_q5_0 *y = dst;
    if (!imatrix) {
#if SLM_X86_KERNELS
        if (avx2) {
            quantize_row_q5_0_avx2(src, y, nrow * nb);
            return (size_t)(nrow * nb) * sizeof(slm_block_q5_0);
        }
#endif
        slm_quantize_row_q5_0_ref(src, y, nrow * n_per_row);
        return (size_t)(nrow * nb) * sizeof(slm_block_q5_0);
    }
    for (int64_t row = 0; row < nrow; ++row) {
        quantize_row_q5_0_impl(src + row * n_per_row, y + row * nb, n_per_row, imatrix, avx2);
    }
    return (size_t)(nrow * nb) * sizeof(slm_block_q5_0);
}

/* ====================== 5-bit with min: x = q * d + m */

void slm_quantize_row_q5_1_ref(const float *restrict x, void *restrict vy, int64_t k) {
    const int qk = SLM_QK5_1;
    SLM_ASSERT(k % qk == 0);
    const int64_t nb = k / qk;
    slm_block_q5_1 *restrict y = vy;

    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * qk;
        float min = FLT_MAX;
        float max = -FLT_MAX;
        for (int j = 0; j < qk; j++) {
            const float v = xb[j];
            if (v < min) min = v;
            if (v > max) max = v;
        }

        const float d = (max - min) / ((1 << 5) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = slm_f32_to_f16(d);
        y[i].m = slm_f32_to_f16(min);

        uint8_t L[SLM_QK5_1];
        for (int j = 0; j < qk / 2; ++j) {
            const float x0 = (xb[0 + j] - min) * id;
            const float x1 = (xb[qk / 2 + j] - min) * id;
            L[j] = (uint8_t)slm_cvtt_i32(x0 + 0.5f);
            L[j + qk / 2] = (uint8_t)slm_cvtt_i32(x1 + 0.5f);
        }
        pack_q5(y[i].qs, y[i].qh, L);
    }
}

void slm_dequantize_row_q5_1(const void *restrict vx, float *restrict y, int64_t k) {
    const int qk = SLM_QK5_1;
    SLM_ASSERT(k % qk == 0);
    const int64_t nb = k / qk;
    const slm_block_q5_1 *restrict x = vx;

    for (int64_t i = 0; i < nb; i++) {
        const float d = slm_f16_to_f32(x[i].d);
        const float m = slm_f16_to_f32(x[i].m);
        uint32_t qh;
        memcpy(&qh, x[i].qh, sizeof qh);
        for (int j = 0; j < qk / 2; ++j) {
            const uint8_t xh_0 = ((qh >> (j + 0)) << 4) & 0x10;
            const uint8_t xh_1 = ((qh >> (j + 12))) & 0x10;
            const int x0 = (x[i].qs[j] & 0x0F) | xh_0;
            const int x1 = (x[i].qs[j] >> 4) | xh_1;
            y[i * qk + j + 0] = x0 * d + m;
            y[i * qk + j + qk / 2] = x1 * d + m;
        }
    }
}

/* ggml's quantize_row_q5_1_impl: make_qkx3_quants with nmax 31, weights
 * qw * sqrt(sigma2 + x^2), sigma2 the row's mean x^2. With AVX2, 8 blocks at a time. */
static void quantize_row_q5_1_impl(const float *restrict x, slm_block_q5_1 *restrict y, int64_t n_per_row,
                                   const float *restrict quant_weights, int avx2) {
    float weight[8 * SLM_QK5_1];
    uint8_t L[8 * SLM_QK5_1], Laux[SLM_QK5_1];
    const float sigma2 = row_sigma2(x, n_per_row);
    const int64_t nb = n_per_row / SLM_QK5_1;
    int64_t ib = 0;
#if SLM_X86_KERNELS
    for (; avx2 && ib + 8 <= nb; ib += 8) {
        float scales[8];
        weights_8x32_avx2(weight, x + SLM_QK5_1 * ib, quant_weights + SLM_QK5_1 * ib, sigma2);
        float mins[8];
        slm_make_qkx3_quants_8x32(31, x + SLM_QK5_1 * ib, weight, L, scales, mins, -0.9f, 0.05f, 36);
        for (int b = 0; b < 8; b++) {
            y[ib + b].d = slm_f32_to_f16(scales[b]);
            y[ib + b].m = slm_f32_to_f16(-mins[b]);
            pack_q5(y[ib + b].qs, y[ib + b].qh, L + 32 * b);
        }
    }
#endif
    SLM_UNUSED(avx2);
    for (; ib < nb; ++ib) {
        const float *xb = x + SLM_QK5_1 * ib;
        block_weights(weight, xb, quant_weights + SLM_QK5_1 * ib, sigma2);
        float min;
        const float d = slm_make_qkx3_quants(SLM_QK5_1, 31, xb, weight, L, &min, Laux, -0.9f, 0.05f, 36, 0);
        y[ib].d = slm_f32_to_f16(d);
        y[ib].m = slm_f32_to_f16(-min);
        pack_q5(y[ib].qs, y[ib].qh, L);
    }
}

size_t slm_quantize_q5_1_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                const float *imatrix, slm_quant_kernel kernel) {
    SLM_ASSERT(n_per_row % SLM_QK5_1 == 0);
    const int64_t nb = n_per_row / SLM_QK5_1;
    const int avx2 = slm_quant_use_avx2(kernel);
    slm_block_q5_1 *y = dst;
    if (!imatrix) {
#if SLM_X86_KERNELS
        if (avx2) {
            quantize_row_q5_1_avx2(src, y, nrow * nb);
            return (size_t)(nrow * nb) * sizeof(slm_block_q5_1);
        }
#endif
        slm_quantize_row_q5_1_ref(src, y, nrow * n_per_row);
        return (size_t)(nrow * nb) * sizeof(slm_block_q5_1);
    }
    for (int64_t row = 0; row < nrow; ++row) {
        quantize_row_q5_1_impl(src + row * n_per_row, y + row * nb, n_per_row, imatrix, avx2);
    }
    return (size_t)(nrow * nb) * sizeof(slm_block_q5_1);
}

/* ====================== 8-bit: x = q * d */

void slm_quantize_row_q8_0_ref(const float *restrict x, void *restrict vy, int64_t k) {
    SLM_ASSERT(k % SLM_QK8_0 == 0);
    const int64_t nb = k / SLM_QK8_0;
    slm_block_q8_0 *restrict y = vy;

    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * SLM_QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < SLM_QK8_0; j++) amax = SLM_MAX(amax, fabsf(xb[j]));

        const float d = amax / ((1 << 7) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = slm_f32_to_f16(d);

        for (int j = 0; j < SLM_QK8_0; ++j) y[i].qs[j] = (int8_t)slm_cvtt_i32(roundf(xb[j] * id));
    }
}

void slm_dequantize_row_q8_0(const void *restrict vx, float *restrict y, int64_t k) {
    const int qk = SLM_QK8_0;
    SLM_ASSERT(k % qk == 0);
    const int64_t nb = k / qk;
    const slm_block_q8_0 *restrict x = vx;

    for (int64_t i = 0; i < nb; i++) {
        const float d = slm_f16_to_f32(x[i].d);
        for (int j = 0; j < qk; ++j) y[i * qk + j] = x[i].qs[j] * d;
    }
}

void slm_quantize_row_q8_0(const float *restrict x, void *restrict vy, int64_t k) {
    SLM_ASSERT(k % SLM_QK8_0 == 0);
    const int64_t nb = k / SLM_QK8_0;
    slm_block_q8_0 *restrict y = vy;

    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * SLM_QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < SLM_QK8_0; j++) amax = fmaxf(amax, fabsf(xb[j]));
        y[i].d = slm_f32_to_f16(amax / 127.f);
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        for (int j = 0; j < SLM_QK8_0; ++j) y[i].qs[j] = (int8_t)slm_cvtt_i32(rintf(xb[j] * id)); /* half to even */
    }
}

void slm_quantize_row_q8_1(const float *restrict x, void *restrict vy, int64_t k) {
    SLM_ASSERT(k % SLM_QK8_1 == 0);
    const int64_t nb = k / SLM_QK8_1;
    slm_block_q8_1 *restrict y = vy;

    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * SLM_QK8_1;
        float amax = 0.0f;
        for (int j = 0; j < SLM_QK8_1; j++) amax = fmaxf(amax, fabsf(xb[j]));
        const float d = amax / 127.f;
        y[i].d = slm_f32_to_f16(d);
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        int sum = 0;
        for (int j = 0; j < SLM_QK8_1; ++j) {
            const int32_t q = slm_cvtt_i32(rintf(xb[j] * id)); /* half to even */
            sum += q;
            y[i].qs[j] = (int8_t)q;
        }
        y[i].s = slm_f32_to_f16(d * (float)sum);
    }
}

void slm_dequantize_row_q8_1(const void *restrict vx, float *restrict y, int64_t k) {
    SLM_ASSERT(k % SLM_QK8_1 == 0);
    const slm_block_q8_1 *restrict x = vx;
    for (int64_t i = 0; i < k / SLM_QK8_1; i++) {
        const float d = slm_f16_to_f32(x[i].d);
        for (int j = 0; j < SLM_QK8_1; ++j) y[i * SLM_QK8_1 + j] = x[i].qs[j] * d;
    }
}

/* ggml ignores the importance weights for q8_0 (golden: blocks_imatrix == blocks). */
size_t slm_quantize_q8_0_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                const float *imatrix, slm_quant_kernel kernel) {
    SLM_UNUSED(imatrix);
    SLM_ASSERT(n_per_row % SLM_QK8_0 == 0);
    const size_t row_size = (size_t)(n_per_row / SLM_QK8_0) * sizeof(slm_block_q8_0);
#if SLM_X86_KERNELS
    if (slm_quant_use_avx2(kernel)) {
        quantize_row_q8_0_avx2(src, dst, nrow * (n_per_row / SLM_QK8_0));
        return (size_t)nrow * row_size;
    }
#endif
    slm_quantize_row_q8_0_ref(src, dst, nrow * n_per_row);
    return (size_t)nrow * row_size;
}

/* ====================== AVX2: one block of 32 in four __m256
 *
 * Per element the same float operations as the _ref code (x * id, + 8.5f, roundf), so the bytes
 * are identical. The block maximum is a max-reduction, exact because max is associative on
 * non-NaN values; a block holding a NaN (where ggml's sequential compare is order-dependent)
 * goes through the scalar _ref code. C's (int8_t)(float) cast is x86's cvttps (INT32_MIN out
 * of range) plus the low byte, as in slm_cvtt_i32.
 */
#if SLM_X86_KERNELS
/* Loads a block of 32; returns 0 if it holds a NaN. *amax = max |x|. */
static inline SLM_AVX2 int load_block_32(const float *restrict x, __m256 v[4], float *amax) {
    for (int k = 0; k < 4; k++) v[k] = _mm256_loadu_ps(x + 8 * k);
    __m256 nan = _mm256_or_ps(_mm256_cmp_ps(v[0], v[1], _CMP_UNORD_Q), _mm256_cmp_ps(v[2], v[3], _CMP_UNORD_Q));
    if (_mm256_movemask_ps(nan)) return 0;
    __m256 m = _mm256_max_ps(_mm256_max_ps(slm_abs_x8(v[0]), slm_abs_x8(v[1])),
                             _mm256_max_ps(slm_abs_x8(v[2]), slm_abs_x8(v[3])));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
    *amax = _mm_cvtss_f32(h);
    return 1;
}

/* roundf in every lane (half away from zero): v - trunc(v) is exact, so compare it with 0.5. */
static inline SLM_AVX2 __m256 roundf_x8(__m256 v) {
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 half = _mm256_cmp_ps(slm_abs_x8(_mm256_sub_ps(v, t)), _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    const __m256 one = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(v, _mm256_set1_ps(-0.0f)));
    return _mm256_add_ps(t, _mm256_and_ps(half, one));
}

/* Low bytes of the 8 int32 lanes of a, b, c, d (in that order) to dst[0..31]. */
static inline SLM_AVX2 void store_bytes_x32(uint8_t *dst, __m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i lo = _mm256_set1_epi32(0xff);
    __m256i ab = _mm256_packus_epi32(_mm256_and_si256(a, lo), _mm256_and_si256(b, lo)); /* a0-3 b0-3 a4-7 b4-7 */
    __m256i cd = _mm256_packus_epi32(_mm256_and_si256(c, lo), _mm256_and_si256(d, lo));
    __m256i abcd = _mm256_packus_epi16(ab, cd); /* a0-3 b0-3 c0-3 d0-3 | a4-7 b4-7 c4-7 d4-7 */
    abcd = _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)(void *)dst, abcd);
}

static SLM_AVX2 void quantize_row_q8_0_avx2(const float *restrict x, slm_block_q8_0 *restrict y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * SLM_QK8_0;
        __m256 v[4];
        float amax;
        if (!load_block_32(xb, v, &amax)) {
            slm_quantize_row_q8_0_ref(xb, &y[i], SLM_QK8_0);
            continue;
        }
        const float d = amax / ((1 << 7) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = slm_f32_to_f16(d);
        const __m256 vid = _mm256_set1_ps(id);
        __m256i q[4];
        for (int k = 0; k < 4; k++) q[k] = _mm256_cvttps_epi32(roundf_x8(_mm256_mul_ps(v[k], vid)));
        store_bytes_x32((uint8_t *)y[i].qs, q[0], q[1], q[2], q[3]);
    }
}

/* Bit k of the result: lane k%8 of v[k/8] equals `value` (float compare). */
static inline SLM_AVX2 uint32_t equal_mask_32(const __m256 v[4], __m256 value) {
    uint32_t hit = 0;
    for (int k = 3; k >= 0; k--)
        hit = (hit << 8) | (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(v[k], value, _CMP_EQ_OQ));
    return hit;
}

/* The `max` of q4_0/q5_0's scan (`if (amax < fabsf(v)) { amax = fabsf(v); max = v; }`): the first
 * value whose |x| is the block maximum amax, or +0.0 when all are zero. */
static inline SLM_AVX2 float first_absmax(const float *restrict xb, const __m256 v[4], float amax) {
    if (!(amax > 0)) return 0.0f;
    __m256 a[4];
    for (int k = 0; k < 4; k++) a[k] = slm_abs_x8(v[k]);
    return xb[__builtin_ctz(equal_mask_32(a, _mm256_set1_ps(amax)))];
}

/* Loads a block of 32 and finds q4_1/q5_1's min and max (`if (v < min) min = v` from FLT_MAX, and
 * `if (v > max) max = v` from -FLT_MAX): the first value equal to the extreme (the sign of a zero
 * depends on it), FLT_MAX / -FLT_MAX when every value is +inf / -inf. Returns 0 for a NaN block. */
static inline SLM_AVX2 int load_block_minmax(const float *restrict xb, __m256 v[4], float *min, float *max) {
    for (int k = 0; k < 4; k++) v[k] = _mm256_loadu_ps(xb + 8 * k);
    __m256 nan = _mm256_or_ps(_mm256_cmp_ps(v[0], v[1], _CMP_UNORD_Q), _mm256_cmp_ps(v[2], v[3], _CMP_UNORD_Q));
    if (_mm256_movemask_ps(nan)) return 0;
    __m256 lo = _mm256_min_ps(_mm256_min_ps(v[0], v[1]), _mm256_min_ps(v[2], v[3]));
    __m256 hi = _mm256_max_ps(_mm256_max_ps(v[0], v[1]), _mm256_max_ps(v[2], v[3]));
    __m128 l = _mm_min_ps(_mm256_castps256_ps128(lo), _mm256_extractf128_ps(lo, 1));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(hi), _mm256_extractf128_ps(hi, 1));
    l = _mm_min_ps(l, _mm_movehl_ps(l, l));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    const float vmin = _mm_cvtss_f32(_mm_min_ss(l, _mm_shuffle_ps(l, l, 1)));
    const float vmax = _mm_cvtss_f32(_mm_max_ss(h, _mm_shuffle_ps(h, h, 1)));
    *min = vmin < FLT_MAX ? xb[__builtin_ctz(equal_mask_32(v, _mm256_set1_ps(vmin)))] : FLT_MAX;
    *max = vmax > -FLT_MAX ? xb[__builtin_ctz(equal_mask_32(v, _mm256_set1_ps(vmax)))] : -FLT_MAX;
    return 1;
}

/* (int8_t) of a float, as x86 executes the C cast: cvttps, then the low byte sign-extended. */
static inline SLM_AVX2 __m256i cvtt_i8_x8(__m256 f) {
    return _mm256_srai_epi32(_mm256_slli_epi32(_mm256_cvttps_epi32(f), 24), 24);
}

/* q5_0/q5_1 packing of 32 codes c[0..3] (lanes = values 0..31): low nibbles as q4_0, bit 4 of
 * value j to bit j of qh. */
static inline SLM_AVX2 void pack_q5_x32(uint8_t *restrict qs, uint8_t *restrict qh_out, const __m256i c[4]) {
    const __m256i nib = _mm256_set1_epi32(0x0F);
    const __m256i b0 = _mm256_or_si256(_mm256_and_si256(c[0], nib), _mm256_slli_epi32(_mm256_and_si256(c[2], nib), 4));
    const __m256i b1 = _mm256_or_si256(_mm256_and_si256(c[1], nib), _mm256_slli_epi32(_mm256_and_si256(c[3], nib), 4));
    slm_store_bytes_x16(qs, b0, b1);
    uint32_t qh = 0;
    for (int k = 0; k < 4; k++) {
        qh |= (uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_slli_epi32(c[k], 27))) << (8 * k);
    }
    memcpy(qh_out, &qh, sizeof qh);
}

/* MIN(15, (int8_t)(v * id + 8.5f)) in every lane, as int32. */
static inline SLM_AVX2 __m256i q4_0_code_x8(__m256 v, __m256 vid) {
    return _mm256_min_epi32(_mm256_set1_epi32(15),
                            cvtt_i8_x8(_mm256_add_ps(_mm256_mul_ps(v, vid), _mm256_set1_ps(8.5f))));
}

static SLM_AVX2 void quantize_row_q4_0_avx2(const float *restrict x, slm_block_q4_0 *restrict y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * SLM_QK4_0;
        __m256 v[4];
        float amax;
        if (!load_block_32(xb, v, &amax)) {
            slm_quantize_row_q4_0_ref(xb, &y[i], SLM_QK4_0);
            continue;
        }
        const float d = first_absmax(xb, v, amax) / -8;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = slm_f32_to_f16(d);
        const __m256 vid = _mm256_set1_ps(id);
        __m256i b0 = _mm256_or_si256(q4_0_code_x8(v[0], vid), _mm256_slli_epi32(q4_0_code_x8(v[2], vid), 4));
        __m256i b1 = _mm256_or_si256(q4_0_code_x8(v[1], vid), _mm256_slli_epi32(q4_0_code_x8(v[3], vid), 4));
        slm_store_bytes_x16(y[i].qs, b0, b1);
    }
}

static SLM_AVX2 void quantize_row_q5_0_avx2(const float *restrict x, slm_block_q5_0 *restrict y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * SLM_QK5_0;
        __m256 v[4];
        float amax;
        if (!load_block_32(xb, v, &amax)) {
            slm_quantize_row_q5_0_ref(xb, &y[i], SLM_QK5_0);
            continue;
        }
        const float d = first_absmax(xb, v, amax) / -16;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = slm_f32_to_f16(d);
        const __m256 vid = _mm256_set1_ps(id);
        __m256i c[4]; /* MIN(31, (int8_t)(x * id + 16.5f)) */
        for (int k = 0; k < 4; k++) {
            c[k] = _mm256_min_epi32(_mm256_set1_epi32(31),
                                    cvtt_i8_x8(_mm256_add_ps(_mm256_mul_ps(v[k], vid), _mm256_set1_ps(16.5f))));
        }
        pack_q5_x32(y[i].qs, y[i].qh, c);
    }
}

static SLM_AVX2 void quantize_row_q4_1_avx2(const float *restrict x, slm_block_q4_1 *restrict y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * SLM_QK4_1;
        __m256 v[4];
        float min, max;
        if (!load_block_minmax(xb, v, &min, &max)) {
            slm_quantize_row_q4_1_ref(xb, &y[i], SLM_QK4_1);
            continue;
        }
        const float d = (max - min) / ((1 << 4) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = slm_f32_to_f16(d);
        y[i].m = slm_f32_to_f16(min);
        const __m256 vid = _mm256_set1_ps(id), vmin = _mm256_set1_ps(min), half = _mm256_set1_ps(0.5f);
        __m256i c[4]; /* MIN(15, (int8_t)((x - min) * id + 0.5f)) */
        for (int k = 0; k < 4; k++) {
            c[k] = _mm256_min_epi32(_mm256_set1_epi32(15),
                                    cvtt_i8_x8(_mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(v[k], vmin), vid), half)));
        }
        slm_store_bytes_x16(y[i].qs, _mm256_or_si256(c[0], _mm256_slli_epi32(c[2], 4)),
                            _mm256_or_si256(c[1], _mm256_slli_epi32(c[3], 4)));
    }
}

static SLM_AVX2 void quantize_row_q5_1_avx2(const float *restrict x, slm_block_q5_1 *restrict y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * SLM_QK5_1;
        __m256 v[4];
        float min, max;
        if (!load_block_minmax(xb, v, &min, &max)) {
            slm_quantize_row_q5_1_ref(xb, &y[i], SLM_QK5_1);
            continue;
        }
        const float d = (max - min) / ((1 << 5) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = slm_f32_to_f16(d);
        y[i].m = slm_f32_to_f16(min);
        const __m256 vid = _mm256_set1_ps(id), vmin = _mm256_set1_ps(min), half = _mm256_set1_ps(0.5f);
        __m256i c[4]; /* (uint8_t)((x - min) * id + 0.5f): only the low byte is used */
        for (int k = 0; k < 4; k++)
            c[k] = _mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(v[k], vmin), vid), half));
        pack_q5_x32(y[i].qs, y[i].qh, c);
    }
}

/* block_weights for 8 consecutive blocks: weight[j] = qw[j] * sqrt(sigma2 + x[j]^2), j < 256. */
static SLM_AVX2 void weights_8x32_avx2(float *restrict weight, const float *restrict x, const float *restrict qw,
                                       float sigma2) {
    const __m256 vs = _mm256_set1_ps(sigma2);
    for (int j = 0; j < 256; j += 8) {
        const __m256 v = _mm256_loadu_ps(x + j);
        _mm256_storeu_ps(
            weight + j, _mm256_mul_ps(_mm256_loadu_ps(qw + j), _mm256_sqrt_ps(_mm256_add_ps(vs, _mm256_mul_ps(v, v)))));
    }
}

#endif /* SLM_X86_KERNELS */
