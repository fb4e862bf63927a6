/* q_iq4.c - ggml's non-linear 4-bit formats iq4_nl (32-element blocks) and iq4_xs (256-element
 * super-blocks of 8 x 32 with 6-bit sub-block scales), both indexing kvalues_iq4nl.
 *
 * Owns: slm_quantize_row_<t>_ref, slm_dequantize_row_<t>, slm_quantize_<t>. Trap kept on purpose:
 * slm_quantize_iq4_nl (= ggml_quantize_chunk, what llama-quantize writes) searches 15 scales per
 * block, slm_quantize_row_iq4_nl_ref (ggml's from_float_ref) does not, so they give different
 * bytes; both are tested against their own golden files.
 * Must not: reorder float expressions, allocate, print, or know about files.
 */
#include "quantize/quants.h"

#include <math.h>
#include <string.h>

#include "core/dtype.h"
#include "core/slm.h"

#define GROUP_MAX_EPS 1e-15f /* ggml: a group with |x| below this is "all zero" */

/* The 16 non-linear levels (ggml-common.h kvalues_iq4nl). */
static const int8_t kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/* Index of the level of val[0..n) (ascending) nearest to x; ties go up. */
static inline int best_index_int8(int n, const int8_t *val, float x) {
    if (x <= val[0]) return 0;
    if (x >= val[n - 1]) return n - 1;
    int ml = 0, mu = n - 1;
    while (mu - ml > 1) {
        int mav = (ml + mu) / 2;
        if (x < val[mav]) {
            mu = mav;
        } else {
            ml = mav;
        }
    }
    return x - val[mu - 1] < val[mu] - x ? mu - 1 : mu;
}

/* Output fields of one iq4 block; scales_h/scales_l are unused for iq4_nl (one sub-block). */
typedef struct iq4_out {
    uint16_t *dh;
    uint8_t *q4;
    uint16_t *scales_h;
    uint8_t *scales_l;
} iq4_out;

/* ggml's quantize_row_iq4_nl_impl for one super-block of super_block_size values in sub-blocks
 * of 32: per sub-block a weighted least-squares scale (weights qw * sqrt(sigma2 + x^2), or x^2
 * without importance weights), refined over 2*ntry+1 trial scales; ntry < 0 skips the search
 * and flips the sign of the start scale (the _ref path). With more than one sub-block the
 * scales are then quantized to 6 bits against one fp16 super-block scale and the codes redone.
 * scratch: scales[super_block_size/32], L[super_block_size]. */
