/* q_iq4.c - ggml's non-linear 4-bit formats iq4_nl (32-element blocks) and iq4_xs (256-element
 * super-blocks of 8 x 32 with 6-bit sub-block scales), both indexing kvalues_iq4nl.
 *
 * Owns: slm_quantize_row_<t>_ref, slm_dequantize_row_<t>, slm_quantize_<t>[_kernel] and the AVX2
 * scale search (end of file). Trap kept on purpose: slm_quantize_iq4_nl (= ggml_quantize_chunk,
 * what llama-quantize writes) searches 15 scales per block, slm_quantize_row_iq4_nl_ref (ggml's
 * from_float_ref) does not, so they give different bytes; both are tested against their golden files.
 * Must not: reorder float expressions, allocate, print, or know about files.
 */
#define SLM_QUANTS_AVX2_HELPERS
#include "quantize/quants.h"

#include <math.h>
#include <string.h>

#include "core/dtype.h"
#include "core/slm.h"

#define GROUP_MAX_EPS 1e-15f /* ggml: a group with |x| below this is "all zero" */

#if SLM_X86_KERNELS
/* AVX2 paths of the searched (chunk) quantizers (end of file), bit-exact with the scalar ones. */
static void iq4_nl_8_blocks_avx2(const float *restrict x, slm_block_iq4_nl *restrict y, const float *restrict qw);
static void iq4_xs_block_avx2(const float *restrict x, slm_block_iq4_xs *restrict y, const float *restrict qw);
#endif

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

/* One block with ggml's scale search (ntry = 7): quantize_iq4_nl's inner call. */
static void iq4_nl_block_ref(const float *restrict x, slm_block_iq4_nl *restrict y, const float *restrict qw) {
    uint8_t L[SLM_QK4_NL];
    uint16_t unused_h;
    float scale;
    iq4_out out = {&y->d, y->qs, &unused_h, NULL};
    quantize_row_iq4_nl_impl(SLM_QK4_NL, x, out, &scale, L, qw, 7);
}

size_t slm_quantize_iq4_nl_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                  const float *imatrix, slm_quant_kernel kernel) {
    SLM_ASSERT(n_per_row % SLM_QK4_NL == 0);
    const int64_t nblock = n_per_row / SLM_QK4_NL;
    const int avx2 = slm_quant_use_avx2(kernel);
    slm_block_iq4_nl *iq4 = dst;
    for (int64_t row = 0; row < nrow; ++row) {
        int64_t ibl = 0;
#if SLM_X86_KERNELS
        for (; avx2 && ibl + 8 <= nblock; ibl += 8) { /* 8 blocks in the 8 lanes */
            iq4_nl_8_blocks_avx2(src + SLM_QK4_NL * ibl, &iq4[ibl], imatrix ? imatrix + SLM_QK4_NL * ibl : NULL);
        }
#endif
        for (; ibl < nblock; ++ibl) {
            iq4_nl_block_ref(src + SLM_QK4_NL * ibl, &iq4[ibl], imatrix ? imatrix + SLM_QK4_NL * ibl : NULL);
        }
        src += n_per_row;
        iq4 += nblock;
    }
    SLM_UNUSED(avx2);
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

static void iq4_xs_block_ref(const float *restrict x, slm_block_iq4_xs *restrict y, const float *restrict qw) {
    uint8_t L[SLM_QK_K];
    float scales[SLM_QK_K / 32];
    iq4_out out = {&y->d, y->qs, &y->scales_h, y->scales_l};
    quantize_row_iq4_nl_impl(SLM_QK_K, x, out, scales, L, qw, 7);
}

size_t slm_quantize_iq4_xs_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                  const float *imatrix, slm_quant_kernel kernel) {
    SLM_ASSERT(n_per_row % SLM_QK_K == 0);
    const int64_t nblock = n_per_row / SLM_QK_K;
    void (*block_fn)(const float *restrict, slm_block_iq4_xs *restrict, const float *restrict) = iq4_xs_block_ref;
#if SLM_X86_KERNELS
    if (slm_quant_use_avx2(kernel)) block_fn = iq4_xs_block_avx2;
#endif
    slm_block_iq4_xs *iq4 = dst;
    for (int64_t row = 0; row < nrow; ++row) {
        for (int64_t ibl = 0; ibl < nblock; ++ibl) {
            block_fn(src + SLM_QK_K * ibl, &iq4[ibl], imatrix ? imatrix + SLM_QK_K * ibl : NULL);
        }
        src += n_per_row;
        iq4 += nblock;
    }
    return (size_t)nrow * (size_t)nblock * sizeof(slm_block_iq4_xs);
}

