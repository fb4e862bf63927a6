/* trainer.c - the distillation loop (trainer.h). */
#include "distill/trainer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/afile.h"
#include "core/dtype.h"
#include "core/mapfile.h"
#include "core/mem.h"
#include "core/rng.h"
#include "core/signals.h"
#include "model/eval.h"
#include "model/train.h"

#define CKPT_MAGIC "SLMDCKP1"
#define CKPT_VERSION 1u

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void slm_trainer_defaults(slm_trainer_opts *o) {
    memset(o, 0, sizeof *o);
    o->accum = 1;
    o->bos_id = -1;
    o->freeze_zeros = 1;
    o->loss = (slm_distill_loss_opts){.divergence = SLM_KD_FORWARD_KL, .temperature = 1.0f, .alpha = 0.0f};
    slm_adamw_defaults(&o->adamw);
}

/* The loop's state: what a checkpoint holds besides the weights and moments. */
typedef struct run {
    slm_model *t, *s;
    const slm_trainer_opts *o;
    slm_train tr;
    slm_adamw a;
    const int32_t *ids;
    int64_t n_windows, epoch, cursor, tokens;
    uint64_t rng_state;
    int32_t *perm, *tok, *tgt;
    float *tlogits;
} run;

/* Window order of an epoch: Fisher-Yates from a generator seeded by (seed, epoch). */
static void shuffle(run *r) {
    slm_rng g;
    slm_rng_seed(&g, r->o->seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(r->epoch + 1)));
    r->rng_state = g.s;
    for (int64_t i = 0; i < r->n_windows; i++) r->perm[i] = (int32_t)i;
    for (int64_t i = r->n_windows - 1; i > 0; i--) {
        int64_t j = (int64_t)(slm_rng_u64(&g) % (uint64_t)(i + 1));
        int32_t x = r->perm[i];
        r->perm[i] = r->perm[j], r->perm[j] = x;
    }
}

/* The next B windows into tok/tgt (a new epoch when fewer than B remain). */
static void next_batch(run *r) {
    const int B = r->o->batch, T = r->o->ctx;
    if (r->cursor + B > r->n_windows) r->epoch++, r->cursor = 0, shuffle(r);
    for (int b = 0; b < B; b++) {
        const int32_t *w = r->ids + (size_t)r->perm[r->cursor + b] * (size_t)T;
        memcpy(r->tok + (size_t)b * T, w, sizeof(int32_t) * (size_t)T);
        memcpy(r->tgt + (size_t)b * T, w + 1, sizeof(int32_t) * (size_t)T);
        if (r->o->bos_id >= 0) r->tok[(size_t)b * T] = r->o->bos_id;
    }
    r->cursor += B;
}

/* ---- checkpoints */

typedef struct ckpt_head {
    char magic[8];
    uint32_t version, B, T, accum;
    uint64_t n_params, n_windows;
    int64_t step, epoch, cursor;
    uint64_t rng;
    int64_t tokens;
} ckpt_head;

static int ckpt_write(run *r, const char *path, slm_err *err) {
    slm_afile f;
    ckpt_head h = {.version = CKPT_VERSION, .B = (uint32_t)r->o->batch, .T = (uint32_t)r->o->ctx,
                   .accum = (uint32_t)r->o->accum, .n_params = r->a.n, .n_windows = (uint64_t)r->n_windows,
                   .step = r->a.step, .epoch = r->epoch, .cursor = r->cursor, .rng = r->rng_state, .tokens = r->tokens};
    memcpy(h.magic, CKPT_MAGIC, 8);
    const size_t nb = r->a.n * sizeof(float);
    if (slm_first_nonfinite(r->s->params_memory, (int64_t)r->a.n) >= 0) /* never replace a good checkpoint by a bad one */
        return slm_errf(err, SLM_E_DATA, "weights not finite after step %lld: checkpoint %s not written", (long long)r->a.step, path);
    int rc = slm_afile_open(&f, path, err);
    if (!rc) rc = slm_afile_write(&f, &h, sizeof h, err);
    if (!rc) rc = slm_afile_write(&f, r->s->params_memory, nb, err);
    if (!rc) rc = slm_afile_write(&f, r->a.m, nb, err);
    if (!rc) rc = slm_afile_write(&f, r->a.v, nb, err);
    if (!rc) rc = slm_afile_commit(&f, err);
    if (rc) {
        slm_afile_abort(&f);
        slm_err_prefix(err, "checkpoint %s", path);
    }
    return rc;
}

