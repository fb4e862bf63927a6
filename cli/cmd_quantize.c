/* cmd_quantize.c - `slm quantize MODEL -o OUT.gguf --type Q4_K_M [options]`: options, checks, the
 * export pipeline (cli_export.h) with a recipe, the summary and the reports. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cli_eval.h"
#include "cli_export.h"
#include "cli_gates.h"
#include "cli_recipe.h"
#include "core/dtype.h"
#include "core/ecma_re.h"
#include "core/sha256.h"
#include "core/slm.h"
#include "core/thread.h"
#include "msg.h"
#include "opts.h"
#include "formats/imatrix_calib.h"
#include "quantize/method.h"
#include "quantize/qtypes.h"
#include "report/gate.h"

/* What --calibration chooses when --method is not given: bench/calibrate.sh on tinystories-3M
   (llkld, held-out text), mean KLD vs llama.cpp with the reference imatrix: gptq 0.725x (Q4_K_M),
   0.726x (Q3_K_M), 0.792x (Q2_K); awq+gptq 0.736x, 0.709x, 0.803x; awq alone 1.003-1.009x. */
#define DEFAULT_CALIB_METHOD SLM_QMETHOD_GPTQ

typedef struct quantize_opts {
    const char *out, *type, *report, *report_dir, *output_type, *token_embd_type, *imatrix, *calibration, *recipe, *eval_text, *eval_ref;
    opt_list tensor_types; /* REGEX=TYPE */
    int dry, requant, pure, list_types, method, awq_clip, manifest;
    long awq_grid, eval_ctx, eval_chunks, target_size;
    double awq_alpha, target_bpw;
    slm_gates gates;
} quantize_opts;

static const opt_choice k_methods[] = {{"rtn", SLM_QMETHOD_RTN},   {"imatrix", SLM_QMETHOD_IMATRIX},
                                       {"awq", SLM_QMETHOD_AWQ},   {"gptq", SLM_QMETHOD_GPTQ},
                                       {"awq+gptq", SLM_QMETHOD_AWQ_GPTQ}, {NULL, 0}};

