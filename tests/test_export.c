/* test_export.c - the export pipeline as a library (export/export.h), without the binary: a
 * model held in memory (slm_model_tensors) written as GGUF reads back bit for bit and runs to
 * the same logits; the same model with per-layer widths; progress is reported tensor by
 * tensor; requantizing and unwritable types are refused before anything is written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/afile.h"
#include "core/dtype.h"
#include "core/rng.h"
#include "export/export.h"
#include "formats/gguf.h"
#include "formats/model_src.h"
#include "model/transformer.h"
#include "quantize/quants.h"
#include "quantize/qtypes.h"
#include "tests/testutil.h"

/* Q8_0 of values in [-0.6, 0.6]: half a step of amax/127, plus the f16 scale rounding */
#define Q8_ATOL 3e-3

static double syn(const char *name, int64_t r, int64_t c, int64_t ncols) {
    uint64_t h = 1469598103934665603ull;
    for (const char *p = name; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ull;
    uint64_t x = h ^ (uint64_t)(r * ncols + c) * 0x9e3779b97f4a7c15ull;
    double u = (double)(slm_splitmix64(&x) >> 11) * 0x1p-53 - 0.5;
    return strstr(name, "norm") ? 1.0 + 0.2 * u : u;
}

static int syn_rows(void *ud, const char *name, int64_t nrows, int64_t ncols, int64_t r0, int64_t n, float *dst, slm_err *err) {
    (void)ud, (void)nrows, (void)err;
    for (int64_t r = 0; r < n; r++)
        for (int64_t c = 0; c < ncols; c++) dst[r * ncols + c] = (float)syn(name, r0 + r, c, ncols);
    return SLM_OK;
}

typedef struct progress_log { int calls; size_t last_done; char first[64]; } progress_log;

static void on_progress(void *ud, const char *tensor, size_t done, size_t n) {
    progress_log *p = ud;
    (void)n;
    if (p->calls++ == 0) snprintf(p->first, sizeof p->first, "%s", tensor);
    assert_true(p->calls == 1 || done == p->last_done + 1);
    p->last_done = done;
}

/* Writes m's parameters as a GGUF of recipe ftype at path; returns the number of tensors. */
static size_t write_model(const slm_model *m, const char *path, const char *ftype, progress_log *pl) {
    slm_err e = {0};
    slm_tensor_src ts;
    slm_model_tensors(m, &ts);
    slm_export x;
    slm_afile f;
    slm_kvs meta = {0};
    if (!m->cfg.per_layer && slm_model_gguf_meta(&m->cfg, "memory", NULL, &meta, &e)) fail_msg("%s", e.msg);
    slm_export_opts o = {.cfg = &m->cfg, .meta = &meta, .progress = pl ? on_progress : NULL, .progress_ud = pl,
                         .recipe = {.ftype = slm_ftype_find(ftype), .output_type = -1, .token_embd_type = -1}};
    if (slm_export_plan(&x, &ts, &o, &e) || slm_afile_open(&f, path, &e)) fail_msg("%s", e.msg);
    if (slm_export_write(&x, &f, &e) || slm_afile_commit(&f, &e)) fail_msg("%s", e.msg);
    size_t n = x.n;
    assert_int_equal(x.rep.n_tensors, n);
    slm_export_free(&x);
    slm_kvs_free(&meta);
    return n;
}

static void build_syn(slm_model *m, const slm_model_config *c, int ctx) {
    static test_fn_src fs;
    slm_tensor_src ts;
    slm_err e = {0};
    test_fn_src_init(&fs, c, syn_rows, NULL, &ts);
    if (slm_model_build(m, c, &ts, ctx, 0, &e)) fail_msg("%s", e.msg);
}

/* The written file's tensors equal the model's weights; a model built from the file gives the
   same logits. With per-layer widths the tensors of removed sub-blocks are absent. */
static void check_round_trip(const slm_model_config *c, const char *ftype, int exact) {
    slm_model m = {0}, back = {0};
    build_syn(&m, c, 16);
    const char *path = tmp_path("mem.gguf");
    unlink(path);
    progress_log pl = {0};
    size_t n = write_model(&m, path, ftype, &pl);
    assert_int_equal(n, (size_t)m.n_tensors);
    assert_int_equal(pl.calls, (int)n + 1);      /* before each tensor, and once at the end */
    assert_string_equal(pl.first, "output.weight"); /* llama.cpp's order: outside blocks first, sorted */
    slm_gguf g;
    slm_err e = {0};
    assert_int_equal(slm_gguf_open(&g, path, &e), SLM_OK);
    assert_int_equal(g.n_tensors, n);
    slm_gguf_close(&g);
    slm_tensor_src ts;
    slm_model_tensors(&m, &ts);
    slm_gguf_open(&g, path, &e);
    for (size_t i = 0; i < n; i++) {
        slm_tensor_info t = slm_tensor_src_info(&ts, i);
        int j = slm_gguf_find(&g, t.name);
        assert_true(j >= 0);
        const int64_t nr = slm_tensor_info_nrows(&t), nc = slm_tensor_info_ncols(&t);
        float *want = malloc(sizeof(float) * (size_t)(nr * nc)), *got = malloc(sizeof(float) * (size_t)(nr * nc));
        assert_int_equal(ts.read_f32(ts.ud, i, 0, nr, want, &e), SLM_OK);
        slm_tensor v;
        slm_gguf_view(&g, (size_t)j, &v);
        slm_dequantize_rows(v.dtype, v.data, got, nr, nc);
        if (exact) expect_bytes_equal(t.name, got, want, sizeof(float) * (size_t)(nr * nc));
        else expect_tensor_near(t.name, got, want, nr * nc, Q8_ATOL, 0);
        free(want), free(got);
    }
    slm_gguf_close(&g);
    /* a model from the file runs to the same logits (exactly, for F32); per-layer widths need
       the deci architecture's metadata (pruning), so only the tensors are checked there */
    if (c->per_layer) {
        slm_model_free(&m);
        return;
    }
    slm_src f;
    assert_int_equal(slm_src_open(&f, path, &e), SLM_OK);
    slm_tensor_src fts;
    slm_src_tensors(&f, &fts);
    assert_int_equal(slm_model_build(&back, c, &fts, 16, 0, &e), SLM_OK);
    int32_t tok[16];
    for (int t = 0; t < 16; t++) tok[t] = (t * 7 + 3) % c->n_vocab;
    float *l1 = malloc(sizeof(float) * 16 * (size_t)c->n_vocab), *l2 = malloc(sizeof(float) * 16 * (size_t)c->n_vocab);
    assert_int_equal(slm_model_forward(&m, tok, 16, 0, 0, l1, &e), SLM_OK);
    assert_int_equal(slm_model_forward(&back, tok, 16, 0, 0, l2, &e), SLM_OK);
    if (exact) expect_bytes_equal("logits", l1, l2, sizeof(float) * 16 * (size_t)c->n_vocab);
    free(l1), free(l2);
    slm_src_close(&f);
    slm_model_free(&back);
    slm_model_free(&m);
}

static const slm_model_config k_llama = {.arch = SLM_ARCH_LLAMA, .n_embd = 64, .n_ff = 128, .n_layer = 2, .n_head = 4,
                                         .n_head_kv = 2, .head_dim = 16, .n_vocab = 96, .norm_eps = 1e-5f,
                                         .rope_theta = 10000.0f, .rope_scale = 1.0f, .bos_id = -1, .eos_id = -1};

static void test_export_memory_model_f32(void **st) {
    (void)st;
    check_round_trip(&k_llama, "F32", 1);
    check_round_trip(&k_llama, "Q8_0", 0);
}

static void test_export_memory_model_per_layer(void **st) {
    (void)st;
    static slm_model_config c;
    c = k_llama;
    c.n_layer = 3;
    c.per_layer = 1;
    const int h[3] = {4, 0, 2}, kv[3] = {2, 0, 1}, f[3] = {128, 32, 0};
    for (int l = 0; l < 3; l++) c.n_head_l[l] = h[l], c.n_head_kv_l[l] = kv[l], c.n_ff_l[l] = f[l];
    check_round_trip(&c, "F32", 1);
}

/* Nothing is written when the plan refuses: requantizing a quantized source. */
static void test_export_refuses_requantize(void **st) {
    (void)st;
    const char *q8 = tmp_path("q8.gguf");
    unlink(q8);
    test_export_file(fixture_path("models/stories260K"), q8, "Q8_0");
    slm_err e = {0};
    slm_src s;
    slm_tensor_src ts;
    slm_export x;
    assert_int_equal(slm_src_open(&s, q8, &e), SLM_OK);
    slm_src_tensors(&s, &ts);
    slm_export_opts o = {.cfg = &s.cfg, .recipe = {.ftype = slm_ftype_find("Q4_0"), .output_type = -1, .token_embd_type = -1}};
    assert_int_equal(slm_export_plan(&x, &ts, &o, &e), SLM_E_ARG);
    assert_non_null(strstr(e.msg, "is already quantized (Q8_0)"));
    assert_non_null(strstr(e.msg, "--allow-requantize"));
    slm_export_free(&x);
    o.allow_requantize = 1;
    assert_int_equal(slm_export_plan(&x, &ts, &o, &e), SLM_OK);
    assert_string_equal(x.rep.ftype, "Q4_0");
    slm_export_free(&x);
    slm_src_close(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_export_memory_model_f32),
        cmocka_unit_test(test_export_memory_model_per_layer),
        cmocka_unit_test(test_export_refuses_requantize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
