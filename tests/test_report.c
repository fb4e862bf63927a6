/* test_report.c - the report's Markdown, HTML and folder renderings (report/report.html.c)
 * on a synthetic three-run data set: exact table rows, well-formed and escaped HTML, one SVG
 * per chart, NaN/Inf kept out of SVG coordinates, JSON round trips, folder errors, and
 * out-of-memory paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/mem.h"
#include "core/utf8.h"
#include "report/gate.h"
#include "report/report.h"
#include "tests/testutil.h"

#define NASTY_MODEL "tiny<&>\"model"
#define NASTY_TENSOR "blk.0.attn_q<&>\".weight"

/* ---------------------------------------------------------------- synthetic runs */


/* The report writers add files to an output set; these commit it (or abort on failure). */
static int commit_or_abort(slm_outset *os, int rc, slm_err *err) {
    if (!rc) return slm_outset_commit(os, err);
    slm_outset_abort(os);
    return rc;
}
static int w_dir(const slm_report *runs, size_t n, const char *dir, slm_err *err) {
    slm_outset os;
    slm_outset_init(&os, SLM_AFILE_REPLACE);
    return commit_or_abort(&os, slm_report_write_dir(&os, runs, n, dir, err), err);
}
static int w_md(const slm_report *runs, size_t n, const char *path, slm_err *err) {
    slm_outset os;
    slm_outset_init(&os, SLM_AFILE_REPLACE);
    return commit_or_abort(&os, slm_report_write_markdown(&os, runs, n, path, err), err);
}
static int w_html(const slm_report *runs, size_t n, const char *path, slm_err *err) {
    slm_outset os;
    slm_outset_init(&os, SLM_AFILE_REPLACE);
    return commit_or_abort(&os, slm_report_write_html(&os, runs, n, path, err), err);
}
static int w_json(const slm_report *r, const char *path, slm_err *err) {
    slm_outset os;
    slm_outset_init(&os, SLM_AFILE_REPLACE);
    return commit_or_abort(&os, slm_report_write_json(&os, r, path, err), err);
}

static void add_tensor(slm_report *r, const char *name, const char *src, const char *type, int64_t d0, int64_t d1,
                       uint64_t bytes, double rel, double max_abs, int fell_back) {
    slm_report_tensor *t = &r->tensors[r->n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->src_type, sizeof t->src_type, "%s", src);
    snprintf(t->type, sizeof t->type, "%s", type);
    t->ndim = d1 ? 2 : 1;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->n_params = d1 ? d0 * d1 : d0;
    t->bytes = bytes;
    t->src_bytes = (uint64_t)t->n_params * 4;
    t->bpw = 8.0 * (double)bytes / (double)t->n_params;
    t->rmse = rel * 0.03;
    t->rel_rmse = rel;
    t->max_abs_err = max_abs;
    t->fell_back = fell_back;
    r->n_fallback += fell_back;
}

static void base_run(slm_report *r, const char *ftype, uint64_t out_bytes, double bpw) {
    memset(r, 0, sizeof(*r));
    snprintf(r->command, sizeof r->command, "quantize");
    snprintf(r->version, sizeof r->version, "0.1.0");
    snprintf(r->model, sizeof r->model, "/m/a|b");
    snprintf(r->model_name, sizeof r->model_name, NASTY_MODEL);
    snprintf(r->output, sizeof r->output, "/out/%s.gguf", ftype);
    snprintf(r->ftype, sizeof r->ftype, "%s", ftype);
    r->threads = 2;
    r->seconds = 1.25;
    r->peak_rss_bytes = 3 * 1048576.0;
    r->src_bytes = 8000000;
    r->out_bytes = out_bytes;
    r->n_params = 2000000;
    r->bpw = bpw;
    r->tensors = calloc(4, sizeof(slm_report_tensor));
    assert_non_null(r->tensors);
}

static void set_eval(slm_report *r, double ppl, double ppl_err) {
    slm_report_eval *e = &r->eval;
    e->present = 1;
    snprintf(e->text, sizeof e->text, "wiki.test.raw");
    snprintf(e->convention, sizeof e->convention, "second-half");
    e->ctx = 128;
    e->n_chunks = 10;
    e->scored = 640;
    e->mean_nll = log(ppl);
    e->ppl = ppl;
    e->ppl_err = ppl_err;
    e->tok_per_s = 1234.5;
}

static void set_ref(slm_report *r, double dppl, double dppl_err, double kld, double kld_err, double p99, double top1) {
    slm_report_eval *e = &r->eval;
    e->has_ref = 1;
    snprintf(e->ref, sizeof e->ref, "tiny-f32.gguf");
    e->ref_ppl = e->ppl - dppl;
    e->dppl = dppl;
    e->dppl_err = dppl_err;
    e->kld_mean = kld;
    e->kld_mean_err = kld_err;
    e->kld_median = kld / 2;
    e->kld_p99 = p99;
    e->kld_max = p99 * 4;
    e->top1 = top1;
}

