/* layers.c - layer kernels of the reference transformer: scalar reference + AVX2/FMA paths.
 *
 * Owns: the forward kernels declared in layers.h, in dependency order: panels, exp,
 * embedding, rmsnorm, matmul, rope, ggml's activation rounding, kv store, attention (the
 * canonical f32 kernel and llama.cpp's flash attention), swiglu, residual, losses.
 * Must not: allocate, fail or print. OpenMP only as one `parallel for` over independent
 * outputs (panels of a matmul, (head, query tile) items of attention, tokens); every output
 * element is computed in the canonical order stated in layers.h, whatever the thread count
 * or the path (AVX2 or scalar).
 *
 * Dimension legend: T tokens, C model dim, OC output channels, H heads, Hkv kv heads, D head
 * dim, F ffn dim, V vocab, S visible key positions. Shapes are given as (rows, cols), row-major.
 */
#include "model/layers.h"

#include "core/cpu.h"
#include "core/dtype.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define SLM_HAVE_AVX2_KERNELS 1
#define AVX2 __attribute__((target("avx2,fma")))
#else
#define SLM_HAVE_AVX2_KERNELS 0
#endif

/* The largest head dim the attention kernels keep on the stack (Llama-family models use <= 256). */
#define MAX_HEAD_DIM 512
/* Key positions per softmax chunk of the attention kernels (4 panels; scores on the stack). */
#define ATT_CHUNK 64

static inline int min_i(int a, int b) { return a < b ? a : b; }

int slm_layers_simd(void) {
#if SLM_HAVE_AVX2_KERNELS
    return slm_cpu_has_avx2_fma();
#else
    return 0;
#endif
}

/* ---------------------------------------------------------------------------------------------
 * panels: W (OC, C) as ceil(OC/16) blocks of (C, 16) */

void slm_panel_pack_rows(float *wp, const float *w, int64_t o0, int64_t n, int64_t C) {
    for (int64_t r = 0; r < n; r++)
        for (int64_t c = 0; c < C; c++) wp[slm_panel_index(o0 + r, c, C)] = w[r * C + c];
}

void slm_panel_unpack_rows(float *w, const float *wp, int64_t o0, int64_t n, int64_t C) {
    for (int64_t r = 0; r < n; r++)
        for (int64_t c = 0; c < C; c++) w[r * C + c] = wp[slm_panel_index(o0 + r, c, C)];
}

/* ---------------------------------------------------------------------------------------------
 * exp: Cephes expf. x = n ln2 + r, |r| <= ln2/2; e^r ~ 1 + r + r^2 P(r); times 2^n.
 * Every step is one IEEE operation (fmaf where written), so the AVX2 lanes give the same bits. */

#define EXP_HI 88.3762626647949f
#define EXP_LO (-87.3365447504019f) /* below: 0 (2^-126 and smaller are not needed by softmax) */
#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693359375f
#define LN2_LO (-2.12194440e-4f)
#define EXP_P0 1.9875691500E-4f
#define EXP_P1 1.3981999507E-3f
#define EXP_P2 8.3334519073E-3f
#define EXP_P3 4.1665795894E-2f
#define EXP_P4 1.6666665459E-1f
#define EXP_P5 5.0000001201E-1f

float slm_expf(float x) {
    if (!(x >= EXP_LO)) return x != x ? x : 0.0f; /* NaN stays NaN, -inf and tiny -> 0 */
    if (x > EXP_HI) return INFINITY;
    float n = rintf(x * LOG2E);
    float r = fmaf(n, -LN2_HI, x);
    r = fmaf(n, -LN2_LO, r);
    float p = EXP_P0;
    p = fmaf(p, r, EXP_P1);
    p = fmaf(p, r, EXP_P2);
    p = fmaf(p, r, EXP_P3);
    p = fmaf(p, r, EXP_P4);
    p = fmaf(p, r, EXP_P5);
    float y = fmaf(p, r * r, r);
    y = y + 1.0f;
    int32_t e = ((int32_t)n + 127) << 23;
    float s;
    memcpy(&s, &e, sizeof s);
    return y * s;
}

