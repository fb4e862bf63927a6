/* awq.c - AWQ's scale search for one linear group (awq.h). */
#include "quantize/awq.h"

#include <math.h>
#include <string.h>

#include "core/dtype.h"
#include "core/mem.h"
#include "core/slm.h"
#include "quantize/quantize.h"
#include "quantize/quants.h"

int64_t slm_awq_sample_rows(int64_t rows, int64_t n, long flops) {
    if (flops <= 0 || (double)rows * (double)n * (double)n <= (double)flops) return rows;
    int64_t m = (int64_t)((double)flops / ((double)n * (double)n));
    return SLM_MIN(rows, SLM_MAX(m, (int64_t)16));
}

/* sum over rows of dw G dw^T / count (G: Gram or its diagonal sum2), rows in parallel, summed in order */
static double out_err(const slm_awq_group *g, const float *dw, int64_t rows, double *per_row) {
    const int64_t n = g->n;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *d = dw + r * n;
        double e = 0;
        if (g->gram) {
            for (int64_t i = 0; i < n; i++) {
                const double *G = g->gram + i * n;
                double acc = 0;
                for (int64_t j = 0; j < n; j++) acc += G[j] * d[j];
                e += acc * d[i];
            }
        } else {
            for (int64_t i = 0; i < n; i++) e += (double)g->sum2[i] * d[i] * d[i];
        }
        per_row[r] = e;
    }
    double t = 0;
    for (int64_t r = 0; r < rows; r++) t += per_row[r];
    return t / (double)g->count;
}

/* one weight: Q(W diag(s)) diag(1/s) - W into dw, then its output error */
static int score_one(const slm_awq_group *g, const slm_awq_weight *w, const float *s, float *buf, float *imw, void *q,
                     double *per_row, double *out, slm_err *err) {
    const int64_t n = g->n, rows = w->rows;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < n; j++) buf[r * n + j] = w->w[r * n + j] * (s ? s[j] : 1.0f);
    const float *iw = w->imatrix;
    if (iw && s) {
        for (int64_t j = 0; j < n; j++) imw[j] = iw[j] / (s[j] * s[j]);
        iw = imw;
    }
    SLM_TRY(slm_quantize_tensor(w->type, buf, rows, n, iw, q, NULL, err));
    slm_dequantize_rows(w->type, q, buf, rows, n);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < n; j++) buf[r * n + j] = buf[r * n + j] / (s ? s[j] : 1.0f) - w->w[r * n + j];
    *out = out_err(g, buf, rows, per_row);
    return SLM_OK;
}

int slm_awq_score(const slm_awq_group *g, const float *s, double *out, slm_err *err) {
    int64_t max_rows = 1;
    for (int k = 0; k < g->n_w; k++) max_rows = SLM_MAX(max_rows, g->w[k].rows);
    const size_t nv = (size_t)(max_rows * g->n);
    float *buf = NULL, *imw = NULL;
    void *q = NULL;
    double *per_row = NULL;
    int rc;
    if ((rc = slm_alloc((void **)&buf, nv * sizeof(float), err, "AWQ rows")) ||
        (rc = slm_alloc((void **)&imw, (size_t)g->n * sizeof(float), err, "AWQ weights")) ||
        (rc = slm_alloc(&q, nv * sizeof(float), err, "AWQ blocks")) ||
        (rc = slm_alloc((void **)&per_row, (size_t)max_rows * sizeof(double), err, "AWQ errors")))
        goto done;
    *out = 0;
    for (int k = 0; k < g->n_w && !rc; k++) {
        double e = 0;
        rc = score_one(g, &g->w[k], s, buf, imw, q, per_row, &e, err);
        *out += e;
    }
done:
    slm_free(buf);
    slm_free(imw);
    slm_free(q);
    slm_free(per_row);
    return rc;
}

/* mean |x| per (tied) channel: E|x|, or sqrt(E[x^2]) without sums of |x| */
static void channel_mag(const slm_awq_group *g, double *mag, int64_t m) {
    int64_t *cnt = NULL;
    memset(mag, 0, sizeof(double) * (size_t)m);
    for (int64_t j = 0; j < g->n; j++) {
        const double v = g->abs_sum ? g->abs_sum[j] / (double)g->count : sqrt((double)g->sum2[j] / (double)g->count);
        mag[g->n_red ? g->tie[j] : j] += v;
    }
    SLM_UNUSED(cnt);
    if (g->n_red) { /* mean over the tied columns */
        int64_t per = g->n / g->n_red;
        for (int64_t k = 0; k < m; k++) mag[k] /= (double)(per ? per : 1);
    }
}

/* s_red = mag^alpha normalized (max * min = 1), clamped; expanded into s */
static void scales_for(const slm_awq_group *g, const double *mag, int64_t m, double alpha, float *s_red, float *s) {
    double lo = INFINITY, hi = 0;
    for (int64_t k = 0; k < m; k++) {
        double v = pow(SLM_MAX(mag[k], 1e-8), alpha);
        s_red[k] = (float)v;
        lo = SLM_MIN(lo, v);
        hi = SLM_MAX(hi, v);
    }
    const double norm = sqrt(lo * hi);
    for (int64_t k = 0; k < m; k++) s_red[k] = (float)SLM_MIN(SLM_MAX((double)s_red[k] / norm, 1e-4), 1e4);
    for (int64_t j = 0; j < g->n; j++) s[j] = s_red[g->n_red ? g->tie[j] : j];
}

int slm_awq_search(const slm_awq_group *g, const slm_qmethod_params *p, float *s, float *s_red, slm_awq_result *res,
                   slm_err *err) {
    if (g->n <= 0 || g->count <= 0 || !g->sum2 || g->n_w < 1 || g->n_w > SLM_AWQ_MAX_W || (g->n_red && !g->tie))
        return slm_errf(err, SLM_E_ARG, "AWQ: malformed group (n %lld, count %lld, %d weights)", (long long)g->n,
                        (long long)g->count, g->n_w);
    const int64_t m = g->n_red ? g->n_red : g->n;
    const int grid = p->awq_grid > 0 ? p->awq_grid : 20;
    double *mag = NULL;
    float *sr = NULL, *sc = NULL;
    int rc;
    if ((rc = slm_alloc((void **)&mag, (size_t)m * sizeof(double), err, "AWQ")) ||
        (rc = slm_alloc((void **)&sr, (size_t)m * sizeof(float), err, "AWQ")) ||
        (rc = slm_alloc((void **)&sc, (size_t)g->n * sizeof(float), err, "AWQ")))
        goto done;
    channel_mag(g, mag, m);
    *res = (slm_awq_result){0};
    for (int a = 0; a <= grid && !rc; a++) {
        const double alpha = (double)a / grid;
        double e = 0;
        scales_for(g, mag, m, alpha, sr, sc);
        if ((rc = slm_awq_score(g, a ? sc : NULL, &e, err))) break;
        if (a == 0) res->err_base = e;
        if (a == 0 || e < res->err) {
            res->err = e;
            res->alpha = alpha;
            memcpy(s, sc, sizeof(float) * (size_t)g->n);
            if (s_red) memcpy(s_red, sr, sizeof(float) * (size_t)m);
        }
    }
    if (!rc && res->alpha == 0) { /* exactly 1: folding then changes nothing */
        for (int64_t j = 0; j < g->n; j++) s[j] = 1.0f;
        for (int64_t k = 0; s_red && k < m; k++) s_red[k] = 1.0f;
    }
done:
    slm_free(mag);
    slm_free(sr);
    slm_free(sc);
    return rc;
}
