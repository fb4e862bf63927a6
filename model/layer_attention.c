/* layer_attention.c - causal grouped-query attention over the KV cache in the canonical f32
 * order of layers.h (online softmax over chunks of 64 keys, panels of 16), scalar reference and
 * AVX2; the cache store. llama.cpp's F16 flash attention is in ggml_numerics.c.
 * Must not: allocate, fail or print; one `parallel for` over (head, query tile) items.
 */
#include "model/layer_simd.h"

/* Key positions per softmax chunk (4 panels; scores on the stack). */
#define ATT_CHUNK 64

/* ---------------------------------------------------------------------------------------------
 * kv cache store */

void slm_kv_store(float *kc, float *vc, const float *qkv, int ld, int k_off, int v_off, int T, int pos0, int Hkv, int D,
                  int ctx) {
    for (int t = 0; t < T; t++) {
        int s = pos0 + t;
        const float *k = qkv + (size_t)t * ld + k_off;
        const float *v = qkv + (size_t)t * ld + v_off;
        for (int g = 0; g < Hkv; g++) {
            float *kp = kc + (size_t)g * ctx * D + (size_t)(s / SLM_PANEL) * D * SLM_PANEL + s % SLM_PANEL;
            for (int d = 0; d < D; d++) kp[(size_t)d * SLM_PANEL] = k[g * D + d];
            memcpy(vc + ((size_t)g * ctx + s) * D, v + g * D, sizeof(float) * (size_t)D);
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * attention: online softmax over panels of 16 key positions */

/* The fixed pairwise tree that sums 16 lanes (what the AVX2 reduction does). */
static float sum16_tree(const float *p) {
    float a[8], b[4], c[2];
    for (int i = 0; i < 8; i++) a[i] = p[i] + p[i + 8];
    for (int i = 0; i < 4; i++) b[i] = a[i] + a[i + 4];
    for (int i = 0; i < 2; i++) c[i] = b[i] + b[i + 2];
    return c[0] + c[1];
}

/* Output accumulators of the attention: R = 64 / D rounded down to a power of two (1 from
   D = 64 on): position j feeds accumulator j mod R, so R * D / 8 >= 8 independent FMA chains. */
static int att_accumulators(int D) {
    int R = 1;
    while (R * 2 * D <= 64) R *= 2;
    return R;
}

/* Sum of accumulators o[r*D + d] over r < R (a power of two): the pairwise tree. */
static float att_sum_tree(const float *o, int R, int D, int d) {
    if (R == 1) return o[d];
    return att_sum_tree(o, R / 2, D, d) + att_sum_tree(o + (size_t)(R / 2) * D, R / 2, D, d);
}

/* The online-softmax state of one (token, head): running max, sum, R output accumulators. */
typedef struct att_state {
    float m, l;
    float o[MAX_HEAD_DIM + 64]; /* (R, D): R * D <= max(D, 64) */
} att_state;

static void att_init(att_state *st, int D) {
    st->m = -INFINITY;
    st->l = 0.0f;
    for (int i = 0; i < att_accumulators(D) * D; i++) st->o[i] = 0.0f;
}

static void att_finish(float *out, float *lse, const att_state *st, int D) {
    int R = att_accumulators(D);
    for (int d = 0; d < D; d++) out[d] = att_sum_tree(st->o, R, D, d) / st->l;
    *lse = st->m + logf(st->l);
}

/* Canonical order of one (token, head) over the keys [c0, c0 + nc) of one chunk (c0 a multiple
   of ATT_CHUNK), written out in plain C: (1) scores, 16 at a time, each ((c0 + c1) + (c2 + c3))
   * scale with c_r the fmaf chain over d = r mod 4 (four chains hide the FMA latency); (2) the
   running max m grows to the chunk's max, rescaling l and the outputs by slm_expf(m_old - m);
   (3) p = slm_expf(s - m), l += each panel's 16 p's summed in a fixed pairwise tree, panel by
   panel; (4) o_r[d] = fmaf(p_j, v_j[d], o_r[d]) over positions j = r mod R in order
   (att_accumulators). att_finish: out = (pairwise sum of the o_r) / l. */
static void att_chunk_ref(att_state *st, const float *q, const float *kh, const float *vh, int c0, int nc, int D,
                          float scale) {
    float s[ATT_CHUNK];
    const int R = att_accumulators(D), np = (nc + SLM_PANEL - 1) / SLM_PANEL;
    float cm = -INFINITY;
    for (int p = 0; p < np; p++) {
        const float *kp = kh + (size_t)(c0 + p * SLM_PANEL) * D; /* panel: (D, 16) */
        float c[4][SLM_PANEL] = {{0}};
        for (int d = 0; d < D; d++)
            for (int j = 0; j < SLM_PANEL; j++) c[d & 3][j] = fmaf(q[d], kp[d * SLM_PANEL + j], c[d & 3][j]);
        for (int j = 0; j < SLM_PANEL; j++) {
            float v = p * SLM_PANEL + j < nc ? ((c[0][j] + c[1][j]) + (c[2][j] + c[3][j])) * scale : -INFINITY;
            s[p * SLM_PANEL + j] = v;
            cm = v > cm ? v : cm;
        }
    }
    if (cm > st->m) {
        float corr = slm_expf(st->m - cm);
        st->l *= corr;
        for (int i = 0; i < R * D; i++) st->o[i] *= corr;
        st->m = cm;
    }
    for (int p = 0; p < np; p++) {
        for (int j = 0; j < SLM_PANEL; j++) s[p * SLM_PANEL + j] = slm_expf(s[p * SLM_PANEL + j] - st->m);
        st->l += sum16_tree(s + p * SLM_PANEL);
    }
    for (int j = 0; j < nc; j++) {
        const float *v = vh + (size_t)(c0 + j) * D;
        float *oj = st->o + (size_t)(j % R) * D;
        for (int d = 0; d < D; d++) oj[d] = fmaf(s[j], v[d], oj[d]);
    }
}

#if SLM_HAVE_AVX2_KERNELS
static inline AVX2 float hmax16(__m256 a, __m256 b) {
    __m256 m = _mm256_max_ps(a, b);
    __m128 x = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    x = _mm_max_ps(x, _mm_movehl_ps(x, x));
    x = _mm_max_ss(x, _mm_shuffle_ps(x, x, 1));
    return _mm_cvtss_f32(x);
}

/* The same tree as sum16_tree: (lo8 + hi8), then 4 + 4, then 2 + 2 (lanes 0,1 + lanes 2,3), then 1 + 1. */
static inline AVX2 float hsum16(__m256 a, __m256 b) {
    __m256 s8 = _mm256_add_ps(a, b);
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    __m128 s1 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1));
    return _mm_cvtss_f32(s1);
}

static inline AVX2 __m256 pv_fma(const float *p, const float *v, __m256 a) {
    return _mm256_fmadd_ps(_mm256_broadcast_ss(p), _mm256_loadu_ps(v), a);
}

/* (4) of the canonical order for one chunk: o (R, D) += p_j v_j, j = position mod R.
   R * D / 8 = 8 accumulators for D = 8, 16, 32, 64; for larger D, blocks of 64 lanes. */
static AVX2 void att_pv_avx2(float *o, const float *p, const float *v, int nc, int D, int R) {
    if (R > 1) { /* D = 8, 16, 32: R * D / 8 = 8 accumulators, o is (R, D), keys in groups of R */
        __m256 a0 = _mm256_loadu_ps(o), a1 = _mm256_loadu_ps(o + 8), a2 = _mm256_loadu_ps(o + 16);
        __m256 a3 = _mm256_loadu_ps(o + 24), a4 = _mm256_loadu_ps(o + 32), a5 = _mm256_loadu_ps(o + 40);
        __m256 a6 = _mm256_loadu_ps(o + 48), a7 = _mm256_loadu_ps(o + 56);
        int j = 0;
        if (D == 8) { /* accumulator r = j mod 8 */
            for (; j + 8 <= nc; j += 8) {
                const float *vj = v + (size_t)j * 8;
                a0 = pv_fma(p + j, vj, a0), a1 = pv_fma(p + j + 1, vj + 8, a1);
                a2 = pv_fma(p + j + 2, vj + 16, a2), a3 = pv_fma(p + j + 3, vj + 24, a3);
                a4 = pv_fma(p + j + 4, vj + 32, a4), a5 = pv_fma(p + j + 5, vj + 40, a5);
                a6 = pv_fma(p + j + 6, vj + 48, a6), a7 = pv_fma(p + j + 7, vj + 56, a7);
            }
        } else if (D == 16) { /* accumulators (r = j mod 4, lanes 0-7 | 8-15) */
            for (; j + 4 <= nc; j += 4) {
                const float *vj = v + (size_t)j * 16;
                a0 = pv_fma(p + j, vj, a0), a1 = pv_fma(p + j, vj + 8, a1);
                a2 = pv_fma(p + j + 1, vj + 16, a2), a3 = pv_fma(p + j + 1, vj + 24, a3);
                a4 = pv_fma(p + j + 2, vj + 32, a4), a5 = pv_fma(p + j + 2, vj + 40, a5);
                a6 = pv_fma(p + j + 3, vj + 48, a6), a7 = pv_fma(p + j + 3, vj + 56, a7);
            }
        } else { /* D == 32: accumulators (r = j mod 2, four lane blocks) */
            for (; j + 2 <= nc; j += 2) {
                const float *vj = v + (size_t)j * 32;
                a0 = pv_fma(p + j, vj, a0), a1 = pv_fma(p + j, vj + 8, a1);
                a2 = pv_fma(p + j, vj + 16, a2), a3 = pv_fma(p + j, vj + 24, a3);
                a4 = pv_fma(p + j + 1, vj + 32, a4), a5 = pv_fma(p + j + 1, vj + 40, a5);
                a6 = pv_fma(p + j + 1, vj + 48, a6), a7 = pv_fma(p + j + 1, vj + 56, a7);
            }
        }
        _mm256_storeu_ps(o, a0), _mm256_storeu_ps(o + 8, a1), _mm256_storeu_ps(o + 16, a2);
        _mm256_storeu_ps(o + 24, a3), _mm256_storeu_ps(o + 32, a4), _mm256_storeu_ps(o + 40, a5);
        _mm256_storeu_ps(o + 48, a6), _mm256_storeu_ps(o + 56, a7);
        for (; j < nc; j++) { /* the last R - 1 keys at most, to accumulator j mod R */
            float *oj = o + (size_t)(j % R) * D;
            for (int d = 0; d < D; d += 8) _mm256_storeu_ps(oj + d, pv_fma(p + j, v + (size_t)j * D + d, _mm256_loadu_ps(oj + d)));
        }
        return;
    }
    int d0 = 0;
    for (; d0 + 64 <= D; d0 += 64) { /* R = 1: 8 lanes blocks of one row, every key */
        __m256 a0 = _mm256_loadu_ps(o + d0), a1 = _mm256_loadu_ps(o + d0 + 8), a2 = _mm256_loadu_ps(o + d0 + 16);
        __m256 a3 = _mm256_loadu_ps(o + d0 + 24), a4 = _mm256_loadu_ps(o + d0 + 32), a5 = _mm256_loadu_ps(o + d0 + 40);
        __m256 a6 = _mm256_loadu_ps(o + d0 + 48), a7 = _mm256_loadu_ps(o + d0 + 56);
        for (int j = 0; j < nc; j++) {
            __m256 pj = _mm256_broadcast_ss(p + j);
            const float *vj = v + (size_t)j * D + d0;
            a0 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj), a0);
            a1 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + 8), a1);
            a2 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + 16), a2);
            a3 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + 24), a3);
            a4 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + 32), a4);
            a5 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + 40), a5);
            a6 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + 48), a6);
            a7 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + 56), a7);
        }
        _mm256_storeu_ps(o + d0, a0), _mm256_storeu_ps(o + d0 + 8, a1), _mm256_storeu_ps(o + d0 + 16, a2);
        _mm256_storeu_ps(o + d0 + 24, a3), _mm256_storeu_ps(o + d0 + 32, a4), _mm256_storeu_ps(o + d0 + 40, a5);
        _mm256_storeu_ps(o + d0 + 48, a6), _mm256_storeu_ps(o + d0 + 56, a7);
    }
    for (; d0 < D; d0 += 8) {
        __m256 a0 = _mm256_loadu_ps(o + d0);
        for (int j = 0; j < nc; j++) a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(p + j), _mm256_loadu_ps(v + (size_t)j * D + d0), a0);
        _mm256_storeu_ps(o + d0, a0);
    }
}

