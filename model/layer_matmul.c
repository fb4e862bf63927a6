/* layer_matmul.c - out = inp @ W^T (+ bias) over panel-packed weights: the scalar reference and
 * the AVX2 kernel (6 tokens x 16 channels per step) and the AVX-512 one (8 x 16), all in the
 * canonical order of layers.h.
 * Must not: allocate, fail or print; one `parallel for` over panels.
 */
#include "model/layer_simd.h"

#include "core/dtype.h"
#include "core/thread.h"
#include "quantize/qtypes.h"
#include "quantize/quants.h"

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

/* The same chains 8 tokens x 16 channels per step, one zmm per token (lane j: channel o0 + j):
   8 accumulators, 1 weight load and 8 broadcasts per c (12 tokens were no faster: 13 streams
   at a stride of C floats crowd L1's ways). */
#define ZT 8
static AVX512 void matmul_panel_avx512(float *out, int ld_out, const float *inp, const float *wp, const float *bias, int T,
                                       int C, int o0, int n_valid) {
    for (int t0 = 0; t0 < T; t0 += ZT) {
        const float *x[ZT];
        __m512 acc[ZT];
        for (int t = 0; t < ZT; t++) {
            x[t] = inp + (size_t)min_i(t0 + t, T - 1) * C;
            acc[t] = _mm512_setzero_ps();
        }
        const float *w = wp;
        for (int c = 0; c < C; c++, w += SLM_PANEL) {
            const __m512 wv = _mm512_loadu_ps(w);
#pragma GCC unroll 8
            for (int t = 0; t < ZT; t++) acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(x[t][c]), wv, acc[t]);
        }
        const int nt = T - t0 < ZT ? T - t0 : ZT;
        for (int t = 0; t < nt; t++) {
            float *o = out + (size_t)(t0 + t) * ld_out + o0;
            if (n_valid == SLM_PANEL) {
                __m512 a = acc[t];
                if (bias) a = _mm512_add_ps(a, _mm512_loadu_ps(bias + o0));
                _mm512_storeu_ps(o, a);
            } else {
                float tmp[SLM_PANEL];
                _mm512_storeu_ps(tmp, acc[t]);
                for (int j = 0; j < n_valid; j++) o[j] = bias ? tmp[j] + bias[o0 + j] : tmp[j];
            }
        }
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
        if (simd == SLM_SIMD_AVX512) {
            matmul_panel_avx512(out, ld_out, inp, w, bias, T, C, o0, n_valid);
            continue;
        }
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
            if (simd == SLM_SIMD_AVX512) matmul_panel_avx512(out, ld_out, inp, panel, bias, T, C, o0, n_valid);
            else matmul_panel_avx2(out, ld_out, inp, panel, bias, T, C, o0, n_valid);
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
 * (forward: out = inp @ W^T + bias). dweight is panel-packed exactly like W.
 *
 * dinp: work items (16 input channels, up to BWD_TBLOCK tokens). For each chunk of BWD_OCHUNK
 * output channels the item gathers W^T of its 16 columns into a stack block (one 16-float row
 * per output channel), then runs the forward's register tile (6 tokens x 16 channels,
 * broadcasting dout) over it. dweight: work items are panels; tokens in blocks of BWD_TBLOCK,
 * 6 input channels x 16 output channels per register tile. */

#define BWD_OCHUNK 256 /* output channels per dinp chunk: a 16 KiB W^T block on the stack */
#define BWD_TBLOCK 96  /* tokens per dinp item and per dweight block (16 tiles of 6) */

/* wt[(o - o0) * 16 + i] = W[o][c0 + i] for o in [o0, o1), 0 for columns past C */
static void gather_wt(float *wt, const float *wp, int o0, int o1, int c0, int C) {
    const int nc = min_i(SLM_PANEL, C - c0);
    for (int o = o0; o < o1; o++) {
        const float *src = wp + (size_t)(o / SLM_PANEL) * SLM_PANEL * C + (size_t)c0 * SLM_PANEL + o % SLM_PANEL;
        float *dst = wt + (size_t)(o - o0) * SLM_PANEL;
        for (int i = 0; i < nc; i++) dst[i] = src[(size_t)i * SLM_PANEL];
        for (int i = nc; i < SLM_PANEL; i++) dst[i] = 0.0f;
    }
}