/* runs[0] = Q4_K_M (evaluated with a reference), runs[1] = Q8_0 (same), runs[2] = Q2_K (PPL only).
   Input order differs from size order on purpose. */
static void make_runs(slm_report runs[3]) {
    base_run(&runs[0], "Q4_K_M", 2000000, 4.8);
    add_tensor(&runs[0], NASTY_TENSOR, "F32", "Q4_K", 256, 256, 36864, 0.0712, 0.0113, 0);
    add_tensor(&runs[0], "output_norm.weight", "F32", "F32", 256, 0, 1024, 0, 0, 0);
    add_tensor(&runs[0], "token_embd.weight", "F32", "Q6_K", 256, 256, 53760, 0.0178, 0.0042, 1);
    set_eval(&runs[0], 12.3456, 0.1234);
    set_ref(&runs[0], 0.4567, 0.0123, 0.012345, 0.000123, 0.1, 0.9512);

    base_run(&runs[1], "Q8_0", 4000000, 8.5);
    add_tensor(&runs[1], NASTY_TENSOR, "F32", "Q8_0", 256, 256, 69632, 0.0051, 0.0009, 0);
    set_eval(&runs[1], 11.95, 0.12);
    set_ref(&runs[1], 0.0512, 0.004, 0.00091, 0.00002, 0.0083, 0.9891);

    base_run(&runs[2], "Q2_K", 1300000, 3.1);
    add_tensor(&runs[2], NASTY_TENSOR, "F32", "Q2_K", 256, 256, 21504, 0.25, 0.05, 0);
    set_eval(&runs[2], 15.0, 0.2);
}

static void free_runs(slm_report *runs, size_t n) {
    for (size_t i = 0; i < n; i++) slm_report_free(&runs[i]);
}

/* ---------------------------------------------------------------- checks on the text */

static void expect_contains(const char *text, const char *needle) {
    if (!strstr(text, needle)) fail_msg("expected to find:\n%s\n--- in:\n%.4000s", needle, text);
}

static void expect_absent(const char *text, const char *needle) {
    if (strstr(text, needle)) fail_msg("did not expect: %s", needle);
}

static size_t count(const char *text, const char *needle) {
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p++) n++;
    return n;
}

static const char *const k_known_tags[] = {"html", "head", "meta", "title", "style", "body", "main", "h1", "h2", "p",
                                           "div", "span", "b", "i", "table", "thead", "tbody", "tr", "th", "td",
                                           "figure", "figcaption", "details", "summary", "footer", "svg", "line",
                                           "rect", "text", "circle", "polyline", "path"};

static int known_tag(const char *name) {
    for (size_t i = 0; i < sizeof k_known_tags / sizeof k_known_tags[0]; i++)
        if (!strcmp(k_known_tags[i], name)) return 1;
    return 0;
}

/* Well-formed in the strict sense the writer promises: every element is closed in order
   (<meta> excepted, "/>" self-closes), every '<' starts a known tag, attribute values are
   quoted, every '&' starts an entity. Fails the test with the offset of the first problem. */
static void expect_well_formed(const char *h) {
    char stack[64][16];
    int depth = 0;
    const char *p = h;
    if (strncmp(p, "<!DOCTYPE html>", 15)) fail_msg("no doctype");
    p += 15;
    for (; *p; p++) {
        if (*p == '&') {
            const char *q = p + 1;
            if (*q == '#') q++;
            while (isalnum((unsigned char)*q)) q++;
            if (*q != ';' || q == p + 1) fail_msg("bare '&' at offset %ld", (long)(p - h));
            continue;
        }
        if (*p != '<') continue;
        int closing = p[1] == '/';
        const char *q = p + 1 + closing;
        char name[16] = {0};
        size_t k = 0;
        while (isalnum((unsigned char)*q) && k < sizeof name - 1) name[k++] = *q++;
        if (!known_tag(name)) fail_msg("'<' not starting a known tag at offset %ld: %.30s", (long)(p - h), p);
        while (*q && *q != '>') { /* attributes: name="value" */
            if (*q == '=') {
                if (q[1] != '"') fail_msg("unquoted attribute at offset %ld", (long)(q - h));
                q = strchr(q + 2, '"');
                if (!q) fail_msg("unterminated attribute");
            }
            q++;
        }
        if (!*q) fail_msg("unterminated tag at offset %ld", (long)(p - h));
        int self = q[-1] == '/';
        if (closing) {
            if (depth == 0 || strcmp(stack[depth - 1], name)) fail_msg("</%s> closes <%s> at offset %ld", name, depth ? stack[depth - 1] : "(none)", (long)(p - h));
            depth--;
        } else if (!self && strcmp(name, "meta")) {
            if (depth == 64) fail_msg("nesting too deep");
            snprintf(stack[depth++], sizeof stack[0], "%s", name);
        }
        if (!strcmp(name, "style") && !closing) { /* CSS: skip to </style> */
            const char *e = strstr(q, "</style>");
            if (!e) fail_msg("unterminated style");
            q = e - 1;
        }
        p = q;
    }
    if (depth) fail_msg("<%s> not closed", stack[depth - 1]);
}

