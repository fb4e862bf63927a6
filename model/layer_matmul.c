/* layer_matmul.c - out = inp @ W^T (+ bias) over panel-packed weights: the scalar reference and
 * the AVX2 kernel (6 tokens x 16 channels per step), both in the canonical order of layers.h.
 * Must not: allocate, fail or print; one `parallel for` over panels.
 */
#include "model/layer_simd.h"

#include "core/dtype.h"
#include "core/thread.h"
#include "quantize/qtypes.h"

/* ---------------------------------------------------------------------------------------------
 * matmul: out (T,OC) = inp (T,C) @ W^T + bias, W panel-packed */

/* One panel (16 output channels o0 .. o0+15, n_valid of them real) for all T tokens. */
static void matmul_panel_ref(float *out, int ld_out, const float *inp, const float *wp, const float *bias, int T, int C,
                             int o0, int n_valid) {
    for (int t = 0; t < T; t++) {
        const float *x = inp + (size_t)t * C;
        float acc[SLM_PANEL] = {0};
        for (int c = 0; c < C; c++) {
            const float *w = wp + (size_t)c * SLM_PANEL;
            for (int j = 0; j < SLM_PANEL; j++) acc[j] = fmaf(x[c], w[j], acc[j]);
        }
        float *o = out + (size_t)t * ld_out + o0;
        for (int j = 0; j < n_valid; j++) o[j] = bias ? acc[j] + bias[o0 + j] : acc[j];
    }
}

#if SLM_HAVE_AVX2_KERNELS
static inline AVX2 void store_panel_row(float *o, __m256 a0, __m256 a1, const float *bias, int o0, int n_valid) {
    if (n_valid == SLM_PANEL) {
        if (bias) {
            a0 = _mm256_add_ps(a0, _mm256_loadu_ps(bias + o0));
            a1 = _mm256_add_ps(a1, _mm256_loadu_ps(bias + o0 + 8));
        }
        _mm256_storeu_ps(o + o0, a0);
        _mm256_storeu_ps(o + o0 + 8, a1);
        return;
    }
    float tmp[SLM_PANEL];
    _mm256_storeu_ps(tmp, a0);
    _mm256_storeu_ps(tmp + 8, a1);
    for (int j = 0; j < n_valid; j++) o[o0 + j] = bias ? tmp[j] + bias[o0 + j] : tmp[j];
}

/* 6 tokens x 16 channels per step: 12 accumulators, 2 weight loads and 6 broadcasts per c.
   Missing tokens of the last block repeat the last row (computed, not stored). */
