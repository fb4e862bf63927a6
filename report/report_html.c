/* report_html.c - the report's Markdown and HTML renderings, and the report folder.
 *
 * Owns: report.md (tables), report.html (one self-contained page: inline CSS, inline SVG
 * charts, no script, no external resources, works offline), reports.json (a JSON array when
 * several runs are compared) and slm_report_write_dir (mkdir -p, each file atomically).
 * Must not: print, read files, or change the numbers: every value shown comes from the
 * slm_report; the only derived figures are totals and a parameter-weighted error.
 * Output is deterministic (no timestamps, fixed formats); NaN/Inf never reach SVG coordinates.
 */
#include "report.h"
#include "report_impl.h"
#include "gate.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/afile.h"
#include "core/mem.h"
#include "core/slm.h"

#define DASH "\xE2\x80\x94"  /* "—": a value the run does not have */
#define TIMES "\xC3\x97"     /* "×" */
#define ARROW "\xE2\x86\x92" /* "→" */
#define PM "\xC2\xB1"        /* "±" */

/* ---------------------------------------------------------------- text builder */

/* A growing NUL-terminated buffer; the first failure sticks and later appends do nothing. */
typedef struct sb {
    char *p;
    size_t n, cap;
    int rc;
    slm_err *err;
} sb;

static void sb_put(sb *b, const char *s, size_t n) {
    if (b->rc) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap < b->n + n + 1) cap *= 2;
        if ((b->rc = slm_realloc((void **)&b->p, cap, b->err, "report text"))) return;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_puts(sb *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_printf(sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sb *b, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    SLM_ASSERT(k >= 0 && (size_t)k < sizeof buf); /* our formats only: user text goes through the escapers */
    sb_put(b, buf, (size_t)k);
}

/* HTML text and attribute values: & < > " ' as entities, control bytes as U+FFFD. */
static void sb_html(sb *b, const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '&': sb_puts(b, "&amp;"); break;
        case '<': sb_puts(b, "&lt;"); break;
        case '>': sb_puts(b, "&gt;"); break;
        case '"': sb_puts(b, "&quot;"); break;
        case '\'': sb_puts(b, "&#39;"); break;
        default:
            if (c < 0x20 || c == 0x7f) sb_puts(b, "\xEF\xBF\xBD");
            else sb_put(b, s, 1);
        }
    }
}

/* Markdown table cells: a backslash before anything that could start markup, raw HTML, an
   entity or end the cell; '_' only where it could open emphasis (not inside a word, so
   "attn_k" stays readable). Control bytes become '?' so a name cannot break the table. */
static void sb_md(sb *b, const char *s) {
    for (size_t i = 0; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            sb_puts(b, "?");
            continue;
        }
        int esc = c != 0 && strchr("\\`*[]<>|&~$", c) != NULL;
        if (c == '_') esc = !(i > 0 && isalnum((unsigned char)s[i - 1]) && isalnum((unsigned char)s[i + 1]));
        if (esc) sb_puts(b, "\\");
        sb_put(b, &s[i], 1);
    }
}

/* ---------------------------------------------------------------- numbers as text */

typedef struct str64 { char s[64]; } str64;

/* v printed with fmt (one double conversion); NaN as "n/a", infinities as "∞" / "-∞". */
static str64 fnum(const char *fmt, double v) {
    str64 o;
    if (isnan(v)) snprintf(o.s, sizeof o.s, "n/a");
    else if (isinf(v)) snprintf(o.s, sizeof o.s, "%s\xE2\x88\x9E", v < 0 ? "-" : "");
    else snprintf(o.s, sizeof o.s, fmt, v + 0.0); /* + 0.0: no "-0" */
    return o;
}

/* "v ± e": the error with the same format, less a '+' flag ("+0.45 ± 0.01"); an error too small
   for that format in "%.1e" ("0.000057 ± 3.1e-06"); the value alone when there is no error
   estimate (zero, or not finite): never "± 0.000000". */
static str64 fpm(const char *fmt, double v, double e) {
    char efmt[16];
    size_t k = 0;
    for (const char *f = fmt; *f && k < sizeof efmt - 1; f++)
        if (*f != '+') efmt[k++] = *f;
    efmt[k] = 0;
    str64 o, a = fnum(fmt, v), c = fnum(efmt, e);
    if (!(e > 0) || !isfinite(e)) return a;
    if (!strcmp(c.s, fnum(efmt, 0).s)) c = fnum("%.1e", e);
    snprintf(o.s, sizeof o.s, "%s " PM " %s", a.s, c.s);
    return o;
}

static str64 fbytes(double n) {
    str64 o;
    slm_fmt_bytes(o.s, sizeof o.s, n);
    return o;
}

/* Relative errors: exact zero reads "0", others in a fixed scientific format; NaN (not
   computed: a --dry-run report) a dash, never a 0 that reads as "no error". */
static str64 ferr(double v) {
    str64 o;
    if (isnan(v)) return snprintf(o.s, sizeof o.s, DASH), o;
    return v == 0 ? fnum("%.0f", 0) : fnum("%.2e", v);
}

static str64 fshape(const slm_report_tensor *t) {
    str64 o = {{0}};
    size_t k = 0;
    if (t->ndim <= 0) snprintf(o.s, sizeof o.s, "scalar");
    for (int d = 0; d < t->ndim && d < SLM_MAX_DIMS && k < sizeof o.s; d++)
        k += (size_t)snprintf(o.s + k, sizeof o.s - k, "%s%lld", d ? TIMES : "", (long long)t->shape[d]);
    return o;
}

/* ---------------------------------------------------------------- runs: labels, totals, order */

typedef struct run_view {
    const slm_report *r;
    char label[160];    /* recipe, made unique among the runs */
    int dup;            /* scratch of make_labels */
    double wrel;        /* sqrt(sum n_params * rel_rmse^2 / sum n_params); NaN without tensors */
    uint64_t t_bytes;   /* sum of tensor bytes (file metadata excluded) */
    int64_t t_params;
    double t_max_abs;   /* largest max_abs_err */
} run_view;

typedef struct runs_ctx {
    const slm_report *runs;
    size_t n;
    run_view *v;        /* one per input run, input order */
    size_t *order;      /* indices into v by output size, unknown sizes last, ties in input order */
    size_t *by_err;     /* one run: its tensors by rel. RMSE, largest first (not computed last), ties in file order */
    int same_model;     /* all runs name the same model */
    int same_params;    /* all runs have the same parameter count (sizes are comparable) */
} runs_ctx;

static void run_totals(run_view *v) {
    const slm_report *r = v->r;
    double s = 0, w = 0;
    for (size_t i = 0; i < r->n_tensors; i++) { /* a NaN or Inf error carries into the totals */
        const slm_report_tensor *t = &r->tensors[i];
        v->t_bytes += t->bytes;
        v->t_params += t->n_params;
        if (!(t->max_abs_err <= v->t_max_abs) && !isnan(v->t_max_abs)) v->t_max_abs = t->max_abs_err;
        if (t->n_params > 0) {
            s += (double)t->n_params * t->rel_rmse * t->rel_rmse;
            w += (double)t->n_params;
        }
    }
    v->wrel = w > 0 ? sqrt(s / w) : NAN;
}

static const char *model_of(const slm_report *r) { return r->model_name[0] ? r->model_name : r->model[0] ? r->model : "model"; }

static int label_taken(const runs_ctx *c, size_t i) {
    for (size_t j = 0; j < c->n; j++)
        if (j != i && !strcmp(c->v[j].label, c->v[i].label)) return 1;
    return 0;
}

/* Recipe name, + " (model)" when the runs' models differ; runs that still share a label get
   the output file name instead, else "#k". The runs to rename in a pass are marked first, so
   both members of a pair get the suffix. */
static void make_labels(runs_ctx *c) {
    for (size_t i = 0; i < c->n; i++) {
        const slm_report *r = c->v[i].r;
        char base[48];
        snprintf(base, sizeof base, "%s%s%s", r->ftype[0] ? r->ftype : r->command[0] ? r->command : "run",
                 r->method[0] && strcmp(r->method, "rtn") ? " " : "", r->method[0] && strcmp(r->method, "rtn") ? r->method : "");
        if (c->same_model) snprintf(c->v[i].label, sizeof c->v[i].label, "%s", base);
        else snprintf(c->v[i].label, sizeof c->v[i].label, "%s (%s)", base, model_of(r));
    }
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < c->n; i++) c->v[i].dup = label_taken(c, i);
        for (size_t i = 0; i < c->n; i++) {
            if (!c->v[i].dup) continue;
            const slm_report *r = c->v[i].r;
            const char *base = r->ftype[0] ? r->ftype : r->command[0] ? r->command : "run";
            const char *out = strrchr(r->output, '/') ? strrchr(r->output, '/') + 1 : r->output;
            if (pass == 0 && out[0]) snprintf(c->v[i].label, sizeof c->v[i].label, "%s (%s)", base, out);
            else if (pass == 1) snprintf(c->v[i].label, sizeof c->v[i].label, "%s #%zu", base, i + 1);
        }
    }
}

static int size_before(const slm_report *a, size_t ia, const slm_report *b, size_t ib) {
    if ((a->out_bytes == 0) != (b->out_bytes == 0)) return a->out_bytes != 0;
    if (a->out_bytes != b->out_bytes) return a->out_bytes < b->out_bytes;
    return ia < ib;
}

static void ctx_free(runs_ctx *c);

typedef struct err_key {
    double e; /* -1: not computed (sorts after every error) */
    size_t i;
} err_key;

