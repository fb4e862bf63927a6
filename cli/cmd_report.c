/* cmd_report.c - `slm report A.json [B.json ...] -o DIR [-f]`: reads JSON reports written by
 * slm (quantize --report, eval --report) and writes the human-readable comparison into DIR:
 * report.md, report.html (self-contained, charts) and report.json (one input) or reports.json
 * (several). Existing report files are replaced only with -f.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "args.h"
#include "core/mem.h"
#include "report/report.h"
#include "msg.h"

static void usage(FILE *f, int full) {
    fprintf(f, "usage: slm report REPORT.json [REPORT.json ...] -o DIR [-f]\n");
    if (!full) return;
    fprintf(f, "\nReads JSON reports written by slm (slm quantize --report FILE.json, slm eval --report-dir) and\n"
               "writes a human-readable report into DIR (created if missing). An eval report of a file a\n"
               "quantize report wrote is merged into that run (size and quality on one row).\n"
               "  " SLM_REPORT_MD_NAME "     facts, evaluation and per-tensor table (one report), or a comparison\n"
               "                table sorted by output size (several)\n"
               "  " SLM_REPORT_HTML_NAME "   the same as one self-contained page with SVG charts (bits per weight and\n"
               "                relative RMSE per tensor; size against KLD/PPL for several runs);\n"
               "                no scripts, no external resources, works offline\n"
               "  " SLM_REPORT_JSON_NAME "   the report itself (one input), or " SLM_REPORT_JSONS_NAME ": a JSON array of all inputs\n"
               "\noptions:\n"
               "  -o, --output DIR    report folder (required)\n"
               "  -f, --force         overwrite existing report files in DIR\n"
               "  -q, -v              quieter / more verbose\n"
               "  -h, --help          this help\n"
               "\nexit status: 0 ok, 1 failure (unreadable or invalid report, cannot write), 2 usage\n");
}

/* Refuses existing outputs without -f, and an output that is one of the inputs. */
static int check_outputs(const char *dir, size_t n_runs, const char **inputs, size_t n_in, int force) {
    const char *names[3] = {n_runs == 1 ? SLM_REPORT_JSON_NAME : SLM_REPORT_JSONS_NAME, SLM_REPORT_MD_NAME, SLM_REPORT_HTML_NAME};
    const char *sep = dir[strlen(dir) - 1] == '/' ? "" : "/";
    char path[4200];
    for (size_t k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s%s%s", dir, sep, names[k]);
        for (size_t i = 0; i < n_in; i++)
            if (cli_check_output(path, force, inputs[i])) return 1;
    }
    return 0;
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
                if (j != i && strcmp(runs[j].command, "eval") && !runs[j].eval.present && cli_same_file(runs[j].output, r->model)) break;
        if (j < n) {
            runs[j].eval = r->eval;
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

int cmd_report(int argc, char **argv) {
    common_opts co = {0};
    const char *out = NULL;
    const char **inputs = NULL;
    size_t n_in = 0;
    slm_err err = {0};
    args a;
    if (slm_calloc((void **)&inputs, (size_t)argc + 1, sizeof(char *), &err, "argument list")) return cli_fail(&err);
    args_init(&a, argc, argv);
    int rc = EXIT_OK;
    for (const char *s; (s = args_next(&a));) {
        int r;
        if (!args_is_opt(&a)) {
            inputs[n_in++] = s;
        } else if ((r = args_common(&a, &co))) {
            if (r < 0) { rc = EXIT_USAGE; goto done; }
        } else if ((r = args_value(&a, "--output", "-o"))) {
            if (r < 0) { rc = EXIT_USAGE; goto done; }
            out = a.val;
        } else {
            rc = msg_usage_error("unknown option '%s'", s);
            goto done;
        }
    }
    if (co.help) { usage(stdout, co.help == 2); goto done; }
    if (!n_in) { rc = msg_usage_error("missing REPORT.json"); goto done; }
    if (!out || !out[0]) { rc = msg_usage_error("missing -o DIR"); goto done; }
    slm_report *runs = NULL;
    if (slm_calloc((void **)&runs, n_in, sizeof(slm_report), &err, "reports")) { rc = cli_fail(&err); goto done; }
    for (size_t i = 0; i < n_in && !rc; i++) {
        if (slm_report_read_json(&runs[i], inputs[i], &err)) rc = cli_fail(&err);
    }
    size_t n_runs = rc ? n_in : merge_evals(runs, n_in);
    if (!rc && check_outputs(out, n_runs, inputs, n_in, co.force)) rc = EXIT_FAIL;
    if (!rc && slm_report_write_dir(runs, n_runs, out, &err)) rc = cli_fail(&err);
    if (!rc && msg_show_summary())
        fprintf(stderr, "%s: wrote %s, %s and %s (%zu run%s)\n", out, n_runs == 1 ? SLM_REPORT_JSON_NAME : SLM_REPORT_JSONS_NAME,
                SLM_REPORT_MD_NAME, SLM_REPORT_HTML_NAME, n_runs, n_runs == 1 ? "" : "s");
    for (size_t i = 0; i < n_in; i++) slm_report_free(&runs[i]);
    slm_free(runs);
done:
    slm_free(inputs);
    return rc;
}