static AVX2 void matmul_panel_avx2(float *out, int ld_out, const float *inp, const float *wp, const float *bias, int T,
                                   int C, int o0, int n_valid) {
    for (int t0 = 0; t0 < T; t0 += 6) {
        const float *x0 = inp + (size_t)t0 * C;
        const float *x1 = inp + (size_t)min_i(t0 + 1, T - 1) * C;
        const float *x2 = inp + (size_t)min_i(t0 + 2, T - 1) * C;
        const float *x3 = inp + (size_t)min_i(t0 + 3, T - 1) * C;
        const float *x4 = inp + (size_t)min_i(t0 + 4, T - 1) * C;
        const float *x5 = inp + (size_t)min_i(t0 + 5, T - 1) * C;
        __m256 a00 = _mm256_setzero_ps(), a01 = _mm256_setzero_ps(), a10 = _mm256_setzero_ps();
        __m256 a11 = _mm256_setzero_ps(), a20 = _mm256_setzero_ps(), a21 = _mm256_setzero_ps();
        __m256 a30 = _mm256_setzero_ps(), a31 = _mm256_setzero_ps(), a40 = _mm256_setzero_ps();
        __m256 a41 = _mm256_setzero_ps(), a50 = _mm256_setzero_ps(), a51 = _mm256_setzero_ps();
        const float *w = wp;
        for (int c = 0; c < C; c++, w += SLM_PANEL) {
            __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8), b;
            b = _mm256_broadcast_ss(x0 + c);
            a00 = _mm256_fmadd_ps(b, w0, a00);
            a01 = _mm256_fmadd_ps(b, w1, a01);
            b = _mm256_broadcast_ss(x1 + c);
            a10 = _mm256_fmadd_ps(b, w0, a10);
            a11 = _mm256_fmadd_ps(b, w1, a11);
            b = _mm256_broadcast_ss(x2 + c);
            a20 = _mm256_fmadd_ps(b, w0, a20);
            a21 = _mm256_fmadd_ps(b, w1, a21);
            b = _mm256_broadcast_ss(x3 + c);
            a30 = _mm256_fmadd_ps(b, w0, a30);
            a31 = _mm256_fmadd_ps(b, w1, a31);
            b = _mm256_broadcast_ss(x4 + c);
            a40 = _mm256_fmadd_ps(b, w0, a40);
            a41 = _mm256_fmadd_ps(b, w1, a41);
            b = _mm256_broadcast_ss(x5 + c);
            a50 = _mm256_fmadd_ps(b, w0, a50);
            a51 = _mm256_fmadd_ps(b, w1, a51);
        }
        int nt = T - t0 < 6 ? T - t0 : 6;
        float *o = out + (size_t)t0 * ld_out;
        store_panel_row(o, a00, a01, bias, o0, n_valid);
        if (nt > 1) store_panel_row(o + (size_t)ld_out, a10, a11, bias, o0, n_valid);
        if (nt > 2) store_panel_row(o + (size_t)2 * ld_out, a20, a21, bias, o0, n_valid);
        if (nt > 3) store_panel_row(o + (size_t)3 * ld_out, a30, a31, bias, o0, n_valid);
        if (nt > 4) store_panel_row(o + (size_t)4 * ld_out, a40, a41, bias, o0, n_valid);
        if (nt > 5) store_panel_row(o + (size_t)5 * ld_out, a50, a51, bias, o0, n_valid);
    }
}
#endif

static void matmul_forward_impl(float *out, int ld_out, const float *inp, const float *wp, const float *bias, int T,
                                int C, int OC, int simd) {
    int n_panels = (OC + SLM_PANEL - 1) / SLM_PANEL;
#pragma omp parallel for schedule(static)
    for (int p = 0; p < n_panels; p++) {
        int o0 = p * SLM_PANEL;
        int n_valid = OC - o0 < SLM_PANEL ? OC - o0 : SLM_PANEL;
        const float *w = wp + (size_t)p * SLM_PANEL * C;
#if SLM_HAVE_AVX2_KERNELS
        if (simd) {
            matmul_panel_avx2(out, ld_out, inp, w, bias, T, C, o0, n_valid);
            continue;
        }
#endif
        matmul_panel_ref(out, ld_out, inp, w, bias, T, C, o0, n_valid);
    }
    (void)simd;
}

void slm_matmul_forward(float *out, int ld_out, const float *inp, const float *wp, const float *bias, int T, int C,
                        int OC) {
    matmul_forward_impl(out, ld_out, inp, wp, bias, T, C, OC, slm_layers_simd());
}

void slm_matmul_forward_ref(float *out, int ld_out, const float *inp, const float *wp, const float *bias, int T, int C,
                            int OC) {
    matmul_forward_impl(out, ld_out, inp, wp, bias, T, C, OC, 0);
}

/* ---------------------------------------------------------------------------------------------
 * stored (typed) weights: one panel dequantized and packed per step, in the thread's scratch */

size_t slm_matmul_scratch_floats(int64_t C) { return (size_t)2 * SLM_PANEL * (size_t)C; }