#if SLM_HAVE_AVX2_KERNELS
static inline AVX2 __m256 expf_avx2(__m256 x) {
    const __m256 lo = _mm256_set1_ps(EXP_LO), hi = _mm256_set1_ps(EXP_HI);
    __m256 ok = _mm256_cmp_ps(x, lo, _CMP_GE_OQ);    /* false for NaN, -inf, tiny */
    __m256 big = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
    __m256 isnan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi); /* keep the lanes we discard finite */
    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LN2_HI), xc);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LN2_LO), r);
    __m256 p = _mm256_set1_ps(EXP_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P5));
    __m256 y = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r);
    y = _mm256_add_ps(y, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
    y = _mm256_and_ps(y, ok);                                      /* x < EXP_LO -> 0 */
    y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), big);        /* x > EXP_HI -> inf */
    return _mm256_blendv_ps(y, x, isnan);                          /* NaN -> NaN */
}
#endif

/* ---------------------------------------------------------------------------------------------
 * embedding */

void slm_embedding_forward(float *out, const int32_t *tokens, const float *wte, int T, int C) {
    for (int t = 0; t < T; t++) {
        float *o = out + (size_t)t * C;
        for (int c = 0; c < C; c++) o[c] = wte[slm_panel_index(tokens[t], c, C)];
    }
}

/* ---------------------------------------------------------------------------------------------
 * rmsnorm */

void slm_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, int T, int C, float eps) {
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        const float *x = inp + (size_t)t * C;
        float *o = out + (size_t)t * C;
        double ss = 0.0; /* as ggml: float squares summed in double */
        for (int c = 0; c < C; c++) ss += (double)(x[c] * x[c]);
        float mean = (float)(ss / C);
        float s = 1.0f / sqrtf(mean + eps);
        for (int c = 0; c < C; c++) o[c] = (x[c] * s) * weight[c];
        rstd[t] = s;
    }
}

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
 * rope */

void slm_rope_forward(float *x, int ld, const float *cs, int T, int pos0, int n_heads, int D, int neox) {
    int half = D / 2;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        const float *cst = cs + (size_t)(pos0 + t) * D; /* (D/2) pairs (cos, sin) */
        for (int h = 0; h < n_heads; h++) {
            float *v = x + (size_t)t * ld + (size_t)h * D;
            for (int i = 0; i < half; i++) {
                int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
                float c = cst[2 * i], s = cst[2 * i + 1];
                float a = v[i0], b = v[i1];
                v[i0] = a * c - b * s;
                v[i1] = a * s + b * c;
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * ggml's activation rounding */

static float round_f16(float x) { return slm_f16_to_f32(slm_f32_to_f16(x)); }

void slm_round_f16(float *x, int64_t N) {
    for (int64_t i = 0; i < N; i++) x[i] = round_f16(x[i]);
}

int slm_act_type_of(int dtype) {
    switch (dtype) {
    case SLM_DTYPE_F16: return SLM_ACT_F16;
    case SLM_DTYPE_BF16: return SLM_ACT_BF16;
    case SLM_DTYPE_Q4_0:
    case SLM_DTYPE_Q4_1:
    case SLM_DTYPE_Q5_0:
    case SLM_DTYPE_Q5_1:
    case SLM_DTYPE_Q8_0:
    case SLM_DTYPE_IQ4_NL: return SLM_ACT_Q8_0;
    case SLM_DTYPE_Q2_K:
    case SLM_DTYPE_Q3_K:
    case SLM_DTYPE_Q4_K:
    case SLM_DTYPE_Q5_K:
    case SLM_DTYPE_Q6_K:
    case SLM_DTYPE_IQ4_XS: return SLM_ACT_Q8_K;
    default: return SLM_ACT_F32;
    }
}

/* x86 quantize_row_q8_0 then dequantize_row_q8_0, one block of 32 */
static void round_q8_0_block(float *y, const float *x) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
    float d = round_f16(amax / 127.f), id = amax != 0.0f ? 127.f / amax : 0.0f;
    for (int j = 0; j < 32; j++) y[j] = d * rintf(x[j] * id);
}

/* quantize_row_q8_K_ref then dequantize_row_q8_K, one block of 256 */
static void round_q8_K_block(float *y, const float *x) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 256; j++)
        if (fabsf(x[j]) > amax) amax = fabsf(x[j]), max = x[j];
    if (!amax) {
        for (int j = 0; j < 256; j++) y[j] = 0.0f;
        return;
    }
    float iscale = -127.f / max, d = 1 / iscale;
    for (int j = 0; j < 256; j++) {
        float q = rintf(iscale * x[j]); /* ggml's nearest_int: ties to even */
        y[j] = d * (q < 127.0f ? q : 127.0f);
    }
}

