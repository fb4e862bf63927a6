/* cmd_eval.c - `slm eval MODEL --text FILE [--ctx N] [--convention second-half|all] [--ref REF]
 * [--json] [--report-dir D]`: perplexity of a model, and its KL divergence from a reference.
 *
 * Pipeline: open the model (and the reference) -> token ids (tokenize the text with the
 * reference's, else the model's tokenizer, or read --tokens-in) -> build -> model/eval ->
 * summary on stderr, JSON on stdout (the report's schema), report folder.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/afile.h"
#include "core/mapfile.h"
#include "core/mem.h"
#include "core/slm.h"
#include "core/thread.h"
#include "formats/model_src.h"
#include "formats/token_ids.h"
#include "model/eval.h"
#include "model/tokenizer.h"
#include "model/transformer.h"
#include "msg.h"
#include "opts.h"
#include "quantize/recipe.h"
#include "report/report.h"

typedef struct eval_opts {
    const char *text, *tokens_in, *dump_tokens, *dump_nll, *ref, *report_dir;
    long ctx, chunks;
    int convention, numerics, json;
} eval_opts;

static const opt_choice k_conventions[] = {{"second-half", SLM_PPL_SECOND_HALF}, {"all", SLM_PPL_ALL}, {NULL, 0}};
static const opt_choice k_numerics[] = {{"f32", SLM_NUMERICS_F32}, {"ggml", SLM_NUMERICS_GGML}, {NULL, 0}};

static const opt k_opts[] = {
    {"--text", NULL, OPT_STR, OPT_OF(eval_opts, text), "FILE",
     "text to score, tokenized with the model's tokenizer (the reference's\nwith --ref), as llama.cpp's perplexity tool does",
     0, 0, NULL, NULL},
    {"--tokens-in", NULL, OPT_STR, OPT_OF(eval_opts, tokens_in), "FILE",
     "score these token ids instead: little-endian int32, or whitespace-\nseparated decimal ids (llppl --dump-tokens); used as they are",
     0, 0, NULL, NULL},
    {"--dump-tokens", NULL, OPT_STR, OPT_OF(eval_opts, dump_tokens), "FILE",
     "write the ids scored, one per line (what llppl --tokens-in reads)", 0, 0, NULL, NULL},
    {"--dump-nll", NULL, OPT_STR, OPT_OF(eval_opts, dump_nll), "FILE",
     "write 'window position token nll' per scored id (as llppl --dump-nll)", 0, 0, NULL, NULL},
    {"--ctx", "-c", OPT_INT, OPT_OF(eval_opts, ctx), "N", "window length [512, llama-perplexity's default]", 2, 1 << 20, NULL,
     NULL},
    {"--convention", NULL, OPT_CHOICE, OPT_OF(eval_opts, convention), NULL,
     "second-half (default): llama-perplexity's windows of N ids of the\nBOS-prefixed stream, first id replaced by BOS, the "
     "second half scored;\nall: windows of BOS + N-1 ids of the stream (no BOS), every id scored",
     0, 0, k_conventions, NULL},
    {"--chunks", NULL, OPT_INT, OPT_OF(eval_opts, chunks), "K", "score at most K windows", 1, 9.2e18, NULL, NULL},
    {"--ref", NULL, OPT_STR, OPT_OF(eval_opts, ref), "REF_MODEL", "also report KL(ref || model), top-1 agreement and delta PPL", 0,
     0, NULL, NULL},
    {"--numerics", NULL, OPT_CHOICE, OPT_OF(eval_opts, numerics), NULL,
     "f32 (default): f32 activations and KV cache, weights as dequantized;\nggml: round as llama.cpp's CPU backend does "
     "(activations to each\nweight's Q8_0/Q8_K/F16 dot type, F16 KV cache, F16 flash attention)",
     0, 0, k_numerics, NULL},
    {"--json", NULL, OPT_FLAG, OPT_OF(eval_opts, json), NULL, "the result on stdout as JSON: the report's object (report.json)", 0,
     0, NULL, NULL},
    {"--report-dir", NULL, OPT_STR, OPT_OF(eval_opts, report_dir), "DIR", "write DIR/report.json, report.md and report.html", 0,
     0, NULL, NULL},
};

static const cmd_spec k_spec = {
    "eval", "MODEL (--text FILE | --tokens-in FILE) [--ctx N] [--convention second-half|all]\n"
            "                [--ref REF_MODEL] [--json] [--report-dir DIR] [options]",
    "Perplexity of MODEL (a Hugging Face folder or a GGUF, any type slm reads) on a text, and\n"
    "with --ref its KL divergence from a reference model on the same token ids.",
    k_opts, SLM_ARRAY_LEN(k_opts), 1, 1, "MODEL",
    "The summary goes to stderr (with --json only on a terminal or with -v); -f overwrites\n"
    "existing report and dump files.", 0,
};

/* ---------------------------------------------------------------------------------------------
 * token ids and the NLL dump */

