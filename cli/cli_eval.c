/* cli_eval.c - one evaluation (cli_eval.h): the pipeline `slm eval` runs, shared with the
 * commands that check quality gates on their output. */
#include "cli_eval.h"

#include <stdio.h>
#include <string.h>

#include "core/mapfile.h"
#include "core/mem.h"
#include "core/slm.h"
#include "formats/token_ids.h"
#include "msg.h"

/* Tokenizes a whole text file with tok (llama.cpp's perplexity: one string, BOS as the vocab
   says when add_special). */
static int tokenize_file(const slm_tokenizer *tok, const char *path, int add_special, int32_t **ids, int64_t *n_ids,
                         slm_err *err) {
    slm_map mp = {0};
    size_t n = 0;
    SLM_TRY(slm_map_open(&mp, path, err));
    int rc = slm_tokenize(tok, mp.data ? (const char *)mp.data : "", mp.size, add_special, ids, &n, err);
    if (rc) slm_err_prefix(err, "%s", path);
    *n_ids = (int64_t)n;
    slm_map_close(&mp);
    return rc;
}

static void progress(void *ud, int64_t done, int64_t total) {
    (void)ud;
    msg_progress("eval", (double)done / (double)total);
}

void cli_eval_free(cli_eval *s) {
    slm_tokenizer_free(&s->tok);
    slm_kl_result_free(&s->kl);
    slm_ppl_result_free(&s->ppl);
    slm_free(s->ids);
    slm_model_free(&s->rm);
    slm_model_free(&s->m);
    slm_src_close(&s->rsrc);
    slm_src_close(&s->src);
    memset(s, 0, sizeof *s);
}

/* The ids to score: the text tokenized with the reference's (else the model's) tokenizer, BOS
   as llama.cpp uses it (the vocab's when it adds one, config.json's without a vocab), or the
   ids of --tokens-in; every id checked against both vocabularies. */
static int load_ids(cli_eval *s, const cli_eval_args *a, slm_err *err) {
    const slm_src *tsrc = a->ref ? &s->rsrc : &s->src; /* whose tokenizer (llkld: the reference's) */
    const char *what = a->text ? a->text : a->tokens_in;
    s->bos = tsrc->cfg.bos_id;
    if (tsrc->vocab.kind != SLM_VOCAB_NONE) {
        SLM_TRY(slm_tokenizer_build(&s->tok, &tsrc->vocab, err));
        s->bos = slm_tokenizer_bos(&s->tok);
    } else if (a->text) {
        return slm_errf(err, SLM_E_UNSUPPORTED, "%s: has no tokenizer (use --tokens-in)", tsrc->name);
    }
    if (a->text) SLM_TRY(tokenize_file(&s->tok, a->text, a->convention == SLM_PPL_SECOND_HALF, &s->ids, &s->n_ids, err));
    else SLM_TRY(slm_ids_read(a->tokens_in, &s->ids, &s->n_ids, err));
    for (int64_t i = 0; i < s->n_ids; i++)
        if (s->ids[i] < 0 || s->ids[i] >= s->src.cfg.n_vocab || (a->ref && s->ids[i] >= s->rsrc.cfg.n_vocab))
            return slm_errf(err, SLM_E_DATA, "%s: token %lld is id %d, outside the vocabulary of %d", what, (long long)i,
                            s->ids[i], s->src.cfg.n_vocab);
    return SLM_OK;
}

int cli_eval_load(cli_eval *s, const cli_eval_args *a, slm_err *err) {
    SLM_TRY(cli_src_open(&s->src, a->model, err));
    if (a->ref) SLM_TRY(cli_src_open(&s->rsrc, a->ref, err));
    if (a->ref && s->rsrc.cfg.n_vocab != s->src.cfg.n_vocab)
        return slm_errf(err, SLM_E_ARG, "%s: vocabulary of %d tokens, the reference %s has %d", a->model, s->src.cfg.n_vocab,
                        a->ref, s->rsrc.cfg.n_vocab);
    SLM_TRY(load_ids(s, a, err));
    if (s->src.cfg.n_ctx_train > 0 && a->ctx > s->src.cfg.n_ctx_train)
        msg_warn("%s: --ctx %ld is longer than the %d positions the model was trained on", a->model, a->ctx,
                 s->src.cfg.n_ctx_train);
    /* windows per forward: the numbers never depend on it; fewer windows than that, fewer slots */
    const int64_t n_win = s->n_ids / (a->ctx > 1 ? a->ctx - 1 : 1) + 1;
    int batch = (int)SLM_MIN((int64_t)slm_eval_batch((int)a->ctx, s->src.cfg.n_vocab), n_win);
    if (a->chunks > 0 && a->chunks < batch) batch = (int)a->chunks;
    SLM_TRY(cli_model_build(&s->src, &s->m, batch, (int)a->ctx, a->numerics, err));
    if (a->ref) SLM_TRY(cli_model_build(&s->rsrc, &s->rm, batch, (int)a->ctx, a->numerics, err));
    return SLM_OK;
}

