/* trainer.c - the distillation loop: data order, one step, evaluation, checkpoints. */
#include "trainer.h"

#include <math.h>
#include <string.h>
#include <time.h>

#include "core/mem.h"
#include "core/rng.h"
#include "core/sha256.h"
#include "core/slm.h"
#include "model/eval.h"

#define CKPT_MAGIC "SLMDSTL1"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Window order of the current epoch: Fisher-Yates from (seed, epoch). */
static void shuffle(slm_trainer *t) {
    slm_rng r;
    slm_rng_seed(&r, t->o.seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(t->epoch + 1)));
    for (int64_t i = 0; i < t->n_windows; i++) t->perm[i] = i;
    for (int64_t i = t->n_windows - 1; i > 0; i--) {
        int64_t j = (int64_t)(slm_rng_u64(&r) % (uint64_t)(i + 1)), x = t->perm[i];
        t->perm[i] = t->perm[j], t->perm[j] = x;
    }
}

static int push_point(slm_trainer *t, const slm_train_point *p, slm_err *err) {
    if (t->n_curve == t->cap_curve) {
        size_t cap = t->cap_curve ? 2 * t->cap_curve : 256;
        SLM_TRY(slm_realloc((void **)&t->curve, cap * sizeof *t->curve, err, "training curve"));
        t->cap_curve = cap;
    }
    t->curve[t->n_curve++] = *p;
    return SLM_OK;
}

int slm_trainer_init(slm_trainer *t, slm_model *teacher, slm_model *student, const int32_t *ids, int64_t n_ids,
                     const int32_t *eval_ids, int64_t n_eval, int32_t bos, const slm_trainer_opts *o, slm_err *err) {
    memset(t, 0, sizeof *t);
    t->o = *o, t->teacher = teacher, t->student = student;
    t->ids = ids, t->n_ids = n_ids, t->eval_ids = eval_ids, t->n_eval = eval_ids ? n_eval : 0, t->bos = bos;
    const int B = o->batch, T = o->ctx, V = student->cfg.n_vocab;
    if (teacher->cfg.n_vocab != V)
        return slm_errf(err, SLM_E_ARG, "the teacher has %d tokens, the student %d: distillation needs one vocabulary",
                        teacher->cfg.n_vocab, V);
    if (B < 1 || T < 2 || o->accum < 1 || B > student->max_batch || B > teacher->max_batch || T > student->max_ctx ||
        T > teacher->max_ctx)
        return slm_errf(err, SLM_E_ARG, "batch %d x ctx %d (accumulation %d) does not fit the models", B, T, o->accum);
    if (o->eval_ctx < 4 || o->eval_ctx > T) return slm_errf(err, SLM_E_ARG, "evaluation window %d: need 4 <= it <= ctx %d", o->eval_ctx, T);
    t->n_windows = (n_ids - 1) / T;
    if (t->n_windows < B)
        return slm_errf(err, SLM_E_DATA, "%lld tokens are fewer than one batch of %d windows of %d", (long long)n_ids, B, T + 1);
    slm_adamw_opts ao = o->adam;
    int rc = slm_train_init(&t->tr, student, err);
    if (!rc) rc = slm_adamw_init(&t->adam, &ao, t->tr.num_parameters, err);
    if (!rc) rc = slm_adamw_mask_model(&t->adam, student, o->freeze_zeros, &t->n_frozen, err);
    if (!rc) rc = slm_alloc((void **)&t->perm, (size_t)t->n_windows * sizeof *t->perm, err, "data order");
    if (!rc) rc = slm_alloc((void **)&t->tlogits, (size_t)B * T * V * sizeof(float), err, "teacher logits");
    if (!rc) rc = slm_alloc((void **)&t->tok, (size_t)B * T * sizeof(int32_t), err, "batch");
    if (!rc) rc = slm_alloc((void **)&t->tgt, (size_t)B * T * sizeof(int32_t), err, "batch");
    if (!rc) rc = slm_alloc((void **)&t->win, (size_t)B * sizeof(int64_t), err, "batch");
    if (rc) return slm_trainer_free(t), rc;
    shuffle(t);
    return SLM_OK;
}

void slm_trainer_free(slm_trainer *t) {
    slm_train_free(&t->tr);
    slm_adamw_free(&t->adam);
    slm_free(t->perm), slm_free(t->tlogits), slm_free(t->tok), slm_free(t->tgt), slm_free(t->curve), slm_free(t->win);
    slm_free(t->tk_ids), slm_free(t->tk_vals), slm_free(t->tk_lse), slm_free(t->tk_tail);
    memset(t, 0, sizeof *t);
}