/* att_chunk_ref's operations, 8 lanes at a time. D a multiple of 8 (and not 24: R * D / 8 of
   att_pv_avx2's register sets). */
static AVX2 void att_chunk_avx2(att_state *st, const float *q, const float *kh, const float *vh, int c0, int nc, int D,
                                float scale) {
    float s[ATT_CHUNK];
    const int R = att_accumulators(D), np = (nc + SLM_PANEL - 1) / SLM_PANEL;
    const __m256 vscale = _mm256_set1_ps(scale), ninf = _mm256_set1_ps(-INFINITY);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256 vmax = ninf;
    /* (1) scores */
    for (int p = 0; p < np; p++) {
        const float *kp = kh + (size_t)(c0 + p * SLM_PANEL) * D;
        __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
        __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
        for (int d = 0; d < D; d += 4, kp += 4 * SLM_PANEL) { /* D % 8 == 0: four whole chains */
            __m256 b0 = _mm256_broadcast_ss(q + d), b1 = _mm256_broadcast_ss(q + d + 1);
            __m256 b2 = _mm256_broadcast_ss(q + d + 2), b3 = _mm256_broadcast_ss(q + d + 3);
            c00 = _mm256_fmadd_ps(b0, _mm256_loadu_ps(kp), c00);
            c01 = _mm256_fmadd_ps(b0, _mm256_loadu_ps(kp + 8), c01);
            c10 = _mm256_fmadd_ps(b1, _mm256_loadu_ps(kp + 16), c10);
            c11 = _mm256_fmadd_ps(b1, _mm256_loadu_ps(kp + 24), c11);
            c20 = _mm256_fmadd_ps(b2, _mm256_loadu_ps(kp + 32), c20);
            c21 = _mm256_fmadd_ps(b2, _mm256_loadu_ps(kp + 40), c21);
            c30 = _mm256_fmadd_ps(b3, _mm256_loadu_ps(kp + 48), c30);
            c31 = _mm256_fmadd_ps(b3, _mm256_loadu_ps(kp + 56), c31);
        }
        __m256 s0 = _mm256_mul_ps(_mm256_add_ps(_mm256_add_ps(c00, c10), _mm256_add_ps(c20, c30)), vscale);
        __m256 s1 = _mm256_mul_ps(_mm256_add_ps(_mm256_add_ps(c01, c11), _mm256_add_ps(c21, c31)), vscale);
        int n = nc - p * SLM_PANEL;
        if (n < SLM_PANEL) {
            s0 = _mm256_blendv_ps(ninf, s0, _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane)));
            s1 = _mm256_blendv_ps(ninf, s1, _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n - 8), lane)));
        }
        vmax = _mm256_max_ps(vmax, _mm256_max_ps(s0, s1));
        _mm256_storeu_ps(s + p * SLM_PANEL, s0);
        _mm256_storeu_ps(s + p * SLM_PANEL + 8, s1);
    }
    /* (2) the running max */
    float cm = hmax16(vmax, vmax);
    if (cm > st->m) {
        __m256 vc = expf_avx2(_mm256_set1_ps(st->m - cm)); /* = slm_expf(m - cm) in every lane */
        st->l *= _mm256_cvtss_f32(vc);
        for (int i = 0; i < R * D; i += 8) _mm256_storeu_ps(st->o + i, _mm256_mul_ps(_mm256_loadu_ps(st->o + i), vc));
        st->m = cm;
    }
    /* (3) probabilities */
    __m256 vm = _mm256_set1_ps(st->m);
    for (int p = 0; p < np; p++) {
        __m256 p0 = expf_avx2(_mm256_sub_ps(_mm256_loadu_ps(s + p * SLM_PANEL), vm));
        __m256 p1 = expf_avx2(_mm256_sub_ps(_mm256_loadu_ps(s + p * SLM_PANEL + 8), vm));
        st->l += hsum16(p0, p1);
        _mm256_storeu_ps(s + p * SLM_PANEL, p0);
        _mm256_storeu_ps(s + p * SLM_PANEL + 8, p1);
    }
    /* (4) weighted values (c0 is a multiple of R: position mod R = index in the chunk mod R) */
    att_pv_avx2(st->o, s, vh + (size_t)c0 * D, nc, D, R);
}