void slm_round_rows(float *out, const float *inp, int T, int C, int act) {
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        const float *x = inp + (size_t)t * C;
        float *y = out + (size_t)t * C;
        switch (act) {
        case SLM_ACT_F16:
            for (int c = 0; c < C; c++) y[c] = round_f16(x[c]);
            break;
        case SLM_ACT_BF16:
            for (int c = 0; c < C; c++) y[c] = slm_bf16_to_f32(slm_f32_to_bf16(x[c]));
            break;
        case SLM_ACT_Q8_0:
            for (int c = 0; c + 32 <= C; c += 32) round_q8_0_block(y + c, x + c);
            break;
        case SLM_ACT_Q8_K:
            for (int c = 0; c + 256 <= C; c += 256) round_q8_K_block(y + c, x + c);
            break;
        default:
            memcpy(y, x, sizeof(float) * (size_t)C);
        }
    }
}

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

/* llama.cpp's flash attention over an F16 cache, one (token, head); see layers.h. */
static void attention_head_ggml(float *out, float *lse, const float *q, const float *kh, const float *vh, int S, int D,
                                float scale) {
    float acc[MAX_HEAD_DIM];
    float M = -INFINITY, sum = 0.0f;
    for (int d = 0; d < D; d++) acc[d] = 0.0f;
    for (int s = 0; s < S; s++) {
        const float *kp = kh + (size_t)(s / SLM_PANEL) * D * SLM_PANEL + s % SLM_PANEL;
        double dot = 0.0;
        for (int d = 0; d < D; d++) dot += (double)(q[d] * kp[(size_t)d * SLM_PANEL]);
        float sc = (float)dot * scale, Mold = M, ms = 1.0f, vs = 1.0f;
        if (sc > M) {
            M = sc;
            ms = expf(Mold - M);
            for (int d = 0; d < D; d++) acc[d] = round_f16(acc[d] * ms);
        } else {
            vs = expf(sc - M);
        }
        const float *v = vh + (size_t)s * D;
        for (int d = 0; d < D; d++) acc[d] = round_f16(fmaf(v[d], vs, acc[d]));
        sum = sum * ms + vs;
    }
    float inv = sum == 0.0f ? 0.0f : 1.0f / sum;
    for (int d = 0; d < D; d++) out[d] = acc[d] * inv;
    *lse = M + logf(sum);
}

/* Queries of one head processed together: each chunk of keys is read from memory once for all
   of them (it stays in L1 across the tile). The loop order does not change any number. */
#define ATT_QTILE 8

/* simd: 0 scalar reference, 1 AVX2, 2 ggml's flash attention */
static void attention_forward_impl(float *out, float *lse, const float *q, int ld, const float *kc, const float *vc,
                                   int T, int pos0, int H, int Hkv, int D, int ctx, int simd) {
    int group = H / Hkv, n_tiles = (T + ATT_QTILE - 1) / ATT_QTILE;
    float scale = 1.0f / sqrtf((float)D);
#if SLM_HAVE_AVX2_KERNELS
    int vec = simd == 1 && D % 8 == 0 && D != 24;
#else
    int vec = 0;
#endif
    /* (head, query tile) items dealt round robin: later tiles see more keys (causal) */
#pragma omp parallel for schedule(static, 1)
    for (int it = 0; it < H * n_tiles; it++) {
        int h = it / n_tiles, t0 = (it % n_tiles) * ATT_QTILE, g = h / group;
        int nt = T - t0 < ATT_QTILE ? T - t0 : ATT_QTILE;
        const float *kh = kc + (size_t)g * ctx * D, *vh = vc + (size_t)g * ctx * D;
        if (simd == 2) {
            for (int i = 0; i < nt; i++) {
                int t = t0 + i;
                attention_head_ggml(out + (size_t)t * H * D + (size_t)h * D, lse + (size_t)t * H + h,
                                    q + (size_t)t * ld + (size_t)h * D, kh, vh, pos0 + t + 1, D, scale);
            }
            continue;
        }
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

void slm_attention_forward_ggml(float *out, float *lse, const float *q, int ld, const float *kc, const float *vc, int T,
                                int pos0, int H, int Hkv, int D, int ctx) {
    attention_forward_impl(out, lse, q, ld, kc, vc, T, pos0, H, Hkv, D, ctx, 2);
}

/* ---------------------------------------------------------------------------------------------
 * swiglu and residual */

/* silu(g) * u with sigmoid(g) = (g >= 0 ? 1 : e) / (1 + e), e = exp(-|g|): no overflow either side. */
static void swiglu_row_ref(float *o, const float *g, const float *u, int i0, int F) {
    for (int i = i0; i < F; i++) {
        float e = slm_expf(-fabsf(g[i]));
        float sig = (g[i] >= 0.0f ? 1.0f : e) / (1.0f + e);
        o[i] = (g[i] * sig) * u[i];
    }
}

#if SLM_HAVE_AVX2_KERNELS
static AVX2 void swiglu_row_avx2(float *o, const float *g, const float *u, int F) {
    const __m256 sign = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= F; i += 8) {
        __m256 gv = _mm256_loadu_ps(g + i);
        __m256 e = expf_avx2(_mm256_or_ps(gv, sign)); /* exp(-|g|) */
        __m256 num = _mm256_blendv_ps(e, one, _mm256_cmp_ps(gv, zero, _CMP_GE_OQ));
        __m256 sig = _mm256_div_ps(num, _mm256_add_ps(one, e));
        _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_mul_ps(gv, sig), _mm256_loadu_ps(u + i)));
    }
    swiglu_row_ref(o, g, u, i, F);
}
#endif