static const opt k_opts[] = {
    {"--output", "-o", OPT_STR, OPT_OF(quantize_opts, out), "FILE",
     "output GGUF; default as llama-quantize: ggml-model-TYPE.gguf in the input's folder\n(inside MODEL when it is a folder)", 0, 0,
     NULL, NULL},
    {"--type", NULL, OPT_STR, OPT_OF(quantize_opts, type), "TYPE", "recipe, e.g. Q4_K_M, Q8_0, Q6_K (see --list-types)", 0, 0,
     NULL, NULL},
    {"--imatrix", NULL, OPT_STR, OPT_OF(quantize_opts, imatrix), "FILE",
     "importance matrix: llama-imatrix's GGUF or .dat, or slm calibrate's output;\nimportance-weighted rounding, "
     "llama-quantize --imatrix's bytes", 0, 0, NULL, NULL},
    {"--calibration", NULL, OPT_STR, OPT_OF(quantize_opts, calibration), "STATS.gguf",
     "calibration statistics from 'slm calibrate' (E[x^2], E|x|, Gram matrices);\nalso the importance matrix. Default "
     "method with it: gptq", 0, 0, NULL, NULL},
    {"--method", NULL, OPT_CHOICE, OPT_OF(quantize_opts, method), NULL,
     "rtn: round to nearest; imatrix: importance-weighted rounding (llama.cpp's);\nawq: AWQ scales folded into the norms / "
     "v / up rows, then imatrix rounding;\ngptq (default with --calibration): error feedback through the Gram\nmatrix; "
     "awq+gptq: both",
     0, 0, k_methods, NULL},
    {"--awq-grid", NULL, OPT_INT, OPT_OF(quantize_opts, awq_grid), "N", "AWQ: alpha searched over 0, 1/N, ..., 1 [20]", 1, 1000,
     NULL, NULL},
    {"--awq-clip", NULL, OPT_FLAG, OPT_OF(quantize_opts, awq_clip), NULL,
     "AWQ: also search a clipping ratio per tensor (rows clamped to c max|w|)", 0, 0, NULL, NULL},
    {"--awq-alpha", NULL, OPT_NUM, OPT_OF(quantize_opts, awq_alpha), "A",
     "AWQ: this alpha for every group instead of the search (s = E|x|^A)", 0, 1, NULL, NULL},
    {"--target-size", NULL, OPT_INT, OPT_OF(quantize_opts, target_size), "BYTES",
     "per-tensor types (Q2_K..Q6_K, Q8_0) for a file of at most BYTES, everything\ncounted; least importance-weighted "
     "error; --type is the starting recipe [Q4_K_M]", 1, 9.2e18, NULL, NULL},
    {"--target-bpw", NULL, OPT_NUM, OPT_OF(quantize_opts, target_bpw), "X",
     "the same for a file of at most X * parameters / 8 bytes", 0.5, 64, NULL, NULL},
    {"--tensor-type", NULL, OPT_LIST, OPT_OF(quantize_opts, tensor_types), "REGEX=TYPE",
     "type for tensors whose name matches REGEX, as llama-quantize: its regex syntax\n(\\d, (?:...) ...; no lookaround), "
     "lowercased, found anywhere in the name;\nthe first matching one applies (repeatable)", 0, 64, NULL, NULL},
    {"--output-tensor-type", NULL, OPT_STR, OPT_OF(quantize_opts, output_type), "TYPE", "type of output.weight", 0, 0, NULL,
     NULL},
    {"--token-embedding-type", NULL, OPT_STR, OPT_OF(quantize_opts, token_embd_type), "TYPE", "type of token_embd.weight", 0, 0,
     NULL, NULL},
    {"--pure", NULL, OPT_FLAG, OPT_OF(quantize_opts, pure), NULL, "every quantizable tensor gets the recipe's base type", 0, 0,
     NULL, NULL},
    {"--allow-requantize", NULL, OPT_FLAG, OPT_OF(quantize_opts, requant), NULL, "accept an already quantized input", 0, 0,
     NULL, NULL},
    {"--dry-run", NULL, OPT_FLAG, OPT_OF(quantize_opts, dry), NULL,
     "print each tensor's type and the exact output size; write nothing", 0, 0, NULL, NULL},
    {"--report", NULL, OPT_STR, OPT_OF(quantize_opts, report), "FILE.json", "per-tensor size and error report (JSON)", 0, 0,
     NULL, NULL},
    {"--report-dir", NULL, OPT_STR, OPT_OF(quantize_opts, report_dir), "DIR",
     "the report as report.json, report.md and report.html", 0, 0, NULL, NULL},
    {"--list-types", NULL, OPT_FLAG, OPT_OF(quantize_opts, list_types), NULL, "list the recipes and tensor types", 0, 0, NULL,
     NULL},
    {"--recipe", NULL, OPT_STR, OPT_OF(quantize_opts, recipe), "FILE.json",
     "options from a recipe file (method, type, tensor_types, gates, eval);\nthe command line overrides it", 0, 0, NULL, NULL},
    {"--eval-text", NULL, OPT_STR, OPT_OF(quantize_opts, eval_text), "FILE",
     "evaluate the output against MODEL on this text (KLD, top-1, delta PPL\ninto the report; needed by the gates)", 0, 0, NULL,
     NULL},
    {"--eval-ref", NULL, OPT_STR, OPT_OF(quantize_opts, eval_ref), "MODEL",
     "evaluate against this model instead of MODEL (the original when MODEL\nis a pruned copy: the cost of both steps)", 0, 0,
     NULL, NULL},
    {"--eval-ctx", NULL, OPT_INT, OPT_OF(quantize_opts, eval_ctx), "N", "window length of that evaluation [512]", 4, 1 << 20,
     NULL, NULL},
    {"--eval-chunks", NULL, OPT_INT, OPT_OF(quantize_opts, eval_chunks), "K", "score at most K windows [all]", 0, 9.2e18, NULL,
     NULL},
    CLI_GATE_OPTS(quantize_opts, gates),
    {"--manifest", NULL, OPT_FLAG, OPT_OF(quantize_opts, manifest), NULL,
     "record slm.version, slm.input.sha256 (model, imatrix, eval text) and\nslm.flags in the GGUF and the report (off: llama-quantize's bytes)",
     0, 0, NULL, NULL},
};

static const cmd_spec k_spec = {
    "quantize", "MODEL -o OUT.gguf --type TYPE [options]",
    "MODEL is a Hugging Face folder or a GGUF file (F32, F16 or BF16). The output is a GGUF\n"
    "llama.cpp runs as it is; each tensor's type follows llama.cpp's recipe for TYPE.",
    k_opts, SLM_ARRAY_LEN(k_opts), 0, 4, "MODEL", /* 0: --list-types needs none; 4: llama-quantize's IN OUT TYPE N, for a hint */
    "Output is identical for any thread count. Summary on a terminal or with -v.\n"
    "With --eval-text the output is evaluated after it is written; a failed gate keeps it.", 1,
};