/* The next B windows: inputs (BOS first) and their next ids. */
static void next_batch(slm_trainer *t) {
    const int B = t->o.batch, T = t->o.ctx;
    for (int b = 0; b < B; b++) {
        if (t->cursor == t->n_windows) t->epoch++, t->cursor = 0, shuffle(t);
        t->win[b] = t->perm[t->cursor++];
        const int32_t *w = t->ids + t->win[b] * T;
        memcpy(t->tok + (size_t)b * T, w, (size_t)T * sizeof(int32_t));
        memcpy(t->tgt + (size_t)b * T, w + 1, (size_t)T * sizeof(int32_t));
        if (t->bos >= 0) t->tok[(size_t)b * T] = t->bos;
    }
}

int slm_trainer_use_cache(slm_trainer *t, slm_tcache *c, slm_err *err) {
    const size_t NT = (size_t)t->o.batch * (size_t)t->o.ctx, k = c->h.k;
    if ((int)c->h.ctx != t->o.ctx) return slm_errf(err, SLM_E_ARG, "%s: windows of %u, training windows of %d", c->path, c->h.ctx, t->o.ctx);
    if (t->o.loss.divergence != SLM_KD_FORWARD_KL) return slm_errf(err, SLM_E_ARG, "a teacher cache serves the forward KL (--loss fkl) only");
    SLM_TRY(slm_alloc((void **)&t->tk_ids, NT * k * sizeof(int32_t), err, "cached teacher"));
    SLM_TRY(slm_alloc((void **)&t->tk_vals, NT * k * sizeof(float), err, "cached teacher"));
    SLM_TRY(slm_alloc((void **)&t->tk_lse, NT * sizeof(double), err, "cached teacher"));
    SLM_TRY(slm_alloc((void **)&t->tk_tail, NT * sizeof(double), err, "cached teacher"));
    t->cache = c;
    return SLM_OK;
}

/* The cached teacher of the micro-batch's windows into tk_*. */
static int cached_teacher(slm_trainer *t, slm_err *err) {
    const size_t T = (size_t)t->o.ctx, k = t->cache->h.k;
    for (int b = 0; b < t->o.batch; b++) {
        const int32_t *ids;
        const float *vals;
        const double *lse, *tail;
        SLM_TRY(slm_tcache_window(t->cache, t->win[b], &ids, &vals, &lse, &tail, err));
        memcpy(t->tk_ids + b * T * k, ids, T * k * sizeof *ids);
        memcpy(t->tk_vals + b * T * k, vals, T * k * sizeof *vals);
        memcpy(t->tk_lse + b * T, lse, T * sizeof *lse);
        memcpy(t->tk_tail + b * T, tail, T * sizeof *tail);
    }
    return SLM_OK;
}

static int micro_batch(slm_trainer *t, slm_distill_loss_parts *sum, slm_err *err) {
    const int B = t->o.batch, T = t->o.ctx, V = t->student->cfg.n_vocab;
    const int64_t N = (int64_t)B * T;
    next_batch(t);
    const slm_distill_loss_opts *lo = &t->o.loss;
    const int kd = lo->alpha < 1.0f;
    if (kd && t->cache) SLM_TRY(cached_teacher(t, err));
    else if (kd) SLM_TRY(slm_model_forward_batch(t->teacher, t->tok, B, T, 0, 0, t->tlogits, err));
    SLM_TRY(slm_train_forward(&t->tr, t->tok, B, T, err));
    memset(t->tr.dlogits, 0, (size_t)N * V * sizeof(float));
    slm_distill_loss_parts p;
    const float gs = 1.0f / (float)t->o.accum;
    if (kd && t->cache)
        SLM_TRY(slm_distill_loss_topk(&p, t->tr.dlogits, t->tr.logits, t->tk_ids, t->tk_vals, t->tk_lse, t->tk_tail,
                                      (int)t->cache->h.k, t->tgt, N, V, lo, gs, err));
    else
        SLM_TRY(slm_distill_loss(&p, t->tr.dlogits, NULL, NULL, t->tr.logits, kd ? t->tlogits : NULL, t->tgt, N, V, lo, gs, err));
    SLM_TRY(slm_train_backward(&t->tr, err));
    sum->loss += p.loss / t->o.accum, sum->kd += p.kd / t->o.accum, sum->ce += p.ce / t->o.accum;
    t->tokens += N;
    return SLM_OK;
}