/* No NaN or Inf spelled inside any <svg>...</svg> (coordinates, sizes, labels). */
static void expect_svgs_finite(const char *h) {
    for (const char *s = h; (s = strstr(s, "<svg")); s++) {
        const char *e = strstr(s, "</svg>");
        assert_non_null(e);
        for (const char *c = s; c < e; c++) {
            if (!strncasecmp(c, "nan", 3) || !strncasecmp(c, "inf", 3))
                fail_msg("non-finite value in SVG at offset %ld: %.60s", (long)(c - h), c > s + 30 ? c - 30 : s);
        }
    }
}

static char *render_md(const slm_report *runs, size_t n, const char *name) {
    slm_err err = {0};
    const char *path = tmp_path(name);
    if (w_md(runs, n, path, &err)) fail_msg("write_markdown: %s", err.msg);
    return read_whole_file(path, NULL);
}

static char *render_html(const slm_report *runs, size_t n, const char *name) {
    slm_err err = {0};
    const char *path = tmp_path(name);
    if (w_html(runs, n, path, &err)) fail_msg("write_html: %s", err.msg);
    return read_whole_file(path, NULL);
}

/* ---------------------------------------------------------------- tests */

static void test_markdown_one_run(void **st) {
    (void)st;
    slm_report runs[3];
    make_runs(runs);
    char *md = render_md(runs, 1, "one.md");
    expect_contains(md, "# slm report: tiny\\<\\&\\>\"model \xE2\x86\x92 Q4_K_M\n");
    expect_contains(md, "| model | tiny\\<\\&\\>\"model (/m/a\\|b) |\n");
    expect_contains(md, "| output size | 1.91 MiB (2000000 bytes) |\n");
    expect_contains(md, "| compression | 4.00\xC3\x97 smaller |\n");
    expect_contains(md, "| bits per weight | 4.800 |\n");
    expect_contains(md, "| tensors | 3 (1 fell back to another type) |\n");
    expect_contains(md, "| time | 1.25 s on 2 threads |\n");
    expect_contains(md, "| perplexity | 12.3456 \xC2\xB1 0.1234 |\n");
    expect_contains(md, "| \xCE\x94PPL | +0.4567 \xC2\xB1 0.0123 |\n");
    expect_contains(md, "| mean KLD | 0.012345 \xC2\xB1 0.000123 |\n");
    expect_contains(md, "| top-1 agreement | 95.12 % |\n");
    expect_contains(md, "| # | tensor | type | shape | params | size | bpw | rel. RMSE | max \\|err\\| | note |\n"
                        "|--:|:--|:--|:--|--:|--:|--:|--:|--:|:--|\n");
    expect_contains(md, "| 1 | blk.0.attn_q\\<\\&\\>\".weight | F32 \xE2\x86\x92 Q4_K | 256\xC3\x97" "256 | 65536 | 36.0 KiB | 4.50 | 7.12e-02 | 1.13e-02 | |\n");
    expect_contains(md, "| 2 | output_norm.weight | F32 | 256 | 256 | 1.00 KiB | 32.00 | 0 | 0 | |\n");
    expect_contains(md, "| 3 | token_embd.weight | F32 \xE2\x86\x92 Q6_K | 256\xC3\x97" "256 | 65536 | 52.5 KiB | 6.56 | 1.78e-02 | 4.20e-03 | fell back |\n");
    expect_contains(md, "| | **total (3 tensors)** | | | **131328** | **89.5 KiB** | **5.58** | **5.18e-02** | **1.13e-02** | **1 fell back** |\n");
    expect_absent(md, "<&>");
    free(md);
    free_runs(runs, 3);
}

