/* q_iq1.c - ggml's ternary lattice formats iq1_s (1.5625 bpw, 8 sub-blocks of 32) and iq1_m
 * (1.75 bpw, 16 sub-blocks of 16): groups of 8 values on a 2048-point grid of -1/0/+1
 * coordinates, shifted by +-IQ1S_DELTA, with 3-bit sub-block scales.
 *
 * Owns: slm_quantize_<t>_kernel (ggml's quantize_<t>), slm_dequantize_row_<t>, and ggml's exact
 * split search: values sorted, every pair of boundaries (i1, i2) splitting them into the levels
 * -1, 0, +1 scored with prefix sums, for both delta signs. ggml_quantize_chunk asserts importance
 * weights for iq1_s (so does the kernel here; slm_quantize_tensor refuses first); iq1_m has
 * ggml's weightless formula. ggml sorts with qsort on the value alone; glibc's (2.36, which
 * produced ggml's golden bytes here) is a stable merge sort, so ties keep index order, which is
 * what sort_by_value does on every libc.
 * Must not: reorder float expressions (precomputed terms are the very sub-expressions ggml
 * evaluates), allocate, print, or know about files.
 */
#define SLM_QUANTS_AVX2_HELPERS
#include <float.h>
#include <math.h>
#include <string.h>

#include "core/dtype.h"
#include "core/le.h"
#include "core/slm.h"
#include "quantize/q_iq_common.h"
#include "quantize/quants.h"

#define GROUP_MAX_EPS_IQ1_S 1e-12f /* ggml: a sub-block below this is all zero */
#define GROUP_MAX_EPS_IQ1_M 1e-7f

/* The three levels with delta added (shift +1) or subtracted (shift -1): ggml's x_p and x_m. */
static const float k_x_p[3] = {-1 + SLM_IQ1S_DELTA, SLM_IQ1S_DELTA, 1 + SLM_IQ1S_DELTA};
static const float k_x_m[3] = {-1 - SLM_IQ1S_DELTA, -SLM_IQ1S_DELTA, 1 - SLM_IQ1S_DELTA};

/* idx[0..n) = 0..n-1 ordered by x[idx] ascending, ties in index order (stable insertion sort). */
static void sort_by_value(const float *restrict x, int *restrict idx, int n) {
    for (int j = 0; j < n; ++j) {
        int i = j;
        while (i > 0 && x[idx[i - 1]] > x[j]) {
            idx[i] = idx[i - 1];
            i--;
        }
        idx[i] = j;
    }
}

static float amax_of(const float *restrict x, int n) {
    float max = fabsf(x[0]);
    for (int i = 1; i < n; ++i) max = SLM_MAX(max, fabsf(x[i]));
    return max;
}

/* ggml's iq1_find_best_neighbour2: the neighbour of an off-grid key (map value m) nearest to x in
 * sum w * (scale * xg[level] - x)^2, xg the levels with the chosen delta. Writes its levels to L and
 * returns its grid index. */
static int iq1_best_neighbour(const slm_iq_lattice *lat, int32_t m, const float *restrict x, const float *restrict w,
                              float scale, const float *restrict xg, int8_t *restrict L, int avx2) {
    /* ggml's term w * diff * diff depends only on the coordinate and its level (3 of them): form
     * each once (the same products); slm_iq_nearest_key adds them per neighbour in ggml's order */
    float term[8 * SLM_IQ_TERM_STRIDE];
    for (int i = 0; i < 8; ++i) {
        for (int l = 0; l < 3; ++l) {
            const float diff = scale * xg[l] - x[i];
            term[SLM_IQ_TERM_STRIDE * i + l] = w[i] * diff * diff;
        }
    }
    int best = slm_iq_nearest_key(lat, m, term, avx2), g = best < 0 ? -1 : lat->map[best];
    if (g < 0) {
        /* Every distance NaN or >= FLT_MAX (values near the float range). ggml then scans the whole
         * grid but reads x[grid index], past the 8 values (undefined); this scans it with x[i], and
         * where ggml would assert at the end takes the first neighbour. No ggml output to match. */
        float best_d2 = FLT_MAX;
        for (int p = 0; p < lat->grid_size; ++p) {
            float d2 = 0;
            for (int i = 0; i < 8; ++i) {
                const float diff = scale * xg[lat->level[p * 8 + i]] - x[i];
                d2 += w[i] * diff * diff;
            }
            if (d2 < best_d2) {
                best_d2 = d2;
                g = p;
            }
        }
        if (g < 0) g = lat->map[lat->neighbours[-1 - m + 1]];
    }
    const uint8_t *lv = lat->level + g * 8;
    for (int i = 0; i < 8; ++i) L[i] = (int8_t)lv[i];
    return g;
}

