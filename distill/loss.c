/* loss.c - distillation losses (forward KL, reverse KL, JSD with temperature, mixed with the
 * text's cross-entropy) and their gradient with respect to the student's logits.
 * Must not: print or touch models; the only allocation is per-thread row scratch, before the
 * parallel loop.
 */
#include "distill/loss.h"

#include <math.h>
#include <string.h>

#include "core/mem.h"
#include "core/slm.h"
#include "core/thread.h"

static const char *const k_div_names[] = {"forward-kl", "reverse-kl", "jsd"};

const char *slm_kd_div_name(int div) {
    return div >= 0 && div < (int)SLM_ARRAY_LEN(k_div_names) ? k_div_names[div] : "?";
}

int slm_kd_div_parse(const char *name) {
    for (int i = 0; i < (int)SLM_ARRAY_LEN(k_div_names); i++)
        if (!strcmp(name, k_div_names[i])) return i;
    return -1;
}

/* lsm = log softmax(z * inv_t), prob = softmax(z * inv_t), in double; one exp per element. */
static void log_softmax(double *lsm, double *prob, const float *z, int V, double inv_t) {
    double mx = -INFINITY, s = 0.0;
    for (int i = 0; i < V; i++) mx = fmax(mx, z[i] * inv_t);
    for (int i = 0; i < V; i++) s += (prob[i] = exp(z[i] * inv_t - mx));
    const double lse = mx + log(s);
    for (int i = 0; i < V; i++) {
        lsm[i] = z[i] * inv_t - lse;
        prob[i] /= s;
    }
}

/* D of one token and dD/db (b = student / T) into g; lp, p the teacher's, lq, q the student's. */
static double divergence(int div, double *g, const double *lp, const double *p, const double *lq, const double *q,
                         int V) {
    double D = 0.0;
    switch (div) {
    case SLM_KD_FORWARD_KL: /* sum p (log p - log q); dD/db = q - p */
        for (int i = 0; i < V; i++) {
            if (p[i] > 0.0) D += p[i] * (lp[i] - lq[i]);
            g[i] = q[i] - p[i];
        }
        return D;
    case SLM_KD_REVERSE_KL: /* sum q (log q - log p); dD/db_k = q_k (f_k - D), f = log q - log p */
        for (int i = 0; i < V; i++)
            if (q[i] > 0.0) D += q[i] * (lq[i] - lp[i]);
        for (int i = 0; i < V; i++) g[i] = q[i] > 0.0 ? q[i] * ((lq[i] - lp[i]) - D) : 0.0;
        return D;
    default: { /* JSD: (sum p log(p/m) + sum q log(q/m)) / 2; dD/dq_i = log(q_i/m_i) / 2 = h_i,
                  dD/db_k = q_k (h_k - sum_i q_i h_i) */
        double S = 0.0;
        for (int i = 0; i < V; i++) {
            const double m = 0.5 * (p[i] + q[i]);
            if (!(m > 0.0)) {
                g[i] = 0.0;
                continue;
            }
            const double lm = log(m);
            if (p[i] > 0.0) D += 0.5 * p[i] * (lp[i] - lm);
            g[i] = q[i] > 0.0 ? 0.5 * (lq[i] - lm) : 0.0;
            if (q[i] > 0.0) {
                D += 0.5 * q[i] * (lq[i] - lm);
                S += q[i] * g[i];
            }
        }
        for (int i = 0; i < V; i++) g[i] = q[i] * (g[i] - S);
        return D;
    }
    }
}

static int check_args(const float *teacher, const int32_t *targets, int64_t N, int V, const slm_distill_loss_opts *o,
                      int64_t *n_ce, slm_err *err) {
    if (N < 1 || V < 1) return slm_errf(err, SLM_E_ARG, "distillation loss of %lld tokens x %d logits", (long long)N, V);
    if (o->divergence < 0 || o->divergence >= (int)SLM_ARRAY_LEN(k_div_names))
        return slm_errf(err, SLM_E_ARG, "distillation loss: unknown divergence %d", o->divergence);
    if (!(o->temperature > 0.0f) || !isfinite(o->temperature))
        return slm_errf(err, SLM_E_ARG, "distillation temperature %g: must be a positive number", (double)o->temperature);
    if (!(o->alpha >= 0.0f && o->alpha <= 1.0f))
        return slm_errf(err, SLM_E_ARG, "distillation alpha %g: must be in [0, 1]", (double)o->alpha);
    if (o->alpha < 1.0f && !teacher) return slm_errf(err, SLM_E_ARG, "distillation loss: no teacher logits");
    *n_ce = 0;
    if (o->alpha > 0.0f) {
        if (!targets) return slm_errf(err, SLM_E_ARG, "distillation loss: alpha %g needs targets", (double)o->alpha);
        for (int64_t t = 0; t < N; t++) {
            if (targets[t] >= V)
                return slm_errf(err, SLM_E_ARG, "target id %d at token %lld is outside the vocabulary [0, %d)", targets[t],
                                (long long)t, V);
            *n_ce += targets[t] >= 0;
        }
    }
    return SLM_OK;
}

