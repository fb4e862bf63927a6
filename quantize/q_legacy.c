/* q_legacy.c - ggml's legacy 32-element block formats: q4_0 q4_1 q5_0 q5_1 q8_0.
 *
 * Owns: slm_quantize_row_<t>_ref, slm_dequantize_row_<t>, slm_quantize_<t> with ggml's
 * importance-weighted _impl paths, each reproducing ggml's bytes exactly: same float
 * expressions in the same order, float32 only, no fused multiply-add.
 * Must not: reorder or "simplify" a float expression (the golden tests compare bytes), allocate,
 * print, or know about files. The shared solvers live in q_kquants.c.
 */
#include "quantize/quants.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "core/dtype.h"
#include "core/slm.h"

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
static void block_weights(float *restrict weight, const float *restrict xb, const float *restrict qw,
                          float sigma2) {
    for (int j = 0; j < 32; ++j) weight[j] = qw[j] * sqrtf(sigma2 + xb[j] * xb[j]);
}

static void quantize_row_q4_0_impl(const float *restrict x, slm_block_q4_0 *restrict y, int64_t n_per_row,
                                   const float *restrict quant_weights) {
    float weight[SLM_QK4_0];
    int8_t L[SLM_QK4_0];
    const float sigma2 = row_sigma2(x, n_per_row);
    const int64_t nb = n_per_row / SLM_QK4_0;
    for (int64_t ib = 0; ib < nb; ++ib) {
        const float *xb = x + SLM_QK4_0 * ib;
        block_weights(weight, xb, quant_weights + SLM_QK4_0 * ib, sigma2);
        const float d = slm_make_qx_quants(SLM_QK4_0, 8, xb, L, 1, weight);
        y[ib].d = slm_f32_to_f16(d);
        for (int j = 0; j < 16; ++j) y[ib].qs[j] = (uint8_t)(L[j] | (L[j + 16] << 4));
    }
}