static void quantize_row_iq4_nl_impl(const int super_block_size, const float *restrict x, iq4_out out,
                                     float *restrict scales, uint8_t *restrict L, const float *quant_weights,
                                     const int ntry) {
    const int block_size = 32;
    const int8_t *values = kvalues_iq4nl;
    float weight[32];

    float sigma2 = 0;
    for (int j = 0; j < super_block_size; ++j) sigma2 += x[j] * x[j];
    sigma2 *= 2.f / super_block_size;

    memset(out.q4, 0, (size_t)super_block_size / 2);
    out.dh[0] = slm_f32_to_f16(0.f);

    float max_scale = 0, amax_scale = 0;
    for (int ib = 0; ib < super_block_size / block_size; ++ib) {
        const float *xb = x + ib * block_size;
        uint8_t *Lb = L + ib * block_size;
        if (quant_weights) {
            const float *qw = quant_weights + ib * block_size;
            for (int j = 0; j < block_size; ++j) weight[j] = qw[j] * sqrtf(sigma2 + xb[j] * xb[j]);
        } else {
            for (int j = 0; j < block_size; ++j) weight[j] = xb[j] * xb[j];
        }
        float amax = 0, max = 0;
        for (int j = 0; j < block_size; ++j) {
            float ax = fabsf(xb[j]);
            if (ax > amax) {
                amax = ax;
                max = xb[j];
            }
        }
        if (amax < GROUP_MAX_EPS) {
            scales[ib] = 0;
            continue;
        }
        float d = ntry > 0 ? -max / values[0] : max / values[0];
        float id = 1 / d;
        float sumqx = 0, sumq2 = 0;
        for (int j = 0; j < block_size; ++j) {
            float al = id * xb[j];
            int l = best_index_int8(16, values, al);
            Lb[j] = (uint8_t)l;
            float q = values[l];
            float w = weight[j];
            sumqx += w * q * xb[j];
            sumq2 += w * q * q;
        }
        d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
        float best = d * sumqx;
        for (int itry = -ntry; itry <= ntry; ++itry) {
            id = (itry + values[0]) / max;
            sumqx = sumq2 = 0;
            for (int j = 0; j < block_size; ++j) {
                float al = id * xb[j];
                int l = best_index_int8(16, values, al);
                float q = values[l];
                float w = weight[j];
                sumqx += w * q * xb[j];
                sumq2 += w * q * q;
            }
            if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
        scales[ib] = d;
        float abs_d = fabsf(d);
        if (abs_d > amax_scale) {
            amax_scale = abs_d;
            max_scale = d;
        }
    }

    if (super_block_size / block_size > 1) {
        const int nb = super_block_size / block_size;
        memset(out.scales_h, 0, (size_t)((nb + 7) / 8) * sizeof(uint16_t));
        float d = -max_scale / 32;
        out.dh[0] = slm_f32_to_f16(d);
        float id = d ? 1 / d : 0.f;
        for (int ib = 0; ib < nb; ++ib) {
            int l = slm_nearest_int(id * scales[ib]);
            l = SLM_MAX(-32, SLM_MIN(31, l));
            float dl = d * l;
            float idl = dl ? 1 / dl : 0.f;
            uint8_t *Lb = L + ib * block_size;
            const float *xb = x + ib * block_size;
            for (int j = 0; j < block_size; ++j) Lb[j] = (uint8_t)best_index_int8(16, values, idl * xb[j]);
            l += 32;
            uint8_t l_l = l & 0xf;
            uint8_t l_h = (uint8_t)(l >> 4);
            if (ib % 2 == 0) {
                out.scales_l[ib / 2] = l_l;
            } else {
                out.scales_l[ib / 2] |= (uint8_t)(l_l << 4);
            }
            out.scales_h[ib / 8] |= (uint16_t)(l_h << 2 * (ib % 8));
        }
    } else {
        out.dh[0] = slm_f32_to_f16(scales[0]);
        if (ntry > 0) {
            float id = scales[0] ? 1 / scales[0] : 0;
            for (int j = 0; j < super_block_size; ++j) L[j] = (uint8_t)best_index_int8(16, values, id * x[j]);
        }
    }

    for (int i = 0; i < super_block_size / 32; ++i) {
        for (int j = 0; j < 16; ++j) out.q4[16 * i + j] = (uint8_t)(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
    }
}

/* ============================ iq4_nl */

size_t slm_quantize_iq4_nl(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                           const float *imatrix) {
    SLM_ASSERT(n_per_row % SLM_QK4_NL == 0);
    const int64_t nblock = n_per_row / SLM_QK4_NL;
    char *qrow = dst;
    uint8_t L[SLM_QK4_NL];
    uint16_t unused_h;
    float scale;
    for (int64_t row = 0; row < nrow; ++row) {
        slm_block_iq4_nl *iq4 = (slm_block_iq4_nl *)qrow;
        for (int64_t ibl = 0; ibl < nblock; ++ibl) {
            const float *qw = imatrix ? imatrix + SLM_QK4_NL * ibl : NULL;
            iq4_out out = {&iq4[ibl].d, iq4[ibl].qs, &unused_h, NULL};
            quantize_row_iq4_nl_impl(SLM_QK4_NL, src + SLM_QK4_NL * ibl, out, &scale, L, qw, 7);
        }
        src += n_per_row;
        qrow += nblock * (int64_t)sizeof(slm_block_iq4_nl);
    }
    return (size_t)nrow * (size_t)nblock * sizeof(slm_block_iq4_nl);
}

/* ggml's from_float_ref: no scale search. For an all-zero block ggml packs uninitialized codes
 * (the golden manifest marks it "undefined"); here they are zero. */
void slm_quantize_row_iq4_nl_ref(const float *restrict x, void *restrict vy, int64_t k) {
    SLM_ASSERT(k % SLM_QK4_NL == 0);
    const int64_t nblock = k / SLM_QK4_NL;
    slm_block_iq4_nl *iq4 = vy;
    uint8_t L[SLM_QK4_NL];
    uint16_t unused_h;
    float scale;
    for (int64_t ibl = 0; ibl < nblock; ++ibl) {
        memset(L, 0, sizeof L);
        iq4_out out = {&iq4[ibl].d, iq4[ibl].qs, &unused_h, NULL};
        quantize_row_iq4_nl_impl(SLM_QK4_NL, x + SLM_QK4_NL * ibl, out, &scale, L, NULL, -1);
    }
}

void slm_dequantize_row_iq4_nl(const void *restrict vx, float *restrict y, int64_t k) {
    SLM_ASSERT(k % SLM_QK4_NL == 0);
    const int64_t nb = k / SLM_QK4_NL;
    const slm_block_iq4_nl *restrict x = vx;

    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *qs = x[i].qs;
        const float d = slm_f16_to_f32(x[i].d);
        for (int j = 0; j < SLM_QK4_NL / 2; ++j) {
            y[j + 0] = d * kvalues_iq4nl[qs[j] & 0xf];
            y[j + SLM_QK4_NL / 2] = d * kvalues_iq4nl[qs[j] >> 4];
        }
        y += SLM_QK4_NL;
    }
}

/* ============================ iq4_xs */

size_t slm_quantize_iq4_xs(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                           const float *imatrix) {
    SLM_ASSERT(n_per_row % SLM_QK_K == 0);
    const int64_t nblock = n_per_row / SLM_QK_K;
    char *qrow = dst;
    uint8_t L[SLM_QK_K];
    float scales[SLM_QK_K / 32];
    for (int64_t row = 0; row < nrow; ++row) {
        slm_block_iq4_xs *iq4 = (slm_block_iq4_xs *)qrow;
        for (int64_t ibl = 0; ibl < nblock; ++ibl) {
            const float *qw = imatrix ? imatrix + SLM_QK_K * ibl : NULL;
            iq4_out out = {&iq4[ibl].d, iq4[ibl].qs, &iq4[ibl].scales_h, iq4[ibl].scales_l};
            quantize_row_iq4_nl_impl(SLM_QK_K, src + SLM_QK_K * ibl, out, scales, L, qw, 7);
        }
        src += n_per_row;
        qrow += nblock * (int64_t)sizeof(slm_block_iq4_xs);
    }
    return (size_t)nrow * (size_t)nblock * sizeof(slm_block_iq4_xs);
}

void slm_quantize_row_iq4_xs_ref(const float *restrict x, void *restrict vy, int64_t k) {
    SLM_ASSERT(k % SLM_QK_K == 0);
    slm_quantize_iq4_xs(x, vy, 1, k, NULL);
}

void slm_dequantize_row_iq4_xs(const void *restrict vx, float *restrict y, int64_t k) {
    SLM_ASSERT(k % SLM_QK_K == 0);
    const int64_t nb = k / SLM_QK_K;
    const slm_block_iq4_xs *restrict x = vx;

    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *qs = x[i].qs;
        const float d = slm_f16_to_f32(x[i].d);
        for (int ib = 0; ib < SLM_QK_K / 32; ++ib) {
            const int ls = ((x[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) | (((x[i].scales_h >> 2 * ib) & 3) << 4);
            const float dl = d * (ls - 32);
            for (int j = 0; j < 16; ++j) {
                y[j + 0] = dl * kvalues_iq4nl[qs[j] & 0xf];
                y[j + 16] = dl * kvalues_iq4nl[qs[j] >> 4];
            }
            y += 32;
            qs += 16;
        }
    }
}
