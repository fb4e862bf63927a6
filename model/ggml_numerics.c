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

void slm_round_f16(float *x, int64_t N) {
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

void slm_attention_forward_ggml(float *out, float *lse, const float *q, int ld, const float *kc, const float *vc, int T,
                                int pos0, int H, int Hkv, int D, int ctx) {
    const int group = H / Hkv;
    const float scale = 1.0f / sqrtf((float)D);
    /* (head, token) items dealt round robin: later tokens see more keys (causal) */
#pragma omp parallel for schedule(static, 1)
    for (int it = 0; it < H * T; it++) {
        const int h = it / T, t = it % T, g = h / group;
        const float *kh = kc + (size_t)g * ctx * D, *vh = vc + (size_t)g * ctx * D;
        attention_head_ggml(out + (size_t)t * H * D + (size_t)h * D, lse + (size_t)t * H + h,
                            q + (size_t)t * ld + (size_t)h * D, kh, vh, pos0 + t + 1, D, scale);
    }
}