/* rows (16, C) row-major -> panel (C, 16); returns 1 if any value is NaN or Inf. */
static int pack_panel_ref(float *restrict panel, const float *restrict rows, int C) {
    int bad = 0;
    for (int c = 0; c < C; c++)
        for (int r = 0; r < SLM_PANEL; r++) {
            float v = rows[(size_t)r * C + c];
            bad |= !isfinite(v);
            panel[(size_t)c * SLM_PANEL + r] = v;
        }
    return bad;
}

#if SLM_HAVE_AVX2_KERNELS
/* The same with 8x8 transposes; v - v is 0 for finite v and NaN otherwise, so OR-ing the
   differences flags any NaN/Inf without a branch. */
static AVX2 int pack_panel_avx2(float *restrict panel, const float *restrict rows, int C) {
    __m256 diff = _mm256_setzero_ps();
    int c = 0;
    for (; c + 8 <= C; c += 8)
        for (int h = 0; h < 2; h++) { /* rows 0..7, then 8..15 */
            __m256 r[8];
            for (int j = 0; j < 8; j++) {
                r[j] = _mm256_loadu_ps(rows + (size_t)(8 * h + j) * C + c);
                diff = _mm256_or_ps(diff, _mm256_sub_ps(r[j], r[j]));
            }
            __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
            __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
            __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
            __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
            __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
            __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
            __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
            __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
            float *o = panel + (size_t)c * SLM_PANEL + 8 * h; /* column c+j of rows 8h..8h+7 */
            _mm256_storeu_ps(o + 0 * SLM_PANEL, _mm256_permute2f128_ps(s0, s4, 0x20));
            _mm256_storeu_ps(o + 1 * SLM_PANEL, _mm256_permute2f128_ps(s1, s5, 0x20));
            _mm256_storeu_ps(o + 2 * SLM_PANEL, _mm256_permute2f128_ps(s2, s6, 0x20));
            _mm256_storeu_ps(o + 3 * SLM_PANEL, _mm256_permute2f128_ps(s3, s7, 0x20));
            _mm256_storeu_ps(o + 4 * SLM_PANEL, _mm256_permute2f128_ps(s0, s4, 0x31));
            _mm256_storeu_ps(o + 5 * SLM_PANEL, _mm256_permute2f128_ps(s1, s5, 0x31));
            _mm256_storeu_ps(o + 6 * SLM_PANEL, _mm256_permute2f128_ps(s2, s6, 0x31));
            _mm256_storeu_ps(o + 7 * SLM_PANEL, _mm256_permute2f128_ps(s3, s7, 0x31));
        }
    int bad = !_mm256_testz_ps(diff, diff) || _mm256_movemask_ps(_mm256_cmp_ps(diff, diff, _CMP_UNORD_Q));
    for (; c < C; c++)
        for (int r = 0; r < SLM_PANEL; r++) {
            float v = rows[(size_t)r * C + c];
            bad |= !isfinite(v);
            panel[(size_t)c * SLM_PANEL + r] = v;
        }
    return bad;
}
#endif

void slm_matmul_forward_typed(float *out, int ld_out, const float *inp, const slm_wmat *w, const float *bias, int T, int C,
                              int OC, float *scratch, int n_scratch, uint8_t *bad) {
    const slm_dtype_traits *tr = slm_dtype_get(w->dtype);
    const int n_panels = (OC + SLM_PANEL - 1) / SLM_PANEL, simd = slm_layers_simd();
    const size_t per_thread = slm_matmul_scratch_floats(C);
    (void)simd;
#pragma omp parallel for schedule(static) num_threads(n_scratch)
    for (int p = 0; p < n_panels; p++) {
        float *rows = scratch + (size_t)slm_thread_id() * per_thread, *panel = rows + (size_t)SLM_PANEL * C;
        const int o0 = p * SLM_PANEL, n_valid = OC - o0 < SLM_PANEL ? OC - o0 : SLM_PANEL;
        for (int r = 0; r < n_valid; r++) tr->to_float(w->data + (size_t)(o0 + r) * w->row_bytes, rows + (size_t)r * C, C);
        if (n_valid < SLM_PANEL) memset(rows + (size_t)n_valid * C, 0, sizeof(float) * (size_t)(SLM_PANEL - n_valid) * C);
#if SLM_HAVE_AVX2_KERNELS
        if (simd) {
            bad[p] = (uint8_t)pack_panel_avx2(panel, rows, C);
            matmul_panel_avx2(out, ld_out, inp, panel, bias, T, C, o0, n_valid);
            continue;
        }
#endif
        bad[p] = (uint8_t)pack_panel_ref(panel, rows, C);
        matmul_panel_ref(out, ld_out, inp, panel, bias, T, C, o0, n_valid);
    }
}

