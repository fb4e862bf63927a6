/* awq.c - AWQ's scale search for one linear group (awq.h). */
#include "quantize/awq.h"

#include <math.h>
#include <string.h>

#include "core/cpu.h"
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

/* d^T G d for symmetric G: the diagonal plus twice the upper triangle, each row's part in 4
   lanes of fused multiply-adds (lane k: columns i+1+k, i+5+k, ...; the tail in lane 0), summed
   (l0 + l1) + (l2 + l3): the AVX2 path gives the same bits. */
static double quad_form_scalar(const double *G, const double *d, int64_t n) {
    double e = 0;
    for (int64_t i = 0; i < n; i++) {
        const double *g = G + i * n;
        double a[4] = {0, 0, 0, 0};
        int64_t j = i + 1;
        for (; j + 4 <= n; j += 4)
            for (int k = 0; k < 4; k++) a[k] = fma(g[j + k], d[j + k], a[k]);
        for (; j < n; j++) a[0] = fma(g[j], d[j], a[0]);
        e += d[i] * (g[i] * d[i] + 2.0 * ((a[0] + a[1]) + (a[2] + a[3])));
    }
    return e;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
__attribute__((target("avx2,fma"))) static double quad_form_avx2(const double *G, const double *d, int64_t n) {
    double e = 0;
    for (int64_t i = 0; i < n; i++) {
        const double *g = G + i * n;
        __m256d acc = _mm256_setzero_pd();
        int64_t j = i + 1;
        for (; j + 4 <= n; j += 4) acc = _mm256_fmadd_pd(_mm256_loadu_pd(g + j), _mm256_loadu_pd(d + j), acc);
        double a[4];
        _mm256_storeu_pd(a, acc);
        for (; j < n; j++) a[0] = fma(g[j], d[j], a[0]);
        e += d[i] * (g[i] * d[i] + 2.0 * ((a[0] + a[1]) + (a[2] + a[3])));
    }
    return e;
}
#endif

static double quad_form(const double *G, const double *d, int64_t n) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (slm_cpu_has_avx2_fma()) return quad_form_avx2(G, d, n);
#endif
    return quad_form_scalar(G, d, n);
}

/* sum over rows of dw G dw^T / count (G: Gram or its diagonal sum2), rows in parallel, summed in
   order; dd: (rows, n) doubles of scratch. Serial: the search runs alphas in parallel. */
static double out_err(const slm_awq_group *g, const float *dw, int64_t rows, double *per_row, double *dd) {
    const int64_t n = g->n;
    for (int64_t r = 0; r < rows; r++) {
        const float *d = dw + r * n;
        double *dr = dd + r * n, e = 0;
        for (int64_t i = 0; i < n; i++) dr[i] = d[i];
        if (g->gram) e = quad_form(g->gram, dr, n);
        else
            for (int64_t i = 0; i < n; i++) e += (double)g->sum2[i] * dr[i] * dr[i];
        per_row[r] = e;
    }
    double t = 0;
    for (int64_t r = 0; r < rows; r++) t += per_row[r];
    return t / (double)g->count;
}

void slm_awq_clip_row(float *v, int64_t n, float clip) {
    if (clip >= 1.0f || clip <= 0.0f) return;
    float mx = 0;
    for (int64_t j = 0; j < n; j++) mx = fmaxf(mx, fabsf(v[j]));
    const float c = clip * mx;
    for (int64_t j = 0; j < n; j++) v[j] = fminf(fmaxf(v[j], -c), c);
}

/* one weight: Q(clip(W diag(s))) diag(1/s) - W into dw, then its output error */
static int score_one(const slm_awq_group *g, const slm_awq_weight *w, const float *s, float clip, float *buf, float *imw,
                     void *q, double *per_row, double *dd, double *out, slm_err *err) {
    const int64_t n = g->n, rows = w->rows;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t j = 0; j < n; j++) buf[r * n + j] = w->w[r * n + j] * (s ? s[j] : 1.0f);
        slm_awq_clip_row(buf + r * n, n, clip);
    }
    const float *iw = w->imatrix;
    if (iw && s) {
        for (int64_t j = 0; j < n; j++) imw[j] = iw[j] / (s[j] * s[j]);
        iw = imw;
    }
    SLM_TRY(slm_quantize_tensor(w->type, buf, rows, n, iw, q, NULL, err));
    slm_dequantize_rows(w->type, q, buf, rows, n);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < n; j++) buf[r * n + j] = buf[r * n + j] / (s ? s[j] : 1.0f) - w->w[r * n + j];
    *out = out_err(g, buf, rows, per_row, dd);
    return SLM_OK;
}

/* the output error of weight k alone (k >= 0) or of all (k < 0), clipped at clip */
static int score_clip(const slm_awq_group *g, const float *s, int k0, float clip, double *out, slm_err *err) {
    int64_t max_rows = 1;
    for (int k = 0; k < g->n_w; k++) max_rows = SLM_MAX(max_rows, g->w[k].rows);
    const size_t nv = (size_t)(max_rows * g->n);
    float *buf = NULL, *imw = NULL;
    void *q = NULL;
    double *per_row = NULL, *dd = NULL;
    int rc;
    if ((rc = slm_alloc((void **)&buf, nv * sizeof(float), err, "AWQ rows")) ||
        (rc = slm_alloc((void **)&imw, (size_t)g->n * sizeof(float), err, "AWQ weights")) ||
        (rc = slm_alloc(&q, nv * sizeof(float), err, "AWQ blocks")) ||
        (rc = slm_alloc((void **)&per_row, (size_t)max_rows * sizeof(double), err, "AWQ errors")) ||
        (rc = slm_alloc((void **)&dd, nv * sizeof(double), err, "AWQ errors")))
        goto done;
    *out = 0;
    for (int k = k0 < 0 ? 0 : k0; k < (k0 < 0 ? g->n_w : k0 + 1) && !rc; k++) {
        double e = 0;
        rc = score_one(g, &g->w[k], s, clip, buf, imw, q, per_row, dd, &e, err);
        *out += e;
    }
done:
    slm_free(buf);
    slm_free(imw);
    slm_free(q);
    slm_free(per_row);
    slm_free(dd);
    return rc;
}

