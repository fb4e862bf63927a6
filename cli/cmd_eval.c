/* cmd_eval.c - `slm eval MODEL --text FILE [--ctx N] [--convention second-half|all] [--ref REF]
 * [--json] [--report-dir D]`: perplexity of a model, and its KL divergence from a reference.
 *
 * Pipeline: open the model (and the reference) -> token ids (tokenize the text with the
 * reference's, else the model's tokenizer, or read --tokens-in) -> build -> model/eval ->
 * summary on stderr, JSON on stdout, report folder.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "args.h"
#include "cli.h"
#include "core/afile.h"
#include "core/dtype.h"
#include "core/mapfile.h"
#include "core/mem.h"
#include "core/slm.h"
#include "core/thread.h"
#include "formats/model_src.h"
#include "report/report.h"
#include "model/eval.h"
#include "model/tokenizer.h"
#include "model/transformer.h"
#include "msg.h"
#include "quantize/recipe.h"

#define DEFAULT_CTX 512 /* llama-perplexity's default -c */

static void usage(FILE *f, int full) {
    fprintf(f, "usage: slm eval MODEL (--text FILE | --tokens-in FILE) [--ctx N] [--convention second-half|all]\n"
               "                [--ref REF_MODEL] [--json] [--report-dir DIR] [options]\n");
    if (!full) return;
    fprintf(f, "\nPerplexity of MODEL (a Hugging Face folder or a GGUF, any type slm reads) on a text, and\n"
               "with --ref its KL divergence from a reference model on the same token ids.\n\n"
               "options:\n"
               "  --text FILE          text to score, tokenized with the model's tokenizer (the reference's\n"
               "                       with --ref), as llama.cpp's perplexity tool does\n"
               "  --tokens-in FILE     score these token ids instead: little-endian int32, or whitespace-\n"
               "                       separated decimal ids (llppl --dump-tokens); used as they are\n"
               "  --dump-tokens FILE   write the ids scored, one per line (what llppl --tokens-in reads)\n"
               "  --dump-nll FILE      write 'window position token nll' per scored id (as llppl --dump-nll)\n"
               "  --ctx N              window length [%d]\n"
               "  --convention C       second-half (default): llama-perplexity's windows of N ids of the\n"
               "                       BOS-prefixed stream, first id replaced by BOS, the second half scored;\n"
               "                       all: windows of BOS + N-1 ids of the stream (no BOS), every id scored\n"
               "  --chunks K           score at most K windows\n"
               "  --ref REF_MODEL      also report KL(ref || model), top-1 agreement and delta PPL\n"
               "  --numerics N         f32 (default): f32 activations and KV cache, weights as dequantized;\n"
               "                       ggml: round as llama.cpp's CPU backend does (activations to each\n"
               "                       weight's Q8_0/Q8_K/F16 dot type, F16 KV cache, F16 flash attention)\n"
               "  --json               machine-readable result on stdout\n"
               "  --report-dir DIR     write DIR/report.json, report.md and report.html\n"
               "  -f, --force          overwrite existing report and dump files\n"
               "  -t, --threads N      threads (default: OMP_NUM_THREADS, else all cores); results do not\n"
               "                       depend on it\n"
               "  -q, -v               quieter / more verbose; --progress, --no-progress\n"
               "  -h, --help           this help\n"
               "\nThe summary goes to stderr (with --json only on a terminal or with -v).\n"
               "exit status: 0 ok, 1 failure, 2 usage, 130/143 interrupted\n", DEFAULT_CTX);
}

/* ---------------------------------------------------------------------------------------------
 * token ids in and out */