/* "window position token nll" per scored id, positions as llppl numbers them (of the target) */
static int write_nll_file(slm_outset *os, const char *path, const slm_ppl_result *p, const int32_t *ids,
                          const slm_eval_opts *o, slm_err *err) {
    slm_afile *f = NULL;
    SLM_TRY(slm_outset_open(os, path, &f, err));
    int n_score = slm_eval_scored_per_window(o), first = slm_eval_first_target(o), rc = SLM_OK;
    char line[96];
    for (int64_t k = 0; !rc && k < p->n_chunks; k++)
        for (int j = 0; !rc && j < n_score; j++) {
            int pos = first + j;
            int32_t tok = ids[slm_eval_stream_index(o, k, pos)];
            int n = snprintf(line, sizeof line, "%lld %d %d %.9f\n", (long long)k, pos, tok, p->token_nll[k * n_score + j]);
            rc = slm_afile_write(f, line, (size_t)n, err);
        }
    return rc;
}

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

/* ---------------------------------------------------------------------------------------------
 * output */

static void progress(void *ud, int64_t done, int64_t total) {
    (void)ud;
    msg_progress("eval", (double)done / (double)total);
}

typedef struct eval_run {
    const char *model, *ref, *input;
    const slm_src *src, *rsrc; /* the model's, the reference's (or NULL) */
    int ctx, convention, threads, numerics;
    int64_t n_ids;
    double seconds, tok_per_s, peak_rss;
    const slm_ppl_result *ppl; /* the model's */
    const slm_kl_result *kl;   /* or NULL */
} eval_run;

static void print_summary(const eval_run *e, FILE *f) {
    const slm_ppl_result *p = e->ppl;
    char rss[32];
    fprintf(f, "%s: PPL %.4f +/- %.5f (mean NLL %.6f) over %lld tokens: %lld windows of %d, convention %s\n", e->model,
            p->ppl, p->ppl_err, p->mean_nll, (long long)p->scored, (long long)p->n_chunks, e->ctx,
            slm_ppl_convention_name(e->convention));
    if (e->kl) {
        const slm_kl_result *k = e->kl;
        fprintf(f, "  reference %s: PPL %.4f +/- %.5f; PPL - PPL(ref) %+.5f +/- %.5f (%+.3f%%)\n", e->ref, k->ref.ppl,
                k->ref.ppl_err, k->dppl, k->dppl_err, 100.0 * k->dppl / k->ref.ppl);
        fprintf(f, "  KL(ref||model): mean %.6f +/- %.6f, median %.6f, p99 %.6f, max %.6f; same top token %.3f%% +/- %.3f%%\n",
                k->kld_mean, k->kld_mean_err, k->kld_median, k->kld_p99, k->kld_max, 100.0 * k->top1, 100.0 * k->top1_err);
    }
    fprintf(f, "  %.2f s, %.0f tokens/s, %d threads, peak RSS %s\n", e->seconds, e->tok_per_s, e->threads,
            slm_fmt_bytes(rss, sizeof rss, e->peak_rss));
}