/* dinp[t][c0 + i] += sum_{o in [o0, o1)} dout[t][o] wt[o - o0][i] for tokens [t0, t1): one fmaf
   chain per element, o in order */
static void dinp_chunk_ref(float *dinp, const float *dout, int ld_dout, const float *wt, int t0, int t1, int o0, int o1,
                           int c0, int C) {
    const int nc = min_i(SLM_PANEL, C - c0);
    for (int t = t0; t < t1; t++) {
        const float *d = dout + (size_t)t * ld_dout;
        for (int i = 0; i < nc; i++) {
            float acc = 0.0f;
            for (int o = o0; o < o1; o++) acc = fmaf(d[o], wt[(size_t)(o - o0) * SLM_PANEL + i], acc);
            dinp[(size_t)t * C + c0 + i] += acc;
        }
    }
}

/* dweight and dbias of panel p (output channels o0 .. o0+n_valid-1): per token block, one fmaf
   chain per element over the block's tokens in order, added; dbias one chain over all tokens. */
static void matmul_dweight_ref(float *dweight, float *dbias, const float *dout, int ld_dout, const float *inp, int T,
                               int C, int o0, int n_valid) {
    float *dw = dweight ? dweight + (size_t)o0 * C : NULL; /* panel o0/16 starts at o0 * C */
    for (int tb = 0; dw && tb < T; tb += BWD_TBLOCK) {
        const int te = min_i(T, tb + BWD_TBLOCK);
        for (int c = 0; c < C; c++)
            for (int j = 0; j < n_valid; j++) {
                float acc = 0.0f;
                for (int t = tb; t < te; t++) acc = fmaf(inp[(size_t)t * C + c], dout[(size_t)t * ld_dout + o0 + j], acc);
                dw[(size_t)c * SLM_PANEL + j] += acc;
            }
    }
    for (int j = 0; dbias && j < n_valid; j++) {
        float acc = 0.0f;
        for (int t = 0; t < T; t++) acc += dout[(size_t)t * ld_dout + o0 + j];
        dbias[o0 + j] += acc;
    }
}

#if SLM_HAVE_AVX2_KERNELS
/* lanes n .. 7 of a maskload/maskstore mask off */
static inline AVX2 __m256i lane_mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
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

/* dinp_chunk_ref, 6 tokens x 16 channels per register tile (rows past t1 repeat the last one,
   computed and not stored) */
