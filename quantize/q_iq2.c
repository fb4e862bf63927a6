/* q_iq2.c - ggml's 2-bit lattice formats iq2_xxs (2.0625 bpw), iq2_xs (2.3125 bpw) and iq2_s
 * (2.5625 bpw): groups of 8 values on an E8-style grid of 256, 512 or 1024 points, signs, and
 * 4-bit sub-block scales under one fp16 scale per 256 values.
 *
 * Owns: slm_quantize_<t>_kernel (ggml's quantize_<t>: quantize_row_<t>_impl per row),
 * slm_dequantize_row_<t>, slm_quantize_row_iq2_s_ref. ggml_quantize_chunk asserts importance
 * weights for iq2_xxs and iq2_xs, so those kernels SLM_ASSERT them (slm_quantize_tensor refuses the
 * call first); iq2_s has ggml's weightless formula. The search itself is q_iq_common.c's.
 * Must not: reorder float expressions, allocate, print, or know about files.
 */
#include <math.h>
#include <string.h>

#include "core/dtype.h"
#include "core/le.h"
#include "core/slm.h"
#include "quantize/q_iq_common.h"
#include "quantize/quants.h"

#define GROUP_MAX_EPS 1e-15f      /* ggml: a sub-block below this is all zero (iq2_xxs, iq2_xs) */
#define GROUP_MAX_EPS_IQ2_S 1e-8f /* the same for iq2_s */
#define KMAXQ 3                   /* levels per coordinate: positions 1, 3, 5 */

/* sum of x^2 over a super-block, ggml's order. */
static float sum_squares(const float *restrict x) {
    float sumx2 = 0;
    for (int i = 0; i < SLM_QK_K; ++i) sumx2 += x[i] * x[i];
    return sumx2;
}

static float max_of(const float *restrict v, int n) {
    float max = v[0];
    for (int i = 1; i < n; ++i) max = SLM_MAX(max, v[i]);
    return max;
}

/* weight[i] = qw[i] * sqrt(sigma2 + x[i]^2) and waux = sqrt(weight). */
static void importance(int n, const float *restrict x, const float *restrict qw, float sigma2, float *restrict weight,
                       float *restrict waux) {
    for (int i = 0; i < n; ++i) weight[i] = qw[i] * sqrtf(sigma2 + x[i] * x[i]);
    for (int i = 0; i < n; ++i) waux[i] = sqrtf(weight[i]);
}

/* ============================ iq2_xxs: 8 sub-blocks of 32 = 4 groups of 8, 256-point grid */

static void iq2_xxs_block(const slm_iq_search *sp, const float *restrict x, const float *restrict qw,
                          slm_block_iq2_xxs *restrict y) {
    float scales[SLM_QK_K / 32], weight[32], waux[32], xval[32];
    int8_t L[32];
    uint8_t signs[4];
    uint32_t q2[2 * (SLM_QK_K / 32)] = {0}; /* per sub-block: 4 grid bytes, then signs | scale << 28 */

    y->d = slm_f32_to_f16(0.f);
    float max_scale = 0;
    const float sigma2 = sum_squares(x) / SLM_QK_K;
    for (int ib = 0; ib < SLM_QK_K / 32; ++ib) {
        const float *xb = x + 32 * ib;
        importance(32, xb, qw + 32 * ib, sigma2, weight, waux);
        for (int k = 0; k < 4; ++k) signs[k] = slm_iq_signs_even(xb + 8 * k, weight + 8 * k, xval + 8 * k);
        scales[ib] = 0;
        if (max_of(xval, 32) < GROUP_MAX_EPS) continue;
        /* start from make_qp_quants' scale; the trials divide by its largest level instead of max */
        float scale = slm_make_qp_quants(32, KMAXQ + 1, xval, (uint8_t *)L, weight);
        const float eff_max = scale * KMAXQ;
        if (eff_max <= 0) continue;
        scale = slm_iq_search_scale(sp, xval, weight, waux, scale, eff_max, L);
        if (scale < 0) { /* ggml: "should never happen": flip the scale and the signs */
            scale = -scale;
            for (int k = 0; k < 4; ++k) signs[k] = (uint8_t)(~signs[k] & 127);
        }
        for (int k = 0; k < 4; ++k) {
            q2[2 * ib + 0] |= (uint32_t)slm_iq_grid_index(sp->lat, L + 8 * k) << 8 * k;
            q2[2 * ib + 1] |= (uint32_t)signs[k] << 7 * k;
        }
        scales[ib] = scale;
        max_scale = SLM_MAX(max_scale, scale);
    }
    if (!max_scale) {
        memset(y->qs, 0, sizeof y->qs);
        return;
    }
    const float d = max_scale / 31;
    y->d = slm_f32_to_f16(d);
    const float id = 1 / d;
    for (int ib = 0; ib < SLM_QK_K / 32; ++ib) q2[2 * ib + 1] |= (uint32_t)slm_iq_scale_code(id, scales[ib], 15) << 28;
    memcpy(y->qs, q2, sizeof y->qs);
}