static void list_types(FILE *f) {
    char names[512];
    fprintf(f, "recipes (llama.cpp file types):\n");
    for (size_t i = 0; slm_ftype_at(i); i++) fprintf(f, "  %-8s %s\n", slm_ftype_at(i)->name, slm_ftype_at(i)->about);
    fprintf(f, "tensor types for overrides: %s\n", slm_dtype_list_writable(names, sizeof names));
}

static int parse_type(const char *option, const char *name, int *out) {
    int t = slm_dtype_from_name(name);
    if (t < 0 || !slm_dtype_can_write(t)) return msg_usage_error("%s: unknown tensor type '%s'", option, name);
    *out = t;
    return 0;
}

/* llama-quantize's positional habits (IN OUT TYPE [N], IN TYPE [N]) get the slm spelling as a hint. */
static int positional_hint(const char *const *pos, int n_pos) {
    if (n_pos >= 3 && slm_ftype_find(pos[2]))
        return msg_usage_error("unexpected argument '%s'; did you mean: slm quantize %s -o %s --type %s%s%s", pos[1], pos[0], pos[1],
                               pos[2], n_pos > 3 ? " -t " : "", n_pos > 3 ? pos[3] : "");
    if (slm_ftype_find(pos[1]))
        return msg_usage_error("unexpected argument '%s'; did you mean: slm quantize %s --type %s%s%s", pos[1], pos[0], pos[1],
                               n_pos > 2 ? " -t " : "", n_pos > 2 ? pos[2] : "");
    return msg_usage_error("unexpected argument '%s'", pos[1]);
}

/* No -o: llama-quantize's default, "ggml-model-<TYPE>.gguf" next to the input file (its folder);
   for a model folder inside it, where llama.cpp's convert_hf_to_gguf.py writes its default. */
static int default_output(const char *in, const char *type, char *buf, size_t cap) {
    struct stat st;
    const char *slash = strrchr(in, '/');
    int dir = stat(in, &st) == 0 && S_ISDIR(st.st_mode);
    int n = dir ? snprintf(buf, cap, "%s%sggml-model-%s.gguf", in, in[strlen(in) - 1] == '/' ? "" : "/", type)
                : snprintf(buf, cap, "%.*sggml-model-%s.gguf", slash ? (int)(slash - in + 1) : 0, in, type);
    if (n < 0 || (size_t)n >= cap) return msg_usage_error("%s: path too long for a default output name: give -o", in);
    return 0;
}

/* --type, --output-tensor-type, --token-embedding-type and --tensor-type into the recipe. */
static int recipe_of(const quantize_opts *o, slm_recipe_opts *r, slm_tt_override *ov, char (*pat)[256]) {
    *r = (slm_recipe_opts){.output_type = -1, .token_embd_type = -1, .pure = o->pure, .overrides = ov};
    const char *type = o->type ? o->type : "Q4_K_M"; /* a target's default starting recipe */
    if (!(r->ftype = slm_ftype_find(type))) return msg_usage_error("unknown type '%s' (see --list-types)", type);
    if (o->output_type && parse_type("--output-tensor-type", o->output_type, &r->output_type)) return EXIT_USAGE;
    if (o->token_embd_type && parse_type("--token-embedding-type", o->token_embd_type, &r->token_embd_type)) return EXIT_USAGE;
    for (int i = 0; i < o->tensor_types.n; i++) {
        const char *v = o->tensor_types.v[i], *eq = strrchr(v, '=');
        if (!eq || eq == v) return msg_usage_error("--tensor-type: expected REGEX=TYPE, got '%s'", v);
        if ((size_t)(eq - v) >= sizeof pat[0]) return msg_usage_error("--tensor-type: pattern too long");
        snprintf(pat[i], sizeof pat[0], "%.*s", (int)(eq - v), v);
        for (char *c = pat[i]; *c; c++) *c = (char)tolower((unsigned char)*c); /* as llama-quantize does */
        char ere[1024];
        slm_err err = {0};
        if (slm_ere_from_ecma(pat[i], ere, sizeof ere, &err)) return msg_usage_error("--tensor-type: %s", err.msg);
        if (parse_type("--tensor-type", eq + 1, &ov[i].type)) return EXIT_USAGE;
        ov[i].pattern = pat[i];
    }
    r->n_overrides = (size_t)o->tensor_types.n;
    return 0;
}

