/* adamw.h - AdamW over the flat parameter buffer (llm.c's gpt2_update), with the learning-rate
 * schedule, global gradient-norm clipping, gradient accumulation and masked updates.
 *
 * Owns: the optimizer state (first and second moments, one float each per parameter, laid out
 * like params_memory / grads_memory), the schedule (linear warmup, then cosine decay to a
 * floor), the deterministic global norm, the per-parameter mask (frozen / trained / trained
 * with weight decay) and building that mask for a model (pruned zeros frozen).
 * Must not: print, read files, or compute gradients.
 *
 * One update, for parameters the mask trains (PyTorch's torch.optim.AdamW, decoupled decay):
 *   g = grads * grad_scale * clip,  clip = min(1, clip_norm / (||grads * grad_scale|| + 1e-6))
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  t = step + 1
 *   p -= lr_t * ((m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps) + wd * p)   (wd where the mask decays)
 * Frozen parameters keep their value (a pruned zero stays exactly 0) and their moments, and do
 * not count in the norm. The norm is summed in fixed chunks (partials in double, added in chunk
 * order), so updates are bit-identical for any thread count.
 */
#ifndef SLM_DISTILL_ADAMW_H
#define SLM_DISTILL_ADAMW_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "model/transformer.h"

typedef struct slm_adamw_opts {
    float lr;             /* peak learning rate */
    float min_lr;         /* floor the cosine decays to */
    int64_t warmup_steps; /* linear warmup: step s < warmup uses lr * (s + 1) / warmup */
    int64_t total_steps;  /* cosine from lr at the end of warmup to min_lr at total_steps (then
                             min_lr); 0: constant lr after the warmup */
    float beta1, beta2, eps;
    float weight_decay;   /* decoupled, on parameters whose mask has SLM_ADAMW_DECAY */
    float clip_norm;      /* > 0: clip the global gradient norm to this */
} slm_adamw_opts;

/* lr 1e-4, min_lr 0, no warmup, constant; betas (0.9, 0.999), eps 1e-8 (PyTorch's);
   weight decay 0; clip_norm 1 */
void slm_adamw_defaults(slm_adamw_opts *o);

/* Mask values per parameter. */
enum { SLM_ADAMW_FROZEN = 0, SLM_ADAMW_TRAIN = 1, SLM_ADAMW_DECAY = 3 /* trained, with weight decay */ };

typedef struct slm_adamw {
    slm_adamw_opts o;
    size_t n;            /* parameters */
    float *m, *v;        /* (n) moments, zero at init; save them with step in a checkpoint */
    uint8_t *mask;       /* (n) SLM_ADAMW_* per parameter, or NULL: all SLM_ADAMW_DECAY */
    int64_t step;        /* updates done */
    double *partials;    /* (n_chunks) norm scratch */
    size_t n_chunks;
    /* the last update */
    double grad_norm;    /* ||grads * grad_scale|| over trained parameters, before clipping */
    float lr;            /* learning rate it used */
    int clipped;         /* 1 when the norm was clipped */
} slm_adamw;

/* n parameters (e.g. slm_train.num_parameters); o is copied (SLM_E_ARG for values out of
   range). On failure a is freed. */
int slm_adamw_init(slm_adamw *a, const slm_adamw_opts *o, size_t n, slm_err *err);
/* Safe on a zeroed or freed struct. */
void slm_adamw_free(slm_adamw *a);

/* The learning rate of update `step` (0-based). */
float slm_adamw_lr(const slm_adamw_opts *o, int64_t step);

/* The mask for model m's parameter buffer (a->n must be m->num_parameters): matrices
   SLM_ADAMW_DECAY, vectors (norms, biases) SLM_ADAMW_TRAIN, panel padding SLM_ADAMW_FROZEN;
   with freeze_zeros, matrix entries that are exactly 0 now (pruned) SLM_ADAMW_FROZEN.
   *n_frozen (may be NULL) gets the number of frozen real weights. */
int slm_adamw_mask_model(slm_adamw *a, const slm_model *m, int freeze_zeros, int64_t *n_frozen, slm_err *err);

/* One update of params (n) from grads (n) (not modified). grad_scale multiplies the gradient
   before clipping: 1/k after k accumulated micro-batches whose losses were means. SLM_E_DATA
   (and no update, step unchanged) when the gradient norm is not finite. */
int slm_adamw_step(slm_adamw *a, float *params, const float *grads, float grad_scale, slm_err *err);

#endif