static int err_key_cmp(const void *pa, const void *pb) {
    const err_key *a = pa, *b = pb;
    if (a->e != b->e) return a->e > b->e ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

/* "Which tensors hurt": the one run's tensors by relative error, largest first. */
static int sort_by_err(runs_ctx *c, slm_err *err) {
    const slm_report *r = c->v[0].r;
    err_key *k = NULL;
    if (!r->n_tensors) return SLM_OK;
    SLM_TRY(slm_calloc((void **)&c->by_err, r->n_tensors, sizeof(size_t), err, "report order"));
    SLM_TRY(slm_calloc((void **)&k, r->n_tensors, sizeof(err_key), err, "report order"));
    for (size_t i = 0; i < r->n_tensors; i++) {
        double e = r->tensors[i].rel_rmse;
        k[i] = (err_key){isnan(e) ? -1 : isinf(e) ? HUGE_VAL : e, i};
    }
    qsort(k, r->n_tensors, sizeof *k, err_key_cmp);
    for (size_t i = 0; i < r->n_tensors; i++) c->by_err[i] = k[i].i;
    slm_free(k);
    return SLM_OK;
}

static int ctx_build(runs_ctx *c, const slm_report *runs, size_t n, slm_err *err) {
    memset(c, 0, sizeof(*c));
    if (n == 0) return slm_errf(err, SLM_E_ARG, "no runs to report");
    c->runs = runs;
    c->n = n;
    SLM_TRY(slm_calloc((void **)&c->v, n, sizeof(run_view), err, "report runs"));
    int rc = slm_calloc((void **)&c->order, n, sizeof(size_t), err, "report order");
    if (rc) {
        slm_free(c->v);
        c->v = NULL;
        return rc;
    }
    c->same_model = c->same_params = 1;
    for (size_t i = 0; i < n; i++) {
        c->v[i].r = &runs[i];
        run_totals(&c->v[i]);
        if (strcmp(model_of(&runs[i]), model_of(&runs[0]))) c->same_model = 0;
        if (runs[i].n_params != runs[0].n_params || runs[i].n_params <= 0) c->same_params = 0;
        size_t k = i; /* insertion sort: n is small and the order must be stable */
        while (k > 0 && size_before(&runs[i], i, &runs[c->order[k - 1]], c->order[k - 1])) {
            c->order[k] = c->order[k - 1];
            k--;
        }
        c->order[k] = i;
    }
    make_labels(c);
    int rc2 = n == 1 ? sort_by_err(c, err) : SLM_OK;
    if (rc2) ctx_free(c);
    return rc2;
}

static void ctx_free(runs_ctx *c) {
    slm_free(c->v);
    slm_free(c->order);
    slm_free(c->by_err);
    memset(c, 0, sizeof(*c));
}

static int has_ref(const slm_report *r) { return r->eval.present && r->eval.has_ref; }

/* ---------------------------------------------------------------- shared table contents */

/* A table as text cells, rendered by the Markdown and the HTML writers alike. */
enum { MAX_COLS = 16, CELL = 320 };

typedef struct row {
    char cell[MAX_COLS][CELL];
} row;

typedef struct table_head {
    const char *name[MAX_COLS];
    int right[MAX_COLS]; /* numbers are right-aligned */
    int n;
} table_head;

static void cellf(row *w, int i, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void cellf(row *w, int i, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->cell[i], CELL, fmt, ap);
    va_end(ap);
}

/* The facts of one run as (name, value) pairs; returns the count (at most 16, 19 with the extras). */
typedef struct fact {
    const char *k;
    char v[600];
} fact;

/* The packed size, the gates and the manifest (at most 3 facts). */
static int extra_facts(const slm_report *r, fact *f) {
    int n = 0;
    if (r->eval.packed_bytes > 0) {
        f[n].k = "packed (zstd)";
        snprintf(f[n++].v, sizeof f->v, "%s (%lld bytes, %s of the GGUF)", fbytes((double)r->eval.packed_bytes).s,
                 (long long)r->eval.packed_bytes, r->out_bytes ? fnum("%.3f", (double)r->eval.packed_bytes / (double)r->out_bytes).s : DASH);
    }
    if (r->n_gates) {
        size_t len = 0;
        f[n].k = "quality gates";
        f[n].v[0] = 0;
        for (int i = 0; i < r->n_gates && len < sizeof f->v; i++) {
            char b[200];
            len += (size_t)snprintf(f[n].v + len, sizeof f->v - len, "%s%s", i ? "; " : "", slm_gate_describe(b, sizeof b, &r->gates[i]));
        }
        n++;
    }
    if (r->manifest.present) {
        f[n].k = "manifest";
        snprintf(f[n++].v, sizeof f->v, "slm %s, inputs sha256 %s, flags: %s", r->manifest.version, r->manifest.input_sha256,
                 r->manifest.flags);
    }
    return n;
}

static int run_facts(const run_view *v, fact *f) {
    const slm_report *r = v->r;
    int n = 0;
    f[n].k = "model";
    if (r->model_name[0] && r->model[0] && strcmp(r->model_name, r->model))
        snprintf(f[n++].v, sizeof f->v, "%s (%s)", r->model_name, r->model);
    else snprintf(f[n++].v, sizeof f->v, "%s", model_of(r));
    f[n].k = "command";
    snprintf(f[n++].v, sizeof f->v, "%s%s%s", r->command[0] ? r->command : "?", r->version[0] ? ", slm " : "", r->version);
    if (r->ftype[0]) { f[n].k = "recipe"; snprintf(f[n++].v, sizeof f->v, "%s", r->ftype); }
    if (r->method[0]) { f[n].k = "method"; snprintf(f[n++].v, sizeof f->v, "%s%s%s", r->method, r->method_params[0] ? " " : "", r->method_params); }
    if (r->calibration[0]) { f[n].k = "calibration"; snprintf(f[n++].v, sizeof f->v, "%s", r->calibration); }
    if (r->output[0]) { f[n].k = "output"; snprintf(f[n++].v, sizeof f->v, "%s", r->output); }
    if (r->src_bytes) {
        f[n].k = "source size";
        snprintf(f[n++].v, sizeof f->v, "%s (%llu bytes)", fbytes((double)r->src_bytes).s, (unsigned long long)r->src_bytes);
    }
    if (r->out_bytes) {
        f[n].k = "output size";
        snprintf(f[n++].v, sizeof f->v, "%s (%llu bytes)", fbytes((double)r->out_bytes).s, (unsigned long long)r->out_bytes);
        f[n].k = "bits per weight";
        snprintf(f[n++].v, sizeof f->v, "%s", fnum("%.3f", r->bpw).s);
    }
    if (r->src_bytes && r->out_bytes) {
        f[n].k = "compression";
        snprintf(f[n++].v, sizeof f->v, "%s" TIMES " smaller", fnum("%.2f", (double)r->src_bytes / (double)r->out_bytes).s);
    }
    if (r->n_params) {
        f[n].k = "parameters";
        snprintf(f[n++].v, sizeof f->v, "%lld (%.2f M)", (long long)r->n_params, (double)r->n_params / 1e6);
    }
    if (r->n_tensors) {
        f[n].k = "tensors";
        snprintf(f[n++].v, sizeof f->v, "%zu (%d fell back to another type)", r->n_tensors, r->n_fallback);
        f[n].k = "weighted rel. RMSE";
        snprintf(f[n++].v, sizeof f->v, "%s (%s)", ferr(v->wrel).s,
                 isnan(v->wrel) ? "not computed: dry run" : "parameter-weighted RMS over tensors");
    }
    if (r->seconds > 0 || r->threads > 0) {
        f[n].k = "time";
        snprintf(f[n++].v, sizeof f->v, "%s s on %d thread%s", fnum("%.2f", r->seconds).s, r->threads, r->threads == 1 ? "" : "s");
    }
    if (r->peak_rss_bytes > 0) { f[n].k = "peak memory"; snprintf(f[n++].v, sizeof f->v, "%s", fbytes(r->peak_rss_bytes).s); }
    return n + extra_facts(r, f + n);
}

static int eval_facts(const slm_report_eval *e, fact *f) {
    int n = 0;
    f[n].k = "text";
    snprintf(f[n++].v, sizeof f->v, "%s (ctx %d, %lld chunks, %lld scored tokens%s%s)", e->text[0] ? e->text : "?", e->ctx,
             (long long)e->n_chunks, (long long)e->scored, e->convention[0] ? ", " : "", e->convention);
    f[n].k = "perplexity";
    snprintf(f[n++].v, sizeof f->v, "%s", fpm("%.4f", e->ppl, e->ppl_err).s);
    f[n].k = "mean NLL";
    snprintf(f[n++].v, sizeof f->v, "%s nats/token", fnum("%.6f", e->mean_nll).s);
    if (e->has_ref) {
        f[n].k = "reference";
        snprintf(f[n++].v, sizeof f->v, "%s (PPL %s)", e->ref[0] ? e->ref : "?", fnum("%.4f", e->ref_ppl).s);
        f[n].k = "\xCE\x94PPL";
        snprintf(f[n++].v, sizeof f->v, "%s", fpm("%+.4f", e->dppl, e->dppl_err).s);
        f[n].k = "mean KLD";
        snprintf(f[n++].v, sizeof f->v, "%s", fpm("%.6f", e->kld_mean, e->kld_mean_err).s);
        f[n].k = "median KLD";
        snprintf(f[n++].v, sizeof f->v, "%s", fnum("%.6f", e->kld_median).s);
        f[n].k = "p99 KLD";
        snprintf(f[n++].v, sizeof f->v, "%s", fnum("%.6f", e->kld_p99).s);
        f[n].k = "max KLD";
        snprintf(f[n++].v, sizeof f->v, "%s", fnum("%.6f", e->kld_max).s);
        f[n].k = "top-1 agreement";
        snprintf(f[n++].v, sizeof f->v, "%s %%", fnum("%.2f", 100.0 * e->top1).s);
    }
    if (e->tok_per_s > 0) { f[n].k = "speed"; snprintf(f[n++].v, sizeof f->v, "%s tokens/s", fnum("%.1f", e->tok_per_s).s); }
    return n;
}

static const table_head k_tensor_head = {
    {"#", "tensor", "type", "shape", "params", "size", "bpw", "rel. RMSE", "max |err|", "note"},
    {1, 0, 0, 0, 1, 1, 1, 1, 1, 0},
    10};

static void tensor_row(const slm_report_tensor *t, size_t i, row *w) {
    cellf(w, 0, "%zu", i + 1);
    cellf(w, 1, "%s", t->name);
    if (t->src_type[0] && strcmp(t->src_type, t->type)) cellf(w, 2, "%s " ARROW " %s", t->src_type, t->type);
    else cellf(w, 2, "%s", t->type);
    cellf(w, 3, "%s", fshape(t).s);
    cellf(w, 4, "%lld", (long long)t->n_params);
    cellf(w, 5, "%s", fbytes((double)t->bytes).s);
    cellf(w, 6, "%s", fnum("%.2f", t->bpw).s);
    cellf(w, 7, "%s", ferr(t->rel_rmse).s);
    cellf(w, 8, "%s", ferr(t->max_abs_err).s);
    cellf(w, 9, "%s", t->fell_back ? "fell back" : "");
}

/* What the tensor table's order means. */
static const char *tensor_order_note(const runs_ctx *c) {
    const slm_report *r = c->v[0].r;
    for (size_t i = 0; i < r->n_tensors; i++)
        if (!isnan(r->tensors[i].rel_rmse)) return "Sorted by rel. RMSE, largest first: the tensors the quantization hurt most come first "
                                                   "(# is the position in the file).";
    return "In file order. Errors were not computed (a --dry-run plans types and sizes only): shown as " DASH ".";
}

static void tensor_total_row(const run_view *v, row *w) {
    cellf(w, 0, "%s", "");
    cellf(w, 1, "total (%zu tensors)", v->r->n_tensors);
    cellf(w, 2, "%s", "");
    cellf(w, 3, "%s", "");
    cellf(w, 4, "%lld", (long long)v->t_params);
    cellf(w, 5, "%s", fbytes((double)v->t_bytes).s);
    cellf(w, 6, "%s", fnum("%.2f", v->t_params ? 8.0 * (double)v->t_bytes / (double)v->t_params : NAN).s);
    cellf(w, 7, "%s", ferr(v->wrel).s);
    cellf(w, 8, "%s", ferr(v->t_max_abs).s);
    cellf(w, 9, "%d fell back", v->r->n_fallback);
}

/* Comparison: one row per run (the label names the model when the models differ). */
static void compare_head(table_head *h) {
    static const char *names[] = {"#", "recipe", "method", "size", "bpw", "ratio", "zstd", "PPL " PM " err", "\xCE\x94PPL",
                                  "mean KLD " PM " err", "p99 KLD", "top-1 %", "w. rel. RMSE"};
    h->n = 0;
    for (size_t i = 0; i < SLM_ARRAY_LEN(names); i++) {
        h->name[h->n] = names[i];
        h->right[h->n++] = i != 1 && i != 2;
    }
}

static void compare_row(const runs_ctx *c, size_t k, row *w) {
    const run_view *v = &c->v[c->order[k]];
    const slm_report *r = v->r;
    const slm_report_eval *e = &r->eval;
    int i = 0;
    cellf(w, i++, "%zu", k + 1);
    cellf(w, i++, "%s", v->label);
    cellf(w, i++, "%s", r->method[0] ? r->method : DASH);
    cellf(w, i++, "%s", r->out_bytes ? fbytes((double)r->out_bytes).s : DASH);
    cellf(w, i++, "%s", r->out_bytes ? fnum("%.3f", r->bpw).s : DASH);
    cellf(w, i++, "%s", r->out_bytes && r->src_bytes ? fnum("%.2f" TIMES, (double)r->src_bytes / (double)r->out_bytes).s : DASH);
    cellf(w, i++, "%s", e->packed_bytes > 0 ? fbytes((double)e->packed_bytes).s : DASH);
    cellf(w, i++, "%s", e->present ? fpm("%.4f", e->ppl, e->ppl_err).s : DASH);
    cellf(w, i++, "%s", has_ref(r) ? fpm("%+.4f", e->dppl, e->dppl_err).s : DASH);
    cellf(w, i++, "%s", has_ref(r) ? fpm("%.6f", e->kld_mean, e->kld_mean_err).s : DASH);
    cellf(w, i++, "%s", has_ref(r) ? fnum("%.6f", e->kld_p99).s : DASH);
    cellf(w, i++, "%s", has_ref(r) ? fnum("%.2f", 100.0 * e->top1).s : DASH);
    cellf(w, i++, "%s", r->n_tensors ? ferr(v->wrel).s : DASH);
}

/* Runs: where each came from and what it cost to make; evaluation column when any has one. */
static int any_eval(const runs_ctx *c) {
    for (size_t i = 0; i < c->n; i++)
        if (c->runs[i].eval.present) return 1;
    return 0;
}

/* The model column only when the runs' models differ (else the title names it). */
static void runs_head(const runs_ctx *c, table_head *h) {
    static const char *names[] = {"#", "recipe", "model", "output", "params", "tensors", "time", "peak memory", "evaluation"};
    static const int right[] = {1, 0, 0, 0, 1, 1, 1, 1, 0};
    h->n = 0;
    for (size_t i = 0; i < SLM_ARRAY_LEN(names); i++) {
        if ((i == 2 && c->same_model) || (i == 8 && !any_eval(c))) continue;
        h->name[h->n] = names[i];
        h->right[h->n++] = right[i];
    }
}

static void runs_row(const runs_ctx *c, size_t k, row *w) {
    const run_view *v = &c->v[c->order[k]];
    const slm_report *r = v->r;
    const slm_report_eval *e = &r->eval;
    int i = 0;
    cellf(w, i++, "%zu", k + 1);
    cellf(w, i++, "%s", v->label);
    if (!c->same_model) cellf(w, i++, "%s", r->model[0] ? r->model : model_of(r));
    cellf(w, i++, "%s", r->output[0] ? r->output : DASH);
    cellf(w, i++, "%lld", (long long)r->n_params);
    cellf(w, i++, "%zu (%d fell back)", r->n_tensors, r->n_fallback);
    cellf(w, i++, "%s s, %d thr.", fnum("%.2f", r->seconds).s, r->threads);
    cellf(w, i++, "%s", r->peak_rss_bytes > 0 ? fbytes(r->peak_rss_bytes).s : DASH);
    if (!any_eval(c)) return;
    if (!e->present) cellf(w, i, DASH);
    else cellf(w, i, "%s, ctx %d, %lld tokens%s%s", e->text[0] ? e->text : "?", e->ctx, (long long)e->scored,
               e->has_ref ? "; reference " : "", e->has_ref ? e->ref : "");
}

/* Per-tensor matrix: the union of tensor names (first appearance, runs by size), one column per run. */
static const slm_report_tensor *find_tensor(const slm_report *r, const char *name) {
    for (size_t i = 0; i < r->n_tensors; i++)
        if (!strcmp(r->tensors[i].name, name)) return &r->tensors[i];
    return NULL;
}

/* The largest rel. RMSE any run has for the tensor name; -1 when none computed it. */
static double matrix_key(const runs_ctx *c, const char *name) {
    double m = -1;
    for (size_t k = 0; k < c->n; k++) {
        const slm_report_tensor *t = find_tensor(c->v[k].r, name);
        if (t && !isnan(t->rel_rmse)) m = SLM_MAX(m, isinf(t->rel_rmse) ? HUGE_VAL : t->rel_rmse);
    }
    return m;
}

/* Calls fn for each distinct tensor name once: by the largest rel. RMSE any run has for it,
   largest first ("which tensors hurt"), ties (and names no run measured) in order of first
   appearance. */
static void matrix_rows(const runs_ctx *c, void (*fn)(sb *, const runs_ctx *, const char *), sb *b) {
    size_t total = 0, n = 0;
    err_key *keys = NULL;
    const char **names = NULL;
    for (size_t k = 0; k < c->n; k++) total += c->runs[k].n_tensors;
    if (b->rc || !total || (b->rc = slm_calloc((void **)&keys, total, sizeof *keys, b->err, "report order"))) return;
    if ((b->rc = slm_calloc((void **)&names, total, sizeof *names, b->err, "report order"))) {
        slm_free(keys);
        return;
    }
    for (size_t k = 0; k < c->n; k++) {
        const slm_report *r = c->v[c->order[k]].r;
        for (size_t i = 0; i < r->n_tensors; i++) {
            const char *name = r->tensors[i].name;
            int seen = 0;
            for (size_t k2 = 0; k2 < k && !seen; k2++) seen = find_tensor(c->v[c->order[k2]].r, name) != NULL;
            for (size_t i2 = 0; i2 < i && !seen; i2++) seen = !strcmp(r->tensors[i2].name, name);
            if (!seen) names[n] = name, keys[n] = (err_key){matrix_key(c, name), n}, n++;
        }
    }
    qsort(keys, n, sizeof *keys, err_key_cmp);
    for (size_t i = 0; i < n; i++) fn(b, c, names[keys[i].i]);
    slm_free(names);
    slm_free(keys);
}

static void matrix_cell(const runs_ctx *c, size_t k, const char *name, char *out, size_t cap) {
    const slm_report_tensor *t = find_tensor(c->v[c->order[k]].r, name);
    if (!t) snprintf(out, cap, DASH);
    else snprintf(out, cap, "%s %s%s", t->type, ferr(t->rel_rmse).s, t->fell_back ? " (fell back)" : "");
}

static int any_tensors(const runs_ctx *c) {
    for (size_t i = 0; i < c->n; i++)
        if (c->runs[i].n_tensors) return 1;
    return 0;
}

/* ---------------------------------------------------------------- Markdown */

static void md_table_head(sb *b, const table_head *h) {
    for (int i = 0; i < h->n; i++) {
        sb_puts(b, "| ");
        sb_md(b, h->name[i]);
        sb_puts(b, " ");
    }
    sb_puts(b, "|\n");
    for (int i = 0; i < h->n; i++) sb_puts(b, h->right[i] ? "|--:" : "|:--");
    sb_puts(b, "|\n");
}

static void md_row(sb *b, const row *w, int n, int bold) {
    for (int i = 0; i < n; i++) {
        sb_puts(b, "| ");
        if (bold && w->cell[i][0]) sb_puts(b, "**");
        sb_md(b, w->cell[i]);
        if (bold && w->cell[i][0]) sb_puts(b, "**");
        sb_puts(b, w->cell[i][0] ? " " : "");
    }
    sb_puts(b, "|\n");
}

static void md_facts(sb *b, const fact *f, int n) {
    sb_puts(b, "| | |\n|:--|:--|\n");
    for (int i = 0; i < n; i++) {
        sb_puts(b, "| ");
        sb_md(b, f[i].k);
        sb_puts(b, " | ");
        sb_md(b, f[i].v);
        sb_puts(b, " |\n");
    }
}

static void md_train(sb *b, const slm_report *r, row *w);

static void md_one(sb *b, const runs_ctx *c, row *w) {
    const run_view *v = &c->v[0];
    const slm_report *r = v->r;
    fact f[20];
    sb_puts(b, "# slm report: ");
    sb_md(b, model_of(r));
    if (r->ftype[0]) {
        sb_puts(b, " " ARROW " ");
        sb_md(b, r->ftype);
    }
    sb_puts(b, "\n\n");
    md_facts(b, f, run_facts(v, f));
    if (r->eval.present) {
        sb_puts(b, "\n## Evaluation\n\n");
        md_facts(b, f, eval_facts(&r->eval, f));
    }
    md_train(b, r, w);
    if (!r->n_tensors) return;
    sb_puts(b, "\n## Tensors\n\n");
    sb_puts(b, tensor_order_note(c));
    sb_puts(b, "\n\n");
    md_table_head(b, &k_tensor_head);
    for (size_t k = 0; k < r->n_tensors; k++) {
        tensor_row(&r->tensors[c->by_err[k]], c->by_err[k], w);
        md_row(b, w, k_tensor_head.n, 0);
    }
    tensor_total_row(v, w);
    md_row(b, w, k_tensor_head.n, 1);
    sb_puts(b, "\nTotals: sizes and parameters summed over tensors (file metadata excluded); rel. RMSE is the\n"
               "parameter-weighted RMS of the tensors' relative RMSE; max |err| the largest over tensors.\n");
}

static void md_matrix_row(sb *b, const runs_ctx *c, const char *name) {
    char cell[CELL];
    sb_puts(b, "| ");
    sb_md(b, name);
    for (size_t k = 0; k < c->n; k++) {
        matrix_cell(c, k, name, cell, sizeof cell);
        sb_puts(b, " | ");
        sb_md(b, cell);
    }
    sb_puts(b, " |\n");
}

static void md_many(sb *b, const runs_ctx *c, row *w) {
    table_head h;
    sb_printf(b, "# slm report: %zu runs", c->n);
    if (c->same_model) {
        sb_puts(b, " of ");
        sb_md(b, model_of(&c->runs[0]));
    }
    sb_puts(b, "\n\nSorted by output size. PPL and KLD come from `slm eval` (" DASH " when a run was not evaluated);\n"
               "w. rel. RMSE is the parameter-weighted RMS of the per-tensor relative RMSE of the weights.\n\n");
    compare_head(&h);
    md_table_head(b, &h);
    for (size_t k = 0; k < c->n; k++) {
        compare_row(c, k, w);
        md_row(b, w, h.n, 0);
    }
    sb_puts(b, "\n## Runs\n\n");
    runs_head(c, &h);
    md_table_head(b, &h);
    for (size_t k = 0; k < c->n; k++) {
        runs_row(c, k, w);
        md_row(b, w, h.n, 0);
    }
    if (!any_tensors(c)) return;
    sb_puts(b, "\n## Per-tensor type and relative RMSE\n\nLargest rel. RMSE (in any run) first.\n\n| tensor");
    for (size_t k = 0; k < c->n; k++) {
        sb_puts(b, " | ");
        sb_md(b, c->v[c->order[k]].label);
    }
    sb_puts(b, " |\n|:--");
    for (size_t k = 0; k < c->n; k++) sb_puts(b, "|--:");
    sb_puts(b, "|\n");
    matrix_rows(c, md_matrix_row, b);
}

/* ---------------------------------------------------------------- SVG: scales and axes */

#define SVG_W 1000.0

typedef struct scale {
    int log;          /* log10 axis */
    double lo, hi;    /* value range; log: powers of ten */
    double step;      /* linear tick step */
    double p0, p1;    /* pixel range */
} scale;

/* A 1, 2 or 5 times a power of ten near range/6. */
static double nice_step(double range) {
    double raw = range / 6, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

/* Fits the finite values. Log when allowed, no value is negative, the positive ones span at
   least a decade and (unless zeros_ok: drawn apart as "0") none is zero. */
static void sc_fit(scale *s, const double *v, size_t n, size_t stride, int allow_log, int zeros_ok, int with_zero) {
    double mn = INFINITY, mx = -INFINITY, mnpos = INFINITY;
    for (size_t i = 0; i < n; i++) {
        double x = *(const double *)((const char *)v + i * stride);
        if (!isfinite(x)) continue;
        mn = SLM_MIN(mn, x);
        mx = SLM_MAX(mx, x);
        if (x > 0) mnpos = SLM_MIN(mnpos, x);
    }
    if (mn > mx) mn = 0, mx = 1; /* nothing finite */
    s->log = allow_log && mn >= 0 && isfinite(mnpos) && mx / mnpos >= 10 && (zeros_ok || mn > 0);
    if (s->log) {
        s->lo = pow(10, floor(log10(mnpos)));
        s->hi = pow(10, ceil(log10(mx)));
        if (s->hi <= s->lo) s->hi = s->lo * 10;
        return;
    }
    if (with_zero) mn = SLM_MIN(mn, 0), mx = SLM_MAX(mx, 0);
    if (mx == mn) {
        if (mx == 0) mx = 1;
        else mn -= fabs(mn) * 0.5, mx += fabs(mx) * 0.5;
    }
    s->step = nice_step(mx - mn);
    s->lo = floor(mn / s->step) * s->step;
    s->hi = ceil(mx / s->step) * s->step;
    if (s->hi <= s->lo) s->hi = s->lo + s->step;
}

/* Value to pixel, clamped into the pixel range; never NaN. */
static double sc_px(const scale *s, double v) {
    double t;
    if (s->log) t = v > 0 ? (log10(v) - log10(s->lo)) / (log10(s->hi) - log10(s->lo)) : 0;
    else t = (v - s->lo) / (s->hi - s->lo);
    if (!isfinite(t)) t = v > 0 ? 1 : 0;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    return s->p0 + t * (s->p1 - s->p0);
}

typedef struct tick {
    double v;
    int major;   /* grid line drawn darker; minor ticks are log-scale 2..9 */
    str64 text;  /* "" for an unlabelled minor tick */
} tick;

#define MAX_TICKS 96

/* Linear: every step. Log: each power of ten, 2..9 times it as minor lines, 2 and 5 labelled
   when the axis spans at most two decades. */
static int sc_ticks(const scale *s, tick *t) {
    int n = 0;
    if (!s->log) {
        int nt = (int)lround((s->hi - s->lo) / s->step) + 1, dec = s->step >= 1 ? 0 : (int)ceil(-log10(s->step) - 1e-9);
        for (int k = 0; k < nt && n < MAX_TICKS; k++, n++) {
            double v = s->lo + k * s->step;
            if (fabs(v) < s->step * 1e-9) v = 0;
            t[n].v = v;
            t[n].major = 1;
            snprintf(t[n].text.s, sizeof t[n].text.s, "%.*f", dec, v + 0.0);
        }
        return n;
    }
    int e0 = (int)lround(log10(s->lo)), e1 = (int)lround(log10(s->hi));
    for (int e = e0; e <= e1; e++) {
        for (int m = 1; m <= (e < e1 ? 9 : 1) && n < MAX_TICKS; m++, n++) {
            t[n].v = m * pow(10, e);
            t[n].major = m == 1;
            t[n].text.s[0] = 0;
            if (m == 1 || (e1 - e0 <= 2 && (m == 2 || m == 5))) {
                if (e >= 0 && e <= 4) snprintf(t[n].text.s, sizeof t[n].text.s, "%.0f", t[n].v);
                else if (e < 0 && e >= -3) snprintf(t[n].text.s, sizeof t[n].text.s, "%.*f", -e, t[n].v);
                else snprintf(t[n].text.s, sizeof t[n].text.s, "%de%d", m, e);
            }
            if (e1 - e0 > 4 && m > 1) n--; /* too dense: powers of ten only */
        }
    }
    return n;
}

static void svg_open(sb *b, double h, const char *title) {
    sb_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\" role=\"img\" aria-label=\"",
              SVG_W, h, SVG_W, h);
    sb_html(b, title);
    sb_puts(b, "\">\n<title>");
    sb_html(b, title);
    sb_puts(b, "</title>\n");
}

/* Vertical grid lines and labels of a horizontal axis at y_axis, spanning [y_top, y_axis]. */
static void svg_xaxis(sb *b, const scale *s, double y_top, double y_axis, const char *label, double y_label) {
    tick t[MAX_TICKS];
    for (int k = 0, nt = sc_ticks(s, t); k < nt; k++) {
        double x = sc_px(s, t[k].v);
        sb_printf(b, "<line class=\"%s\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", t[k].major ? "grid" : "minor", x, y_top, x, y_axis);
        if (t[k].text.s[0]) sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>", x, y_axis + 14, t[k].text.s);
        sb_puts(b, "\n");
    }
    sb_printf(b, "<line class=\"ax\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", s->p0, y_axis, s->p1, y_axis);
    sb_printf(b, "<text class=\"lab\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", (s->p0 + s->p1) / 2, y_label);
    sb_html(b, label);
    sb_puts(b, s->log ? " (log scale)</text>\n" : "</text>\n");
}

/* ---------------------------------------------------------------- SVG: horizontal bars */

typedef struct bar {
    const char *name;
    double v;
    const char *color;
    char text[48];   /* shown after the bar */
    char tip[200];   /* tooltip */
} bar;

#define BAR_ROW 16.0
#define BAR_TOP 26.0
#define CHAR_W 6.7 /* 11 px monospace */

/* One row per bar, names on the left. ref (if finite) draws a dashed line labelled ref_text. */
static void svg_hbars(sb *b, const char *title, const char *axis, const bar *bars, size_t n, int allow_log, double ref,
                      const char *ref_text) {
    size_t maxlen = 8;
    for (size_t i = 0; i < n; i++) maxlen = SLM_MAX(maxlen, strlen(bars[i].name));
    scale s = {.p0 = 14 + CHAR_W * (double)maxlen, .p1 = SVG_W - 100};
    sc_fit(&s, &bars[0].v, n, sizeof(bar), allow_log, 1, 1);
    double yb = BAR_TOP + BAR_ROW * (double)n, h = yb + 46;
    svg_open(b, h, title);
    for (size_t i = 0; i < n; i += 2)
        sb_printf(b, "<rect class=\"stripe\" x=\"0\" y=\"%.1f\" width=\"%.0f\" height=\"%.1f\"/>\n", BAR_TOP + BAR_ROW * (double)i, SVG_W, BAR_ROW);
    svg_xaxis(b, &s, BAR_TOP - 4, yb, axis, h - 8);
    double base = s.log ? s.p0 : sc_px(&s, 0);
    if (isfinite(ref) && (!s.log || ref > 0)) {
        double x = sc_px(&s, ref);
        sb_printf(b, "<line class=\"ref\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", x, BAR_TOP - 8, x, yb);
        sb_printf(b, "<text class=\"reft\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", x, BAR_TOP - 11);
        sb_html(b, ref_text);
        sb_puts(b, "</text>\n");
    }
    for (size_t i = 0; i < n; i++) {
        const bar *r = &bars[i];
        double y = BAR_TOP + BAR_ROW * (double)i;
        sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", s.p0 - 6, y + 12);
        sb_html(b, r->name);
        sb_puts(b, "</text>");
        int drawn = isfinite(r->v) && (!s.log || r->v > 0);
        if (drawn) {
            double x = sc_px(&s, r->v), x0 = SLM_MIN(base, x), w = fabs(x - base);
            sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"11\" fill=\"%s\"><title>", x0, y + 2.5, w, r->color);
            sb_html(b, r->tip);
            sb_printf(b, "</title></rect><text class=\"val\" x=\"%.1f\" y=\"%.1f\">", SLM_MAX(x, base) + 5, y + 12);
        } else {
            sb_printf(b, "<text class=\"na\" x=\"%.1f\" y=\"%.1f\">", base + 5, y + 12);
        }
        sb_html(b, r->text);
        sb_puts(b, "</text>\n");
    }
    sb_puts(b, "</svg>\n");
}