static void test_markdown_comparison(void **st) {
    (void)st;
    slm_report runs[3];
    make_runs(runs);
    char *md = render_md(runs, 3, "many.md");
    expect_contains(md, "# slm report: 3 runs of tiny\\<\\&\\>\"model\n");
    expect_contains(md, "| # | recipe | method | size | bpw | ratio | zstd | PPL \xC2\xB1 err | \xCE\x94PPL | mean KLD \xC2\xB1 err | p99 KLD | top-1 % | w. rel. RMSE |\n");
    /* sorted by size: Q2_K (1.3 MB), Q4_K_M (2 MB), Q8_0 (4 MB) */
    const char *r1 = "| 1 | Q2_K | \xE2\x80\x94 | 1.24 MiB | 3.100 | 6.15\xC3\x97 | \xE2\x80\x94 | 15.0000 \xC2\xB1 0.2000 | \xE2\x80\x94 | \xE2\x80\x94 | \xE2\x80\x94 | \xE2\x80\x94 | 2.50e-01 |\n";
    const char *r2 = "| 2 | Q4_K_M | \xE2\x80\x94 | 1.91 MiB | 4.800 | 4.00\xC3\x97 | \xE2\x80\x94 | 12.3456 \xC2\xB1 0.1234 | +0.4567 \xC2\xB1 0.0123 | 0.012345 \xC2\xB1 0.000123 | 0.100000 | 95.12 | 5.18e-02 |\n";
    const char *r3 = "| 3 | Q8_0 | \xE2\x80\x94 | 3.81 MiB | 8.500 | 2.00\xC3\x97 | \xE2\x80\x94 | 11.9500 \xC2\xB1 0.1200 | +0.0512 \xC2\xB1 0.0040 | 0.000910 \xC2\xB1 0.000020 | 0.008300 | 98.91 | 5.10e-03 |\n";
    expect_contains(md, r1);
    expect_contains(md, r2);
    expect_contains(md, r3);
    assert_true(strstr(md, r1) < strstr(md, r2) && strstr(md, r2) < strstr(md, r3));
    expect_contains(md, "| tensor | Q2_K | Q4_K_M | Q8_0 |\n");
    expect_contains(md, "| blk.0.attn_q\\<\\&\\>\".weight | Q2_K 2.50e-01 | Q4_K 7.12e-02 | Q8_0 5.10e-03 |\n");
    expect_contains(md, "| token_embd.weight | \xE2\x80\x94 | Q6_K 1.78e-02 (fell back) | \xE2\x80\x94 |\n");
    free(md);
    /* a method other than rtn: in the label and its column; its parameters among the run's facts */
    snprintf(runs[0].method, sizeof runs[0].method, "awq");
    snprintf(runs[0].method_params, sizeof runs[0].method_params, "alpha_grid=20");
    snprintf(runs[2].method, sizeof runs[2].method, "rtn");
    md = render_md(runs, 3, "many.md");
    expect_contains(md, "| 2 | Q4_K_M awq | awq | 1.91 MiB |");
    expect_contains(md, "| 1 | Q2_K | rtn | 1.24 MiB |");
    expect_contains(md, "| tensor | Q2_K | Q4_K_M awq | Q8_0 |\n");
    free(md);
    md = render_md(runs, 1, "one.md");
    expect_contains(md, "awq alpha_grid=20");
    free(md);
    free_runs(runs, 3);
}

static void test_labels_unique(void **st) {
    (void)st;
    slm_report runs[3];
    make_runs(runs);
    snprintf(runs[1].ftype, sizeof runs[1].ftype, "Q4_K_M"); /* two runs of the same recipe */
    char *md = render_md(runs, 3, "dup.md");
    expect_contains(md, "| 2 | Q4_K_M (Q4_K_M.gguf) |");
    expect_contains(md, "| 3 | Q4_K_M (Q8_0.gguf) |");
    free(md);
    free_runs(runs, 3);
}

static void test_html_one_run(void **st) {
    (void)st;
    slm_report runs[3];
    make_runs(runs);
    char *h = render_html(runs, 1, "one.html");
    expect_well_formed(h);
    assert_int_equal(count(h, "<svg"), 2); /* bits per weight, relative RMSE */
    assert_int_equal(count(h, "</svg>"), 2);
    expect_contains(h, "tiny&lt;&amp;&gt;&quot;model");
    expect_contains(h, ">blk.0.attn_q&lt;&amp;&gt;&quot;.weight</text>");
    expect_absent(h, "<&>");
    expect_absent(h, "<script");
    expect_absent(h, "http://www.w3.org/1999"); /* only the SVG namespace URI, no links */
    assert_int_equal(count(h, "http"), 2);      /* xmlns of the two SVGs */
    expect_contains(h, "<td class=\"r\">7.12e-02</td>");
    /* 1-D tensors (output_norm: 32 bpw, exact) stay off the charts' scales, in the table only */
    expect_absent(h, ">output_norm.weight</text>");
    expect_contains(h, "1-D tensors (norms, biases: F32 and exact; 1 here) are in the table only");
    expect_contains(h, "<div class=\"wide tall\"><table class=\"tensors\">"); /* scrolls, header sticks */
    expect_contains(h, "table.tensors thead th{position:sticky;top:0");
    /* "which tensors hurt": rows by rel. RMSE, largest first; # keeps the file position */
    const char *a = strstr(h, "<td class=\"r\">1</td>"), *b3 = strstr(h, "<td class=\"r\">3</td>"),
               *b2 = strstr(h, "<td class=\"r\">2</td>");
    assert_true(a && b3 && b2 && a < b3 && b3 < b2);
    expect_svgs_finite(h);
    free(h);
    free_runs(runs, 3);
}