static void defaults(quantize_opts *o) {
    memset(o, 0, sizeof *o);
    o->eval_ctx = 512;
    o->method = -1, o->awq_grid = 20, o->awq_alpha = -1;
    slm_gates_none(&o->gates);
}

/* The manifest: slm's version, the options that shape the output, and one sha256 over the
   inputs' (the model file or folder, the imatrix, the evaluation text). */
static int manifest_of(const quantize_opts *o, const char *in, slm_report_manifest *m, slm_err *err) {
    const char *inputs[5] = {in, o->imatrix, o->eval_text, o->calibration, o->eval_ref};
    static const char *what[5] = {" model\n", " imatrix\n", " eval-text\n", " calibration\n", " eval-ref\n"};
    slm_sha256 s;
    slm_sha256_init(&s);
    for (int k = 0; k < 5; k++) {
        char h[65];
        if (!inputs[k]) continue;
        SLM_TRY(slm_sha256_path(inputs[k], h, err));
        slm_sha256_update(&s, h, 64);
        slm_sha256_update(&s, what[k], strlen(what[k]));
    }
    m->present = 1;
    slm_sha256_hex(&s, m->input_sha256);
    snprintf(m->version, sizeof m->version, "%s", SLM_VERSION);
    static quantize_opts d;
    defaults(&d);
    opts_render(&k_spec, o, &d, m->flags, sizeof m->flags);
    return SLM_OK;
}

/* The evaluation of the written output against MODEL, and the gates (*gate: EXIT_GATE). */
static int evaluate(const quantize_opts *o, const char *in, slm_report *r, int *gate, slm_err *err) {
    cli_eval_args a = {.model = o->out, .ref = o->eval_ref ? o->eval_ref : in, .text = o->eval_text,
                       .ctx = o->eval_ctx, .chunks = o->eval_chunks,
                       .convention = SLM_PPL_SECOND_HALF, .numerics = SLM_NUMERICS_F32};
    SLM_TRY(cli_eval_into(&a, &r->eval, err));
    *gate = cli_gates_check(&o->gates, r);
    if (msg_show_summary())
        fprintf(stderr, "eval %s: PPL %.4f (ref %.4f, %+.4f), mean KLD %.6f, top-1 %.2f%%\n", o->eval_text, r->eval.ppl,
                r->eval.ref_ppl, r->eval.dppl, r->eval.kld_mean, 100.0 * r->eval.top1);
    return SLM_OK;
}

/* A --tensor-type pattern that matched no quantizable tensor is almost always a typo. */
static void warn_unmatched(const slm_recipe_opts *r, const char *const *given) {
    for (size_t i = 0; i < r->n_overrides; i++)
        if (!r->override_hits[i])
            msg_warn("--tensor-type '%s' matches no quantizable tensor (names look like blk.0.attn_q.weight: "
                     "see slm inspect)", given[i]);
}

/* The summary (the dry run's whole point: the table on stdout) and the reports. */
static int finish(const quantize_opts *o, const slm_export *x, slm_report *r, double t0, slm_outset *set, slm_err *err) {
    snprintf(r->command, sizeof r->command, "quantize");
    snprintf(r->version, sizeof r->version, "%s", SLM_VERSION);
    r->threads = slm_threads_get();
    r->seconds = cli_now() - t0;
    r->peak_rss_bytes = cli_peak_rss();
    snprintf(r->calibration, sizeof r->calibration, "%s", o->calibration ? o->calibration : o->imatrix ? o->imatrix : "");
    if (x->awq_groups) {
        size_t n = strlen(r->method_params);
        snprintf(r->method_params + n, sizeof r->method_params - n, " groups=%d mean_alpha=%.3f err_ratio=%.4f clipped=%d",
                 x->awq_groups, x->awq_alpha_sum / x->awq_groups, x->awq_err_base > 0 ? x->awq_err / x->awq_err_base : 1.0,
                 x->awq_clipped);
    }
    if (o->dry) {
        cli_export_print_summary(r, stdout, 1);
        printf("output size: %llu bytes\n", (unsigned long long)r->out_bytes);
    } else if (msg_show_summary()) {
        cli_export_print_summary(r, stderr, g_msg.verbosity >= 2);
        if (r->method[0]) fprintf(stderr, "method %s %s (%.2f s AWQ search)\n", r->method, r->method_params, x->awq_seconds);
    }
    if (o->report) SLM_TRY(slm_report_write_json(set, r, o->report, err));
    if (o->report_dir) SLM_TRY(slm_report_write_dir(set, r, 1, o->report_dir, err));
    return SLM_OK;
}