/* ---------------------------------------------------------------- SVG: scatter */

typedef struct point {
    double x, y, yerr;  /* NaN/Inf: not plotted */
    const char *label;
    const char *color;
    char tip[240];
} point;

typedef struct box { double x0, y0, x1, y1; } box;

/* Per-point scratch of the scatter, allocated by the caller. */
typedef struct scatter_tmp {
    double x, y;  /* the plottable points, packed */
    size_t idx;   /* their indices into the points, ordered by (x, y) */
    box placed;   /* label boxes placed so far */
    double px[2]; /* pixel position of the k-th plotted point */
} scatter_tmp;

#define SC_H 540.0
#define SC_L 96.0
#define SC_R (SVG_W - 190)
#define SC_T 30.0
#define SC_B (SC_H - 64)

static int box_hits(const box *a, const box *b) { return a->x0 < b->x1 && b->x0 < a->x1 && a->y0 < b->y1 && b->y0 < a->y1; }

/* Label next to its point: right if it fits, else left; moved up or down past earlier labels
   and every one of the m plotted points (t[j].px). */
static void place_label(scatter_tmp *t, size_t n_placed, size_t m, double px, double py, const char *text, double *tx, double *ty,
                        int *left) {
    static const double dy[] = {0, -14, 14, -28, 28, -42, 42};
    double w = CHAR_W * (double)strlen(text) + 4;
    for (int side = 0; side < 2; side++) {
        *left = side == 1 || px + 9 + w > SVG_W;
        for (size_t k = 0; k < SLM_ARRAY_LEN(dy); k++) {
            double x0 = *left ? px - 9 - w : px + 9, y = py + 4 + dy[k];
            box bx = {x0, y - 11, x0 + w, y + 2};
            int ok = bx.y0 >= 0 && bx.y1 <= SC_H && bx.x0 >= 0 && bx.x1 <= SVG_W;
            for (size_t j = 0; ok && j < n_placed; j++) ok = !box_hits(&bx, &t[j].placed);
            for (size_t j = 0; ok && j < m; j++) {
                box pb = {t[j].px[0] - 6, t[j].px[1] - 6, t[j].px[0] + 6, t[j].px[1] + 6};
                ok = !box_hits(&bx, &pb);
            }
            if (ok) {
                *tx = *left ? px - 9 : px + 9;
                *ty = y;
                t[n_placed].placed = bx;
                return;
            }
        }
    }
    *left = px + 9 + w > SVG_W;
    *tx = *left ? px - 9 : px + 9;
    *ty = py + 4;
    t[n_placed].placed = (box){0, 0, 0, 0};
}