static AVX2 void att_finish_avx2(float *out, float *lse, const att_state *st, int D) {
    const int R = att_accumulators(D);
    const float *o = st->o;
    for (int d = 0; d < D; d += 8) {
        __m256 sum;
        if (R == 1) sum = _mm256_loadu_ps(o + d);
        else if (R == 2) sum = _mm256_add_ps(_mm256_loadu_ps(o + d), _mm256_loadu_ps(o + D + d));
        else if (R == 4)
            sum = _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(o + d), _mm256_loadu_ps(o + D + d)),
                                _mm256_add_ps(_mm256_loadu_ps(o + 2 * D + d), _mm256_loadu_ps(o + 3 * D + d)));
        else
            sum = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(o + d), _mm256_loadu_ps(o + D + d)),
                                              _mm256_add_ps(_mm256_loadu_ps(o + 2 * D + d), _mm256_loadu_ps(o + 3 * D + d))),
                                _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(o + 4 * D + d), _mm256_loadu_ps(o + 5 * D + d)),
                                              _mm256_add_ps(_mm256_loadu_ps(o + 6 * D + d), _mm256_loadu_ps(o + 7 * D + d))));
        _mm256_storeu_ps(out + d, _mm256_div_ps(sum, _mm256_set1_ps(st->l)));
    }
    *lse = st->m + logf(st->l);
}
#endif

