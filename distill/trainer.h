/* trainer.h - the distillation loop: token ids -> batches -> teacher forward -> student forward,
 * loss (distill/loss.h), backward (model/train.h) -> AdamW (distill/adamw.h), with gradient
 * accumulation, stop conditions, periodic held-out evaluation, checkpoints and resume.
 *
 * Owns: batching (windows of ctx + 1 ids at stride ctx over the id stream, visited in a
 * per-epoch permutation drawn from the seed), the step, the stop rules, the held-out
 * evaluation against the teacher, the checkpoint file (student weights, AdamW moments and
 * step, data cursor, RNG state) written through the atomic writer.
 * Must not: print, exit, read model files (the caller builds both models), tokenize.
 *
 * A window's input is ids[s .. s+ctx) with the first id replaced by BOS (bos_id >= 0; the
 * perplexity convention the teacher was evaluated with), its targets ids[s+1 .. s+ctx].
 *
 * Determinism: for a given thread count... in fact for any thread count, the weights after N
 * steps depend only on the models, the ids, the options and the seed; a run resumed from the
 * checkpoint of step k gives the same bytes as an uninterrupted run (the learning-rate
 * schedule must be the same: total_steps comes from the options, never from the clock).
 *
 * Checkpoint file (little-endian): "SLMDCKP1", u32 version 1, u32 B, u32 T, u32 accum,
 * u64 num_parameters, u64 n_windows, i64 adamw step, i64 epoch, i64 cursor (windows done in
 * this epoch), u64 rng state, i64 tokens trained, then params, m, v (num_parameters f32 each).
 */
#ifndef SLM_DISTILL_TRAINER_H
#define SLM_DISTILL_TRAINER_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "distill/adamw.h"
#include "distill/loss.h"
#include "model/transformer.h"

/* One step (is_eval 0) or one held-out evaluation (is_eval 1) for the callbacks and the log. */
typedef struct slm_trainer_point {
    int is_eval;
    int64_t step;         /* updates done (after this step; the evaluation's step) */
    int64_t tokens;       /* training tokens seen */
    double seconds;       /* since the start of this run */
    double loss, kd, ce;  /* mean over the step's micro-batches (steps) */
    double lr, grad_norm; /* of the update (steps) */
    double ppl, kld, top1; /* held-out: student PPL, mean KL(teacher || student), top-1 agreement (evals) */
    double teacher_ppl;   /* (evals) */
} slm_trainer_point;

typedef struct slm_trainer_opts {
    int batch, ctx;           /* B sequences of ctx tokens per micro-batch (the models' max_batch, max_ctx) */
    int accum;                /* micro-batches per update, >= 1 */
    int64_t max_steps;        /* stop after this many updates (0: no limit) */
    int64_t max_tokens;       /* ... or this many training tokens (0: no limit) */
    double max_seconds;       /* ... or this wall time (0: no limit); at least one limit */
    uint64_t seed;
    int32_t bos_id;           /* -1: inputs start with the text's own id */
    slm_distill_loss_opts loss;
    slm_adamw_opts adamw;
    int freeze_zeros;         /* exact zeros of the student's matrices stay 0 */
    const int32_t *eval_ids;  /* held-out ids, or NULL */
    int64_t n_eval;
    int64_t eval_every;       /* evaluate every N updates (and before the first and after the last); 0: only those two */
    int64_t eval_chunks;      /* at most this many windows of ctx (0: all) */
    const char *checkpoint;   /* write a checkpoint here every checkpoint_every updates and at the end, or NULL */
    int64_t checkpoint_every;
    const char *resume;       /* start from this checkpoint, or NULL */
    void (*on_point)(void *ud, const slm_trainer_point *p); /* each step and evaluation, or NULL */
    void *ud;
} slm_trainer_opts;

typedef struct slm_trainer_result {
    int64_t steps, tokens;    /* updates done in all (with the resumed ones), training tokens seen */
    int64_t steps_run;        /* updates done by this call */
    double seconds;           /* of this call */
    double tok_per_s;         /* training tokens of this call per second (evaluation excluded) */
    int64_t n_frozen;         /* weights the mask keeps fixed */
    int64_t ckpt_step;        /* step of the last checkpoint written, -1 none */
    int64_t nan_step;         /* the update whose loss was not finite, -1 none */
} slm_trainer_result;

/* Defaults: accum 1, loss forward KL at T = 1 with alpha 0, AdamW defaults (lr 1e-4), freeze
   zeros, bos_id -1, eval_every 0; the caller sets batch, ctx, a limit and the ids. */
void slm_trainer_defaults(slm_trainer_opts *o);

/* Trains student (built with SLM_BUILD_KEEP_ACTS, not mapped, max_batch >= B, max_ctx >= T)
   against teacher (any build with the same vocabulary size, max_batch >= B, max_ctx >= T) on
   ids (n_ids), as the header says. The student's weights are updated in place. A non-finite
   loss or gradient stops training: SLM_E_DATA "loss is not finite at step N (...)", res->nan_step
   set, the student's weights are those of the last good update and the last checkpoint is kept.
   A failed checkpoint write (disk full) stops with SLM_E_IO naming the file; the previous
   checkpoint stays in place. SLM_E_ARG for bad options or a checkpoint of another run shape. */
int slm_trainer_run(slm_model *teacher, slm_model *student, const int32_t *ids, int64_t n_ids, const slm_trainer_opts *o,
                    slm_trainer_result *res, slm_err *err);

/* Held-out evaluation of student against teacher on ids (windows of ctx, second-half convention). */
int slm_trainer_eval(slm_model *teacher, slm_model *student, const int32_t *ids, int64_t n_ids, int ctx,
                     int64_t chunks, int32_t bos_id, slm_trainer_point *p, slm_err *err);

#endif
