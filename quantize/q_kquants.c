/* q_kquants.c - ggml's k-quants q2_K q3_K q4_K q5_K q6_K (256-element super-blocks) and the
 * scale solvers they share with the legacy importance-weighted paths.
 *
 * Owns: slm_quantize_row_<t>_ref, slm_dequantize_row_<t>, slm_quantize_<t> (with ggml's _impl
 * paths for importance weights), nearest-int based solvers make_qx_quants, make_q3_quants,
 * make_qkx2_quants, make_qkx3_quants, make_qp_quants. Every float expression keeps ggml's
 * evaluation order, float32 only, no fused multiply-add: the golden tests compare bytes.
 * Must not: allocate (scratch is on the stack), print, or know about files.
 */
#include "quantize/quants.h"

#include <math.h>
#include <string.h>

#include "core/dtype.h"
#include "core/slm.h"

#define GROUP_MAX_EPS 1e-15f /* ggml: a group with |x| below this is "all zero" */

/* ===================== solvers (ggml-quants.c "Helper functions") */

/* make_qx_quants' weight of value i: qw, else by rmse_type x^2, 1, |x|, sqrt|x|. */
static inline float qx_weight(const float *restrict qw, const float *restrict x, int i, int rmse_type) {
    return qw ? qw[i] : rmse_type == 1 ? x[i] * x[i] : rmse_type == 2 ? 1 : rmse_type == 3 ? fabsf(x[i]) : sqrtf(fabsf(x[i]));
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
    float sumlx = 0;
    float suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = slm_nearest_int(iscale * x[i]);
        l = SLM_MAX(-nmax, SLM_MIN(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
        float w = qx_weight(qw, x, i, rmse_type);
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
            float w = qx_weight(qw, x, i, rmse_type);
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
 * (|diff| if use_mad, else diff^2). Returns the scale, *the_min = -min. */
static float make_qkx2_quants(int n, int nmax, const float *restrict x, const float *restrict weights,
                              uint8_t *restrict L, float *restrict the_min, uint8_t *restrict Laux, float rmin,
                              float rdelta, int nstep, int use_mad) {
    float min = x[0];
    float max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; ++i) {
        int l = slm_nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)SLM_MAX(0, SLM_MIN(nmax, l));
        float diff = scale * L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        float w = weights[i];
        best_error += w * diff;
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
            float w = weights[i];
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
            float cur_error = 0;
            for (int i = 0; i < n; ++i) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                float w = weights[i];
                cur_error += w * diff;
            }
            if (cur_error < best_error) {
                for (int i = 0; i < n; ++i) L[i] = Laux[i];
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* As make_qkx2_quants, with weights x^2 when `weights` is NULL and `max <= min` as the flat test. */
float slm_make_qkx3_quants(int n, int nmax, const float *restrict x, const float *restrict weights,
                           uint8_t *restrict L, float *restrict the_min, uint8_t *restrict Laux, float rmin,
                           float rdelta, int nstep, int use_mad) {
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
static float make_qp_quants(int n, int nmax, const float *restrict x, uint8_t *restrict L,
                            const float *quant_weights) {
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

/* 2-bit codes L[256] into 64 bytes: byte j/4+l holds values j+l, +32, +64, +96 (j = 0, 128). */
static void pack_2bit(uint8_t *restrict qs, const uint8_t *restrict L) {
    for (int j = 0; j < SLM_QK_K; j += 128) {
        for (int l = 0; l < 32; ++l) {
            qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
        }
    }
}

/* ========================= 2-bit (de)-quantization */

static void quantize_block_q2_K_ref(const float *restrict x, slm_block_q2_K *restrict y) {
    uint8_t L[SLM_QK_K];
    uint8_t Laux[16];
    float weights[16];
    float mins[SLM_QK_K / 16];
    float scales[SLM_QK_K / 16];
    const float q4scale = 15.f;

    float max_scale = 0; /* as we are deducting the min, scales are always positive */
    float max_min = 0;
    for (int j = 0; j < SLM_QK_K / 16; ++j) {
        for (int l = 0; l < 16; ++l) weights[l] = fabsf(x[16 * j + l]);
        scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, 1);
        float scale = scales[j];
        if (scale > max_scale) max_scale = scale;
        float min = mins[j];
        if (min > max_min) max_min = min;
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
            y->scales[j] |= (uint8_t)(l << 4);
        }
        y->dmin = slm_f32_to_f16(max_min / q4scale);
    } else {
        y->dmin = slm_f32_to_f16(0.f);
    }
    for (int j = 0; j < SLM_QK_K / 16; ++j) {
        const float d = slm_f16_to_f32(y->d) * (y->scales[j] & 0xF);
        if (!d) continue;
        const float dm = slm_f16_to_f32(y->dmin) * (y->scales[j] >> 4);
        for (int ii = 0; ii < 16; ++ii) {
            int l = slm_nearest_int((x[16 * j + ii] + dm) / d);
            L[16 * j + ii] = (uint8_t)SLM_MAX(0, SLM_MIN(3, l));
        }
    }
    pack_2bit(y->qs, L);
}

void slm_quantize_row_q2_K_ref(const float *restrict x, void *restrict vy, int64_t k) {
    SLM_ASSERT(k % SLM_QK_K == 0);
    const int64_t nb = k / SLM_QK_K;
    slm_block_q2_K *restrict y = vy;
    for (int64_t i = 0; i < nb; i++) quantize_block_q2_K_ref(x + i * SLM_QK_K, &y[i]);
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

/* ggml's quantize_row_q2_K_impl: needs weights (ggml asserts), 16 weighted sub-blocks, then the
 * sub-block scales and mins themselves fitted by make_qp_quants. */
static void quantize_row_q2_K_impl(const float *restrict x, slm_block_q2_K *restrict y, int64_t n_per_row,
                                   const float *restrict quant_weights) {
    const int64_t nb = n_per_row / SLM_QK_K;
    uint8_t L[SLM_QK_K];
    uint8_t Laux[16];
    float mins[SLM_QK_K / 16];
    float scales[SLM_QK_K / 16];
    float sw[SLM_QK_K / 16];
    float weight[16];
    uint8_t Ls[SLM_QK_K / 16], Lm[SLM_QK_K / 16];

    for (int64_t i = 0; i < nb; i++) {
        memset(sw, 0, sizeof sw);
        float sumx2 = 0;
        for (int j = 0; j < SLM_QK_K; ++j) sumx2 += x[j] * x[j];
        float sigma2 = sumx2 / SLM_QK_K;
        for (int j = 0; j < SLM_QK_K / 16; ++j) {
            const float *restrict qw = quant_weights + SLM_QK_K * i + 16 * j;
            for (int l = 0; l < 16; ++l) weight[l] = qw[l] * sqrtf(sigma2 + x[16 * j + l] * x[16 * j + l]);
            for (int l = 0; l < SLM_QK_K / 16; ++l) sw[j] += weight[l];
            scales[j] = slm_make_qkx3_quants(16, 3, x + 16 * j, weight, L + 16 * j, &mins[j], Laux, -0.9f, 0.05f, 36, 0);
        }

        float dm = make_qp_quants(SLM_QK_K / 16, 15, scales, Ls, sw);
        float mm = make_qp_quants(SLM_QK_K / 16, 15, mins, Lm, sw);
        y[i].d = slm_f32_to_f16(dm);
        y[i].dmin = slm_f32_to_f16(mm);
        dm = slm_f16_to_f32(y[i].d);
        mm = slm_f16_to_f32(y[i].dmin);

        for (int j = 0; j < SLM_QK_K / 16; ++j) y[i].scales[j] = (uint8_t)(Ls[j] | (Lm[j] << 4));

        /* ggml's `requantize = true` branch */
        for (int j = 0; j < SLM_QK_K / 16; ++j) {
            const float d = dm * (y[i].scales[j] & 0xF);
            if (!d) continue;
            const float m = mm * (y[i].scales[j] >> 4);
            for (int ii = 0; ii < 16; ++ii) {
                int l = slm_nearest_int((x[16 * j + ii] + m) / d);
                L[16 * j + ii] = (uint8_t)SLM_MAX(0, SLM_MIN(3, l));
            }
        }
        pack_2bit(y[i].qs, L);
        x += SLM_QK_K;
    }
}

size_t slm_quantize_q2_K(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                         const float *imatrix) {
    SLM_ASSERT(n_per_row % SLM_QK_K == 0);
    const size_t row_size = (size_t)(n_per_row / SLM_QK_K) * sizeof(slm_block_q2_K);
    if (!imatrix) {
        slm_quantize_row_q2_K_ref(src, dst, nrow * n_per_row);
        return (size_t)nrow * row_size;
    }
    char *qrow = dst;
    for (int64_t row = 0; row < nrow; ++row) {
        quantize_row_q2_K_impl(src, (slm_block_q2_K *)qrow, n_per_row, imatrix);
        src += n_per_row;
        qrow += row_size;
    }
    return (size_t)nrow * row_size;
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

/* Requantizes x with the stored (fp16-rounded) scales to L in [0, 7], then splits L into hmask
 * (bit 2; the first 32 values in bit 0 of hmask[0..31], the next 32 in bit 1, ...) and qs. */
static void q3_K_requantize_and_pack(const float *restrict x, slm_block_q3_K *restrict y, int8_t *restrict L) {
    for (int j = 0; j < SLM_QK_K / 16; ++j) {
        int8_t sc = (int8_t)(j < 8 ? y->scales[j] & 0xF : y->scales[j - 8] >> 4);
        sc = (int8_t)((sc | (((y->scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32);
        float d = slm_f16_to_f32(y->d) * sc;
        if (!d) continue;
        for (int ii = 0; ii < 16; ++ii) {
            int l = slm_nearest_int(x[16 * j + ii] / d);
            l = SLM_MAX(-4, SLM_MIN(3, l));
            L[16 * j + ii] = (int8_t)(l + 4);
        }
    }

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

static void quantize_block_q3_K_ref(const float *restrict x, slm_block_q3_K *restrict y) {
    int8_t L[SLM_QK_K];
    float scales[SLM_QK_K / 16];

    float max_scale = 0;
    float amax = 0;
    for (int j = 0; j < SLM_QK_K / 16; ++j) {
        scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j, 1);
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
    q3_K_requantize_and_pack(x, y, L);
}

void slm_quantize_row_q3_K_ref(const float *restrict x, void *restrict vy, int64_t k) {
    SLM_ASSERT(k % SLM_QK_K == 0);
    const int64_t nb = k / SLM_QK_K;
    slm_block_q3_K *restrict y = vy;
    for (int64_t i = 0; i < nb; i++) quantize_block_q3_K_ref(x + i * SLM_QK_K, &y[i]);
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

static void quantize_row_q3_K_impl(const float *restrict x, slm_block_q3_K *restrict y, int64_t n_per_row,
                                   const float *restrict quant_weights) {
    const int64_t nb = n_per_row / SLM_QK_K;
    int8_t L[SLM_QK_K];
    float scales[SLM_QK_K / 16];
    float weight[16];
    float sw[SLM_QK_K / 16];
    int8_t Ls[SLM_QK_K / 16];

    for (int64_t i = 0; i < nb; i++) {
        float sumx2 = 0;
        for (int j = 0; j < SLM_QK_K; ++j) sumx2 += x[j] * x[j];
        float sigma2 = 2 * sumx2 / SLM_QK_K;

        for (int j = 0; j < SLM_QK_K / 16; ++j) {
            const float *restrict qw = quant_weights + SLM_QK_K * i + 16 * j;
            for (int l = 0; l < 16; ++l) weight[l] = qw[l] * sqrtf(sigma2 + x[16 * j + l] * x[16 * j + l]);
            float sumw = 0;
            for (int l = 0; l < 16; ++l) sumw += weight[l];
            sw[j] = sumw;
            scales[j] = slm_make_qx_quants(16, 4, x + 16 * j, L + 16 * j, 1, weight);
        }

        float d_block = slm_make_qx_quants(SLM_QK_K / 16, 32, scales, Ls, 1, sw);
        int Lsi[SLM_QK_K / 16];
        for (int j = 0; j < SLM_QK_K / 16; ++j) Lsi[j] = Ls[j];
        pack_q3_K_scales(y[i].scales, Lsi);
        y[i].d = slm_f32_to_f16(d_block);

        q3_K_requantize_and_pack(x, &y[i], L);
        x += SLM_QK_K;
    }
}

size_t slm_quantize_q3_K(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                         const float *imatrix) {
    SLM_ASSERT(n_per_row % SLM_QK_K == 0);
    const size_t row_size = (size_t)(n_per_row / SLM_QK_K) * sizeof(slm_block_q3_K);
    if (!imatrix) {
        slm_quantize_row_q3_K_ref(src, dst, nrow * n_per_row);
        return (size_t)nrow * row_size;
    }
    char *qrow = dst;
    for (int64_t row = 0; row < nrow; ++row) {
        quantize_row_q3_K_impl(src, (slm_block_q3_K *)qrow, n_per_row, imatrix);
        src += n_per_row;
        qrow += row_size;
    }
    return (size_t)nrow * row_size;
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

/* The unweighted q4_K/q5_K sub-block fit: weights av_x + |x| with av_x the sub-block RMS. */
static void k4_subblock_fits_ref(const float *restrict x, int nmax, float rmin, int nstep, uint8_t *restrict L,
                                 float *restrict scales, float *restrict mins, float *max_scale, float *max_min) {
    uint8_t Laux[32];
    float weights[32];
    *max_scale = 0; /* as we are deducting the min, scales are always positive */
    *max_min = 0;
    for (int j = 0; j < SLM_QK_K / 32; ++j) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; ++l) weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep, 0);
        float scale = scales[j];
        if (scale > *max_scale) *max_scale = scale;
        float min = mins[j];
        if (min > *max_min) *max_min = min;
    }
}

/* The weighted q4_K/q5_K path: weights qw * sqrt(sigma2 + x^2), sigma2 = 2 * mean(x^2) of the
 * super-block; scales and mins fitted with make_qp_quants against the per-sub-block weight sums. */
static void k4_block_weighted(const float *restrict x, const float *restrict qw_block, int nmax, int clamp_63,
                              uint8_t *restrict packed, uint16_t *restrict d16, uint16_t *restrict dmin16,
                              uint8_t *restrict L) {
    uint8_t Laux[32];
    uint8_t Ls[SLM_QK_K / 32];
    uint8_t Lm[SLM_QK_K / 32];
    float weights[32];
    float sw[SLM_QK_K / 32];
    float mins[SLM_QK_K / 32];
    float scales[SLM_QK_K / 32];

    float sum_x2 = 0;
    for (int l = 0; l < SLM_QK_K; ++l) sum_x2 += x[l] * x[l];
    float sigma2 = 2 * sum_x2 / SLM_QK_K;

    for (int j = 0; j < SLM_QK_K / 32; ++j) {
        const float *restrict qw = qw_block + 32 * j;
        for (int l = 0; l < 32; ++l) weights[l] = qw[l] * sqrtf(sigma2 + x[32 * j + l] * x[32 * j + l]);
        float sumw = 0;
        for (int l = 0; l < 32; ++l) sumw += weights[l];
        sw[j] = sumw;
        scales[j] = slm_make_qkx3_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -0.9f, 0.05f, 36, 0);
    }

    float d_block = make_qp_quants(SLM_QK_K / 32, 63, scales, Ls, sw);
    float m_block = make_qp_quants(SLM_QK_K / 32, 63, mins, Lm, sw);
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

size_t slm_quantize_q4_K(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                         const float *imatrix) {
    SLM_ASSERT(n_per_row % SLM_QK_K == 0);
    const int64_t nb = n_per_row / SLM_QK_K;
    const size_t row_size = (size_t)nb * sizeof(slm_block_q4_K);
    if (!imatrix) {
        slm_quantize_row_q4_K_ref(src, dst, nrow * n_per_row);
        return (size_t)nrow * row_size;
    }
    char *qrow = dst;
    for (int64_t row = 0; row < nrow; ++row) {
        slm_block_q4_K *y = (slm_block_q4_K *)qrow;
        for (int64_t i = 0; i < nb; i++) {
            uint8_t L[SLM_QK_K];
            k4_block_weighted(src + i * SLM_QK_K, imatrix + i * SLM_QK_K, 15, 0, y[i].scales, &y[i].d, &y[i].dmin, L);
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

size_t slm_quantize_q5_K(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                         const float *imatrix) {
    SLM_ASSERT(n_per_row % SLM_QK_K == 0);
    const int64_t nb = n_per_row / SLM_QK_K;
    const size_t row_size = (size_t)nb * sizeof(slm_block_q5_K);
    if (!imatrix) {
        slm_quantize_row_q5_K_ref(src, dst, nrow * n_per_row);
        return (size_t)nrow * row_size;
    }
    char *qrow = dst;
    for (int64_t row = 0; row < nrow; ++row) {
        slm_block_q5_K *y = (slm_block_q5_K *)qrow;
        for (int64_t i = 0; i < nb; i++) {
            uint8_t L[SLM_QK_K];
            k4_block_weighted(src + i * SLM_QK_K, imatrix + i * SLM_QK_K, 31, 1, y[i].scales, &y[i].d, &y[i].dmin, L);
            pack_q5_K_quants(y[i].qs, y[i].qh, L);
        }
        src += n_per_row;
        qrow += row_size;
    }
    return (size_t)nrow * row_size;
}

/* ========================= 6-bit (de)-quantization */

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

    uint8_t *restrict ql = y->ql;
    uint8_t *restrict qh = y->qh;
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

size_t slm_quantize_q6_K(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                         const float *imatrix) {
    SLM_ASSERT(n_per_row % SLM_QK_K == 0);
    const int64_t nb = n_per_row / SLM_QK_K;
    const size_t row_size = (size_t)nb * sizeof(slm_block_q6_K);
    if (!imatrix) {
        slm_quantize_row_q6_K_ref(src, dst, nrow * n_per_row);
        return (size_t)nrow * row_size;
    }
    char *qrow = dst;
    for (int64_t row = 0; row < nrow; ++row) {
        slm_block_q6_K *y = (slm_block_q6_K *)qrow;
        for (int64_t i = 0; i < nb; i++) quantize_block_q6_K(src + i * SLM_QK_K, &y[i], imatrix + i * SLM_QK_K);
        src += n_per_row;
        qrow += row_size;
    }
    return (size_t)nrow * row_size;
}