static void test_html_comparison(void **st) {
    (void)st;
    slm_report runs[3];
    make_runs(runs);
    char *h = render_html(runs, 3, "many.html");
    expect_well_formed(h);
    assert_int_equal(count(h, "<svg"), 1); /* the size/KLD scatter */
    const char *svg = strstr(h, "<svg"), *end = strstr(h, "</svg>");
    for (const char *label = "Q4_K_M"; label; label = !strcmp(label, "Q4_K_M") ? "Q8_0" : NULL) {
        char needle[64];
        snprintf(needle, sizeof needle, ">%s</text>", label);
        const char *at = strstr(svg, needle);
        if (!at || at > end) fail_msg("run label %s not in the scatter", label);
    }
    expect_contains(h, "mean KL divergence vs reference (log scale)");
    expect_contains(h, "Not plotted (no value): Q2_K."); /* Q2_K has no KLD */
    assert_int_equal(count(h, "<circle"), 2);
    expect_contains(h, "<td class=\"r\">0.012345 \xC2\xB1 0.000123</td>");
    expect_svgs_finite(h);
    free(h);
    /* no KLD anywhere: ΔPPL, which may be negative (linear axis through 0) */
    for (int i = 0; i < 3; i++) runs[i].eval.kld_mean = NAN;
    runs[1].eval.dppl = -0.02;
    h = render_html(runs, 3, "dppl.html");
    expect_well_formed(h);
    expect_contains(h, "\xCE\x94PPL vs reference</text>");
    expect_svgs_finite(h);
    free(h);
    /* no evaluation at all: the weights' error */
    for (int i = 0; i < 3; i++) runs[i].eval.present = 0;
    h = render_html(runs, 3, "noeval.html");
    expect_well_formed(h);
    expect_contains(h, "weighted rel. RMSE of the weights (log scale)</text>");
    assert_int_equal(count(h, "<circle"), 3);
    expect_svgs_finite(h);
    free(h);
    free_runs(runs, 3);
}

static void test_nonfinite_values(void **st) {
    (void)st;
    slm_report runs[3];
    make_runs(runs);
    runs[0].tensors[0].rel_rmse = NAN;
    runs[0].tensors[0].bpw = INFINITY;
    runs[0].tensors[1].bpw = NAN;
    runs[0].tensors[2].bpw = NAN; /* output_norm (1-D) is not charted: a NaN bpw on a matrix too */
    runs[0].tensors[2].rel_rmse = INFINITY;
    runs[0].tensors[2].max_abs_err = -INFINITY;
    runs[0].bpw = NAN;
    runs[0].eval.ppl = INFINITY;
    runs[0].eval.kld_mean = NAN;
    runs[1].eval.kld_mean = INFINITY;
    runs[1].eval.kld_mean_err = NAN;
    runs[2].bpw = 0;
    runs[2].out_bytes = 0;
    char *h = render_html(runs, 1, "nf1.html");
    expect_well_formed(h);
    expect_svgs_finite(h);
    expect_contains(h, ">n/a Q6_K</text>");
    expect_contains(h, ">\xE2\x88\x9E</text>"); /* Inf shows as ∞, not as a bar */
    free(h);
    h = render_html(runs, 3, "nf3.html");
    expect_well_formed(h);
    expect_svgs_finite(h);
    free(h);
    char *md = render_md(runs, 1, "nf1.md");
    /* a NaN error is "not computed" (a dry run): a dash, and the row sorts last */
    expect_contains(md, "| 1 | blk.0.attn_q\\<\\&\\>\".weight | F32 \xE2\x86\x92 Q4_K | 256\xC3\x97" "256 | 65536 | 36.0 KiB | \xE2\x88\x9E | \xE2\x80\x94 |");
    expect_contains(md, "| | **total (3 tensors)** | | | **131328** | **89.5 KiB** | **5.58** | **\xE2\x80\x94** | **1.13e-02** |");
    assert_true(strstr(md, "| 3 | token_embd") < strstr(md, "| 1 | blk.0.attn_q"));
    expect_absent(md, "nan");
    expect_absent(md, "inf ");
    free(md);
    /* all zero: charts still have a range */
    for (size_t i = 0; i < runs[0].n_tensors; i++) runs[0].tensors[i].bpw = runs[0].tensors[i].rel_rmse = 0;
    h = render_html(runs, 1, "zero.html");
    expect_well_formed(h);
    expect_svgs_finite(h);
    free(h);
    free_runs(runs, 3);
}

