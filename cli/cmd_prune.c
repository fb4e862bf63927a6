/* cmd_prune.c - `slm prune MODEL -o OUT [--method M] [--sparsity S] [--nm N:M] [--calibration F |
 * --calib-text F] [--tensors REGEX[=S]]... [--uniform] [--format gguf|hf]`: options, the
 * statistics (read, or computed in-process from a text), the pruned model (prune/prune.h) through
 * the export pipeline, the summary and the report.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cli_eval.h"
#include "cli_recipe.h"
#include "cli_export.h"
#include "cli_gates.h"
#include "export/export_hf.h"
#include "core/adir.h"
#include "core/dtype.h"
#include "core/mapfile.h"
#include "core/mem.h"
#include "core/slm.h"
#include "core/thread.h"
#include "formats/gguf.h"
#include "formats/imatrix_calib.h"
#include "formats/pack.h"
#include "model/calib.h"
#include "model/tokenizer.h"
#include "msg.h"
#include "opts.h"
#include "prune/prune.h"
#include "quantize/qtypes.h"

typedef struct prune_opts {
    const char *out, *calibration, *calib_text, *nm, *report, *report_dir, *eval_text, *recipe;
    int method, scope, uniform, outtype, format;
    double sparsity, damp;
    long align, calib_ctx, calib_chunks, block, eval_ctx, eval_chunks;
    slm_gates gates;
    opt_list tensors;
} prune_opts;

static const opt_choice k_methods[] = {{"magnitude", SLM_PRUNE_MAGNITUDE}, {"wanda", SLM_PRUNE_WANDA},
                                       {"sparsegpt", SLM_PRUNE_SPARSEGPT}, {"ffn", SLM_PRUNE_FFN},
                                       {"heads", SLM_PRUNE_HEADS},         {"layers", SLM_PRUNE_LAYERS},
                                       {NULL, 0}};
static const opt_choice k_scopes[] = {{"row", SLM_PRUNE_SCOPE_ROW}, {"tensor", SLM_PRUNE_SCOPE_TENSOR},
                                      {"global", SLM_PRUNE_SCOPE_GLOBAL}, {NULL, 0}};
static const opt_choice k_outtypes[] = {{"f32", SLM_DTYPE_F32}, {"f16", SLM_DTYPE_F16}, {"bf16", SLM_DTYPE_BF16}, {NULL, 0}};
static const opt_choice k_formats[] = {{"gguf", 0}, {"hf", 1}, {NULL, 0}};

static const opt k_opts[] = {
    {"--output", "-o", OPT_STR, OPT_OF(prune_opts, out), "OUT", "output GGUF (or folder with --format hf)", 0, 0, NULL, NULL},
    {"--method", NULL, OPT_CHOICE, OPT_OF(prune_opts, method), NULL,
     "unstructured: magnitude (default), wanda, sparsegpt;\nstructured: ffn (channels), heads (kv head groups), layers (blocks)",
     0, 0, k_methods, NULL},
    {"--sparsity", NULL, OPT_NUM, OPT_OF(prune_opts, sparsity), "S",
     "fraction removed, in [0, 1): weights, FFN channels, head groups or blocks [0.5]", -1e9, 1e9, NULL, NULL},
    {"--nm", NULL, OPT_STR, OPT_OF(prune_opts, nm), "N:M", "keep N of every M consecutive weights of a row (2:4, 4:8)", 0, 0, NULL,
     NULL},
    {"--scope", NULL, OPT_CHOICE, OPT_OF(prune_opts, scope), NULL, "magnitude: compare within a row (default), a tensor, or all",
     0, 0, k_scopes, NULL},
    {"--tensors", NULL, OPT_LIST, OPT_OF(prune_opts, tensors), "REGEX[=S]",
     "prune the 2-D tensors whose GGUF name matches REGEX (at sparsity S);\nrepeatable, first match wins. Default: the blocks' "
     "matmul weights\n(embeddings, output and norms untouched)", 0, 64, NULL, NULL},
    {"--calibration", NULL, OPT_STR, OPT_OF(prune_opts, calibration), "STATS.gguf",
     "statistics from 'slm calibrate' (wanda: E[x^2]; sparsegpt: Gram\nmatrices; ffn/heads: mean |activation|; layers: block cosines)",
     0, 0, NULL, NULL},
    {"--calib-text", NULL, OPT_STR, OPT_OF(prune_opts, calib_text), "FILE", "compute the statistics from this text first", 0, 0,
     NULL, NULL},
    {"--calib-ctx", NULL, OPT_INT, OPT_OF(prune_opts, calib_ctx), "N", "tokens per calibration chunk [512]", 16, 1 << 20, NULL,
     NULL},
    {"--calib-chunks", NULL, OPT_INT, OPT_OF(prune_opts, calib_chunks), "K", "at most K calibration chunks [all]", 1, 1e9, NULL,
     NULL},
    {"--uniform", NULL, OPT_FLAG, OPT_OF(prune_opts, uniform), NULL,
     "structured: the same width in every layer (stays 'llama'; else per-layer\nwidths in llama.cpp's 'deci' architecture)", 0,
     0, NULL, NULL},
    {"--align", NULL, OPT_INT, OPT_OF(prune_opts, align), "N", "ffn: kept channels per layer a multiple of N [32]", 1, 1 << 20,
     NULL, NULL},
    {"--damp", NULL, OPT_NUM, OPT_OF(prune_opts, damp), "D", "sparsegpt: dampening, fraction of mean diag(H) [0.01]", 1e-9, 10,
     NULL, NULL},
    {"--block", NULL, OPT_INT, OPT_OF(prune_opts, block), "B", "sparsegpt: columns per mask block [128]", 1, 1 << 20, NULL, NULL},
    {"--outtype", NULL, OPT_CHOICE, OPT_OF(prune_opts, outtype), NULL, "type of the 2-D weights [the model's own]", 0, 0,
     k_outtypes, NULL},
    {"--format", NULL, OPT_CHOICE, OPT_OF(prune_opts, format), NULL,
     "gguf (default), or hf: a Hugging Face folder (config.json, model.safetensors,\nthe tokenizer files of MODEL; needs an HF folder as MODEL, and\n--uniform for structured methods)", 0, 0,
     k_formats, NULL},
    {"--eval-text", NULL, OPT_STR, OPT_OF(prune_opts, eval_text), "FILE",
     "evaluate the output against MODEL on this text (PPL, KLD, top-1 into\nthe summary and the report; needed by the gates)", 0, 0,
     NULL, NULL},
    {"--eval-ctx", NULL, OPT_INT, OPT_OF(prune_opts, eval_ctx), "N", "window length of that evaluation [512]", 4, 1 << 20, NULL,
     NULL},
    {"--eval-chunks", NULL, OPT_INT, OPT_OF(prune_opts, eval_chunks), "K", "score at most K windows [all]", 0, 9.2e18, NULL, NULL},
    CLI_GATE_OPTS(prune_opts, gates),
    {"--recipe", NULL, OPT_STR, OPT_OF(prune_opts, recipe), "FILE.json",
     "options from a recipe file: {\"method\": \"prune\", ...}, or the \"prune\" step of\nanother command's recipe "
     "(cli/cli_recipe.h); the command line overrides it", 0, 0, NULL, NULL},
    {"--report", NULL, OPT_STR, OPT_OF(prune_opts, report), "FILE.json", "per-tensor sparsity, parameters and bytes (JSON)", 0, 0,
     NULL, NULL},
    {"--report-dir", NULL, OPT_STR, OPT_OF(prune_opts, report_dir), "DIR", "the report as report.json, report.md and report.html",
     0, 0, NULL, NULL},
};

static const cmd_spec k_spec = {
    "prune", "MODEL -o OUT [--method M] [--sparsity S] [--nm N:M] [--calibration F | --calib-text F]\n"
             "                 [--tensors REGEX[=S]]... [--uniform] [--format gguf|hf] [options]",
    "Prunes MODEL (a Hugging Face folder or an F32/F16/BF16 GGUF). Unstructured methods set\n"
    "weights to exactly 0 (exact sparsity per row, tensor or model); structured methods remove\n"
    "FFN channels, attention head groups or whole blocks, so the file is smaller and faster.",
    k_opts, SLM_ARRAY_LEN(k_opts), 1, 1, "MODEL",
    "Output is identical for any thread count. The output goes straight into 'slm quantize'.", 0,
};

/* "2:4" -> n, m; 0 when absent. */
static int parse_nm(const char *s, int *n, int *m) {
    char *end;
    *n = *m = 0;
    if (!s) return 0;
    long a = strtol(s, &end, 10), b;
    if (end == s || *end != ':') return msg_usage_error("--nm: expected N:M, got '%s'", s);
    const char *p = end + 1;
    b = strtol(p, &end, 10);
    if (end == p || *end || a < 0 || b < 0 || a > 1 << 16 || b > 1 << 16) return msg_usage_error("--nm: expected N:M, got '%s'", s);
    *n = (int)a, *m = (int)b;
    return 0;
}

