/* q_iq3.c - ggml's 3-bit lattice formats iq3_xxs (3.0625 bpw, 256-point grid, even-parity signs)
 * and iq3_s (3.4375 bpw, 512-point grid, full sign bytes): groups of 4 values on the grid, 8
 * sub-blocks of 32 with 4-bit scales under one fp16 scale per 256 values.
 *
 * Owns: slm_quantize_<t>_kernel (ggml's quantize_<t>), slm_quantize_row_<t>_ref (ggml's
 * from_float_ref: the same without weights), slm_dequantize_row_<t>. Both run with or without
 * importance weights, as in ggml. Trap kept on purpose (ggml does it): iq3_s writes the grid bytes
 * and signs of the non-zero sub-blocks one after the other, so an all-zero sub-block shifts those
 * of the later ones down and leaves zero bytes at the end, while qh and the scales stay in place.
 * Must not: reorder float expressions, allocate, print, or know about files.
 */
#include <math.h>
#include <string.h>

#include "core/dtype.h"
#include "core/le.h"
#include "core/slm.h"
#include "quantize/q_iq_common.h"
#include "quantize/quants.h"

#define GROUP_MAX_EPS_IQ3_XXS 1e-8f /* ggml: a sub-block below this is all zero (iq3_xxs; iq3_s: == 0) */
#define KMAXQ 8                     /* levels per coordinate: positions 1, 3, ..., 15 */

/* ggml's sigma2 of a super-block: 2 * sum x^2 / QK_K. */
static float sigma2_of(const float *restrict x) {
    float sumx2 = 0;
    for (int i = 0; i < SLM_QK_K; ++i) sumx2 += x[i] * x[i];
    return 2 * sumx2 / SLM_QK_K;
}

/* Weights of a sub-block of 32: qw * sqrt(sigma2 + x^2), or x^2 without importance; waux = sqrt. */
static void weights_32(const float *restrict xb, const float *restrict qw, float sigma2, float *restrict weight,
                       float *restrict waux) {
    if (qw) {
        for (int i = 0; i < 32; ++i) weight[i] = qw[i] * sqrtf(sigma2 + xb[i] * xb[i]);
    } else {
        for (int i = 0; i < 32; ++i) weight[i] = xb[i] * xb[i];
    }
    for (int i = 0; i < 32; ++i) waux[i] = sqrtf(weight[i]);
}

static float max_of_32(const float *restrict v) {
    float max = v[0];
    for (int i = 1; i < 32; ++i) max = SLM_MAX(max, v[i]);
    return max;
}

static inline float sign_of(uint8_t signs, int j) { return signs & (1u << j) ? -1.f : 1.f; }

static inline uint8_t grid_byte(uint32_t point, int j) { return (uint8_t)(point >> 8 * j); }

/* ============================ iq3_xxs */

static void iq3_xxs_block(const slm_iq_search *sp, const float *restrict x, const float *restrict qw,
                          slm_block_iq3_xxs *restrict y) {
    float scales[SLM_QK_K / 32], weight[32], waux[32], xval[32];
    int8_t L[32];
    uint8_t signs[4];
    uint8_t grid_idx[SLM_QK_K / 4] = {0};             /* 8 grid bytes per sub-block */
    uint32_t scales_and_signs[SLM_QK_K / 32] = {0};   /* 4 x 7 sign bits | scale << 28 */

    y->d = slm_f32_to_f16(0.f);
    float max_scale = 0;
    const float sigma2 = sigma2_of(x);
    for (int ib = 0; ib < SLM_QK_K / 32; ++ib) {
        const float *xb = x + 32 * ib;
        weights_32(xb, qw ? qw + 32 * ib : NULL, sigma2, weight, waux);
        for (int k = 0; k < 4; ++k) signs[k] = slm_iq_signs_even(xb + 8 * k, weight + 8 * k, xval + 8 * k);
        const float max = max_of_32(xval);
        memset(L, 0, sizeof L);
        scales[ib] = 0;
        if (max < GROUP_MAX_EPS_IQ3_XXS) continue;
        float scale = slm_iq_search_scale(sp, xval, weight, waux, max / (2 * KMAXQ - 1), max, L);
        if (scale < 0) { /* ggml flips the first 4 sign groups (all there are) */
            scale = -scale;
            for (int k = 0; k < 4; ++k) signs[k] = (uint8_t)(~signs[k] & 127);
        }
        for (int k = 0; k < 8; ++k) grid_idx[8 * ib + k] = (uint8_t)slm_iq_grid_index(sp->lat, L + 4 * k);
        scales_and_signs[ib] = signs[0] | (uint32_t)signs[1] << 7 | (uint32_t)signs[2] << 14 | (uint32_t)signs[3] << 21;
        scales[ib] = scale;
        max_scale = SLM_MAX(max_scale, scale);
    }
    if (!max_scale) {
        memset(y->qs, 0, sizeof y->qs);
        return;
    }
    const float d = max_scale / 31;
    y->d = slm_f32_to_f16(d * 1.0125f); /* ggml's fudge factor */
    const float id = 1 / d;
    for (int ib = 0; ib < SLM_QK_K / 32; ++ib) {
        scales_and_signs[ib] |= (uint32_t)slm_iq_scale_code(id, scales[ib], 15) << 28;
    }
    memcpy(y->qs, grid_idx, sizeof grid_idx);
    for (int ib = 0; ib < SLM_QK_K / 32; ++ib) slm_st_u32(y->qs + SLM_QK_K / 4 + 4 * ib, scales_and_signs[ib]);
}