/* Integer fields must be integers in range: no undefined conversion of 1e300 or -5. */
static void test_json_reader_number_ranges(void **st) {
    (void)st;
    static const struct { const char *body, *msg; } k[] = {
        {"\"threads\":1e300", "r.json: \"threads\" is not an integer in [0, 2147483647]"},
        {"\"source_bytes\":-5", "r.json: \"source_bytes\" is not an integer in [0, 9223372036854775807]"},
        {"\"n_params\":9.3e18", "r.json: \"n_params\" is not an integer in [0, 9223372036854775807]"},
        {"\"n_fallback\":0.5", "r.json: \"n_fallback\" is not an integer in [0, 2147483647]"},
        {"\"tensors\":[{\"name\":\"w\",\"shape\":[2,1e30]}]", "r.json: tensor 'w': shape[1] is not a non-negative integer"},
        {"\"tensors\":[{\"name\":\"w\",\"bytes\":1e20}]", "r.json: \"bytes\" is not an integer in [0, 9223372036854775807]"},
        {"\"eval\":{\"ctx\":-1e12}", "r.json: \"ctx\" is not an integer in [0, 2147483647]"},
        {"\"eval\":{\"scored_tokens\":1e19}", "r.json: \"scored_tokens\" is not an integer in [0, 9223372036854775807]"},
        {"\"threads\":4,\"tensors\":[{\"shape\":[3,7],\"bytes\":84}],\"eval\":{\"ctx\":128}", NULL},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        char json[512];
        int n = snprintf(json, sizeof json, "{\"format\":\"slm-report/1\",%s}", k[i].body);
        slm_report r;
        slm_err err = {0};
        int rc = slm_report_parse_json(&r, json, (size_t)n, "r.json", &err);
        if (!k[i].msg) {
            assert_int_equal(rc, SLM_OK);
            assert_int_equal(r.threads, 4);
            assert_int_equal(r.n_tensors, 1);
            assert_int_equal(r.tensors[0].shape[1], 7);
            assert_int_equal(r.tensors[0].bytes, 84);
            assert_int_equal(r.eval.ctx, 128);
            slm_report_free(&r);
            continue;
        }
        assert_int_equal(rc, SLM_E_FORMAT);
        assert_string_equal(err.msg, k[i].msg);
        assert_null(r.tensors);
    }
}

/* report.json is valid UTF-8 whatever bytes the names held (a GGUF's general.name, tensor
   names, paths); control characters stay as JSON escapes. */
static void test_json_is_valid_utf8(void **st) {
    (void)st;
    slm_report runs[3];
    slm_err err = {0};
    make_runs(runs);
    snprintf(runs[0].model_name, sizeof runs[0].model_name, "m\xff\x1b]0;t\x07");
    snprintf(runs[0].model, sizeof runs[0].model, "dir/\xc3(x");
    snprintf(runs[0].tensors[0].name, sizeof runs[0].tensors[0].name, "w\xed\xa0\x80"); /* a surrogate */
    const char *path = tmp_path("utf8.json");
    assert_int_equal(w_json(&runs[0], path, &err), SLM_OK);
    size_t n;
    char *text = read_whole_file(path, &n);
    assert_true(slm_utf8_valid(text, n));
    assert_null(memchr(text, 0x1b, n));
    cJSON *j = cJSON_ParseWithLength(text, n);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "model_name")->valuestring, "m\xef\xbf\xbd\x1b]0;t\x07");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "model")->valuestring, "dir/\xef\xbf\xbd(x");
    const cJSON *t0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "tensors"), 0);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(t0, "name")->valuestring, "w\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    cJSON_Delete(j);
    free(text);
    for (int i = 0; i < 3; i++) slm_report_free(&runs[i]);
}

static void test_json_round_trip(void **st) {
    (void)st;
    slm_report runs[3], back;
    slm_err err = {0};
    make_runs(runs);
    const char *path = tmp_path("rt.json");
    assert_int_equal(w_json(&runs[0], path, &err), SLM_OK);
    assert_int_equal(slm_report_read_json(&back, path, &err), SLM_OK);
    assert_string_equal(back.model_name, NASTY_MODEL);
    assert_int_equal(back.out_bytes, runs[0].out_bytes);
    assert_int_equal(back.src_bytes, runs[0].src_bytes);
    assert_float_equal(back.bpw, runs[0].bpw, 0);
    assert_int_equal(back.n_tensors, 3);
    for (size_t i = 0; i < 3; i++) {
        const slm_report_tensor *a = &runs[0].tensors[i], *b = &back.tensors[i];
        assert_string_equal(a->name, b->name);
        assert_string_equal(a->type, b->type);
        assert_int_equal(a->ndim, b->ndim);
        assert_int_equal(a->shape[0], b->shape[0]);
        assert_int_equal(a->bytes, b->bytes);
        assert_float_equal(a->bpw, b->bpw, 0);
        assert_float_equal(a->rel_rmse, b->rel_rmse, 0);
        assert_float_equal(a->max_abs_err, b->max_abs_err, 0);
        assert_int_equal(a->fell_back, b->fell_back);
    }
    assert_true(back.eval.present && back.eval.has_ref);
    assert_float_equal(back.eval.ppl, runs[0].eval.ppl, 0);
    assert_float_equal(back.eval.kld_mean, runs[0].eval.kld_mean, 0);
    assert_float_equal(back.eval.top1, runs[0].eval.top1, 0);
    /* the rendering of the read-back report is the same bytes */
    char *m1 = render_md(&runs[0], 1, "rt1.md"), *m2 = render_md(&back, 1, "rt2.md");
    assert_string_equal(m1, m2);
    free(m1);
    free(m2);
    slm_report_free(&back);
    free_runs(runs, 3);
}

/* Quality gates: which pass, by how much, the message; gates, manifest and packed size survive
   the JSON round trip and show in the Markdown. */