void slm_embedding_forward_typed(float *out, const int32_t *tokens, const slm_wmat *w, int T, int C) {
    const slm_dtype_traits *tr = slm_dtype_get(w->dtype);
    for (int t = 0; t < T; t++) tr->to_float(w->data + (size_t)tokens[t] * w->row_bytes, out + (size_t)t * C, C);
}

/* ---------------------------------------------------------------------------------------------
 * matmul backward: dinp += dout @ W, dweight += dout^T @ inp, dbias += sum_t dout
 * (forward: out = inp @ W^T + bias). dweight is panel-packed exactly like W. */

/* Tokens per dinp tile (the forward's 6: 12 accumulators of 8 lanes). */
#define BWD_TILE 6

/* The 16-lane pairwise tree: (lanes j + j+8), then (+4), then (+2), then (+1). */
static float tree16(const float *a) {
    float b[8], c[4], d[2];
    for (int i = 0; i < 8; i++) b[i] = a[i] + a[i + 8];
    for (int i = 0; i < 4; i++) c[i] = b[i] + b[i + 4];
    for (int i = 0; i < 2; i++) d[i] = c[i] + c[i + 2];
    return d[0] + d[1];
}

/* dinp rows t0 .. t0+nt-1: for each c, 16 lane chains over panels, then the tree. Lanes of
   dout at or past OC read as 0. */
static void matmul_dinp_ref(float *dinp, const float *dout, int ld_dout, const float *wp, int t0, int nt, int C, int OC) {
    const int np = (OC + SLM_PANEL - 1) / SLM_PANEL;
    for (int t = t0; t < t0 + nt; t++) {
        const float *d = dout + (size_t)t * ld_dout;
        for (int c = 0; c < C; c++) {
            float acc[SLM_PANEL] = {0};
            for (int p = 0; p < np; p++) {
                const float *w = wp + (size_t)p * SLM_PANEL * C + (size_t)c * SLM_PANEL;
                for (int j = 0; j < SLM_PANEL; j++) {
                    int o = p * SLM_PANEL + j;
                    acc[j] = fmaf(o < OC ? d[o] : 0.0f, w[j], acc[j]);
                }
            }
            dinp[(size_t)t * C + c] += tree16(acc);
        }
    }
}

/* dweight and dbias of panel p (output channels o0 .. o0+n_valid-1): lane chains over tokens. */
static void matmul_dweight_ref(float *dweight, float *dbias, const float *dout, int ld_dout, const float *inp, int T,
                               int C, int o0, int n_valid) {
    float *dw = dweight ? dweight + (size_t)o0 * C : NULL; /* panel o0/16 starts at o0 * C */
    for (int c = 0; dw && c < C; c++)
        for (int j = 0; j < n_valid; j++) {
            float acc = 0.0f;
            for (int t = 0; t < T; t++) acc = fmaf(inp[(size_t)t * C + c], dout[(size_t)t * ld_dout + o0 + j], acc);
            dw[(size_t)c * SLM_PANEL + j] += acc;
        }
    for (int j = 0; dbias && j < n_valid; j++) {
        float acc = 0.0f;
        for (int t = 0; t < T; t++) acc += dout[(size_t)t * ld_dout + o0 + j];
        dbias[o0 + j] += acc;
    }
}