/* ggml's from_float_ref for iq4_xs is quantize_iq4_xs itself (kept on the scalar path here). */
void slm_quantize_row_iq4_xs_ref(const float *restrict x, void *restrict vy, int64_t k) {
    SLM_ASSERT(k % SLM_QK_K == 0);
    slm_quantize_iq4_xs_kernel(x, vy, 1, k, NULL, SLM_KERNEL_REF);
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

/* ============================ AVX2: sub-blocks in lanes
 *
 * As in q_kquants.c: lane j runs ggml's scalar code for sub-block j (the same float operations in
 * the same order, no FMA, branches as masks), so the bytes equal the scalar path's.
 * best_index_int8's binary search becomes a count of the levels not above x, which selects the
 * same bracket [val[mu-1], val[mu]) for every x (NaN included), then ggml's tie rule.
 */
#if SLM_X86_KERNELS
/* level[idx] for idx in 0..15 (lo = levels 0..7, hi = levels 8..15). */
static inline SLM_AVX2 __m256 level_x8(__m256 lo, __m256 hi, __m256i idx) {
    const __m256 from_hi = _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)); /* bit 3 -> sign bit */
    return _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, idx), _mm256_permutevar8x32_ps(hi, idx), from_hi);
}

/* kvalues_iq4nl as floats. */
static const float k_levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/* best_index_int8(16, kvalues_iq4nl, x) in every lane. */
static inline SLM_AVX2 __m256i best_index_x8(__m256 x) {
    const float *lv = k_levels;
    const __m256 lo = _mm256_loadu_ps(lv), hi = _mm256_loadu_ps(lv + 8);
    /* mu = 1 + #{k >= 1: !(x < val[k])}, capped at 15: the binary search's upper bracket */
    __m256i mu = _mm256_set1_epi32(1);
    for (int k = 1; k < 16; k++) {
        mu = _mm256_sub_epi32(mu, _mm256_castps_si256(_mm256_cmp_ps(x, _mm256_set1_ps(lv[k]), _CMP_NLT_UQ)));
    }
    mu = _mm256_min_epi32(mu, _mm256_set1_epi32(15));
    const __m256i mu1 = _mm256_sub_epi32(mu, _mm256_set1_epi32(1));
    /* x - val[mu-1] < val[mu] - x ? mu-1 : mu */
    const __m256 down =
        _mm256_cmp_ps(_mm256_sub_ps(x, level_x8(lo, hi, mu1)), _mm256_sub_ps(level_x8(lo, hi, mu), x), _CMP_LT_OQ);
    __m256i r = _mm256_add_epi32(mu, _mm256_castps_si256(down)); /* down = -1 */
    r = _mm256_castps_si256(slm_select_x8(_mm256_castsi256_ps(r), _mm256_castsi256_ps(_mm256_set1_epi32(15)),
                                          _mm256_cmp_ps(x, _mm256_set1_ps(lv[15]), _CMP_GE_OQ)));
    r = _mm256_castps_si256(slm_select_x8(_mm256_castsi256_ps(r), _mm256_setzero_ps(),
                                          _mm256_cmp_ps(x, _mm256_set1_ps(lv[0]), _CMP_LE_OQ)));
    return r;
}

/* Packs 32 codes (4 vectors of 8, values 0..15) as ggml: byte j = L[j] | L[j+16] << 4. */
static inline SLM_AVX2 void pack_nibbles_32(uint8_t *restrict q4, const __m256i *restrict L) {
    slm_store_bytes_x16(q4, _mm256_or_si256(L[0], _mm256_slli_epi32(L[2], 4)),
                        _mm256_or_si256(L[1], _mm256_slli_epi32(L[3], 4)));
}