int slm_trainer_step(slm_trainer *t, slm_train_point *p, slm_err *err) {
    const double t0 = now();
    /* a failed step leaves the weights, moments and data cursor of the step before */
    const int64_t epoch = t->epoch, cursor = t->cursor, tokens = t->tokens;
    slm_distill_loss_parts sum = {0};
    int rc = slm_train_zero_grad(&t->tr, err);
    for (int k = 0; !rc && k < t->o.accum; k++) rc = micro_batch(t, &sum, err);
    if (!rc) rc = slm_adamw_step(&t->adam, t->student->params_memory, t->tr.grads_memory, 1.0f, err);
    if (rc) {
        if (t->epoch != epoch) t->epoch = epoch, shuffle(t);
        t->cursor = cursor, t->tokens = tokens;
        if (rc == SLM_E_DATA) slm_err_prefix(err, "step %lld", (long long)(t->step + 1));
        return rc;
    }
    t->step++;
    t->seconds += now() - t0;
    *p = (slm_train_point){.step = t->step, .tokens = t->tokens, .seconds = t->seconds, .loss = sum.loss, .kd = sum.kd,
                           .ce = sum.ce, .grad_norm = t->adam.grad_norm, .lr = t->adam.lr};
    return push_point(t, p, err);
}

int slm_trainer_eval(slm_trainer *t, slm_train_point *p, slm_err *err) {
    slm_eval_opts eo = {.ctx = t->o.eval_ctx, .convention = SLM_PPL_SECOND_HALF, .bos_id = t->bos, .max_chunks = t->o.eval_chunks,
                        .model_name = "the student", .ref_name = "the teacher", .text_name = "the evaluation text"};
    slm_kl_result r = {0};
    const double t0 = now();
    SLM_TRY(slm_eval_kl(t->teacher, t->student, t->eval_ids, t->n_eval, &eo, &r, err));
    *p = (slm_train_point){.step = t->step, .tokens = t->tokens, .seconds = t->seconds, .loss = NAN, .kd = NAN, .ce = NAN,
                           .grad_norm = NAN, .lr = NAN, .has_eval = 1, .ppl = r.model.ppl, .ref_ppl = r.ref.ppl,
                           .kld = r.kld_mean, .top1 = r.top1};
    slm_kl_result_free(&r);
    (void)t0;
    return push_point(t, p, err);
}

int slm_trainer_done(const slm_trainer *t) {
    const slm_trainer_opts *o = &t->o;
    return (o->max_steps > 0 && t->step >= o->max_steps) || (o->max_tokens > 0 && t->tokens >= o->max_tokens) ||
           (o->max_seconds > 0 && t->seconds >= o->max_seconds);
}

static int evaluate(slm_trainer *t, const slm_trainer_hooks *h, slm_err *err) {
    slm_train_point p;
    if (!t->n_eval) return SLM_OK;
    SLM_TRY(slm_trainer_eval(t, &p, err));
    if (h && h->on_point) h->on_point(h->ud, t, &p);
    return SLM_OK;
}

int slm_trainer_run(slm_trainer *t, const slm_trainer_hooks *h, slm_err *err) {
    if (t->step == 0) SLM_TRY(evaluate(t, h, err));
    while (!slm_trainer_done(t)) {
        slm_train_point p;
        SLM_TRY(slm_trainer_step(t, &p, err));
        if (h && h->on_point) h->on_point(h->ud, t, &p);
        const int last = slm_trainer_done(t);
        if (!last && t->o.eval_every > 0 && t->step % t->o.eval_every == 0) SLM_TRY(evaluate(t, h, err));
        if (h && h->on_checkpoint && t->o.ckpt_every > 0 && (t->step % t->o.ckpt_every == 0 || last))
            SLM_TRY(h->on_checkpoint(h->ud, t, err));
    }
    return evaluate(t, h, err);
}

/* ---- checkpoints: header | curve | params | m | v | sha256 of all before */

typedef struct ckpt_head {
    char magic[8];
    uint64_t n_params, n_curve, n_ids, shape_hash;
    int64_t step, tokens, epoch, cursor;
    double seconds;
    uint64_t seed;
    int32_t batch, ctx, accum, reserved;
} ckpt_head;