/* Queries of one head processed together: each chunk of keys is read from memory once for all
   of them (it stays in L1 across the tile). The loop order does not change any number. */
#define ATT_QTILE 8

/* simd: 0 scalar reference, else AVX2 (slm_layers_simd) */
static void attention_forward_impl(float *out, float *lse, const float *q, int ld, const float *kc, const float *vc,
                                   int T, int pos0, int H, int Hkv, int D, int ctx, int simd) {
    int group = H / Hkv, n_tiles = (T + ATT_QTILE - 1) / ATT_QTILE;
    float scale = 1.0f / sqrtf((float)D);
#if SLM_HAVE_AVX2_KERNELS
    int vec = simd && D % 8 == 0 && D != 24;
#else
    int vec = 0;
#endif
    /* (head, query tile) items dealt round robin: later tiles see more keys (causal) */
#pragma omp parallel for schedule(static, 1)
    for (int it = 0; it < H * n_tiles; it++) {
        int h = it / n_tiles, t0 = (it % n_tiles) * ATT_QTILE, g = h / group;
        int nt = T - t0 < ATT_QTILE ? T - t0 : ATT_QTILE;
        const float *kh = kc + (size_t)g * ctx * D, *vh = vc + (size_t)g * ctx * D;
        att_state st[ATT_QTILE];
        for (int i = 0; i < nt; i++) att_init(&st[i], D);
        int s_max = pos0 + t0 + nt; /* keys the last query of the tile sees */
        for (int c0 = 0; c0 < s_max; c0 += ATT_CHUNK)
            for (int i = 0; i < nt; i++) {
                int S = pos0 + t0 + i + 1, nc = S - c0 < ATT_CHUNK ? S - c0 : ATT_CHUNK;
                if (nc <= 0) continue;
                const float *qi = q + (size_t)(t0 + i) * ld + (size_t)h * D;
#if SLM_HAVE_AVX2_KERNELS
                if (vec) {
                    att_chunk_avx2(&st[i], qi, kh, vh, c0, nc, D, scale);
                    continue;
                }
#endif
                att_chunk_ref(&st[i], qi, kh, vh, c0, nc, D, scale);
            }
        for (int i = 0; i < nt; i++) {
            int t = t0 + i;
            float *o = out + (size_t)t * H * D + (size_t)h * D, *l = lse + (size_t)t * H + h;
#if SLM_HAVE_AVX2_KERNELS
            if (vec) {
                att_finish_avx2(o, l, &st[i], D);
                continue;
            }
#endif
            att_finish(o, l, &st[i], D);
        }
    }
}