/* The per-sub-block part of quantize_row_iq4_nl_impl with ntry > 0, 8 sub-blocks of 32 in
 * lanes: xt the values, wt their weights. Returns the sub-block scales (0 when all-zero). */
static SLM_AVX2 __m256 iq4_scales_x8(const __m256 *restrict xt, const __m256 *restrict wt, int ntry) {
    const __m256 zero = _mm256_setzero_ps();
    const __m256 lo = _mm256_loadu_ps(k_levels), hi = _mm256_loadu_ps(k_levels + 8);
    const float v0 = kvalues_iq4nl[0];
    __m256 amax = zero, max = zero;
    for (int j = 0; j < 32; ++j) {
        const __m256 ax = slm_abs_x8(xt[j]);
        const __m256 gt = _mm256_cmp_ps(ax, amax, _CMP_GT_OQ);
        amax = slm_select_x8(amax, ax, gt);
        max = slm_select_x8(max, xt[j], gt);
    }
    const __m256 all_zero = _mm256_cmp_ps(amax, _mm256_set1_ps(GROUP_MAX_EPS), _CMP_LT_OQ);

    const __m256 neg_max = _mm256_xor_ps(max, _mm256_set1_ps(-0.0f));
    __m256 d = _mm256_div_ps(neg_max, _mm256_set1_ps(v0)); /* -max/values[0] */
    __m256 id = _mm256_div_ps(_mm256_set1_ps(1.0f), d);
    __m256 sumqx = zero, sumq2 = zero;
    for (int j = 0; j < 32; ++j) {
        const __m256 q = level_x8(lo, hi, best_index_x8(_mm256_mul_ps(id, xt[j]))); /* values[l] */
        const __m256 wq = _mm256_mul_ps(wt[j], q);
        sumqx = _mm256_add_ps(sumqx, _mm256_mul_ps(wq, xt[j]));
        sumq2 = _mm256_add_ps(sumq2, _mm256_mul_ps(wq, q));
    }
    d = slm_select_x8(zero, _mm256_div_ps(sumqx, sumq2), _mm256_cmp_ps(sumq2, zero, _CMP_GT_OQ));
    __m256 best = _mm256_mul_ps(d, sumqx);
    for (int itry = -ntry; itry <= ntry; ++itry) {
        id = _mm256_div_ps(_mm256_set1_ps((float)(itry + kvalues_iq4nl[0])), max);
        sumqx = sumq2 = zero;
        for (int j = 0; j < 32; ++j) {
            const __m256 q = level_x8(lo, hi, best_index_x8(_mm256_mul_ps(id, xt[j])));
            const __m256 wq = _mm256_mul_ps(wt[j], q);
            sumqx = _mm256_add_ps(sumqx, _mm256_mul_ps(wq, xt[j]));
            sumq2 = _mm256_add_ps(sumq2, _mm256_mul_ps(wq, q));
        }
        const __m256 better =
            _mm256_and_ps(_mm256_cmp_ps(sumq2, zero, _CMP_GT_OQ),
                          _mm256_cmp_ps(_mm256_mul_ps(sumqx, sumqx), _mm256_mul_ps(best, sumq2), _CMP_GT_OQ));
        if (!_mm256_movemask_ps(better)) continue;
        const __m256 new_d = _mm256_div_ps(sumqx, sumq2);
        d = slm_select_x8(d, new_d, better);
        best = slm_select_x8(best, _mm256_mul_ps(new_d, sumqx), better);
    }
    return slm_select_x8(d, zero, all_zero);
}

/* Codes of 32 values with inverse scale id, packed into 16 bytes. */
static inline SLM_AVX2 void iq4_codes_32(uint8_t *restrict q4, const float *restrict x, float id) {
    const __m256 vid = _mm256_set1_ps(id);
    __m256i L[4];
    for (int c = 0; c < 4; c++) L[c] = best_index_x8(_mm256_mul_ps(vid, _mm256_loadu_ps(x + 8 * c)));
    pack_nibbles_32(q4, L);
}