/* Little-endian int32 when the file has a NUL byte (ids below 2^24 always do), else text. */
static int read_ids_file(const char *path, int32_t **ids, int64_t *n_ids, slm_err *err) {
    slm_map mp = {0};
    *ids = NULL;
    *n_ids = 0;
    SLM_TRY(slm_map_open(&mp, path, err));
    int rc = SLM_OK;
    const char *d = (const char *)mp.data;
    if (mp.size && memchr(d, 0, mp.size)) {
        if (mp.size % 4) rc = slm_errf(err, SLM_E_FORMAT, "%s: %zu bytes is not a whole number of int32 ids", path, mp.size);
        if (!rc) rc = slm_alloc((void **)ids, mp.size, err, "token ids");
        if (!rc) {
            memcpy(*ids, d, mp.size); /* little-endian host (core/slm.h) */
            *n_ids = (int64_t)(mp.size / 4);
        }
    } else {
        size_t cap = mp.size / 2 + 1, n = 0; /* at most one id per two bytes */
        rc = slm_alloc((void **)ids, sizeof(int32_t) * cap, err, "token ids");
        for (size_t i = 0; !rc && i < mp.size;) {
            if (d[i] == ' ' || d[i] == '\n' || d[i] == '\t' || d[i] == '\r') {
                i++;
                continue;
            }
            size_t j = i;
            long v = 0;
            while (j < mp.size && d[j] >= '0' && d[j] <= '9' && v <= INT32_MAX) v = v * 10 + (d[j++] - '0');
            if (j == i || v > INT32_MAX || (j < mp.size && !strchr(" \n\t\r", d[j]))) {
                rc = slm_errf(err, SLM_E_FORMAT, "%s: byte %zu: expected a token id (a decimal number)", path, i);
                break;
            }
            (*ids)[n++] = (int32_t)v;
            i = j;
        }
        *n_ids = (int64_t)n;
    }
    slm_map_close(&mp);
    if (rc) {
        slm_free(*ids);
        *ids = NULL;
    }
    return rc;
}

static int write_ids_file(const char *path, const int32_t *ids, int64_t n, slm_err *err) {
    slm_afile f = {0};
    SLM_TRY(slm_afile_open(&f, path, err));
    char line[16];
    int rc = SLM_OK;
    for (int64_t i = 0; !rc && i < n; i++) rc = slm_afile_write(&f, line, (size_t)snprintf(line, sizeof line, "%d\n", ids[i]), err);
    if (!rc) return slm_afile_commit(&f, err);
    slm_afile_abort(&f);
    return rc;
}