size_t slm_quantize_iq3_xxs_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                   const float *imatrix, slm_quant_kernel kernel) {
    SLM_ASSERT(n_per_row % SLM_QK_K == 0);
    const slm_iq_search sp = {slm_iq_lattice_get(SLM_IQ_GRID_IQ3_XXS), 32, KMAXQ, 15, 0.2f, SLM_IQ_REFIT_OFF_GRID,
                              slm_quant_use_avx2(kernel)};
    const int64_t nblock = n_per_row / SLM_QK_K;
    slm_block_iq3_xxs *y = dst;
    for (int64_t row = 0; row < nrow; ++row) {
        for (int64_t ibl = 0; ibl < nblock; ++ibl) {
            iq3_xxs_block(&sp, src + SLM_QK_K * ibl, imatrix ? imatrix + SLM_QK_K * ibl : NULL, &y[ibl]);
        }
        src += n_per_row;
        y += nblock;
    }
    return (size_t)nrow * (size_t)nblock * sizeof(slm_block_iq3_xxs);
}

void slm_quantize_row_iq3_xxs_ref(const float *restrict x, void *restrict y, int64_t k) {
    SLM_ASSERT(k % SLM_QK_K == 0);
    slm_quantize_iq3_xxs_kernel(x, y, 1, k, NULL, SLM_KERNEL_REF);
}

void slm_dequantize_row_iq3_xxs(const void *restrict vx, float *restrict y, int64_t k) {
    SLM_ASSERT(k % SLM_QK_K == 0);
    const slm_block_iq3_xxs *restrict x = vx;
    for (int64_t i = 0; i < k / SLM_QK_K; i++) {
        const float d = slm_f16_to_f32(x[i].d);
        const uint8_t *qs = x[i].qs;
        for (int ib = 0; ib < SLM_QK_K / 32; ++ib) {
            const uint32_t aux = slm_le_u32(x[i].qs + SLM_QK_K / 4 + 4 * ib);
            const float db = d * (0.5f + (float)(aux >> 28)) * 0.5f;
            for (int l = 0; l < 4; ++l) {
                const uint8_t signs = slm_ksigns_iq2xs[(aux >> 7 * l) & 127];
                const uint32_t p1 = slm_iq3xxs_grid[qs[2 * l]], p2 = slm_iq3xxs_grid[qs[2 * l + 1]];
                for (int j = 0; j < 4; ++j) {
                    y[j + 0] = db * grid_byte(p1, j) * sign_of(signs, j);
                    y[j + 4] = db * grid_byte(p2, j) * sign_of(signs, j + 4);
                }
                y += 8;
            }
            qs += 8;
        }
    }
}

/* ============================ iq3_s */