#if SLM_HAVE_AVX2_KERNELS
/* tree16 of the 16 lanes a | b */
static inline AVX2 float tree16_avx2(__m256 a, __m256 b) {
    __m256 s8 = _mm256_add_ps(a, b);
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    __m128 s1 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1));
    return _mm_cvtss_f32(s1);
}

/* lanes n .. 7 of a maskload/maskstore mask off */
static inline AVX2 __m256i lane_mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* matmul_dinp_ref's operations for BWD_TILE tokens at once (rows past nt repeat the last one,
   computed and not stored); the last panel's dout lanes past OC come from a zero-padded copy. */
static AVX2 void matmul_dinp_avx2(float *dinp, const float *dout, int ld_dout, const float *wp, int t0, int nt, int C,
                                  int OC) {
    const int np = (OC + SLM_PANEL - 1) / SLM_PANEL, full = OC / SLM_PANEL;
    const float *d[BWD_TILE];
    float tail[BWD_TILE][SLM_PANEL];
    for (int i = 0; i < BWD_TILE; i++) {
        d[i] = dout + (size_t)(t0 + min_i(i, nt - 1)) * ld_dout;
        for (int j = 0; j < SLM_PANEL; j++) tail[i][j] = full * SLM_PANEL + j < OC ? d[i][full * SLM_PANEL + j] : 0.0f;
    }
    for (int c = 0; c < C; c++) {
        __m256 a00 = _mm256_setzero_ps(), a01 = _mm256_setzero_ps(), a10 = _mm256_setzero_ps();
        __m256 a11 = _mm256_setzero_ps(), a20 = _mm256_setzero_ps(), a21 = _mm256_setzero_ps();
        __m256 a30 = _mm256_setzero_ps(), a31 = _mm256_setzero_ps(), a40 = _mm256_setzero_ps();
        __m256 a41 = _mm256_setzero_ps(), a50 = _mm256_setzero_ps(), a51 = _mm256_setzero_ps();
        const float *w = wp + (size_t)c * SLM_PANEL;
        for (int p = 0; p < np; p++, w += (size_t)SLM_PANEL * C) {
            const __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
            const size_t o = (size_t)p * SLM_PANEL;
            const float *d0 = p < full ? d[0] + o : tail[0], *d1 = p < full ? d[1] + o : tail[1];
            const float *d2 = p < full ? d[2] + o : tail[2], *d3 = p < full ? d[3] + o : tail[3];
            const float *d4 = p < full ? d[4] + o : tail[4], *d5 = p < full ? d[5] + o : tail[5];
            a00 = _mm256_fmadd_ps(_mm256_loadu_ps(d0), w0, a00), a01 = _mm256_fmadd_ps(_mm256_loadu_ps(d0 + 8), w1, a01);
            a10 = _mm256_fmadd_ps(_mm256_loadu_ps(d1), w0, a10), a11 = _mm256_fmadd_ps(_mm256_loadu_ps(d1 + 8), w1, a11);
            a20 = _mm256_fmadd_ps(_mm256_loadu_ps(d2), w0, a20), a21 = _mm256_fmadd_ps(_mm256_loadu_ps(d2 + 8), w1, a21);
            a30 = _mm256_fmadd_ps(_mm256_loadu_ps(d3), w0, a30), a31 = _mm256_fmadd_ps(_mm256_loadu_ps(d3 + 8), w1, a31);
            a40 = _mm256_fmadd_ps(_mm256_loadu_ps(d4), w0, a40), a41 = _mm256_fmadd_ps(_mm256_loadu_ps(d4 + 8), w1, a41);
            a50 = _mm256_fmadd_ps(_mm256_loadu_ps(d5), w0, a50), a51 = _mm256_fmadd_ps(_mm256_loadu_ps(d5 + 8), w1, a51);
        }
        float *o = dinp + (size_t)t0 * C + c;
        o[0] += tree16_avx2(a00, a01);
        if (nt > 1) o[(size_t)C] += tree16_avx2(a10, a11);
        if (nt > 2) o[(size_t)2 * C] += tree16_avx2(a20, a21);
        if (nt > 3) o[(size_t)3 * C] += tree16_avx2(a30, a31);
        if (nt > 4) o[(size_t)4 * C] += tree16_avx2(a40, a41);
        if (nt > 5) o[(size_t)5 * C] += tree16_avx2(a50, a51);
    }
}