static void fill_report(slm_report *r, const eval_run *e, const slm_model *m, double total_seconds) {
    snprintf(r->command, sizeof r->command, "eval");
    snprintf(r->version, sizeof r->version, "%s", SLM_VERSION);
    snprintf(r->model, sizeof r->model, "%s", e->model);
    snprintf(r->model_name, sizeof r->model_name, "%s", e->src->name);
    const slm_ftype_desc *ft = e->src->file_type >= 0 ? slm_ftype_by_id(e->src->file_type) : NULL;
    if (ft) snprintf(r->ftype, sizeof r->ftype, "%s", ft->name);
    r->threads = e->threads;
    r->seconds = total_seconds;
    r->peak_rss_bytes = e->peak_rss;
    r->out_bytes = e->src->total_bytes; /* the model evaluated; its source is the reference, if any */
    r->src_bytes = e->rsrc ? e->rsrc->total_bytes : 0;
    r->n_params = m->n_params;
    r->bpw = m->n_params ? 8.0 * (double)e->src->total_bytes / (double)m->n_params : 0;
    slm_report_eval *v = &r->eval;
    v->present = 1;
    snprintf(v->text, sizeof v->text, "%s", e->input);
    snprintf(v->convention, sizeof v->convention, "%s", slm_ppl_convention_name(e->convention));
    snprintf(v->numerics, sizeof v->numerics, "%s", e->numerics == SLM_NUMERICS_GGML ? "ggml" : "f32");
    v->ctx = e->ctx;
    v->tokens = e->n_ids;
    v->nll_sum = e->ppl->nll_sum;
    v->n_chunks = e->ppl->n_chunks;
    v->scored = e->ppl->scored;
    v->mean_nll = e->ppl->mean_nll;
    v->ppl = e->ppl->ppl;
    v->ppl_err = e->ppl->ppl_err;
    v->tok_per_s = e->tok_per_s;
    if (e->kl) {
        const slm_kl_result *k = e->kl;
        v->has_ref = 1;
        snprintf(v->ref, sizeof v->ref, "%s", e->ref);
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
}

/* ---------------------------------------------------------------------------------------------
 * the command */

/* What one evaluation holds: the model(s), the tokenizer, the ids and the results. */
typedef struct eval_state {
    slm_src src, rsrc;
    slm_tokenizer tok;
    slm_model m, rm;
    int32_t *ids;
    int64_t n_ids;
    int32_t bos;
    slm_ppl_result ppl;
    slm_kl_result kl;
    slm_report rep;
    cli_outputs outs;
} eval_state;

static void eval_state_free(eval_state *s) {
    cli_outputs_abort(&s->outs); /* nothing left unless committed */
    slm_tokenizer_free(&s->tok);
    slm_report_free(&s->rep);
    slm_kl_result_free(&s->kl);
    slm_ppl_result_free(&s->ppl);
    slm_free(s->ids);
    slm_model_free(&s->rm);
    slm_model_free(&s->m);
    slm_src_close(&s->rsrc);
    slm_src_close(&s->src);
}

/* The ids to score: the text tokenized with the reference's (else the model's) tokenizer, BOS
   as llama.cpp uses it (the vocab's when it adds one, config.json's without a vocab), or the
   ids of --tokens-in; every id checked against both vocabularies. */
static int load_ids(eval_state *s, const eval_opts *o, slm_err *err) {
    const slm_src *tsrc = o->ref ? &s->rsrc : &s->src; /* whose tokenizer (llkld: the reference's) */
    const char *what = o->text ? o->text : o->tokens_in;
    s->bos = tsrc->cfg.bos_id;
    if (tsrc->vocab.kind != SLM_VOCAB_NONE) {
        SLM_TRY(slm_tokenizer_build(&s->tok, &tsrc->vocab, err));
        s->bos = slm_tokenizer_bos(&s->tok);
    } else if (o->text) {
        return slm_errf(err, SLM_E_UNSUPPORTED, "%s: has no tokenizer (use --tokens-in)", tsrc->name);
    }
    if (o->text) SLM_TRY(tokenize_file(&s->tok, o->text, o->convention == SLM_PPL_SECOND_HALF, &s->ids, &s->n_ids, err));
    else SLM_TRY(slm_ids_read(o->tokens_in, &s->ids, &s->n_ids, err));
    for (int64_t i = 0; i < s->n_ids; i++)
        if (s->ids[i] < 0 || s->ids[i] >= s->src.cfg.n_vocab || (o->ref && s->ids[i] >= s->rsrc.cfg.n_vocab))
            return slm_errf(err, SLM_E_DATA, "%s: token %lld is id %d, outside the vocabulary of %d", what, (long long)i,
                            s->ids[i], s->src.cfg.n_vocab);
    return o->dump_tokens ? slm_ids_write(&s->outs.set, o->dump_tokens, s->ids, s->n_ids, err) : SLM_OK;
}

/* Opens the model(s), reads the ids, builds the transformer(s). */
static int load(eval_state *s, const char *in, const eval_opts *o, slm_err *err) {
    SLM_TRY(slm_src_open(&s->src, in, err));
    if (o->ref) SLM_TRY(slm_src_open(&s->rsrc, o->ref, err));
    if (o->ref && s->rsrc.cfg.n_vocab != s->src.cfg.n_vocab)
        return slm_errf(err, SLM_E_ARG, "%s: vocabulary of %d tokens, the reference %s has %d", in, s->src.cfg.n_vocab, o->ref,
                        s->rsrc.cfg.n_vocab);
    SLM_TRY(load_ids(s, o, err));
    if (s->src.cfg.n_ctx_train > 0 && o->ctx > s->src.cfg.n_ctx_train)
        msg_warn("%s: --ctx %ld is longer than the %d positions the model was trained on", in, o->ctx, s->src.cfg.n_ctx_train);
    /* windows per forward: the numbers never depend on it; fewer windows than that, fewer slots */
    const int64_t n_win = s->n_ids / (o->ctx > 1 ? o->ctx - 1 : 1) + 1;
    int batch = (int)SLM_MIN((int64_t)slm_eval_batch((int)o->ctx, s->src.cfg.n_vocab), n_win);
    if (o->chunks > 0 && o->chunks < batch) batch = (int)o->chunks;
    SLM_TRY(cli_model_build(&s->src, &s->m, batch, (int)o->ctx, err));
    if (o->ref) SLM_TRY(cli_model_build(&s->rsrc, &s->rm, batch, (int)o->ctx, err));
    s->m.numerics = s->rm.numerics = o->numerics;
    return SLM_OK;
}

static slm_eval_opts eval_opts_of(const char *in, const eval_opts *o, int32_t bos) {
    return (slm_eval_opts){.ctx = (int)o->ctx, .convention = o->convention, .bos_id = bos, .max_chunks = o->chunks,
                           .keep_token_nll = o->dump_nll != NULL, .progress = progress, .model_name = in,
                           .ref_name = o->ref, .text_name = o->text ? o->text : o->tokens_in};
}

/* Scores, then the summary, the JSON (the report's schema), the NLL dump and the report folder. */
static int run(eval_state *s, const char *in, const eval_opts *o, double t0, slm_err *err) {
    slm_eval_opts eo = eval_opts_of(in, o, s->bos);
    double t1 = cli_now();
    int rc = o->ref ? slm_eval_kl(&s->rm, &s->m, s->ids, s->n_ids, &eo, &s->kl, err)
                    : slm_eval_ppl(&s->m, s->ids, s->n_ids, &eo, &s->ppl, err);
    msg_progress_done();
    if (rc) return rc;
    const slm_ppl_result *p = o->ref ? &s->kl.model : &s->ppl;
    eval_run e = {.model = in, .ref = o->ref, .input = o->text ? o->text : o->tokens_in, .src = &s->src,
                  .rsrc = o->ref ? &s->rsrc : NULL, .ctx = (int)o->ctx,
                  .convention = o->convention, .threads = slm_threads_get(), .numerics = o->numerics, .n_ids = s->n_ids,
                  .seconds = cli_now() - t1, .peak_rss = cli_peak_rss(), .ppl = p, .kl = o->ref ? &s->kl : NULL};
    e.tok_per_s = e.seconds > 0 ? (double)p->n_chunks * (double)o->ctx / e.seconds : 0;
    if (msg_show_summary() || (!o->json && g_msg.verbosity >= 1)) print_summary(&e, stderr);
    fill_report(&s->rep, &e, &s->m, cli_now() - t0);
    if (o->json) { /* the report's schema: the same keys as report.json */
        char *js = slm_report_json_string(&s->rep);
        if (!js) return slm_errf(err, SLM_E_NOMEM, "rendering the JSON report: out of memory");
        printf("%s\n", js);
        fflush(stdout);
        free(js);
    }
    if (o->dump_nll) SLM_TRY(write_nll_file(&s->outs.set, o->dump_nll, p, s->ids, &eo, err));
    if (o->report_dir) SLM_TRY(slm_report_write_dir(&s->outs.set, &s->rep, 1, o->report_dir, err));
    return cli_outputs_commit(&s->outs, err);
}

/* What parsing cannot check alone; output files refused before any work. */
static int check_opts(const char *in, const eval_opts *o, cli_outputs *outs) {
    if (!o->text == !o->tokens_in)
        return msg_usage_error(o->text ? "--text and --tokens-in exclude each other" : "missing --text FILE (or --tokens-in FILE)");
    if (o->convention == SLM_PPL_SECOND_HALF && o->ctx < 4) return msg_usage_error("--ctx: must be at least 4 for second-half");
    cli_outputs_input(outs, in);
    cli_outputs_input(outs, o->ref);
    cli_outputs_input(outs, o->text ? o->text : o->tokens_in);
    if (cli_outputs_add(outs, o->dump_tokens) || cli_outputs_add(outs, o->dump_nll) ||
        cli_outputs_add_report_dir(outs, o->report_dir, 1))
        return EXIT_FAIL;
    return EXIT_OK;
}

int cmd_eval(int argc, char **argv) {
    eval_opts o = {.ctx = 512, .convention = SLM_PPL_SECOND_HALF, .numerics = SLM_NUMERICS_F32};
    common_opts co = {0};
    const char *pos[1];
    int n_pos, rc;
    if (opts_parse(&k_spec, argc, argv, &o, &co, pos, &n_pos)) return EXIT_USAGE;
    if (co.help) return EXIT_OK;
    slm_err err = {0};
    static eval_state s; /* large (the outputs' paths): not on the stack */
    memset(&s, 0, sizeof s);
    cli_outputs_init(&s.outs, co.force);
    if ((rc = check_opts(pos[0], &o, &s.outs))) return rc;
    slm_threads_set((int)co.threads);
    double t0 = cli_now();
    rc = load(&s, pos[0], &o, &err);
    if (!rc) rc = run(&s, pos[0], &o, t0, &err);
    eval_state_free(&s);
    return rc ? cli_fail(&err) : EXIT_OK;
}
