/* layer_loss.c - losses over logits: cross-entropy (NLL) and its backward, and the KL divergence
 * from a reference model's logits, log-softmax in double as llama-perplexity computes it.
 * Must not: allocate, fail or print; one `parallel for` over tokens.
 */
#include "model/layer_simd.h"

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

/* forward: loss = -log p[target], p = softmax(x); d loss / d x_i = p_i - [i == target] */
void slm_crossentropy_softmax_backward(float *dlogits, const float *dlosses, const float *logits, const int32_t *targets,
                                       int T, int V) {
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        if (targets[t] < 0) continue;
        const float *x = logits + (size_t)t * V;
        float *dx = dlogits + (size_t)t * V;
        float m;
        double lse;
        row_logsumexp(x, V, &m, &lse);
        const double dl = dlosses[t];
        for (int i = 0; i < V; i++) {
            double p = exp((double)(x[i] - m) - lse);
            dx[i] += (float)(dl * (p - (i == targets[t])));
        }
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
