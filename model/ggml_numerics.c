/* ggml_numerics.c - what llama.cpp's CPU backend computes, emulated for --numerics ggml: matmul
 * inputs rounded to the weight's vec_dot type through the codec (quantize/qtypes.h from_float,
 * then to_float), F16 rounding of the KV cache, and the F16 flash attention of
 * ggml_compute_forward_flash_attn_ext_f16.
 * Must not: be used by the f32 path (training, the default numerics), allocate, fail or print.
 * The f32 kernels in layer_*.c never round.
 */
#include "model/ggml_numerics.h"

#include "core/dtype.h"
#include "core/slm.h"
#include "model/layer_simd.h"
#include "quantize/qtypes.h"

static float round_f16(float x) { return slm_f16_to_f32(slm_f32_to_f16(x)); }

#if SLM_HAVE_AVX2_KERNELS
#define AVX2F16C __attribute__((target("avx2,fma,f16c")))
/* round_f16 of 8 lanes: F16C rounds to nearest even as slm_f32_to_f16 does; a NaN (whose payload
   F16C keeps and the scalar path drops) takes the scalar path. */
static inline AVX2F16C __m256 round_f16_x8(__m256 x) {
    if (__builtin_expect(_mm256_movemask_ps(_mm256_cmp_ps(x, x, _CMP_UNORD_Q)) != 0, 0)) {
        float v[8];
        _mm256_storeu_ps(v, x);
        for (int k = 0; k < 8; k++) v[k] = round_f16(v[k]);
        return _mm256_loadu_ps(v);
    }
    return _mm256_cvtph_ps(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
static AVX2F16C void round_f16_avx2(float *x, int64_t N) {
    int64_t i = 0;
    for (; i + 8 <= N; i += 8) _mm256_storeu_ps(x + i, round_f16_x8(_mm256_loadu_ps(x + i)));
    for (; i < N; i++) x[i] = round_f16(x[i]);
}
#endif

void slm_round_f16(float *x, int64_t N) {
#if SLM_HAVE_AVX2_KERNELS
    if (slm_layers_simd()) {
        round_f16_avx2(x, N);
        return;
    }
#endif
    for (int64_t i = 0; i < N; i++) x[i] = round_f16(x[i]);
}

int slm_act_type_of(int dtype) {
    const slm_dtype_traits *tr = slm_dtype_get(dtype);
    if (!tr || tr->vec_dot_type < 0) return SLM_DTYPE_F32;
    /* Q4_1/Q5_1 multiply with Q8_1 activations, whose values are Q8_0's (same d, same rounding;
       Q8_1 only adds the block sum) */
    return tr->vec_dot_type == SLM_DTYPE_Q8_1 ? SLM_DTYPE_Q8_0 : tr->vec_dot_type;
}

/* The largest block of an activation type (Q8_K: 292 bytes for 256 values). */
#define MAX_ACT_BLOCK_BYTES 512

void slm_round_rows(float *out, const float *inp, int T, int C, int act) {
    const slm_dtype_traits *tr = slm_dtype_get(act);
    if (act == SLM_DTYPE_F32 || !tr) {
        if (out != inp) memcpy(out, inp, sizeof(float) * (size_t)T * (size_t)C);
        return;
    }
    SLM_ASSERT(tr->from_float && tr->to_float && C % tr->blck_size == 0 && tr->type_size <= MAX_ACT_BLOCK_BYTES);
    const int bs = (int)tr->blck_size;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        _Alignas(16) uint8_t blk[MAX_ACT_BLOCK_BYTES];
        const float *x = inp + (size_t)t * C;
        float *y = out + (size_t)t * C;
        for (int c = 0; c < C; c += bs) {
            tr->from_float(x + c, blk, bs);
            tr->to_float(blk, y + c, bs);
        }
    }
}

int slm_dot_act_type(int dtype) {
    const slm_dtype_traits *tr = slm_dtype_get(dtype);
    if (!tr || dtype == SLM_DTYPE_F32 || !tr->vec_dot || tr->vec_dot_type < 0) return -1;
    const slm_dtype_traits *at = slm_dtype_get(tr->vec_dot_type);
    return at && at->from_float ? tr->vec_dot_type : -1;
}

void slm_quantize_act_rows(void *dst, size_t row_bytes, const float *inp, int T, int C, int act) {
    const slm_dtype_traits *tr = slm_dtype_get(act);
    SLM_ASSERT(tr && tr->from_float && slm_dtype_row_size(act, C) == row_bytes);
    uint8_t *d = dst;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) tr->from_float(inp + (size_t)t * C, d + (size_t)t * row_bytes, C);
}