static void swiglu_forward_impl(float *out, const float *gate_up, int T, int F, int simd) {
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        const float *g = gate_up + (size_t)t * 2 * F;
        float *o = out + (size_t)t * F;
#if SLM_HAVE_AVX2_KERNELS
        if (simd) {
            swiglu_row_avx2(o, g, g + F, F);
            continue;
        }
#endif
        swiglu_row_ref(o, g, g + F, 0, F);
    }
    (void)simd;
}

void slm_swiglu_forward(float *out, const float *gate_up, int T, int F) {
    swiglu_forward_impl(out, gate_up, T, F, slm_layers_simd());
}

void slm_swiglu_forward_ref(float *out, const float *gate_up, int T, int F) { swiglu_forward_impl(out, gate_up, T, F, 0); }

void slm_residual_forward(float *out, const float *inp1, const float *inp2, int64_t N) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < N; i++) out[i] = inp1[i] + inp2[i];
}

/* ---------------------------------------------------------------------------------------------
 * losses: log-softmax in double, as llama-perplexity */

/* max and argmax (lowest id on ties) of a row, and lse = log(sum expf(x - max)) (sum in double) */
static int row_logsumexp(const float *x, int V, float *mx, double *lse) {
    float m = x[0];
    int im = 0;
    for (int i = 1; i < V; i++)
        if (x[i] > m) m = x[i], im = i;
    double sum = 0.0;
    for (int i = 0; i < V; i++) sum += expf(x[i] - m);
    *mx = m;
    *lse = log(sum);
    return im;
}

void slm_crossentropy_forward(double *losses, const float *logits, const int32_t *targets, int T, int V) {
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        const float *x = logits + (size_t)t * V;
        float m;
        double lse;
        row_logsumexp(x, V, &m, &lse);
        losses[t] = -((double)(x[targets[t]] - m) - lse);
    }
}

void slm_kldiv_forward(double *kld, double *nll_ref, double *nll, double *dp, uint8_t *same_top, const float *lr,
                       const float *lm, const int32_t *targets, int T, int V) {
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        const float *xr = lr + (size_t)t * V, *xm = lm + (size_t)t * V;
        float mr, mm;
        double lser, lsem, sum = 0.0;
        int top_r = row_logsumexp(xr, V, &mr, &lser), top_m = row_logsumexp(xm, V, &mm, &lsem);
        for (int i = 0; i < V; i++) {
            double a = (double)(xr[i] - mr) - lser, b = (double)(xm[i] - mm) - lsem, p = exp(a);
            if (p > 0.0) sum += p * (a - b);
        }
        int tok = targets[t];
        double a = (double)(xr[tok] - mr) - lser, b = (double)(xm[tok] - mm) - lsem;
        kld[t] = sum;
        nll_ref[t] = -a;
        nll[t] = -b;
        dp[t] = exp(b) - exp(a);
        same_top[t] = top_r == top_m;
    }
}