/* 16 lanes of dout row t at channel o0; part: only the lanes of mask m0 | m1 are read (the rest 0) */
static inline AVX2 void load_dout16(const float *dr, int part, __m256i m0, __m256i m1, __m256 *lo, __m256 *hi) {
    *lo = part ? _mm256_maskload_ps(dr, m0) : _mm256_loadu_ps(dr);
    *hi = part ? _mm256_maskload_ps(dr + 8, m1) : _mm256_loadu_ps(dr + 8);
}

/* dst[0..16) += lo | hi, only the lanes of m0 | m1 when part */
static inline AVX2 void add_row16(float *dst, int part, __m256i m0, __m256i m1, __m256 lo, __m256 hi) {
    if (part) {
        _mm256_maskstore_ps(dst, m0, _mm256_add_ps(_mm256_maskload_ps(dst, m0), lo));
        _mm256_maskstore_ps(dst + 8, m1, _mm256_add_ps(_mm256_maskload_ps(dst + 8, m1), hi));
    } else {
        _mm256_storeu_ps(dst, _mm256_add_ps(_mm256_loadu_ps(dst), lo));
        _mm256_storeu_ps(dst + 8, _mm256_add_ps(_mm256_loadu_ps(dst + 8), hi));
    }
}

/* matmul_dweight_ref's lane chains, 6 input channels x 16 output channels per step. */
static AVX2 void matmul_dweight_avx2(float *dweight, float *dbias, const float *dout, int ld_dout, const float *inp, int T,
                                     int C, int o0, int n_valid) {
    const __m256i m0 = lane_mask(n_valid), m1 = lane_mask(n_valid - 8);
    const int part = n_valid < SLM_PANEL;
    const float *dcol = dout + o0;
    float *dw = dweight ? dweight + (size_t)o0 * C : NULL;
    int c = 0;
    for (; dw && c + 6 <= C; c += 6) {
        __m256 a00 = _mm256_setzero_ps(), a01 = _mm256_setzero_ps(), a10 = _mm256_setzero_ps();
        __m256 a11 = _mm256_setzero_ps(), a20 = _mm256_setzero_ps(), a21 = _mm256_setzero_ps();
        __m256 a30 = _mm256_setzero_ps(), a31 = _mm256_setzero_ps(), a40 = _mm256_setzero_ps();
        __m256 a41 = _mm256_setzero_ps(), a50 = _mm256_setzero_ps(), a51 = _mm256_setzero_ps();
        for (int t = 0; t < T; t++) {
            __m256 lo, hi, b;
            load_dout16(dcol + (size_t)t * ld_dout, part, m0, m1, &lo, &hi);
            const float *x = inp + (size_t)t * C + c;
            b = _mm256_broadcast_ss(x), a00 = _mm256_fmadd_ps(b, lo, a00), a01 = _mm256_fmadd_ps(b, hi, a01);
            b = _mm256_broadcast_ss(x + 1), a10 = _mm256_fmadd_ps(b, lo, a10), a11 = _mm256_fmadd_ps(b, hi, a11);
            b = _mm256_broadcast_ss(x + 2), a20 = _mm256_fmadd_ps(b, lo, a20), a21 = _mm256_fmadd_ps(b, hi, a21);
            b = _mm256_broadcast_ss(x + 3), a30 = _mm256_fmadd_ps(b, lo, a30), a31 = _mm256_fmadd_ps(b, hi, a31);
            b = _mm256_broadcast_ss(x + 4), a40 = _mm256_fmadd_ps(b, lo, a40), a41 = _mm256_fmadd_ps(b, hi, a41);
            b = _mm256_broadcast_ss(x + 5), a50 = _mm256_fmadd_ps(b, lo, a50), a51 = _mm256_fmadd_ps(b, hi, a51);
        }
        float *r = dw + (size_t)c * SLM_PANEL;
        add_row16(r, part, m0, m1, a00, a01);
        add_row16(r + SLM_PANEL, part, m0, m1, a10, a11);
        add_row16(r + 2 * SLM_PANEL, part, m0, m1, a20, a21);
        add_row16(r + 3 * SLM_PANEL, part, m0, m1, a30, a31);
        add_row16(r + 4 * SLM_PANEL, part, m0, m1, a40, a41);
        add_row16(r + 5 * SLM_PANEL, part, m0, m1, a50, a51);
    }
    for (; dw && c < C; c++) {
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        for (int t = 0; t < T; t++) {
            __m256 lo, hi, b = _mm256_broadcast_ss(inp + (size_t)t * C + c);
            load_dout16(dcol + (size_t)t * ld_dout, part, m0, m1, &lo, &hi);
            a0 = _mm256_fmadd_ps(b, lo, a0), a1 = _mm256_fmadd_ps(b, hi, a1);
        }
        add_row16(dw + (size_t)c * SLM_PANEL, part, m0, m1, a0, a1);
    }
    if (dbias) {
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        for (int t = 0; t < T; t++) {
            __m256 lo, hi;
            load_dout16(dcol + (size_t)t * ld_dout, part, m0, m1, &lo, &hi);
            a0 = _mm256_add_ps(a0, lo), a1 = _mm256_add_ps(a1, hi);
        }
        add_row16(dbias + o0, part, m0, m1, a0, a1);
    }
}
#endif