/* REGEX[=S] -> patterns; S must be a number when given. */
static int parse_patterns(const opt_list *l, slm_prune_pattern *pat, char (*re)[256]) {
    for (int i = 0; i < l->n; i++) {
        const char *v = l->v[i], *eq = strrchr(v, '=');
        char *end = NULL;
        double s = eq ? strtod(eq + 1, &end) : -1;
        if (eq && (end == eq + 1 || *end)) eq = NULL, s = -1; /* '=' inside the regex */
        size_t len = eq ? (size_t)(eq - v) : strlen(v);
        if (len >= sizeof re[0]) return msg_usage_error("--tensors: pattern too long");
        snprintf(re[i], sizeof re[0], "%.*s", (int)len, v);
        pat[i] = (slm_prune_pattern){re[i], s};
    }
    return 0;
}

typedef struct job {
    slm_src src;
    slm_tensor_src ts;
    slm_calib calib;
    int has_calib;
    slm_prune p;
    slm_kvs meta;
    slm_export x;
} job;

static void progress(void *ud, const char *tensor, size_t done, size_t n) {
    SLM_UNUSED(ud);
    if (done < n) msg_progress(tensor, (double)done / (double)n);
    else msg_progress_done();
}

/* Statistics computed in-process: the text tokenized (BOS first), llama-imatrix's chunks. */
static int calib_from_text(job *j, const prune_opts *o, slm_err *err) {
    slm_tokenizer tok = {0};
    slm_map mp = {0};
    slm_model m = {0};
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = slm_tokenizer_build(&tok, &j->src.vocab, err);
    if (!rc) rc = slm_map_open(&mp, o->calib_text, err);
    if (!rc) rc = slm_tokenize(&tok, mp.data ? (const char *)mp.data : "", mp.size, 1, &ids, &n, err);
    slm_calib_opts co = {.ctx = (int)(o->calib_ctx ? o->calib_ctx : 512), .chunks = o->calib_chunks,
                         .bos_id = rc ? -1 : slm_tokenizer_bos(&tok), .gram = o->method == SLM_PRUNE_SPARSEGPT};
    if (!rc) rc = cli_model_build(&j->src, &m, slm_calib_batch(&co, (int64_t)n), co.ctx, SLM_NUMERICS_F32, err);
    if (!rc) rc = slm_calib_run(&j->calib, &m, ids, (int64_t)n, &co, err);
    if (rc) slm_err_prefix(err, "%s", o->calib_text);
    j->has_calib = !rc;
    slm_model_free(&m);
    slm_free(ids);
    slm_map_close(&mp);
    slm_tokenizer_free(&tok);
    return rc;
}