/* The method (default by what was given) and whether the statistics it needs were given. */
static int method_of(const quantize_opts *o, int *method) {
    const char *stats = o->calibration ? o->calibration : o->imatrix;
    if (o->imatrix && o->calibration) return msg_usage_error("--imatrix and --calibration exclude each other");
    *method = o->method >= 0 ? o->method : o->calibration ? DEFAULT_CALIB_METHOD : o->imatrix ? SLM_QMETHOD_IMATRIX : SLM_QMETHOD_RTN;
    if (*method != SLM_QMETHOD_RTN && !stats)
        return msg_usage_error("--method %s needs calibration statistics: --calibration STATS.gguf (slm calibrate)",
                               slm_qmethod_name(*method));
    return 0;
}

/* The statistics file: importance weights (unless rtn) and, for awq/gptq, calibration statistics
   for this model (e->src.cfg). */
static int load_stats(const quantize_opts *o, cli_export *e, slm_imatrix *im, slm_calib *cal, slm_export_opts *eo,
                      slm_err *err) {
    const char *stats = o->calibration ? o->calibration : o->imatrix;
    slm_qmethod_params_default(&eo->mp);
    eo->mp.awq_grid = (int)o->awq_grid;
    eo->mp.awq_alpha = o->awq_alpha;
    eo->mp.awq_clip = o->awq_clip;
    if (!stats) return SLM_OK;
    SLM_TRY(slm_imatrix_load(im, stats, err));
    if (slm_qmethod_uses_imatrix(eo->method)) {
        eo->imatrix = im;
        eo->imatrix_file = stats;
    }
    if (!slm_qmethod_uses_awq(eo->method) && !slm_qmethod_uses_gptq(eo->method)) return SLM_OK;
    int rc = slm_calib_from_imatrix(cal, im, &e->src.cfg, err);
    if (rc) slm_err_prefix(err, "%s", stats);
    eo->calib = rc ? NULL : cal;
    return rc;
}