/* What must match for the data cursor and the moments to mean the same thing. */
static uint64_t shape_hash(const slm_trainer *t) {
    slm_sha256 s;
    uint8_t d[32];
    uint64_t h;
    const slm_model_config *c = &t->student->cfg;
    slm_sha256_init(&s);
    slm_sha256_update(&s, c, sizeof *c);
    slm_sha256_update(&s, t->ids, (size_t)t->n_ids * sizeof *t->ids);
    slm_sha256_final(&s, d);
    memcpy(&h, d, sizeof h);
    return h;
}

static void head_of(const slm_trainer *t, ckpt_head *hd) {
    memset(hd, 0, sizeof *hd);
    memcpy(hd->magic, CKPT_MAGIC, 8);
    *hd = (ckpt_head){.n_params = t->tr.num_parameters, .n_curve = t->n_curve, .n_ids = (uint64_t)t->n_ids,
                      .shape_hash = shape_hash(t), .step = t->step, .tokens = t->tokens, .epoch = t->epoch,
                      .cursor = t->cursor, .seconds = t->seconds, .seed = t->o.seed, .batch = t->o.batch, .ctx = t->o.ctx,
                      .accum = t->o.accum};
    memcpy(hd->magic, CKPT_MAGIC, 8);
}

static int put(slm_afile *f, slm_sha256 *s, const void *p, size_t n, slm_err *err) {
    slm_sha256_update(s, p, n);
    return slm_afile_write(f, p, n, err);
}

int slm_trainer_save(const slm_trainer *t, slm_afile *f, slm_err *err) {
    ckpt_head hd;
    slm_sha256 s;
    uint8_t d[32];
    const size_t n = t->tr.num_parameters;
    head_of(t, &hd);
    slm_sha256_init(&s);
    SLM_TRY(put(f, &s, &hd, sizeof hd, err));
    SLM_TRY(put(f, &s, t->curve, t->n_curve * sizeof *t->curve, err));
    SLM_TRY(put(f, &s, t->student->params_memory, n * sizeof(float), err));
    SLM_TRY(put(f, &s, t->adam.m, n * sizeof(float), err));
    SLM_TRY(put(f, &s, t->adam.v, n * sizeof(float), err));
    slm_sha256_final(&s, d);
    return slm_afile_write(f, d, sizeof d, err);
}

int slm_trainer_load(slm_trainer *t, const void *data, size_t len, const char *what, slm_err *err) {
    ckpt_head hd, mine;
    const uint8_t *b = data;
    const size_t n = t->tr.num_parameters;
    if (len < sizeof hd + 32 || memcmp(b, CKPT_MAGIC, 8))
        return slm_errf(err, SLM_E_FORMAT, "%s: not an slm distill checkpoint", what);
    memcpy(&hd, b, sizeof hd);
    head_of(t, &mine);
    if (hd.n_params != mine.n_params || hd.shape_hash != mine.shape_hash || hd.n_ids != mine.n_ids || hd.batch != mine.batch ||
        hd.ctx != mine.ctx || hd.accum != mine.accum || hd.seed != mine.seed)
        return slm_errf(err, SLM_E_FORMAT,
                        "%s: made for another student, text, --batch, --ctx, --accum or --seed (resume with the options of the first run)",
                        what);
    if (hd.n_curve > (len - sizeof hd) / sizeof(slm_train_point) ||
        len != sizeof hd + hd.n_curve * sizeof(slm_train_point) + 3 * n * sizeof(float) + 32)
        return slm_errf(err, SLM_E_FORMAT, "%s: truncated or damaged (size %zu)", what, len);
    slm_sha256 s;
    uint8_t d[32];
    slm_sha256_init(&s);
    slm_sha256_update(&s, b, len - 32);
    slm_sha256_final(&s, d);
    if (memcmp(d, b + len - 32, 32)) return slm_errf(err, SLM_E_FORMAT, "%s: damaged (checksum mismatch)", what);
    b += sizeof hd;
    t->n_curve = 0;
    for (uint64_t i = 0; i < hd.n_curve; i++, b += sizeof(slm_train_point)) {
        slm_train_point p;
        memcpy(&p, b, sizeof p);
        SLM_TRY(push_point(t, &p, err));
    }
    memcpy(t->student->params_memory, b, n * sizeof(float)), b += n * sizeof(float);
    memcpy(t->adam.m, b, n * sizeof(float)), b += n * sizeof(float);
    memcpy(t->adam.v, b, n * sizeof(float));
    t->adam.step = t->step = hd.step, t->tokens = hd.tokens, t->seconds = hd.seconds;
    t->epoch = hd.epoch, t->cursor = hd.cursor;
    shuffle(t);
    return SLM_OK;
}