static int load_calib(job *j, const prune_opts *o, slm_err *err) {
    if (o->calib_text) return calib_from_text(j, o, err);
    if (!o->calibration) return SLM_OK;
    slm_imatrix im = {0};
    int rc = slm_imatrix_load(&im, o->calibration, err);
    if (!rc) rc = slm_calib_from_imatrix(&j->calib, &im, &j->src.cfg, err);
    if (rc) slm_err_prefix(err, "%s", o->calibration);
    j->has_calib = !rc;
    slm_imatrix_free(&im);
    return rc;
}

/* The recipe that keeps the model's precision (the token embedding's type), or --outtype. */
static const slm_ftype_desc *out_ftype(const job *j, const prune_opts *o) {
    int dt = o->outtype >= 0 ? o->outtype : j->src.tensors[slm_src_find(&j->src, "token_embd.weight")].dtype;
    return slm_ftype_find(dt == SLM_DTYPE_F16 ? "F16" : dt == SLM_DTYPE_BF16 ? "BF16" : "F32");
}

static int plan(job *j, const char *in, const prune_opts *o, const slm_prune_opts *po, slm_err *err) {
    SLM_TRY(cli_src_open(&j->src, in, err));
    slm_src_tensors(&j->src, &j->ts);
    SLM_TRY(load_calib(j, o, err));
    slm_prune_opts p = *po;
    p.calib = j->has_calib ? &j->calib : NULL;
    SLM_TRY(slm_prune_plan(&j->p, &j->ts, &j->src.cfg, &p, err));
    SLM_TRY(slm_model_gguf_meta(&j->p.cfg, j->src.name, &j->src.vocab, &j->meta, err));
    slm_export_opts eo = {.cfg = &j->p.cfg, .meta = &j->meta, .widen_1d = j->src.kind == SLM_SRC_HF, .progress = progress};
    eo.recipe = (slm_recipe_opts){.ftype = out_ftype(j, o), .output_type = -1, .token_embd_type = -1};
    SLM_TRY(slm_export_plan(&j->x, &j->p.out, &eo, err));
    snprintf(j->x.rep.model_name, sizeof j->x.rep.model_name, "%s", j->src.name);
    snprintf(j->x.rep.model, sizeof j->x.rep.model, "%s", in);
    return SLM_OK;
}