void slm_kv_store_f16(uint16_t *kc, uint16_t *vc, const float *qkv, int ld, int k_off, int v_off, int T, int pos0, int Hkv,
                      int D, int ctx) {
    for (int t = 0; t < T; t++) {
        const int s = pos0 + t;
        const float *k = qkv + (size_t)t * ld + k_off, *v = qkv + (size_t)t * ld + v_off;
        for (int g = 0; g < Hkv; g++) {
            uint16_t *kp = kc + (size_t)g * ctx * D + (size_t)(s / SLM_PANEL) * D * SLM_PANEL + s % SLM_PANEL;
            for (int d = 0; d < D; d++) kp[(size_t)d * SLM_PANEL] = slm_f32_to_f16(k[g * D + d]);
            slm_f32_to_f16_row(vc + ((size_t)g * ctx + s) * D, v + g * D, D);
        }
    }
}

void slm_kv_widen_f16(float *kc, float *vc, const uint16_t *kc16, const uint16_t *vc16, int S, int Hkv, int D, int ctx) {
    const size_t k_n = (size_t)(S + SLM_PANEL - 1) / SLM_PANEL * SLM_PANEL * (size_t)D, v_n = (size_t)S * D;
#pragma omp parallel for schedule(static)
    for (int g = 0; g < 2 * Hkv; g++) {
        const size_t off = (size_t)(g / 2) * ctx * D;
        if (g % 2) slm_f16_to_f32_row(vc + off, vc16 + off, (int64_t)v_n);
        else slm_f16_to_f32_row(kc + off, kc16 + off, (int64_t)k_n);
    }
}

/* ---------------------------------------------------------------------------------------------
 * flash attention as ggml's CPU backend runs it per query over an F16 cache */

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

#if SLM_HAVE_AVX2_KERNELS
/* attention_head_ggml for D % 8 == 0, its operations in its order: the scores of the 16 keys of
   a cache panel at once (lane s: the double chain over d of float products, as the scalar
   loop), then per key the scalar online-softmax step and the accumulator's fma / rescale and f16
   rounding 8 lanes of d at a time. */