static void test_gates(void **st) {
    (void)st;
    slm_report runs[3], back;
    slm_err err = {0};
    make_runs(runs);
    slm_report *r = &runs[0];
    r->eval.kld_mean = 0.03, r->eval.dppl = 0.25, r->eval.top1 = 0.9;
    slm_gates g;
    slm_gates_none(&g);
    assert_false(slm_gates_any(&g));
    assert_int_equal(slm_gates_check(&g, r), 0);
    assert_int_equal(r->n_gates, 0);
    g.max_kld = 0.01, g.min_top1 = 0.95, g.max_ppl_delta = 0.5;
    assert_true(slm_gates_any(&g));
    assert_int_equal(slm_gates_check(&g, r), 2);
    assert_int_equal(r->n_gates, 3);
    assert_string_equal(r->gates[0].name, "max_kld");
    assert_false(r->gates[0].passed);
    assert_float_equal(r->gates[0].excess, 0.02, 1e-12);
    assert_string_equal(r->gates[1].name, "max_ppl_delta");
    assert_true(r->gates[1].passed);
    assert_float_equal(r->gates[1].excess, -0.25, 1e-12);
    assert_string_equal(r->gates[2].name, "min_top1");
    assert_false(r->gates[2].passed);
    assert_float_equal(r->gates[2].excess, 0.05, 1e-12);
    char b[256];
    assert_string_equal(slm_gate_describe(b, sizeof b, &r->gates[0]), "gate max_kld failed: kld_mean 0.03 > 0.01 (missed by 0.02)");
    assert_string_equal(slm_gate_describe(b, sizeof b, &r->gates[1]),
                        "gate max_ppl_delta passed: delta_ppl 0.25 <= 0.5 (margin 0.25)");
    assert_string_equal(slm_gate_describe(b, sizeof b, &r->gates[2]), "gate min_top1 failed: top1_agreement 0.9 < 0.95 (missed by 0.05)");
    /* the limit itself passes; no reference: NaN, a failure */
    g.max_kld = 0.03, g.min_top1 = 0.9;
    assert_int_equal(slm_gates_check(&g, r), 0);
    r->eval.has_ref = 0;
    assert_int_equal(slm_gates_check(&g, r), 3);
    r->eval.has_ref = 1;
    g.max_kld = 0.01;
    assert_int_equal(slm_gates_check(&g, r), 1);
    r->manifest.present = 1;
    snprintf(r->manifest.version, sizeof r->manifest.version, "0.1.0");
    snprintf(r->manifest.input_sha256, sizeof r->manifest.input_sha256, "%064d", 7);
    snprintf(r->manifest.flags, sizeof r->manifest.flags, "--type Q4_0 --max-kld 0.01");
    r->eval.packed_bytes = 123456;
    const char *path = tmp_path("gates.json");
    assert_int_equal(w_json(r, path, &err), SLM_OK);
    assert_int_equal(slm_report_read_json(&back, path, &err), SLM_OK);
    assert_int_equal(back.n_gates, 3);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(back.gates[i].name, r->gates[i].name);
        assert_true(back.gates[i].limit == r->gates[i].limit && back.gates[i].value == r->gates[i].value);
        assert_float_equal(back.gates[i].excess, r->gates[i].excess, 1e-15); /* cJSON prints 15 digits */
        assert_int_equal(back.gates[i].passed, r->gates[i].passed);
    }
    assert_true(back.manifest.present);
    assert_string_equal(back.manifest.flags, r->manifest.flags);
    assert_string_equal(back.manifest.input_sha256, r->manifest.input_sha256);
    assert_int_equal(back.eval.packed_bytes, 123456);
    char *md = render_md(&back, 1, "gates.md");
    assert_non_null(strstr(md, "gate max_kld failed: kld_mean 0.03 \\> 0.01 (missed by 0.02)")); /* Markdown-escaped */
    assert_non_null(strstr(md, "flags: --type Q4_0 --max-kld 0.01"));
    assert_non_null(strstr(md, "120.6 KiB (123456 bytes"));
    free(md);
    slm_report_free(&back);
    free_runs(runs, 3);
}

static void test_dir_several_runs(void **st) {
    (void)st;
    slm_report runs[3];
    slm_err err = {0};
    make_runs(runs);
    const char *dir = tmp_path("deep/er/dir");
    assert_int_equal(w_dir(runs, 3, dir, &err), SLM_OK);
    char p[4200];
    snprintf(p, sizeof p, "%s/report.md", dir);
    assert_true(file_exists(p));
    snprintf(p, sizeof p, "%s/report.html", dir);
    assert_true(file_exists(p));
    snprintf(p, sizeof p, "%s/report.json", dir);
    assert_false(file_exists(p));
    snprintf(p, sizeof p, "%s/reports.json", dir);
    char *text = read_whole_file(p, NULL);
    cJSON *arr = cJSON_Parse(text);
    assert_non_null(arr);
    assert_true(cJSON_IsArray(arr));
    assert_int_equal(cJSON_GetArraySize(arr), 3);
    for (int i = 0; i < 3; i++) { /* each element is exactly what slm_report_write_json writes */
        const char *one = tmp_path("one.json");
        assert_int_equal(w_json(&runs[i], one, &err), SLM_OK);
        char *t1 = read_whole_file(one, NULL);
        cJSON *o = cJSON_Parse(t1);
        assert_non_null(o);
        assert_true(cJSON_Compare(o, cJSON_GetArrayItem(arr, i), 1));
        cJSON_Delete(o);
        free(t1);
    }
    cJSON_Delete(arr);
    free(text);
    /* again: replaces the files, same bytes (deterministic) */
    snprintf(p, sizeof p, "%s/report.html", dir);
    char *h1 = read_whole_file(p, NULL);
    assert_int_equal(w_dir(runs, 3, dir, &err), SLM_OK);
    char *h2 = read_whole_file(p, NULL);
    assert_string_equal(h1, h2);
    free(h1);
    free(h2);
    /* one run: report.json */
    dir = tmp_path("single");
    assert_int_equal(w_dir(runs, 1, dir, &err), SLM_OK);
    snprintf(p, sizeof p, "%s/report.json", dir);
    assert_true(file_exists(p));
    free_runs(runs, 3);
}