size_t slm_quantize_iq2_xxs_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                   const float *imatrix, slm_quant_kernel kernel) {
    SLM_ASSERT(imatrix); /* ggml: "missing quantization weights" */
    SLM_ASSERT(n_per_row % SLM_QK_K == 0);
    const slm_iq_search sp = {slm_iq_lattice_get(SLM_IQ_GRID_IQ2_XXS), 32, KMAXQ, 6, 0.1f, SLM_IQ_REFIT_ALWAYS_ALL,
                              slm_quant_use_avx2(kernel)};
    const int64_t nblock = n_per_row / SLM_QK_K;
    slm_block_iq2_xxs *y = dst;
    for (int64_t row = 0; row < nrow; ++row) {
        for (int64_t ibl = 0; ibl < nblock; ++ibl) {
            iq2_xxs_block(&sp, src + SLM_QK_K * ibl, imatrix + SLM_QK_K * ibl, &y[ibl]);
        }
        src += n_per_row;
        y += nblock;
    }
    return (size_t)nrow * (size_t)nblock * sizeof(slm_block_iq2_xxs);
}

/* Sign of bit j of a sign byte, as ggml multiplies it: -1.f or 1.f. */
static inline float sign_of(uint8_t signs, int j) { return signs & (1u << j) ? -1.f : 1.f; }

static inline uint8_t grid_byte(uint64_t point, int j) { return (uint8_t)(point >> 8 * j); }

void slm_dequantize_row_iq2_xxs(const void *restrict vx, float *restrict y, int64_t k) {
    SLM_ASSERT(k % SLM_QK_K == 0);
    const slm_block_iq2_xxs *restrict x = vx;
    for (int64_t i = 0; i < k / SLM_QK_K; i++) {
        const float d = slm_f16_to_f32(x[i].d);
        const uint8_t *qs = (const uint8_t *)x[i].qs;
        for (int ib = 0; ib < SLM_QK_K / 32; ++ib) {
            const uint32_t grid_bytes = slm_le_u32(qs + 8 * ib), signs_scale = slm_le_u32(qs + 8 * ib + 4);
            const float db = d * (0.5f + (float)(signs_scale >> 28)) * 0.25f;
            for (int l = 0; l < 4; ++l) {
                const uint64_t point = slm_iq2xxs_grid[(grid_bytes >> 8 * l) & 255];
                const uint8_t signs = slm_ksigns_iq2xs[(signs_scale >> 7 * l) & 127];
                for (int j = 0; j < 8; ++j) y[j] = db * grid_byte(point, j) * sign_of(signs, j);
                y += 8;
            }
        }
    }
}

/* ============================ iq2_xs: 16 sub-blocks of 16 = 2 groups of 8, 512-point grid */