/* Grid points of the groups of a sub-block with levels L (ggml's all_on_grid loop): off-grid
 * groups take their nearest neighbour at `scale` with levels xx[k]. Returns 1 when all were on. */
static int iq1_grid_points(const slm_iq_lattice *lat, int n_groups, const float *restrict xb,
                           const float *restrict weight, float scale, const float *const *xx, int8_t *restrict L,
                           uint16_t *restrict index, int avx2) {
    int all_on_grid = 1;
    for (int k = 0; k < n_groups; ++k) {
        const int32_t m = lat->map[slm_iq_key(lat, L + 8 * k)];
        if (m >= 0) {
            index[k] = (uint16_t)m;
        } else {
            all_on_grid = 0;
            index[k] = (uint16_t)iq1_best_neighbour(lat, m, xb + 8 * k, weight + 8 * k, scale, xx[k], L + 8 * k, avx2);
        }
    }
    return all_on_grid;
}

/* Least-squares scale of the chosen grid points: sumqx / sumq2 when both > 0, else `scale`. */
static float iq1_refit(const slm_iq_lattice *lat, int n_groups, const float *restrict xb, const float *restrict weight,
                       const float *const *xx, const uint16_t *restrict index, float scale) {
    float sumqx = 0, sumq2 = 0;
    for (int k = 0; k < n_groups; ++k) {
        const uint8_t *lv = lat->level + index[k] * 8;
        for (int j = 0; j < 8; ++j) {
            const float w = weight[8 * k + j];
            const float q = xx[k][lv[j]];
            sumqx += w * q * xb[8 * k + j];
            sumq2 += w * q * q;
        }
    }
    return sumqx > 0 && sumq2 > 0 ? sumqx / sumq2 : scale;
}

/* Levels from the best split: sorted positions below i1 get 0, below i2 get 1, the rest 2. */
static void split_levels(const int *restrict idx, int n, int i1, int i2, int8_t *restrict L) {
    for (int j = 0; j < i1; ++j) L[idx[j]] = 0;
    for (int j = i1; j < i2; ++j) L[idx[j]] = 1;
    for (int j = i2; j < n; ++j) L[idx[j]] = 2;
}

/* ============================ iq1_s */

typedef struct split {
    int i1, i2, shift; /* shift 0: none found */
    float scale;
    float best_score;
} split;

/* ggml's step for one candidate split: a better least-squares score (sumqx^2 / sumq2, compared
 * without dividing) takes over. */
static inline void consider(split *s, float sumqx, float sumq2, int i1, int i2, int shift) {
    if (sumq2 > 0 && sumqx * sumqx > s->best_score * sumq2) {
        s->scale = sumqx / sumq2;
        s->best_score = s->scale * sumqx;
        s->i1 = i1, s->i2 = i2, s->shift = shift;
    }
}

/* Terms of ggml's iq1_s search that depend on one boundary only (the very products it forms), by
 * boundary; padded for 8-wide loads. */
typedef struct iq1_s_terms {
    float sumx[40], sumw[40];                 /* prefix sums of weight*x and weight over sorted values */
    float cxp[40], cwp[40], cxm[40], cwm[40]; /* third group (from i2 on) times the top level */
} iq1_s_terms;

static void iq1_s_prepare(iq1_s_terms *t, const float *restrict sumx, const float *restrict sumw) {
    enum { N = 32 };
    const float *p = k_x_p, *m = k_x_m;
    memset(t, 0, sizeof *t);
    for (int i2 = 0; i2 <= N; ++i2) {
        t->sumx[i2] = sumx[i2];
        t->sumw[i2] = sumw[i2];
        const float cx = sumx[N] - sumx[i2], cw = sumw[N] - sumw[i2];
        t->cxp[i2] = cx * p[2];
        t->cwp[i2] = cw * p[2] * p[2];
        t->cxm[i2] = cx * m[2];
        t->cwm[i2] = cw * m[2] * m[2];
    }
}

#if SLM_X86_KERNELS
static split iq1_s_search_avx2(const iq1_s_terms *t, float max);
#endif

