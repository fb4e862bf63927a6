/* cmd_report.c - `slm report A.json [B.json ...] -o DIR [-f]`: reads JSON reports written by
 * slm (quantize --report, eval --report) and writes the human-readable comparison into DIR:
 * report.md, report.html (self-contained, charts) and report.json (one input) or reports.json
 * (several). Existing report files are replaced only with -f.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "core/mem.h"
#include "core/slm.h"
#include "report/report.h"
#include "msg.h"
#include "opts.h"

typedef struct report_opts {
    const char *out;
} report_opts;

static const opt k_opts[] = {
    {"--output", "-o", OPT_STR, OPT_OF(report_opts, out), "DIR", "report folder (required; created if missing)", 0, 0, NULL,
     NULL},
};

static const cmd_spec k_spec = {
    "report", "REPORT.json [REPORT.json ...] -o DIR [-f]",
    "Reads JSON reports written by slm (slm quantize --report FILE.json, slm eval --report-dir) and\n"
    "writes a human-readable report into DIR. An eval report of a file a quantize report wrote is\n"
    "merged into that run (size and quality on one row).\n"
    "  " SLM_REPORT_MD_NAME "     facts, evaluation and per-tensor table (one report), or a comparison\n"
    "                table sorted by output size (several)\n"
    "  " SLM_REPORT_HTML_NAME "   the same as one self-contained page with SVG charts (bits per weight and\n"
    "                relative RMSE per tensor; size against KLD/PPL for several runs);\n"
    "                no scripts, no external resources, works offline\n"
    "  " SLM_REPORT_JSON_NAME "   the report itself (one input), or " SLM_REPORT_JSONS_NAME ": a JSON array of all inputs",
    k_opts, SLM_ARRAY_LEN(k_opts), 1, -1, "REPORT.json", NULL, 0,
};

/* 1 when eval report e is of the file run w wrote (w not yet evaluated), or of its packed copy
   (w's output + ".zst", slm pack's name: only the packed size is taken when w has an eval). */
static int evaluates(const slm_report *e, const slm_report *w) {
    size_t n = strlen(w->output), m = strlen(e->model);
    if (!w->eval.present && cli_same_file(w->output, e->model)) return 1;
    return e->eval.packed_bytes > 0 && n && m == n + 4 && !strncmp(e->model, w->output, n) && !strcmp(e->model + n, ".zst");
}

/* An eval report of a file a quantize/convert report wrote becomes that run's evaluation, so
   one row shows both what the recipe cost in size and in quality. Returns the runs left. */
static size_t merge_evals(slm_report *runs, size_t n) {
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        slm_report *r = &runs[i];
        size_t j = n;
        if (!strcmp(r->command, "eval") && r->eval.present)
            for (j = 0; j < n; j++)
                if (j != i && strcmp(runs[j].command, "eval") && evaluates(r, &runs[j])) break;
        if (j < n) {
            if (runs[j].eval.present) runs[j].eval.packed_bytes = r->eval.packed_bytes; /* its packed copy's size */
            else runs[j].eval = r->eval;
            slm_report_free(r);
            r->command[0] = 0; /* merged away */
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!runs[i].command[0]) continue;
        if (kept != i) {
            runs[kept] = runs[i];
            memset(&runs[i], 0, sizeof runs[i]);
        }
        kept++;
    }
    return kept;
}

/* Reads every input, merges eval runs into the runs they evaluate, writes the folder. */
static int write_reports(const char *out, const char **inputs, size_t n_in, int force) {
    slm_err err = {0};
    slm_report *runs = NULL;
    if (slm_calloc((void **)&runs, n_in, sizeof(slm_report), &err, "reports")) return cli_fail(&err);
    int rc = EXIT_OK;
    for (size_t i = 0; i < n_in && !rc; i++)
        if (slm_report_read_json(&runs[i], inputs[i], &err)) rc = cli_fail(&err);
    size_t n_runs = rc ? n_in : merge_evals(runs, n_in);
    static cli_outputs outs; /* large (the outputs' paths): not on the stack */
    cli_outputs_init(&outs, force);
    for (size_t i = 0; i < n_in && i < CLI_MAX_INPUTS; i++) cli_outputs_input(&outs, inputs[i]);
    if (!rc && cli_outputs_add_report_dir(&outs, out, n_runs)) rc = EXIT_FAIL;
    if (!rc && (slm_report_write_dir(&outs.set, runs, n_runs, out, &err) || cli_outputs_commit(&outs, &err))) rc = cli_fail(&err);
    cli_outputs_abort(&outs);
    if (!rc && msg_show_summary())
        fprintf(stderr, "%s: wrote %s, %s and %s (%zu run%s)\n", out, n_runs == 1 ? SLM_REPORT_JSON_NAME : SLM_REPORT_JSONS_NAME,
                SLM_REPORT_MD_NAME, SLM_REPORT_HTML_NAME, n_runs, n_runs == 1 ? "" : "s");
    for (size_t i = 0; i < n_in; i++) slm_report_free(&runs[i]);
    slm_free(runs);
    return rc;
}

int cmd_report(int argc, char **argv) {
    report_opts o = {0};
    common_opts co = {0};
    const char **inputs = NULL;
    int n_in = 0, rc;
    slm_err err = {0};
    if (slm_calloc((void **)&inputs, (size_t)argc + 1, sizeof(char *), &err, "argument list")) return cli_fail(&err);
    if (opts_parse(&k_spec, argc, argv, &o, &co, inputs, &n_in)) rc = EXIT_USAGE;
    else if (co.help) rc = EXIT_OK;
    else if (!o.out || !o.out[0]) rc = msg_usage_error("missing -o DIR");
    else rc = write_reports(o.out, inputs, (size_t)n_in, co.force);
    slm_free(inputs);
    return rc;
}