static void test_dir_cannot_create(void **st) {
    (void)st;
    slm_report runs[3];
    slm_err err = {0};
    make_runs(runs);
    const char *blocker = tmp_path("blocker");
    write_whole_file(blocker, "x", 1);
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/sub", blocker);
    assert_int_equal(w_dir(runs, 3, dir, &err), SLM_E_IO);
    expect_contains(err.msg, dir);
    expect_contains(err.msg, "is not a folder");
    assert_int_equal(w_dir(runs, 3, blocker, &err), SLM_E_IO);
    expect_contains(err.msg, blocker);
    assert_int_equal(w_dir(runs, 0, tmp_path("none"), &err), SLM_E_ARG);
    free_runs(runs, 3);
}

static void test_out_of_memory(void **st) {
    (void)st;
    slm_report runs[3];
    slm_err err = {0};
    make_runs(runs);
    const char *path = tmp_path("oom.html");
    int ok = 0;
    for (long k = 0; k < 64 && !ok; k++) { /* every allocation fails once, cleanly */
        slm_mem_fail_after(k);
        int rc1 = w_html(runs, 3, path, &err);
        slm_mem_fail_after(k);
        int rc2 = w_md(runs, 1, tmp_path("oom.md"), &err);
        slm_mem_fail_after(-1);
        if (k == 0) { /* the very first allocation failing must be seen, or this test proves nothing */
            assert_int_equal(rc1, SLM_E_NOMEM);
            assert_int_equal(rc2, SLM_E_NOMEM);
        }
        if (rc1) assert_int_equal(rc1, SLM_E_NOMEM);
        if (rc2) assert_int_equal(rc2, SLM_E_NOMEM);
        ok = !rc1 && !rc2;
    }
    assert_true(ok);
    free_runs(runs, 3);
}

/* No "± 0.000000": an error too small for the value's format in %.1e, none without an estimate. */
static void test_plus_minus(void **st) {
    (void)st;
    slm_report runs[3];
    make_runs(runs);
    runs[1].eval.kld_mean_err = 5e-7;
    runs[1].eval.dppl_err = 0;
    char *md = render_md(&runs[1], 1, "pm.md");
    expect_contains(md, "| mean KLD | 0.000910 \xC2\xB1 5.0e-07 |");
    expect_contains(md, "| \xCE\x94PPL | +0.0512 |");
    expect_absent(md, "\xC2\xB1 0.0000");
    free(md);
    free_runs(runs, 3);
}

/* The comparison's per-tensor matrix: largest rel. RMSE in any run first (first appearance:
   output_norm before token_embd). */
static void test_matrix_order(void **st) {
    (void)st;
    slm_report runs[3];
    make_runs(runs);
    char *md = render_md(runs, 3, "mo.md");
    const char *m = strstr(md, "## Per-tensor type and relative RMSE\n\nLargest rel. RMSE (in any run) first.");
    assert_non_null(m);
    const char *te = strstr(m, "| token_embd.weight |"), *on = strstr(m, "| output_norm.weight |");
    assert_true(te && on && te < on);
    free(md);
    char *h = render_html(runs, 3, "mo.html");
    expect_contains(h, "<div class=\"wide tall\"><table class=\"tensors\"><thead><tr><th>tensor</th>");
    free(h);
    free_runs(runs, 3);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_markdown_one_run),  cmocka_unit_test(test_markdown_comparison),
        cmocka_unit_test(test_labels_unique),     cmocka_unit_test(test_html_one_run),
        cmocka_unit_test(test_html_comparison),   cmocka_unit_test(test_nonfinite_values),
        cmocka_unit_test(test_json_round_trip),   cmocka_unit_test(test_dir_several_runs),
        cmocka_unit_test(test_json_reader_number_ranges), cmocka_unit_test(test_json_is_valid_utf8),
        cmocka_unit_test(test_dir_cannot_create), cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_gates),
        cmocka_unit_test(test_plus_minus),        cmocka_unit_test(test_matrix_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