static AVX2 void dinp_chunk_avx2(float *dinp, const float *dout, int ld_dout, const float *wt, int t0, int t1, int o0,
                                 int o1, int c0, int C) {
    const int nc = min_i(SLM_PANEL, C - c0), part = nc < SLM_PANEL;
    const __m256i m0 = lane_mask(nc), m1 = lane_mask(nc - 8);
    for (int ts = t0; ts < t1; ts += 6) {
        const int nt = min_i(6, t1 - ts);
        const float *d0 = dout + (size_t)ts * ld_dout, *d1 = dout + (size_t)(ts + min_i(1, nt - 1)) * ld_dout;
        const float *d2 = dout + (size_t)(ts + min_i(2, nt - 1)) * ld_dout, *d3 = dout + (size_t)(ts + min_i(3, nt - 1)) * ld_dout;
        const float *d4 = dout + (size_t)(ts + min_i(4, nt - 1)) * ld_dout, *d5 = dout + (size_t)(ts + min_i(5, nt - 1)) * ld_dout;
        __m256 a00 = _mm256_setzero_ps(), a01 = _mm256_setzero_ps(), a10 = _mm256_setzero_ps();
        __m256 a11 = _mm256_setzero_ps(), a20 = _mm256_setzero_ps(), a21 = _mm256_setzero_ps();
        __m256 a30 = _mm256_setzero_ps(), a31 = _mm256_setzero_ps(), a40 = _mm256_setzero_ps();
        __m256 a41 = _mm256_setzero_ps(), a50 = _mm256_setzero_ps(), a51 = _mm256_setzero_ps();
        const float *w = wt;
        for (int o = o0; o < o1; o++, w += SLM_PANEL) {
            const __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
            __m256 b;
            b = _mm256_broadcast_ss(d0 + o), a00 = _mm256_fmadd_ps(b, w0, a00), a01 = _mm256_fmadd_ps(b, w1, a01);
            b = _mm256_broadcast_ss(d1 + o), a10 = _mm256_fmadd_ps(b, w0, a10), a11 = _mm256_fmadd_ps(b, w1, a11);
            b = _mm256_broadcast_ss(d2 + o), a20 = _mm256_fmadd_ps(b, w0, a20), a21 = _mm256_fmadd_ps(b, w1, a21);
            b = _mm256_broadcast_ss(d3 + o), a30 = _mm256_fmadd_ps(b, w0, a30), a31 = _mm256_fmadd_ps(b, w1, a31);
            b = _mm256_broadcast_ss(d4 + o), a40 = _mm256_fmadd_ps(b, w0, a40), a41 = _mm256_fmadd_ps(b, w1, a41);
            b = _mm256_broadcast_ss(d5 + o), a50 = _mm256_fmadd_ps(b, w0, a50), a51 = _mm256_fmadd_ps(b, w1, a51);
        }
        float *r = dinp + (size_t)ts * C + c0;
        add_row16(r, part, m0, m1, a00, a01);
        if (nt > 1) add_row16(r + (size_t)C, part, m0, m1, a10, a11);
        if (nt > 2) add_row16(r + (size_t)2 * C, part, m0, m1, a20, a21);
        if (nt > 3) add_row16(r + (size_t)3 * C, part, m0, m1, a30, a31);
        if (nt > 4) add_row16(r + (size_t)4 * C, part, m0, m1, a40, a41);
        if (nt > 5) add_row16(r + (size_t)5 * C, part, m0, m1, a50, a51);
    }
}

/* 16 lanes of dout row t at channel o0; part: only the lanes of mask m0 | m1 are read (the rest 0) */
static inline AVX2 void load_dout16(const float *dr, int part, __m256i m0, __m256i m1, __m256 *lo, __m256 *hi) {
    *lo = part ? _mm256_maskload_ps(dr, m0) : _mm256_loadu_ps(dr);
    *hi = part ? _mm256_maskload_ps(dr + 8, m1) : _mm256_loadu_ps(dr + 8);
}

