/* q_kquants.c - ggml's k-quants q2_K q3_K q4_K q5_K q6_K (256-element super-blocks) and the
 * scale solvers they share with the legacy importance-weighted paths.
 *
 * Owns: slm_quantize_row_<t>_ref, slm_dequantize_row_<t>, slm_quantize_<t>_kernel (with ggml's
 * _impl paths for importance weights), the solvers make_qx_quants, make_q3_quants,
 * make_qkx3_quants (also ggml's make_qkx2_quants), make_qp_quants, and their AVX2 versions that
 * run 8 sub-blocks in the lanes of a vector (end of file). Every float expression keeps ggml's order.
 * Must not: allocate (scratch is on the stack), print, know about files, or let a fast path's
 * bytes differ from the scalar reference's for any input.
 */
#define SLM_QUANTS_AVX2_HELPERS
#include "quantize/quants.h"

#include <math.h>
#include <string.h>

#include "core/dtype.h"
#include "core/slm.h"

#define GROUP_MAX_EPS 1e-15f /* ggml: a group with |x| below this is "all zero" */

#if SLM_X86_KERNELS
/* AVX2 paths for q2_K..q6_K (end of file), bit-exact with the scalar ones. */
static void quantize_row_q4_K_avx2(const float *restrict x, slm_block_q4_K *restrict y, int64_t nb);
static void quantize_row_q5_K_avx2(const float *restrict x, slm_block_q5_K *restrict y, int64_t nb);
static void k4_block_weighted_avx2(const float *restrict x, const float *restrict qw_block, int nmax, int clamp_63,
                                   uint8_t *restrict packed, uint16_t *restrict d16, uint16_t *restrict dmin16,
                                   uint8_t *restrict L);
static void quantize_block_q6_K_avx2(const float *restrict x, slm_block_q6_K *restrict y, const float *restrict qw);
static void quantize_block_q2_K_avx2(const float *restrict x, slm_block_q2_K *restrict y, const float *restrict qw);
static void quantize_block_q2_K_weighted_avx2(const float *restrict x, slm_block_q2_K *restrict y,
                                              const float *restrict qw);
static void quantize_block_q3_K_avx2(const float *restrict x, slm_block_q3_K *restrict y, const float *restrict qw);
static void quantize_block_q3_K_weighted_avx2(const float *restrict x, slm_block_q3_K *restrict y,
                                              const float *restrict qw);
#endif

/* ===================== solvers (ggml-quants.c "Helper functions") */

/* make_qx_quants' weight of value i: qw, else by rmse_type x^2, 1, |x|, sqrt|x|. */
static inline float qx_weight(const float *restrict qw, const float *restrict x, int i, int rmse_type) {
    return qw               ? qw[i]
           : rmse_type == 1 ? x[i] * x[i]
           : rmse_type == 2 ? 1
           : rmse_type == 3 ? fabsf(x[i])
                            : sqrtf(fabsf(x[i]));
}

/* Symmetric quantization of n values to [-nmax, nmax-1], stored biased as L + nmax.
 * rmse_type 0: plain max scaling; 1..4: weighted least squares with a scan of 18 nearby scales
 * (weights qw, else x^2, 1, |x|, sqrt|x|); negative: one refinement step only. Returns the scale. */