/* ggml's exhaustive search over (i1 <= i2) for 32 sorted values with prefix sums sumx (weight*x)
 * and sumw (weight), delta +1 then -1 per pair. */
static split iq1_s_search(const float *restrict sumx, const float *restrict sumw, float max, int avx2) {
    enum { N = 32 };
    iq1_s_terms t;
    iq1_s_prepare(&t, sumx, sumw);
#if SLM_X86_KERNELS
    if (avx2) return iq1_s_search_avx2(&t, max);
#endif
    SLM_UNUSED(avx2);
    const float *p = k_x_p, *m = k_x_m;
    split s = {-1, -1, 0, max, -FLT_MAX};
    for (int i1 = 0; i1 <= N; ++i1) {
        const float ax = sumx[i1] - sumx[0], aw = sumw[i1] - sumw[0];
        const float axp = ax * p[0], awp = aw * p[0] * p[0], axm = ax * m[0], awm = aw * m[0] * m[0];
        for (int i2 = i1; i2 <= N; ++i2) {
            const float bx = sumx[i2] - sumx[i1], bw = sumw[i2] - sumw[i1];
            consider(&s, axp + bx * p[1] + t.cxp[i2], awp + bw * p[1] * p[1] + t.cwp[i2], i1, i2, 1);
            consider(&s, axm + bx * m[1] + t.cxm[i2], awm + bw * m[1] * m[1] + t.cwm[i2], i1, i2, -1);
        }
    }
    return s;
}

static void iq1_s_block(const slm_iq_lattice *lat, const float *restrict x, const float *restrict qw,
                        slm_block_iq1_s *restrict y, int avx2) {
    float scales[SLM_QK_K / 32], weight[32], sumx[33], sumw[33];
    int idx[32];
    int8_t L[32], shifts[SLM_QK_K / 32];
    uint16_t index[4], qh[SLM_QK_K / 32] = {0};

    y->d = slm_f32_to_f16(0.f);
    memset(y->qs, 0, sizeof y->qs);
    float max_scale = 0;
    float sumx2 = 0;
    for (int i = 0; i < SLM_QK_K; ++i) sumx2 += x[i] * x[i];
    const float sigma2 = 2 * sumx2 / SLM_QK_K;

    for (int ib = 0; ib < SLM_QK_K / 32; ++ib) {
        const float *xb = x + 32 * ib, *qwb = qw + 32 * ib;
        for (int i = 0; i < 32; ++i) weight[i] = qwb[i] * sqrtf(sigma2 + xb[i] * xb[i]);
        const float max = amax_of(xb, 32);
        scales[ib] = 0;
        shifts[ib] = 1;
        if (max < GROUP_MAX_EPS_IQ1_S) continue;
        sort_by_value(xb, idx, 32);
        sumx[0] = sumw[0] = 0;
        for (int j = 0; j < 32; ++j) {
            const int i = idx[j];
            sumx[j + 1] = sumx[j] + weight[i] * xb[i];
            sumw[j + 1] = sumw[j] + weight[i];
        }
        split s = iq1_s_search(sumx, sumw, max, avx2);
        if (s.i1 < 0 || s.i2 < 0 || s.shift == 0) continue;
        split_levels(idx, 32, s.i1, s.i2, L);
        if (s.scale < 0) {
            for (int j = 0; j < 32; ++j) L[j] = (int8_t)(2 - L[j]);
            s.scale = -s.scale;
            s.shift = -s.shift;
        }
        const float *xg = s.shift == 1 ? k_x_p : k_x_m;
        const float *xx[4] = {xg, xg, xg, xg};
        if (!iq1_grid_points(lat, 4, xb, weight, s.scale, xx, L, index, avx2)) {
            s.scale = iq1_refit(lat, 4, xb, weight, xx, index, s.scale);
        }
        for (int k = 0; k < 4; ++k) {
            y->qs[4 * ib + k] = (uint8_t)(index[k] & 255);
            qh[ib] |= (uint16_t)((index[k] >> 8) << 3 * k);
        }
        scales[ib] = s.scale;
        shifts[ib] = (int8_t)s.shift;
        max_scale = SLM_MAX(max_scale, s.scale);
    }
    if (max_scale) {
        const float d = max_scale / 15;
        y->d = slm_f32_to_f16(d * 1.125f); /* ggml's fudge factor */
        const float id = 1 / d;
        for (int ib = 0; ib < SLM_QK_K / 32; ++ib) {
            int l = slm_iq_scale_code(id, scales[ib], 7);
            if (shifts[ib] == -1) l |= 8;
            qh[ib] |= (uint16_t)(l << 12);
        }
    }
    memcpy(y->qh, qh, sizeof qh);
}