int slm_awq_score(const slm_awq_group *g, const float *s, double *out, slm_err *err) {
    return score_clip(g, s, -1, 1.0f, out, err);
}

static const float k_clips[] = {1.0f, 0.975f, 0.95f, 0.925f, 0.9f, 0.875f, 0.85f, 0.8f, 0.75f};

int slm_awq_clip_search(const slm_awq_group *g, const float *s, float *clip, slm_err *err) {
    const int nc = (int)(sizeof k_clips / sizeof k_clips[0]);
    for (int k = 0; k < g->n_w; k++) {
        double e[sizeof k_clips / sizeof k_clips[0]];
        int rcs[sizeof k_clips / sizeof k_clips[0]];
        slm_err ev[sizeof k_clips / sizeof k_clips[0]];
        SLM_TRY(score_clip(g, s, k, 1.0f, &e[0], err));
#pragma omp parallel for schedule(dynamic, 1)
        for (int c = 1; c < nc; c++) rcs[c] = score_clip(g, s, k, k_clips[c], &e[c], &ev[c]);
        int best = 0;
        for (int c = 1; c < nc; c++) {
            if (rcs[c]) return *err = ev[c], rcs[c];
            if (e[c] < e[best]) best = c;
        }
        clip[k] = k_clips[best];
    }
    return SLM_OK;
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

/* alpha a's scales and score (one thread's work in the search) */
static int search_point(const slm_awq_group *g, const double *mag, int64_t m, double alpha, float *sr, float *sc, double *e,
                        slm_err *err) {
    scales_for(g, mag, m, alpha, sr, sc);
    return slm_awq_score(g, alpha > 0 ? sc : NULL, e, err);
}

int slm_awq_search(const slm_awq_group *g, const slm_qmethod_params *p, float *s, float *s_red, slm_awq_result *res,
                   slm_err *err) {
    if (g->n <= 0 || g->count <= 0 || !g->sum2 || g->n_w < 1 || g->n_w > SLM_AWQ_MAX_W || (g->n_red && !g->tie))
        return slm_errf(err, SLM_E_ARG, "AWQ: malformed group (n %lld, count %lld, %d weights)", (long long)g->n,
                        (long long)g->count, g->n_w);
    const int64_t m = g->n_red ? g->n_red : g->n;
    const int grid = p->awq_grid > 0 ? p->awq_grid : 20;
    double *mag = NULL, *errs = NULL;
    float *sr = NULL, *sc = NULL;
    slm_err *errv = NULL;
    int rc, *rcs = NULL;
    if ((rc = slm_alloc((void **)&mag, (size_t)m * sizeof(double), err, "AWQ")) ||
        (rc = slm_alloc((void **)&sr, (size_t)(m * (grid + 1)) * sizeof(float), err, "AWQ")) ||
        (rc = slm_alloc((void **)&sc, (size_t)(g->n * (grid + 1)) * sizeof(float), err, "AWQ")) ||
        (rc = slm_calloc((void **)&errs, (size_t)grid + 1, sizeof(double), err, "AWQ")) ||
        (rc = slm_calloc((void **)&rcs, (size_t)grid + 1, sizeof(int), err, "AWQ")) ||
        (rc = slm_calloc((void **)&errv, (size_t)grid + 1, sizeof(slm_err), err, "AWQ")))
        goto done;
    channel_mag(g, mag, m);
    if (p->awq_alpha >= 0) { /* fixed: no search, nothing scored */
        scales_for(g, mag, m, p->awq_alpha, sr, sc);
        *res = (slm_awq_result){.alpha = p->awq_alpha};
        memcpy(s, sc, sizeof(float) * (size_t)g->n);
        if (s_red) memcpy(s_red, sr, sizeof(float) * (size_t)m);
        goto done;
    }
    /* alpha = 0 first and alone (lazy codec tables), then the rest in parallel, one alpha a thread */
    rc = search_point(g, mag, m, 0.0, sr, sc, &errs[0], err);
#pragma omp parallel for schedule(dynamic, 1) if (!rc)
    for (int a = 1; a <= grid; a++)
        rcs[a] = search_point(g, mag, m, (double)a / grid, sr + a * m, sc + a * g->n, &errs[a], &errv[a]);
    *res = (slm_awq_result){.err_base = errs[0], .err = errs[0]};
    int best = 0;
    for (int a = 1; a <= grid && !rc; a++) {
        if (rcs[a]) *err = errv[a], rc = rcs[a];
        else if (errs[a] < res->err) res->err = errs[a], best = a;
    }
    res->alpha = (double)best / grid;
    for (int64_t j = 0; j < g->n; j++) s[j] = best ? sc[best * g->n + j] : 1.0f; /* alpha 0: exactly 1 */
    for (int64_t k = 0; s_red && k < m; k++) s_red[k] = best ? sr[best * m + k] : 1.0f;
done:
    slm_free(mag);
    slm_free(sr);
    slm_free(sc);
    slm_free(errs);
    slm_free(rcs);
    slm_free(errv);
    return rc;
}