int slm_distill_loss(slm_distill_loss_parts *out, float *dstudent, double *tok_kd, double *tok_ce, const float *student,
                     const float *teacher, const int32_t *targets, int64_t N, int V, const slm_distill_loss_opts *o,
                     float grad_scale, slm_err *err) {
    int64_t n_ce = 0;
    SLM_TRY(check_args(teacher, targets, N, V, o, &n_ce, err));
    const int use_kd = o->alpha < 1.0f, use_ce = o->alpha > 0.0f && n_ce > 0;
    const double T = o->temperature, inv_t = 1.0 / T;
    const double c_kd = use_kd ? grad_scale * (1.0 - o->alpha) / (double)N : 0.0;
    const double c_ce = use_ce ? grad_scale * (double)o->alpha / (double)n_ce : 0.0;
    /* per-thread rows: log p, p, log q, q, gradient; per-token losses when the caller has none */
    const int n_thr = slm_threads_get();
    double *scratch = NULL, *own = NULL;
    size_t row, total, nt = (size_t)N;
    if (!slm_mul_ok((size_t)V, 5 * sizeof(double), &row) || !slm_mul_ok(row, (size_t)n_thr, &total))
        return slm_errf(err, SLM_E_NOMEM, "distillation loss: row scratch size overflows");
    SLM_TRY(slm_alloc((void **)&scratch, total, err, "distillation loss rows"));
    if ((!tok_kd || !tok_ce) && slm_alloc((void **)&own, 2 * nt * sizeof(double), err, "token losses")) {
        slm_free(scratch);
        return err->code;
    }
    double *kd = tok_kd ? tok_kd : own, *ce = tok_ce ? tok_ce : own + nt;
#pragma omp parallel for schedule(static) num_threads(n_thr)
    for (int64_t t = 0; t < (int64_t)N; t++) {
        double *lp = scratch + (size_t)slm_thread_id() * 5 * (size_t)V, *p = lp + V, *lq = p + V, *q = lq + V, *g = q + V;
        const float *zs = student + (size_t)t * V;
        const int y = use_ce ? targets[t] : -1;
        kd[t] = ce[t] = 0.0;
        if (use_kd) { /* d(T^2 D)/dz = T dD/db */
            log_softmax(lp, p, teacher + (size_t)t * V, V, inv_t);
            log_softmax(lq, q, zs, V, inv_t);
            kd[t] = T * T * divergence(o->divergence, g, lp, p, lq, q, V);
            for (int i = 0; i < V; i++) g[i] *= c_kd * T;
        } else {
            memset(g, 0, sizeof(double) * (size_t)V);
        }
        if (y >= 0) { /* -log q1[y], q1 = softmax(student); d/dz = q1 - onehot */
            if (!use_kd || T != 1.0) log_softmax(lq, q, zs, V, 1.0);
            ce[t] = -lq[y];
            for (int i = 0; i < V; i++) g[i] += c_ce * (q[i] - (i == y));
        }
        if (dstudent)
            for (int i = 0; i < V; i++) dstudent[(size_t)t * V + i] += (float)g[i];
    }
    double skd = 0.0, sce = 0.0;
    for (int64_t t = 0; t < N; t++) skd += kd[t], sce += ce[t];
    slm_free(scratch);
    slm_free(own);
    memset(out, 0, sizeof *out);
    out->n_ce = use_ce ? n_ce : 0;
    out->kd = use_kd ? skd / (double)N : 0.0;
    out->ce = use_ce ? sce / (double)n_ce : 0.0;
    out->loss = (1.0 - o->alpha) * out->kd + o->alpha * out->ce;
    if (!isfinite(out->loss))
        return slm_errf(err, SLM_E_DATA, "distillation loss is not finite (kd %g, ce %g): NaN/Inf logits", out->kd, out->ce);
    return SLM_OK;
}

/* ---- forward KL from a teacher's top-k (distill/tcache.h) */

void slm_distill_topk(const float *z, int V, int k, double temperature, int32_t *ids, float *vals, double *lse_t, double *tail) {
    int n = 0;
    for (int i = 0; i < V; i++) { /* insertion into a sorted list of at most k: k is small */
        if (n == k && !(z[i] > vals[n - 1])) continue;
        int j = n < k ? n++ : k - 1;
        while (j > 0 && z[i] > vals[j - 1]) ids[j] = ids[j - 1], vals[j] = vals[j - 1], j--;
        ids[j] = i, vals[j] = z[i];
    }
    double mx = -INFINITY, s = 0.0;
    for (int i = 0; i < V; i++) mx = fmax(mx, z[i] / temperature);
    for (int i = 0; i < V; i++) s += exp(z[i] / temperature - mx);
    *lse_t = mx + log(s);
    /* the tail summed directly (1 - top-k mass would be rounding noise when the top-k holds it
       all): an id is in the top-k when above its smallest value, or equal to it and among the
       first m such ids (ties went to lower ids) */
    const float vmin = vals[n - 1];
    int m = 0, seen = 0;
    for (int j = 0; j < n; j++) m += vals[j] == vmin;
    double t = 0.0;
    for (int i = 0; i < V; i++) {
        const int in = z[i] > vmin || (z[i] == vmin && seen++ < m);
        if (!in) t += exp(z[i] / temperature - *lse_t);
    }
    *tail = t;
}

