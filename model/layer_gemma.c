/* layer_gemma.c - the kernels Gemma 2/3 add to the Llama block (docs/families.md 5c, 6c):
 * GeGLU (tanh GELU), soft capping cap*tanh(x/cap), per-head RMSNorm of q/k, and attention with
 * a soft cap and a sliding window; forward and backward where training needs them.
 * Must not: allocate, fail or print; one `parallel for` per loop, each thread owning its outputs.
 */
#include <math.h>
#include <string.h>

#include "core/dtype.h"
#include "model/layer_simd.h"

#define GELU_COEF_A 0.044715f
#define SQRT_2_OVER_PI 0.79788456080286535587989211986876f

/* ggml_gelu_f32 */
static float gelu_f32(float x) { return 0.5f * x * (1.0f + tanhf(SQRT_2_OVER_PI * x * (1.0f + GELU_COEF_A * x * x))); }

/* ggml's F16 GELU table (ggml_table_gelu_f16, as f32): f16(gelu(h)) for every f16 h; filled
   on first use, by the calling thread before its parallel loop. */
static float g_gelu_table[1 << 16];
static int g_gelu_table_ready;

static void gelu_table_init(void) {
    if (g_gelu_table_ready) return;
    for (int h = 0; h < (1 << 16); h++) g_gelu_table[h] = slm_f16_to_f32(slm_f32_to_f16(gelu_f32(slm_f16_to_f32((uint16_t)h))));
    g_gelu_table_ready = 1;
}

/* ggml's CPU GELU (GGML_GELU_FP16): 0 below -10, x above 10, else the f16 table entry of f16(x). */
static float gelu_ggml(float x) {
    if (x <= -10.0f) return 0.0f;
    if (x >= 10.0f) return x;
    return g_gelu_table[slm_f32_to_f16(x)];
}

void slm_geglu_forward(float *out, const float *gate_up, int T, int F, int ggml) {
    if (ggml) gelu_table_init();
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        const float *g = gate_up + (size_t)t * 2 * F, *u = g + F;
        float *o = out + (size_t)t * F;
        for (int i = 0; i < F; i++) o[i] = (ggml ? gelu_ggml(g[i]) : gelu_f32(g[i])) * u[i];
    }
}

/* d gelu / dx of the tanh form. */
static float gelu_grad(float x) {
    const float x2 = x * x, inner = SQRT_2_OVER_PI * x * (1.0f + GELU_COEF_A * x2), th = tanhf(inner);
    const float dinner = SQRT_2_OVER_PI * (1.0f + 3.0f * GELU_COEF_A * x2);
    return 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * dinner;
}

/* out = gelu(g) * u: dg += dout * u * gelu'(g), du += dout * gelu(g) (added, as swiglu's). */
void slm_geglu_backward(float *dgate_up, const float *dout, const float *gate_up, int T, int F) {
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        const float *g = gate_up + (size_t)t * 2 * F, *u = g + F, *d = dout + (size_t)t * F;
        float *dg = dgate_up + (size_t)t * 2 * F, *du = dg + F;
        for (int i = 0; i < F; i++) {
            dg[i] += d[i] * u[i] * gelu_grad(g[i]);
            du[i] += d[i] * gelu_f32(g[i]);
        }
    }
}

/* x = cap * tanh(x * (1/cap)) in place, as ggml's scale, tanh, scale. */
void slm_softcap_forward(float *x, int64_t n, float cap) {
    const float inv = 1.0f / cap;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) x[i] = tanhf(x[i] * inv) * cap;
}

/* y = cap tanh(x/cap) given y (the forward output): dx = dy (1 - (y/cap)^2), in place on d. */
void slm_softcap_backward(float *d, const float *y, int64_t n, float cap) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const float th = y[i] / cap;
        d[i] *= 1.0f - th * th;
    }
}

/* 1/sqrt(mean(x^2) + eps) of one head. */
static float head_rstd(const float *v, int D, float eps) {
    double ss = 0.0;
    for (int d = 0; d < D; d++) ss += (double)(v[d] * v[d]);
    return 1.0f / sqrtf((float)(ss / D) + eps);
}

/* In place RMSNorm over each head's D values of q (or k): x[t*ld + h*D + d]. */
void slm_head_rmsnorm_forward(float *x, int ld, const float *w, int T, int n_heads, int D, float eps) {
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++)
        for (int h = 0; h < n_heads; h++) {
            float *v = x + (size_t)t * ld + (size_t)h * D;
            const float s = head_rstd(v, D, eps);
            for (int d = 0; d < D; d++) v[d] = (v[d] * s) * w[d];
        }
}

