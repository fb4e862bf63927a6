/* train.h - training the reference transformer: gradients of every parameter (llm.c's
 * train_gpt2.c, backward part).
 *
 * Owns: slm_train, i.e. ONE flat gradient buffer laid out exactly like the model's
 * params_memory (same size table and pointer table: a panel-packed matrix's gradient is packed
 * the same way, padding rows included and always 0, so an optimizer walks params and grads with
 * one index), the gradient scratch of the activations, the tokens and logits of the last
 * training forward, and the model backward: straight-line code over the `*_backward` kernels
 * of model/layer_*.c, mirroring transformer.c's forward.
 * Must not: print, read files, change the forward (it reads the activations the forward kept),
 * or run anything in parallel itself (the kernels do).
 *
 * Usage (one step with gradient accumulation over micro-batches; distill/ has the losses and
 * AdamW):
 *   slm_model m = {0};  slm_model_build_batch(&m, &cfg, &src, B, T, SLM_BUILD_KEEP_ACTS, &err);
 *   slm_train tr = {0}; slm_train_init(&tr, &m, &err);
 *   slm_train_zero_grad(&tr, &err);
 *   for each micro-batch:
 *       slm_train_forward(&tr, tokens, B, T, &err);           // logits in tr.logits (B, T, V)
 *       slm_train_loss_xent(&tr, targets, 1.0f, &loss, &err); // or any loss writing tr.dlogits
 *       slm_train_backward(&tr, &err);                        // grads += d loss / d params
 *   optimizer step over m.params_memory and tr.grads_memory (tr.num_parameters floats)
 *   slm_train_free(&tr); slm_model_free(&m);
 *
 * Numerics: f32 gradients with the kernels' fixed operation orders: bit-identical for any
 * thread count and for the AVX2 and scalar paths. The forward must run with
 * SLM_NUMERICS_F32 (the backward is that of the f32 computation).
 */
#ifndef SLM_TRAIN_H
#define SLM_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "model/transformer.h"

typedef struct slm_train {
    slm_model *m;            /* borrowed; built with SLM_BUILD_KEEP_ACTS, without SLM_BUILD_MAPPED */
    size_t num_parameters;   /* floats in grads_memory == m->num_parameters */
    float *grads_memory;     /* (num_parameters) allocated by the first zero_grad or backward */
    slm_model_params grads;  /* pointer table into grads_memory, as m->params (wcls == wte when tied) */

    /* gradients of activations (scratch, N = max_batch * max_ctx tokens, allocated with grads) */
    float *dacts_memory;
    float *dres;             /* (N, C) the residual stream's gradient, flowing down the layers */
    float *dln;              /* (N, C) gradient of a norm's output (ln1, ln2, lnf) */
    float *dqkv;             /* (N, QKV) of the widest layer */
    float *datty;            /* (N, H*D) */
    float *dfch;             /* (N, 2F) gate | up */
    float *dfch_swiglu;      /* (N, F) */
    float *delta;            /* (N, H) attention scratch (layers.h slm_attention_backward) */
    float *qk_raw;           /* (N, QKV) q and k before their head norms (gemma3, qwen3), else NULL */

    int B, T;                /* of the last slm_train_forward; 0 before the first */
    int32_t *tokens;         /* (max_batch * max_ctx) that forward's ids, (B, T) */
    float *logits;           /* (max_batch * max_ctx, V) its logits, (B, T, V) */
    float *dlogits;          /* (same) d loss / d logits for the backward, written by a loss */
    float *lnf_rstd_seen;    /* (N) that forward's final-norm statistics: a forward of the model
                                outside slm_train_forward in between is detected by comparing */
    double *tok_loss;        /* (N) per-token losses of slm_train_loss_xent (0 where not scored) */
    int32_t *tgt;            /* (N) scratch of slm_train_loss_xent: targets with the unscored set to 0 */
    float *dloss;            /* (N) scratch of slm_train_loss_xent: d loss / d token loss */
    const float *dhidden;    /* (L, N, C) or NULL, set by the caller: d loss / d x of each layer's output
                                (the residual stream after layer l, as the forward observer's hidden),
                                added by the backward where it passes that layer (feature losses) */
} slm_train;

/* Checks that m can be trained (keep_acts, not mapped) and allocates the forward's buffers
   (tokens, logits, dlogits). Gradients are allocated on first use. On failure tr is freed. */
int slm_train_init(slm_train *tr, slm_model *m, slm_err *err);
/* Safe on a zeroed or freed struct; does not free the model. */
void slm_train_free(slm_train *tr);

/* grads = 0 (allocating them the first time). */
int slm_train_zero_grad(slm_train *tr, slm_err *err);

/* Forward of B sequences of T tokens at positions 0 .. T-1 (tokens (B, T)), keeping every
   activation for the backward; all logits to tr->logits (B, T, V). B <= max_batch,
   T <= max_ctx; SLM_E_ARG otherwise or when the model's numerics are not SLM_NUMERICS_F32. */
int slm_train_forward(slm_train *tr, const int32_t *tokens, int B, int T, slm_err *err);

/* Cross-entropy of the last forward's logits against targets (B, T) (ids; < 0: not scored):
   *loss = mean over scored tokens of -log p[target], and tr->dlogits = scale * d loss / d logits
   (overwritten; scale 1/k for the mean over k accumulated micro-batches). SLM_E_ARG for a
   target id >= V or when no token is scored. Per-token losses in tr->tok_loss. */
int slm_train_loss_xent(slm_train *tr, const int32_t *targets, float scale, double *loss, slm_err *err);

/* grads += d loss / d params, from tr->dlogits (B, T, V) (set by a loss) and the activations
   of the last slm_train_forward. Tied embeddings collect the classifier's and the embedding's
   gradients in one tensor; q/k/v biases get theirs; removed sub-blocks have no parameters.
   SLM_E_ARG when there was no training forward, or another forward of the model ran since. */
int slm_train_backward(slm_train *tr, slm_err *err);

/* The gradient of one tensor in GGUF layout (rows of ncols), as slm_model_get_weight reads
   the weight: name is a GGUF name ("blk.0.attn_q.weight"). SLM_E_ARG when unknown or before
   gradients exist. */
int slm_train_get_grad(const slm_train *tr, const char *name, float *dst, int64_t *nrows, int64_t *ncols, slm_err *err);

/* Where a parameter tensor of the model lives in params_memory (and so in grads_memory):
   float offset and count of tensor p (SLM_P_*) of layer l (l = -1 for the global tensors
   wte, lnfw, wcls); *is_matrix for panel-packed matrices. Returns 0 when the model has no such
   tensor (removed sub-block, no bias, tied classifier). For optimizers (weight-decay groups,
   masks) and per-tensor statistics. */
int slm_train_param_range(const slm_model *m, int p, int l, size_t *off, size_t *n, int *is_matrix);

#endif
