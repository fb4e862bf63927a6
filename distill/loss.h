/* loss.h - distillation losses over logits: a divergence from the teacher's softened
 * distribution, mixed with the cross-entropy of the text, and their gradient with respect to
 * the student's logits (what model/train.h's backward starts from).
 *
 * Owns: the divergences (forward KL(teacher || student), reverse KL(student || teacher),
 * Jensen-Shannon), temperature and mixing, per-token losses, the gradient.
 * Must not: touch models or files; print.
 *
 * With p = softmax(teacher / T), q = softmax(student / T) per token:
 *   forward KL  D = sum p (log p - log q)      (Hinton et al.: mass-covering)
 *   reverse KL  D = sum q (log q - log p)      (mode-seeking; MiniLLM)
 *   JSD         D = (KL(p || m) + KL(q || m)) / 2, m = (p + q) / 2   (bounded by log 2)
 *   loss = (1 - alpha) * mean_tokens(T^2 D) + alpha * mean_scored(-log softmax(student)[target])
 * T^2 keeps the divergence's gradient the same size across temperatures (Hinton et al. 2015).
 * Everything per token is computed in double from the f32 logits; the means are summed in
 * token order, so results do not depend on the thread count.
 */
#ifndef SLM_DISTILL_LOSS_H
#define SLM_DISTILL_LOSS_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef enum slm_kd_div {
    SLM_KD_FORWARD_KL = 0, /* KL(teacher || student) */
    SLM_KD_REVERSE_KL = 1, /* KL(student || teacher) */
    SLM_KD_JSD = 2,        /* Jensen-Shannon divergence */
} slm_kd_div;

typedef struct slm_distill_loss_opts {
    int divergence;    /* slm_kd_div */
    float temperature; /* T > 0: both distributions are softmax(logits / T) in the divergence */
    float alpha;       /* weight of the cross-entropy of the text, in [0, 1]: 0 pure distillation
                          (targets unused), 1 plain fine-tuning (teacher unused) */
} slm_distill_loss_opts;

typedef struct slm_distill_loss_parts {
    double loss;     /* (1 - alpha) * kd + alpha * ce */
    double kd;       /* mean over the N tokens of T^2 D (0 when alpha == 1) */
    double ce;       /* mean over the scored tokens of -log softmax(student)[target] (0 when none) */
    int64_t n_ce;    /* scored tokens (targets >= 0) */
} slm_distill_loss_parts;

/* The loss of N tokens: student and teacher logits (N, V); targets (N) ids, < 0 for tokens
   without a cross-entropy term (teacher may be NULL when alpha == 1, targets when alpha == 0).
   dstudent (N, V), when not NULL: += grad_scale * d loss / d student (grad_scale 1/k for a
   mean over k accumulated micro-batches). Per-token T^2 D in tok_kd (N) and cross-entropies in
   tok_ce (N) when not NULL. SLM_E_ARG for bad options or ids, SLM_E_DATA when the loss is
   not finite (NaN/Inf logits), SLM_E_NOMEM. */
int slm_distill_loss(slm_distill_loss_parts *out, float *dstudent, double *tok_kd, double *tok_ce, const float *student,
                     const float *teacher, const int32_t *targets, int64_t N, int V, const slm_distill_loss_opts *o,
                     float grad_scale, slm_err *err);

/* ---- the forward KL from a teacher's top-k (the teacher cache, distill/tcache.h)
 *
 * The cache keeps, per token, the teacher's k largest logits z_S (at temperature 1),
 * L = log sum exp(z / T) over the whole row and the tail mass p_tail = sum over the other ids of
 * exp(z_i / T - L) (both in double), so p_i = exp(z_i / T - L) for i in S and p_tail are exact. The divergence is the forward KL between the (k + 1)-
 * bucket views of both distributions (the k ids, and "any other id"):
 *   D_k = sum_S p_i log(p_i / q_i) + p_tail log(p_tail / q_tail),  q_tail = 1 - sum_S q_i,
 * a lower bound of the full KL (coarse-graining never increases a divergence) that equals it
 * when k = V and when the teacher's tail is flat relative to the student's; the gradient pushes
 * each top-k q_i to p_i and scales the student's tail as a whole to p_tail (its shape inside
 * the tail is the student's own): dD_k/db_i = q_i - p_i (i in S), q_i (1 - p_tail / q_tail).
 * Only fkl (refused otherwise); alpha mixes the cross-entropy as slm_distill_loss. */
/* Top-k of one row z (V logits): ids and values, largest first (ties: lower id), log sum
   exp(z / T) of the row and the tail mass p_tail (summed over the other ids, in double). */
void slm_distill_topk(const float *z, int V, int k, double temperature, int32_t *ids, float *vals, double *lse_t, double *tail);
/* slm_distill_loss for N tokens whose teacher is top_ids / top_vals (N, k), lse_t and tail (N)
   at the options' temperature. */
int slm_distill_loss_topk(slm_distill_loss_parts *out, float *dstudent, const float *student, const int32_t *top_ids,
                          const float *top_vals, const double *lse_t, const double *tail, int k, const int32_t *targets,
                          int64_t N, int V, const slm_distill_loss_opts *o, float grad_scale, slm_err *err);

/* Name of a divergence ("forward-kl", "reverse-kl", "jsd"), and the reverse (-1 when unknown). */
const char *slm_kd_div_name(int div);
int slm_kd_div_parse(const char *name);

#endif