static int ckpt_read(run *r, const char *path, slm_err *err) {
    slm_map mp = {0};
    ckpt_head h;
    const size_t nb = r->a.n * sizeof(float);
    SLM_TRY(slm_map_open(&mp, path, err));
    int rc = SLM_OK;
    if (mp.size < sizeof h) rc = slm_errf(err, SLM_E_FORMAT, "%s: not a distill checkpoint (too short)", path);
    if (!rc) memcpy(&h, mp.data, sizeof h);
    if (!rc && (memcmp(h.magic, CKPT_MAGIC, 8) || h.version != CKPT_VERSION))
        rc = slm_errf(err, SLM_E_FORMAT, "%s: not a distill checkpoint", path);
    if (!rc && (h.n_params != r->a.n || h.n_windows != (uint64_t)r->n_windows || h.B != (uint32_t)r->o->batch ||
                h.T != (uint32_t)r->o->ctx || h.accum != (uint32_t)r->o->accum))
        rc = slm_errf(err, SLM_E_ARG,
                      "%s: checkpoint of another run (%llu parameters, %llu windows, batch %u, ctx %u, accum %u; this run: "
                      "%llu, %lld, %d, %d, %d)",
                      path, (unsigned long long)h.n_params, (unsigned long long)h.n_windows, h.B, h.T, h.accum,
                      (unsigned long long)r->a.n, (long long)r->n_windows, r->o->batch, r->o->ctx, r->o->accum);
    if (!rc && mp.size != sizeof h + 3 * nb) rc = slm_errf(err, SLM_E_FORMAT, "%s: truncated checkpoint", path);
    if (!rc) {
        const uint8_t *p = (const uint8_t *)mp.data + sizeof h;
        memcpy(r->s->params_memory, p, nb);
        memcpy(r->a.m, p + nb, nb);
        memcpy(r->a.v, p + 2 * nb, nb);
        r->a.step = h.step, r->epoch = h.epoch, r->cursor = h.cursor, r->tokens = h.tokens;
        shuffle(r);
        if (r->rng_state != h.rng) rc = slm_errf(err, SLM_E_FORMAT, "%s: checkpoint of another seed", path);
    }
    slm_map_close(&mp);
    return rc;
}

/* ---- evaluation */

int slm_trainer_eval(slm_model *teacher, slm_model *student, const int32_t *ids, int64_t n_ids, int ctx, int64_t chunks,
                     int32_t bos_id, slm_trainer_point *p, slm_err *err) {
    slm_eval_opts eo = {.ctx = ctx, .convention = SLM_PPL_SECOND_HALF, .bos_id = bos_id, .max_chunks = chunks,
                        .model_name = "the student", .ref_name = "the teacher", .text_name = "the evaluation text"};
    slm_kl_result kl = {0};
    SLM_TRY(slm_eval_kl(teacher, student, ids, n_ids, &eo, &kl, err));
    p->ppl = kl.model.ppl, p->teacher_ppl = kl.ref.ppl, p->kld = kl.kld_mean, p->top1 = kl.top1;
    slm_kl_result_free(&kl);
    return SLM_OK;
}

static int eval_point(run *r, double t0, slm_err *err) {
    const slm_trainer_opts *o = r->o;
    if (!o->eval_ids) return SLM_OK;
    slm_trainer_point p = {.is_eval = 1, .step = r->a.step, .tokens = r->tokens, .loss = NAN, .kd = NAN, .ce = NAN,
                           .lr = NAN, .grad_norm = NAN};
    SLM_TRY(slm_trainer_eval(r->t, r->s, o->eval_ids, o->n_eval, o->ctx, o->eval_chunks, o->bos_id, &p, err));
    p.seconds = now_s() - t0;
    if (o->on_point) o->on_point(o->ud, &p);
    return SLM_OK;
}

/* ---- one update */