static void iq2_xs_block(const slm_iq_search *sp, const float *restrict x, const float *restrict qw,
                         slm_block_iq2_xs *restrict y) {
    float scales[SLM_QK_K / 16], weight[16], waux[16], xval[16];
    int8_t L[16];
    uint8_t signs[2];
    uint16_t q2[SLM_QK_K / 8] = {0}; /* grid index | signs << 9 per group */

    y->d = slm_f32_to_f16(0.f);
    memset(y->scales, 0, sizeof y->scales);
    float max_scale = 0;
    const float sigma2 = sum_squares(x) / SLM_QK_K;
    for (int ib = 0; ib < SLM_QK_K / 16; ++ib) {
        const float *xb = x + 16 * ib;
        importance(16, xb, qw + 16 * ib, sigma2, weight, waux);
        for (int k = 0; k < 2; ++k) signs[k] = slm_iq_signs_even(xb + 8 * k, weight + 8 * k, xval + 8 * k);
        const float max = max_of(xval, 16);
        memset(L, 0, sizeof L);
        scales[ib] = 0;
        if (max < GROUP_MAX_EPS) continue;
        float scale = slm_iq_search_scale(sp, xval, weight, waux, max / (2 * KMAXQ - 1), max, L);
        if (scale < 0) {
            scale = -scale;
            for (int k = 0; k < 2; ++k) signs[k] = (uint8_t)(~signs[k] & 127);
        }
        for (int k = 0; k < 2; ++k) {
            q2[2 * ib + k] = (uint16_t)(slm_iq_grid_index(sp->lat, L + 8 * k) | signs[k] << 9);
        }
        scales[ib] = scale;
        max_scale = SLM_MAX(max_scale, scale);
    }
    if (!max_scale) {
        memset(y->qs, 0, sizeof y->qs);
        return;
    }
    const float d = max_scale / 31;
    y->d = slm_f32_to_f16(d);
    const float id = 1 / d;
    for (int ib = 0; ib < SLM_QK_K / 16; ++ib) {
        const int l = slm_iq_scale_code(id, scales[ib], 15);
        y->scales[ib / 2] |= (uint8_t)(l << 4 * (ib % 2));
    }
    memcpy(y->qs, q2, sizeof y->qs);
}

size_t slm_quantize_iq2_xs_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                  const float *imatrix, slm_quant_kernel kernel) {
    SLM_ASSERT(imatrix); /* ggml: "missing quantization weights" */
    SLM_ASSERT(n_per_row % SLM_QK_K == 0);
    const slm_iq_search sp = {slm_iq_lattice_get(SLM_IQ_GRID_IQ2_XS), 16, KMAXQ, 9, 0.1f, SLM_IQ_REFIT_OFF_GRID,
                              slm_quant_use_avx2(kernel)};
    const int64_t nblock = n_per_row / SLM_QK_K;
    slm_block_iq2_xs *y = dst;
    for (int64_t row = 0; row < nrow; ++row) {
        for (int64_t ibl = 0; ibl < nblock; ++ibl) {
            iq2_xs_block(&sp, src + SLM_QK_K * ibl, imatrix + SLM_QK_K * ibl, &y[ibl]);
        }
        src += n_per_row;
        y += nblock;
    }
    return (size_t)nrow * (size_t)nblock * sizeof(slm_block_iq2_xs);
}

void slm_dequantize_row_iq2_xs(const void *restrict vx, float *restrict y, int64_t k) {
    SLM_ASSERT(k % SLM_QK_K == 0);
    const slm_block_iq2_xs *restrict x = vx;
    for (int64_t i = 0; i < k / SLM_QK_K; i++) {
        const float d = slm_f16_to_f32(x[i].d);
        for (int ib = 0; ib < SLM_QK_K / 32; ++ib) {
            const float db[2] = {d * (0.5f + (float)(x[i].scales[ib] & 0xf)) * 0.25f,
                                 d * (0.5f + (float)(x[i].scales[ib] >> 4)) * 0.25f};
            for (int l = 0; l < 4; ++l) {
                const uint16_t q = x[i].qs[4 * ib + l];
                const uint64_t point = slm_iq2xs_grid[q & 511];
                const uint8_t signs = slm_ksigns_iq2xs[q >> 9];
                for (int j = 0; j < 8; ++j) y[j] = db[l / 2] * grid_byte(point, j) * sign_of(signs, j);
                y += 8;
            }
        }
    }
}

/* ============================ iq2_s: 16 sub-blocks of 16 = 2 groups of 8, 1024-point grid */