size_t slm_quantize_iq1_s_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                 const float *imatrix, slm_quant_kernel kernel) {
    SLM_ASSERT(imatrix); /* ggml: "missing quantization weights" */
    SLM_ASSERT(n_per_row % SLM_QK_K == 0);
    const slm_iq_lattice *lat = slm_iq_lattice_get(SLM_IQ_GRID_IQ1_S);
    const int avx2 = slm_quant_use_avx2(kernel);
    const int64_t nblock = n_per_row / SLM_QK_K;
    slm_block_iq1_s *y = dst;
    for (int64_t row = 0; row < nrow; ++row) {
        for (int64_t ibl = 0; ibl < nblock; ++ibl) {
            iq1_s_block(lat, src + SLM_QK_K * ibl, imatrix + SLM_QK_K * ibl, &y[ibl], avx2);
        }
        src += n_per_row;
        y += nblock;
    }
    return (size_t)nrow * (size_t)nblock * sizeof(slm_block_iq1_s);
}

static inline int8_t grid_coord(uint64_t point, int j) { return (int8_t)(uint8_t)(point >> 8 * j); }

void slm_dequantize_row_iq1_s(const void *restrict vx, float *restrict y, int64_t k) {
    SLM_ASSERT(k % SLM_QK_K == 0);
    const slm_block_iq1_s *restrict x = vx;
    for (int64_t i = 0; i < k / SLM_QK_K; i++) {
        const float d = slm_f16_to_f32(x[i].d);
        const uint8_t *qs = x[i].qs;
        for (int ib = 0; ib < SLM_QK_K / 32; ++ib) {
            const uint16_t qh = x[i].qh[ib];
            const float dl = d * (2 * ((qh >> 12) & 7) + 1);
            const float delta = qh & 0x8000 ? -SLM_IQ1S_DELTA : SLM_IQ1S_DELTA;
            for (int l = 0; l < 4; ++l) {
                const uint64_t point = slm_iq1s_grid[qs[l] | (((qh >> 3 * l) & 7) << 8)];
                for (int j = 0; j < 8; ++j) y[j] = dl * (grid_coord(point, j) + delta);
                y += 8;
            }
            qs += 4;
        }
    }
}

/* ============================ iq1_m */

typedef struct split_m {
    int i1, i2, k; /* k: delta signs of the two groups, 0 (+,+) 1 (+,-) 2 (-,+) 3 (-,-); -1 none */
    float scale;
    float best_score;
} split_m;

static inline void consider_m(split_m *s, float sumqx, float sumq2, int i1, int i2, int k) {
    if (sumq2 > 0 && sumqx * sumqx > s->best_score * sumq2) {
        s->scale = sumqx / sumq2;
        s->best_score = s->scale * sumqx;
        s->i1 = i1, s->i2 = i2, s->k = k;
    }
}

/* Terms of ggml's iq1_m search by half of the sub-block h and boundary (the very sub-expressions
 * it evaluates; ggml's comment: since v[0]-v[1] = v[1]-v[2] = -1 for both delta signs, a split's
 * sum is T*v[2] - px[i1] - px[i2]); padded for 8-wide loads. */
typedef struct iq1_m_terms {
    float px[2][24];                          /* prefix sums of weight*x per half */
    float txp[2], txm[2], twp[2], twm[2];     /* totals times the top level (squared for weights) */
    float w1p[2][24], w1m[2][24], w2p[2][24], w2m[2][24]; /* pw * (v0^2 - v1^2), pw * (v1^2 - v2^2) */
} iq1_m_terms;