static int plottable(const point *p) { return isfinite(p->x) && isfinite(p->y); }

static void svg_scatter_axes(sb *b, const scale *sx, const scale *sy, const char *xlab, const char *ylab) {
    svg_xaxis(b, sx, SC_T, SC_B, xlab, SC_H - 14);
    tick t[MAX_TICKS];
    for (int k = 0, nt = sc_ticks(sy, t); k < nt; k++) {
        double y = sc_px(sy, t[k].v);
        const char *cls = !sy->log && t[k].v == 0 ? "ax" : t[k].major ? "grid" : "minor";
        sb_printf(b, "<line class=\"%s\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", cls, SC_L, y, SC_R, y);
        if (t[k].text.s[0]) sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>", SC_L - 6, y + 4, t[k].text.s);
        sb_puts(b, "\n");
    }
    sb_printf(b, "<line class=\"ax\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", SC_L, SC_T, SC_L, SC_B);
    sb_printf(b, "<text class=\"lab\" transform=\"rotate(-90 22 %.1f)\" x=\"22\" y=\"%.1f\" text-anchor=\"middle\">", (SC_T + SC_B) / 2,
              (SC_T + SC_B) / 2);
    sb_html(b, ylab);
    sb_puts(b, sy->log ? " (log scale)</text>\n" : "</text>\n");
}

