/* opts.c - the table-driven option parser and the usage/help/man renderings (zstd's strict
 * NEXT_FIELD idea, without hidden control flow: every option is a row of a table).
 */
#include "opts.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/slm.h"
#include "msg.h"

/* ---- the options every command accepts (help rendered after the command's own) */

enum { C_HELP, C_SHORT_HELP, C_QUIET, C_VERBOSE, C_FORCE, C_THREADS, C_PROGRESS, C_NO_PROGRESS };
static const struct {
    const char *lng, *shrt, *metavar, *help;
} k_common[] = {
    [C_HELP] = {"--help", NULL, NULL, NULL},
    [C_SHORT_HELP] = {NULL, "-h", NULL, "-h: short usage, --help: this help"},
    [C_QUIET] = {"--quiet", "-q", NULL, "less output (errors only)"},
    [C_VERBOSE] = {"--verbose", "-v", NULL, "more output (the summary also when not on a terminal)"},
    [C_FORCE] = {"--force", "-f", NULL, "overwrite existing outputs"},
    [C_THREADS] = {"--threads", "-t", "N", "threads (default: OMP_NUM_THREADS, else all cores); results do not depend on it"},
    [C_PROGRESS] = {"--progress", NULL, NULL, "show a progress line even when stderr is not a terminal"},
    [C_NO_PROGRESS] = {"--no-progress", NULL, NULL, "never show a progress line"},
};

/* Where the values being parsed come from, for messages ("r.json: key 'type': "), or NULL
   (the command line). */
static const char *s_where;

/* A usage error about a value, prefixed with s_where when values come from a file. */
static int value_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int value_error(const char *fmt, ...) {
    char b[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof b, fmt, ap);
    va_end(ap);
    return msg_usage_error("%s%s", s_where ? s_where : "", b);
}

static int is_name(const char *arg, const char *lng, const char *shrt) {
    return (lng && !strcmp(arg, lng)) || (shrt && !strcmp(arg, shrt));
}

static int looks_numeric(const char *s) { return (s[0] == '-' || s[0] == '+') && s[1] >= '0' && s[1] <= '9'; }

/* The value of option arg (at argv[*i]): "--opt=v" or the next argument. NULL after a usage error. */
static const char *take_value(int argc, char **argv, int *i, const char *lng) {
    const char *s = argv[*i];
    size_t n = lng ? strlen(lng) : 0;
    if (lng && !strncmp(s, lng, n) && s[n] == '=') return s + n + 1;
    if (*i + 1 >= argc || (argv[*i + 1][0] == '-' && argv[*i + 1][1] && !looks_numeric(argv[*i + 1]))) {
        msg_usage_error("option '%s' needs a value", s);
        return NULL;
    }
    return argv[++*i];
}

/* 1 when arg names this option (also as "--opt=value" for options with values). */
static int matches(const char *arg, const char *lng, const char *shrt, int has_value) {
    if (is_name(arg, lng, shrt)) return 1;
    size_t n = lng ? strlen(lng) : 0;
    return has_value && lng && !strncmp(arg, lng, n) && arg[n] == '=';
}