static void matmul_backward_impl(float *dinp, float *dweight, float *dbias, const float *dout, int ld_dout,
                                 const float *inp, const float *wp, int T, int C, int OC, int simd) {
    const int n_tiles = (T + BWD_TILE - 1) / BWD_TILE, n_panels = (OC + SLM_PANEL - 1) / SLM_PANEL;
    (void)simd;
    if (dinp) {
#pragma omp parallel for schedule(static)
        for (int it = 0; it < n_tiles; it++) {
            const int t0 = it * BWD_TILE, nt = min_i(T - t0, BWD_TILE);
#if SLM_HAVE_AVX2_KERNELS
            if (simd) {
                matmul_dinp_avx2(dinp, dout, ld_dout, wp, t0, nt, C, OC);
                continue;
            }
#endif
            matmul_dinp_ref(dinp, dout, ld_dout, wp, t0, nt, C, OC);
        }
    }
    if (dweight || dbias) {
#pragma omp parallel for schedule(static)
        for (int p = 0; p < n_panels; p++) {
            const int o0 = p * SLM_PANEL, n_valid = min_i(OC - o0, SLM_PANEL);
#if SLM_HAVE_AVX2_KERNELS
            if (simd) {
                matmul_dweight_avx2(dweight, dbias, dout, ld_dout, inp, T, C, o0, n_valid);
                continue;
            }
#endif
            matmul_dweight_ref(dweight, dbias, dout, ld_dout, inp, T, C, o0, n_valid);
        }
    }
}

void slm_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout, int ld_dout, const float *inp,
                         const float *wp, int T, int C, int OC) {
    matmul_backward_impl(dinp, dweight, dbias, dout, ld_dout, inp, wp, T, C, OC, slm_layers_simd());
}

void slm_matmul_backward_ref(float *dinp, float *dweight, float *dbias, const float *dout, int ld_dout, const float *inp,
                             const float *wp, int T, int C, int OC) {
    matmul_backward_impl(dinp, dweight, dbias, dout, ld_dout, inp, wp, T, C, OC, 0);
}