static int micro_batch(run *r, float scale, slm_distill_loss_parts *acc, slm_err *err) {
    const slm_trainer_opts *o = r->o;
    const int B = o->batch, T = o->ctx, V = r->s->cfg.n_vocab;
    const size_t N = (size_t)B * T;
    slm_distill_loss_parts parts;
    next_batch(r);
    if (o->loss.alpha < 1.0f) SLM_TRY(slm_model_forward_batch(r->t, r->tok, B, T, 0, 0, r->tlogits, err));
    SLM_TRY(slm_train_forward(&r->tr, r->tok, B, T, err));
    memset(r->tr.dlogits, 0, N * (size_t)V * sizeof(float));
    SLM_TRY(slm_distill_loss(&parts, r->tr.dlogits, NULL, NULL, r->tr.logits, o->loss.alpha < 1.0f ? r->tlogits : NULL,
                             r->tgt, (int64_t)N, V, &o->loss, scale, err));
    SLM_TRY(slm_train_backward(&r->tr, err));
    r->tokens += (int64_t)N;
    acc->loss += parts.loss * scale, acc->kd += parts.kd * scale, acc->ce += parts.ce * scale;
    return SLM_OK;
}

/* "loss is not finite at step s (what the loss or AdamW said)". */
static int not_finite(slm_err *err, int64_t s) {
    char m[sizeof err->msg];
    snprintf(m, sizeof m, "%s", err->msg);
    return slm_errf(err, SLM_E_DATA, "loss is not finite at step %lld (%s)", (long long)s, m);
}

/* One update; SLM_E_DATA for a non-finite loss or gradient (no update made). */
static int step(run *r, slm_trainer_point *p, slm_err *err) {
    const slm_trainer_opts *o = r->o;
    const float scale = 1.0f / (float)o->accum;
    slm_distill_loss_parts acc = {0};
    const int64_t s = r->a.step + 1;
    SLM_TRY(slm_train_zero_grad(&r->tr, err));
    for (int k = 0; k < o->accum; k++) {
        int rc = micro_batch(r, scale, &acc, err);
        if (rc == SLM_E_DATA) return not_finite(err, s);
        if (rc) return rc;
    }
    if (!isfinite(acc.loss)) return slm_errf(err, SLM_E_DATA, "loss is not finite at step %lld", (long long)s);
    int rc = slm_adamw_step(&r->a, r->s->params_memory, r->tr.grads_memory, 1.0f, err);
    if (rc == SLM_E_DATA) return not_finite(err, s);
    if (rc) return rc;
    *p = (slm_trainer_point){.step = r->a.step, .tokens = r->tokens, .loss = acc.loss, .kd = acc.kd, .ce = acc.ce,
                             .lr = r->a.lr, .grad_norm = r->a.grad_norm, .ppl = NAN, .kld = NAN, .top1 = NAN,
                             .teacher_ppl = NAN};
    return SLM_OK;
}

/* ---- the loop */

static int check_opts(const slm_model *t, const slm_model *s, int64_t n_ids, const slm_trainer_opts *o, slm_err *err) {
    if (o->batch < 1 || o->ctx < 2 || o->accum < 1) return slm_errf(err, SLM_E_ARG, "batch, ctx and accum must be positive");
    if (!o->max_steps && !o->max_tokens && !(o->max_seconds > 0))
        return slm_errf(err, SLM_E_ARG, "no stop condition: give a number of steps, tokens or minutes");
    if (o->max_steps < 0 || o->max_tokens < 0 || o->max_seconds < 0) return slm_errf(err, SLM_E_ARG, "negative limit");
    if (!s->keep_acts || s->mapped) return slm_errf(err, SLM_E_ARG, "the student must be built with its activations kept, not mapped");
    if (s->max_batch < o->batch || s->max_ctx < o->ctx || t->max_batch < o->batch || t->max_ctx < o->ctx)
        return slm_errf(err, SLM_E_ARG, "models built for fewer than %d sequences of %d tokens", o->batch, o->ctx);
    if (t->cfg.n_vocab != s->cfg.n_vocab)
        return slm_errf(err, SLM_E_ARG, "teacher and student vocabularies differ (%d and %d tokens)", t->cfg.n_vocab, s->cfg.n_vocab);
    if ((n_ids - 1) / o->ctx < o->batch)
        return slm_errf(err, SLM_E_DATA, "the text has %lld tokens: fewer than one batch of %d x %d (+1)", (long long)n_ids,
                        o->batch, o->ctx);
    return SLM_OK;
}