int slm_distill_loss_topk(slm_distill_loss_parts *out, float *dstudent, const float *student, const int32_t *top_ids,
                          const float *top_vals, const double *lse_t, const double *tail_p, int k, const int32_t *targets,
                          int64_t N, int V,
                          const slm_distill_loss_opts *o, float grad_scale, slm_err *err) {
    int64_t n_ce = 0;
    if (o->divergence != SLM_KD_FORWARD_KL)
        return slm_errf(err, SLM_E_ARG, "a teacher's top-k serves the forward KL only (not %s)", slm_kd_div_name(o->divergence));
    if (k < 1 || k > V) return slm_errf(err, SLM_E_ARG, "top-k %d of %d logits", k, V);
    SLM_TRY(check_args(top_vals, targets, N, V, o, &n_ce, err));
    const int use_kd = o->alpha < 1.0f, use_ce = o->alpha > 0.0f && n_ce > 0;
    const double T = o->temperature, inv_t = 1.0 / T;
    const double c_kd = use_kd ? grad_scale * (1.0 - o->alpha) / (double)N : 0.0;
    const double c_ce = use_ce ? grad_scale * (double)o->alpha / (double)n_ce : 0.0;
    const int n_thr = slm_threads_get();
    double *scratch = NULL, *kd = NULL;
    SLM_TRY(slm_alloc((void **)&scratch, (size_t)n_thr * 3 * (size_t)V * sizeof(double), err, "distillation loss rows"));
    if (slm_alloc((void **)&kd, 2 * (size_t)N * sizeof(double), err, "token losses")) return slm_free(scratch), err->code;
    double *ce = kd + N;
#pragma omp parallel for schedule(static) num_threads(n_thr)
    for (int64_t t = 0; t < (int64_t)N; t++) {
        double *lq = scratch + (size_t)slm_thread_id() * 3 * (size_t)V, *q = lq + V, *g = q + V;
        const float *zs = student + (size_t)t * V;
        const int32_t *id = top_ids + (size_t)t * k;
        const float *tv = top_vals + (size_t)t * k;
        const int y = use_ce ? targets[t] : -1;
        memset(g, 0, sizeof(double) * (size_t)V);
        kd[t] = ce[t] = 0.0;
        if (use_kd) { /* buckets: the k ids, and the rest (mass p_tail / q_tail) */
            log_softmax(lq, q, zs, V, inv_t);
            double D = 0.0, qt = 0.0;
            for (int j = 0; j < k; j++) {
                const double lp = tv[j] * inv_t - lse_t[t];
                D += exp(lp) * (lp - lq[id[j]]);
                g[id[j]] = 1.0; /* marks the top-k */
            }
            for (int i = 0; i < V; i++) qt += g[i] == 0.0 ? q[i] : 0.0; /* the student's tail, summed directly */
            const double pt = tail_p[t];
            if (pt > 0.0 && qt > 0.0) D += pt * (log(pt) - log(qt));
            const double tail = qt > 0.0 ? pt / qt : 0.0; /* dD/db_j = q_j - p_j (top-k), q_j (1 - p_tail / q_tail) (others) */
            for (int i = 0; i < V; i++) g[i] = q[i] * (1.0 - tail);
            for (int j = 0; j < k; j++) g[id[j]] = q[id[j]] - exp(tv[j] * inv_t - lse_t[t]);
            kd[t] = T * T * D;
            for (int i = 0; i < V; i++) g[i] *= c_kd * T;
        }
        if (y >= 0) {
            if (!use_kd || T != 1.0) log_softmax(lq, q, zs, V, 1.0);
            ce[t] = -lq[y];
            for (int i = 0; i < V; i++) g[i] += c_ce * (q[i] - (i == y));
        }
        if (dstudent)
            for (int i = 0; i < V; i++) dstudent[(size_t)t * V + i] += (float)g[i];
    }
    double skd = 0.0, sce = 0.0;
    for (int64_t t = 0; t < N; t++) skd += kd[t], sce += ce[t];
    slm_free(scratch), slm_free(kd);
    memset(out, 0, sizeof *out);
    out->n_ce = use_ce ? n_ce : 0;
    out->kd = use_kd ? skd / (double)N : 0.0;
    out->ce = use_ce ? sce / (double)n_ce : 0.0;
    out->loss = (1.0 - o->alpha) * out->kd + o->alpha * out->ce;
    if (!isfinite(out->loss))
        return slm_errf(err, SLM_E_DATA, "distillation loss is not finite (kd %g, ce %g): NaN/Inf logits", out->kd, out->ce);
    return SLM_OK;
}
