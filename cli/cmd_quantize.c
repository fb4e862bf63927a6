/* cmd_quantize.c - `slm quantize MODEL -o OUT.gguf --type Q4_K_M [options]`: options, checks, the
 * export pipeline (cli_export.h) with a recipe, the summary and the reports. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_eval.h"
#include "cli_export.h"
#include "cli_gates.h"
#include "cli_recipe.h"
#include "core/dtype.h"
#include "core/sha256.h"
#include "core/slm.h"
#include "core/thread.h"
#include "msg.h"
#include "opts.h"
#include "quantize/qtypes.h"
#include "report/gate.h"

typedef struct quantize_opts {
    const char *out, *type, *report, *report_dir, *output_type, *token_embd_type, *imatrix, *recipe, *eval_text;
    opt_list tensor_types; /* REGEX=TYPE */
    int dry, requant, pure, list_types, manifest;
    long eval_ctx, eval_chunks;
    slm_gates gates;
} quantize_opts;

static const opt k_opts[] = {
    {"--output", "-o", OPT_STR, OPT_OF(quantize_opts, out), "FILE", "output GGUF (required unless --dry-run)", 0, 0, NULL, NULL},
    {"--type", NULL, OPT_STR, OPT_OF(quantize_opts, type), "TYPE", "recipe, e.g. Q4_K_M, Q8_0, Q6_K (see --list-types)", 0, 0,
     NULL, NULL},
    {"--imatrix", NULL, OPT_STR, OPT_OF(quantize_opts, imatrix), "FILE",
     "importance matrix: llama-imatrix's GGUF or .dat, or slm calibrate's output;\nimportance-weighted rounding, "
     "llama-quantize --imatrix's bytes", 0, 0, NULL, NULL},
    {"--tensor-type", NULL, OPT_LIST, OPT_OF(quantize_opts, tensor_types), "REGEX=TYPE",
     "type for tensors whose name matches REGEX (repeatable)", 0, 64, NULL, NULL},
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
    k_opts, SLM_ARRAY_LEN(k_opts), 0, 1, "MODEL", /* 0: --list-types needs none */
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

/* --type, --output-tensor-type, --token-embedding-type and --tensor-type into the recipe. */
static int recipe_of(const quantize_opts *o, slm_recipe_opts *r, slm_tt_override *ov, char (*pat)[256]) {
    *r = (slm_recipe_opts){.output_type = -1, .token_embd_type = -1, .pure = o->pure, .overrides = ov};
    if (!(r->ftype = slm_ftype_find(o->type))) return msg_usage_error("unknown type '%s' (see --list-types)", o->type);
    if (o->output_type && parse_type("--output-tensor-type", o->output_type, &r->output_type)) return EXIT_USAGE;
    if (o->token_embd_type && parse_type("--token-embedding-type", o->token_embd_type, &r->token_embd_type)) return EXIT_USAGE;
    for (int i = 0; i < o->tensor_types.n; i++) {
        const char *v = o->tensor_types.v[i], *eq = strrchr(v, '=');
        if (!eq || eq == v) return msg_usage_error("--tensor-type: expected REGEX=TYPE, got '%s'", v);
        if ((size_t)(eq - v) >= sizeof pat[0]) return msg_usage_error("--tensor-type: pattern too long");
        snprintf(pat[i], sizeof pat[0], "%.*s", (int)(eq - v), v);
        if (parse_type("--tensor-type", eq + 1, &ov[i].type)) return EXIT_USAGE;
        ov[i].pattern = pat[i];
    }
    r->n_overrides = (size_t)o->tensor_types.n;
    return 0;
}

/* The manifest: slm's version, the options that shape the output, and one sha256 over the
   inputs' (the model file or folder, the imatrix, the evaluation text). */
static int manifest_of(const quantize_opts *o, const char *in, slm_report_manifest *m, slm_err *err) {
    const char *inputs[3] = {in, o->imatrix, o->eval_text};
    slm_sha256 s;
    slm_sha256_init(&s);
    for (int k = 0; k < 3; k++) {
        char h[65];
        if (!inputs[k]) continue;
        SLM_TRY(slm_sha256_path(inputs[k], h, err));
        slm_sha256_update(&s, h, 64);
        slm_sha256_update(&s, k == 0 ? " model\n" : k == 1 ? " imatrix\n" : " eval-text\n", k == 0 ? 7 : k == 1 ? 9 : 11);
    }
    m->present = 1;
    slm_sha256_hex(&s, m->input_sha256);
    snprintf(m->version, sizeof m->version, "%s", SLM_VERSION);
    opts_render(&k_spec, o, m->flags, sizeof m->flags);
    return SLM_OK;
}

/* The evaluation of the written output against MODEL, and the gates (*gate: EXIT_GATE). */
static int evaluate(const quantize_opts *o, const char *in, slm_report *r, int *gate, slm_err *err) {
    cli_eval_args a = {.model = o->out, .ref = in, .text = o->eval_text, .ctx = o->eval_ctx, .chunks = o->eval_chunks,
                       .convention = SLM_PPL_SECOND_HALF, .numerics = SLM_NUMERICS_F32};
    SLM_TRY(cli_eval_into(&a, &r->eval, err));
    *gate = cli_gates_check(&o->gates, r);
    if (msg_show_summary())
        fprintf(stderr, "eval %s: PPL %.4f (ref %.4f, %+.4f), mean KLD %.6f, top-1 %.2f%%\n", o->eval_text, r->eval.ppl,
                r->eval.ref_ppl, r->eval.dppl, r->eval.kld_mean, 100.0 * r->eval.top1);
    return SLM_OK;
}

/* The summary (the dry run's whole point: the table on stdout) and the reports. */
static int finish(const quantize_opts *o, slm_report *r, double t0, slm_outset *set, slm_err *err) {
    snprintf(r->command, sizeof r->command, "quantize");
    snprintf(r->version, sizeof r->version, "%s", SLM_VERSION);
    r->threads = slm_threads_get();
    r->seconds = cli_now() - t0;
    r->peak_rss_bytes = cli_peak_rss();
    if (o->dry) {
        cli_export_print_summary(r, stdout, 1);
        printf("output size: %llu bytes\n", (unsigned long long)r->out_bytes);
    } else if (msg_show_summary()) {
        cli_export_print_summary(r, stderr, g_msg.verbosity >= 2);
    }
    if (o->report) SLM_TRY(slm_report_write_json(set, r, o->report, err));
    if (o->report_dir) SLM_TRY(slm_report_write_dir(set, r, 1, o->report_dir, err));
    return SLM_OK;
}

static void defaults(quantize_opts *o) {
    memset(o, 0, sizeof *o);
    o->eval_ctx = 512;
    slm_gates_none(&o->gates);
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
static int check_opts(const quantize_opts *o, int n_pos) {
    if (!n_pos) return msg_usage_error("missing MODEL");
    if (!o->type) return msg_usage_error("missing --type (e.g. --type Q4_K_M; see --list-types)");
    if (!o->out && !o->dry) return msg_usage_error("missing -o OUT.gguf");
    if (slm_gates_any(&o->gates) && !o->eval_text)
        return msg_usage_error("quality gates need an evaluation: add --eval-text FILE (or \"eval\": {\"text\": ...} in a recipe)");
    if (o->eval_text && o->dry) return msg_usage_error("--eval-text: nothing to evaluate with --dry-run");
    return EXIT_OK;
}

/* Plans and writes the output; with --eval-text commits it, evaluates it and checks the gates;
   then the reports. A failed gate keeps everything and returns EXIT_GATE. */
static int run(const quantize_opts *o, const common_opts *co, const char *in, slm_export_opts *eo) {
    static cli_outputs outs; /* large: not on the stack */
    cli_outputs_init(&outs, co->force);
    cli_outputs_input(&outs, in);
    cli_outputs_input(&outs, o->imatrix);
    cli_outputs_input(&outs, o->eval_text);
    cli_outputs_input(&outs, o->recipe);
    if (cli_outputs_add(&outs, o->dry ? NULL : o->out) || cli_outputs_add(&outs, o->report) ||
        cli_outputs_add_report_dir(&outs, o->report_dir, 1))
        return EXIT_FAIL;
    slm_threads_set((int)co->threads);
    eo->allow_requantize = o->requant;

    double t0 = cli_now();
    slm_err err = {0};
    slm_imatrix im = {0};
    static cli_export e;
    static slm_report_manifest mf;
    memset(&e, 0, sizeof e), memset(&mf, 0, sizeof mf);
    int rc = o->imatrix ? slm_imatrix_load(&im, o->imatrix, &err) : SLM_OK, gate = EXIT_OK;
    eo->imatrix = o->imatrix ? &im : NULL;
    eo->imatrix_file = o->imatrix;
    if (!rc && o->manifest) rc = manifest_of(o, in, &mf, &err);
    if (!rc) rc = cli_export_plan(&e, in, eo, &mf, &err);
    if (!rc && !o->dry) rc = cli_export_write(&e, &outs.set, o->out, &err);
    if (!rc && o->eval_text) { /* the output in place first: the evaluation reads it */
        rc = cli_outputs_commit(&outs, &err);
        if (!rc && (rc = evaluate(o, in, &e.x.rep, &gate, &err))) unlink(o->out); /* no model without its report */
    }
    e.x.rep.manifest = mf;
    if (!rc) rc = finish(o, &e.x.rep, t0, &outs.set, &err);
    if (!rc) rc = cli_outputs_commit(&outs, &err);
    else cli_outputs_abort(&outs);
    cli_export_free(&e);
    slm_imatrix_free(&im);
    return rc ? cli_fail(&err) : gate;
}

int cmd_quantize(int argc, char **argv) {
    static quantize_opts o;
    common_opts co = {0};
    const char *pos[1];
    int n_pos, rc;
    slm_tt_override ov[OPT_LIST_MAX];
    char pat[OPT_LIST_MAX][256];
    slm_export_opts eo = {0};
    cli_recipe rf = {0};
    rc = parse(argc, argv, &o, &co, pos, &n_pos, &rf);
    if (!rc && !co.help && !o.list_types) rc = check_opts(&o, n_pos);
    if (!rc && !co.help && !o.list_types) rc = recipe_of(&o, &eo.recipe, ov, pat);
    if (rc || co.help || o.list_types) {
        if (!rc && o.list_types && !co.help) list_types(stdout);
        cli_recipe_free(&rf);
        return rc;
    }
    rc = run(&o, &co, pos[0], &eo);
    cli_recipe_free(&rf);
    return rc;
}