static int parse_long(const char *name, const char *v, double lo, double hi, long *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || (double)x < lo || (double)x > hi) {
        value_error("option '%s': '%s' is not an integer in [%.0f, %.0f]", name, v, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

static int parse_double(const char *name, const char *v, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !(x >= lo && x <= hi)) {
        value_error("option '%s': '%s' is not a number in [%g, %g]", name, v, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

/* Stores value v of option o into out. */
static int store(const opt *o, const char *v, void *out) {
    char *field = (char *)out + o->off;
    switch (o->kind) {
    case OPT_FLAG: *(int *)(void *)field = 1; return 0;
    case OPT_STR: *(const char **)(void *)field = v; return 0;
    case OPT_INT: return parse_long(o->lng, v, o->lo, o->hi, (long *)(void *)field);
    case OPT_NUM: return parse_double(o->lng, v, o->lo, o->hi, (double *)(void *)field);
    case OPT_CHOICE:
        for (const opt_choice *c = o->choices; c->name; c++)
            if (!strcasecmp(c->name, v)) return *(int *)(void *)field = c->value, 0;
        {
            char names[256] = "";
            size_t len = 0;
            for (const opt_choice *c = o->choices; c->name && len < sizeof names; c++)
                len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", c == o->choices ? "" : ", ", c->name);
            value_error("%s: '%s' is not one of %s%s%s", o->lng, v, names, o->hint ? " " : "", o->hint ? o->hint : "");
        }
        return -1;
    case OPT_LIST: {
        opt_list *l = (opt_list *)(void *)field;
        if (l->n >= (int)o->hi || l->n >= OPT_LIST_MAX) {
            value_error("%s: at most %.0f values", o->lng, o->hi);
            return -1;
        }
        l->v[l->n++] = v;
        return 0;
    }
    }
    return -1;
}

/* A common option at argv[*i]: 1 consumed, 0 not common, -1 usage error. */
static int parse_common(int argc, char **argv, int *i, common_opts *co) {
    const char *s = argv[*i];
    if (is_name(s, "--help", NULL)) return co->help = 2, 1;
    if (is_name(s, "--man", NULL)) return co->help = 3, 1; /* this command's man page section (make install) */
    if (is_name(s, NULL, "-h")) return co->help = co->help ? co->help : 1, 1;
    if (is_name(s, "--quiet", "-q")) return g_msg.verbosity -= g_msg.verbosity > 0, 1;
    if (is_name(s, "--verbose", "-v")) return g_msg.verbosity += g_msg.verbosity < 3, 1;
    if (is_name(s, "--force", "-f")) return co->force = 1, 1;
    if (is_name(s, "--progress", NULL)) return g_msg.progress = 1, 1;
    if (is_name(s, "--no-progress", NULL)) return g_msg.progress = 0, 1;
    if (matches(s, "--threads", "-t", 1)) {
        const char *v = take_value(argc, argv, i, "--threads");
        return v && !parse_long("--threads", v, 1, 1024, &co->threads) ? 1 : -1;
    }
    return 0;
}

int opts_parse(const cmd_spec *spec, int argc, char **argv, void *out, common_opts *co, const char **pos, int *n_pos) {
    int only_pos = 0;
    *n_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!only_pos && !strcmp(s, "--")) { only_pos = 1; continue; }
        if (only_pos || s[0] != '-' || !s[1]) {
            if (spec->n_pos_max >= 0 && *n_pos >= spec->n_pos_max) return msg_usage_error("unexpected argument '%s'", s);
            pos[(*n_pos)++] = s;
            continue;
        }
        int r = parse_common(argc, argv, &i, co);
        if (r < 0) return 2;
        if (r > 0) continue;
        const opt *o = NULL;
        for (size_t k = 0; k < spec->n_opts && !o; k++)
            if (matches(s, spec->opts[k].lng, spec->opts[k].shrt, spec->opts[k].kind != OPT_FLAG)) o = &spec->opts[k];
        if (!o) return msg_usage_error("unknown option '%s'", s);
        const char *v = o->kind == OPT_FLAG ? NULL : take_value(argc, argv, &i, o->lng);
        if ((o->kind != OPT_FLAG && !v) || store(o, v, out)) return 2;
    }
    if (co->help == 3) {
        opts_man(spec, stdout);
        return 0;
    }
    if (co->help) {
        opts_usage(spec, stdout, co->help == 2);
        return 0;
    }
    if (*n_pos < spec->n_pos_min) return msg_usage_error("missing %s", spec->pos_names);
    return 0;
}

const opt *opts_find(const cmd_spec *spec, const char *lng) {
    for (size_t k = 0; k < spec->n_opts; k++)
        if (spec->opts[k].lng && !strcmp(spec->opts[k].lng, lng)) return &spec->opts[k];
    return NULL;
}

int opts_apply(const opt *o, const char *value, void *out, const char *where) {
    s_where = where;
    int rc = store(o, value, out) ? 2 : 0;
    s_where = NULL;
    return rc;
}

/* 1 for options whose value names a file or folder (metavar FILE..., DIR, ..._MODEL). */
static int is_path(const opt *o) {
    return o->metavar && (strstr(o->metavar, "FILE") || strstr(o->metavar, "DIR") || strstr(o->metavar, "MODEL"));
}

/* 1 when option o holds the same value in a and b. */
static int same_value(const opt *o, const char *a, const char *b) {
    switch (o->kind) {
    case OPT_FLAG:
    case OPT_CHOICE: return *(const int *)(const void *)a == *(const int *)(const void *)b;
    case OPT_INT: return *(const long *)(const void *)a == *(const long *)(const void *)b;
    case OPT_NUM: {
        double x = *(const double *)(const void *)a, y = *(const double *)(const void *)b;
        return x == y || (isnan(x) && isnan(y));
    }
    case OPT_STR: {
        const char *x = *(const char *const *)(const void *)a, *y = *(const char *const *)(const void *)b;
        return x == y || (x && y && !strcmp(x, y));
    }
    case OPT_LIST: {
        const opt_list *x = (const opt_list *)(const void *)a, *y = (const opt_list *)(const void *)b;
        if (x->n != y->n) return 0;
        for (int i = 0; i < x->n; i++)
            if (strcmp(x->v[i], y->v[i])) return 0;
        return 1;
    }
    }
    return 0;
}

size_t opts_render(const cmd_spec *spec, const void *opts, const void *defaults, char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = 0;
#define PUT(...) (n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, __VA_ARGS__))
    for (size_t k = 0; k < spec->n_opts; k++) {
        const opt *o = &spec->opts[k];
        const char *f = (const char *)opts + o->off;
        const char *sp = n ? " " : "";
        if (is_path(o)) continue;
        if (defaults && same_value(o, f, (const char *)defaults + o->off)) continue;
        switch (o->kind) {
        case OPT_FLAG: if (*(const int *)(const void *)f) PUT("%s%s", sp, o->lng); break;
        case OPT_STR: if (*(const char *const *)(const void *)f) PUT("%s%s %s", sp, o->lng, *(const char *const *)(const void *)f); break;
        case OPT_INT: PUT("%s%s %ld", sp, o->lng, *(const long *)(const void *)f); break;
        case OPT_NUM: if (!isnan(*(const double *)(const void *)f)) PUT("%s%s %.10g", sp, o->lng, *(const double *)(const void *)f); break;
        case OPT_CHOICE:
            for (const opt_choice *c = o->choices; c->name; c++)
                if (c->value == *(const int *)(const void *)f) PUT("%s%s %s", sp, o->lng, c->name);
            break;
        case OPT_LIST:
            for (int i = 0; i < ((const opt_list *)(const void *)f)->n; i++)
                PUT("%s%s %s", n ? " " : "", o->lng, ((const opt_list *)(const void *)f)->v[i]);
            break;
        }
    }
#undef PUT
    return n;
}

/* ---- renderings */

/* "-o, --output FILE" / "--convention second-half|all" into buf */
static const char *opt_label(char *buf, size_t cap, const char *lng, const char *shrt, const char *metavar,
                             const opt_choice *choices) {
    size_t n = (size_t)snprintf(buf, cap, "%s%s%s", shrt ? shrt : "", shrt && lng ? ", " : "", lng ? lng : "");
    if (metavar) n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, " %s", metavar);
    for (const opt_choice *c = choices; c && c->name && n < cap; c++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", c == choices ? " " : "|", c->name);
    return buf;
}

#define HELP_COL 28

/* The label, then the help lines indented to HELP_COL. */
static void print_option(FILE *f, const char *label, const char *help) {
    int w = fprintf(f, "  %s", label);
    const char *p = help;
    int first = 1;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        int len = nl ? (int)(nl - p) : (int)strlen(p);
        if (first && w >= HELP_COL) fprintf(f, "\n%*s", HELP_COL, "");
        else if (first) fprintf(f, "%*s", HELP_COL - w, "");
        else fprintf(f, "%*s", HELP_COL, "");
        fprintf(f, "%.*s\n", len, p);
        first = 0;
        p = nl ? nl + 1 : NULL;
    }
    if (first) fprintf(f, "\n");
}

void opts_usage(const cmd_spec *spec, FILE *f, int full) {
    fprintf(f, "usage: slm %s %s\n", spec->name, spec->synopsis);
    if (!full) {
        fprintf(f, "'slm %s --help' lists the options.\n", spec->name);
        return;
    }
    if (spec->about) fprintf(f, "\n%s\n", spec->about);
    fprintf(f, "\noptions:\n");
    char label[128];
    for (size_t k = 0; k < spec->n_opts; k++) {
        const opt *o = &spec->opts[k];
        print_option(f, opt_label(label, sizeof label, o->lng, o->shrt, o->metavar, o->kind == OPT_CHOICE ? o->choices : NULL),
                     o->help);
    }
    for (size_t k = 0; k < SLM_ARRAY_LEN(k_common); k++) {
        if (!k_common[k].help) continue;
        const char *lng = k == C_SHORT_HELP ? "--help" : k_common[k].lng;
        print_option(f, opt_label(label, sizeof label, lng, k_common[k].shrt, k_common[k].metavar, NULL), k_common[k].help);
    }
    if (spec->notes) fprintf(f, "\n%s\n", spec->notes);
    fprintf(f, "\nexit status: 0 ok, 1 failure, 2 usage error,%s 130/143 interrupted (no partial output is left)\n",
            spec->gate_exit ? " 3 a quality gate failed (output kept)," : "");
}

/* troff-escaped text: backslashes and leading dots/quotes */
static void man_text(FILE *f, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\') fputs("\\e", f);
        else if (s[i] == '-') fputs("\\-", f);
        else if ((s[i] == '.' || s[i] == '\'') && (i == 0 || s[i - 1] == '\n')) fputs("\\&", f), fputc(s[i], f);
        else fputc(s[i], f);
    }
}