/* The command line, over the recipe file's options when --recipe names one. */
static int parse(int argc, char **argv, quantize_opts *o, common_opts *co, const char **pos, int *n_pos, cli_recipe *rf) {
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

/* What parsing cannot check alone. */
static int check_opts(const quantize_opts *o, const char *const *pos, int n_pos) {
    if (!n_pos) return msg_usage_error("missing MODEL");
    if (n_pos > 1) return positional_hint(pos, n_pos);
    if (o->target_size && o->target_bpw > 0) return msg_usage_error("--target-size and --target-bpw exclude each other");
    if (!o->type && !o->target_size && !(o->target_bpw > 0)) return msg_usage_error("missing --type (e.g. --type Q4_K_M; see --list-types)");
    if (slm_gates_any(&o->gates) && !o->eval_text)
        return msg_usage_error("quality gates need an evaluation: add --eval-text FILE (or \"eval\": {\"text\": ...} in a recipe)");
    if (o->eval_ref && !o->eval_text) return msg_usage_error("--eval-ref needs --eval-text FILE");
    if (o->eval_text && o->dry) return msg_usage_error("--eval-text: nothing to evaluate with --dry-run");
    return EXIT_OK;
}

/* --target-size / --target-bpw: the allocation on the recipe's plan, then the plan again with
   the chosen types; the exact planned size checked against the target. */
static int retarget(const quantize_opts *o, const char *in, cli_export *e, slm_export_opts *eo, const slm_report_manifest *mf,
                    slm_err *err) {
    static int types[1 << 16];
    const uint64_t target = o->target_size ? (uint64_t)o->target_size : (uint64_t)(o->target_bpw * (double)e->x.rep.n_params / 8);
    uint64_t size = 0;
    if (e->x.n > SLM_ARRAY_LEN(types)) return slm_errf(err, SLM_E_ARG, "--target-size: too many tensors (%zu)", e->x.n);
    SLM_TRY(slm_export_target(&e->x, target, types, &size, err));
    slm_export_free(&e->x);
    eo->force_types = types;
    SLM_TRY(cli_export_plan(e, in, eo, mf, err));
    slm_report *r = &e->x.rep;
    if (r->out_bytes > target || r->out_bytes != size)
        return slm_errf(err, SLM_E_ARG, "--target-size: planned %llu bytes, predicted %llu, target %llu",
                        (unsigned long long)r->out_bytes, (unsigned long long)size, (unsigned long long)target);
    size_t n = strlen(r->method_params);
    snprintf(r->method_params + n, sizeof r->method_params - n, " target_bytes=%llu achieved_bytes=%llu",
             (unsigned long long)target, (unsigned long long)r->out_bytes);
    return SLM_OK;
}

/* Plans and writes the output; with --eval-text commits it, evaluates it and checks the gates;
   then the reports. A failed gate keeps everything and returns EXIT_GATE. */
static int run(const quantize_opts *o, const common_opts *co, const char *in, slm_export_opts *eo) {
    static cli_outputs outs; /* large: not on the stack */
    cli_outputs_init(&outs, co->force);
    cli_outputs_input(&outs, in);
    cli_outputs_input(&outs, o->imatrix);
    cli_outputs_input(&outs, o->calibration);
    cli_outputs_input(&outs, o->eval_text);
    cli_outputs_input(&outs, o->eval_ref);
    cli_outputs_input(&outs, o->recipe);
    if (cli_outputs_add(&outs, o->dry ? NULL : o->out) || cli_outputs_add(&outs, o->report) ||
        cli_outputs_add_report_dir(&outs, o->report_dir, 1))
        return EXIT_FAIL;
    slm_threads_set((int)co->threads);
    eo->allow_requantize = o->requant;

    double t0 = cli_now();
    slm_err err = {0};
    slm_imatrix im = {0};
    slm_calib cal = {0};
    static cli_export e; /* large: not on the stack */
    static slm_report_manifest mf;
    memset(&e, 0, sizeof e), memset(&mf, 0, sizeof mf);
    int rc = cli_export_open(&e, in, &err), gate = EXIT_OK;
    if (!rc) rc = load_stats(o, &e, &im, &cal, eo, &err);
    if (!rc && o->manifest) rc = manifest_of(o, in, &mf, &err);
    if (!rc) rc = cli_export_plan(&e, in, eo, &mf, &err);
    if (!rc && (o->target_size || o->target_bpw > 0)) rc = retarget(o, in, &e, eo, &mf, &err);
    if (!rc) warn_unmatched(&eo->recipe, o->tensor_types.v);
    if (!rc && !o->dry) rc = cli_export_write(&e, &outs.set, o->out, &err);
    if (!rc && o->eval_text) { /* the output in place first: the evaluation reads it */
        rc = cli_outputs_commit(&outs, &err);
        if (!rc && (rc = evaluate(o, in, &e.x.rep, &gate, &err))) unlink(o->out); /* no model without its report */
    }
    e.x.rep.manifest = mf;
    if (!rc) rc = finish(o, &e.x, &e.x.rep, t0, &outs.set, &err);
    if (!rc) rc = cli_outputs_commit(&outs, &err);
    else cli_outputs_abort(&outs);
    cli_export_free(&e);
    slm_calib_free(&cal);
    slm_imatrix_free(&im);
    return rc ? cli_fail(&err) : gate;
}

int cmd_quantize(int argc, char **argv) {
    static quantize_opts o;
    common_opts co = {0};
    const char *pos[4];
    int n_pos, rc;
    slm_tt_override ov[OPT_LIST_MAX];
    static size_t hits[OPT_LIST_MAX];
    static char pat[OPT_LIST_MAX][256], def_out[4200];
    slm_export_opts eo = {0};
    cli_recipe rf = {0};
    rc = parse(argc, argv, &o, &co, pos, &n_pos, &rf);
    if (!rc && !co.help && !o.list_types) rc = check_opts(&o, pos, n_pos);
    if (!rc && !co.help && !o.list_types && method_of(&o, &eo.method)) rc = EXIT_USAGE;
    if (!rc && !co.help && !o.list_types) rc = recipe_of(&o, &eo.recipe, ov, pat);
    eo.recipe.override_hits = hits;
    if (!rc && !co.help && !o.list_types && !o.out && !o.dry) { /* llama-quantize's default name */
        rc = default_output(pos[0], eo.recipe.ftype->name, def_out, sizeof def_out);
        o.out = def_out;
    }
    if (rc || co.help || o.list_types) {
        if (!rc && o.list_types && !co.help) list_types(stdout);
        cli_recipe_free(&rf);
        return rc;
    }
    rc = run(&o, &co, pos[0], &eo);
    cli_recipe_free(&rf);
    return rc;
}