/* Plottable points with labels and error bars (yerr > 0), and a dashed line through the
   Pareto front: the points no other point beats on both x and y (lower is better on both). */
static void svg_scatter(sb *b, const char *title, const char *xlab, const char *ylab, const point *p, size_t n, int y_zero,
                        scatter_tmp *t) {
    scale sx = {.p0 = SC_L, .p1 = SC_R}, sy = {.p0 = SC_B, .p1 = SC_T};
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!plottable(&p[i])) continue;
        size_t k = m++; /* insertion by (x, y, index): deterministic */
        while (k > 0 && (p[t[k - 1].idx].x > p[i].x || (p[t[k - 1].idx].x == p[i].x && p[t[k - 1].idx].y > p[i].y))) {
            t[k].idx = t[k - 1].idx;
            k--;
        }
        t[k].idx = i;
    }
    for (size_t k = 0; k < m; k++) t[k].x = p[t[k].idx].x, t[k].y = p[t[k].idx].y;
    sc_fit(&sx, &t[0].x, m, sizeof(scatter_tmp), 0, 1, 1);
    sc_fit(&sy, &t[0].y, m, sizeof(scatter_tmp), 1, 0, y_zero);
    svg_open(b, SC_H, title);
    svg_scatter_axes(b, &sx, &sy, xlab, ylab);
    double best = INFINITY;
    int n_front = 0;
    for (size_t k = 0; k < m; k++) {
        if (!(t[k].y < best)) continue;
        best = t[k].y;
        sb_printf(b, "%s%.1f,%.1f", n_front++ ? " " : "<polyline class=\"front\" points=\"", sc_px(&sx, t[k].x), sc_px(&sy, t[k].y));
    }
    if (n_front) sb_puts(b, "\"/>\n");
    for (size_t k = 0; k < m; k++) { /* error bars under the points */
        const point *q = &p[t[k].idx];
        if (!(isfinite(q->yerr) && q->yerr > 0)) continue;
        double x = sc_px(&sx, q->x), y0 = sc_px(&sy, q->y - q->yerr), y1 = sc_px(&sy, q->y + q->yerr);
        sb_printf(b, "<path class=\"err\" d=\"M%.1f %.1fV%.1fM%.1f %.1fh8M%.1f %.1fh8\"/>\n", x, y0, y1, x - 4, y0, x - 4, y1);
    }
    for (size_t k = 0; k < m; k++) t[k].px[0] = sc_px(&sx, t[k].x), t[k].px[1] = sc_px(&sy, t[k].y);
    for (size_t k = 0; k < m; k++) {
        const point *q = &p[t[k].idx];
        double x = t[k].px[0], y = t[k].px[1], tx, ty;
        int left;
        place_label(t, k, m, x, y, q->label, &tx, &ty, &left);
        sb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5.5\" fill=\"%s\"><title>", x, y, q->color);
        sb_html(b, q->tip);
        sb_printf(b, "</title></circle><text class=\"pl\" x=\"%.1f\" y=\"%.1f\"%s>", tx, ty, left ? " text-anchor=\"end\"" : "");
        sb_html(b, q->label);
        sb_puts(b, "</text>\n");
    }
    sb_puts(b, "</svg>\n");
}


/* ---------------------------------------------------------------- HTML */

static const char k_css[] =
    ":root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--alt:#f6f8fa}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0;background:#fff;color:var(--fg);font:14px/1.45 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Helvetica Neue\",Arial,sans-serif}\n"
    "main{max-width:1100px;margin:0 auto;padding:24px 20px 40px}\n"
    "h1{font-size:24px;margin:0 0 2px}\n"
    "h2{font-size:18px;margin:30px 0 8px;padding-bottom:4px;border-bottom:1px solid var(--line)}\n"
    ".sub,figcaption,footer,.note{color:var(--muted);font-size:12.5px}\n"
    ".sub{margin:0 0 14px;overflow-wrap:anywhere}\n"
    ".cards{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}\n"
    ".card{border:1px solid var(--line);border-radius:8px;padding:8px 14px;min-width:140px}\n"
    ".card b{display:block;font-size:20px;font-variant-numeric:tabular-nums}\n"
    ".card span{color:var(--muted);font-size:12px}\n"
    "table{border-collapse:collapse;margin:6px 0;font-variant-numeric:tabular-nums;font-size:13px}\n"
    ".wide{overflow-x:auto}\n"
    ".tall{max-height:75vh;overflow:auto;border:1px solid var(--line)}\n"
    "table.tensors{margin:0}\n"
    "table.tensors thead th{position:sticky;top:0;z-index:1}\n"
    ".wide td:nth-child(2){white-space:nowrap}\n"
    "th,td{padding:3px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}\n"
    "thead th{background:var(--alt);font-weight:600;white-space:nowrap}\n"
    "table.facts th{font-weight:600;background:none;white-space:nowrap}\n"
    "table.facts td,table.runs td{overflow-wrap:break-word}\n"
    ".r{text-align:right;white-space:nowrap}\n"
    "tbody tr:nth-child(even){background:#fafbfc}\n"
    "tr.total td{font-weight:600;border-top:2px solid var(--fg)}\n"
    ".mono,td.t{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,\"DejaVu Sans Mono\",\"Liberation Mono\",monospace;font-size:12.5px}\n"
    ".fb{color:#9a6700;font-weight:600}\n"
    "figure{margin:6px 0 10px;overflow-x:auto}\n"
    "svg.chart{display:block;max-width:100%;height:auto}\n"
    "svg text{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,\"DejaVu Sans Mono\",\"Liberation Mono\",monospace;font-size:11px;fill:#1f2328}\n"
    "svg .lab{font-family:system-ui,sans-serif;font-size:12.5px;fill:#59636e}\n"
    "svg .val,svg .na{fill:#59636e;paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}\n"
    "svg .na{font-style:italic}\n"
    "svg .reft{fill:#953800}\n"
    "svg .pl{font-size:12px;font-weight:600}\n"
    "svg .grid{stroke:#dde2e7}\n"
    "svg .minor{stroke:#f0f2f4}\n"
    "svg .ax{stroke:#6e7781}\n"
    "svg .stripe{fill:#f6f8fa}\n"
    "svg .ref{stroke:#953800;stroke-dasharray:5 3}\n"
    "svg .front{fill:none;stroke:#8c959f;stroke-width:1.5;stroke-dasharray:6 4}\n"
    "svg .err{stroke:#6e7781;fill:none}\n"
    "svg circle{stroke:#fff;stroke-width:1.5}\n"
    ".legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12.5px;margin:4px 0}\n"
    ".sw{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:5px;vertical-align:-1px}\n"

    "summary{cursor:pointer;color:var(--muted)}\n"
    "footer{margin-top:34px;border-top:1px solid var(--line);padding-top:8px}\n";