size_t slm_quantize_q4_0(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                         const float *imatrix) {
    SLM_ASSERT(n_per_row % SLM_QK4_0 == 0);
    const size_t row_size = (size_t)(n_per_row / SLM_QK4_0) * sizeof(slm_block_q4_0);
    if (!imatrix) {
        slm_quantize_row_q4_0_ref(src, dst, nrow * n_per_row);
        return (size_t)nrow * row_size;
    }
    char *qrow = dst;
    for (int64_t row = 0; row < nrow; ++row) {
        quantize_row_q4_0_impl(src, (slm_block_q4_0 *)qrow, n_per_row, imatrix);
        src += n_per_row;
        qrow += row_size;
    }
    return (size_t)nrow * row_size;
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

static void quantize_row_q4_1_impl(const float *restrict x, slm_block_q4_1 *restrict y, int64_t n_per_row,
                                   const float *restrict quant_weights) {
    float weight[SLM_QK4_1];
    uint8_t L[SLM_QK4_1], Laux[SLM_QK4_1];
    const float sigma2 = row_sigma2(x, n_per_row);
    const int64_t nb = n_per_row / SLM_QK4_1;
    for (int64_t ib = 0; ib < nb; ++ib) {
        const float *xb = x + SLM_QK4_1 * ib;
        block_weights(weight, xb, quant_weights + SLM_QK4_1 * ib, sigma2);
        float min;
        const float d = slm_make_qkx3_quants(SLM_QK4_1, 15, xb, weight, L, &min, Laux, -0.9f, 0.05f, 36, 0);
        y[ib].d = slm_f32_to_f16(d);
        y[ib].m = slm_f32_to_f16(-min);
        for (int j = 0; j < 16; ++j) y[ib].qs[j] = (uint8_t)(L[j] | (L[j + 16] << 4));
    }
}

size_t slm_quantize_q4_1(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                         const float *imatrix) {
    SLM_ASSERT(n_per_row % SLM_QK4_1 == 0);
    const size_t row_size = (size_t)(n_per_row / SLM_QK4_1) * sizeof(slm_block_q4_1);
    if (!imatrix) {
        slm_quantize_row_q4_1_ref(src, dst, nrow * n_per_row);
        return (size_t)nrow * row_size;
    }
    char *qrow = dst;
    for (int64_t row = 0; row < nrow; ++row) {
        quantize_row_q4_1_impl(src, (slm_block_q4_1 *)qrow, n_per_row, imatrix);
        src += n_per_row;
        qrow += row_size;
    }
    return (size_t)nrow * row_size;
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

static void quantize_row_q5_0_impl(const float *restrict x, slm_block_q5_0 *restrict y, int64_t n_per_row,
                                   const float *restrict quant_weights) {
    float weight[SLM_QK5_0];
    int8_t L[SLM_QK5_0];
    const float sigma2 = row_sigma2(x, n_per_row);
    const int64_t nb = n_per_row / SLM_QK5_0;
    for (int64_t ib = 0; ib < nb; ++ib) {
        const float *xb = x + SLM_QK5_0 * ib;
        block_weights(weight, xb, quant_weights + SLM_QK5_0 * ib, sigma2);
        const float d = slm_make_qx_quants(SLM_QK5_0, 16, xb, L, 1, weight);
        y[ib].d = slm_f32_to_f16(d);
        uint8_t Lu[SLM_QK5_0];
        for (int j = 0; j < SLM_QK5_0; ++j) Lu[j] = (uint8_t)L[j];
        pack_q5(y[ib].qs, y[ib].qh, Lu);
    }
}

size_t slm_quantize_q5_0(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                         const float *imatrix) {
    SLM_ASSERT(n_per_row % SLM_QK5_0 == 0);
    const size_t row_size = (size_t)(n_per_row / SLM_QK5_0) * sizeof(slm_block_q5_0);
    if (!imatrix) {
        slm_quantize_row_q5_0_ref(src, dst, nrow * n_per_row);
        return (size_t)nrow * row_size;
    }
    char *qrow = dst;
    for (int64_t row = 0; row < nrow; ++row) {
        quantize_row_q5_0_impl(src, (slm_block_q5_0 *)qrow, n_per_row, imatrix);
        src += n_per_row;
        qrow += row_size;
    }
    return (size_t)nrow * row_size;
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

static void quantize_row_q5_1_impl(const float *restrict x, slm_block_q5_1 *restrict y, int64_t n_per_row,
                                   const float *restrict quant_weights) {
    float weight[SLM_QK5_1];
    uint8_t L[SLM_QK5_1], Laux[SLM_QK5_1];
    const float sigma2 = row_sigma2(x, n_per_row);
    const int64_t nb = n_per_row / SLM_QK5_1;
    for (int64_t ib = 0; ib < nb; ++ib) {
        const float *xb = x + SLM_QK5_1 * ib;
        block_weights(weight, xb, quant_weights + SLM_QK5_1 * ib, sigma2);
        float min;
        const float d = slm_make_qkx3_quants(SLM_QK5_1, 31, xb, weight, L, &min, Laux, -0.9f, 0.05f, 36, 0);
        y[ib].d = slm_f32_to_f16(d);
        y[ib].m = slm_f32_to_f16(-min);
        pack_q5(y[ib].qs, y[ib].qh, L);
    }
}

size_t slm_quantize_q5_1(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                         const float *imatrix) {
    SLM_ASSERT(n_per_row % SLM_QK5_1 == 0);
    const size_t row_size = (size_t)(n_per_row / SLM_QK5_1) * sizeof(slm_block_q5_1);
    if (!imatrix) {
        slm_quantize_row_q5_1_ref(src, dst, nrow * n_per_row);
        return (size_t)nrow * row_size;
    }
    char *qrow = dst;
    for (int64_t row = 0; row < nrow; ++row) {
        quantize_row_q5_1_impl(src, (slm_block_q5_1 *)qrow, n_per_row, imatrix);
        src += n_per_row;
        qrow += row_size;
    }
    return (size_t)nrow * row_size;
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

/* ggml ignores the importance weights for q8_0 (golden: blocks_imatrix == blocks). */
size_t slm_quantize_q8_0(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                         const float *imatrix) {
    SLM_UNUSED(imatrix);
    SLM_ASSERT(n_per_row % SLM_QK8_0 == 0);
    const size_t row_size = (size_t)(n_per_row / SLM_QK8_0) * sizeof(slm_block_q8_0);
    slm_quantize_row_q8_0_ref(src, dst, nrow * n_per_row);
    return (size_t)nrow * row_size;
}
