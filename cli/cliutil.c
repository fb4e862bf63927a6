/* cliutil.c - helpers every command shares: failure reporting, output checks, clocks, RSS. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "msg.h"

int cli_fail(const slm_err *err) {
    msg_error("%s", err->msg[0] ? err->msg : slm_strerror(err->code));
    return EXIT_FAIL;
}

int cli_model_build(const slm_src *s, slm_model *m, int ctx, slm_err *err) {
    slm_tensor_src ts;
    slm_src_tensors(s, &ts);
    return slm_model_build(m, &s->cfg, &ts, ctx, 0, err);
}

int cli_same_file(const char *a, const char *b) {
    struct stat x, y;
    if (!a[0] || !b[0]) return 0;
    if (stat(a, &x) == 0 && stat(b, &y) == 0) return x.st_dev == y.st_dev && x.st_ino == y.st_ino;
    return !strcmp(a, b);
}

int cli_check_output(const char *out, int force, const char *input) {
    struct stat so;
    if (!strcmp(out, "-")) return 0;
    if (stat(out, &so) == 0) {
        if (input && cli_same_file(out, input)) {
            msg_error("%s: output is the input file", out);
            return 1;
        }
        if (S_ISDIR(so.st_mode)) {
            msg_error("%s: is a folder", out);
            return 1;
        }
        if (!force) {
            msg_error("%s: already exists (use -f to overwrite)", out);
            return 1;
        }
    }
    return 0;
}

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