static void iq1_m_prepare(iq1_m_terms *t, const float (*px)[17], const float (*pw)[17]) {
    enum { N = 16 };
    const float *p = k_x_p, *m = k_x_m;
    const float p2 = p[2], m2 = m[2];
    const float cp1 = p[0] * p[0] - p[1] * p[1], cp2 = p[1] * p[1] - p[2] * p[2];
    const float cm1 = m[0] * m[0] - m[1] * m[1], cm2 = m[1] * m[1] - m[2] * m[2];
    memset(t, 0, sizeof *t);
    for (int h = 0; h < 2; ++h) {
        t->txp[h] = px[h][N] * p2;
        t->txm[h] = px[h][N] * m2;
        t->twp[h] = pw[h][N] * p2 * p2;
        t->twm[h] = pw[h][N] * m2 * m2;
        for (int i = 0; i <= N; ++i) {
            t->px[h][i] = px[h][i];
            t->w1p[h][i] = pw[h][i] * cp1;
            t->w1m[h][i] = pw[h][i] * cm1;
            t->w2p[h][i] = pw[h][i] * cp2;
            t->w2m[h][i] = pw[h][i] * cm2;
        }
    }
}

#if SLM_X86_KERNELS
static split_m iq1_m_search_avx2(const iq1_m_terms *t, float max);
#endif

/* ggml's search for 16 sorted values: prefix sums per half of the sub-block (each half picks its own
 * delta sign), every (i1 <= i2), the four sign combinations in order. px/pw: [half][17]. */
static split_m iq1_m_search(const float (*px)[17], const float (*pw)[17], float max, int avx2) {
    enum { N = 16 };
    iq1_m_terms t;
    iq1_m_prepare(&t, px, pw);
#if SLM_X86_KERNELS
    if (avx2) return iq1_m_search_avx2(&t, max);
#endif
    SLM_UNUSED(avx2);
    split_m s = {-1, -1, -1, max, -FLT_MAX};
    for (int i1 = 0; i1 <= N; ++i1) {
        for (int i2 = i1; i2 <= N; ++i2) {
            float qx_p[2], qx_m[2], q2_p[2], q2_m[2];
            for (int h = 0; h < 2; ++h) {
                const float sx = t.px[h][i1] + t.px[h][i2];
                qx_p[h] = t.txp[h] - sx;
                qx_m[h] = t.txm[h] - sx;
                q2_p[h] = t.twp[h] + t.w1p[h][i1] + t.w2p[h][i2];
                q2_m[h] = t.twm[h] + t.w1m[h][i1] + t.w2m[h][i2];
            }
            consider_m(&s, qx_p[0] + qx_p[1], q2_p[0] + q2_p[1], i1, i2, 0);
            consider_m(&s, qx_p[0] + qx_m[1], q2_p[0] + q2_m[1], i1, i2, 1);
            consider_m(&s, qx_m[0] + qx_p[1], q2_m[0] + q2_p[1], i1, i2, 2);
            consider_m(&s, qx_m[0] + qx_m[1], q2_m[0] + q2_m[1], i1, i2, 3);
        }
    }
    return s;
}

/* Delta levels of group k (0, 1) of a sub-block with sign combination c. */
static const float *iq1_m_levels(int c, int k) {
    if (k == 0) return c < 2 ? k_x_p : k_x_m;
    return c % 2 == 0 ? k_x_p : k_x_m;
}

static void iq1_m_weights(const float *restrict xb, const float *restrict qw, float sigma2, float *restrict weight) {
    if (qw) {
        for (int i = 0; i < 16; ++i) weight[i] = qw[i] * sqrtf(sigma2 + xb[i] * xb[i]);
    } else {
        for (int i = 0; i < 16; ++i) weight[i] = xb[i] * xb[i];
    }
}

