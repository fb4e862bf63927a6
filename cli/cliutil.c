/* cliutil.c - helpers every command shares: failure reporting, output checks, clocks, RSS. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "core/adir.h"
#include "model/tok_chkhsh.h"
#include "msg.h"
#include "report/report.h"

int cli_fail(const slm_err *err) {
    msg_error("%s", err->msg[0] ? err->msg : slm_strerror(err->code));
    return EXIT_FAIL;
}

int cli_model_build_calls(const slm_src *s, slm_model *m, int batch, int ctx, int call_tokens, int numerics, slm_err *err) {
    slm_tensor_src ts;
    slm_src_tensors(s, &ts);
    const int flags = SLM_BUILD_MAPPED | (numerics == SLM_NUMERICS_GGML ? SLM_BUILD_KV_F16 : 0);
    SLM_TRY(slm_model_build_calls(m, &s->cfg, &ts, batch, ctx, call_tokens, flags, err));
    m->numerics = numerics;
    return SLM_OK;
}

int cli_model_build(const slm_src *s, slm_model *m, int batch, int ctx, int numerics, slm_err *err) {
    return cli_model_build_calls(s, m, batch, ctx, batch * ctx, numerics, err);
}

int cli_same_file(const char *a, const char *b) {
    struct stat x, y;
    if (!a[0] || !b[0]) return 0;
    if (stat(a, &x) == 0 && stat(b, &y) == 0) return x.st_dev == y.st_dev && x.st_ino == y.st_ino;
    return !strcmp(a, b);
}

void cli_outputs_init(cli_outputs *o, int force) {
    memset(o, 0, sizeof *o);
    o->force = force;
    slm_outset_init(&o->set, force ? SLM_AFILE_REPLACE : 0);
}

void cli_outputs_input(cli_outputs *o, const char *path) {
    if (path && o->n_in < CLI_MAX_INPUTS) o->inputs[o->n_in++] = path;
}

int cli_outputs_add(cli_outputs *o, const char *path) {
    slm_err err = {0};
    if (!path) return EXIT_OK;
    if (o->n == SLM_OUTSET_MAX) return msg_error("%s: too many outputs", path), EXIT_FAIL;
    if (slm_output_check(path, o->inputs, o->n_in, o->paths, o->n, o->force, &err)) return cli_fail(&err);
    o->paths[o->n++] = path;
    return EXIT_OK;
}

int cli_outputs_add_dir(cli_outputs *o, const char *dir) {
    slm_err err = {0};
    if (!dir) return EXIT_OK;
    if (slm_output_dir_check(dir, o->inputs, o->n_in, o->force, &err)) return cli_fail(&err);
    return EXIT_OK;
}

int cli_outputs_add_report_dir(cli_outputs *o, const char *dir, size_t n_runs) {
    if (!dir) return EXIT_OK;
    const char *files[3] = {n_runs == 1 ? SLM_REPORT_JSON_NAME : SLM_REPORT_JSONS_NAME, SLM_REPORT_MD_NAME, SLM_REPORT_HTML_NAME};
    for (int k = 0; k < 3; k++) {
        if (o->n_own == SLM_OUTSET_MAX) return msg_error("%s: too many outputs", dir), EXIT_FAIL;
        char *p = o->own[o->n_own++];
        slm_report_dir_file(p, sizeof o->own[0], dir, files[k]);
        if (cli_outputs_add(o, p)) return EXIT_FAIL;
    }
    return EXIT_OK;
}

int cli_outputs_commit(cli_outputs *o, slm_err *err) { return slm_outset_commit(&o->set, err); }

void cli_outputs_abort(cli_outputs *o) { slm_outset_abort(&o->set); }

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

double cli_peak_rss(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss * 1024.0;
}

int cli_src_open(slm_src *s, const char *path, slm_err *err) {
    SLM_TRY(slm_src_open(s, path, err));
    if (s->kind == SLM_SRC_HF) slm_vocab_pre_from_chkhsh(&s->vocab);
    return SLM_OK;
}