/* quantize_iq4_nl's blocks ibl..ibl+7 of one row (qw: their weights or NULL). */
static SLM_AVX2 void iq4_nl_8_blocks_avx2(const float *restrict x, slm_block_iq4_nl *restrict y,
                                          const float *restrict qw) {
    __m256 xt[32], wt[32];
    slm_load_transposed(xt, x, 32);
    __m256 sigma2 = _mm256_setzero_ps();
    for (int j = 0; j < 32; ++j) sigma2 = _mm256_add_ps(sigma2, _mm256_mul_ps(xt[j], xt[j]));
    sigma2 = _mm256_mul_ps(sigma2, _mm256_set1_ps(2.f / SLM_QK4_NL));
    if (qw) {
        slm_load_transposed(wt, qw, 32);
        for (int j = 0; j < 32; ++j) {
            wt[j] = _mm256_mul_ps(wt[j], _mm256_sqrt_ps(_mm256_add_ps(sigma2, _mm256_mul_ps(xt[j], xt[j]))));
        }
    } else {
        for (int j = 0; j < 32; ++j) wt[j] = _mm256_mul_ps(xt[j], xt[j]);
    }
    float scales[8];
    _mm256_storeu_ps(scales, iq4_scales_x8(xt, wt, 7));
    for (int b = 0; b < 8; b++) {
        y[b].d = slm_f32_to_f16(scales[b]);
        const float id = scales[b] ? 1 / scales[b] : 0;
        iq4_codes_32(y[b].qs, x + 32 * b, id);
    }
}

/* One iq4_xs super-block (qw: its 256 weights or NULL). */
static SLM_AVX2 void iq4_xs_block_avx2(const float *restrict x, slm_block_iq4_xs *restrict y,
                                       const float *restrict qw) {
    float sigma2 = 0;
    for (int j = 0; j < SLM_QK_K; ++j) sigma2 += x[j] * x[j];
    sigma2 *= 2.f / SLM_QK_K;

    __m256 xt[32], wt[32];
    slm_load_transposed(xt, x, 32);
    if (qw) {
        slm_load_transposed(wt, qw, 32);
        const __m256 vs = _mm256_set1_ps(sigma2);
        for (int j = 0; j < 32; ++j)
            wt[j] = _mm256_mul_ps(wt[j], _mm256_sqrt_ps(_mm256_add_ps(vs, _mm256_mul_ps(xt[j], xt[j]))));
    } else {
        for (int j = 0; j < 32; ++j) wt[j] = _mm256_mul_ps(xt[j], xt[j]);
    }
    float scales[8];
    _mm256_storeu_ps(scales, iq4_scales_x8(xt, wt, 7));

    float max_scale = 0, amax_scale = 0;
    for (int ib = 0; ib < 8; ++ib) {
        const float abs_d = fabsf(scales[ib]);
        if (abs_d > amax_scale) {
            amax_scale = abs_d;
            max_scale = scales[ib];
        }
    }
    y->scales_h = 0;
    const float d = -max_scale / 32;
    y->d = slm_f32_to_f16(d);
    const float id = d ? 1 / d : 0.f;
    for (int ib = 0; ib < 8; ++ib) {
        int l = slm_nearest_int(id * scales[ib]);
        l = SLM_MAX(-32, SLM_MIN(31, l));
        const float dl = d * l;
        const float idl = dl ? 1 / dl : 0.f;
        iq4_codes_32(y->qs + 16 * ib, x + 32 * ib, idl);
        l += 32;
        const uint8_t l_l = l & 0xf;
        const uint8_t l_h = (uint8_t)(l >> 4);
        if (ib % 2 == 0) {
            y->scales_l[ib / 2] = l_l;
        } else {
            y->scales_l[ib / 2] |= (uint8_t)(l_l << 4);
        }
        y->scales_h |= (uint16_t)(l_h << 2 * (ib % 8));
    }
}

#endif /* SLM_X86_KERNELS */
