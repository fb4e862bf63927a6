/* args.c - strict option parsing (zstd's NEXT_FIELD idea without hidden control flow). */
#include "args.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"

void args_init(args *a, int argc, char **argv) {
    a->argc = argc;
    a->argv = argv;
    a->i = 0; /* argv[0] is the command; args_next moves to 1 */
    a->val = NULL;
    a->only_positional = 0;
}

const char *args_next(args *a) {
    a->i++;
    if (a->i >= a->argc) return NULL;
    if (!a->only_positional && !strcmp(a->argv[a->i], "--")) {
        a->only_positional = 1;
        return args_next(a);
    }
    return a->argv[a->i];
}

int args_is_opt(const args *a) {
    const char *s = a->argv[a->i];
    return !a->only_positional && s[0] == '-' && s[1] != 0;
}

int args_flag(const args *a, const char *lng, const char *shrt) {
    const char *s = a->argv[a->i];
    return (lng && !strcmp(s, lng)) || (shrt && !strcmp(s, shrt));
}

static int looks_numeric(const char *s) { return (s[0] == '-' || s[0] == '+') && (s[1] >= '0' && s[1] <= '9'); }

int args_value(args *a, const char *lng, const char *shrt) {
    const char *s = a->argv[a->i];
    size_t n = lng ? strlen(lng) : 0;
    if (lng && !strncmp(s, lng, n) && s[n] == '=') {
        a->val = s + n + 1;
        return 1;
    }
    if (!args_flag(a, lng, shrt)) return 0;
    if (a->i + 1 >= a->argc || (a->argv[a->i + 1][0] == '-' && a->argv[a->i + 1][1] && !looks_numeric(a->argv[a->i + 1]))) {
        msg_usage_error("option '%s' needs a value", s);
        return -1;
    }
    a->val = a->argv[++a->i];
    return 1;
}

int args_int(const args *a, const char *opt, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(a->val, &end, 10);
    if (errno || end == a->val || *end || v < lo || v > hi) {
        msg_usage_error("option '%s': '%s' is not an integer in [%ld, %ld]", opt, a->val, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int args_double(const args *a, const char *opt, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(a->val, &end);
    if (errno || end == a->val || *end || !(v >= lo && v <= hi)) {
        msg_usage_error("option '%s': '%s' is not a number in [%g, %g]", opt, a->val, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int args_common(args *a, common_opts *c) {
    int r;
    if (args_flag(a, "--help", NULL)) { c->help = 2; return 1; }
    if (args_flag(a, NULL, "-h")) { c->help = 1; return 1; }
    if (args_flag(a, "--quiet", "-q")) { if (g_msg.verbosity > 0) g_msg.verbosity--; return 1; }
    if (args_flag(a, "--verbose", "-v")) { if (g_msg.verbosity < 3) g_msg.verbosity++; return 1; }
    if (args_flag(a, "--force", "-f")) { c->force = 1; return 1; }
    if (args_flag(a, "--progress", NULL)) { g_msg.progress = 1; return 1; }
    if (args_flag(a, "--no-progress", NULL)) { g_msg.progress = 0; return 1; }
    if ((r = args_value(a, "--threads", "-t")) != 0) {
        long v;
        if (r < 0 || args_int(a, "--threads", 1, 1024, &v)) return -1;
        c->threads = (int)v;
        return 1;
    }
    return 0;
}