void slm_attention_forward(float *out, float *lse, const float *q, int ld, const float *kc, const float *vc, int T,
                           int pos0, int H, int Hkv, int D, int ctx) {
    attention_forward_impl(out, lse, q, ld, kc, vc, T, pos0, H, Hkv, D, ctx, slm_layers_simd());
}

void slm_attention_forward_ref(float *out, float *lse, const float *q, int ld, const float *kc, const float *vc, int T,
                               int pos0, int H, int Hkv, int D, int ctx) {
    attention_forward_impl(out, lse, q, ld, kc, vc, T, pos0, H, Hkv, D, ctx, 0);
}

/* ---------------------------------------------------------------------------------------------
 * attention backward (one sequence, positions 0 .. T-1): probabilities recomputed from the
 * saved log-sum-exp; loop 1 over (head, query) owns dq and delta, loop 2 over (kv head, key)
 * owns dk and dv. Every pair (i, j) gets the same s, P, dS in both loops (same operations). */

/* The canonical dot product of the backward: 8 lane chains c_r over d = r mod 8, summed
   ((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7)) (what a horizontal-add reduction gives). */
static float dot8_ref(const float *a, const float *b, int D) {
    float c[8] = {0};
    for (int d = 0; d < D; d++) c[d & 7] = fmaf(a[d], b[d], c[d & 7]);
    return ((c[0] + c[1]) + (c[2] + c[3])) + ((c[4] + c[5]) + (c[6] + c[7]));
}

/* dS of one pair from its score dot product: P = exp(s * scale - lse), dS = P (dP - delta) */
static inline float att_prob(float qk, float scale, float lse) { return slm_expf(qk * scale - lse); }

static void att_bwd_dq_ref(float *dqkv, float *delta, const float *dout, const float *qkv, const float *out,
                           const float *lse, int ld, int k_off, int v_off, int i, int h, int H, int group, int D,
                           float scale) {
    const float *qi = qkv + (size_t)i * ld + (size_t)h * D, *doi = dout + ((size_t)i * H + h) * D;
    const float li = lse[(size_t)i * H + h], di = dot8_ref(doi, out + ((size_t)i * H + h) * D, D);
    const size_t kh = (size_t)k_off + (size_t)(h / group) * D, vh = (size_t)v_off + (size_t)(h / group) * D;
    float acc[MAX_HEAD_DIM] = {0};
    for (int j = 0; j <= i; j++) {
        const float *kj = qkv + (size_t)j * ld + kh;
        const float p = att_prob(dot8_ref(qi, kj, D), scale, li);
        const float ds = p * (dot8_ref(doi, qkv + (size_t)j * ld + vh, D) - di);
        for (int d = 0; d < D; d++) acc[d] = fmaf(ds, kj[d], acc[d]);
    }
    float *dq = dqkv + (size_t)i * ld + (size_t)h * D;
    for (int d = 0; d < D; d++) dq[d] += acc[d] * scale;
    delta[(size_t)i * H + h] = di;
}