float slm_make_qx_quants(int n, int nmax, const float *restrict x, int8_t *restrict L, int rmse_type,
                         const float *restrict qw) {
    float max = 0;
    float amax = 0;
    for (int i = 0; i < n; ++i) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) { /* all zero */
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.f;
    }
    float iscale = -nmax / max;
    if (rmse_type == 0) {
        for (int i = 0; i < n; ++i) {
            int l = slm_nearest_int(iscale * x[i]);
            L[i] = (int8_t)(nmax + SLM_MAX(-nmax, SLM_MIN(nmax - 1, l)));
        }
        return 1 / iscale;
    }
    int return_early = 0;
    if (rmse_type < 0) {
        rmse_type = -rmse_type;
        return_early = 1;
    }
    float weight[32]; /* ggml evaluates the weight inside every loop; the values are the same */
    SLM_ASSERT(n <= 32);
    for (int i = 0; i < n; ++i) weight[i] = qx_weight(qw, x, i, rmse_type);
    float sumlx = 0;
    float suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = slm_nearest_int(iscale * x[i]);
        l = SLM_MAX(-nmax, SLM_MIN(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
        float w = weight[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    if (return_early) return suml2 > 0 ? 0.5f * (scale + 1 / iscale) : 1 / iscale;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; ++i) {
            int l = slm_nearest_int(iscale * x[i]);
            l = SLM_MAX(-nmax, SLM_MIN(nmax - 1, l));
            float w = weight[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; ++i) {
                int l = slm_nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + SLM_MAX(-nmax, SLM_MIN(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* q3_K's sub-block solver: x^2-weighted least squares, then up to 5 coordinate-descent passes. */
static float make_q3_quants(int n, int nmax, const float *restrict x, int8_t *restrict L, int do_rmse) {
    float max = 0;
    float amax = 0;
    for (int i = 0; i < n; ++i) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) { /* all zero */
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.f;
    }
    float iscale = -nmax / max;
    if (do_rmse) {
        float sumlx = 0;
        float suml2 = 0;
        for (int i = 0; i < n; ++i) {
            int l = slm_nearest_int(iscale * x[i]);
            l = SLM_MAX(-nmax, SLM_MIN(nmax - 1, l));
            L[i] = (int8_t)l;
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        for (int itry = 0; itry < 5; ++itry) {
            int n_changed = 0;
            for (int i = 0; i < n; ++i) {
                float w = x[i] * x[i];
                float slx = sumlx - w * x[i] * L[i];
                if (slx > 0) {
                    float sl2 = suml2 - w * L[i] * L[i];
                    int new_l = slm_nearest_int(x[i] * sl2 / slx);
                    new_l = SLM_MAX(-nmax, SLM_MIN(nmax - 1, new_l));
                    if (new_l != L[i]) {
                        slx += w * x[i] * new_l;
                        sl2 += w * new_l * new_l;
                        if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                            L[i] = (int8_t)new_l;
                            sumlx = slx;
                            suml2 = sl2;
                            ++n_changed;
                        }
                    }
                }
            }
            if (!n_changed) break;
        }
        for (int i = 0; i < n; ++i) L[i] = (int8_t)(L[i] + nmax);
        return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
    }
    for (int i = 0; i < n; ++i) {
        int l = slm_nearest_int(iscale * x[i]);
        l = SLM_MAX(-nmax, SLM_MIN(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
    }
    return 1 / iscale;
}

/* Asymmetric quantization x ~ scale * L - the_min, L in [0, nmax], weighted by `weights`:
 * start from min/max scaling, then try nstep+1 scales (rmin + rdelta*is + nmax)/(max - min) with
 * a closed-form weighted least-squares fit of scale and min; keep the lowest weighted error
 * (|diff| if use_mad, else diff^2). Returns the scale, *the_min = -min. Weights x^2 when `weights` is NULL. This is also
 * ggml's make_qkx2_quants: that one tests max == min where this one tests max <= min, which
 * agree once min is clamped to <= 0 (max >= min, or both false for NaN). */
float slm_make_qkx3_quants(int n, int nmax, const float *restrict x, const float *restrict weights, uint8_t *restrict L,
                           float *restrict the_min, uint8_t *restrict Laux, float rmin, float rdelta, int nstep,
                           int use_mad) {
    float min = x[0];
    float max = x[0];
    float sum_w = weights ? weights[0] : x[0] * x[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        float w = weights ? weights[i] : x[i] * x[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max <= min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_mad = 0;
    for (int i = 0; i < n; ++i) {
        int l = slm_nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)SLM_MAX(0, SLM_MIN(nmax, l));
        float diff = scale * L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        float w = weights ? weights[i] : x[i] * x[i];
        best_mad += w * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; ++is) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            int l = slm_nearest_int(iscale * (x[i] - min));
            l = SLM_MAX(0, SLM_MIN(nmax, l));
            Laux[i] = (uint8_t)l;
            float w = weights ? weights[i] : x[i] * x[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float mad = 0;
            for (int i = 0; i < n; ++i) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                float w = weights ? weights[i] : x[i] * x[i];
                mad += w * diff;
            }
            if (mad < best_mad) {
                for (int i = 0; i < n; ++i) L[i] = Laux[i];
                best_mad = mad;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* Non-negative values x to L in [0, nmax] with weights: scan 8 nearby scales for the lowest
 * weighted squared error, then least squares and up to 5 coordinate-descent passes. Used for
 * the super-block scales and mins of the weighted k-quant paths. */
float slm_make_qp_quants(int n, int nmax, const float *restrict x, uint8_t *restrict L, const float *quant_weights) {
    float max = 0;
    for (int i = 0; i < n; ++i) max = SLM_MAX(max, x[i]);
    if (max < GROUP_MAX_EPS) { /* all zero */
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.f;
    }
    float iscale = nmax / max;
    for (int i = 0; i < n; ++i) L[i] = (uint8_t)slm_nearest_int(iscale * x[i]);
    float scale = 1 / iscale;
    float best_mse = 0;
    for (int i = 0; i < n; ++i) {
        float diff = x[i] - scale * L[i];
        float w = quant_weights[i];
        best_mse += w * diff * diff;
    }
    for (int is = -4; is <= 4; ++is) {
        if (is == 0) continue;
        float iscale_is = (0.1f * is + nmax) / max;
        float scale_is = 1 / iscale_is;
        float mse = 0;
        for (int i = 0; i < n; ++i) {
            int l = slm_nearest_int(iscale_is * x[i]);
            l = SLM_MIN(nmax, l);
            float diff = x[i] - scale_is * l;
            float w = quant_weights[i];
            mse += w * diff * diff;
        }
        if (mse < best_mse) {
            best_mse = mse;
            iscale = iscale_is;
        }
    }
    float sumlx = 0;
    float suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = slm_nearest_int(iscale * x[i]);
        l = SLM_MIN(nmax, l);
        L[i] = (uint8_t)l;
        float w = quant_weights[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    for (int itry = 0; itry < 5; ++itry) {
        int n_changed = 0;
        for (int i = 0; i < n; ++i) {
            float w = quant_weights[i];
            float slx = sumlx - w * x[i] * L[i];
            float sl2 = suml2 - w * L[i] * L[i];
            if (slx > 0 && sl2 > 0) {
                int new_l = slm_nearest_int(x[i] * sl2 / slx);
                new_l = SLM_MIN(nmax, new_l);
                if (new_l != L[i]) {
                    slx += w * x[i] * new_l;
                    sl2 += w * new_l * new_l;
                    if (slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (uint8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        ++n_changed;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* 6-bit scale j and min j of q4_K/q5_K's packed 12 bytes. */
static inline void get_scale_min_k4(int j, const uint8_t *restrict q, uint8_t *restrict d, uint8_t *restrict m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
    }
}

/* Inverse of get_scale_min_k4 for sub-block j (scales must be zeroed for j >= 4 first). */
static inline void set_scale_min_k4(int j, uint8_t *restrict q, uint8_t ls, uint8_t lm) {
    if (j < 4) {
        q[j] = ls;
        q[j + 4] = lm;
    } else {
        q[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
        q[j - 4] |= (uint8_t)((ls >> 4) << 6);
        q[j - 0] |= (uint8_t)((lm >> 4) << 6);
    }
}

/* 2 * mean(x^2) over a super-block, summed in order: sigma2 of the q3_K..q5_K weighted paths. */
static float sigma2_twice_mean_sq(const float *restrict x) {
    float sum_x2 = 0;
    for (int l = 0; l < SLM_QK_K; ++l) sum_x2 += x[l] * x[l];
    return 2 * sum_x2 / SLM_QK_K;
}

/* 2-bit codes L[256] into 64 bytes: byte j/4+l holds values j+l, +32, +64, +96 (j = 0, 128). */
static void pack_2bit(uint8_t *restrict qs, const uint8_t *restrict L) {
    for (int j = 0; j < SLM_QK_K; j += 128) {
        for (int l = 0; l < 32; ++l) {
            qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
        }
    }
}

/* ========================= 2-bit (de)-quantization */

/* One unweighted q2_K sub-block of 16: weights |x|, mean absolute error. Returns the scale. */
static float q2_K_subblock_fit_ref(const float *restrict x, uint8_t *restrict L, float *restrict the_min) {
    uint8_t Laux[16];
    float weights[16];
    for (int l = 0; l < 16; ++l) weights[l] = fabsf(x[l]);
    return slm_make_qkx3_quants(16, 3, x, weights, L, the_min, Laux, -0.5f, 0.1f, 15, 1);
}

/* The unweighted path's 4-bit sub-block scales and mins against their maxima, and d, dmin. */
static void q2_K_pack_scales_ref(slm_block_q2_K *restrict y, const float *restrict scales, const float *restrict mins) {
    const float q4scale = 15.f;
    float max_scale = 0; /* as we are deducting the min, scales are always positive */
    float max_min = 0;
    for (int j = 0; j < SLM_QK_K / 16; ++j) {
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    if (max_scale > 0) {
        float iscale = q4scale / max_scale;
        for (int j = 0; j < SLM_QK_K / 16; ++j) {
            int l = slm_nearest_int(iscale * scales[j]);
            y->scales[j] = (uint8_t)l;
        }
        y->d = slm_f32_to_f16(max_scale / q4scale);
    } else {
        for (int j = 0; j < SLM_QK_K / 16; ++j) y->scales[j] = 0;
        y->d = slm_f32_to_f16(0.f);
    }
    if (max_min > 0) {
        float iscale = q4scale / max_min;
        for (int j = 0; j < SLM_QK_K / 16; ++j) {
            int l = slm_nearest_int(iscale * mins[j]);
            y->scales[j] |= (uint8_t)((unsigned)l << 4); /* l < 0 only for non-finite input */
        }
        y->dmin = slm_f32_to_f16(max_min / q4scale);
    } else {
        y->dmin = slm_f32_to_f16(0.f);
    }
}

/* Codes from the stored scales: L = clamp(nearest((x + dmin*m) / (d*sc)), 0, 3). Sub-blocks whose
 * scale is 0 keep the solver's codes. Both q2_K paths end with this. */
static void q2_K_requantize(const float *restrict x, const slm_block_q2_K *restrict y, uint8_t *restrict L) {
    for (int j = 0; j < SLM_QK_K / 16; ++j) {
        const float d = slm_f16_to_f32(y->d) * (y->scales[j] & 0xF);
        if (!d) continue;
        const float dm = slm_f16_to_f32(y->dmin) * (y->scales[j] >> 4);
        for (int ii = 0; ii < 16; ++ii) {
            int l = slm_nearest_int((x[16 * j + ii] + dm) / d);
            L[16 * j + ii] = (uint8_t)SLM_MAX(0, SLM_MIN(3, l));
        }
    }
}

static void quantize_block_q2_K_ref(const float *restrict x, slm_block_q2_K *restrict y, const float *restrict qw) {
    SLM_UNUSED(qw);
    uint8_t L[SLM_QK_K];
    float mins[SLM_QK_K / 16];
    float scales[SLM_QK_K / 16];
    for (int j = 0; j < SLM_QK_K / 16; ++j) scales[j] = q2_K_subblock_fit_ref(x + 16 * j, L + 16 * j, &mins[j]);
    q2_K_pack_scales_ref(y, scales, mins);
    q2_K_requantize(x, y, L);
    pack_2bit(y->qs, L);
}

void slm_quantize_row_q2_K_ref(const float *restrict x, void *restrict vy, int64_t k) {
    SLM_ASSERT(k % SLM_QK_K == 0);
    const int64_t nb = k / SLM_QK_K;
    slm_block_q2_K *restrict y = vy;
    for (int64_t i = 0; i < nb; i++) quantize_block_q2_K_ref(x + i * SLM_QK_K, &y[i], NULL);
}

void slm_dequantize_row_q2_K(const void *restrict vx, float *restrict y, int64_t k) {
    SLM_ASSERT(k % SLM_QK_K == 0);
    const int64_t nb = k / SLM_QK_K;
    const slm_block_q2_K *restrict x = vx;

    for (int64_t i = 0; i < nb; i++) {
        const float d = slm_f16_to_f32(x[i].d);
        const float min = slm_f16_to_f32(x[i].dmin);
        const uint8_t *q = x[i].qs;
        int is = 0;
        for (int n = 0; n < SLM_QK_K; n += 128) {
            int shift = 0;
            for (int j = 0; j < 4; ++j) {
                uint8_t sc = x[i].scales[is++];
                float dl = d * (sc & 0xF), ml = min * (sc >> 4);
                for (int l = 0; l < 16; ++l) *y++ = dl * ((int8_t)((q[l] >> shift) & 3)) - ml;

                sc = x[i].scales[is++];
                dl = d * (sc & 0xF);
                ml = min * (sc >> 4);
                for (int l = 0; l < 16; ++l) *y++ = dl * ((int8_t)((q[l + 16] >> shift) & 3)) - ml;

                shift += 2;
            }
            q += 32;
        }
    }
}

/* ggml's quantize_row_q2_K_impl, one super-block: sigma2 = mean(x^2) of the super-block, weights
 * qw * sqrt(sigma2 + x^2), sub-block fits by make_qkx3_quants, then the sub-block scales and mins
 * themselves fitted by make_qp_quants. */
static float q2_K_weighted_sigma2(const float *restrict x) {
    float sumx2 = 0;
    for (int j = 0; j < SLM_QK_K; ++j) sumx2 += x[j] * x[j];
    return sumx2 / SLM_QK_K;
}

/* One weighted sub-block of 16: returns the scale, *the_min, *sumw, codes L. */
static float q2_K_weighted_subblock_fit(const float *restrict x, const float *restrict qw, float sigma2,
                                        uint8_t *restrict L, float *restrict the_min, float *restrict sumw) {
    uint8_t Laux[16];
    float weight[16];
    for (int l = 0; l < 16; ++l) weight[l] = qw[l] * sqrtf(sigma2 + x[l] * x[l]);
    *sumw = 0;
    for (int l = 0; l < 16; ++l) *sumw += weight[l];
    return slm_make_qkx3_quants(16, 3, x, weight, L, the_min, Laux, -0.9f, 0.05f, 36, 0);
}

static void q2_K_pack_weighted_scales(slm_block_q2_K *restrict y, const float *restrict scales,
                                      const float *restrict mins, const float *restrict sw) {
    uint8_t Ls[SLM_QK_K / 16], Lm[SLM_QK_K / 16];
    float dm = slm_make_qp_quants(SLM_QK_K / 16, 15, scales, Ls, sw);
    float mm = slm_make_qp_quants(SLM_QK_K / 16, 15, mins, Lm, sw);
    y->d = slm_f32_to_f16(dm);
    y->dmin = slm_f32_to_f16(mm);
    for (int j = 0; j < SLM_QK_K / 16; ++j) y->scales[j] = (uint8_t)(Ls[j] | (Lm[j] << 4));
}

static void quantize_block_q2_K_weighted(const float *restrict x, slm_block_q2_K *restrict y,
                                         const float *restrict qw) {
    uint8_t L[SLM_QK_K];
    float mins[SLM_QK_K / 16];
    float scales[SLM_QK_K / 16];
    float sw[SLM_QK_K / 16];
    const float sigma2 = q2_K_weighted_sigma2(x);
    for (int j = 0; j < SLM_QK_K / 16; ++j) {
        scales[j] = q2_K_weighted_subblock_fit(x + 16 * j, qw + 16 * j, sigma2, L + 16 * j, &mins[j], &sw[j]);
    }
    q2_K_pack_weighted_scales(y, scales, mins, sw);
    q2_K_requantize(x, y, L); /* ggml's `requantize = true` branch */
    pack_2bit(y->qs, L);
}

typedef void (*q2_K_block_fn)(const float *restrict x, slm_block_q2_K *restrict y, const float *restrict qw);

size_t slm_quantize_q2_K_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                const float *imatrix, slm_quant_kernel kernel) {
    SLM_ASSERT(n_per_row % SLM_QK_K == 0);
    const int64_t nb = n_per_row / SLM_QK_K;
    q2_K_block_fn block_fn = imatrix ? quantize_block_q2_K_weighted : quantize_block_q2_K_ref;
#if SLM_X86_KERNELS
    if (slm_quant_use_avx2(kernel)) block_fn = imatrix ? quantize_block_q2_K_weighted_avx2 : quantize_block_q2_K_avx2;
#endif
    slm_block_q2_K *y = dst;
    for (int64_t row = 0; row < nrow; ++row) {
        for (int64_t i = 0; i < nb; i++) block_fn(src + i * SLM_QK_K, &y[i], imatrix ? imatrix + i * SLM_QK_K : NULL);
        src += n_per_row;
        y += nb;
    }
    return (size_t)nrow * (size_t)nb * sizeof(slm_block_q2_K);
}

/* ========================= 3-bit (de)-quantization */

/* Packs 16 6-bit biased scales Ls[j] (0..63) into q3_K's 12 bytes. */
static void pack_q3_K_scales(uint8_t *restrict scales, const int *restrict Ls) {
    memset(scales, 0, 12);
    for (int j = 0; j < SLM_QK_K / 16; ++j) {
        int l = Ls[j];
        if (j < 8) {
            scales[j] = (uint8_t)(l & 0xF);
        } else {
            scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
        }
        l >>= 4;
        scales[j % 4 + 8] |= (uint8_t)(l << (2 * (j / 4)));
    }
}

/* Signed 6-bit scale j of a q3_K block (-32..31). */
static inline int8_t q3_K_scale(const slm_block_q3_K *restrict y, int j) {
    int8_t sc = (int8_t)(j < 8 ? y->scales[j] & 0xF : y->scales[j - 8] >> 4);
    return (int8_t)((sc | (((y->scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32);
}

/* Codes from the stored (fp16-rounded) scales: L = clamp(nearest(x / (d*sc)), -4, 3) + 4. Sub-blocks
 * whose scale is 0 keep the solver's codes. Both q3_K paths end with this. */
static void q3_K_requantize(const float *restrict x, const slm_block_q3_K *restrict y, int8_t *restrict L) {
    for (int j = 0; j < SLM_QK_K / 16; ++j) {
        float d = slm_f16_to_f32(y->d) * q3_K_scale(y, j);
        if (!d) continue;
        for (int ii = 0; ii < 16; ++ii) {
            int l = slm_nearest_int(x[16 * j + ii] / d);
            l = SLM_MAX(-4, SLM_MIN(3, l));
            L[16 * j + ii] = (int8_t)(l + 4);
        }
    }
}

/* Splits L in [0, 7] into hmask (bit 2; the first 32 values in bit 0 of hmask[0..31], the next 32
 * in bit 1, ...) and the 2-bit qs. */
static void q3_K_pack(slm_block_q3_K *restrict y, int8_t *restrict L) {
    memset(y->hmask, 0, SLM_QK_K / 8);
    int m = 0;
    uint8_t hm = 1;
    for (int j = 0; j < SLM_QK_K; ++j) {
        if (L[j] > 3) {
            y->hmask[m] |= hm;
            L[j] = (int8_t)(L[j] - 4);
        }
        if (++m == SLM_QK_K / 8) {
            m = 0;
            hm = (uint8_t)(hm << 1);
        }
    }
    pack_2bit(y->qs, (const uint8_t *)L);
}

/* The unweighted path's 16 scales to 6 bits against the largest |scale|, and d. */
static void q3_K_pack_scales_ref(slm_block_q3_K *restrict y, const float *restrict scales) {
    float max_scale = 0;
    float amax = 0;
    for (int j = 0; j < SLM_QK_K / 16; ++j) {
        float scale = fabsf(scales[j]);
        if (scale > amax) {
            amax = scale;
            max_scale = scales[j];
        }
    }
    memset(y->scales, 0, 12);
    if (max_scale) {
        float iscale = -32.f / max_scale;
        int Ls[SLM_QK_K / 16];
        for (int j = 0; j < SLM_QK_K / 16; ++j) {
            int8_t l = (int8_t)slm_nearest_int(iscale * scales[j]);
            Ls[j] = SLM_MAX(-32, SLM_MIN(31, l)) + 32;
        }
        pack_q3_K_scales(y->scales, Ls);
        y->d = slm_f32_to_f16(1 / iscale);
    } else {
        y->d = slm_f32_to_f16(0.f);
    }
}

static void quantize_block_q3_K_ref(const float *restrict x, slm_block_q3_K *restrict y, const float *restrict qw) {
    SLM_UNUSED(qw);
    int8_t L[SLM_QK_K];
    float scales[SLM_QK_K / 16];
    for (int j = 0; j < SLM_QK_K / 16; ++j) scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j, 1);
    q3_K_pack_scales_ref(y, scales);
    q3_K_requantize(x, y, L);
    q3_K_pack(y, L);
}

void slm_quantize_row_q3_K_ref(const float *restrict x, void *restrict vy, int64_t k) {
    SLM_ASSERT(k % SLM_QK_K == 0);
    const int64_t nb = k / SLM_QK_K;
    slm_block_q3_K *restrict y = vy;
    for (int64_t i = 0; i < nb; i++) quantize_block_q3_K_ref(x + i * SLM_QK_K, &y[i], NULL);
}

void slm_dequantize_row_q3_K(const void *restrict vx, float *restrict y, int64_t k) {
    SLM_ASSERT(k % SLM_QK_K == 0);
    const int64_t nb = k / SLM_QK_K;
    const slm_block_q3_K *restrict x = vx;
    const uint32_t kmask1 = 0x03030303;
    const uint32_t kmask2 = 0x0f0f0f0f;
    uint32_t aux[4];
    int8_t scales[16];

    for (int64_t i = 0; i < nb; i++) {
        const float d_all = slm_f16_to_f32(x[i].d);
        const uint8_t *restrict q = x[i].qs;
        const uint8_t *restrict hm = x[i].hmask;
        uint8_t m = 1;

        /* unpack the 16 6-bit scales */
        memcpy(aux, x[i].scales, 12);
        uint32_t tmp = aux[2];
        aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
        aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
        aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
        aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
        memcpy(scales, aux, 16);

        int is = 0;
        for (int n = 0; n < SLM_QK_K; n += 128) {
            int shift = 0;
            for (int j = 0; j < 4; ++j) {
                float dl = d_all * (scales[is++] - 32);
                for (int l = 0; l < 16; ++l) {
                    *y++ = dl * ((int8_t)((q[l + 0] >> shift) & 3) - ((hm[l + 0] & m) ? 0 : 4));
                }
                dl = d_all * (scales[is++] - 32);
                for (int l = 0; l < 16; ++l) {
                    *y++ = dl * ((int8_t)((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) ? 0 : 4));
                }
                shift += 2;
                m = (uint8_t)(m << 1);
            }
            q += 32;
        }
    }
}

/* ggml's quantize_row_q3_K_impl, one super-block: weights qw * sqrt(sigma2 + x^2) with
 * sigma2 = 2 * mean(x^2), sub-block scales by make_qx_quants, and those fitted to 6 bits by
 * make_qx_quants against the per-sub-block weight sums. */
static float q3_K_weighted_subblock_fit(const float *restrict x, const float *restrict qw, float sigma2,
                                        int8_t *restrict L, float *restrict sumw_out) {
    float weight[16];
    for (int l = 0; l < 16; ++l) weight[l] = qw[l] * sqrtf(sigma2 + x[l] * x[l]);
    float sumw = 0;
    for (int l = 0; l < 16; ++l) sumw += weight[l];
    *sumw_out = sumw;
    return slm_make_qx_quants(16, 4, x, L, 1, weight);
}

static void q3_K_pack_weighted_scales(slm_block_q3_K *restrict y, const float *restrict scales,
                                      const float *restrict sw) {
    int8_t Ls[SLM_QK_K / 16];
    int Lsi[SLM_QK_K / 16];
    float d_block = slm_make_qx_quants(SLM_QK_K / 16, 32, scales, Ls, 1, sw);
    for (int j = 0; j < SLM_QK_K / 16; ++j) Lsi[j] = Ls[j];
    pack_q3_K_scales(y->scales, Lsi);
    y->d = slm_f32_to_f16(d_block);
}

static void quantize_block_q3_K_weighted(const float *restrict x, slm_block_q3_K *restrict y,
                                         const float *restrict qw) {
    int8_t L[SLM_QK_K];
    float scales[SLM_QK_K / 16];
    float sw[SLM_QK_K / 16];
    const float sigma2 = sigma2_twice_mean_sq(x);
    for (int j = 0; j < SLM_QK_K / 16; ++j) {
        scales[j] = q3_K_weighted_subblock_fit(x + 16 * j, qw + 16 * j, sigma2, L + 16 * j, &sw[j]);
    }
    q3_K_pack_weighted_scales(y, scales, sw);
    q3_K_requantize(x, y, L);
    q3_K_pack(y, L);
}

typedef void (*q3_K_block_fn)(const float *restrict x, slm_block_q3_K *restrict y, const float *restrict qw);

size_t slm_quantize_q3_K_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                const float *imatrix, slm_quant_kernel kernel) {
    SLM_ASSERT(n_per_row % SLM_QK_K == 0);
    const int64_t nb = n_per_row / SLM_QK_K;
    q3_K_block_fn block_fn = imatrix ? quantize_block_q3_K_weighted : quantize_block_q3_K_ref;
#if SLM_X86_KERNELS
    if (slm_quant_use_avx2(kernel)) block_fn = imatrix ? quantize_block_q3_K_weighted_avx2 : quantize_block_q3_K_avx2;
#endif
    slm_block_q3_K *y = dst;
    for (int64_t row = 0; row < nrow; ++row) {
        for (int64_t i = 0; i < nb; i++) block_fn(src + i * SLM_QK_K, &y[i], imatrix ? imatrix + i * SLM_QK_K : NULL);
        src += n_per_row;
        y += nb;
    }
    return (size_t)nrow * (size_t)nb * sizeof(slm_block_q3_K);
}

/* ========================= 4-bit and 5-bit (de)-quantization (shared scale packing) */

/* Sub-block scales and mins to 6 bits with one super-block factor each (unweighted _ref path). */
static void pack_k4_scales_ref(uint8_t *restrict packed, uint16_t *restrict d, uint16_t *restrict dmin,
                               const float *restrict scales, const float *restrict mins, float max_scale,
                               float max_min) {
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < SLM_QK_K / 32; ++j) {
        uint8_t ls = (uint8_t)slm_nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)slm_nearest_int(inv_min * mins[j]);
        ls = SLM_MIN(63, ls);
        lm = SLM_MIN(63, lm);
        set_scale_min_k4(j, packed, ls, lm);
    }
    *d = slm_f32_to_f16(max_scale / 63.f);
    *dmin = slm_f32_to_f16(max_min / 63.f);
}

/* Requantizes x with the stored scales/mins: L = nearest((x + dmin*m) / (d*sc)) in [0, nmax]. */
static void k4_requantize(const float *restrict x, const uint8_t *restrict packed, uint16_t d16, uint16_t dmin16,
                          int nmax, uint8_t *restrict L) {
    uint8_t sc, m;
    for (int j = 0; j < SLM_QK_K / 32; ++j) {
        get_scale_min_k4(j, packed, &sc, &m);
        const float d = slm_f16_to_f32(d16) * sc;
        if (!d) continue;
        const float dm = slm_f16_to_f32(dmin16) * m;
        for (int ii = 0; ii < 32; ++ii) {
            int l = slm_nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)SLM_MAX(0, SLM_MIN(nmax, l));
        }
    }
}

static void pack_q4_K_quants(uint8_t *restrict q, const uint8_t *restrict L) {
    for (int j = 0; j < SLM_QK_K; j += 64) {
        for (int l = 0; l < 32; ++l) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
        q += 32;
    }
}

static void pack_q5_K_quants(uint8_t *restrict ql, uint8_t *restrict qh, const uint8_t *restrict L) {
    memset(qh, 0, SLM_QK_K / 8);
    uint8_t m1 = 1, m2 = 2;
    for (int n = 0; n < SLM_QK_K; n += 64) {
        for (int j = 0; j < 32; ++j) {
            int l1 = L[n + j];
            if (l1 > 15) {
                l1 -= 16;
                qh[j] |= m1;
            }
            int l2 = L[n + j + 32];
            if (l2 > 15) {
                l2 -= 16;
                qh[j] |= m2;
            }
            ql[j] = (uint8_t)(l1 | (l2 << 4));
        }
        m1 = (uint8_t)(m1 << 2);
        m2 = (uint8_t)(m2 << 2);
        ql += 32;
    }
}

/* One unweighted q4_K/q5_K sub-block fit of 32 values: weights av_x + |x|, av_x its RMS.
 * Returns the scale; *the_min = the min to subtract; L gets the codes. */
static float k4_subblock_fit_ref(const float *restrict x, int nmax, float rmin, int nstep, uint8_t *restrict L,
                                 float *restrict the_min) {
    uint8_t Laux[32];
    float weights[32];
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += x[l] * x[l];
    float av_x = sqrtf(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + fabsf(x[l]);
    return slm_make_qkx3_quants(32, nmax, x, weights, L, the_min, Laux, rmin, 0.1f, nstep, 0);
}

static void k4_subblock_fits_ref(const float *restrict x, int nmax, float rmin, int nstep, uint8_t *restrict L,
                                 float *restrict scales, float *restrict mins, float *max_scale, float *max_min) {
    *max_scale = 0; /* as we are deducting the min, scales are always positive */
    *max_min = 0;
    for (int j = 0; j < SLM_QK_K / 32; ++j) {
        scales[j] = k4_subblock_fit_ref(x + 32 * j, nmax, rmin, nstep, L + 32 * j, &mins[j]);
        float scale = scales[j];
        if (scale > *max_scale) *max_scale = scale;
        float min = mins[j];
        if (min > *max_min) *max_min = min;
    }
}

/* The weighted q4_K/q5_K path (ggml's quantize_row_q4_K_impl / q5_K_impl): weights
 * qw * sqrt(sigma2 + x^2) with sigma2 = 2 * mean(x^2) of the super-block; scales and mins fitted
 * by make_qkx3_quants, then themselves quantized by make_qp_quants against the per-sub-block
 * weight sums. */
/* One weighted sub-block of 32: returns the scale, *the_min, *sumw (sum of its weights), codes L. */
static float k4_weighted_subblock_fit(const float *restrict x, const float *restrict qw, float sigma2, int nmax,
                                      uint8_t *restrict L, float *restrict the_min, float *restrict sumw_out) {
    uint8_t Laux[32];
    float weights[32];
    for (int l = 0; l < 32; ++l) weights[l] = qw[l] * sqrtf(sigma2 + x[l] * x[l]);
    float sumw = 0;
    for (int l = 0; l < 32; ++l) sumw += weights[l];
    *sumw_out = sumw;
    return slm_make_qkx3_quants(32, nmax, x, weights, L, the_min, Laux, -0.9f, 0.05f, 36, 0);
}

/* Quantizes the 8 scales and mins with make_qp_quants and packs them with d, dmin. */
static void k4_pack_weighted_scales(uint8_t *restrict packed, uint16_t *restrict d16, uint16_t *restrict dmin16,
                                    const float *restrict scales, const float *restrict mins, const float *restrict sw,
                                    int clamp_63) {
    uint8_t Ls[SLM_QK_K / 32];
    uint8_t Lm[SLM_QK_K / 32];
    float d_block = slm_make_qp_quants(SLM_QK_K / 32, 63, scales, Ls, sw);
    float m_block = slm_make_qp_quants(SLM_QK_K / 32, 63, mins, Lm, sw);
    memset(packed, 0, SLM_K_SCALE_SIZE); /* ggml writes every byte before it ORs into it */
    for (int j = 0; j < SLM_QK_K / 32; ++j) {
        uint8_t ls = Ls[j];
        uint8_t lm = Lm[j];
        if (clamp_63) { /* q5_K_impl clamps, q4_K_impl does not */
            ls = SLM_MIN(63, ls);
            lm = SLM_MIN(63, lm);
        }
        set_scale_min_k4(j, packed, ls, lm);
    }
    *d16 = slm_f32_to_f16(d_block);
    *dmin16 = slm_f32_to_f16(m_block);
}

typedef void (*k4_weighted_fn)(const float *restrict x, const float *restrict qw_block, int nmax, int clamp_63,
                               uint8_t *restrict packed, uint16_t *restrict d16, uint16_t *restrict dmin16,
                               uint8_t *restrict L);

static void k4_block_weighted(const float *restrict x, const float *restrict qw_block, int nmax, int clamp_63,
                              uint8_t *restrict packed, uint16_t *restrict d16, uint16_t *restrict dmin16,
                              uint8_t *restrict L) {
    float sw[SLM_QK_K / 32];
    float mins[SLM_QK_K / 32];
    float scales[SLM_QK_K / 32];
    const float sigma2 = sigma2_twice_mean_sq(x);
    for (int j = 0; j < SLM_QK_K / 32; ++j) {
        scales[j] = k4_weighted_subblock_fit(x + 32 * j, qw_block + 32 * j, sigma2, nmax, L + 32 * j, &mins[j], &sw[j]);
    }
    k4_pack_weighted_scales(packed, d16, dmin16, scales, mins, sw, clamp_63);
    k4_requantize(x, packed, *d16, *dmin16, nmax, L);
}

/* ----- q4_K */

static void quantize_block_q4_K_ref(const float *restrict x, slm_block_q4_K *restrict y) {
    uint8_t L[SLM_QK_K];
    float mins[SLM_QK_K / 32];
    float scales[SLM_QK_K / 32];
    float max_scale, max_min;
    k4_subblock_fits_ref(x, 15, -1.f, 20, L, scales, mins, &max_scale, &max_min);
    memset(y->scales, 0, SLM_K_SCALE_SIZE);
    pack_k4_scales_ref(y->scales, &y->d, &y->dmin, scales, mins, max_scale, max_min);
    k4_requantize(x, y->scales, y->d, y->dmin, 15, L);
    pack_q4_K_quants(y->qs, L);
}

void slm_quantize_row_q4_K_ref(const float *restrict x, void *restrict vy, int64_t k) {
    SLM_ASSERT(k % SLM_QK_K == 0);
    const int64_t nb = k / SLM_QK_K;
    slm_block_q4_K *restrict y = vy;
    for (int64_t i = 0; i < nb; i++) quantize_block_q4_K_ref(x + i * SLM_QK_K, &y[i]);
}

void slm_dequantize_row_q4_K(const void *restrict vx, float *restrict y, int64_t k) {
    SLM_ASSERT(k % SLM_QK_K == 0);
    const int64_t nb = k / SLM_QK_K;
    const slm_block_q4_K *restrict x = vx;

    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *q = x[i].qs;
        const float d = slm_f16_to_f32(x[i].d);
        const float min = slm_f16_to_f32(x[i].dmin);
        int is = 0;
        uint8_t sc, m;
        for (int j = 0; j < SLM_QK_K; j += 64) {
            get_scale_min_k4(is + 0, x[i].scales, &sc, &m);
            const float d1 = d * sc;
            const float m1 = min * m;
            get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc;
            const float m2 = min * m;
            for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
            q += 32;
            is += 2;
        }
    }
}

size_t slm_quantize_q4_K_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                const float *imatrix, slm_quant_kernel kernel) {
    SLM_ASSERT(n_per_row % SLM_QK_K == 0);
    const int64_t nb = n_per_row / SLM_QK_K;
    const size_t row_size = (size_t)nb * sizeof(slm_block_q4_K);
    if (!imatrix) {
#if SLM_X86_KERNELS
        if (slm_quant_use_avx2(kernel)) {
            quantize_row_q4_K_avx2(src, dst, nrow * nb);
            return (size_t)nrow * row_size;
        }
#endif
        slm_quantize_row_q4_K_ref(src, dst, nrow * n_per_row);
        return (size_t)nrow * row_size;
    }
    k4_weighted_fn block_fn = k4_block_weighted;
#if SLM_X86_KERNELS
    if (slm_quant_use_avx2(kernel)) block_fn = k4_block_weighted_avx2;
#endif
    char *qrow = dst;
    for (int64_t row = 0; row < nrow; ++row) {
        slm_block_q4_K *y = (slm_block_q4_K *)qrow;
        for (int64_t i = 0; i < nb; i++) {
            uint8_t L[SLM_QK_K];
            block_fn(src + i * SLM_QK_K, imatrix + i * SLM_QK_K, 15, 0, y[i].scales, &y[i].d, &y[i].dmin, L);
            pack_q4_K_quants(y[i].qs, L);
        }
        src += n_per_row;
        qrow += row_size;
    }
    return (size_t)nrow * row_size;
}

/* ----- q5_K */

static void quantize_block_q5_K_ref(const float *restrict x, slm_block_q5_K *restrict y) {
    uint8_t L[SLM_QK_K];
    float mins[SLM_QK_K / 32];
    float scales[SLM_QK_K / 32];
    float max_scale, max_min;
    k4_subblock_fits_ref(x, 31, -0.5f, 15, L, scales, mins, &max_scale, &max_min);
    memset(y->scales, 0, SLM_K_SCALE_SIZE);
    pack_k4_scales_ref(y->scales, &y->d, &y->dmin, scales, mins, max_scale, max_min);
    k4_requantize(x, y->scales, y->d, y->dmin, 31, L);
    pack_q5_K_quants(y->qs, y->qh, L);
}

void slm_quantize_row_q5_K_ref(const float *restrict x, void *restrict vy, int64_t k) {
    SLM_ASSERT(k % SLM_QK_K == 0);
    const int64_t nb = k / SLM_QK_K;
    slm_block_q5_K *restrict y = vy;
    for (int64_t i = 0; i < nb; i++) quantize_block_q5_K_ref(x + i * SLM_QK_K, &y[i]);
}

void slm_dequantize_row_q5_K(const void *restrict vx, float *restrict y, int64_t k) {
    SLM_ASSERT(k % SLM_QK_K == 0);
    const int64_t nb = k / SLM_QK_K;
    const slm_block_q5_K *restrict x = vx;

    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *ql = x[i].qs;
        const uint8_t *qh = x[i].qh;
        const float d = slm_f16_to_f32(x[i].d);
        const float min = slm_f16_to_f32(x[i].dmin);
        int is = 0;
        uint8_t sc, m;
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0; j < SLM_QK_K; j += 64) {
            get_scale_min_k4(is + 0, x[i].scales, &sc, &m);
            const float d1 = d * sc;
            const float m1 = min * m;
            get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc;
            const float m2 = min * m;
            for (int l = 0; l < 32; ++l) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; ++l) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
            ql += 32;
            is += 2;
            u1 = (uint8_t)(u1 << 2);
            u2 = (uint8_t)(u2 << 2);
        }
    }
}

size_t slm_quantize_q5_K_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                const float *imatrix, slm_quant_kernel kernel) {
    SLM_ASSERT(n_per_row % SLM_QK_K == 0);
    const int64_t nb = n_per_row / SLM_QK_K;
    const size_t row_size = (size_t)nb * sizeof(slm_block_q5_K);
    if (!imatrix) {
#if SLM_X86_KERNELS
        if (slm_quant_use_avx2(kernel)) {
            quantize_row_q5_K_avx2(src, dst, nrow * nb);
            return (size_t)nrow * row_size;
        }
#endif
        slm_quantize_row_q5_K_ref(src, dst, nrow * n_per_row);
        return (size_t)nrow * row_size;
    }
    k4_weighted_fn block_fn = k4_block_weighted;
#if SLM_X86_KERNELS
    if (slm_quant_use_avx2(kernel)) block_fn = k4_block_weighted_avx2;
#endif
    char *qrow = dst;
    for (int64_t row = 0; row < nrow; ++row) {
        slm_block_q5_K *y = (slm_block_q5_K *)qrow;
        for (int64_t i = 0; i < nb; i++) {
            uint8_t L[SLM_QK_K];
            block_fn(src + i * SLM_QK_K, imatrix + i * SLM_QK_K, 31, 1, y[i].scales, &y[i].d, &y[i].dmin, L);
            pack_q5_K_quants(y[i].qs, y[i].qh, L);
        }
        src += n_per_row;
        qrow += row_size;
    }
    return (size_t)nrow * row_size;
}

/* ========================= 6-bit (de)-quantization */

/* 6-bit codes L[256] (0..63): low nibbles to ql, high 2 bits to qh, in ggml's interleaving. */
static void pack_q6_K_quants(uint8_t *restrict ql, uint8_t *restrict qh, const int8_t *restrict L) {
    for (int j = 0; j < SLM_QK_K; j += 128) {
        for (int l = 0; l < 32; ++l) {
            const uint8_t q1 = L[j + l + 0] & 0xF;
            const uint8_t q2 = L[j + l + 32] & 0xF;
            const uint8_t q3 = L[j + l + 64] & 0xF;
            const uint8_t q4 = L[j + l + 96] & 0xF;
            ql[l + 0] = (uint8_t)(q1 | (q3 << 4));
            ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
            qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                              ((L[j + l + 96] >> 4) << 6));
        }
        ql += 64;
        qh += 32;
    }
}

/* One q6_K super-block; qw NULL for the reference path, else the 256 importance weights
 * (ggml's q6_K_impl passes them straight to make_qx_quants, no sigma2 term). */
static void quantize_block_q6_K(const float *restrict x, slm_block_q6_K *restrict y, const float *restrict qw) {
    int8_t L[SLM_QK_K];
    float scales[SLM_QK_K / 16];

    float max_scale = 0;
    float max_abs_scale = 0;
    for (int ib = 0; ib < SLM_QK_K / 16; ++ib) {
        const float scale = slm_make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, 1, qw ? qw + 16 * ib : NULL);
        scales[ib] = scale;
        const float abs_scale = fabsf(scale);
        if (abs_scale > max_abs_scale) {
            max_abs_scale = abs_scale;
            max_scale = scale;
        }
    }

    if (max_abs_scale < GROUP_MAX_EPS) {
        memset(y, 0, sizeof *y);
        y->d = slm_f32_to_f16(0.f);
        return;
    }

    float iscale = -128.f / max_scale;
    y->d = slm_f32_to_f16(1 / iscale);
    for (int ib = 0; ib < SLM_QK_K / 16; ++ib) {
        y->scales[ib] = (int8_t)SLM_MIN(127, slm_nearest_int(iscale * scales[ib]));
    }

    for (int j = 0; j < SLM_QK_K / 16; ++j) {
        float d = slm_f16_to_f32(y->d) * y->scales[j];
        if (!d) continue;
        for (int ii = 0; ii < 16; ++ii) {
            int l = slm_nearest_int(x[16 * j + ii] / d);
            l = SLM_MAX(-32, SLM_MIN(31, l));
            L[16 * j + ii] = (int8_t)(l + 32);
        }
    }

    pack_q6_K_quants(y->ql, y->qh, L);
}

void slm_quantize_row_q6_K_ref(const float *restrict x, void *restrict vy, int64_t k) {
    SLM_ASSERT(k % SLM_QK_K == 0);
    const int64_t nb = k / SLM_QK_K;
    slm_block_q6_K *restrict y = vy;
    for (int64_t i = 0; i < nb; i++) quantize_block_q6_K(x + i * SLM_QK_K, &y[i], NULL);
}

void slm_dequantize_row_q6_K(const void *restrict vx, float *restrict y, int64_t k) {
    SLM_ASSERT(k % SLM_QK_K == 0);
    const int64_t nb = k / SLM_QK_K;
    const slm_block_q6_K *restrict x = vx;

    for (int64_t i = 0; i < nb; i++) {
        const float d = slm_f16_to_f32(x[i].d);
        const uint8_t *restrict ql = x[i].ql;
        const uint8_t *restrict qh = x[i].qh;
        const int8_t *restrict sc = x[i].scales;
        for (int n = 0; n < SLM_QK_K; n += 128) {
            for (int l = 0; l < 32; ++l) {
                int is = l / 16;
                const int8_t q1 = (int8_t)((int8_t)((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                const int8_t q2 = (int8_t)((int8_t)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                const int8_t q3 = (int8_t)((int8_t)((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                const int8_t q4 = (int8_t)((int8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
                y[l + 0] = d * sc[is + 0] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

typedef void (*q6_K_block_fn)(const float *restrict x, slm_block_q6_K *restrict y, const float *restrict qw);

size_t slm_quantize_q6_K_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                const float *imatrix, slm_quant_kernel kernel) {
    SLM_ASSERT(n_per_row % SLM_QK_K == 0);
    const int64_t nb = n_per_row / SLM_QK_K;
    const size_t row_size = (size_t)nb * sizeof(slm_block_q6_K);
    q6_K_block_fn block_fn = quantize_block_q6_K;
#if SLM_X86_KERNELS
    if (slm_quant_use_avx2(kernel)) block_fn = quantize_block_q6_K_avx2;
#endif
    slm_block_q6_K *y = dst;
    for (int64_t row = 0; row < nrow; ++row) {
        for (int64_t i = 0; i < nb; i++) {
            block_fn(src + i * SLM_QK_K, &y[i], imatrix ? imatrix + i * SLM_QK_K : NULL);
        }
        src += n_per_row;
        y += nb;
    }
    return (size_t)nrow * row_size;
}

/* ========================= AVX2: independent sub-blocks in SIMD lanes
 *
 * Lane j of a __m256 runs ggml's scalar code for sub-block j: the same float operations in the
 * same order (no reassociation, no FMA), each `if` turned into a per-lane mask and blend. IEEE
 * add/mul/div/sqrt round the same in a lane as in a scalar register, so every lane produces the
 * scalar reference's bits. The solvers only return scales and mins: the codes they find are
 * overwritten by the requantization, except in a sub-block whose stored scale is 0, which gets
 * its codes from the scalar solver (rare: zero or fp16-underflowing sub-blocks).
 * test_quants checks these paths against the _ref functions on golden and random inputs.
 */
#if SLM_X86_KERNELS
/* slm_make_qkx3_quants with weights (ggml's make_qkx2_quants and make_qkx3_quants) for 8
 * sub-blocks: lane j of xt[i]/wt[i] is value i of sub-block j. Returns the
 * scales; *the_min_out the mins. */
static SLM_AVX2 __m256 make_qkx_quants_x8(int n, int nmax, const __m256 *restrict xt, const __m256 *restrict wt,
                                          __m256 *the_min_out, float rmin, float rdelta, int nstep, int use_mad,
                                          __m256i *restrict Lt) {
    const __m256 zero = _mm256_setzero_ps();
    __m256 laux[32];
    SLM_ASSERT(n <= 32 && nstep >= 1); /* ggml returns after the first pass when nstep < 1 */

    __m256 min = xt[0], max = xt[0];
    __m256 sum_w = wt[0];
    __m256 sum_x = _mm256_mul_ps(sum_w, xt[0]);
    for (int i = 1; i < n; ++i) {
        min = _mm256_min_ps(xt[i], min); /* if (x[i] < min) min = x[i] */
        max = _mm256_max_ps(xt[i], max); /* if (x[i] > max) max = x[i] */
        sum_w = _mm256_add_ps(sum_w, wt[i]);
        sum_x = _mm256_add_ps(sum_x, _mm256_mul_ps(wt[i], xt[i]));
    }
    min = slm_select_x8(min, zero, _mm256_cmp_ps(min, zero, _CMP_GT_OQ)); /* if (min > 0) min = 0 */
    const __m256 flat = _mm256_cmp_ps(max, min, _CMP_LE_OQ); /* ggml returns early */
    const __m256 flat_min = min;

    __m256 iscale = _mm256_div_ps(_mm256_set1_ps((float)nmax), _mm256_sub_ps(max, min));
    __m256 scale = _mm256_div_ps(_mm256_set1_ps(1.0f), iscale);
    __m256 best_error = zero;
    __m256 best_iscale = iscale, best_min_used = min; /* what the kept codes L were computed with */
    for (int i = 0; i < n; ++i) {
        __m256i l = slm_clamp_x8(slm_nearest_int_x8(_mm256_mul_ps(iscale, _mm256_sub_ps(xt[i], min))), 0, nmax);
        __m256 diff = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(scale, _mm256_cvtepi32_ps(l)), min), xt[i]);
        diff = use_mad ? slm_abs_x8(diff) : _mm256_mul_ps(diff, diff);
        best_error = _mm256_add_ps(best_error, _mm256_mul_ps(wt[i], diff));
    }
    for (int is = 0; is <= nstep; ++is) {
        const float num = rmin + rdelta * is + nmax;
        const __m256 min_used = min;
        iscale = _mm256_div_ps(_mm256_set1_ps(num), _mm256_sub_ps(max, min));
        __m256 sum_l = zero, sum_l2 = zero, sum_xl = zero;
        for (int i = 0; i < n; ++i) {
            __m256i l = slm_clamp_x8(slm_nearest_int_x8(_mm256_mul_ps(iscale, _mm256_sub_ps(xt[i], min))), 0, nmax);
            const __m256 lf = _mm256_cvtepi32_ps(l);
            laux[i] = lf;
            const __m256 wl = _mm256_mul_ps(wt[i], lf);
            sum_l = _mm256_add_ps(sum_l, wl);
            sum_l2 = _mm256_add_ps(sum_l2, _mm256_mul_ps(wl, lf));
            sum_xl = _mm256_add_ps(sum_xl, _mm256_mul_ps(wl, xt[i]));
        }
        const __m256 D = _mm256_sub_ps(_mm256_mul_ps(sum_w, sum_l2), _mm256_mul_ps(sum_l, sum_l));
        const __m256 d_pos = _mm256_cmp_ps(D, zero, _CMP_GT_OQ);
        if (_mm256_movemask_ps(d_pos) == 0) continue;
        __m256 this_scale = _mm256_div_ps(_mm256_sub_ps(_mm256_mul_ps(sum_w, sum_xl), _mm256_mul_ps(sum_x, sum_l)), D);
        __m256 this_min = _mm256_div_ps(_mm256_sub_ps(_mm256_mul_ps(sum_l2, sum_x), _mm256_mul_ps(sum_l, sum_xl)), D);
        const __m256 min_pos = _mm256_cmp_ps(this_min, zero, _CMP_GT_OQ);
        this_min = slm_select_x8(this_min, zero, min_pos);
        this_scale = slm_select_x8(this_scale, _mm256_div_ps(sum_xl, sum_l2), min_pos);
        __m256 cur_error = zero;
        for (int i = 0; i < n; ++i) {
            __m256 diff = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(this_scale, laux[i]), this_min), xt[i]);
            diff = use_mad ? slm_abs_x8(diff) : _mm256_mul_ps(diff, diff);
            cur_error = _mm256_add_ps(cur_error, _mm256_mul_ps(wt[i], diff));
        }
        const __m256 better = _mm256_and_ps(d_pos, _mm256_cmp_ps(cur_error, best_error, _CMP_LT_OQ));
        best_error = slm_select_x8(best_error, cur_error, better);
        scale = slm_select_x8(scale, this_scale, better);
        min = slm_select_x8(min, this_min, better);
        best_iscale = slm_select_x8(best_iscale, iscale, better);
        best_min_used = slm_select_x8(best_min_used, min_used, better);
    }
    if (Lt) { /* the codes ggml keeps: L = Laux of the last improvement (0 for flat lanes) */
        const __m256i keep = _mm256_castps_si256(_mm256_xor_ps(flat, _mm256_castsi256_ps(_mm256_set1_epi32(-1))));
        for (int i = 0; i < n; ++i) {
            const __m256 v = _mm256_mul_ps(best_iscale, _mm256_sub_ps(xt[i], best_min_used));
            Lt[i] = _mm256_and_si256(keep, slm_clamp_x8(slm_nearest_int_x8(v), 0, nmax));
        }
    }
    *the_min_out = slm_neg_x8(slm_select_x8(min, flat_min, flat));
    return slm_select_x8(scale, zero, flat);
}

/* Requantizes 32 values x with scale d (!= 0) and offset dm: L = clamp(nearest((x + dm) / d)). */
static inline SLM_AVX2 void k4_requantize_32_avx2(const float *restrict x, float d, float dm, int nmax,
                                                  uint8_t *restrict L) {
    const __m256 vd = _mm256_set1_ps(d), vdm = _mm256_set1_ps(dm);
    for (int c = 0; c < 4; c++) {
        __m256 v = _mm256_div_ps(_mm256_add_ps(_mm256_loadu_ps(x + 8 * c), vdm), vd);
        slm_store_bytes_x8(L + 8 * c, slm_clamp_x8(slm_nearest_int_x8(v), 0, nmax));
    }
}

/* quantize_block_q4_K_ref / _q5_K_ref up to the codes L[256]: the fields d, dmin, scales. */
static SLM_AVX2 void k4_block_avx2(const float *restrict x, int nmax, float rmin, int nstep, uint8_t *restrict packed,
                                   uint16_t *restrict d16, uint16_t *restrict dmin16, uint8_t *restrict L) {
    __m256 xt[32], wt[32];
    slm_load_transposed(xt, x, 32);
    __m256 sum_x2 = _mm256_setzero_ps();
    for (int l = 0; l < 32; ++l) sum_x2 = _mm256_add_ps(sum_x2, _mm256_mul_ps(xt[l], xt[l]));
    const __m256 av_x = _mm256_sqrt_ps(_mm256_div_ps(sum_x2, _mm256_set1_ps(32.f)));
    for (int l = 0; l < 32; ++l) wt[l] = _mm256_add_ps(av_x, slm_abs_x8(xt[l]));

    __m256 vmin;
    const __m256 vscale = make_qkx_quants_x8(32, nmax, xt, wt, &vmin, rmin, 0.1f, nstep, 0, NULL);
    float scales[8], mins[8];
    _mm256_storeu_ps(scales, vscale);
    _mm256_storeu_ps(mins, vmin);
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    memset(packed, 0, SLM_K_SCALE_SIZE);
    pack_k4_scales_ref(packed, d16, dmin16, scales, mins, max_scale, max_min);

    uint8_t sc, m;
    for (int j = 0; j < 8; ++j) {
        get_scale_min_k4(j, packed, &sc, &m);
        const float d = slm_f16_to_f32(*d16) * sc;
        if (!d) { /* ggml keeps the solver's codes: get them from the scalar solver */
            float unused_min;
            k4_subblock_fit_ref(x + 32 * j, nmax, rmin, nstep, L + 32 * j, &unused_min);
            continue;
        }
        const float dm = slm_f16_to_f32(*dmin16) * m;
        k4_requantize_32_avx2(x + 32 * j, d, dm, nmax, L + 32 * j);
    }
}

/* k4_block_weighted with the 8 sub-block fits in lanes. */
static SLM_AVX2 void k4_block_weighted_avx2(const float *restrict x, const float *restrict qw_block, int nmax,
                                            int clamp_63, uint8_t *restrict packed, uint16_t *restrict d16,
                                            uint16_t *restrict dmin16, uint8_t *restrict L) {
    const float sigma2 = sigma2_twice_mean_sq(x);
    __m256 xt[32], wt[32];
    slm_load_transposed(xt, x, 32);
    slm_load_transposed(wt, qw_block, 32);
    const __m256 vsigma2 = _mm256_set1_ps(sigma2);
    __m256 sumw = _mm256_setzero_ps();
    for (int l = 0; l < 32; ++l) {
        wt[l] = _mm256_mul_ps(wt[l], _mm256_sqrt_ps(_mm256_add_ps(vsigma2, _mm256_mul_ps(xt[l], xt[l]))));
        sumw = _mm256_add_ps(sumw, wt[l]);
    }
    __m256 vmin;
    const __m256 vscale = make_qkx_quants_x8(32, nmax, xt, wt, &vmin, -0.9f, 0.05f, 36, 0, NULL);
    float scales[8], mins[8], sw[8];
    _mm256_storeu_ps(scales, vscale);
    _mm256_storeu_ps(mins, vmin);
    _mm256_storeu_ps(sw, sumw);
    k4_pack_weighted_scales(packed, d16, dmin16, scales, mins, sw, clamp_63);

    uint8_t sc, m;
    for (int j = 0; j < 8; ++j) {
        get_scale_min_k4(j, packed, &sc, &m);
        const float d = slm_f16_to_f32(*d16) * sc;
        if (!d) { /* ggml keeps the solver's codes: get them from the scalar solver */
            float unused_min, unused_sumw;
            k4_weighted_subblock_fit(x + 32 * j, qw_block + 32 * j, sigma2, nmax, L + 32 * j, &unused_min,
                                     &unused_sumw);
            continue;
        }
        const float dm = slm_f16_to_f32(*dmin16) * m;
        k4_requantize_32_avx2(x + 32 * j, d, dm, nmax, L + 32 * j);
    }
}

static SLM_AVX2 void quantize_row_q4_K_avx2(const float *restrict x, slm_block_q4_K *restrict y, int64_t nb) {
    uint8_t L[SLM_QK_K];
    for (int64_t i = 0; i < nb; i++) {
        k4_block_avx2(x + i * SLM_QK_K, 15, -1.f, 20, y[i].scales, &y[i].d, &y[i].dmin, L);
        pack_q4_K_quants(y[i].qs, L);
    }
}

static SLM_AVX2 void quantize_row_q5_K_avx2(const float *restrict x, slm_block_q5_K *restrict y, int64_t nb) {
    uint8_t L[SLM_QK_K];
    for (int64_t i = 0; i < nb; i++) {
        k4_block_avx2(x + i * SLM_QK_K, 31, -0.5f, 15, y[i].scales, &y[i].d, &y[i].dmin, L);
        pack_q5_K_quants(y[i].qs, y[i].qh, L);
    }
}

/* make_qx_quants(n, nmax, x, L, rmse_type = 1, qw) for 8 sub-blocks; qt NULL: weights x^2. */
static SLM_AVX2 __m256 make_qx_quants_x8(int n, int nmax, const __m256 *restrict xt, const __m256 *restrict qt,
                                         __m256i *restrict Lt) {
    const __m256 zero = _mm256_setzero_ps();
    __m256 max = zero, amax = zero;
    for (int i = 0; i < n; ++i) {
        const __m256 ax = slm_abs_x8(xt[i]);
        const __m256 gt = _mm256_cmp_ps(ax, amax, _CMP_GT_OQ);
        amax = slm_select_x8(amax, ax, gt);
        max = slm_select_x8(max, xt[i], gt);
    }
    const __m256 all_zero = _mm256_cmp_ps(amax, _mm256_set1_ps(GROUP_MAX_EPS), _CMP_LT_OQ);

    __m256 iscale = _mm256_div_ps(_mm256_set1_ps((float)-nmax), max);
    __m256 sumlx = zero, suml2 = zero;
    for (int i = 0; i < n; ++i) {
        const __m256 lf =
            _mm256_cvtepi32_ps(slm_clamp_x8(slm_nearest_int_x8(_mm256_mul_ps(iscale, xt[i])), -nmax, nmax - 1));
        const __m256 w = qt ? qt[i] : _mm256_mul_ps(xt[i], xt[i]);
        sumlx = _mm256_add_ps(sumlx, _mm256_mul_ps(_mm256_mul_ps(w, xt[i]), lf));
        suml2 = _mm256_add_ps(suml2, _mm256_mul_ps(_mm256_mul_ps(w, lf), lf));
    }
    /* scale = suml2 ? sumlx/suml2 : 0 (NaN counts as true) */
    __m256 scale = slm_select_x8(zero, _mm256_div_ps(sumlx, suml2), _mm256_cmp_ps(suml2, zero, _CMP_NEQ_UQ));
    __m256 best = _mm256_mul_ps(scale, sumlx);
    __m256 best_iscale = iscale; /* what the kept codes L were computed with */
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        const float num = -(nmax + 0.1f * is);
        iscale = _mm256_div_ps(_mm256_set1_ps(num), max);
        sumlx = suml2 = zero;
        for (int i = 0; i < n; ++i) {
            const __m256 lf =
                _mm256_cvtepi32_ps(slm_clamp_x8(slm_nearest_int_x8(_mm256_mul_ps(iscale, xt[i])), -nmax, nmax - 1));
            const __m256 w = qt ? qt[i] : _mm256_mul_ps(xt[i], xt[i]);
            sumlx = _mm256_add_ps(sumlx, _mm256_mul_ps(_mm256_mul_ps(w, xt[i]), lf));
            suml2 = _mm256_add_ps(suml2, _mm256_mul_ps(_mm256_mul_ps(w, lf), lf));
        }
        const __m256 better =
            _mm256_and_ps(_mm256_cmp_ps(suml2, zero, _CMP_GT_OQ),
                          _mm256_cmp_ps(_mm256_mul_ps(sumlx, sumlx), _mm256_mul_ps(best, suml2), _CMP_GT_OQ));
        if (_mm256_movemask_ps(better) == 0) continue;
        const __m256 new_scale = _mm256_div_ps(sumlx, suml2);
        scale = slm_select_x8(scale, new_scale, better);
        best = slm_select_x8(best, _mm256_mul_ps(new_scale, sumlx), better);
        best_iscale = slm_select_x8(best_iscale, iscale, better);
    }
    if (Lt) { /* the codes ggml keeps: nmax + clamp(nearest(iscale * x)) of the last improvement */
        const __m256i keep = _mm256_castps_si256(_mm256_xor_ps(all_zero, _mm256_castsi256_ps(_mm256_set1_epi32(-1))));
        for (int i = 0; i < n; ++i) {
            const __m256i l = slm_clamp_x8(slm_nearest_int_x8(_mm256_mul_ps(best_iscale, xt[i])), -nmax, nmax - 1);
            Lt[i] = _mm256_and_si256(keep, _mm256_add_epi32(l, _mm256_set1_epi32(nmax)));
        }
    }
    return slm_select_x8(scale, zero, all_zero);
}

static SLM_AVX2 void quantize_block_q6_K_avx2(const float *restrict x, slm_block_q6_K *restrict y,
                                              const float *restrict qw) {
    int8_t L[SLM_QK_K];
    float scales[SLM_QK_K / 16];
    for (int g = 0; g < 2; g++) { /* sub-blocks 0..7, then 8..15 */
        __m256 xt[16], qt[16];
        slm_load_transposed(xt, x + 128 * g, 16);
        if (qw) slm_load_transposed(qt, qw + 128 * g, 16);
        _mm256_storeu_ps(scales + 8 * g, make_qx_quants_x8(16, 32, xt, qw ? qt : NULL, NULL));
    }

    float max_scale = 0;
    float max_abs_scale = 0;
    for (int ib = 0; ib < SLM_QK_K / 16; ++ib) {
        const float abs_scale = fabsf(scales[ib]);
        if (abs_scale > max_abs_scale) {
            max_abs_scale = abs_scale;
            max_scale = scales[ib];
        }
    }
    if (max_abs_scale < GROUP_MAX_EPS) {
        memset(y, 0, sizeof *y);
        y->d = slm_f32_to_f16(0.f);
        return;
    }
    float iscale = -128.f / max_scale;
    y->d = slm_f32_to_f16(1 / iscale);
    for (int ib = 0; ib < SLM_QK_K / 16; ++ib) {
        y->scales[ib] = (int8_t)SLM_MIN(127, slm_nearest_int(iscale * scales[ib]));
    }

    for (int j = 0; j < SLM_QK_K / 16; ++j) {
        const float d = slm_f16_to_f32(y->d) * y->scales[j];
        if (!d) { /* ggml keeps the solver's codes: get them from the scalar solver */
            slm_make_qx_quants(16, 32, x + 16 * j, L + 16 * j, 1, qw ? qw + 16 * j : NULL);
            continue;
        }
        const __m256 vd = _mm256_set1_ps(d);
        for (int c = 0; c < 2; c++) {
            __m256i l = slm_nearest_int_x8(_mm256_div_ps(_mm256_loadu_ps(x + 16 * j + 8 * c), vd));
            l = _mm256_add_epi32(slm_clamp_x8(l, -32, 31), _mm256_set1_epi32(32));
            slm_store_bytes_x8((uint8_t *)L + 16 * j + 8 * c, l);
        }
    }

    pack_q6_K_quants(y->ql, y->qh, L);
}

/* Loads 16 sub-blocks of 16 in two groups of 8 lanes: xt[16*g + i] lane j = x[128*g + 16*j + i]. */
static inline SLM_AVX2 void load_transposed_2x16(__m256 *restrict xt, const float *restrict x) {
    slm_load_transposed(xt, x, 16);
    slm_load_transposed(xt + 16, x + 128, 16);
}

/* Weights qw * sqrt(sigma2 + x^2) in place of qt, and per-lane sums of them in order. */
static inline SLM_AVX2 __m256 weigh_x8(__m256 *restrict qt, const __m256 *restrict xt, int n, float sigma2) {
    const __m256 vs = _mm256_set1_ps(sigma2);
    __m256 sumw = _mm256_setzero_ps();
    for (int l = 0; l < n; ++l) {
        qt[l] = _mm256_mul_ps(qt[l], _mm256_sqrt_ps(_mm256_add_ps(vs, _mm256_mul_ps(xt[l], xt[l]))));
        sumw = _mm256_add_ps(sumw, qt[l]);
    }
    return sumw;
}

/* q2_K_requantize for the sub-blocks with a nonzero scale; returns a bit per skipped sub-block. */
static SLM_AVX2 unsigned q2_K_requantize_avx2(const float *restrict x, const slm_block_q2_K *restrict y,
                                              uint8_t *restrict L) {
    unsigned skipped = 0;
    for (int j = 0; j < SLM_QK_K / 16; ++j) {
        const float d = slm_f16_to_f32(y->d) * (y->scales[j] & 0xF);
        if (!d) {
            skipped |= 1u << j;
            continue;
        }
        const float dm = slm_f16_to_f32(y->dmin) * (y->scales[j] >> 4);
        const __m256 vd = _mm256_set1_ps(d), vdm = _mm256_set1_ps(dm);
        for (int c = 0; c < 2; c++) {
            __m256 v = _mm256_div_ps(_mm256_add_ps(_mm256_loadu_ps(x + 16 * j + 8 * c), vdm), vd);
            slm_store_bytes_x8(L + 16 * j + 8 * c, slm_clamp_x8(slm_nearest_int_x8(v), 0, 3));
        }
    }
    return skipped;
}

static SLM_AVX2 void quantize_block_q2_K_avx2(const float *restrict x, slm_block_q2_K *restrict y,
                                              const float *restrict qw) {
    SLM_UNUSED(qw);
    uint8_t L[SLM_QK_K];
    float scales[SLM_QK_K / 16], mins[SLM_QK_K / 16];
    __m256 xt[32], wt[32];
    load_transposed_2x16(xt, x);
    for (int l = 0; l < 32; ++l) wt[l] = slm_abs_x8(xt[l]);
    for (int g = 0; g < 2; g++) {
        __m256 vmin;
        _mm256_storeu_ps(scales + 8 * g,
                         make_qkx_quants_x8(16, 3, xt + 16 * g, wt + 16 * g, &vmin, -0.5f, 0.1f, 15, 1, NULL));
        _mm256_storeu_ps(mins + 8 * g, vmin);
    }
    q2_K_pack_scales_ref(y, scales, mins);
    for (unsigned m = q2_K_requantize_avx2(x, y, L); m; m &= m - 1) { /* ggml keeps the solver's codes */
        const int j = __builtin_ctz(m);
        float unused_min;
        q2_K_subblock_fit_ref(x + 16 * j, L + 16 * j, &unused_min);
    }
    pack_2bit(y->qs, L);
}

static SLM_AVX2 void quantize_block_q2_K_weighted_avx2(const float *restrict x, slm_block_q2_K *restrict y,
                                                       const float *restrict qw) {
    uint8_t L[SLM_QK_K];
    float scales[SLM_QK_K / 16], mins[SLM_QK_K / 16], sw[SLM_QK_K / 16];
    const float sigma2 = q2_K_weighted_sigma2(x);
    __m256 xt[32], wt[32];
    load_transposed_2x16(xt, x);
    load_transposed_2x16(wt, qw);
    for (int g = 0; g < 2; g++) {
        _mm256_storeu_ps(sw + 8 * g, weigh_x8(wt + 16 * g, xt + 16 * g, 16, sigma2));
        __m256 vmin;
        _mm256_storeu_ps(scales + 8 * g,
                         make_qkx_quants_x8(16, 3, xt + 16 * g, wt + 16 * g, &vmin, -0.9f, 0.05f, 36, 0, NULL));
        _mm256_storeu_ps(mins + 8 * g, vmin);
    }
    q2_K_pack_weighted_scales(y, scales, mins, sw);
    for (unsigned m = q2_K_requantize_avx2(x, y, L); m; m &= m - 1) { /* ggml keeps the solver's codes */
        const int j = __builtin_ctz(m);
        float unused_min, unused_sumw;
        q2_K_weighted_subblock_fit(x + 16 * j, qw + 16 * j, sigma2, L + 16 * j, &unused_min, &unused_sumw);
    }
    pack_2bit(y->qs, L);
}

/* One coordinate-descent step of make_q3_quants for value i of 8 sub-blocks: try moving L[i] to
 * nearest(x * sl2 / slx) and keep it if the fit improves (lanes in `active` only). */
static inline SLM_AVX2 void q3_descent_step(__m256 x, __m256 *restrict Lf, __m256 *restrict sumlx,
                                            __m256 *restrict suml2, __m256 active, __m256 *restrict changed, int nmax) {
    const __m256 zero = _mm256_setzero_ps();
    const __m256 w = _mm256_mul_ps(x, x);
    const __m256 wx = _mm256_mul_ps(w, x);
    __m256 slx = _mm256_sub_ps(*sumlx, _mm256_mul_ps(wx, *Lf));
    const __m256 slx_pos = _mm256_cmp_ps(slx, zero, _CMP_GT_OQ);
    __m256 sl2 = _mm256_sub_ps(*suml2, _mm256_mul_ps(_mm256_mul_ps(w, *Lf), *Lf));
    const __m256 new_l = _mm256_cvtepi32_ps(
        slm_clamp_x8(slm_nearest_int_x8(_mm256_div_ps(_mm256_mul_ps(x, sl2), slx)), -nmax, nmax - 1));
    const __m256 differs = _mm256_cmp_ps(new_l, *Lf, _CMP_NEQ_OQ);
    slx = _mm256_add_ps(slx, _mm256_mul_ps(wx, new_l));
    sl2 = _mm256_add_ps(sl2, _mm256_mul_ps(_mm256_mul_ps(w, new_l), new_l));
    const __m256 better = _mm256_and_ps(_mm256_cmp_ps(sl2, zero, _CMP_GT_OQ),
                                        _mm256_cmp_ps(_mm256_mul_ps(_mm256_mul_ps(slx, slx), *suml2),
                                                      _mm256_mul_ps(_mm256_mul_ps(*sumlx, *sumlx), sl2), _CMP_GT_OQ));
    const __m256 upd = _mm256_and_ps(_mm256_and_ps(active, slx_pos), _mm256_and_ps(differs, better));
    *Lf = slm_select_x8(*Lf, new_l, upd);
    *sumlx = slm_select_x8(*sumlx, slx, upd);
    *suml2 = slm_select_x8(*suml2, sl2, upd);
    *changed = _mm256_or_ps(*changed, upd);
}

/* make_q3_quants(16, nmax, x, L, do_rmse = true) for the 16 sub-blocks of a q3_K super-block,
 * sub-blocks 8g..8g+7 in the lanes of group g (xt[16*g + i]). The two groups' descent chains are
 * interleaved step by step (each step waits on the previous one's division). A lane stops once
 * a pass changes nothing, as ggml's loop does. scales[16] out. */
static SLM_AVX2 void make_q3_quants_x16(int nmax, const __m256 *restrict xt, float *restrict scales) {
    const int n = 16;
    const __m256 zero = _mm256_setzero_ps();
    __m256 Lf[2][16], sumlx[2], suml2[2], all_zero[2], active[2];
    for (int g = 0; g < 2; g++) {
        const __m256 *x = xt + 16 * g;
        __m256 max = zero, amax = zero;
        for (int i = 0; i < n; ++i) {
            const __m256 ax = slm_abs_x8(x[i]);
            const __m256 gt = _mm256_cmp_ps(ax, amax, _CMP_GT_OQ);
            amax = slm_select_x8(amax, ax, gt);
            max = slm_select_x8(max, x[i], gt);
        }
        all_zero[g] = _mm256_cmp_ps(amax, _mm256_set1_ps(GROUP_MAX_EPS), _CMP_LT_OQ);
        const __m256 iscale = _mm256_div_ps(_mm256_set1_ps((float)-nmax), max);
        sumlx[g] = suml2[g] = zero;
        for (int i = 0; i < n; ++i) {
            Lf[g][i] =
                _mm256_cvtepi32_ps(slm_clamp_x8(slm_nearest_int_x8(_mm256_mul_ps(iscale, x[i])), -nmax, nmax - 1));
            const __m256 w = _mm256_mul_ps(x[i], x[i]);
            sumlx[g] = _mm256_add_ps(sumlx[g], _mm256_mul_ps(_mm256_mul_ps(w, x[i]), Lf[g][i]));
            suml2[g] = _mm256_add_ps(suml2[g], _mm256_mul_ps(_mm256_mul_ps(w, Lf[g][i]), Lf[g][i]));
        }
        active[g] = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    }
    for (int itry = 0; itry < 5; ++itry) {
        __m256 changed[2] = {zero, zero};
        for (int i = 0; i < n; ++i) {
            q3_descent_step(xt[i], &Lf[0][i], &sumlx[0], &suml2[0], active[0], &changed[0], nmax);
            q3_descent_step(xt[16 + i], &Lf[1][i], &sumlx[1], &suml2[1], active[1], &changed[1], nmax);
        }
        active[0] = _mm256_and_ps(active[0], changed[0]);
        active[1] = _mm256_and_ps(active[1], changed[1]);
        if (!_mm256_movemask_ps(_mm256_or_ps(active[0], active[1]))) break;
    }
    for (int g = 0; g < 2; g++) {
        const __m256 scale =
            slm_select_x8(zero, _mm256_div_ps(sumlx[g], suml2[g]), _mm256_cmp_ps(suml2[g], zero, _CMP_GT_OQ));
        _mm256_storeu_ps(scales + 8 * g, slm_select_x8(scale, zero, all_zero[g]));
    }
}

/* q3_K_requantize for the sub-blocks with a nonzero scale; returns a bit per skipped sub-block. */
static SLM_AVX2 unsigned q3_K_requantize_avx2(const float *restrict x, const slm_block_q3_K *restrict y,
                                              int8_t *restrict L) {
    unsigned skipped = 0;
    for (int j = 0; j < SLM_QK_K / 16; ++j) {
        const float d = slm_f16_to_f32(y->d) * q3_K_scale(y, j);
        if (!d) {
            skipped |= 1u << j;
            continue;
        }
        const __m256 vd = _mm256_set1_ps(d);
        for (int c = 0; c < 2; c++) {
            __m256i l = slm_clamp_x8(slm_nearest_int_x8(_mm256_div_ps(_mm256_loadu_ps(x + 16 * j + 8 * c), vd)), -4, 3);
            slm_store_bytes_x8((uint8_t *)L + 16 * j + 8 * c, _mm256_add_epi32(l, _mm256_set1_epi32(4)));
        }
    }
    return skipped;
}

static SLM_AVX2 void quantize_block_q3_K_avx2(const float *restrict x, slm_block_q3_K *restrict y,
                                              const float *restrict qw) {
    SLM_UNUSED(qw);
    int8_t L[SLM_QK_K];
    float scales[SLM_QK_K / 16];
    __m256 xt[32];
    load_transposed_2x16(xt, x);
    make_q3_quants_x16(4, xt, scales);
    q3_K_pack_scales_ref(y, scales);
    for (unsigned m = q3_K_requantize_avx2(x, y, L); m; m &= m - 1) { /* ggml keeps the solver's codes */
        const int j = __builtin_ctz(m);
        make_q3_quants(16, 4, x + 16 * j, L + 16 * j, 1);
    }
    q3_K_pack(y, L);
}

static SLM_AVX2 void quantize_block_q3_K_weighted_avx2(const float *restrict x, slm_block_q3_K *restrict y,
                                                       const float *restrict qw) {
    int8_t L[SLM_QK_K];
    float scales[SLM_QK_K / 16], sw[SLM_QK_K / 16];
    const float sigma2 = sigma2_twice_mean_sq(x);
    __m256 xt[32], wt[32];
    load_transposed_2x16(xt, x);
    load_transposed_2x16(wt, qw);
    for (int g = 0; g < 2; g++) {
        _mm256_storeu_ps(sw + 8 * g, weigh_x8(wt + 16 * g, xt + 16 * g, 16, sigma2));
        _mm256_storeu_ps(scales + 8 * g, make_qx_quants_x8(16, 4, xt + 16 * g, wt + 16 * g, NULL));
    }
    q3_K_pack_weighted_scales(y, scales, sw);
    for (unsigned m = q3_K_requantize_avx2(x, y, L); m; m &= m - 1) { /* ggml keeps the solver's codes */
        const int j = __builtin_ctz(m);
        float unused_sumw;
        q3_K_weighted_subblock_fit(x + 16 * j, qw + 16 * j, sigma2, L + 16 * j, &unused_sumw);
    }
    q3_K_pack(y, L);
}

/* Transposes 32 code vectors back (Lt[i] lane b = code i of group b) and stores L[32*b + i]. */
static SLM_AVX2 void store_codes_8x32(uint8_t *restrict L, const __m256i *restrict Lt) {
    for (int c = 0; c < 4; c++) {
        __m256 r[8];
        for (int k = 0; k < 8; k++) r[k] = _mm256_castsi256_ps(Lt[8 * c + k]);
        slm_transpose_8x8(r);
        for (int b = 0; b < 8; b++) slm_store_bytes_x8(L + 32 * b + 8 * c, _mm256_castps_si256(r[b]));
    }
}

SLM_AVX2 void slm_make_qx_quants_8x32(int nmax, const float *restrict x, const float *restrict w, int8_t *restrict L,
                                      float *restrict scales) {
    __m256 xt[32], wt[32];
    __m256i Lt[32];
    slm_load_transposed(xt, x, 32);
    slm_load_transposed(wt, w, 32);
    _mm256_storeu_ps(scales, make_qx_quants_x8(32, nmax, xt, wt, Lt));
    store_codes_8x32((uint8_t *)L, Lt);
}

SLM_AVX2 void slm_make_qkx3_quants_8x32(int nmax, const float *restrict x, const float *restrict w, uint8_t *restrict L,
                                        float *restrict scales, float *restrict the_mins, float rmin, float rdelta,
                                        int nstep) {
    __m256 xt[32], wt[32];
    __m256i Lt[32];
    slm_load_transposed(xt, x, 32);
    slm_load_transposed(wt, w, 32);
    __m256 vmin;
    _mm256_storeu_ps(scales, make_qkx_quants_x8(32, nmax, xt, wt, &vmin, rmin, rdelta, nstep, 0, Lt));
    _mm256_storeu_ps(the_mins, vmin);
    store_codes_8x32(L, Lt);
}

#endif /* SLM_X86_KERNELS */

/* ====================== q8_K: activations only (ggml's vec_dot type of the k-quants) */

static void quantize_block_q8_K_ref(const float *restrict xb, slm_block_q8_K *restrict y) {
    float max = 0.0f, amax = 0.0f;
    for (int j = 0; j < SLM_QK_K; ++j) {
        const float ax = fabsf(xb[j]);
        if (ax > amax) {
            amax = ax;
            max = xb[j];
        }
    }
    if (!amax) {
        y->d = 0.0f;
        memset(y->qs, 0, SLM_QK_K);
        memset(y->bsums, 0, sizeof y->bsums);
        return;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < SLM_QK_K; ++j) {
        const int v = slm_nearest_int(iscale * xb[j]);
        y->qs[j] = (int8_t)SLM_MIN(127, v);
    }
    for (int j = 0; j < SLM_QK_K / 16; ++j) {
        int sum = 0;
        for (int ii = 0; ii < 16; ++ii) sum += y->qs[j * 16 + ii];
        y->bsums[j] = (int16_t)sum;
    }
    y->d = 1 / iscale;
}

void slm_quantize_row_q8_K_ref(const float *restrict x, void *restrict vy, int64_t k) {
    SLM_ASSERT(k % SLM_QK_K == 0);
    slm_block_q8_K *restrict y = vy;
    for (int64_t i = 0; i < k / SLM_QK_K; i++) quantize_block_q8_K_ref(x + i * SLM_QK_K, &y[i]);
}

#if SLM_X86_KERNELS
/* quantize_block_q8_K_ref's bytes in AVX2: amax as a vector max, max = the first x with |x| ==
 * amax (the value the reference's strict > keeps), the quants with the same float product and
 * nearest_int, each bsum as a byte sum (sad of the quants + 128). 0 (nothing written) when the
 * block holds a NaN or an Inf: the reference does those. */
static SLM_AVX2 int quantize_block_q8_K_avx2(const float *restrict xb, slm_block_q8_K *restrict y) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)), inf = _mm256_set1_ps(INFINITY);
    __m256 vmax = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
    for (int j = 0; j < SLM_QK_K; j += 8) {
        const __m256 ax = _mm256_and_ps(_mm256_loadu_ps(xb + j), absmask);
        bad = _mm256_or_ps(bad, _mm256_cmp_ps(ax, inf, _CMP_NLT_UQ)); /* NaN or Inf */
        vmax = _mm256_max_ps(vmax, ax);
    }
    if (_mm256_movemask_ps(bad)) return 0;
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float amax = _mm_cvtss_f32(m);
    if (!amax) {
        quantize_block_q8_K_ref(xb, y);
        return 1;
    }
    int first = 0;
    while (fabsf(xb[first]) != amax) first++;
    const float iscale = -127.f / xb[first];
    const __m256 vs = _mm256_set1_ps(iscale);
    const __m256i top = _mm256_set1_epi32(127), perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const __m256i bias = _mm256_set1_epi8((char)0x80);
    for (int j = 0; j < SLM_QK_K; j += 32) {
        __m256i v[4];
        for (int t = 0; t < 4; t++)
            v[t] = _mm256_min_epi32(slm_nearest_int_x8(_mm256_mul_ps(vs, _mm256_loadu_ps(xb + j + 8 * t))), top);
        const __m256i q = _mm256_permutevar8x32_epi32(
            _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3])), perm);
        _mm256_storeu_si256((__m256i *)(void *)(y->qs + j), q);
        __m256i sad = _mm256_sad_epu8(_mm256_xor_si256(q, bias), _mm256_setzero_si256());
        sad = _mm256_add_epi64(sad, _mm256_shuffle_epi32(sad, 0x4e)); /* qword 0 of each lane: 16 bytes */
        y->bsums[j / 16] = (int16_t)(_mm256_cvtsi256_si32(sad) - 16 * 128);
        y->bsums[j / 16 + 1] = (int16_t)(_mm256_extract_epi32(sad, 4) - 16 * 128);
    }
    y->d = 1 / iscale;
    return 1;
}
#endif

void slm_quantize_row_q8_K(const float *restrict x, void *restrict vy, int64_t k) {
    SLM_ASSERT(k % SLM_QK_K == 0);
    slm_block_q8_K *restrict y = vy;
#if SLM_X86_KERNELS
    if (slm_quant_use_avx2(SLM_KERNEL_AUTO)) {
        for (int64_t i = 0; i < k / SLM_QK_K; i++)
            if (!quantize_block_q8_K_avx2(x + i * SLM_QK_K, &y[i])) quantize_block_q8_K_ref(x + i * SLM_QK_K, &y[i]);
        return;
    }
#endif
    slm_quantize_row_q8_K_ref(x, vy, k);
}

void slm_dequantize_row_q8_K(const void *restrict vx, float *restrict y, int64_t k) {
    SLM_ASSERT(k % SLM_QK_K == 0);
    const int64_t nb = k / SLM_QK_K;
    const slm_block_q8_K *restrict x = vx;
    for (int64_t i = 0; i < nb; i++)
        for (int j = 0; j < SLM_QK_K; ++j) y[i * SLM_QK_K + j] = x[i].d * x[i].qs[j];
}
