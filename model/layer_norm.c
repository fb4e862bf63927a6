/* layer_norm.c - token embedding, RMSNorm and the residual add, forward and backward.
 * Must not: allocate, fail or print; one `parallel for` per loop, each thread owning its outputs
 * (tokens, or channels for the gradients summed over tokens).
 */
#include "model/layer_simd.h"

/* ---------------------------------------------------------------------------------------------
 * embedding */

void slm_embedding_forward(float *out, const int32_t *tokens, const float *wte, int T, int C) {
    for (int t = 0; t < T; t++) {
        float *o = out + (size_t)t * C;
        for (int c = 0; c < C; c++) o[c] = wte[slm_panel_index(tokens[t], c, C)];
    }
}

/* forward: out[t] = wte[tokens[t]], so dwte[tokens[t]] += dout[t]. A token may repeat: a channel
   owns its column of dwte, so the adds of one element happen in token order on one thread. */
void slm_embedding_backward(float *dwte, const float *dout, const int32_t *tokens, int T, int C) {
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++)
        for (int t = 0; t < T; t++) dwte[slm_panel_index(tokens[t], c, C)] += dout[(size_t)t * C + c];
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

/* forward: o[c] = (x[c] * s) * w[c], s = (mean(x^2) + eps)^(-1/2); ds/dx[c] = -s^3 x[c] / C, so
   dx[c] = s w[c] do[c] - x[c] s^3 / C * sum_j(do[j] w[j] x[j]); dw[c] = sum_t do[c] x[c] s. */
void slm_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                          const float *rstd, int T, int C) {
    if (dinp) {
#pragma omp parallel for schedule(static)
        for (int t = 0; t < T; t++) {
            const float *x = inp + (size_t)t * C, *d = dout + (size_t)t * C;
            float *dx = dinp + (size_t)t * C;
            const float s = rstd[t];
            double dot = 0.0;
            for (int c = 0; c < C; c++) dot += (double)(d[c] * weight[c]) * x[c];
            const float k = (float)(dot * s * s * s / C);
            for (int c = 0; c < C; c++) dx[c] += s * (d[c] * weight[c]) - k * x[c];
        }
    }
    if (dweight) {
        const int nb = (C + 15) / 16; /* blocks of 16 channels: rows are read 64 bytes at a time */
#pragma omp parallel for schedule(static)
        for (int b = 0; b < nb; b++) {
            const int c0 = b * 16, n = C - c0 < 16 ? C - c0 : 16;
            float acc[16] = {0};
            for (int t = 0; t < T; t++) {
                const float *d = dout + (size_t)t * C + c0, *x = inp + (size_t)t * C + c0;
                for (int j = 0; j < n; j++) acc[j] += d[j] * (x[j] * rstd[t]);
            }
            for (int j = 0; j < n; j++) dweight[c0 + j] += acc[j];
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * residual */

void slm_residual_forward(float *out, const float *inp1, const float *inp2, int64_t N) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < N; i++) out[i] = inp1[i] + inp2[i];
}

/* forward: out = inp1 + inp2: both inputs receive dout */
void slm_residual_backward(float *dinp1, float *dinp2, const float *dout, int64_t N) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < N; i++) {
        if (dinp1 != dout) dinp1[i] += dout[i];
        dinp2[i] += dout[i];
    }
}