static void iq3_s_block(const slm_iq_search *sp, const float *restrict x, const float *restrict qw,
                        slm_block_iq3_s *restrict y) {
    float scales[SLM_QK_K / 32], weight[32], waux[32], xval[32];
    int8_t L[32];
    uint8_t signs[4];

    memset(y, 0, sizeof *y);
    y->d = slm_f32_to_f16(0.f);
    uint8_t *qs = y->qs, *sg = y->signs; /* advance per non-zero sub-block only (see header) */
    float max_scale = 0;
    const float sigma2 = sigma2_of(x);
    for (int ib = 0; ib < SLM_QK_K / 32; ++ib) {
        const float *xb = x + 32 * ib;
        weights_32(xb, qw ? qw + 32 * ib : NULL, sigma2, weight, waux);
        for (int k = 0; k < 4; ++k) signs[k] = slm_iq_signs_all(xb + 8 * k, xval + 8 * k);
        const float max = max_of_32(xval);
        memset(L, 0, sizeof L);
        scales[ib] = 0;
        if (!max) continue;
        float scale = slm_iq_search_scale(sp, xval, weight, waux, max / (2 * KMAXQ - 1), max, L);
        if (scale < 0) {
            scale = -scale;
            for (int k = 0; k < 4; ++k) signs[k] = (uint8_t)~signs[k];
        }
        for (int k = 0; k < 8; ++k) {
            const int g = slm_iq_grid_index(sp->lat, L + 4 * k);
            qs[k] = (uint8_t)(g & 255);
            y->qh[ib] |= (uint8_t)((g >> 8) << k);
        }
        qs += 8;
        memcpy(sg, signs, 4);
        sg += 4;
        scales[ib] = scale;
        max_scale = SLM_MAX(max_scale, scale);
    }
    if (!max_scale) return;
    const float d = max_scale / 31;
    y->d = slm_f32_to_f16(d * 1.033f); /* ggml's fudge factor */
    const float id = 1 / d;
    for (int ib = 0; ib < SLM_QK_K / 32; ib += 2) {
        const int l1 = slm_iq_scale_code(id, scales[ib + 0], 15);
        const int l2 = slm_iq_scale_code(id, scales[ib + 1], 15);
        y->scales[ib / 2] = (uint8_t)(l1 | (l2 << 4));
    }
}

size_t slm_quantize_iq3_s_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                 const float *imatrix, slm_quant_kernel kernel) {
    SLM_ASSERT(n_per_row % SLM_QK_K == 0);
    const slm_iq_search sp = {slm_iq_lattice_get(SLM_IQ_GRID_IQ3_S), 32, KMAXQ, 9, 0.2f,
                              SLM_IQ_REFIT_ALL_IF_OFF_GRID,
                              slm_quant_use_avx2(kernel)};
    const int64_t nblock = n_per_row / SLM_QK_K;
    slm_block_iq3_s *y = dst;
    for (int64_t row = 0; row < nrow; ++row) {
        for (int64_t ibl = 0; ibl < nblock; ++ibl) {
            iq3_s_block(&sp, src + SLM_QK_K * ibl, imatrix ? imatrix + SLM_QK_K * ibl : NULL, &y[ibl]);
        }
        src += n_per_row;
        y += nblock;
    }
    return (size_t)nrow * (size_t)nblock * sizeof(slm_block_iq3_s);
}

void slm_quantize_row_iq3_s_ref(const float *restrict x, void *restrict y, int64_t k) {
    SLM_ASSERT(k % SLM_QK_K == 0);
    slm_quantize_iq3_s_kernel(x, y, 1, k, NULL, SLM_KERNEL_REF);
}

void slm_dequantize_row_iq3_s(const void *restrict vx, float *restrict y, int64_t k) {
    SLM_ASSERT(k % SLM_QK_K == 0);
    const slm_block_iq3_s *restrict x = vx;
    for (int64_t i = 0; i < k / SLM_QK_K; i++) {
        const float d = slm_f16_to_f32(x[i].d);
        for (int ib = 0; ib < SLM_QK_K / 32; ++ib) {
            const float db = d * (1 + 2 * ((x[i].scales[ib / 2] >> 4 * (ib % 2)) & 0xf));
            const uint8_t *qs = x[i].qs + 8 * ib, *signs = x[i].signs + 4 * ib;
            const int qh = x[i].qh[ib];
            for (int l = 0; l < 4; ++l) {
                const uint32_t p1 = slm_iq3s_grid[qs[2 * l + 0] | ((qh << (8 - 2 * l)) & 256)];
                const uint32_t p2 = slm_iq3s_grid[qs[2 * l + 1] | ((qh << (7 - 2 * l)) & 256)];
                for (int j = 0; j < 4; ++j) {
                    y[j + 0] = db * grid_byte(p1, j) * sign_of(signs[l], j);
                    y[j + 4] = db * grid_byte(p2, j) * sign_of(signs[l], j + 4);
                }
                y += 8;
            }
        }
    }
}