/* "window position token nll" per scored id, positions as llppl numbers them (of the target) */
static int write_nll_file(const char *path, const slm_ppl_result *p, const int32_t *ids, const slm_eval_opts *o,
                          slm_err *err) {
    slm_afile f = {0};
    SLM_TRY(slm_afile_open(&f, path, err));
    int n_score = slm_eval_scored_per_window(o), first = slm_eval_first_target(o), rc = SLM_OK;
    char line[96];
    for (int64_t k = 0; !rc && k < p->n_chunks; k++)
        for (int j = 0; !rc && j < n_score; j++) {
            int pos = first + j;
            int32_t tok = ids[slm_eval_stream_index(o, k, pos)];
            int n = snprintf(line, sizeof line, "%lld %d %d %.9f\n", (long long)k, pos, tok, p->token_nll[k * n_score + j]);
            rc = slm_afile_write(&f, line, (size_t)n, err);
        }
    if (!rc) return slm_afile_commit(&f, err);
    slm_afile_abort(&f);
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
    const slm_src *src;
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
    r->src_bytes = r->out_bytes = e->src->total_bytes;
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

int cmd_eval(int argc, char **argv) {
    common_opts co = {0};
    const char *in = NULL, *ref = NULL, *text = NULL, *tokens_in = NULL, *dump = NULL, *dump_nll = NULL, *report_dir = NULL;
    long ctx = DEFAULT_CTX, chunks = 0;
    int convention = SLM_PPL_SECOND_HALF, json = 0, numerics = SLM_NUMERICS_F32;
    args a;
    args_init(&a, argc, argv);
    for (const char *s; (s = args_next(&a));) {
        int r;
        if (!args_is_opt(&a)) {
            if (in) return msg_usage_error("unexpected argument '%s'", s);
            in = s;
        } else if ((r = args_common(&a, &co))) {
            if (r < 0) return EXIT_USAGE;
        } else if ((r = args_value(&a, "--text", NULL))) {
            if (r < 0) return EXIT_USAGE;
            text = a.val;
        } else if ((r = args_value(&a, "--tokens-in", NULL))) {
            if (r < 0) return EXIT_USAGE;
            tokens_in = a.val;
        } else if ((r = args_value(&a, "--dump-tokens", NULL))) {
            if (r < 0) return EXIT_USAGE;
            dump = a.val;
        } else if ((r = args_value(&a, "--dump-nll", NULL))) {
            if (r < 0) return EXIT_USAGE;
            dump_nll = a.val;
        } else if ((r = args_value(&a, "--ref", NULL))) {
            if (r < 0) return EXIT_USAGE;
            ref = a.val;
        } else if ((r = args_value(&a, "--report-dir", NULL))) {
            if (r < 0) return EXIT_USAGE;
            report_dir = a.val;
        } else if ((r = args_value(&a, "--ctx", "-c"))) {
            if (r < 0 || args_int(&a, "--ctx", 2, 1 << 20, &ctx)) return EXIT_USAGE;
        } else if ((r = args_value(&a, "--chunks", NULL))) {
            if (r < 0 || args_int(&a, "--chunks", 1, LONG_MAX, &chunks)) return EXIT_USAGE;
        } else if ((r = args_value(&a, "--convention", NULL))) {
            if (r < 0) return EXIT_USAGE;
            convention = slm_ppl_convention_parse(a.val);
            if (!convention) return msg_usage_error("--convention: '%s' is not second-half or all", a.val);
        } else if ((r = args_value(&a, "--numerics", NULL))) {
            if (r < 0) return EXIT_USAGE;
            if (!strcmp(a.val, "ggml")) numerics = SLM_NUMERICS_GGML;
            else if (!strcmp(a.val, "f32")) numerics = SLM_NUMERICS_F32;
            else return msg_usage_error("--numerics: '%s' is not f32 or ggml", a.val);
        } else if (args_flag(&a, "--json", NULL)) {
            json = 1;
        } else {
            return msg_usage_error("unknown option '%s'", s);
        }
    }
    if (co.help) { usage(stdout, co.help == 2); return EXIT_OK; }
    if (!in) return msg_usage_error("missing MODEL");
    if (!text == !tokens_in) return msg_usage_error(text ? "--text and --tokens-in exclude each other" : "missing --text FILE (or --tokens-in FILE)");
    if (convention == SLM_PPL_SECOND_HALF && ctx < 4) return msg_usage_error("--ctx: must be at least 4 for second-half");
    if (dump && cli_check_output(dump, co.force, text ? text : tokens_in)) return EXIT_FAIL;
    if (dump_nll && cli_check_output(dump_nll, co.force, text ? text : tokens_in)) return EXIT_FAIL;
    char report_json[4096];
    if (report_dir) {
        snprintf(report_json, sizeof report_json, "%s/%s", report_dir, SLM_REPORT_JSON_NAME);
        if (cli_check_output(report_json, co.force, NULL)) return EXIT_FAIL;
    }
    slm_threads_set(co.threads);

    double t0 = cli_now();
    slm_err err = {0};
    slm_src src = {0}, rsrc = {0};
    slm_model m = {0}, rm = {0};
    int32_t *ids = NULL;
    int64_t n_ids = 0;
    slm_ppl_result ppl = {0};
    slm_kl_result kl = {0};
    slm_report rep = {0};
    slm_tokenizer tok = {0};
    int rc = slm_src_open(&src, in, &err);
    if (!rc && ref) rc = slm_src_open(&rsrc, ref, &err);
    if (!rc && ref && rsrc.cfg.n_vocab != src.cfg.n_vocab)
        rc = slm_errf(&err, SLM_E_ARG, "%s: vocabulary of %d tokens, the reference %s has %d", in, src.cfg.n_vocab, ref,
                      rsrc.cfg.n_vocab);
    const slm_src *tsrc = ref ? &rsrc : &src; /* whose tokenizer (llkld: the reference's) */
    /* BOS as llama.cpp uses it: the vocab's when it adds one (config.json's without a vocab) */
    int32_t bos = tsrc->cfg.bos_id;
    if (!rc && tsrc->vocab.kind != SLM_VOCAB_NONE) {
        rc = slm_tokenizer_build(&tok, &tsrc->vocab, &err);
        if (!rc) bos = slm_tokenizer_bos(&tok);
    } else if (!rc && text) {
        rc = slm_errf(&err, SLM_E_UNSUPPORTED, "%s: has no tokenizer (use --tokens-in)", tsrc->name);
    }
    if (!rc && text) rc = tokenize_file(&tok, text, convention == SLM_PPL_SECOND_HALF, &ids, &n_ids, &err);
    if (!rc && tokens_in) rc = read_ids_file(tokens_in, &ids, &n_ids, &err);
    for (int64_t i = 0; !rc && i < n_ids; i++)
        if (ids[i] < 0 || ids[i] >= src.cfg.n_vocab || (ref && ids[i] >= rsrc.cfg.n_vocab))
            rc = slm_errf(&err, SLM_E_DATA, "%s: token %lld is id %d, outside the vocabulary of %d", text ? text : tokens_in,
                          (long long)i, ids[i], src.cfg.n_vocab);
    if (!rc && dump) rc = write_ids_file(dump, ids, n_ids, &err);
    if (!rc && src.cfg.n_ctx_train > 0 && ctx > src.cfg.n_ctx_train)
        msg_warn("%s: --ctx %ld is longer than the %d positions the model was trained on", in, ctx, src.cfg.n_ctx_train);
    if (!rc) rc = cli_model_build(&src, &m, (int)ctx, &err);
    if (!rc && ref) rc = cli_model_build(&rsrc, &rm, (int)ctx, &err);
    m.numerics = rm.numerics = numerics;
    double t1 = cli_now();
    slm_eval_opts o = {.ctx = (int)ctx, .convention = convention, .bos_id = bos, .max_chunks = chunks,
                       .keep_token_nll = dump_nll != NULL, .progress = progress};
    if (!rc && !ref) rc = slm_eval_ppl(&m, ids, n_ids, &o, &ppl, &err);
    if (!rc && ref) rc = slm_eval_kl(&rm, &m, ids, n_ids, &o, &kl, &err);
    if (rc == SLM_E_DATA) slm_err_prefix(&err, "%s", text ? text : tokens_in); /* too short for a window */
    msg_progress_done();
    if (rc) goto done;
    double t2 = cli_now();

    const slm_ppl_result *p = ref ? &kl.model : &ppl;
    eval_run e = {.model = in, .ref = ref, .input = text ? text : tokens_in, .src = &src, .ctx = (int)ctx,
                  .convention = convention, .threads = slm_threads_get(), .numerics = numerics, .n_ids = n_ids, .seconds = t2 - t1,
                  .peak_rss = cli_peak_rss(), .ppl = p, .kl = ref ? &kl : NULL};
    e.tok_per_s = e.seconds > 0 ? (double)p->n_chunks * (double)ctx / e.seconds : 0;
    if (msg_show_summary() || (!json && g_msg.verbosity >= 1)) print_summary(&e, stderr);
    fill_report(&rep, &e, &m, cli_now() - t0);
    if (json) { /* the report's schema: the same keys as report.json */
        char *js = slm_report_json_string(&rep);
        if (!js) rc = slm_errf(&err, SLM_E_NOMEM, "rendering the JSON report: out of memory");
        else printf("%s\n", js), fflush(stdout);
        free(js);
    }
    if (!rc && dump_nll) rc = write_nll_file(dump_nll, p, ids, &o, &err);
    if (!rc && report_dir) rc = slm_report_write_dir(&rep, 1, report_dir, &err);
done:
    slm_tokenizer_free(&tok);
    slm_report_free(&rep);
    slm_kl_result_free(&kl);
    slm_ppl_result_free(&ppl);
    slm_free(ids);
    slm_model_free(&rm);
    slm_model_free(&m);
    slm_src_close(&rsrc);
    slm_src_close(&src);
    return rc ? cli_fail(&err) : EXIT_OK;
}