static void iq1_m_block(const slm_iq_lattice *lat, const float *restrict x, const float *restrict qw,
                        slm_block_iq1_m *restrict y, int avx2) {
    static const uint8_t masks[4] = {0x00, 0x80, 0x08, 0x88}; /* delta sign bits of combination k */
    float scales[SLM_QK_K / 16], weight[16], px[2][17], pw[2][17];
    int idx[16];
    int8_t L[16], shifts[SLM_QK_K / 16];
    uint16_t index[2];

    memset(y, 0, sizeof *y);
    float max_scale = 0;
    float sumx2 = 0;
    for (int i = 0; i < SLM_QK_K; ++i) sumx2 += x[i] * x[i];
    const float sigma2 = 2 * sumx2 / SLM_QK_K;

    for (int ib = 0; ib < SLM_QK_K / 16; ++ib) {
        const float *xb = x + 16 * ib;
        iq1_m_weights(xb, qw ? qw + 16 * ib : NULL, sigma2, weight);
        const float max = amax_of(xb, 16);
        scales[ib] = 0;
        shifts[ib] = 0;
        if (max < GROUP_MAX_EPS_IQ1_M) continue;
        sort_by_value(xb, idx, 16);
        px[0][0] = px[1][0] = 0;
        pw[0][0] = pw[1][0] = 0;
        for (int j = 0; j < 16; ++j) {
            const int i = idx[j], h = i < 8 ? 0 : 1;
            px[h][j + 1] = px[h][j] + weight[i] * xb[i];
            px[1 - h][j + 1] = px[1 - h][j];
            pw[h][j + 1] = pw[h][j] + weight[i];
            pw[1 - h][j + 1] = pw[1 - h][j];
        }
        split_m s = iq1_m_search((const float(*)[17])px, (const float(*)[17])pw, max, avx2);
        if (s.i1 < 0 || s.i2 < 0 || s.k < 0) continue;
        split_levels(idx, 16, s.i1, s.i2, L);
        if (s.scale < 0) {
            for (int j = 0; j < 16; ++j) L[j] = (int8_t)(2 - L[j]);
            s.scale = -s.scale;
            s.k = 3 - s.k; /* both delta signs flip */
        }
        const float *xx[2] = {iq1_m_levels(s.k, 0), iq1_m_levels(s.k, 1)};
        if (!iq1_grid_points(lat, 2, xb, weight, s.scale, xx, L, index, avx2)) {
            s.scale = iq1_refit(lat, 2, xb, weight, xx, index, s.scale);
        }
        y->qs[2 * ib + 0] = (uint8_t)(index[0] & 255);
        y->qs[2 * ib + 1] = (uint8_t)(index[1] & 255);
        y->qh[ib] = (uint8_t)((index[0] >> 8) | ((index[1] >> 8) << 4));
        scales[ib] = s.scale;
        shifts[ib] = (int8_t)s.k;
        max_scale = SLM_MAX(max_scale, s.scale);
    }
    if (!max_scale) return;

    /* 3-bit scales against d = max/15, then d refitted over the whole super-block */
    uint16_t sc[4] = {0};
    float d = max_scale / 15;
    const float id = 1 / d;
    float sumqx = 0, sumq2 = 0;
    for (int ib = 0; ib < SLM_QK_K / 16; ++ib) {
        const int l = slm_iq_scale_code(id, scales[ib], 7);
        sc[ib / 4] |= (uint16_t)(l << 3 * (ib % 4));
        y->qh[ib] |= masks[shifts[ib]];
        const float *xb = x + 16 * ib;
        iq1_m_weights(xb, qw ? qw + 16 * ib : NULL, sigma2, weight);
        for (int k = 0; k < 2; ++k) {
            const float *xx = iq1_m_levels(shifts[ib], k);
            const int g = y->qs[2 * ib + k] + ((y->qh[ib] << (8 - 4 * k)) & 0x700);
            const uint8_t *lv = lat->level + g * 8;
            for (int j = 0; j < 8; ++j) {
                const float w = weight[8 * k + j];
                const float q = xx[lv[j]] * (2 * l + 1);
                sumqx += w * q * xb[8 * k + j];
                sumq2 += w * q * q;
            }
        }
    }
    if (sumq2 > 0) d = sumqx / sumq2;
    const uint16_t s = slm_f32_to_f16(d * 1.1125f); /* ggml's fudge factor */
    sc[0] |= (uint16_t)((s & 0x000f) << 12);
    sc[1] |= (uint16_t)((s & 0x00f0) << 8);
    sc[2] |= (uint16_t)((s & 0x0f00) << 4);
    sc[3] |= (uint16_t)(s & 0xf000);
    for (int i = 0; i < 4; ++i) slm_st_u16(y->scales + 2 * i, sc[i]);
}

size_t slm_quantize_iq1_m_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                 const float *imatrix, slm_quant_kernel kernel) {
    SLM_ASSERT(n_per_row % SLM_QK_K == 0);
    const slm_iq_lattice *lat = slm_iq_lattice_get(SLM_IQ_GRID_IQ1_S);
    const int avx2 = slm_quant_use_avx2(kernel);
    const int64_t nblock = n_per_row / SLM_QK_K;
    slm_block_iq1_m *y = dst;
    for (int64_t row = 0; row < nrow; ++row) {
        for (int64_t ibl = 0; ibl < nblock; ++ibl) {
            iq1_m_block(lat, src + SLM_QK_K * ibl, imatrix ? imatrix + SLM_QK_K * ibl : NULL, &y[ibl], avx2);
        }
        src += n_per_row;
        y += nblock;
    }
    return (size_t)nrow * (size_t)nblock * sizeof(slm_block_iq1_m);
}

