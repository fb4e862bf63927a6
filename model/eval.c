/* eval.c - perplexity (two conventions), KL divergence against a reference, greedy generation.
 *
 * Owns: cutting a token stream into windows, running them through the model(s), summing the
 * per-token losses of layers.c in index order, and llama-perplexity's summary statistics.
 * Must not: print, time, tokenize; no OpenMP here (the kernels parallelise inside a window).
 */
#include "model/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/slm.h"
#include "model/layers.h"

const char *slm_ppl_convention_name(int convention) {
    return convention == SLM_PPL_ALL ? "all" : convention == SLM_PPL_SECOND_HALF ? "second-half" : "?";
}

int slm_ppl_convention_parse(const char *name) {
    if (!strcmp(name, "all")) return SLM_PPL_ALL;
    if (!strcmp(name, "second-half")) return SLM_PPL_SECOND_HALF;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * windows */

/* Ids of the stream each window consumes. */
static int window_stride(const slm_eval_opts *o) {
    return o->convention == SLM_PPL_ALL && o->bos_id >= 0 ? o->ctx - 1 : o->ctx;
}

/* First position whose logits are scored. */
static int first_scored(const slm_eval_opts *o) { return o->convention == SLM_PPL_SECOND_HALF ? o->ctx / 2 : 0; }

static int64_t n_windows(int64_t n_ids, const slm_eval_opts *o) { return n_ids / window_stride(o); }

int slm_eval_scored_per_window(const slm_eval_opts *o) { return o->ctx - 1 - first_scored(o); }

int64_t slm_eval_stream_index(const slm_eval_opts *o, int64_t k, int pos) {
    int shift = o->convention == SLM_PPL_ALL && o->bos_id >= 0 ? -1 : 0; /* position 0 holds the added BOS */
    return k * window_stride(o) + pos + shift;
}

int slm_eval_first_target(const slm_eval_opts *o) { return first_scored(o) + 1; }

/* Window k: tokens (C) and the targets of positions first .. C-2 (C-1-first). */
static void fill_window(int32_t *tokens, int32_t *targets, const int32_t *ids, int64_t k, const slm_eval_opts *o) {
    int C = o->ctx, first = first_scored(o);
    const int32_t *src = ids + k * window_stride(o);
    if (o->convention == SLM_PPL_ALL && o->bos_id >= 0) {
        tokens[0] = o->bos_id;
        memcpy(tokens + 1, src, sizeof(int32_t) * (size_t)(C - 1));
    } else {
        memcpy(tokens, src, sizeof(int32_t) * (size_t)C);
        if (o->convention == SLM_PPL_SECOND_HALF && o->bos_id >= 0) tokens[0] = o->bos_id;
    }
    for (int p = first; p < C - 1; p++) targets[p - first] = tokens[p + 1];
}

/* A loss that is not finite means the model's logits overflowed (huge or broken weights): an
   error naming the model, never a "PPL nan" result. */
static int check_finite(const double *nll, int n, int64_t k, int first, const char *name, slm_err *err) {
    for (int j = 0; j < n; j++)
        if (!isfinite(nll[j]))
            return slm_errf(err, SLM_E_DATA, "%s: window %lld, position %d: the logits are not finite (NaN/Inf): its "
                            "weights overflow float32", name, (long long)k, first + j);
    return SLM_OK;
}

/* Finite losses can still be so large that the perplexity overflows: logits far beyond any
   trained model's. An error, never "PPL inf" with success. */
static int check_ppl(slm_ppl_result *r, const char *name, slm_err *err) {
    if (isfinite(r->ppl)) return SLM_OK;
    int rc = slm_errf(err, SLM_E_DATA, "%s: the perplexity overflows (mean NLL %.3g nats per token): its logits are far "
                      "beyond any trained model's", name, r->mean_nll);
    slm_ppl_result_free(r);
    return rc;
}

static int check_opts(const slm_model *m, int64_t n_ids, const slm_eval_opts *o, int64_t *n_chunks, slm_err *err) {
    if (o->convention != SLM_PPL_ALL && o->convention != SLM_PPL_SECOND_HALF)
        return slm_errf(err, SLM_E_ARG, "unknown perplexity convention %d", o->convention);
    int min_ctx = o->convention == SLM_PPL_ALL ? 2 : 4;
    if (o->ctx < min_ctx || o->ctx > m->max_ctx)
        return slm_errf(err, SLM_E_ARG, "context %d: must be in [%d, %d] for convention '%s'", o->ctx, min_ctx,
                        m->max_ctx, slm_ppl_convention_name(o->convention));
    if (o->bos_id >= m->cfg.n_vocab)
        return slm_errf(err, SLM_E_ARG, "BOS id %d is outside the vocabulary [0, %d)", o->bos_id, m->cfg.n_vocab);
    if (o->max_chunks < 0) return slm_errf(err, SLM_E_ARG, "negative window count %lld", (long long)o->max_chunks);
    *n_chunks = n_windows(n_ids, o);
    if (*n_chunks < 1)
        return slm_errf(err, SLM_E_DATA, "%s: %lld tokens are fewer than one window of %d",
                        o->text_name ? o->text_name : "the text", (long long)n_ids, window_stride(o));
    if (o->max_chunks && o->max_chunks < *n_chunks) *n_chunks = o->max_chunks;
    return SLM_OK;
}

/* ---------------------------------------------------------------------------------------------
 * statistics (llama-perplexity's mean_and_uncertainty, covariance and percentile) */

static void mean_unc(double sum, double sum2, int64_t n, double *mean, double *unc) {
    *mean = n > 0 ? sum / (double)n : 0.0;
    double df = n > 0 ? sum2 / (double)n - *mean * *mean : 0.0;
    *unc = df > 0 && n > 10 ? sqrt(df / (double)(n - 1)) : 0.0;
}

static void ppl_finish(slm_ppl_result *r) {
    double mean = r->scored ? r->nll_sum / (double)r->scored : 0.0;
    double var = r->scored ? r->nll2_sum / (double)r->scored - mean * mean : 0.0;
    r->mean_nll = mean;
    r->ppl = exp(mean);
    r->ppl_err = var > 0 && r->scored > 1 ? sqrt(var / (double)(r->scored - 1)) * r->ppl : 0.0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Linear interpolation at fraction * (n - 1) of sorted v. */
static double percentile(const double *v, int64_t n, double fraction) {
    if (fraction <= 0) return v[0];
    if (fraction >= 1) return v[n - 1];
    double p = fraction * (double)(n - 1);
    int64_t ip = (int64_t)p;
    p -= (double)ip;
    return (1 - p) * v[ip] + p * v[ip + 1 < n ? ip + 1 : n - 1];
}

/* ---------------------------------------------------------------------------------------------
 * perplexity */

void slm_ppl_result_free(slm_ppl_result *r) {
    slm_free(r->chunk_nll);
    slm_free(r->token_nll);
    r->chunk_nll = r->token_nll = NULL;
}

int slm_eval_batch(int ctx, int n_vocab) {
    /* enough windows per call that each weight panel serves >= 1024 tokens (the mapped model
       dequantizes every panel once per call), logits of a call under ~256 MiB */
    int b = (1024 + ctx - 1) / ctx;
    while (b > 1 && (double)b * ctx * n_vocab * sizeof(float) > 256.0 * (1 << 20)) b--;
    return SLM_MAX(1, SLM_MIN(b, 16));
}

int slm_eval_ppl(slm_model *m, const int32_t *ids, int64_t n_ids, const slm_eval_opts *o, slm_ppl_result *r,
                 slm_err *err) {
    memset(r, 0, sizeof *r);
    int64_t n_chunks;
    SLM_TRY(check_opts(m, n_ids, o, &n_chunks, err));
    const int C = o->ctx, V = m->cfg.n_vocab, first = first_scored(o), n_score = C - 1 - first;
    const int B = (int)SLM_MIN((int64_t)m->max_batch, n_chunks); /* windows per forward (bit-identical to one) */
    const size_t per_logits = (size_t)(C - first) * (size_t)V;
    int32_t *tokens = NULL, *targets = NULL;
    float *logits = NULL;
    double *nll = NULL;
    int rc = slm_alloc((void **)&tokens, sizeof(int32_t) * (size_t)B * (size_t)C, err, "window tokens");
    if (!rc) rc = slm_alloc((void **)&targets, sizeof(int32_t) * (size_t)B * (size_t)C, err, "window targets");
    /* logits of positions first .. C-1 only: the forward pass writes no others */
    if (!rc) rc = slm_alloc((void **)&logits, sizeof(float) * per_logits * (size_t)B, err, "window logits");
    if (!rc) rc = slm_alloc((void **)&nll, sizeof(double) * (size_t)n_score, err, "token losses");
    if (!rc) rc = slm_calloc((void **)&r->chunk_nll, (size_t)n_chunks, sizeof(double), err, "window losses");
    if (!rc && o->keep_token_nll)
        rc = slm_alloc((void **)&r->token_nll, sizeof(double) * (size_t)n_chunks * (size_t)n_score, err, "token losses");
    for (int64_t k0 = 0; !rc && k0 < n_chunks; k0 += B) {
        const int nb = (int)SLM_MIN((int64_t)B, n_chunks - k0);
        for (int b = 0; b < nb; b++) fill_window(tokens + (size_t)b * C, targets + (size_t)b * C, ids, k0 + b, o);
        rc = slm_model_forward_batch(m, tokens, nb, C, 0, first, logits, err);
        if (rc) {
            slm_err_prefix(err, "window %lld", (long long)k0);
            break;
        }
        for (int b = 0; b < nb && !rc; b++) {
            const int64_t k = k0 + b;
            slm_crossentropy_forward(nll, logits + (size_t)b * per_logits, targets + (size_t)b * C, n_score, V);
            if ((rc = check_finite(nll, n_score, k, first, o->model_name ? o->model_name : "the model", err))) break;
            if (r->token_nll) memcpy(r->token_nll + k * n_score, nll, sizeof(double) * (size_t)n_score);
            double sum = 0.0;
            for (int j = 0; j < n_score; j++) {
                sum += nll[j];
                r->nll2_sum += nll[j] * nll[j];
            }
            r->chunk_nll[k] = sum;
            r->nll_sum += sum;
            r->scored += n_score;
            r->n_chunks = k + 1;
            if (o->progress) o->progress(o->progress_ud, k + 1, n_chunks);
        }
    }
    slm_free(tokens);
    slm_free(targets);
    slm_free(logits);
    slm_free(nll);
    if (rc) {
        slm_ppl_result_free(r);
        return rc;
    }
    ppl_finish(r);
    return check_ppl(r, o->model_name ? o->model_name : "the model", err);
}

/* ---------------------------------------------------------------------------------------------
 * KL divergence */

void slm_kl_result_free(slm_kl_result *r) {
    slm_ppl_result_free(&r->model);
    slm_ppl_result_free(&r->ref);
}

typedef struct kl_sums {
    double nll_nll_ref, kld, kld2, dp, dp2, dp4, max_dp;
    int64_t same_top;
} kl_sums;

static void kl_finish(slm_kl_result *r, const kl_sums *s, double *kld_vals) {
    int64_t n = r->model.scored;
    ppl_finish(&r->model);
    ppl_finish(&r->ref);
    double lq, lq_unc, lb, lb_unc;
    mean_unc(r->model.nll_sum, r->model.nll2_sum, n, &lq, &lq_unc);
    mean_unc(r->ref.nll_sum, r->ref.nll2_sum, n, &lb, &lb_unc);
    double cov = n < 10 ? 0.0 : (s->nll_nll_ref / (double)n - (r->model.nll_sum / (double)n) * (r->ref.nll_sum / (double)n)) / (double)(n - 1);
    r->ln_ratio = lq - lb;
    r->ln_ratio_err = sqrt(fmax(0.0, lq_unc * lq_unc + lb_unc * lb_unc - 2.0 * cov));
    double ppl = exp(lq), ppl_b = exp(lb), ppl_unc = ppl * lq_unc, ppl_b_unc = ppl_b * lb_unc;
    r->dppl = ppl - ppl_b;
    r->dppl_err = sqrt(fmax(0.0, ppl_unc * ppl_unc + ppl_b_unc * ppl_b_unc - 2.0 * ppl * ppl_b * cov));
    mean_unc(s->kld, s->kld2, n, &r->kld_mean, &r->kld_mean_err);
    double mse, mse_unc;
    mean_unc(s->dp2, s->dp4, n, &mse, &mse_unc);
    r->rms_dp = sqrt(mse);
    r->rms_dp_err = r->rms_dp > 0 ? 0.5 / r->rms_dp * mse_unc : 0.0;
    r->mean_dp = n ? s->dp / (double)n : 0.0;
    r->max_dp = s->max_dp;
    r->top1 = n ? (double)s->same_top / (double)n : 0.0;
    r->top1_err = n > 1 ? sqrt(r->top1 * (1.0 - r->top1) / (double)(n - 1)) : 0.0;
    qsort(kld_vals, (size_t)n, sizeof(double), cmp_double);
    r->kld_median = n % 2 == 0 ? 0.5 * (kld_vals[n / 2] + kld_vals[n / 2 - 1]) : kld_vals[n / 2];
    r->kld_p90 = percentile(kld_vals, n, 0.90);
    r->kld_p99 = percentile(kld_vals, n, 0.99);
    r->kld_p999 = percentile(kld_vals, n, 0.999);
    r->kld_max = kld_vals[n - 1];
}

/* One window's statistics into the sums, in token order. */
static void kl_window(slm_kl_result *r, kl_sums *s, double *kld_vals, const double *kld, const double *nll_ref,
                      const double *nll, const double *dp, const uint8_t *same, int64_t k, int n_score) {
    double sum = 0.0, sum_ref = 0.0;
    for (int j = 0; j < n_score; j++) {
        sum += nll[j];
        sum_ref += nll_ref[j];
        r->model.nll2_sum += nll[j] * nll[j];
        r->ref.nll2_sum += nll_ref[j] * nll_ref[j];
        s->nll_nll_ref += nll[j] * nll_ref[j];
        s->kld += kld[j];
        s->kld2 += kld[j] * kld[j];
        s->dp += dp[j];
        s->dp2 += dp[j] * dp[j];
        s->dp4 += dp[j] * dp[j] * dp[j] * dp[j];
        s->max_dp = fmax(s->max_dp, fabs(dp[j]));
        s->same_top += same[j];
        kld_vals[k * n_score + j] = kld[j];
        if (r->model.token_nll) r->model.token_nll[k * n_score + j] = nll[j];
    }
    r->model.chunk_nll[k] = sum;
    r->ref.chunk_nll[k] = sum_ref;
    r->model.nll_sum += sum;
    r->ref.nll_sum += sum_ref;
    r->model.scored = r->ref.scored += n_score;
    r->model.n_chunks = r->ref.n_chunks = k + 1;
}

int slm_eval_kl(slm_model *ref, slm_model *m, const int32_t *ids, int64_t n_ids, const slm_eval_opts *o,
                slm_kl_result *r, slm_err *err) {
    memset(r, 0, sizeof *r);
    if (ref->cfg.n_vocab != m->cfg.n_vocab)
        return slm_errf(err, SLM_E_ARG, "the reference has %d tokens in its vocabulary, the model %d", ref->cfg.n_vocab,
                        m->cfg.n_vocab);
    int64_t n_chunks;
    SLM_TRY(check_opts(ref, n_ids, o, &n_chunks, err));
    SLM_TRY(check_opts(m, n_ids, o, &n_chunks, err));
    const int C = o->ctx, V = m->cfg.n_vocab, first = first_scored(o), n_score = C - 1 - first;
    const size_t n_total = (size_t)n_chunks * (size_t)n_score;
    const int B = (int)SLM_MIN(SLM_MIN((int64_t)m->max_batch, (int64_t)ref->max_batch), n_chunks);
    const size_t per_logits = (size_t)(C - first) * (size_t)V;
    int32_t *tokens = NULL, *targets = NULL;
    float *lr = NULL, *lm = NULL;
    double *tok = NULL, *kld_vals = NULL; /* tok: kld, nll_ref, nll, dp (4 x C) */
    uint8_t *same = NULL;
    kl_sums s = {0};
    int rc = slm_alloc((void **)&tokens, sizeof(int32_t) * (size_t)B * (size_t)C, err, "window tokens");
    if (!rc) rc = slm_alloc((void **)&targets, sizeof(int32_t) * (size_t)B * (size_t)C, err, "window targets");
    if (!rc) rc = slm_alloc((void **)&lr, sizeof(float) * per_logits * (size_t)B, err, "reference logits");
    if (!rc) rc = slm_alloc((void **)&lm, sizeof(float) * per_logits * (size_t)B, err, "window logits");
    if (!rc) rc = slm_alloc((void **)&tok, sizeof(double) * 4 * (size_t)C, err, "token statistics");
    if (!rc) rc = slm_alloc((void **)&same, (size_t)C, err, "token statistics");
    if (!rc) rc = slm_alloc((void **)&kld_vals, sizeof(double) * n_total, err, "KL values");
    if (!rc) rc = slm_calloc((void **)&r->model.chunk_nll, (size_t)n_chunks, sizeof(double), err, "window losses");
    if (!rc) rc = slm_calloc((void **)&r->ref.chunk_nll, (size_t)n_chunks, sizeof(double), err, "window losses");
    if (!rc && o->keep_token_nll)
        rc = slm_alloc((void **)&r->model.token_nll, sizeof(double) * n_total, err, "token losses");
    double *kld = tok, *nll_ref = tok + C, *nll = tok + 2 * C, *dp = tok + 3 * C;
    for (int64_t k0 = 0; !rc && k0 < n_chunks; k0 += B) {
        const int nb = (int)SLM_MIN((int64_t)B, n_chunks - k0);
        for (int b = 0; b < nb; b++) fill_window(tokens + (size_t)b * C, targets + (size_t)b * C, ids, k0 + b, o);
        rc = slm_model_forward_batch(ref, tokens, nb, C, 0, first, lr, err);
        if (!rc) rc = slm_model_forward_batch(m, tokens, nb, C, 0, first, lm, err);
        if (rc) {
            slm_err_prefix(err, "window %lld", (long long)k0);
            break;
        }
        for (int b = 0; b < nb && !rc; b++) {
            const int64_t k = k0 + b;
            slm_kldiv_forward(kld, nll_ref, nll, dp, same, lr + (size_t)b * per_logits, lm + (size_t)b * per_logits,
                              targets + (size_t)b * C, n_score, V);
            if ((rc = check_finite(nll_ref, n_score, k, first, o->ref_name ? o->ref_name : "the reference", err)) ||
                (rc = check_finite(nll, n_score, k, first, o->model_name ? o->model_name : "the model", err)))
                break;
            kl_window(r, &s, kld_vals, kld, nll_ref, nll, dp, same, k, n_score);
            if (o->progress) o->progress(o->progress_ud, k + 1, n_chunks);
        }
    }
    if (!rc) kl_finish(r, &s, kld_vals);
    if (!rc && !isfinite(r->ref.ppl)) rc = check_ppl(&r->ref, o->ref_name ? o->ref_name : "the reference", err);
    if (!rc && !isfinite(r->model.ppl)) rc = check_ppl(&r->model, o->model_name ? o->model_name : "the model", err);
    slm_free(tokens);
    slm_free(targets);
    slm_free(lr);
    slm_free(lm);
    slm_free(tok);
    slm_free(same);
    slm_free(kld_vals);
    if (rc) slm_kl_result_free(r);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * greedy generation */

static int32_t argmax(const float *x, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

int slm_generate_greedy(slm_model *m, const int32_t *prompt, int n_prompt, const slm_gen_opts *o, int32_t *out,
                        int *n_out, slm_err *err) {
    *n_out = 0;
    if (n_prompt < 1) return slm_errf(err, SLM_E_ARG, "generation needs a prompt of at least one token");
    if (o->n_gen < 0 || (int64_t)n_prompt + o->n_gen - 1 > m->max_ctx)
        return slm_errf(err, SLM_E_ARG, "%d prompt tokens + %d generated exceed the context of %d", n_prompt, o->n_gen,
                        m->max_ctx);
    if (o->n_gen == 0) return SLM_OK;
    float *logits = NULL;
    SLM_TRY(slm_alloc((void **)&logits, sizeof(float) * (size_t)m->cfg.n_vocab, err, "logits"));
    int rc = slm_model_forward(m, prompt, n_prompt, 0, n_prompt - 1, logits, err);
    for (int g = 0; !rc && g < o->n_gen; g++) {
        int32_t id = argmax(logits, m->cfg.n_vocab);
        out[(*n_out)++] = id;
        if (o->on_token) o->on_token(o->ud, id);
        int stop = 0;
        for (int i = 0; i < o->n_stop; i++) stop |= o->stop[i] == id;
        if (stop || g == o->n_gen - 1) break;
        rc = slm_model_forward(m, &id, 1, n_prompt + g, 0, logits, err);
    }
    slm_free(logits);
    return rc;
}