/* forward: y = x * s * w, s = 1/sqrt(mean(x^2) + eps); with g = dy * w:
   dx = s * g - x * s^3 / D * sum(g * x); dw = sum dy * x * s (as slm_rmsnorm_backward). */
void slm_head_rmsnorm_backward(float *d, int ld, float *dw, const float *inp, int ld_in, const float *w, int T,
                               int n_heads, int D, float eps) {
    if (dw) { /* serial: O(T * n_heads * D), D <= 512 */
        float acc[512] = {0};
        for (int t = 0; t < T; t++)
            for (int h = 0; h < n_heads; h++) {
                const float *x = inp + (size_t)t * ld_in + (size_t)h * D, *dy = d + (size_t)t * ld + (size_t)h * D;
                const float s = head_rstd(x, D, eps);
                for (int j = 0; j < D; j++) acc[j] += dy[j] * (x[j] * s);
            }
        for (int j = 0; j < D; j++) dw[j] += acc[j];
    }
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++)
        for (int h = 0; h < n_heads; h++) {
            const float *x = inp + (size_t)t * ld_in + (size_t)h * D;
            float *dx = d + (size_t)t * ld + (size_t)h * D;
            const float s = head_rstd(x, D, eps);
            double dot = 0.0;
            for (int j = 0; j < D; j++) dot += (double)(dx[j] * w[j]) * x[j];
            const float k = (float)(dot * s * s * s / D);
            for (int j = 0; j < D; j++) dx[j] = s * (dx[j] * w[j]) - k * x[j];
        }
}

static float round_f16(float x) { return slm_f16_to_f32(slm_f32_to_f16(x)); }

/* One (token, head): keys [s0, S) of the panel-layout cache. q already scaled (gemma scales
   q, attention scale 1). f16: llama.cpp's per-query F16 flash attention (q, k, v already f16,
   output accumulated in f16); else f32 online softmax. */
static void head(float *out, float *lse, const float *q, const float *kh, const float *vh, int s0, int S, int D,
                 float cap, int f16) {
    float acc[512];
    float M = -INFINITY, sum = 0.0f;
    const float inv = cap ? 1.0f / cap : 1.0f;
    for (int d = 0; d < D; d++) acc[d] = 0.0f;
    for (int s = s0; s < S; s++) {
        const float *kp = kh + (size_t)(s / SLM_PANEL) * D * SLM_PANEL + s % SLM_PANEL;
        double dot = 0.0;
        for (int d = 0; d < D; d++) dot += (double)(q[d] * kp[(size_t)d * SLM_PANEL]);
        float sc = (float)dot;
        if (cap) sc = cap * tanhf(sc * inv);
        float Mold = M, ms = 1.0f, vs = 1.0f;
        if (sc > M) {
            M = sc;
            ms = expf(Mold - M);
            for (int d = 0; d < D; d++) acc[d] = f16 ? round_f16(acc[d] * ms) : acc[d] * ms;
        } else {
            vs = expf(sc - M);
        }
        const float *v = vh + (size_t)s * D;
        for (int d = 0; d < D; d++) acc[d] = f16 ? round_f16(fmaf(v[d], vs, acc[d])) : fmaf(v[d], vs, acc[d]);
        sum = sum * ms + vs;
    }
    const float r = sum == 0.0f ? 0.0f : 1.0f / sum;
    for (int d = 0; d < D; d++) out[d] = acc[d] * r;
    *lse = M + logf(sum);
}

void slm_gemma_attention_forward(float *out, float *lse, const float *q, int ld, const float *kc, const float *vc, int T,
                                 int pos0, int H, int Hkv, int D, int ctx, float cap, int n_swa, int f16) {
    const int group = H / Hkv;
#pragma omp parallel for schedule(static, 1)
    for (int it = 0; it < H * T; it++) {
        const int h = it / T, t = it % T, g = h / group, S = pos0 + t + 1;
        const int s0 = n_swa > 0 && S > n_swa ? S - n_swa : 0; /* p1 - p0 < n_swa */
        head(out + (size_t)t * H * D + (size_t)h * D, lse + (size_t)t * H + h, q + (size_t)t * ld + (size_t)h * D,
             kc + (size_t)g * ctx * D, vc + (size_t)g * ctx * D, s0, S, D, cap, f16);
    }
}