slm_eval_opts cli_eval_opts(const cli_eval *s, const cli_eval_args *a) {
    return (slm_eval_opts){.ctx = (int)a->ctx, .convention = a->convention, .bos_id = s->bos, .max_chunks = a->chunks,
                           .keep_token_nll = a->keep_nll, .progress = progress, .model_name = a->model,
                           .ref_name = a->ref, .text_name = a->text ? a->text : a->tokens_in};
}

int cli_eval_score(cli_eval *s, const cli_eval_args *a, slm_err *err) {
    slm_eval_opts eo = cli_eval_opts(s, a);
    double t1 = cli_now();
    int rc = a->ref ? slm_eval_kl(&s->rm, &s->m, s->ids, s->n_ids, &eo, &s->kl, err)
                    : slm_eval_ppl(&s->m, s->ids, s->n_ids, &eo, &s->ppl, err);
    msg_progress_done();
    s->seconds = cli_now() - t1;
    return rc;
}

const slm_ppl_result *cli_eval_ppl(const cli_eval *s, const cli_eval_args *a) { return a->ref ? &s->kl.model : &s->ppl; }

static void fill_kl(const slm_kl_result *k, slm_report_eval *v) {
    v->has_ref = 1;
    v->ref_mean_nll = k->ref.mean_nll;
    v->ref_ppl = k->ref.ppl;
    v->ref_ppl_err = k->ref.ppl_err;
    v->dppl = k->dppl;
    v->dppl_err = k->dppl_err;
    v->ln_ppl_ratio = k->ln_ratio;
    v->ln_ppl_ratio_err = k->ln_ratio_err;
    v->kld_mean = k->kld_mean;
    v->kld_mean_err = k->kld_mean_err;
    v->kld_median = k->kld_median;
    v->kld_p90 = k->kld_p90;
    v->kld_p99 = k->kld_p99;
    v->kld_p999 = k->kld_p999;
    v->kld_max = k->kld_max;
    v->top1 = k->top1;
    v->top1_err = k->top1_err;
    v->rms_dp = k->rms_dp;
    v->rms_dp_err = k->rms_dp_err;
    v->mean_dp = k->mean_dp;
    v->max_dp = k->max_dp;
}

void cli_eval_fill(const cli_eval *s, const cli_eval_args *a, slm_report_eval *v) {
    const slm_ppl_result *p = cli_eval_ppl(s, a);
    v->present = 1;
    snprintf(v->text, sizeof v->text, "%s", a->text ? a->text : a->tokens_in);
    snprintf(v->convention, sizeof v->convention, "%s", slm_ppl_convention_name(a->convention));
    snprintf(v->numerics, sizeof v->numerics, "%s", a->numerics == SLM_NUMERICS_GGML ? "ggml" : "f32");
    v->ctx = (int)a->ctx;
    v->tokens = s->n_ids;
    v->nll_sum = p->nll_sum;
    v->n_chunks = p->n_chunks;
    v->scored = p->scored;
    v->mean_nll = p->mean_nll;
    v->ppl = p->ppl;
    v->ppl_err = p->ppl_err;
    v->tok_per_s = s->seconds > 0 ? (double)p->n_chunks * (double)a->ctx / s->seconds : 0;
    v->packed_bytes = s->src.kind == SLM_SRC_PACK ? (int64_t)s->src.pack.map.size : 0;
    if (a->ref) {
        snprintf(v->ref, sizeof v->ref, "%s", a->ref);
        fill_kl(&s->kl, v);
    }
}

int cli_eval_into(const cli_eval_args *a, slm_report_eval *v, slm_err *err) {
    static cli_eval s; /* large: not on the stack */
    memset(&s, 0, sizeof s);
    int rc = cli_eval_load(&s, a, err);
    if (!rc) rc = cli_eval_score(&s, a, err);
    if (!rc) cli_eval_fill(&s, a, v);
    cli_eval_free(&s);
    return rc;
}