static void man_para(FILE *f, const char *s) {
    if (s) man_text(f, s, strlen(s));
    fputc('\n', f);
}

void opts_man(const cmd_spec *spec, FILE *f) {
    char label[128];
    fprintf(f, ".SH \"SLM %s\"\n.B slm %s\n", spec->name, spec->name);
    man_para(f, spec->synopsis);
    fprintf(f, ".PP\n");
    man_para(f, spec->about);
    for (size_t k = 0; k < spec->n_opts; k++) {
        const opt *o = &spec->opts[k];
        fprintf(f, ".TP\n.B ");
        man_para(f, opt_label(label, sizeof label, o->lng, o->shrt, o->metavar, o->kind == OPT_CHOICE ? o->choices : NULL));
        man_para(f, o->help);
    }
    if (spec->notes) {
        fprintf(f, ".PP\n");
        man_para(f, spec->notes);
    }
}

void opts_man_common(FILE *f) {
    char label[128];
    for (size_t k = 0; k < SLM_ARRAY_LEN(k_common); k++) {
        if (!k_common[k].help) continue;
        const char *lng = k == C_SHORT_HELP ? "--help" : k_common[k].lng;
        fprintf(f, ".TP\n.B ");
        man_para(f, opt_label(label, sizeof label, lng, k_common[k].shrt, k_common[k].metavar, NULL));
        man_para(f, k_common[k].help);
    }
}