/* Per tensor: shape, achieved sparsity; then parameters and bytes before and after. */
static void summary(const job *j, FILE *f, int per_tensor) {
    int64_t pin = 0, pout = 0, zeros = 0;
    char b1[32], b2[32];
    for (size_t i = 0; i < j->p.n; i++) {
        const slm_prune_tensor *t = &j->p.t[i];
        const int64_t n = slm_tensor_info_nrows(&t->info) * slm_tensor_info_ncols(&t->info);
        pout += n, zeros += t->zeros;
        if (per_tensor && t->changed) {
            char sh[48];
            fprintf(f, "%-28s %-14s sparsity %.4f\n", t->info.name, slm_shape_str(sh, sizeof sh, t->info.shape, t->info.ndim),
                    t->n_values ? (double)t->zeros / (double)t->n_values : 0.0);
        }
    }
    for (size_t i = 0; i < j->ts.n_tensors; i++) {
        slm_tensor_info t = slm_tensor_src_info(&j->ts, i);
        pin += slm_tensor_info_nrows(&t) * slm_tensor_info_ncols(&t);
    }
    if (j->x.rep.eval.packed_bytes > 0)
        fprintf(f, "zstd (slm pack): %s\n", slm_fmt_bytes(b1, sizeof b1, (double)j->x.rep.eval.packed_bytes));
    fprintf(f, "prune %s: %lld -> %lld parameters, %lld zeros (%.4f of the output); %s -> %s\n",
            slm_prune_method_name(j->p.o.method), (long long)pin, (long long)pout, (long long)zeros,
            pout ? (double)zeros / (double)pout : 0.0, slm_fmt_bytes(b1, sizeof b1, (double)j->src.total_bytes),
            slm_fmt_bytes(b2, sizeof b2, (double)j->x.rep.out_bytes));
}

static void job_free(job *j) {
    slm_export_free(&j->x);
    slm_kvs_free(&j->meta);
    slm_prune_free(&j->p);
    slm_calib_free(&j->calib);
    slm_src_close(&j->src);
}

static int finish(job *j, const prune_opts *o, double t0, slm_outset *set, slm_err *err) {
    slm_report *r = &j->x.rep;
    snprintf(r->command, sizeof r->command, "prune");
    snprintf(r->version, sizeof r->version, "%s", SLM_VERSION);
    r->threads = slm_threads_get();
    r->seconds = cli_now() - t0;
    r->peak_rss_bytes = cli_peak_rss();
    if (msg_show_summary()) summary(j, stderr, g_msg.verbosity >= 2);
    if (o->report) SLM_TRY(slm_report_write_json(set, r, o->report, err));
    if (o->report_dir) SLM_TRY(slm_report_write_dir(set, r, 1, o->report_dir, err));
    return SLM_OK;
}