static const struct {
    const char *name, *color;
} k_type_colors[] = {
    {"F64", "#57606a"},   {"F32", "#8c959f"},    {"F16", "#afb8c1"},    {"BF16", "#a5b1bd"},  {"Q8_0", "#116329"},
    {"Q8_1", "#116329"},  {"Q6_K", "#2da44e"},   {"Q5_K", "#0f8f85"},   {"Q5_0", "#1b9e94"},  {"Q5_1", "#40b0a6"},
    {"Q4_K", "#0969da"},  {"Q4_0", "#3b8eea"},   {"Q4_1", "#5ca3f0"},   {"IQ4_NL", "#6639ba"}, {"IQ4_XS", "#8250df"},
    {"Q3_K", "#d4760b"},  {"IQ3_S", "#e09b3d"},  {"IQ3_XXS", "#eab26b"}, {"Q2_K", "#cf222e"},  {"IQ2_S", "#e05d66"},
};
static const char *const k_palette[] = {"#0969da", "#cf222e", "#1a7f37", "#8250df", "#d4760b",
                                        "#0f8f85", "#bf3989", "#57606a", "#953800", "#4d2d8c"};

static const char *type_color(const char *type) {
    uint32_t h = 2166136261u; /* FNV-1a: a stable color for types not in the table */
    for (size_t i = 0; i < SLM_ARRAY_LEN(k_type_colors); i++)
        if (!strcmp(k_type_colors[i].name, type)) return k_type_colors[i].color;
    for (const char *s = type; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return k_palette[h % SLM_ARRAY_LEN(k_palette)];
}

static void html_head(sb *b, const char *title) {
    sb_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n<title>");
    sb_html(b, title);
    sb_puts(b, "</title>\n<style>\n");
    sb_puts(b, k_css);
    sb_puts(b, "</style>\n</head>\n<body>\n<main>\n");
}

static void html_foot(sb *b, const char *version) {
    sb_puts(b, "<footer>Written by slm");
    if (version[0]) sb_puts(b, " "), sb_html(b, version);
    sb_puts(b, ". One self-contained file: no scripts, no external resources.</footer>\n</main>\n</body>\n</html>\n");
}

static void html_tag_text(sb *b, const char *open, const char *text, const char *close) {
    sb_puts(b, open);
    sb_html(b, text);
    sb_puts(b, close);
}

static void html_facts(sb *b, const fact *f, int n) {
    sb_puts(b, "<table class=\"facts\"><tbody>\n");
    for (int i = 0; i < n; i++) {
        html_tag_text(b, "<tr><th>", f[i].k, "</th>");
        html_tag_text(b, "<td>", f[i].v, "</td></tr>\n");
    }
    sb_puts(b, "</tbody></table>\n");
}

/* Tables sit in a horizontally scrolling box so a wide one never overflows the page; the
   per-tensor table also scrolls vertically, its header sticking to the top. */
static void html_table_open(sb *b, const table_head *h, const char *cls) {
    int tall = cls && !strcmp(cls, "tensors"); /* the long one: scrolls inside its box, header in view */
    sb_puts(b, tall ? "<div class=\"wide tall\">" : "<div class=\"wide\">");
    sb_puts(b, cls ? "<table class=\"" : "<table>");
    if (cls) sb_puts(b, cls), sb_puts(b, "\">");
    sb_puts(b, "<thead><tr>");
    for (int i = 0; i < h->n; i++) html_tag_text(b, h->right[i] ? "<th class=\"r\">" : "<th>", h->name[i], "</th>");
    sb_puts(b, "</tr></thead><tbody>\n");
}

/* mono_col: the column holding tensor names (-1: none). */
static void html_row(sb *b, const row *w, const table_head *h, const char *tr_class, int mono_col) {
    sb_puts(b, tr_class ? "<tr class=\"" : "<tr>");
    if (tr_class) sb_puts(b, tr_class), sb_puts(b, "\">");
    for (int i = 0; i < h->n; i++) {
        const char *open = h->right[i] ? "<td class=\"r\">" : i == mono_col ? "<td class=\"t\">" : "<td>";
        if (!strcmp(w->cell[i], "fell back")) open = "<td class=\"fb\">";
        html_tag_text(b, open, w->cell[i], "</td>");
    }
    sb_puts(b, "</tr>\n");
}

static void html_card(sb *b, const char *big, const char *small) {
    html_tag_text(b, "<div class=\"card\"><b>", big, "</b>");
    html_tag_text(b, "<span>", small, "</span></div>\n");
}

static void html_cards(sb *b, const run_view *v) {
    const slm_report *r = v->r;
    const slm_report_eval *e = &r->eval;
    char small[96];
    sb_puts(b, "<div class=\"cards\">\n");
    if (r->out_bytes) {
        snprintf(small, sizeof small, "output size (source %s)", fbytes((double)r->src_bytes).s);
        html_card(b, fbytes((double)r->out_bytes).s, small);
        if (r->src_bytes) html_card(b, fnum("%.2f" TIMES, (double)r->src_bytes / (double)r->out_bytes).s, "smaller");
        html_card(b, fnum("%.3f", r->bpw).s, "bits per weight");
    }
    if (r->n_tensors) html_card(b, ferr(v->wrel).s, "weighted rel. RMSE");
    if (e->present) html_card(b, fpm("%.3f", e->ppl, e->ppl_err).s, "perplexity");
    if (has_ref(r)) {
        html_card(b, fpm("%+.3f", e->dppl, e->dppl_err).s, "\xCE\x94PPL vs reference");
        html_card(b, fnum("%.5f", e->kld_mean).s, "mean KLD");
        html_card(b, fnum("%.2f %%", 100.0 * e->top1).s, "top-1 agreement");
    }
    sb_puts(b, "</div>\n");
}

/* Swatches of the run's output types, in order of first appearance, with tensor counts. */
static void html_type_legend(sb *b, const slm_report *r) {
    sb_puts(b, "<div class=\"legend\">");
    for (size_t i = 0; i < r->n_tensors; i++) {
        const char *t = r->tensors[i].type;
        size_t count = 0, j;
        for (j = 0; j < i && strcmp(r->tensors[j].type, t); j++) {}
        if (j < i) continue;
        for (j = i; j < r->n_tensors; j++) count += !strcmp(r->tensors[j].type, t);
        sb_printf(b, "<span><i class=\"sw\" style=\"background:%s\"></i>", type_color(t));
        sb_html(b, t);
        sb_printf(b, " (%zu)</span>", count);
    }
    sb_puts(b, "</div>\n");
}

/* Matrices only: 1-D tensors (norms, biases) stay F32 at 32 bits and exact, and would set the
   bits-per-weight scale, squeezing every quantized bar into its first tenth. */
static int charted(const slm_report_tensor *t) { return t->ndim >= 2; }

static void html_bpw_chart(sb *b, const run_view *v, bar *bars) {
    const slm_report *r = v->r;
    char ref[64];
    size_t n = 0, skipped = 0;
    for (size_t i = 0; i < r->n_tensors; i++) {
        const slm_report_tensor *t = &r->tensors[i];
        if (!charted(t)) { skipped++; continue; }
        bar *x = &bars[n++];
        *x = (bar){.name = t->name, .v = t->bpw, .color = type_color(t->type)};
        snprintf(x->text, sizeof x->text, "%s %s", fnum("%.2f", t->bpw).s, t->type);
        snprintf(x->tip, sizeof x->tip, "%s: %s, %s bpw, %s%s", t->name, t->type, fnum("%.3f", t->bpw).s, fbytes((double)t->bytes).s,
                 t->fell_back ? " (fell back)" : "");
    }
    if (!n) return;
    sb_puts(b, "<h2>Bits per weight per tensor</h2>\n");
    html_type_legend(b, r);
    sb_puts(b, "<figure>\n");
    snprintf(ref, sizeof ref, "model %s bpw", fnum("%.2f", r->bpw).s);
    svg_hbars(b, "Bits per weight per tensor", "bits per weight", bars, n, 0, r->bpw > 0 ? r->bpw : NAN, ref);
    sb_printf(b, "<figcaption>Storage bits per weight of each matrix, colored by its output type; the dashed line is the "
                 "whole model's average. 1-D tensors (norms, biases: F32 and exact; %zu here) are in the table only.</figcaption>\n"
                 "</figure>\n", skipped);
}

/* The matrices by relative error, largest first (the order of the table); none in a dry run. */
static void html_err_chart(sb *b, const runs_ctx *c, bar *bars) {
    const run_view *v = &c->v[0];
    const slm_report *r = v->r;
    char ref[64];
    size_t n = 0;
    for (size_t k = 0; k < r->n_tensors; k++) {
        const slm_report_tensor *t = &r->tensors[c->by_err[k]];
        if (!charted(t) || isnan(t->rel_rmse)) continue;
        bar *x = &bars[n++];
        *x = (bar){.name = t->name, .v = t->rel_rmse, .color = type_color(t->type)};
        snprintf(x->text, sizeof x->text, "%s", t->rel_rmse == 0 ? "0 (exact)" : ferr(t->rel_rmse).s);
        snprintf(x->tip, sizeof x->tip, "%s: %s, rel. RMSE %s, max |err| %s", t->name, t->type, ferr(t->rel_rmse).s,
                 ferr(t->max_abs_err).s);
    }
    if (!n) return;
    sb_puts(b, "<h2>Relative RMSE per tensor</h2>\n<figure>\n");
    snprintf(ref, sizeof ref, "weighted %s", ferr(v->wrel).s);
    svg_hbars(b, "Relative RMSE per tensor", "RMSE of the dequantized weights / RMS of the source weights", bars, n, 1,
              v->wrel > 0 ? v->wrel : NAN, ref);
    sb_puts(b, "<figcaption>Error of each matrix after the round trip through its output type, relative to the weights' RMS, "
               "largest first; \"0 (exact)\" marks tensors stored without loss. The dashed line is the parameter-weighted RMS."
               "</figcaption>\n</figure>\n");
}

/* ---------------------------------------------------------------- training curve (distill) */

/* Step points' loss, evaluation points' student/teacher PPL and KLD, as plottable series. */
typedef struct series {
    const char *label, *color;
    int dashed;
    size_t n;
    double x[1024], y[1024];
} series;

/* At most 1024 points per series: longer runs are thinned evenly (the last point kept). */
static void series_fill(series *s, const slm_report *r, int eval, size_t field) {
    size_t n = 0;
    for (size_t i = 0; i < r->n_train; i++) n += r->train[i].has_eval == eval;
    size_t every = n > 1024 ? (n + 1023) / 1024 : 1, k = 0;
    s->n = 0;
    for (size_t i = 0; i < r->n_train; i++) {
        const slm_report_train_point *p = &r->train[i];
        if (p->has_eval != eval) continue;
        if (k++ % every && k != n) continue;
        s->x[s->n] = (double)p->step;
        s->y[s->n++] = *(const double *)(const void *)((const char *)p + field);
    }
}

static void svg_lines(sb *b, const char *title, const char *ylab, const series *sr, size_t n_sr, int allow_log) {
    scale sx = {.p0 = SC_L, .p1 = SC_R}, sy = {.p0 = SC_B, .p1 = SC_T};
    double xs[2048], ys[4096];
    size_t nx = 0, ny = 0;
    for (size_t k = 0; k < n_sr; k++)
        for (size_t i = 0; i < sr[k].n; i++) {
            if (nx < 2048) xs[nx++] = sr[k].x[i];
            if (ny < 4096) ys[ny++] = sr[k].y[i];
        }
    sc_fit(&sx, xs, nx, sizeof(double), 0, 1, 1);
    sc_fit(&sy, ys, ny, sizeof(double), allow_log, 0, 0);
    svg_open(b, SC_H, title);
    svg_scatter_axes(b, &sx, &sy, "optimizer step", ylab);
    for (size_t k = 0; k < n_sr; k++) {
        int open = 0;
        for (size_t i = 0; i < sr[k].n; i++) {
            if (!isfinite(sr[k].y[i])) continue;
            sb_printf(b, "%s%.1f,%.1f", open++ ? " " : "<polyline fill=\"none\" stroke-width=\"2\" points=\"", sc_px(&sx, sr[k].x[i]),
                      sc_px(&sy, sr[k].y[i]));
        }
        if (open) sb_printf(b, "\" stroke=\"%s\"%s/>\n", sr[k].color, sr[k].dashed ? " stroke-dasharray=\"6 4\"" : "");
        if (open == 1 || (open && sr[k].n <= 40)) /* few points: mark them */
            for (size_t i = 0; i < sr[k].n; i++)
                if (isfinite(sr[k].y[i]))
                    sb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n", sc_px(&sx, sr[k].x[i]), sc_px(&sy, sr[k].y[i]),
                              sr[k].color);
        sb_printf(b, "<text class=\"pl\" x=\"%.1f\" y=\"%.1f\" fill=\"%s\">", SC_R + 12, SC_T + 16 + 18.0 * (double)k, sr[k].color);
        sb_html(b, sr[k].label);
        sb_puts(b, "</text>\n");
    }
    sb_puts(b, "</svg>\n");
}

