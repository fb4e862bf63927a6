/* cmd_quantize.c - `slm quantize MODEL -o OUT.gguf --type Q4_K_M [options]`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "core/dtype.h"
#include "quantize/qtypes.h"
#include "core/mem.h"
#include "core/slm.h"
#include "core/thread.h"
#include "cli_export.h"
#include "msg.h"
#include "quantize/quants.h"

#define MAX_OVERRIDES 64

static void list_types(FILE *f) {
    fprintf(f, "recipes (llama.cpp file types):\n");
    for (size_t i = 0; slm_ftype_at(i); i++) {
        const slm_ftype_desc *d = slm_ftype_at(i);
        fprintf(f, "  %-8s %s\n", d->name, d->about);
    }
    char names[256];
    fprintf(f, "tensor types for overrides: %s\n", slm_dtype_list_writable(names, sizeof names));
}

static void usage(FILE *f, int full) {
    fprintf(f, "usage: slm quantize MODEL -o OUT.gguf --type TYPE [options]\n");
    if (!full) return;
    fprintf(f, "\nMODEL is a Hugging Face folder or a GGUF file (F32, F16 or BF16). The output is a GGUF\n"
               "llama.cpp runs as it is; each tensor's type follows llama.cpp's recipe for TYPE.\n\n"
               "options:\n"
               "  -o, --output FILE           output GGUF (required unless --dry-run)\n"
               "  --type TYPE                 recipe, e.g. Q4_K_M, Q8_0, Q6_K (see --list-types)\n"
               "  --tensor-type REGEX=TYPE    type for tensors whose name matches REGEX (repeatable)\n"
               "  --output-tensor-type TYPE   type of output.weight\n"
               "  --token-embedding-type TYPE type of token_embd.weight\n"
               "  --pure                      every quantizable tensor gets the recipe's base type\n"
               "  --allow-requantize          accept an already quantized input\n"
               "  --dry-run                   print each tensor's type and the exact output size; write nothing\n"
               "  --report FILE.json          per-tensor size and error report (JSON)\n"
               "  --report-dir DIR            the report as report.json, report.md and report.html\n"
               "  --list-types                list the recipes\n"
               "  -f, --force                 overwrite an existing output\n"
               "  -t, --threads N             threads (default: OMP_NUM_THREADS, else all cores)\n"
               "  -q, -v                      quieter / more verbose; --progress, --no-progress\n"
               "\nOutput is identical for any thread count. Summary on a terminal or with -v.\n"
               "exit status: 0 ok, 1 failure, 2 usage, 130/143 interrupted\n");
}

static int parse_type(const char *opt, const char *name, int *out) {
    int t = slm_dtype_from_name(name);
    if (t < 0 || !slm_dtype_can_write(t)) return msg_usage_error("%s: unknown tensor type '%s'", opt, name);
    *out = t;
    return 0;
}

int cmd_quantize(int argc, char **argv) {
    common_opts co = {0};
    const char *in = NULL, *out = NULL, *type = NULL, *report = NULL, *report_dir = NULL;
    int dry = 0, requant = 0, pure = 0, out_type = -1, emb_type = -1;
    slm_tt_override ov[MAX_OVERRIDES];
    char ov_pat[MAX_OVERRIDES][256];
    size_t n_ov = 0;
    args a;
    args_init(&a, argc, argv);
    for (const char *s; (s = args_next(&a));) {
        int r;
        if (!args_is_opt(&a)) {
            if (in) return msg_usage_error("unexpected argument '%s'", s);
            in = s;
        } else if ((r = args_common(&a, &co))) {
            if (r < 0) return EXIT_USAGE;
        } else if ((r = args_value(&a, "--output", "-o"))) {
            if (r < 0) return EXIT_USAGE;
            out = a.val;
        } else if ((r = args_value(&a, "--type", NULL))) {
            if (r < 0) return EXIT_USAGE;
            type = a.val;
        } else if ((r = args_value(&a, "--report", NULL))) {
            if (r < 0) return EXIT_USAGE;
            report = a.val;
        } else if ((r = args_value(&a, "--report-dir", NULL))) {
            if (r < 0) return EXIT_USAGE;
            report_dir = a.val;
        } else if ((r = args_value(&a, "--output-tensor-type", NULL))) {
            if (r < 0 || parse_type("--output-tensor-type", a.val, &out_type)) return EXIT_USAGE;
        } else if ((r = args_value(&a, "--token-embedding-type", NULL))) {
            if (r < 0 || parse_type("--token-embedding-type", a.val, &emb_type)) return EXIT_USAGE;
        } else if ((r = args_value(&a, "--tensor-type", NULL))) {
            if (r < 0) return EXIT_USAGE;
            const char *eq = strrchr(a.val, '=');
            if (!eq || eq == a.val) return msg_usage_error("--tensor-type: expected REGEX=TYPE, got '%s'", a.val);
            if (n_ov == MAX_OVERRIDES) return msg_usage_error("--tensor-type: at most %d overrides", MAX_OVERRIDES);
            if ((size_t)(eq - a.val) >= sizeof ov_pat[0]) return msg_usage_error("--tensor-type: pattern too long");
            snprintf(ov_pat[n_ov], sizeof ov_pat[0], "%.*s", (int)(eq - a.val), a.val);
            if (parse_type("--tensor-type", eq + 1, &ov[n_ov].type)) return EXIT_USAGE;
            ov[n_ov].pattern = ov_pat[n_ov];
            n_ov++;
        } else if (args_flag(&a, "--dry-run", NULL)) {
            dry = 1;
        } else if (args_flag(&a, "--allow-requantize", NULL)) {
            requant = 1;
        } else if (args_flag(&a, "--pure", NULL)) {
            pure = 1;
        } else if (args_flag(&a, "--list-types", NULL)) {
            list_types(stdout);
            return EXIT_OK;
        } else {
            return msg_usage_error("unknown option '%s'", s);
        }
    }
    if (co.help) { usage(stdout, co.help == 2); return EXIT_OK; }
    if (!in) return msg_usage_error("missing MODEL");
    if (!type) return msg_usage_error("missing --type (e.g. --type Q4_K_M; see --list-types)");
    const slm_ftype_desc *ft = slm_ftype_find(type);
    if (!ft) return msg_usage_error("unknown type '%s' (see --list-types)", type);
    if (!out && !dry) return msg_usage_error("missing -o OUT.gguf");
    if (out && !dry && cli_check_output(out, co.force, in)) return EXIT_FAIL;
    if (report && cli_check_output(report, co.force, NULL)) return EXIT_FAIL;
    slm_threads_set(co.threads);

    double t0 = cli_now();
    slm_err err = {0};
    cli_export e;
    slm_export_opts o = {.allow_requantize = requant,
                         .recipe = {.ftype = ft, .output_type = out_type, .token_embd_type = emb_type, .pure = pure,
                                    .overrides = ov, .n_overrides = n_ov}};
    int rc = cli_export_plan(&e, in, &o, &err);
    if (!rc && !dry) rc = cli_export_write(&e, out, &err);
    slm_report *r = &e.x.rep;
    if (!rc) {
        snprintf(r->command, sizeof r->command, "quantize");
        snprintf(r->version, sizeof r->version, "%s", SLM_VERSION);
        r->threads = slm_threads_get();
        r->seconds = cli_now() - t0;
        r->peak_rss_bytes = cli_peak_rss();
        if (dry) {
            cli_export_print_summary(r, stdout, 1); /* the dry run's whole point is this table */
            printf("output size: %llu bytes\n", (unsigned long long)r->out_bytes);
        } else if (msg_show_summary()) {
            cli_export_print_summary(r, stderr, g_msg.verbosity >= 2);
        }
        if (report && !rc) rc = slm_report_write_json(r, report, &err);
        if (report_dir && !rc) rc = slm_report_write_dir(r, 1, report_dir, &err);
    }
    cli_export_free(&e);
    return rc ? cli_fail(&err) : EXIT_OK;
}