static int setup(run *r, int64_t n_ids, slm_trainer_result *res, slm_err *err) {
    const slm_trainer_opts *o = r->o;
    const size_t N = (size_t)o->batch * o->ctx;
    r->n_windows = (n_ids - 1) / o->ctx;
    SLM_TRY(slm_train_init(&r->tr, r->s, err));
    SLM_TRY(slm_train_zero_grad(&r->tr, err));
    SLM_TRY(slm_adamw_init(&r->a, &o->adamw, r->tr.num_parameters, err));
    SLM_TRY(slm_adamw_mask_model(&r->a, r->s, o->freeze_zeros, &res->n_frozen, err));
    SLM_TRY(slm_calloc((void **)&r->perm, (size_t)r->n_windows, sizeof(int32_t), err, "window order"));
    SLM_TRY(slm_calloc((void **)&r->tok, N, sizeof(int32_t), err, "batch"));
    SLM_TRY(slm_calloc((void **)&r->tgt, N, sizeof(int32_t), err, "batch"));
    SLM_TRY(slm_calloc((void **)&r->tlogits, N * (size_t)r->s->cfg.n_vocab, sizeof(float), err, "teacher logits"));
    shuffle(r);
    if (o->resume) SLM_TRY(ckpt_read(r, o->resume, err));
    return SLM_OK;
}

static int done(const run *r, int64_t steps0, double t0) {
    const slm_trainer_opts *o = r->o;
    if (o->max_steps && r->a.step >= o->max_steps) return 1;
    if (o->max_tokens && r->tokens >= o->max_tokens) return 1;
    if (o->max_seconds > 0 && now_s() - t0 >= o->max_seconds && r->a.step > steps0) return 1;
    return 0;
}

static int loop(run *r, slm_trainer_result *res, double t0, slm_err *err) {
    const slm_trainer_opts *o = r->o;
    const int64_t steps0 = r->a.step, tokens0 = r->tokens;
    double t_train = 0;
    SLM_TRY(eval_point(r, t0, err));
    while (!done(r, steps0, t0)) {
        if (slm_signals_pending()) return slm_errf(err, SLM_E_INTERRUPTED, "interrupted at step %lld", (long long)r->a.step);
        slm_trainer_point p;
        const double ts = now_s();
        int rc = step(r, &p, err);
        if (rc == SLM_E_DATA) res->nan_step = r->a.step + 1;
        if (rc) return rc;
        t_train += now_s() - ts;
        res->steps = r->a.step, res->tokens = r->tokens, res->steps_run = r->a.step - steps0;
        res->tok_per_s = t_train > 0 ? (double)(r->tokens - tokens0) / t_train : 0;
        const int last = done(r, steps0, t0);
        if (o->checkpoint && !last && o->checkpoint_every > 0 && r->a.step % o->checkpoint_every == 0) {
            SLM_TRY(ckpt_write(r, o->checkpoint, err));
            res->ckpt_step = r->a.step;
        }
        p.seconds = now_s() - t0;
        if (o->on_point) o->on_point(o->ud, &p);
        if (o->eval_every > 0 && r->a.step % o->eval_every == 0 && !last) SLM_TRY(eval_point(r, t0, err));
    }
    if (o->checkpoint) {
        SLM_TRY(ckpt_write(r, o->checkpoint, err));
        res->ckpt_step = r->a.step;
    }
    return eval_point(r, t0, err);
}

int slm_trainer_run(slm_model *teacher, slm_model *student, const int32_t *ids, int64_t n_ids, const slm_trainer_opts *o,
                    slm_trainer_result *res, slm_err *err) {
    memset(res, 0, sizeof *res);
    res->ckpt_step = -1, res->nan_step = -1;
    SLM_TRY(check_opts(teacher, student, n_ids, o, err));
    const double t0 = now_s();
    run r = {.t = teacher, .s = student, .o = o, .ids = ids};
    int rc = setup(&r, n_ids, res, err);
    if (!rc) {
        res->steps = r.a.step, res->tokens = r.tokens;
        rc = loop(&r, res, t0, err);
    }
    res->seconds = now_s() - t0;
    slm_free(r.perm), slm_free(r.tok), slm_free(r.tgt), slm_free(r.tlogits);
    slm_adamw_free(&r.a);
    slm_train_free(&r.tr);
    return rc;
}