static AVX2F16C void attention_head_ggml_avx2(float *out, float *lse, const float *q, const float *kh, const float *vh, int S,
                                              int D, float scale) {
    __m256 acc[MAX_HEAD_DIM / 8];
    const int nd = D / 8;
    float M = -INFINITY, sum = 0.0f;
    for (int j = 0; j < nd; j++) acc[j] = _mm256_setzero_ps();
    for (int s0 = 0; s0 < S; s0 += SLM_PANEL) {
        const float *kp = kh + (size_t)(s0 / SLM_PANEL) * D * SLM_PANEL;
        __m256d dot[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd()};
        for (int d = 0; d < D; d++) {
            const __m256 qd = _mm256_set1_ps(q[d]);
            const __m256 p0 = _mm256_mul_ps(qd, _mm256_loadu_ps(kp + (size_t)d * SLM_PANEL));
            const __m256 p1 = _mm256_mul_ps(qd, _mm256_loadu_ps(kp + (size_t)d * SLM_PANEL + 8));
            dot[0] = _mm256_add_pd(dot[0], _mm256_cvtps_pd(_mm256_castps256_ps128(p0)));
            dot[1] = _mm256_add_pd(dot[1], _mm256_cvtps_pd(_mm256_extractf128_ps(p0, 1)));
            dot[2] = _mm256_add_pd(dot[2], _mm256_cvtps_pd(_mm256_castps256_ps128(p1)));
            dot[3] = _mm256_add_pd(dot[3], _mm256_cvtps_pd(_mm256_extractf128_ps(p1, 1)));
        }
        float sc16[SLM_PANEL];
        for (int k = 0; k < 4; k++)
            _mm_storeu_ps(sc16 + 4 * k, _mm_mul_ps(_mm256_cvtpd_ps(dot[k]), _mm_set1_ps(scale)));
        const int ns = S - s0 < SLM_PANEL ? S - s0 : SLM_PANEL;
        for (int i = 0; i < ns; i++) {
            const float sc = sc16[i];
            float Mold = M, ms = 1.0f, vs = 1.0f;
            if (sc > M) {
                M = sc;
                ms = expf(Mold - M);
                const __m256 vms = _mm256_set1_ps(ms);
                for (int j = 0; j < nd; j++) acc[j] = round_f16_x8(_mm256_mul_ps(acc[j], vms));
            } else {
                vs = expf(sc - M);
            }
            const float *v = vh + (size_t)(s0 + i) * D;
            const __m256 vvs = _mm256_set1_ps(vs);
            for (int j = 0; j < nd; j++) acc[j] = round_f16_x8(_mm256_fmadd_ps(_mm256_loadu_ps(v + 8 * j), vvs, acc[j]));
            sum = sum * ms + vs;
        }
    }
    const float inv = sum == 0.0f ? 0.0f : 1.0f / sum;
    for (int j = 0; j < nd; j++) _mm256_storeu_ps(out + 8 * j, _mm256_mul_ps(acc[j], _mm256_set1_ps(inv)));
    *lse = M + logf(sum);
}
#endif

static void attention_ggml_impl(float *out, float *lse, const float *q, int ld, const float *kc, const float *vc, int T,
                                int pos0, int H, int Hkv, int D, int ctx, int simd) {
    const int group = H / Hkv;
    const float scale = 1.0f / sqrtf((float)D);
    /* (head, token) items dealt round robin: later tokens see more keys (causal) */
#pragma omp parallel for schedule(static, 1)
    for (int it = 0; it < H * T; it++) {
        const int h = it / T, t = it % T, g = h / group;
        const float *kh = kc + (size_t)g * ctx * D, *vh = vc + (size_t)g * ctx * D;
        float *o = out + (size_t)t * H * D + (size_t)h * D, *l = lse + (size_t)t * H + h;
        const float *qh = q + (size_t)t * ld + (size_t)h * D;
#if SLM_HAVE_AVX2_KERNELS
        if (simd && D % 8 == 0) {
            attention_head_ggml_avx2(o, l, qh, kh, vh, pos0 + t + 1, D, scale);
            continue;
        }
#endif
        attention_head_ggml(o, l, qh, kh, vh, pos0 + t + 1, D, scale);
    }
    (void)simd;
}

void slm_attention_forward_ggml(float *out, float *lse, const float *q, int ld, const float *kc, const float *vc, int T,
                                int pos0, int H, int Hkv, int D, int ctx) {
    attention_ggml_impl(out, lse, q, ld, kc, vc, T, pos0, H, Hkv, D, ctx, slm_layers_simd());
}

void slm_attention_forward_ggml_ref(float *out, float *lse, const float *q, int ld, const float *kc, const float *vc, int T,
                                    int pos0, int H, int Hkv, int D, int ctx) {
    attention_ggml_impl(out, lse, q, ld, kc, vc, T, pos0, H, Hkv, D, ctx, 0);
}