/* The written output against MODEL on --eval-text, and the gates (*gate: EXIT_GATE). */
static int evaluate(const prune_opts *o, const char *in, slm_report *r, int *gate, slm_err *err) {
    cli_eval_args a = {.model = o->out, .ref = in, .text = o->eval_text, .ctx = o->eval_ctx, .chunks = o->eval_chunks,
                       .convention = SLM_PPL_SECOND_HALF, .numerics = SLM_NUMERICS_F32};
    SLM_TRY(cli_eval_into(&a, &r->eval, err));
    *gate = cli_gates_check(&o->gates, r);
    if (msg_show_summary())
        fprintf(stderr, "eval %s: PPL %.4f (ref %.4f, %+.4f), mean KLD %.6f, top-1 %.2f%%\n", o->eval_text, r->eval.ppl,
                r->eval.ref_ppl, r->eval.dppl, r->eval.kld_mean, 100.0 * r->eval.top1);
    return SLM_OK;
}

/* The zstd size of the written file (slm pack at its default level, written to a temporary file
   that is dropped): where unstructured sparsity pays off in a file. */
static int zstd_size(const char *path, int64_t *bytes, slm_err *err) {
    slm_gguf g;
    slm_afile f;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.zst", path);
    SLM_TRY(slm_gguf_open(&g, path, err));
    slm_pack_opts po = {.level = SLM_PACK_DEFAULT_LEVEL, .threads = slm_threads_get()};
    slm_pack_stats st = {0};
    int rc = slm_afile_open_flags(&f, tmp, SLM_AFILE_REPLACE, err);
    if (!rc) {
        rc = slm_pack_write(&g, &po, &f, &st, err);
        slm_afile_abort(&f);
    }
    slm_gguf_close(&g);
    *bytes = (int64_t)st.packed_bytes;
    return rc;
}

/* --format hf: the pruned model as an HF folder, committed first (the evaluation reads it). */
static int write_hf(job *j, const char *in, const prune_opts *o, int force, slm_err *err) {
    slm_adir d;
    const slm_ftype_desc *ft = out_ftype(j, o);
    slm_export_hf_opts ho = {.src = &j->p.out, .cfg = &j->p.cfg, .base_dir = in, .progress = progress,
                             .dtype = !strcmp(ft->name, "F16") ? SLM_DTYPE_F16 : !strcmp(ft->name, "BF16") ? SLM_DTYPE_BF16 : SLM_DTYPE_F32};
    SLM_TRY(slm_adir_open(&d, o->out, force ? SLM_AFILE_REPLACE : 0, err));
    int rc = slm_export_hf(&ho, &d, err);
    if (!rc) rc = slm_adir_commit(&d, err);
    else slm_adir_abort(&d);
    if (rc) return rc;
    char p[4200];
    struct stat st;
    snprintf(p, sizeof p, "%s/model.safetensors", o->out);
    if (stat(p, &st) == 0) j->x.rep.out_bytes = (uint64_t)st.st_size;
    snprintf(j->x.rep.output, sizeof j->x.rep.output, "%s", o->out);
    return SLM_OK;
}

static int run_hf(job *j, const char *in, const prune_opts *o, const slm_prune_opts *po, cli_outputs *outs, int *gate) {
    double t0 = cli_now();
    slm_err err = {0};
    struct stat st;
    int rc = stat(in, &st) == 0 && !S_ISDIR(st.st_mode)
                 ? slm_errf(&err, SLM_E_ARG, "%s: --format hf needs a Hugging Face folder as MODEL (its config and tokenizer files are copied)", in)
                 : plan(j, in, o, po, &err);
    if (!rc) rc = write_hf(j, in, o, outs->force, &err);
    if (!rc && o->eval_text && (rc = evaluate(o, in, &j->x.rep, gate, &err))) slm_adir_remove(o->out);
    if (!rc && (rc = finish(j, o, t0, &outs->set, &err))) slm_adir_remove(o->out); /* no model without its report */
    if (!rc && (rc = cli_outputs_commit(outs, &err))) slm_adir_remove(o->out);
    if (rc) cli_outputs_abort(outs);
    return rc ? cli_fail(&err) : EXIT_OK;
}

/* Writes the output; with --eval-text commits it first (the evaluation reads it), no model
   without its report; then the summary and the reports. */
