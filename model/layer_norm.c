/* layer_norm.c - token embedding, RMSNorm and the residual add (forward; the backward
 * passes go beside them).
 * Must not: allocate, fail or print; one `parallel for` over tokens at most.
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
 * residual */

void slm_residual_forward(float *out, const float *inp1, const float *inp2, int64_t N) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < N; i++) out[i] = inp1[i] + inp2[i];
}