static const table_head k_train_head = {
    {"step", "tokens", "seconds", "PPL", "teacher PPL", "KL(teacher‖student)", "top-1"}, {1, 1, 1, 1, 1, 1, 1}, 7};

static void train_row(const slm_report_train_point *p, row *w) {
    cellf(w, 0, "%lld", (long long)p->step);
    cellf(w, 1, "%lld", (long long)p->tokens);
    cellf(w, 2, "%.1f", p->seconds);
    cellf(w, 3, "%s", fnum("%.4f", p->ppl).s);
    cellf(w, 4, "%s", fnum("%.4f", p->ref_ppl).s);
    cellf(w, 5, "%s", fnum("%.6f", p->kld).s);
    cellf(w, 6, "%s", fnum("%.2f%%", 100.0 * p->top1).s);
}

/* "N steps, X tokens in Y s (Z tokens/s); held-out ...": the run in one sentence. */
static const char *train_note(const slm_report *r) {
    static char buf[400];
    const slm_report_train_point *last = NULL;
    for (size_t i = 0; i < r->n_train; i++)
        if (!r->train[i].has_eval) last = &r->train[i];
    int n = last ? snprintf(buf, sizeof buf, "%lld steps, %lld training tokens in %.1f s of training (%.0f tokens/s). ",
                            (long long)last->step, (long long)last->tokens, last->seconds,
                            last->seconds > 0 ? (double)last->tokens / last->seconds : 0.0)
                 : 0;
    snprintf(buf + n, sizeof buf - (size_t)n, "%s",
             "The table: held-out evaluations during training (student against the teacher, llama-perplexity's second-half "
             "windows); the first row is the student before training, the last one the result.");
    return buf;
}

static void md_train(sb *b, const slm_report *r, row *w) {
    if (!r->n_train) return;
    sb_puts(b, "\n## Training\n\n");
    sb_puts(b, train_note(r));
    sb_puts(b, "\n\n");
    md_table_head(b, &k_train_head);
    for (size_t i = 0; i < r->n_train; i++)
        if (r->train[i].has_eval) train_row(&r->train[i], w), md_row(b, w, k_train_head.n, 0);
    const slm_report_train_point *last = NULL;
    for (size_t i = 0; i < r->n_train; i++)
        if (!r->train[i].has_eval) last = &r->train[i];
    if (last)
        sb_printf(b, "\nLast step %lld: loss %s (divergence %s, cross-entropy %s), gradient norm %s, lr %s.\n", (long long)last->step,
                  fnum("%.4f", last->loss).s, fnum("%.4f", last->kd).s, fnum("%.4f", last->ce).s, fnum("%.3f", last->grad_norm).s,
                  fnum("%.2e", last->lr).s);
}

static void html_train(sb *b, const slm_report *r, row *w) {
    if (!r->n_train) return;
    static series sr[3];
    sb_puts(b, "<h2>Training</h2>\n");
    sr[0] = (series){.label = "loss", .color = k_palette[0]};
    series_fill(&sr[0], r, 0, offsetof(slm_report_train_point, loss));
    if (sr[0].n) svg_lines(b, "Training loss per optimizer step", "loss", sr, 1, 1);
    sr[0] = (series){.label = "student PPL", .color = k_palette[0]};
    sr[1] = (series){.label = "teacher PPL", .color = k_palette[2], .dashed = 1};
    series_fill(&sr[0], r, 1, offsetof(slm_report_train_point, ppl));
    series_fill(&sr[1], r, 1, offsetof(slm_report_train_point, ref_ppl));
    if (!sr[0].n) return;
    svg_lines(b, "Held-out perplexity over training", "perplexity", sr, 2, 0);
    sr[0] = (series){.label = "KL(teacher||student)", .color = k_palette[1]};
    series_fill(&sr[0], r, 1, offsetof(slm_report_train_point, kld));
    svg_lines(b, "Held-out KL divergence from the teacher over training", "mean KL", sr, 1, 1);
    html_tag_text(b, "<p class=\"note\">", train_note(r), "</p>\n");
    html_table_open(b, &k_train_head, NULL);
    for (size_t i = 0; i < r->n_train; i++)
        if (r->train[i].has_eval) train_row(&r->train[i], w), html_row(b, w, &k_train_head, NULL, 0);
    sb_puts(b, "</tbody></table></div>\n");
}


static void html_one(sb *b, const runs_ctx *c, row *w, bar *bars) {
    const run_view *v = &c->v[0];
    const slm_report *r = v->r;
    fact f[20];
    char title[400];
    snprintf(title, sizeof title, "%s%s%s", model_of(r), r->ftype[0] ? " " ARROW " " : "", r->ftype);
    html_tag_text(b, "<h1>", title, "</h1>\n");
    html_tag_text(b, "<p class=\"sub\">", r->model[0] ? r->model : model_of(r), "</p>\n");
    html_cards(b, v);
    sb_puts(b, "<h2>Run</h2>\n");
    html_facts(b, f, run_facts(v, f));
    if (r->eval.present) {
        sb_puts(b, "<h2>Evaluation</h2>\n");
        html_facts(b, f, eval_facts(&r->eval, f));
    }
    html_train(b, r, w);
    if (!r->n_tensors) return;
    html_bpw_chart(b, v, bars);
    html_err_chart(b, c, bars);
    sb_puts(b, "<h2>Tensors</h2>\n");
    html_tag_text(b, "<p class=\"note\">", tensor_order_note(c), "</p>\n");
    html_table_open(b, &k_tensor_head, "tensors");
    for (size_t k = 0; k < r->n_tensors; k++) {
        tensor_row(&r->tensors[c->by_err[k]], c->by_err[k], w);
        html_row(b, w, &k_tensor_head, NULL, 1);
    }
    tensor_total_row(v, w);
    html_row(b, w, &k_tensor_head, "total", 1);
    sb_puts(b, "</tbody></table></div>\n<p class=\"note\">Totals: sizes and parameters summed over tensors (file metadata excluded); "
               "rel. RMSE is the parameter-weighted RMS of the tensors' relative RMSE; max |err| the largest over tensors.</p>\n");
}

/* What the scatter's y axis shows: the first of KLD, ΔPPL, PPL, the weights' error that can
   plot at least half of the runs that have a size; else the one that plots the most. */
enum { Y_KLD, Y_DPPL, Y_PPL, Y_WREL, Y_COUNT };

static void scatter_point(const runs_ctx *c, size_t k, int metric, double unit, point *p);

static int scatter_metric(const runs_ctx *c, point *scratch) {
    int best = Y_KLD;
    size_t best_n = 0, sized = 0;
    for (size_t i = 0; i < c->n; i++) sized += c->runs[i].out_bytes > 0;
    for (int m = 0; m < Y_COUNT; m++) {
        size_t n = 0;
        for (size_t k = 0; k < c->n; k++) {
            scatter_point(c, k, m, 1.0, scratch);
            n += isfinite(scratch->x) && isfinite(scratch->y);
        }
        if (n > 0 && 2 * n >= sized) return m;
        if (n > best_n) best = m, best_n = n;
    }
    return best;
}