static void iq2_s_block(const slm_iq_search *sp, const float *restrict x, const float *restrict qw,
                        slm_block_iq2_s *restrict y) {
    float scales[SLM_QK_K / 16], weight[16], waux[16], xval[16];
    int8_t L[16];
    uint8_t signs[2];

    memset(y, 0, sizeof *y);
    y->d = slm_f32_to_f16(0.f);
    float max_scale = 0;
    const float sigma2 = 2 * sum_squares(x) / SLM_QK_K;
    for (int ib = 0; ib < SLM_QK_K / 16; ++ib) {
        const float *xb = x + 16 * ib;
        if (qw) {
            importance(16, xb, qw + 16 * ib, sigma2, weight, waux);
        } else {
            for (int i = 0; i < 16; ++i) weight[i] = 0.25f * sigma2 + xb[i] * xb[i];
            for (int i = 0; i < 16; ++i) waux[i] = sqrtf(weight[i]);
        }
        for (int k = 0; k < 2; ++k) signs[k] = slm_iq_signs_all(xb + 8 * k, xval + 8 * k);
        const float max = max_of(xval, 16);
        memset(L, 0, sizeof L);
        scales[ib] = 0;
        if (max < GROUP_MAX_EPS_IQ2_S) continue;
        float scale = slm_iq_search_scale(sp, xval, weight, waux, max / (2 * KMAXQ - 1), max, L);
        if (scale < 0) {
            scale = -scale;
            for (int k = 0; k < 2; ++k) signs[k] = (uint8_t)~signs[k];
        }
        for (int k = 0; k < 2; ++k) {
            const int g = slm_iq_grid_index(sp->lat, L + 8 * k), i8 = 2 * ib + k;
            y->qs[i8] = (uint8_t)(g & 255);
            y->qh[i8 / 4] |= (uint8_t)((g >> 8) << 2 * (i8 % 4));
            y->qs[SLM_QK_K / 8 + i8] = signs[k];
        }
        scales[ib] = scale;
        max_scale = SLM_MAX(max_scale, scale);
    }
    if (!max_scale) return;
    const float d = max_scale / 31;
    y->d = slm_f32_to_f16(d * 0.9875f);
    const float id = 1 / d;
    for (int ib = 0; ib < SLM_QK_K / 16; ++ib) {
        const int l = slm_iq_scale_code(id, scales[ib], 15);
        y->scales[ib / 2] |= (uint8_t)(l << 4 * (ib % 2));
    }
}

size_t slm_quantize_iq2_s_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                 const float *imatrix, slm_quant_kernel kernel) {
    SLM_ASSERT(n_per_row % SLM_QK_K == 0);
    const slm_iq_search sp = {slm_iq_lattice_get(SLM_IQ_GRID_IQ2_S), 16, KMAXQ, 9, 0.1f, SLM_IQ_REFIT_OFF_GRID,
                              slm_quant_use_avx2(kernel)};
    const int64_t nblock = n_per_row / SLM_QK_K;
    slm_block_iq2_s *y = dst;
    for (int64_t row = 0; row < nrow; ++row) {
        for (int64_t ibl = 0; ibl < nblock; ++ibl) {
            iq2_s_block(&sp, src + SLM_QK_K * ibl, imatrix ? imatrix + SLM_QK_K * ibl : NULL, &y[ibl]);
        }
        src += n_per_row;
        y += nblock;
    }
    return (size_t)nrow * (size_t)nblock * sizeof(slm_block_iq2_s);
}

void slm_quantize_row_iq2_s_ref(const float *restrict x, void *restrict y, int64_t k) {
    SLM_ASSERT(k % SLM_QK_K == 0);
    slm_quantize_iq2_s_kernel(x, y, 1, k, NULL, SLM_KERNEL_REF);
}

void slm_dequantize_row_iq2_s(const void *restrict vx, float *restrict y, int64_t k) {
    SLM_ASSERT(k % SLM_QK_K == 0);
    const slm_block_iq2_s *restrict x = vx;
    for (int64_t i = 0; i < k / SLM_QK_K; i++) {
        const float d = slm_f16_to_f32(x[i].d);
        const uint8_t *qs = x[i].qs, *signs = x[i].qs + SLM_QK_K / 8;
        for (int ib = 0; ib < SLM_QK_K / 32; ++ib) {
            const float db[2] = {d * (0.5f + (float)(x[i].scales[ib] & 0xf)) * 0.25f,
                                 d * (0.5f + (float)(x[i].scales[ib] >> 4)) * 0.25f};
            for (int l = 0; l < 4; ++l) {
                const int g = qs[4 * ib + l] | ((x[i].qh[ib] << (8 - 2 * l)) & 0x300);
                const uint64_t point = slm_iq2s_grid[g];
                for (int j = 0; j < 8; ++j) y[j] = db[l / 2] * grid_byte(point, j) * sign_of(signs[4 * ib + l], j);
                y += 8;
            }
        }
    }
}