static void att_bwd_dkv_ref(float *dqkv, const float *delta, const float *dout, const float *qkv, const float *lse, int ld,
                            int k_off, int v_off, int j, int g, int T, int H, int group, int D, float scale) {
    const float *kj = qkv + (size_t)j * ld + k_off + (size_t)g * D, *vj = qkv + (size_t)j * ld + v_off + (size_t)g * D;
    float acck[MAX_HEAD_DIM] = {0}, accv[MAX_HEAD_DIM] = {0};
    for (int h = g * group; h < (g + 1) * group; h++)
        for (int i = j; i < T; i++) {
            const float *qi = qkv + (size_t)i * ld + (size_t)h * D, *doi = dout + ((size_t)i * H + h) * D;
            const float p = att_prob(dot8_ref(qi, kj, D), scale, lse[(size_t)i * H + h]);
            const float ds = p * (dot8_ref(doi, vj, D) - delta[(size_t)i * H + h]);
            for (int d = 0; d < D; d++) {
                accv[d] = fmaf(p, doi[d], accv[d]);
                acck[d] = fmaf(ds, qi[d], acck[d]);
            }
        }
    float *dk = dqkv + (size_t)j * ld + k_off + (size_t)g * D, *dv = dqkv + (size_t)j * ld + v_off + (size_t)g * D;
    for (int d = 0; d < D; d++) {
        dk[d] += acck[d] * scale;
        dv[d] += accv[d];
    }
}

#if SLM_HAVE_AVX2_KERNELS
/* Eight canonical dot products at once: lane k = dot8_ref(a, rows[k], D), D % 8 == 0. The
   horizontal adds pair lanes (0,1), (2,3), then those pairs, then the 128-bit halves: the
   canonical tree. */
static inline AVX2 __m256 dots8_avx2(const float *a, const float *const *rows, int D) {
    const float *r0 = rows[0], *r1 = rows[1], *r2 = rows[2], *r3 = rows[3];
    const float *r4 = rows[4], *r5 = rows[5], *r6 = rows[6], *r7 = rows[7];
    __m256 v0 = _mm256_setzero_ps(), v1 = _mm256_setzero_ps(), v2 = _mm256_setzero_ps(), v3 = _mm256_setzero_ps();
    __m256 v4 = _mm256_setzero_ps(), v5 = _mm256_setzero_ps(), v6 = _mm256_setzero_ps(), v7 = _mm256_setzero_ps();
    for (int d = 0; d < D; d += 8) {
        const __m256 x = _mm256_loadu_ps(a + d);
        v0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(r0 + d), v0), v1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(r1 + d), v1);
        v2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(r2 + d), v2), v3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(r3 + d), v3);
        v4 = _mm256_fmadd_ps(x, _mm256_loadu_ps(r4 + d), v4), v5 = _mm256_fmadd_ps(x, _mm256_loadu_ps(r5 + d), v5);
        v6 = _mm256_fmadd_ps(x, _mm256_loadu_ps(r6 + d), v6), v7 = _mm256_fmadd_ps(x, _mm256_loadu_ps(r7 + d), v7);
    }
    __m256 h01 = _mm256_hadd_ps(v0, v1), h23 = _mm256_hadd_ps(v2, v3);
    __m256 h45 = _mm256_hadd_ps(v4, v5), h67 = _mm256_hadd_ps(v6, v7);
    __m256 lo = _mm256_hadd_ps(h01, h23), hi = _mm256_hadd_ps(h45, h67);
    return _mm256_add_ps(_mm256_permute2f128_ps(lo, hi, 0x20), _mm256_permute2f128_ps(lo, hi, 0x31));
}

/* dot8_ref with the lane chains in a register (the tree as dot8_ref) */
static inline AVX2 float dot8_avx2(const float *a, const float *b, int D) {
    __m256 v = _mm256_setzero_ps();
    for (int d = 0; d < D; d += 8) v = _mm256_fmadd_ps(_mm256_loadu_ps(a + d), _mm256_loadu_ps(b + d), v);
    float c[8];
    _mm256_storeu_ps(c, v);
    return ((c[0] + c[1]) + (c[2] + c[3])) + ((c[4] + c[5]) + (c[6] + c[7]));
}

/* acc[d] = fmaf(a[k], x[k][d], acc[d]) for k = 0 .. n-1 in order, every d of D: 32 lanes of acc
   (four independent chains, hiding the FMA latency) stay in registers across the n rows */
static inline AVX2 void axpy_rows_avx2(float *acc, const float *a, const float *const *x, int n, int D) {
    int d = 0;
    for (; d + 32 <= D; d += 32) {
        __m256 s0 = _mm256_loadu_ps(acc + d), s1 = _mm256_loadu_ps(acc + d + 8);
        __m256 s2 = _mm256_loadu_ps(acc + d + 16), s3 = _mm256_loadu_ps(acc + d + 24);
        for (int k = 0; k < n; k++) {
            const __m256 ak = _mm256_set1_ps(a[k]);
            const float *xk = x[k] + d;
            s0 = _mm256_fmadd_ps(ak, _mm256_loadu_ps(xk), s0), s1 = _mm256_fmadd_ps(ak, _mm256_loadu_ps(xk + 8), s1);
            s2 = _mm256_fmadd_ps(ak, _mm256_loadu_ps(xk + 16), s2), s3 = _mm256_fmadd_ps(ak, _mm256_loadu_ps(xk + 24), s3);
        }
        _mm256_storeu_ps(acc + d, s0), _mm256_storeu_ps(acc + d + 8, s1);
        _mm256_storeu_ps(acc + d + 16, s2), _mm256_storeu_ps(acc + d + 24, s3);
    }
    for (; d < D; d += 8) {
        __m256 s0 = _mm256_loadu_ps(acc + d);
        for (int k = 0; k < n; k++) s0 = _mm256_fmadd_ps(_mm256_set1_ps(a[k]), _mm256_loadu_ps(x[k] + d), s0);
        _mm256_storeu_ps(acc + d, s0);
    }
}

