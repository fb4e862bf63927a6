/* trainer.h - the distillation loop: a teacher's logits teach a student on a token stream,
 * with held-out evaluation, checkpoints and exact resume (llm.c's train loop, plus a teacher).
 *
 * Owns: the data order (windows of ctx + 1 ids, BOS first as llama-perplexity's windows, shuffled
 * per epoch from the seed), one optimizer step (teacher forward, student forward with kept
 * activations, the loss of distill/loss.h, backward, AdamW of distill/adamw.h with masks that keep
 * pruned zeros at 0), gradient accumulation, the stop rules (steps, tokens, seconds), the
 * held-out evaluation (student and teacher perplexity, KL(teacher || student), model/eval.h), the
 * curve of every step, and the checkpoint bytes (student weights, AdamW moments, step, data
 * cursor, curve; SHA-256 checked on load).
 * Must not: print, open files (the caller writes checkpoints through core/afile.h from the
 * on_checkpoint hook, atomically), or tokenize.
 *
 * Determinism: the kernels are bit-identical for any thread count and the data order depends
 * on the seed only, so N steps, or N/2 steps + save + load + N/2 steps, give the same bytes.
 */
#ifndef SLM_DISTILL_TRAINER_H
#define SLM_DISTILL_TRAINER_H

#include <stddef.h>
#include <stdint.h>

#include "core/afile.h"
#include "core/err.h"
#include "distill/adamw.h"
#include "distill/loss.h"
#include "distill/tcache.h"
#include "model/train.h"
#include "model/transformer.h"

typedef struct slm_trainer_opts {
    int batch, ctx;            /* B windows of ctx ids per micro-batch (models built for them) */
    int accum;                 /* micro-batches per optimizer step (>= 1) */
    int64_t max_steps;         /* stop after this many optimizer steps (0: no limit) */
    int64_t max_tokens;        /* stop once this many training ids were seen (0: no limit) */
    double max_seconds;        /* stop once training took this long (0: no limit) */
    uint64_t seed;             /* data order */
    slm_adamw_opts adam;
    slm_distill_loss_opts loss;
    int freeze_zeros;          /* weights exactly 0 at the start stay 0 (pruned) */
    int64_t eval_every;        /* steps between held-out evaluations (0: start and end only) */
    int eval_ctx;              /* window of the evaluation (<= ctx) */
    int64_t eval_chunks;       /* windows evaluated (0: all) */
    int64_t ckpt_every;        /* steps between on_checkpoint calls (0: none) */
} slm_trainer_opts;

/* One step of the curve (and the evaluations: has_eval). */
typedef struct slm_train_point {
    int64_t step, tokens;      /* after this step (step 0: the start) */
    double seconds;            /* training time so far */
    double loss, kd, ce, grad_norm;
    double lr;
    int has_eval;
    double ppl, ref_ppl, kld, top1; /* student PPL, teacher PPL, mean KL(teacher || student), top-1 agreement */
} slm_train_point;

typedef struct slm_trainer {
    slm_trainer_opts o;
    slm_model *teacher, *student; /* borrowed: teacher any build, student built with SLM_BUILD_KEEP_ACTS */
    slm_train tr;
    slm_adamw adam;
    const int32_t *ids, *eval_ids; /* borrowed token streams */
    int64_t n_ids, n_eval;
    int32_t bos;                   /* BOS id put first in each window, or -1 */
    int64_t n_windows;
    int64_t *perm;                 /* this epoch's window order */
    int64_t epoch, cursor;         /* next window: perm[cursor] of epoch */
    int64_t step, tokens;
    double seconds;
    int64_t n_frozen;              /* weights kept at 0 */
    float *tlogits;                /* (B * T, V) the teacher's logits */
    int32_t *tok, *tgt;            /* (B * T) a micro-batch */
    slm_train_point *curve;        /* every step, with the evaluations */
    size_t n_curve, cap_curve;
    int64_t *win;                  /* (B) the windows of the last micro-batch */
    slm_tcache *cache;             /* borrowed: the teacher's top-k instead of its forward, or NULL */
    int32_t *tk_ids;               /* (B * T, k) the cached teacher of a micro-batch */
    float *tk_vals;
    double *tk_lse, *tk_tail;      /* (B * T) */
} slm_trainer;

typedef struct slm_trainer_hooks {
    void *ud;
    /* after each step and each evaluation (p->has_eval); may be NULL */
    void (*on_point)(void *ud, const slm_trainer *t, const slm_train_point *p);
    /* every ckpt_every steps: write slm_trainer_save's bytes somewhere safe; may be NULL */
    int (*on_checkpoint)(void *ud, const slm_trainer *t, slm_err *err);
} slm_trainer_hooks;

/* The teacher and student must share the vocabulary size and be built for o->batch windows of
   o->ctx ids (the student with SLM_BUILD_KEEP_ACTS, F32 numerics); ids needs at least
   o->batch windows of ctx + 1 ids, eval_ids (may be NULL) one window of eval_ctx. */
int slm_trainer_init(slm_trainer *t, slm_model *teacher, slm_model *student, const int32_t *ids, int64_t n_ids,
                     const int32_t *eval_ids, int64_t n_eval, int32_t bos, const slm_trainer_opts *o, slm_err *err);
void slm_trainer_free(slm_trainer *t);
/* Trains from c (opened, checked against this teacher and text by the caller) instead of the
   teacher's forward: the forward KL over its top-k (distill/loss.h); the teacher still serves
   the held-out evaluation. SLM_E_ARG when c's ctx differs or the loss is not fkl. */
int slm_trainer_use_cache(slm_trainer *t, slm_tcache *c, slm_err *err);

/* One optimizer step (accum micro-batches); *p its point. SLM_E_DATA when the loss or the
   gradient is not finite (the weights are then those of the step before: nothing updated). */
int slm_trainer_step(slm_trainer *t, slm_train_point *p, slm_err *err);
/* Held-out evaluation into p (has_eval, ppl, ref_ppl, kld, top1). */
int slm_trainer_eval(slm_trainer *t, slm_train_point *p, slm_err *err);
/* Evaluates at the start (when there is held-out text and nothing trained yet), steps until a
   stop rule, evaluating every eval_every steps and at the end, checkpointing every ckpt_every.
   Every point goes to the curve and to on_point. */
int slm_trainer_run(slm_trainer *t, const slm_trainer_hooks *h, slm_err *err);
/* 1 when a stop rule is met. */
int slm_trainer_done(const slm_trainer *t);

/* The checkpoint: writes its bytes to f / restores them (same student shape, batch, ctx,
   accumulation, seed and training text; SLM_E_FORMAT naming `what` otherwise or when the
   bytes are damaged). */
int slm_trainer_save(const slm_trainer *t, slm_afile *f, slm_err *err);
int slm_trainer_load(slm_trainer *t, const void *data, size_t n, const char *what, slm_err *err);

#endif