/* matmul_dweight_ref's chains, 6 input channels x 16 output channels per register tile. */
static AVX2 void matmul_dweight_avx2(float *dweight, float *dbias, const float *dout, int ld_dout, const float *inp, int T,
                                     int C, int o0, int n_valid) {
    const __m256i m0 = lane_mask(n_valid), m1 = lane_mask(n_valid - 8);
    const int part = n_valid < SLM_PANEL;
    const float *dcol = dout + o0;
    float *dw = dweight ? dweight + (size_t)o0 * C : NULL;
    for (int tb = 0; dw && tb < T; tb += BWD_TBLOCK) {
        const int te = min_i(T, tb + BWD_TBLOCK);
        int c = 0;
        for (; c + 6 <= C; c += 6) {
            __m256 a00 = _mm256_setzero_ps(), a01 = _mm256_setzero_ps(), a10 = _mm256_setzero_ps();
            __m256 a11 = _mm256_setzero_ps(), a20 = _mm256_setzero_ps(), a21 = _mm256_setzero_ps();
            __m256 a30 = _mm256_setzero_ps(), a31 = _mm256_setzero_ps(), a40 = _mm256_setzero_ps();
            __m256 a41 = _mm256_setzero_ps(), a50 = _mm256_setzero_ps(), a51 = _mm256_setzero_ps();
            for (int t = tb; t < te; t++) {
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
        for (; c < C; c++) {
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
            for (int t = tb; t < te; t++) {
                __m256 lo, hi, b = _mm256_broadcast_ss(inp + (size_t)t * C + c);
                load_dout16(dcol + (size_t)t * ld_dout, part, m0, m1, &lo, &hi);
                a0 = _mm256_fmadd_ps(b, lo, a0), a1 = _mm256_fmadd_ps(b, hi, a1);
            }
            add_row16(dw + (size_t)c * SLM_PANEL, part, m0, m1, a0, a1);
        }
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
    const int n_cb = (C + SLM_PANEL - 1) / SLM_PANEL, n_tb = (T + BWD_TBLOCK - 1) / BWD_TBLOCK;
    const int n_panels = (OC + SLM_PANEL - 1) / SLM_PANEL;
    (void)simd;
    if (dinp) {
#pragma omp parallel for schedule(static)
        for (int it = 0; it < n_cb * n_tb; it++) {
            const int c0 = (it % n_cb) * SLM_PANEL, t0 = (it / n_cb) * BWD_TBLOCK, t1 = min_i(T, t0 + BWD_TBLOCK);
            float wt[BWD_OCHUNK * SLM_PANEL];
            for (int o0 = 0; o0 < OC; o0 += BWD_OCHUNK) {
                const int o1 = min_i(OC, o0 + BWD_OCHUNK);
                gather_wt(wt, wp, o0, o1, c0, C);
#if SLM_HAVE_AVX2_KERNELS
                if (simd) {
                    dinp_chunk_avx2(dinp, dout, ld_dout, wt, t0, t1, o0, o1, c0, C);
                    continue;
                }
#endif
                dinp_chunk_ref(dinp, dout, ld_dout, wt, t0, t1, o0, o1, c0, C);
            }
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

/* ---------------------------------------------------------------------------------------------
 * stored weights times quantized activations: ggml's vec_dot numbers (--numerics ggml) */

/* Output rows per work item (one panel: the bad flags stay per panel) and activation rows per
   slm_dot_rows call: a group's weight rows stay in L1 while chunks of this many activation rows
   stream through L2. */
#define DOT_TOKENS 32

void slm_matmul_forward_dot(float *out, int ld_out, const void *act, size_t act_row_bytes, const slm_wmat *w,
                            const float *bias, int T, int C, int OC, uint8_t *bad) {
    const int n_groups = (OC + SLM_PANEL - 1) / SLM_PANEL;
    const uint8_t *a = act;
#pragma omp parallel for schedule(static)
    for (int g = 0; g < n_groups; g++) {
        const int o0 = g * SLM_PANEL, nr = OC - o0 < SLM_PANEL ? OC - o0 : SLM_PANEL;
        float z[SLM_PANEL] = {0}; /* += o * 0: stays 0 unless an output is NaN or Inf (vectorises) */
        for (int t0 = 0; t0 < T; t0 += DOT_TOKENS) {
            const int nt = T - t0 < DOT_TOKENS ? T - t0 : DOT_TOKENS;
            float *o = out + (size_t)t0 * ld_out + o0;
            slm_dot_rows(w->dtype, C, nr, nt, o, (size_t)ld_out, w->data + (size_t)o0 * w->row_bytes, w->row_bytes,
                         a + (size_t)t0 * act_row_bytes, act_row_bytes);
            for (int t = 0; t < nt; t++, o += ld_out) {
                if (bias)
                    for (int r = 0; r < nr; r++) o[r] += bias[o0 + r];
                for (int r = 0; r < nr; r++) z[r] += o[r] * 0.0f;
            }
        }
        int nonfinite = 0;
        for (int r = 0; r < nr; r++) nonfinite |= z[r] != z[r];
        bad[g] = (uint8_t)nonfinite;
    }
}