/* axpy_rows_avx2 on two accumulators at once (dk and dv share the loop: twice the chains) */
static inline AVX2 void axpy2_rows_avx2(float *acc, const float *a, const float *const *x, float *acc2, const float *a2,
                                        const float *const *x2, int n, int D) {
    int d = 0;
    for (; d + 16 <= D; d += 16) {
        __m256 s0 = _mm256_loadu_ps(acc + d), s1 = _mm256_loadu_ps(acc + d + 8);
        __m256 t0 = _mm256_loadu_ps(acc2 + d), t1 = _mm256_loadu_ps(acc2 + d + 8);
        for (int k = 0; k < n; k++) {
            const __m256 ak = _mm256_set1_ps(a[k]), bk = _mm256_set1_ps(a2[k]);
            s0 = _mm256_fmadd_ps(ak, _mm256_loadu_ps(x[k] + d), s0), s1 = _mm256_fmadd_ps(ak, _mm256_loadu_ps(x[k] + d + 8), s1);
            t0 = _mm256_fmadd_ps(bk, _mm256_loadu_ps(x2[k] + d), t0), t1 = _mm256_fmadd_ps(bk, _mm256_loadu_ps(x2[k] + d + 8), t1);
        }
        _mm256_storeu_ps(acc + d, s0), _mm256_storeu_ps(acc + d + 8, s1);
        _mm256_storeu_ps(acc2 + d, t0), _mm256_storeu_ps(acc2 + d + 8, t1);
    }
    for (; d < D; d += 8) {
        __m256 s0 = _mm256_loadu_ps(acc + d), t0 = _mm256_loadu_ps(acc2 + d);
        for (int k = 0; k < n; k++) {
            s0 = _mm256_fmadd_ps(_mm256_set1_ps(a[k]), _mm256_loadu_ps(x[k] + d), s0);
            t0 = _mm256_fmadd_ps(_mm256_set1_ps(a2[k]), _mm256_loadu_ps(x2[k] + d), t0);
        }
        _mm256_storeu_ps(acc + d, s0), _mm256_storeu_ps(acc2 + d, t0);
    }
}

/* att_bwd_dq_ref, keys 8 at a time (scores and probabilities of 8 keys in one vector) */
static AVX2 void att_bwd_dq_avx2(float *dqkv, float *delta, const float *dout, const float *qkv, const float *out,
                                 const float *lse, int ld, int k_off, int v_off, int i, int h, int H, int group, int D,
                                 float scale) {
    const float *qi = qkv + (size_t)i * ld + (size_t)h * D, *doi = dout + ((size_t)i * H + h) * D;
    const float li = lse[(size_t)i * H + h], di = dot8_avx2(doi, out + ((size_t)i * H + h) * D, D);
    const size_t kh = (size_t)k_off + (size_t)(h / group) * D, vh = (size_t)v_off + (size_t)(h / group) * D;
    const __m256 vscale = _mm256_set1_ps(scale), vl = _mm256_set1_ps(li), vd = _mm256_set1_ps(di);
    float acc[MAX_HEAD_DIM], ds[8];
    memset(acc, 0, sizeof(float) * (size_t)D);
    for (int j0 = 0; j0 <= i; j0 += 8) {
        const int nj = min_i(8, i + 1 - j0);
        const float *kr[8], *vr[8];
        for (int k = 0; k < 8; k++) {
            const size_t row = (size_t)(j0 + min_i(k, nj - 1)) * ld;
            kr[k] = qkv + row + kh, vr[k] = qkv + row + vh;
        }
        __m256 p = expf_avx2(_mm256_sub_ps(_mm256_mul_ps(dots8_avx2(qi, kr, D), vscale), vl));
        _mm256_storeu_ps(ds, _mm256_mul_ps(p, _mm256_sub_ps(dots8_avx2(doi, vr, D), vd)));
        axpy_rows_avx2(acc, ds, kr, nj, D);
    }
    float *dq = dqkv + (size_t)i * ld + (size_t)h * D;
    for (int d = 0; d < D; d += 8)
        _mm256_storeu_ps(dq + d, _mm256_add_ps(_mm256_loadu_ps(dq + d), _mm256_mul_ps(_mm256_loadu_ps(acc + d), vscale)));
    delta[(size_t)i * H + h] = di;
}

