/* awq.h - AWQ's per-channel scale search (Lin et al. 2023, "Activation-aware Weight Quantization")
 * for one linear group: the weights that read the same input X (q/k/v after attn_norm, gate/up
 * after ffn_norm, o after v, down after up).
 *
 * For alpha on a grid over [0, 1], s = E|x|^alpha (normalized so that max(s) * min(s) = 1), every
 * weight of the group is quantized as Q(W diag(s)) with its planned type and importance weights
 * E[x^2] / s^2 (the imatrix of the scaled input x / s), and scored by the output error on the
 * calibration activations, sum over rows of dw G dw^T with dw = Q(W diag(s)) diag(1/s) - W and
 * G = E[x x^T] (the Gram matrix; its diagonal E[x^2] when there is none). alpha = 0 (s = 1) is
 * the plain quantization, so the chosen scales never score worse. The caller folds the scales:
 * columns of the group's weights times s, the producer (RMSNorm weight, v rows, up rows)
 * divided by s, which leaves the float model's output unchanged.
 * Scales may be tied across columns (GQA: o's columns of the query heads sharing a kv head take
 * the v row's scale): s[j] = s_red[tie[j]].
 * Must not: read files, print. Deterministic for any thread count.
 */
#ifndef SLM_AWQ_H
#define SLM_AWQ_H

#include <stdint.h>

#include "core/err.h"
#include "quantize/method.h"

#define SLM_AWQ_MAX_W 4

typedef struct slm_awq_weight {
    const float *w;          /* (rows, n) row-major: the rows to score (a sample of the tensor's) */
    int64_t rows;
    int type;                /* the tensor's output type (slm_dtype) */
    const float *imatrix;    /* (n) importance weights of the unscaled input, or NULL */
} slm_awq_weight;

typedef struct slm_awq_group {
    int64_t n;               /* input width: columns of every weight */
    int64_t count;           /* rows of X summed in the statistics (> 0) */
    const float *sum2;       /* (n) sum of x^2 */
    const double *abs_sum;   /* (n) sum of |x|, or NULL: sqrt(E[x^2]) stands in for E|x| */
    const double *gram;      /* (n, n) X^T X, or NULL: diagonal */
    int64_t n_red;           /* 0: untied; else scales live in n_red values, s[j] = s_red[tie[j]] */
    const int32_t *tie;      /* (n) */
    int n_w;
    slm_awq_weight w[SLM_AWQ_MAX_W];
} slm_awq_group;

typedef struct slm_awq_result {
    double alpha;            /* chosen */
    double err_base, err;    /* output error at alpha = 0 and at alpha */
} slm_awq_result;

/* Searches alpha over p->awq_grid + 1 points (p->awq_alpha >= 0: takes that one, scores nothing) and writes the scales: s (n) and, when tied,
   s_red (n_red; may be NULL when untied). SLM_E_ARG for a malformed group, SLM_E_NOMEM. */
int slm_awq_search(const slm_awq_group *g, const slm_qmethod_params *p, float *s, float *s_red, slm_awq_result *res,
                   slm_err *err);

/* The output error of quantizing the group's weights with scales s (n; NULL: 1), as scored by
   the search. Exported for the tests. */
int slm_awq_score(const slm_awq_group *g, const float *s, double *out, slm_err *err);

/* Optional clipping: per weight k of the group, the ratio c (1 = none; 0.975 ... 0.75) with the
   lowest output error when each row of W diag(s) is clamped to +-c max|row| before quantizing. */
int slm_awq_clip_search(const slm_awq_group *g, const float *s, float *clip, slm_err *err);
/* Clamps v (n values) to +-clip * max|v| (clip >= 1: unchanged). */
void slm_awq_clip_row(float *v, int64_t n, float clip);

/* Rows of a tensor of n columns that the search scores: all when rows * n^2 <= flops (or flops
   <= 0), else that many (at least 16), evenly spaced: row k of the sample is k * rows / m. */
int64_t slm_awq_sample_rows(int64_t rows, int64_t n, long flops);

#endif