void slm_dequantize_row_iq1_m(const void *restrict vx, float *restrict y, int64_t k) {
    SLM_ASSERT(k % SLM_QK_K == 0);
    const slm_block_iq1_m *restrict x = vx;
    for (int64_t i = 0; i < k / SLM_QK_K; i++) {
        uint16_t sc[4];
        for (int j = 0; j < 4; ++j) sc[j] = slm_le_u16(x[i].scales + 2 * j);
        const uint16_t d16 = (uint16_t)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
        const float d = slm_f16_to_f32(d16);
        const uint8_t *qs = x[i].qs, *qh = x[i].qh;
        for (int ib = 0; ib < SLM_QK_K / 32; ++ib) {
            const float dl[2] = {d * (2 * ((sc[ib / 2] >> (6 * (ib % 2) + 0)) & 0x7) + 1),
                                 d * (2 * ((sc[ib / 2] >> (6 * (ib % 2) + 3)) & 0x7) + 1)};
            for (int l = 0; l < 4; ++l) {
                const uint8_t h = qh[l / 2] >> 4 * (l % 2); /* 3 index bits, then the delta sign */
                const float delta = h & 0x08 ? -SLM_IQ1S_DELTA : SLM_IQ1S_DELTA;
                const uint64_t point = slm_iq1s_grid[qs[l] | ((h & 7) << 8)];
                for (int j = 0; j < 8; ++j) y[j] = dl[l / 2] * (grid_coord(point, j) + delta);
                y += 8;
            }
            qs += 4;
            qh += 2;
        }
    }
}

/* ============================ AVX2: 8 boundaries i2 in the lanes
 *
 * For one i1, lane j forms the sums of split (i1, i2 + j) exactly as the scalar loop does. When no
 * candidate of the 8 beats the best score so far, the scalar loop would change nothing there
 * either; otherwise the 8 are replayed through the scalar step in order, with these very values.
 */
#if SLM_X86_KERNELS
static inline SLM_AVX2 __m256 beats(__m256 sumqx, __m256 sumq2, __m256 best) {
    return _mm256_and_ps(_mm256_cmp_ps(sumq2, _mm256_setzero_ps(), _CMP_GT_OQ),
                         _mm256_cmp_ps(_mm256_mul_ps(sumqx, sumqx), _mm256_mul_ps(best, sumq2), _CMP_GT_OQ));
}

static SLM_AVX2 split iq1_s_search_avx2(const iq1_s_terms *t, float max) {
    enum { N = 32 };
    const float *p = k_x_p, *m = k_x_m;
    const __m256 p1 = _mm256_set1_ps(p[1]), m1 = _mm256_set1_ps(m[1]);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    split s = {-1, -1, 0, max, -FLT_MAX};
    for (int i1 = 0; i1 <= N; ++i1) {
        const float ax = t->sumx[i1] - t->sumx[0], aw = t->sumw[i1] - t->sumw[0];
        const __m256 axp = _mm256_set1_ps(ax * p[0]), awp = _mm256_set1_ps(aw * p[0] * p[0]);
        const __m256 axm = _mm256_set1_ps(ax * m[0]), awm = _mm256_set1_ps(aw * m[0] * m[0]);
        const __m256 sx1 = _mm256_set1_ps(t->sumx[i1]), sw1 = _mm256_set1_ps(t->sumw[i1]);
        for (int i2 = i1; i2 <= N; i2 += 8) {
            const __m256 bx = _mm256_sub_ps(_mm256_loadu_ps(t->sumx + i2), sx1);
            const __m256 bw = _mm256_sub_ps(_mm256_loadu_ps(t->sumw + i2), sw1);
            const __m256 qxp = _mm256_add_ps(_mm256_add_ps(axp, _mm256_mul_ps(bx, p1)), _mm256_loadu_ps(t->cxp + i2));
            const __m256 q2p = _mm256_add_ps(_mm256_add_ps(awp, _mm256_mul_ps(_mm256_mul_ps(bw, p1), p1)),
                                             _mm256_loadu_ps(t->cwp + i2));
            const __m256 qxm = _mm256_add_ps(_mm256_add_ps(axm, _mm256_mul_ps(bx, m1)), _mm256_loadu_ps(t->cxm + i2));
            const __m256 q2m = _mm256_add_ps(_mm256_add_ps(awm, _mm256_mul_ps(_mm256_mul_ps(bw, m1), m1)),
                                             _mm256_loadu_ps(t->cwm + i2));
            const __m256 best = _mm256_set1_ps(s.best_score);
            const __m256 valid = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(N + 1 - i2), lane));
            const __m256 hit = _mm256_and_ps(valid, _mm256_or_ps(beats(qxp, q2p, best), beats(qxm, q2m, best)));
            if (!_mm256_movemask_ps(hit)) continue;
            float vqxp[8], vq2p[8], vqxm[8], vq2m[8];
            _mm256_storeu_ps(vqxp, qxp);
            _mm256_storeu_ps(vq2p, q2p);
            _mm256_storeu_ps(vqxm, qxm);
            _mm256_storeu_ps(vq2m, q2m);
            for (int j = 0; j < 8 && i2 + j <= N; ++j) {
                consider(&s, vqxp[j], vq2p[j], i1, i2 + j, 1);
                consider(&s, vqxm[j], vq2m[j], i1, i2 + j, -1);
            }
        }
    }
    return s;
}