static int run(job *j, const char *in, const prune_opts *o, const slm_prune_opts *po, cli_outputs *outs, int *gate) {
    double t0 = cli_now();
    slm_err err = {0};
    slm_afile *f = NULL;
    int rc = plan(j, in, o, po, &err);
    if (!rc) rc = slm_outset_open(&outs->set, o->out, &f, &err);
    if (!rc) rc = slm_export_write(&j->x, f, &err);
    if (!rc) snprintf(j->x.rep.output, sizeof j->x.rep.output, "%s", o->out);
    const int unstructured = po->method <= SLM_PRUNE_SPARSEGPT;
    if (!rc && (o->eval_text || unstructured)) { /* the output in place first: read back */
        rc = cli_outputs_commit(outs, &err);
        if (!rc && o->eval_text) rc = evaluate(o, in, &j->x.rep, gate, &err); /* fills rep.eval */
        if (!rc && unstructured) rc = zstd_size(o->out, &j->x.rep.eval.packed_bytes, &err);
        if (rc) unlink(o->out); /* no model without its report */
    }
    if (!rc) rc = finish(j, o, t0, &outs->set, &err);
    if (!rc) rc = cli_outputs_commit(outs, &err);
    else cli_outputs_abort(outs);
    return rc ? cli_fail(&err) : EXIT_OK;
}

static void defaults(prune_opts *o) {
    *o = (prune_opts){.method = SLM_PRUNE_MAGNITUDE, .sparsity = 0.5, .outtype = -1, .eval_ctx = 512};
    slm_gates_none(&o->gates);
}

/* The command line, over the recipe file's options when --recipe names one (as quantize). */
static int parse(int argc, char **argv, prune_opts *o, common_opts *co, const char **pos, int *n_pos, cli_recipe *rf) {
    defaults(o);
    if (opts_parse(&k_spec, argc, argv, o, co, pos, n_pos)) return EXIT_USAGE;
    if (co->help || !o->recipe) return EXIT_OK;
    const char *path = o->recipe;
    int rc;
    defaults(o);
    if ((rc = cli_recipe_apply(rf, path, &k_spec, o))) return rc;
    if (opts_parse(&k_spec, argc, argv, o, co, pos, n_pos)) return EXIT_USAGE;
    o->recipe = path;
    return EXIT_OK;
}

static int prune_main(const prune_opts *op, const common_opts *cop, const char *const *pos) {
    prune_opts o = *op;
    common_opts co = *cop;
    slm_prune_pattern pat[OPT_LIST_MAX];
    char re[OPT_LIST_MAX][256];
    if (!o.out) return msg_usage_error("missing -o OUT");
    if (o.calibration && o.calib_text) return msg_usage_error("give --calibration or --calib-text, not both");
    if (slm_gates_any(&o.gates) && !o.eval_text) return msg_usage_error("quality gates need an evaluation: add --eval-text FILE");
    if (o.format == 1 && o.method >= SLM_PRUNE_FFN && !o.uniform)
        return msg_usage_error("--format hf needs --uniform: a Hugging Face config has one width for every layer");
    slm_prune_opts po = {.method = o.method, .sparsity = o.sparsity, .scope = o.scope, .uniform = o.uniform,
                         .align = (int)o.align, .damp = o.damp, .block = (int)o.block, .patterns = pat,
                         .n_patterns = (size_t)o.tensors.n};
    if (parse_nm(o.nm, &po.nm_n, &po.nm_m) || parse_patterns(&o.tensors, pat, re)) return EXIT_USAGE;
    cli_outputs outs;
    cli_outputs_init(&outs, co.force);
    cli_outputs_input(&outs, pos[0]);
    cli_outputs_input(&outs, o.calibration);
    cli_outputs_input(&outs, o.calib_text);
    cli_outputs_input(&outs, o.eval_text);
    if ((o.format == 1 ? cli_outputs_add_dir(&outs, o.out) : cli_outputs_add(&outs, o.out)) || cli_outputs_add(&outs, o.report) || cli_outputs_add_report_dir(&outs, o.report_dir, 1))
        return EXIT_FAIL;
    slm_threads_set((int)co.threads);
    job j = {0};
    int gate = EXIT_OK, rc = o.format == 1 ? run_hf(&j, pos[0], &o, &po, &outs, &gate) : run(&j, pos[0], &o, &po, &outs, &gate);
    job_free(&j);
    return rc ? rc : gate;
}

int cmd_prune(int argc, char **argv) {
    prune_opts o;
    common_opts co = {0};
    const char *pos[1];
    int n_pos;
    cli_recipe rf = {0};
    int rc = parse(argc, argv, &o, &co, pos, &n_pos, &rf);
    if (!rc && !co.help) rc = prune_main(&o, &co, pos);
    cli_recipe_free(&rf);
    return rc;
}