static void scatter_point(const runs_ctx *c, size_t k, int metric, double unit, point *p) {
    const run_view *v = &c->v[c->order[k]];
    const slm_report *r = v->r;
    const slm_report_eval *e = &r->eval;
    p->label = v->label;
    p->color = k_palette[k % SLM_ARRAY_LEN(k_palette)];
    p->x = !r->out_bytes ? NAN : c->same_params ? (double)r->out_bytes / unit : r->bpw;
    p->y = NAN, p->yerr = 0;
    if (metric == Y_KLD && has_ref(r)) p->y = e->kld_mean, p->yerr = e->kld_mean_err;
    if (metric == Y_DPPL && has_ref(r)) p->y = e->dppl, p->yerr = e->dppl_err;
    if (metric == Y_PPL && e->present) p->y = e->ppl, p->yerr = e->ppl_err;
    if (metric == Y_WREL) p->y = v->wrel;
    snprintf(p->tip, sizeof p->tip, "%s: %s, %s bpw", v->label, r->out_bytes ? fbytes((double)r->out_bytes).s : "size n/a",
             fnum("%.3f", r->bpw).s);
    size_t n = strlen(p->tip);
    if (has_ref(r))
        snprintf(p->tip + n, sizeof p->tip - n, ", mean KLD %s, \xCE\x94PPL %s", fpm("%.6f", e->kld_mean, e->kld_mean_err).s,
                 fpm("%+.4f", e->dppl, e->dppl_err).s);
    else if (e->present)
        snprintf(p->tip + n, sizeof p->tip - n, ", PPL %s", fpm("%.4f", e->ppl, e->ppl_err).s);
    else if (r->n_tensors)
        snprintf(p->tip + n, sizeof p->tip - n, ", w. rel. RMSE %s", ferr(v->wrel).s);
}

static void html_scatter(sb *b, const runs_ctx *c, point *pts, scatter_tmp *tmp) {
    static const char *ylabs[] = {"mean KL divergence vs reference", "\xCE\x94PPL vs reference", "perplexity",
                                  "weighted rel. RMSE of the weights"};
    int metric = scatter_metric(c, pts);
    uint64_t maxb = 0;
    for (size_t i = 0; i < c->n; i++) maxb = SLM_MAX(maxb, c->runs[i].out_bytes);
    double unit = maxb >= (1ull << 30) ? 1073741824.0 : maxb >= (1ull << 20) ? 1048576.0 : 1024.0;
    const char *xlab = !c->same_params        ? "bits per weight"
                       : unit == 1073741824.0 ? "output size (GiB)"
                       : unit == 1048576.0    ? "output size (MiB)"
                                              : "output size (KiB)";
    for (size_t k = 0; k < c->n; k++) scatter_point(c, k, metric, unit, &pts[k]);
    sb_puts(b, "<h2>Size and quality</h2>\n<figure>\n");
    svg_scatter(b, "Size and quality of each run", xlab, ylabs[metric], pts, c->n, metric != Y_PPL, tmp);
    sb_puts(b, "<figcaption>Lower left is better. The dashed line joins the runs that no other run beats on both axes");
    if (metric != Y_WREL) sb_puts(b, "; error bars are one standard error");
    if (metric == Y_WREL) sb_puts(b, " (no run has evaluation numbers: the y axis is the weights' error, not the model's)");
    if (!c->same_params) sb_puts(b, "; the runs have different parameter counts, so x is bits per weight");
    sb_puts(b, ".");
    int first = 1;
    for (size_t k = 0; k < c->n; k++) {
        if (plottable(&pts[k])) continue;
        sb_puts(b, first ? " Not plotted (no value): " : ", ");
        sb_html(b, pts[k].label);
        first = 0;
    }
    sb_puts(b, first ? "</figcaption>\n</figure>\n" : ".</figcaption>\n</figure>\n");
}

static void html_matrix_row(sb *b, const runs_ctx *c, const char *name) {
    char cell[CELL];
    html_tag_text(b, "<tr><td class=\"t\">", name, "</td>");
    for (size_t k = 0; k < c->n; k++) {
        matrix_cell(c, k, name, cell, sizeof cell);
        html_tag_text(b, "<td class=\"r\">", cell, "</td>");
    }
    sb_puts(b, "</tr>\n");
}

static void html_many(sb *b, const runs_ctx *c, row *w, point *pts, scatter_tmp *tmp) {
    char title[300];
    table_head h;
    snprintf(title, sizeof title, "%zu runs%s%s", c->n, c->same_model ? " of " : "", c->same_model ? model_of(&c->runs[0]) : "");
    html_tag_text(b, "<h1>", title, "</h1>\n");
    if (c->same_model && c->runs[0].model[0]) html_tag_text(b, "<p class=\"sub\">", c->runs[0].model, "</p>\n");
    sb_puts(b, "<p class=\"sub\">Sorted by output size. PPL and KLD come from slm eval (" DASH " when a run was not evaluated); "
               "w. rel. RMSE is the parameter-weighted RMS of the per-tensor relative RMSE of the weights.</p>\n");
    html_scatter(b, c, pts, tmp);
    sb_puts(b, "<h2>Comparison</h2>\n");
    compare_head(&h);
    html_table_open(b, &h, NULL);
    for (size_t k = 0; k < c->n; k++) {
        compare_row(c, k, w);
        html_row(b, w, &h, NULL, -1);
    }
    sb_puts(b, "</tbody></table></div>\n<h2>Runs</h2>\n");
    runs_head(c, &h);
    html_table_open(b, &h, "runs");
    for (size_t k = 0; k < c->n; k++) {
        runs_row(c, k, w);
        html_row(b, w, &h, NULL, -1);
    }
    sb_puts(b, "</tbody></table></div>\n");
    if (!any_tensors(c)) return;
    sb_puts(b, "<h2>Per-tensor type and relative RMSE</h2>\n<details open=\"open\"><summary>one column per run; largest rel. "
               "RMSE (in any run) first</summary>\n<div class=\"wide tall\"><table class=\"tensors\"><thead><tr><th>tensor</th>");
    for (size_t k = 0; k < c->n; k++) html_tag_text(b, "<th class=\"r\">", c->v[c->order[k]].label, "</th>");
    sb_puts(b, "</tr></thead><tbody>\n");
    matrix_rows(c, html_matrix_row, b);
    sb_puts(b, "</tbody></table></div>\n</details>\n");
}

/* ---------------------------------------------------------------- writers */

static int render_markdown(sb *b, const slm_report *runs, size_t n_runs, slm_err *err) {
    runs_ctx c;
    row w;
    SLM_TRY(ctx_build(&c, runs, n_runs, err));
    if (n_runs == 1) md_one(b, &c, &w);
    else md_many(b, &c, &w);
    ctx_free(&c);
    return b->rc;
}

static int render_html(sb *b, const slm_report *runs, size_t n_runs, slm_err *err) {
    runs_ctx c;
    row w;
    SLM_TRY(ctx_build(&c, runs, n_runs, err));
    char title[400];
    if (n_runs == 1)
        snprintf(title, sizeof title, "slm report: %s%s%s", model_of(&runs[0]), runs[0].ftype[0] ? " " : "", runs[0].ftype);
    else snprintf(title, sizeof title, "slm report: %zu runs%s%s", n_runs, c.same_model ? " of " : "", c.same_model ? model_of(&runs[0]) : "");
    html_head(b, title);
    if (n_runs == 1) {
        bar *bars = NULL;
        if (runs[0].n_tensors && (b->rc = slm_calloc((void **)&bars, runs[0].n_tensors, sizeof(bar), err, "report chart"))) goto done;
        html_one(b, &c, &w, bars);
        slm_free(bars);
    } else {
        point *pts = NULL;
        scatter_tmp *tmp = NULL;
        if ((b->rc = slm_calloc((void **)&pts, n_runs, sizeof(point), err, "report chart")) ||
            (b->rc = slm_calloc((void **)&tmp, n_runs, sizeof(scatter_tmp), err, "report chart"))) {
            slm_free(pts);
            goto done;
        }
        html_many(b, &c, &w, pts, tmp);
        slm_free(pts);
        slm_free(tmp);
    }
    html_foot(b, runs[0].version);
done:
    ctx_free(&c);
    return b->rc;
}

int slm_report_render(const slm_report *runs, size_t n_runs, int html, char **text, size_t *len, slm_err *err) {
    sb b = {.err = err};
    int rc = html ? render_html(&b, runs, n_runs, err) : render_markdown(&b, runs, n_runs, err);
    if (rc) {
        slm_free(b.p);
        return rc;
    }
    *text = b.p;
    *len = b.n;
    return SLM_OK;
}

static int write_rendered(slm_outset *os, const slm_report *runs, size_t n_runs, int html, const char *path, slm_err *err) {
    char *text = NULL;
    size_t len = 0;
    SLM_TRY(slm_report_render(runs, n_runs, html, &text, &len, err));
    int rc = slm_outset_write_file(os, path, text, len, err);
    slm_free(text);
    return rc;
}

int slm_report_write_markdown(slm_outset *os, const slm_report *runs, size_t n_runs, const char *path, slm_err *err) {
    return write_rendered(os, runs, n_runs, 0, path, err);
}

int slm_report_write_html(slm_outset *os, const slm_report *runs, size_t n_runs, const char *path, slm_err *err) {
    return write_rendered(os, runs, n_runs, 1, path, err);
}

/* ---------------------------------------------------------------- reports.json and the folder */

/* A JSON array of report objects, in input order. */
static int write_json_array(slm_outset *os, const slm_report *runs, size_t n, const char *path, slm_err *err) {
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < n; i++) {
        cJSON *o = slm_report_to_cjson(&runs[i]);
        if (!o || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            cJSON_Delete(arr);
            arr = NULL;
        }
    }
    return slm_report_write_cjson(os, arr, path, err);
}

const char *slm_report_dir_file(char *buf, size_t cap, const char *dir, const char *name) {
    snprintf(buf, cap, "%s%s%s", dir, dir[0] && dir[strlen(dir) - 1] == '/' ? "" : "/", name);
    return buf;
}

int slm_report_write_dir(slm_outset *os, const slm_report *runs, size_t n_runs, const char *dir, slm_err *err) {
    char path[4200];
    if (n_runs == 0) return slm_errf(err, SLM_E_ARG, "%s: no runs to report", dir);
    SLM_TRY(slm_outset_mkdir(os, dir, err));
    slm_report_dir_file(path, sizeof path, dir, n_runs == 1 ? SLM_REPORT_JSON_NAME : SLM_REPORT_JSONS_NAME);
    SLM_TRY(n_runs == 1 ? slm_report_write_json(os, &runs[0], path, err) : write_json_array(os, runs, n_runs, path, err));
    SLM_TRY(slm_report_write_markdown(os, runs, n_runs, slm_report_dir_file(path, sizeof path, dir, SLM_REPORT_MD_NAME), err));
    return slm_report_write_html(os, runs, n_runs, slm_report_dir_file(path, sizeof path, dir, SLM_REPORT_HTML_NAME), err);
}