static SLM_AVX2 split_m iq1_m_search_avx2(const iq1_m_terms *t, float max) {
    enum { N = 16 };
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    split_m s = {-1, -1, -1, max, -FLT_MAX};
    for (int i1 = 0; i1 <= N; ++i1) {
        __m256 px1[2], txp[2], txm[2], a2p[2], a2m[2];
        for (int h = 0; h < 2; ++h) {
            px1[h] = _mm256_set1_ps(t->px[h][i1]);
            txp[h] = _mm256_set1_ps(t->txp[h]);
            txm[h] = _mm256_set1_ps(t->txm[h]);
            a2p[h] = _mm256_set1_ps(t->twp[h] + t->w1p[h][i1]);
            a2m[h] = _mm256_set1_ps(t->twm[h] + t->w1m[h][i1]);
        }
        for (int i2 = i1; i2 <= N; i2 += 8) {
            __m256 qx_p[2], qx_m[2], q2_p[2], q2_m[2];
            for (int h = 0; h < 2; ++h) {
                const __m256 sx = _mm256_add_ps(px1[h], _mm256_loadu_ps(t->px[h] + i2));
                qx_p[h] = _mm256_sub_ps(txp[h], sx);
                qx_m[h] = _mm256_sub_ps(txm[h], sx);
                q2_p[h] = _mm256_add_ps(a2p[h], _mm256_loadu_ps(t->w2p[h] + i2));
                q2_m[h] = _mm256_add_ps(a2m[h], _mm256_loadu_ps(t->w2m[h] + i2));
            }
            const __m256 sumqx[4] = {_mm256_add_ps(qx_p[0], qx_p[1]), _mm256_add_ps(qx_p[0], qx_m[1]),
                                     _mm256_add_ps(qx_m[0], qx_p[1]), _mm256_add_ps(qx_m[0], qx_m[1])};
            const __m256 sumq2[4] = {_mm256_add_ps(q2_p[0], q2_p[1]), _mm256_add_ps(q2_p[0], q2_m[1]),
                                     _mm256_add_ps(q2_m[0], q2_p[1]), _mm256_add_ps(q2_m[0], q2_m[1])};
            const __m256 best = _mm256_set1_ps(s.best_score);
            __m256 hit = _mm256_setzero_ps();
            for (int k = 0; k < 4; ++k) hit = _mm256_or_ps(hit, beats(sumqx[k], sumq2[k], best));
            hit = _mm256_and_ps(hit, _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(N + 1 - i2), lane)));
            if (!_mm256_movemask_ps(hit)) continue;
            float vx[4][8], v2[4][8];
            for (int k = 0; k < 4; ++k) {
                _mm256_storeu_ps(vx[k], sumqx[k]);
                _mm256_storeu_ps(v2[k], sumq2[k]);
            }
            for (int j = 0; j < 8 && i2 + j <= N; ++j) {
                for (int k = 0; k < 4; ++k) consider_m(&s, vx[k][j], v2[k][j], i1, i2 + j, k);
            }
        }
    }
    return s;
}
#endif /* SLM_X86_KERNELS */
