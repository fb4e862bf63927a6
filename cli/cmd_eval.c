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
#include "cli_eval.h"
#include "cli_gates.h"
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
#include "report/gate.h"
#include "report/report.h"

typedef struct eval_opts {
    const char *text, *tokens_in, *dump_tokens, *dump_nll, *ref, *report_dir;
    long ctx, chunks;
    int convention, numerics, json;
    slm_gates gates;
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
    CLI_GATE_OPTS(eval_opts, gates),
};

static const cmd_spec k_spec = {
    "eval", "MODEL (--text FILE | --tokens-in FILE) [--ctx N] [--convention second-half|all]\n"
            "                [--ref REF_MODEL] [--json] [--report-dir DIR] [options]",
    "Perplexity of MODEL (a Hugging Face folder or a GGUF, any type slm reads) on a text, and\n"
    "with --ref its KL divergence from a reference model on the same token ids.",
    k_opts, SLM_ARRAY_LEN(k_opts), 1, 1, "MODEL",
    "The summary goes to stderr (with --json only on a terminal or with -v); -f overwrites\n"
    "existing report and dump files.", 1,
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

/* ---------------------------------------------------------------------------------------------
 * output */

static void print_summary(const char *model, const char *ref, const slm_report_eval *v, const slm_report *r, FILE *f) {
    char rss[32];
    fprintf(f, "%s: PPL %.4f +/- %.5f (mean NLL %.6f) over %lld tokens: %lld windows of %d, convention %s\n", model, v->ppl,
            v->ppl_err, v->mean_nll, (long long)v->scored, (long long)v->n_chunks, v->ctx, v->convention);
    if (v->has_ref) {
        fprintf(f, "  reference %s: PPL %.4f +/- %.5f; PPL - PPL(ref) %+.5f +/- %.5f (%+.3f%%)\n", ref, v->ref_ppl, v->ref_ppl_err,
                v->dppl, v->dppl_err, 100.0 * v->dppl / v->ref_ppl);
        fprintf(f, "  KL(ref||model): mean %.6f +/- %.6f, median %.6f, p99 %.6f, max %.6f; same top token %.3f%% +/- %.3f%%\n",
                v->kld_mean, v->kld_mean_err, v->kld_median, v->kld_p99, v->kld_max, 100.0 * v->top1, 100.0 * v->top1_err);
    }
    if (v->packed_bytes) fprintf(f, "  read from a packed file: %lld bytes for %llu bytes of tensors\n", (long long)v->packed_bytes,
                                 (unsigned long long)r->out_bytes);
    fprintf(f, "  %.2f s, %.0f tokens/s, %d threads, peak RSS %s\n", r->seconds, v->tok_per_s, r->threads,
            slm_fmt_bytes(rss, sizeof rss, r->peak_rss_bytes));
}

static void fill_report(slm_report *r, const cli_eval *s, const cli_eval_args *a, double total_seconds) {
    snprintf(r->command, sizeof r->command, "eval");
    snprintf(r->version, sizeof r->version, "%s", SLM_VERSION);
    snprintf(r->model, sizeof r->model, "%s", a->model);
    snprintf(r->model_name, sizeof r->model_name, "%s", s->src.name);
    const slm_ftype_desc *ft = s->src.file_type >= 0 ? slm_ftype_by_id(s->src.file_type) : NULL;
    if (ft) snprintf(r->ftype, sizeof r->ftype, "%s", ft->name);
    r->threads = slm_threads_get();
    r->seconds = total_seconds;
    r->peak_rss_bytes = cli_peak_rss();
    r->out_bytes = s->src.total_bytes; /* the model evaluated; its source is the reference, if any */
    r->src_bytes = a->ref ? s->rsrc.total_bytes : 0;
    r->n_params = s->m.n_params;
    r->bpw = s->m.n_params ? 8.0 * (double)s->src.total_bytes / (double)s->m.n_params : 0;
    cli_eval_fill(s, a, &r->eval);
}

/* ---------------------------------------------------------------------------------------------
 * the command */

typedef struct eval_state {
    cli_eval ev;
    slm_report rep;
    cli_outputs outs;
} eval_state;

static cli_eval_args args_of(const char *in, const eval_opts *o) {
    return (cli_eval_args){.model = in, .ref = o->ref, .text = o->text, .tokens_in = o->tokens_in, .ctx = o->ctx,
                           .chunks = o->chunks, .convention = o->convention, .numerics = o->numerics,
                           .keep_nll = o->dump_nll != NULL};
}

/* Scores, then the gates, the summary, the JSON (the report's schema), the NLL dump and the
   report folder; *gate: EXIT_GATE when a gate failed (everything still written). */
static int run(eval_state *s, const char *in, const eval_opts *o, double t0, int *gate, slm_err *err) {
    const cli_eval_args a = args_of(in, o);
    SLM_TRY(cli_eval_load(&s->ev, &a, err));
    if (o->dump_tokens) SLM_TRY(slm_ids_write(&s->outs.set, o->dump_tokens, s->ev.ids, s->ev.n_ids, err));
    SLM_TRY(cli_eval_score(&s->ev, &a, err));
    fill_report(&s->rep, &s->ev, &a, cli_now() - t0);
    *gate = cli_gates_check(&o->gates, &s->rep);
    if (msg_show_summary() || (!o->json && g_msg.verbosity >= 1)) print_summary(in, o->ref, &s->rep.eval, &s->rep, stderr);
    if (o->json) { /* the report's schema: the same keys as report.json */
        char *js = slm_report_json_string(&s->rep);
        if (!js) return slm_errf(err, SLM_E_NOMEM, "rendering the JSON report: out of memory");
        printf("%s\n", js);
        fflush(stdout);
        free(js);
    }
    slm_eval_opts eo = cli_eval_opts(&s->ev, &a);
    if (o->dump_nll) SLM_TRY(write_nll_file(&s->outs.set, o->dump_nll, cli_eval_ppl(&s->ev, &a), s->ev.ids, &eo, err));
    if (o->report_dir) SLM_TRY(slm_report_write_dir(&s->outs.set, &s->rep, 1, o->report_dir, err));
    return cli_outputs_commit(&s->outs, err);
}

/* What parsing cannot check alone; output files refused before any work. */
static int check_opts(const char *in, const eval_opts *o, cli_outputs *outs) {
    if (!o->text == !o->tokens_in)
        return msg_usage_error(o->text ? "--text and --tokens-in exclude each other" : "missing --text FILE (or --tokens-in FILE)");
    if (o->convention == SLM_PPL_SECOND_HALF && o->ctx < 4) return msg_usage_error("--ctx: must be at least 4 for second-half");
    if (slm_gates_any(&o->gates) && !o->ref) return msg_usage_error("quality gates compare with a reference: add --ref REF_MODEL");
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
    slm_gates_none(&o.gates);
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
    int gate = EXIT_OK;
    rc = run(&s, pos[0], &o, t0, &gate, &err);
    cli_outputs_abort(&s.outs); /* nothing left unless committed */
    cli_eval_free(&s.ev);
    slm_report_free(&s.rep);
    return rc ? cli_fail(&err) : gate;
}
