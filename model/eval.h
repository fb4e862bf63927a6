/* eval.h - what a model costs in quality, on token ids: perplexity, KL divergence against a
 * reference model, and greedy generation.
 *
 * Owns: the evaluation windows of both perplexity conventions, the per-token statistics and
 * their summaries with llama-perplexity's formulas (tools/perplexity/perplexity.cpp; the
 * same as the workshop's llppl/llkld drivers), and the greedy decoding loop.
 * Must not: tokenize, read files, time or print; results do not depend on the thread count.
 *
 * Conventions (ids are one token stream; C = opts.ctx):
 *   SLM_PPL_ALL ("all"): the fixtures' "stream" protocol. ids carry no BOS; window k is
 *     [BOS] + ids[k(C-1) .. (k+1)(C-1)) and every one of its C-1 ids is scored (the first
 *     one given BOS only); the tail is dropped. Without a BOS (bos_id < 0) window k is
 *     ids[kC .. (k+1)C) and its last C-1 ids are scored.
 *   SLM_PPL_SECOND_HALF ("second-half"): llama-perplexity's default. ids are the stream as
 *     llama.cpp tokenizes it (BOS first when the vocab adds one); window k is
 *     ids[kC .. (k+1)C) with its first id replaced by BOS (when bos_id >= 0); the logits at
 *     positions C/2 .. C-2 score ids C/2+1 .. C-1 (C-1-C/2 per window).
 * NLL = -log softmax(logits)[next id], log-softmax in double (expf(x - max) summed in double);
 * PPL = exp(mean NLL); the "+/-" of PPL is ppl * sqrt((E[nll^2] - E[nll]^2) / (n - 1)).
 */
#ifndef SLM_EVAL_H
#define SLM_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "model/transformer.h"

typedef enum slm_ppl_convention {
    SLM_PPL_ALL = 1,
    SLM_PPL_SECOND_HALF = 2,
} slm_ppl_convention;

/* "all" / "second-half"; parse returns 0 for an unknown name. */
const char *slm_ppl_convention_name(int convention);
int slm_ppl_convention_parse(const char *name);

/* Called after each window (from the calling thread). */
typedef void (*slm_eval_progress_fn)(void *ud, int64_t windows_done, int64_t n_windows);

typedef struct slm_eval_opts {
    int ctx;                       /* window length C: 2 <= C ("all"), 4 <= C ("second-half"); <= max_ctx */
    int convention;                /* slm_ppl_convention */
    int32_t bos_id;                /* -1: the vocab adds no BOS */
    int64_t max_chunks;            /* score at most this many windows; 0: all */
    int keep_token_nll;            /* fill slm_ppl_result.token_nll */
    slm_eval_progress_fn progress; /* or NULL */
    void *progress_ud;
    /* names for messages (file paths), NULL: "the model", "the reference", "the text" */
    const char *model_name, *ref_name, *text_name;
} slm_eval_opts;

/* Windows to evaluate per forward call for a context of ctx tokens (build the model(s) with
   this max_batch): each call then serves >= 1024 tokens per weight panel, logits < 256 MiB.
   slm_eval_ppl/kl use min(max_batch of the models, this many); the numbers do not depend on it. */
int slm_eval_batch(int ctx, int n_vocab);

/* Ids scored per window; the window position of the first scored id (scored ids are positions
   first .. ctx-1, each predicted from the position before it); the index in the id stream of
   window k's position pos (what --dump-nll prints beside each loss). */
int slm_eval_scored_per_window(const slm_eval_opts *o);
int slm_eval_first_target(const slm_eval_opts *o);
int64_t slm_eval_stream_index(const slm_eval_opts *o, int64_t k, int pos);

typedef struct slm_ppl_result {
    int64_t n_chunks, scored;
    double nll_sum, nll2_sum;  /* sums over scored ids of nll and nll^2 */
    double mean_nll, ppl, ppl_err;
    double *chunk_nll;         /* (n_chunks) NLL sum of each window; owned */
    double *token_nll;         /* (scored) NLL of each scored id, window by window, when asked; owned */
} slm_ppl_result;

/* SLM_E_ARG: bad ctx/convention, ids outside the vocabulary; SLM_E_DATA: fewer ids than one window. */
int slm_eval_ppl(slm_model *m, const int32_t *ids, int64_t n_ids, const slm_eval_opts *o, slm_ppl_result *r,
                 slm_err *err);
void slm_ppl_result_free(slm_ppl_result *r);

/* KL(ref || model) per scored id over the full vocabulary, on the same windows. */
typedef struct slm_kl_result {
    slm_ppl_result model, ref;       /* perplexity of both on the same ids */
    double ln_ratio, ln_ratio_err;   /* mean ln(PPL / PPL_ref) = mean(nll - nll_ref) */
    double dppl, dppl_err;           /* PPL - PPL_ref, error with the covariance of the two */
    double kld_mean, kld_mean_err, kld_median, kld_p90, kld_p99, kld_p999, kld_max;
    double top1, top1_err;           /* fraction of ids where both argmaxes agree */
    double rms_dp, rms_dp_err, mean_dp, max_dp; /* delta p of the next id (llama-perplexity's) */
} slm_kl_result;

/* Both models need the same vocabulary size (SLM_E_ARG otherwise) and max_ctx >= ctx. */
int slm_eval_kl(slm_model *ref, slm_model *m, const int32_t *ids, int64_t n_ids, const slm_eval_opts *o,
                slm_kl_result *r, slm_err *err);
void slm_kl_result_free(slm_kl_result *r);

/* Greedy decoding: argmax of the logits, ties to the lowest id. */
typedef struct slm_gen_opts {
    int n_gen;                   /* tokens to generate */
    const int32_t *stop;         /* stop after generating one of these (it is kept in out) */
    int n_stop;
    void (*on_token)(void *ud, int32_t id); /* or NULL: called for each generated id */
    void *ud;
} slm_gen_opts;

/* Runs the prompt in one batched call, then one token per call through the KV cache.
   out holds n_gen ids; *n_out is how many were generated. Needs n_prompt + n_gen - 1 <=
   max_ctx (SLM_E_ARG otherwise), n_prompt >= 1. */
int slm_generate_greedy(slm_model *m, const int32_t *prompt, int n_prompt, const slm_gen_opts *o, int32_t *out,
                        int *n_out, slm_err *err);

#endif