/* att_bwd_dkv_ref, queries 8 at a time */
static AVX2 void att_bwd_dkv_avx2(float *dqkv, const float *delta, const float *dout, const float *qkv, const float *lse,
                                  int ld, int k_off, int v_off, int j, int g, int T, int H, int group, int D, float scale) {
    const float *kj = qkv + (size_t)j * ld + k_off + (size_t)g * D, *vj = qkv + (size_t)j * ld + v_off + (size_t)g * D;
    const __m256 vscale = _mm256_set1_ps(scale);
    float acck[MAX_HEAD_DIM], accv[MAX_HEAD_DIM], p[8], ds[8], l8[8], d8[8];
    memset(acck, 0, sizeof(float) * (size_t)D);
    memset(accv, 0, sizeof(float) * (size_t)D);
    for (int h = g * group; h < (g + 1) * group; h++)
        for (int i0 = j; i0 < T; i0 += 8) {
            const int ni = min_i(8, T - i0);
            const float *qr[8], *dr[8];
            for (int k = 0; k < 8; k++) {
                const int i = i0 + min_i(k, ni - 1);
                qr[k] = qkv + (size_t)i * ld + (size_t)h * D, dr[k] = dout + ((size_t)i * H + h) * D;
                l8[k] = lse[(size_t)i * H + h], d8[k] = delta[(size_t)i * H + h];
            }
            __m256 vp = expf_avx2(_mm256_sub_ps(_mm256_mul_ps(dots8_avx2(kj, qr, D), vscale), _mm256_loadu_ps(l8)));
            _mm256_storeu_ps(p, vp);
            _mm256_storeu_ps(ds, _mm256_mul_ps(vp, _mm256_sub_ps(dots8_avx2(vj, dr, D), _mm256_loadu_ps(d8))));
            axpy2_rows_avx2(accv, p, dr, acck, ds, qr, ni, D);
        }
    float *dk = dqkv + (size_t)j * ld + k_off + (size_t)g * D, *dv = dqkv + (size_t)j * ld + v_off + (size_t)g * D;
    for (int d = 0; d < D; d += 8) {
        _mm256_storeu_ps(dk + d, _mm256_add_ps(_mm256_loadu_ps(dk + d), _mm256_mul_ps(_mm256_loadu_ps(acck + d), vscale)));
        _mm256_storeu_ps(dv + d, _mm256_add_ps(_mm256_loadu_ps(dv + d), _mm256_loadu_ps(accv + d)));
    }
}
#endif

static void attention_backward_impl(float *dqkv, float *delta, const float *dout, const float *qkv, const float *out,
                                    const float *lse, int ld, int k_off, int v_off, int T, int H, int Hkv, int D,
                                    int simd) {
    const int group = H / Hkv;
    const float scale = 1.0f / sqrtf((float)D);
#if SLM_HAVE_AVX2_KERNELS
    const int vec = simd && D % 8 == 0;
#else
    const int vec = 0;
    (void)simd;
#endif
    /* (head, query) items dealt round robin: later queries see more keys */
#pragma omp parallel for schedule(static, 1)
    for (int it = 0; it < H * T; it++) {
        const int h = it / T, i = it % T;
#if SLM_HAVE_AVX2_KERNELS
        if (vec) {
            att_bwd_dq_avx2(dqkv, delta, dout, qkv, out, lse, ld, k_off, v_off, i, h, H, group, D, scale);
            continue;
        }
#endif
        att_bwd_dq_ref(dqkv, delta, dout, qkv, out, lse, ld, k_off, v_off, i, h, H, group, D, scale);
    }
    /* (kv head, key) items: earlier keys are seen by more queries */
#pragma omp parallel for schedule(static, 1)
    for (int it = 0; it < Hkv * T; it++) {
        const int g = it / T, j = it % T;
#if SLM_HAVE_AVX2_KERNELS
        if (vec) {
            att_bwd_dkv_avx2(dqkv, delta, dout, qkv, lse, ld, k_off, v_off, j, g, T, H, group, D, scale);
            continue;
        }
#endif
        att_bwd_dkv_ref(dqkv, delta, dout, qkv, lse, ld, k_off, v_off, j, g, T, H, group, D, scale);
    }
}

void slm_attention_backward(float *dqkv, float *delta, const float *dout, const float *qkv, const float *out,
                            const float *lse, int ld, int k_off, int v_off, int T, int H, int Hkv, int D) {
    attention_backward_impl(dqkv, delta, dout, qkv, out, lse, ld, k_off, v_off, T, H, Hkv, D, slm_layers_simd());
}

void slm_attention_backward_ref(float *dqkv, float *delta, const float *dout, const float *qkv, const float *out,
                                const float *lse, int ld, int k_off, int v_off, int T, int H, int Hkv, int D) {
    attention_backward_impl(dqkv, delta, dout, qkv, out, lse, ld, k_off, v_off, T, H, Hkv, D, 0);
}
