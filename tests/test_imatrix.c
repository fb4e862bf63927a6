/* test_imatrix.c - importance matrices (formats/imatrix.c): llama-imatrix's reference file read,
 * written back byte for byte and converted to the legacy .dat exactly as llama-imatrix does;
 * the weights llama-quantize derives (numbers taken from llama.cpp itself, see
 * tools/imatrix_agree.sh); experts, partial data, extras; the check against a model; the
 * quantize.imatrix.* keys; malformed GGUF and .dat files (made here) refused with one line
 * naming the file and the entry, every truncation and many byte flips survived, OOM paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "quantize/qtypes.h"
#include "core/le.h"
#include "core/mem.h"
#include "formats/gguf.h"
#include "formats/imatrix.h"
#include "formats/model_src.h"
#include "tests/testutil.h"

#define REF "reference/tinystories-3M.calib40.imatrix.gguf"
/* From llama.cpp v0.5.0 (tools/imatrix_agree.sh): FNV-1a 64 of the 9216 float32 bit
   patterns llama-quantize's load_imatrix() makes of REF, entries in name order; and of the
   37791-byte file `llama-imatrix -m none --in-file REF -o x.dat --output-format dat` writes. */
#define LLAMA_WEIGHTS_FNV 0x54629b3c34742452ull
#define LLAMA_DAT_FNV 0x5545693b42a38987ull
#define LLAMA_DAT_BYTES 37791

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}
#define FNV_START 0xcbf29ce484222325ull

static uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static void load_ok(slm_imatrix *im, const char *path) {
    slm_err e = {0};
    int rc = slm_imatrix_load(im, path, &e);
    if (rc) fail_msg("%s", e.msg);
}

/* Fails unless loading path gives code and a one-line message holding the path and want. */
static void expect_load_error(const char *path, int code, const char *want) {
    slm_imatrix im;
    slm_err e = {0};
    int rc = slm_imatrix_load(&im, path, &e);
    if (rc == SLM_OK) slm_imatrix_free(&im);
    if (rc != code || !strstr(e.msg, want) || !strstr(e.msg, path) || strchr(e.msg, '\n'))
        fail_msg("%s: want code %d with '%s', got %d '%s'", path, code, want, rc, e.msg);
    assert_null(im.entries);
}

/* ---- the reference file ------------------------------------------------------------------ */

static void test_imatrix_reads_reference(void **st) {
    (void)st;
    slm_imatrix im;
    load_ok(&im, fixture_path(REF));
    assert_int_equal(im.format, SLM_IMATRIX_GGUF);
    assert_int_equal(im.n_entries, 28); /* 7 matrices x 4 blocks: llama-imatrix skips output.weight */
    assert_int_equal(im.n_datasets, 1);
    assert_string_equal(im.datasets[0], "calib40.txt");
    assert_int_equal(im.chunk_count, 301);
    assert_int_equal(im.chunk_size, 512);
    assert_int_equal(im.extra_kv.n, 0);
    assert_int_equal(im.n_extras, 0);
    uint64_t h = FNV_START;
    for (size_t i = 0; i < im.n_entries; i++) {
        const slm_imatrix_entry *e = &im.entries[i];
        if (i) assert_true(strcmp(im.entries[i - 1].name, e->name) < 0);
        assert_int_equal(e->n_mat, 1);
        assert_int_equal(e->counts[0], 301 * 512); /* every token of every chunk */
        assert_int_equal(e->ncols, strstr(e->name, "ffn_down") ? 768 : 256);
        h = fnv1a(h, e->weights, (size_t)e->ncols * sizeof(float));
    }
    assert_true(h == LLAMA_WEIGHTS_FNV); /* llama-quantize's vectors, bit for bit */
    const float *w = slm_imatrix_weights(&im, "blk.0.attn_k.weight", 256);
    assert_non_null(w);
    assert_int_equal(bits(w[0]), 0x3f4fe632); /* first values as llama-quantize has them */
    assert_int_equal(bits(w[3]), 0x3f21cab3);
    assert_null(slm_imatrix_weights(&im, "blk.0.attn_k.weight", 255));
    assert_null(slm_imatrix_weights(&im, "output.weight", 256));
    slm_imatrix_free(&im);
    slm_imatrix_free(&im); /* safe twice */
}

static void test_imatrix_writes_reference_bytes(void **st) {
    (void)st;
    slm_imatrix im;
    slm_err e = {0};
    load_ok(&im, fixture_path(REF));
    const char *out = tmp_path("ref_again.imatrix.gguf");
    assert_int_equal(slm_imatrix_save(&im, out, &e), SLM_OK);
    size_t na, nb;
    void *a = read_whole_file(fixture_path(REF), &na), *b = read_whole_file(out, &nb);
    assert_int_equal(na, nb); /* nothing in llama-imatrix's file is left out: the dataset path is data */
    expect_bytes_equal("imatrix GGUF written back", b, a, na);
    free(a);
    free(b);
    slm_imatrix_free(&im);
}

static void test_imatrix_legacy_matches_llama_imatrix(void **st) {
    (void)st;
    slm_imatrix g, l;
    slm_err e = {0};
    load_ok(&g, fixture_path(REF));
    const char *dat = tmp_path("ref.imatrix.dat"), *dat2 = tmp_path("ref2.imatrix.dat");
    assert_int_equal(slm_imatrix_save_legacy(&g, dat, &e), SLM_OK);
    size_t n, n2;
    void *a = read_whole_file(dat, &n);
    assert_int_equal(n, LLAMA_DAT_BYTES);
    assert_true(fnv1a(FNV_START, a, n) == LLAMA_DAT_FNV);
    load_ok(&l, dat);
    assert_int_equal(l.format, SLM_IMATRIX_LEGACY);
    assert_int_equal(l.n_entries, g.n_entries);
    assert_int_equal(l.chunk_count, 301);
    assert_int_equal(l.chunk_size, 0);
    assert_int_equal(l.n_datasets, 1);
    assert_string_equal(l.datasets[0], "calib40.txt");
    /* Same vectors from both forms. Exact here: (s/c*301)/301 rounds back to s/c for all 9216
       values of this file; in general the .dat path may differ from the GGUF one by an ulp. */
    for (size_t i = 0; i < g.n_entries; i++) {
        assert_string_equal(l.entries[i].name, g.entries[i].name);
        assert_int_equal(l.entries[i].counts[0], 301); /* ncall = ceil(154112 / 512) */
        expect_bytes_equal(g.entries[i].name, l.entries[i].weights, g.entries[i].weights, (size_t)g.entries[i].ncols * 4);
    }
    /* a .dat read is written back unchanged */
    assert_int_equal(slm_imatrix_save_legacy(&l, dat2, &e), SLM_OK);
    void *b = read_whole_file(dat2, &n2);
    assert_int_equal(n2, n);
    expect_bytes_equal("legacy written back", b, a, n);
    free(a);
    free(b);
    slm_imatrix_free(&g);
    slm_imatrix_free(&l);
}

/* ---- in-memory data: experts, partial data, legacy forms, extras ------------------------- */

static void fill(float *v, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) v[i] = scale * (float)((i * 7919u) % 1000u) / 7.0f;
}

static void test_imatrix_experts_and_partial_data(void **st) {
    (void)st;
    enum { NC = 32, NM = 3 };
    float s[NM * NC];
    fill(s, NM * NC, 1.0f);
    const int64_t c[NM] = {1000, 0, 77};
    slm_imatrix im = {0}, r, l;
    slm_err e = {0};
    assert_int_equal(slm_imatrix_add(&im, "blk.0.ffn_down_exps.weight", NC, NM, s, c, &e), SLM_OK);
    im.chunk_size = 512;
    im.chunk_count = 2;
    const slm_imatrix_entry *x = slm_imatrix_find(&im, "blk.0.ffn_down_exps.weight");
    for (int m = 0; m < NM; m++)
        for (int i = 0; i < NC; i++) /* quantize.cpp: count > 0 ? sum / count : 1 */
            assert_int_equal(bits(x->weights[m * NC + i]), bits(c[m] ? s[m * NC + i] / (float)c[m] : 1.0f));
    const char *p = tmp_path("moe.imatrix.gguf");
    assert_int_equal(slm_imatrix_save(&im, p, &e), SLM_OK);
    slm_gguf g;
    assert_int_equal(slm_gguf_open(&g, p, &e), SLM_OK); /* ggml's ne [NC, NM] and [1, NM] */
    assert_int_equal(g.n_tensors, 2);
    assert_string_equal(g.tensors[0].name, "blk.0.ffn_down_exps.weight.in_sum2");
    assert_int_equal(g.tensors[0].ndim, 2);
    assert_int_equal(g.tensors[0].shape[0], NM);
    assert_int_equal(g.tensors[0].shape[1], NC);
    assert_string_equal(g.tensors[1].name, "blk.0.ffn_down_exps.weight.counts");
    assert_int_equal(g.tensors[1].ndim, 2);
    assert_int_equal(g.tensors[1].shape[0], NM);
    assert_int_equal(g.tensors[1].shape[1], 1);
    slm_gguf_close(&g);
    load_ok(&r, p);
    assert_int_equal(r.entries[0].n_mat, NM);
    expect_bytes_equal("experts reloaded", r.entries[0].weights, x->weights, sizeof s);
    /* legacy: ncall = ceil(1000 / 512) = 2; values (s/c)*ncall, an expert without data stores 1*ncall */
    const char *d = tmp_path("moe.imatrix.dat");
    assert_int_equal(slm_imatrix_save_legacy(&im, d, &e), SLM_OK);
    load_ok(&l, d);
    assert_int_equal(l.entries[0].n_mat, 1);
    assert_int_equal(l.entries[0].ncols, NM * NC);
    assert_int_equal(l.entries[0].counts[0], 2);
    for (int m = 0; m < NM; m++)
        for (int i = 0; i < NC; i++) {
            float cnt = (float)c[m], val = s[m * NC + i];
            if (cnt == 0.0f) val = cnt = 1.0f;
            const float stored = (val / cnt) * 2.0f;
            assert_int_equal(bits(l.entries[0].in_sum2[m * NC + i]), bits(stored));
            assert_int_equal(bits(l.entries[0].weights[m * NC + i]), bits(stored / 2.0f));
        }
    slm_imatrix_free(&im);
    slm_imatrix_free(&r);
    slm_imatrix_free(&l);
}

/* A legacy file: entries {name, ncall, values}, then the optional trailer. */
typedef struct buf {
    uint8_t b[8192];
    size_t n;
} buf;
static void put32(buf *b, int32_t v) { slm_st_u32(b->b + b->n, (uint32_t)v); b->n += 4; }
static void putf(buf *b, float v) { slm_st_f32(b->b + b->n, v); b->n += 4; }
static void putbytes(buf *b, const void *p, size_t n) { memcpy(b->b + b->n, p, n); b->n += n; }
static void put_entry(buf *b, const char *name, int32_t ncall, int32_t nval, float v0) {
    put32(b, (int32_t)strlen(name));
    putbytes(b, name, strlen(name));
    put32(b, ncall);
    put32(b, nval);
    for (int32_t i = 0; i < nval; i++) putf(b, v0 + (float)i);
}
static const char *write_buf(const char *name, const buf *b) {
    const char *p = tmp_path(name);
    write_whole_file(p, b->b, b->n);
    return p;
}

static void test_imatrix_legacy_forms(void **st) {
    (void)st;
    buf b = {{0}, 0};
    put32(&b, 2);
    put_entry(&b, "b.weight", 0, 3, 0.5f); /* ncall 0: llama-quantize keeps the values */
    put_entry(&b, "a.weight", 3, 2, 3.0f); /* out of order: stored sorted */
    size_t bare = b.n;
    slm_imatrix im, back;
    slm_err e = {0};
    load_ok(&im, write_buf("bare.dat", &b)); /* no trailer (old files) */
    assert_int_equal(im.chunk_count, 0);
    assert_int_equal(im.n_datasets, 0);
    assert_string_equal(im.entries[0].name, "a.weight");
    assert_int_equal(bits(im.entries[0].weights[1]), bits(4.0f / 3.0f)); /* sum / (float)ncall */
    assert_int_equal(bits(im.entries[1].weights[2]), bits(2.5f));       /* ncall 0: as stored */
    /* the GGUF form keeps these weights (ncall 0 becomes count 1) */
    const char *gp = tmp_path("from_legacy.gguf");
    assert_int_equal(slm_imatrix_save(&im, gp, &e), SLM_OK);
    load_ok(&back, gp);
    for (size_t i = 0; i < 2; i++)
        expect_bytes_equal(im.entries[i].name, back.entries[i].weights, im.entries[i].weights, (size_t)im.entries[i].ncols * 4);
    slm_imatrix_free(&back);
    slm_imatrix_free(&im);
    put32(&b, 42); /* last_call only: llama.cpp accepts it */
    load_ok(&im, write_buf("callonly.dat", &b));
    assert_int_equal(im.chunk_count, 42);
    assert_int_equal(im.n_datasets, 0);
    slm_imatrix_free(&im);
    put32(&b, 7);
    putbytes(&b, "set.txt", 7);
    load_ok(&im, write_buf("full.dat", &b));
    assert_int_equal(im.chunk_count, 42);
    assert_int_equal(im.n_datasets, 1);
    assert_string_equal(im.datasets[0], "set.txt");
    /* written back in name order, same values and trailer */
    const char *p2 = tmp_path("full2.dat");
    assert_int_equal(slm_imatrix_save_legacy(&im, p2, &e), SLM_OK);
    size_t n2;
    uint8_t *w = read_whole_file(p2, &n2);
    assert_int_equal(n2, b.n);
    assert_int_equal(slm_le_u32(w + 4), 8);
    assert_memory_equal(w + 8, "a.weight", 8);
    assert_memory_equal(w + bare, b.b + bare, b.n - bare);
    free(w);
    slm_imatrix_free(&im);
}

static void test_imatrix_extras_round_trip(void **st) {
    (void)st;
    slm_imatrix im, r;
    slm_err e = {0};
    load_ok(&im, fixture_path(REF));
    float absmean[256], gram[4 * 4];
    fill(absmean, 256, 0.5f);
    fill(gram, 16, 2.0f);
    const int64_t s1[1] = {256}, s2[2] = {4, 4};
    assert_int_equal(slm_imatrix_add_extra(&im, "blk.0.attn_k.weight.in_abs", SLM_DTYPE_F32, 1, s1, absmean, sizeof absmean, &e), SLM_OK);
    assert_int_equal(slm_imatrix_add_extra(&im, "blk.0.attn_k.weight.gram", SLM_DTYPE_F32, 2, s2, gram, sizeof gram, &e), SLM_OK);
    assert_int_equal(slm_kvs_set_str(&im.extra_kv, "slm.imatrix.stats", "abs,gram", &e), SLM_OK);
    assert_int_equal(slm_imatrix_add_extra(&im, "x.counts", SLM_DTYPE_F32, 1, s1, absmean, sizeof absmean, &e), SLM_E_ARG);
    assert_non_null(strstr(e.msg, "imatrix entries"));
    assert_int_equal(slm_imatrix_add_extra(&im, "x.abs", SLM_DTYPE_F32, 1, s1, absmean, 12, &e), SLM_E_ARG);
    const char *p = tmp_path("extras.imatrix.gguf");
    assert_int_equal(slm_imatrix_save(&im, p, &e), SLM_OK);
    load_ok(&r, p);
    assert_int_equal(r.n_entries, 28);
    assert_int_equal(r.n_extras, 2);
    assert_string_equal(r.extras[0].name, "blk.0.attn_k.weight.in_abs");
    assert_string_equal(r.extras[1].name, "blk.0.attn_k.weight.gram");
    assert_int_equal(r.extras[1].ndim, 2);
    expect_bytes_equal("extra kept", r.extras[1].data, gram, sizeof gram);
    const char *v;
    assert_int_equal(slm_kvs_get_str(&r.extra_kv, "slm.imatrix.stats", &v, &e), SLM_OK);
    assert_string_equal(v, "abs,gram");
    /* the llama-imatrix part of the file is unchanged: same entry tensors first, extras after */
    slm_gguf g;
    assert_int_equal(slm_gguf_open(&g, p, &e), SLM_OK);
    assert_int_equal(g.n_tensors, 58);
    assert_string_equal(g.tensors[56].name, "blk.0.attn_k.weight.in_abs");
    assert_string_equal(g.kv.items[4].key, "slm.imatrix.stats");
    slm_gguf_close(&g);
    for (size_t i = 0; i < 28; i++)
        expect_bytes_equal(r.entries[i].name, r.entries[i].weights, im.entries[i].weights, (size_t)im.entries[i].ncols * 4);
    /* a reserved key in extra_kv is refused, not written twice */
    assert_int_equal(slm_kvs_set_u32(&r.extra_kv, "imatrix.chunk_size", 1, &e), SLM_OK);
    assert_int_equal(slm_imatrix_save(&r, tmp_path("bad.gguf"), &e), SLM_E_ARG);
    assert_non_null(strstr(e.msg, "reserved key 'imatrix.chunk_size'"));
    assert_false(file_exists(tmp_path("bad.gguf")));
    slm_imatrix_free(&im);
    slm_imatrix_free(&r);
}

/* ---- what llama-quantize does with it ----------------------------------------------------- */

static void test_imatrix_lookup_follows_llama_quantize(void **st) {
    (void)st;
    float s[4 * 8];
    fill(s, 32, 1.0f);
    const int64_t c4[4] = {5, 6, 7, 8}, c1 = 9;
    slm_imatrix im = {0};
    slm_err e = {0};
    assert_int_equal(slm_imatrix_add(&im, "blk.0.ffn_up_exps.weight", 8, 4, s, c4, &e), SLM_OK);
    assert_int_equal(slm_imatrix_add(&im, "blk.0.attn_q.weight", 8, 1, s, &c1, &e), SLM_OK);
    assert_int_equal(slm_imatrix_add(&im, "token_embd.weight", 8, 1, s, &c1, &e), SLM_OK);
    const float *w = (const float *)1;
    assert_int_equal(slm_imatrix_lookup(&im, "blk.0.attn_k.weight", 8, 1, &w, &e), SLM_OK);
    assert_null(w); /* "did not find weights": quantized without */
    assert_int_equal(slm_imatrix_lookup(&im, "blk.0.attn_q.weight", 8, 1, &w, &e), SLM_OK);
    assert_ptr_equal(w, slm_imatrix_find(&im, "blk.0.attn_q.weight")->weights);
    assert_int_equal(slm_imatrix_lookup(&im, "blk.0.ffn_up_exps.weight", 8, 4, &w, &e), SLM_OK);
    assert_non_null(w); /* ne[0] * ne[2] values, expert e at e * 8 */
    assert_int_equal(slm_imatrix_lookup(&im, "token_embd.weight", 16, 1, &w, &e), SLM_OK);
    assert_null(w); /* a token_embd of another size is ignored */
    assert_int_equal(slm_imatrix_lookup(&im, "blk.0.attn_q.weight", 16, 1, &w, &e), SLM_E_ARG);
    assert_string_equal(e.msg, "imatrix size 8 is different from tensor size 16 for blk.0.attn_q.weight");
    assert_int_equal(slm_imatrix_lookup(&im, "blk.0.ffn_up_exps.weight", 8, 2, &w, &e), SLM_E_ARG);
    slm_imatrix_free(&im);
}

static void src_views(const slm_src *s, slm_tensor *t) {
    for (size_t i = 0; i < s->n_tensors; i++) {
        memset(&t[i], 0, sizeof t[i]);
        t[i].name = s->tensors[i].name;
        t[i].ndim = s->tensors[i].ndim;
        memcpy(t[i].shape, s->tensors[i].shape, sizeof t[i].shape);
    }
}

static void test_imatrix_check_model(void **st) {
    (void)st;
    slm_imatrix im;
    slm_src ts, s260;
    slm_err e = {0};
    load_ok(&im, fixture_path(REF));
    assert_int_equal(slm_src_open(&ts, fixture_path("models/tinystories-3M"), &e), SLM_OK);
    slm_tensor *t = calloc(ts.n_tensors, sizeof *t);
    src_views(&ts, t);
    assert_int_equal(slm_imatrix_check_model(&im, t, ts.n_tensors, &e), SLM_OK);
    /* the other fixture model: same names, 64 columns */
    assert_int_equal(slm_src_open(&s260, fixture_path("models/stories260K"), &e), SLM_OK);
    slm_tensor *t2 = calloc(s260.n_tensors, sizeof *t2);
    src_views(&s260, t2);
    assert_int_equal(slm_imatrix_check_model(&im, t2, s260.n_tensors, &e), SLM_E_ARG);
    assert_string_equal(e.msg, "imatrix entry 'blk.0.attn_k.weight' has 1 x 256 values but the model's tensor [32, 64] has "
                               "1 x 64 (imatrix from another model?)");
    /* a model with fewer layers */
    size_t n3 = 0;
    for (size_t i = 0; i < ts.n_tensors; i++)
        if (!strstr(t[i].name, "blk.3.")) t[n3++] = t[i];
    assert_int_equal(slm_imatrix_check_model(&im, t, n3, &e), SLM_E_ARG);
    assert_string_equal(e.msg, "imatrix entry 'blk.3.attn_k.weight' is not a tensor of the model (imatrix from another model?)");
    src_views(&ts, t);
    /* non-finite statistics (a collector bug; the readers refuse them in files) */
    im.entries[5].in_sum2[17] = NAN;
    assert_int_equal(slm_imatrix_check_model(&im, t, ts.n_tensors, &e), SLM_E_DATA);
    assert_non_null(strstr(e.msg, "imatrix entry 'blk.0.ffn_gate.weight': in_sum2[17] is nan"));
    im.entries[5].in_sum2[17] = 1.0f;
    im.entries[6].weights[3] = INFINITY;
    assert_int_equal(slm_imatrix_check_model(&im, t, ts.n_tensors, &e), SLM_E_DATA);
    assert_non_null(strstr(e.msg, "weight[3] is inf"));
    free(t);
    free(t2);
    slm_src_close(&ts);
    slm_src_close(&s260);
    slm_imatrix_free(&im);
}

static void test_imatrix_quantize_kvs(void **st) {
    (void)st;
    slm_imatrix im;
    slm_kvs kv = {0};
    slm_err e = {0};
    load_ok(&im, fixture_path(REF));
    assert_int_equal(slm_kvs_set_u32(&kv, "general.file_type", 15, &e), SLM_OK);
    assert_int_equal(slm_imatrix_quantize_kvs(&im, "im", &kv, &e), SLM_OK);
    /* what llq (= llama-quantize) wrote into tinystories-3M Q4_K_M with this file as "im" */
    assert_int_equal(kv.n, 5);
    assert_string_equal(kv.items[1].key, "quantize.imatrix.file");
    assert_string_equal(kv.items[1].val.v.str.s, "im");
    assert_string_equal(kv.items[2].key, "quantize.imatrix.dataset");
    assert_string_equal(kv.items[2].val.v.str.s, "calib40.txt");
    assert_string_equal(kv.items[3].key, "quantize.imatrix.entries_count");
    assert_int_equal(kv.items[3].val.type, SLM_GGUF_UINT32);
    assert_int_equal(kv.items[3].val.v.u32, 28);
    assert_string_equal(kv.items[4].key, "quantize.imatrix.chunks_count");
    assert_int_equal(kv.items[4].val.type, SLM_GGUF_UINT32);
    assert_int_equal(kv.items[4].val.v.u32, 301);
    slm_kvs_free(&kv);
    /* strings are cut to 127 bytes (char[128] overrides); no dataset / no chunks: no key */
    char longp[300];
    memset(longp, 'p', sizeof longp - 1);
    longp[sizeof longp - 1] = 0;
    for (size_t i = 0; i < im.n_datasets; i++) slm_free(im.datasets[i]);
    im.n_datasets = 0;
    im.chunk_count = 0;
    assert_int_equal(slm_imatrix_quantize_kvs(&im, longp, &kv, &e), SLM_OK);
    assert_int_equal(kv.n, 2);
    assert_int_equal(strlen(kv.items[0].val.v.str.s), 127);
    assert_string_equal(kv.items[1].key, "quantize.imatrix.entries_count");
    slm_kvs_free(&kv);
    slm_imatrix_free(&im);
}

/* ---- malformed files ---------------------------------------------------------------------- */

typedef struct tspec {
    const char *name;
    int type, ndim;
    int64_t shape[3];
    const float *data; /* NULL: zeros */
} tspec;

/* A GGUF with llama-imatrix's keys (a key is left out when its name is in `drop`, replaced by
   `kv` when given) and the tensors ts[0..n). */
static const char *write_imatrix_gguf(const char *file, const char *drop, const slm_kvs *kv, const tspec *ts, size_t n) {
    slm_gguf_writer w;
    slm_afile f;
    slm_err e = {0};
    const char *ds[1] = {"d.txt"};
    slm_gguf_writer_init(&w);
    if (!drop || strcmp(drop, "general.type")) assert_int_equal(slm_kvs_set_str(&w.kv, "general.type", "imatrix", &e), SLM_OK);
    if (!drop || strcmp(drop, "imatrix.datasets"))
        assert_int_equal(slm_kvs_set_arr_str(&w.kv, "imatrix.datasets", ds, 1, &e), SLM_OK);
    if (!drop || strcmp(drop, "imatrix.chunk_count")) assert_int_equal(slm_kvs_set_u32(&w.kv, "imatrix.chunk_count", 1, &e), SLM_OK);
    if (!drop || strcmp(drop, "imatrix.chunk_size")) assert_int_equal(slm_kvs_set_u32(&w.kv, "imatrix.chunk_size", 8, &e), SLM_OK);
    for (size_t i = 0; kv && i < kv->n; i++) assert_int_equal(slm_kvs_set_val(&w.kv, kv->items[i].key, &kv->items[i].val, &e), SLM_OK);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(slm_gguf_writer_add(&w, ts[i].name, ts[i].type, ts[i].ndim, ts[i].shape, &e), SLM_OK);
    const char *p = tmp_path(file);
    assert_int_equal(slm_afile_open(&f, p, &e), SLM_OK);
    assert_int_equal(slm_gguf_writer_begin(&w, &f, &e), SLM_OK);
    static const uint8_t zeros[4096];
    for (size_t i = 0; i < n; i++) {
        size_t nb = w.tensors[i].nbytes;
        assert_true(nb <= sizeof zeros);
        assert_int_equal(slm_gguf_writer_put(&w, ts[i].data ? (const void *)ts[i].data : zeros, nb, &e), SLM_OK);
    }
    assert_int_equal(slm_afile_commit(&f, &e), SLM_OK);
    slm_gguf_writer_free(&w);
    return p;
}

static void test_imatrix_rejects_malformed_gguf(void **st) {
    (void)st;
    static const float one[1] = {1}, neg[1] = {-1}, half[1] = {1.5f}, inf[1] = {INFINITY}, two[2] = {3, 4};
    static const float nan4[4] = {1, 2, NAN, 4}, neg4[4] = {1, 2, 3, -0.5f};
    const tspec s4 = {"a.weight.in_sum2", SLM_DTYPE_F32, 1, {4}, NULL}, c1 = {"a.weight.counts", SLM_DTYPE_F32, 1, {1}, one};
    slm_kvs kv = {0};
    slm_err e = {0};
    slm_imatrix im;
    /* control: the minimal valid file */
    tspec ok[2] = {s4, c1};
    load_ok(&im, write_imatrix_gguf("ok.gguf", NULL, NULL, ok, 2));
    assert_int_equal(im.n_entries, 1);
    slm_imatrix_free(&im);
    expect_load_error(write_imatrix_gguf("no_size.gguf", "imatrix.chunk_size", NULL, ok, 2), SLM_E_FORMAT,
                      "missing key 'imatrix.chunk_size'");
    expect_load_error(write_imatrix_gguf("no_sets.gguf", "imatrix.datasets", NULL, ok, 2), SLM_E_FORMAT,
                      "missing key 'imatrix.datasets'");
    assert_int_equal(slm_kvs_set_str(&kv, "general.type", "model", &e), SLM_OK);
    expect_load_error(write_imatrix_gguf("model.gguf", NULL, &kv, ok, 2), SLM_E_FORMAT, "general.type is 'model', not 'imatrix'");
    slm_kvs_free(&kv);
    assert_int_equal(slm_kvs_set_i32(&kv, "imatrix.chunk_count", 1, &e), SLM_OK);
    expect_load_error(write_imatrix_gguf("count_i32.gguf", NULL, &kv, ok, 2), SLM_E_FORMAT,
                      "key 'imatrix.chunk_count' has type i32 (must be u32)");
    slm_kvs_free(&kv);
    assert_int_equal(slm_kvs_set_str(&kv, "imatrix.datasets", "d.txt", &e), SLM_OK);
    expect_load_error(write_imatrix_gguf("sets_str.gguf", NULL, &kv, ok, 2), SLM_E_FORMAT, "must be an array of strings");
    slm_kvs_free(&kv);

    const struct {
        const char *file;
        tspec t[3];
        size_t n;
        int code;
        const char *msg;
    } cases[] = {
        {"sum_only.gguf", {s4}, 1, SLM_E_FORMAT, "entry 'a.weight': tensor 'a.weight.in_sum2' has no 'a.weight.counts'"},
        {"counts_only.gguf", {s4, c1, {"b.weight.counts", SLM_DTYPE_F32, 1, {1}, one}}, 3, SLM_E_FORMAT,
         "entry 'b.weight': tensor 'b.weight.counts' has no 'b.weight.in_sum2'"},
        {"f16.gguf", {{"a.weight.in_sum2", SLM_DTYPE_F16, 1, {4}, NULL}, c1}, 2, SLM_E_FORMAT,
         "entry 'a.weight': in_sum2 is F16 and counts F32 (both must be F32)"},
        {"counts_size.gguf", {s4, {"a.weight.counts", SLM_DTYPE_F32, 1, {2}, two}}, 2, SLM_E_FORMAT,
         "entry 'a.weight': counts has shape [2], 2 values for 1 matrices"},
        {"empty_name.gguf", {{".in_sum2", SLM_DTYPE_F32, 1, {4}, NULL}, {".counts", SLM_DTYPE_F32, 1, {1}, one}}, 2,
         SLM_E_FORMAT, "tensor '.in_sum2': empty entry name"},
        {"nan.gguf", {{"a.weight.in_sum2", SLM_DTYPE_F32, 1, {4}, nan4}, c1}, 2, SLM_E_DATA,
         "entry 'a.weight': in_sum2[2] is nan (must be finite and >= 0)"},
        {"negative.gguf", {{"a.weight.in_sum2", SLM_DTYPE_F32, 2, {2, 2}, neg4}, {"a.weight.counts", SLM_DTYPE_F32, 2, {2, 1}, two}},
         2, SLM_E_DATA, "entry 'a.weight': in_sum2[1][1] is -0.5"},
        {"count_neg.gguf", {s4, {"a.weight.counts", SLM_DTYPE_F32, 1, {1}, neg}}, 2, SLM_E_DATA,
         "entry 'a.weight': counts[0] is -1 (must be a whole number >= 0)"},
        {"count_frac.gguf", {s4, {"a.weight.counts", SLM_DTYPE_F32, 1, {1}, half}}, 2, SLM_E_DATA, "counts[0] is 1.5"},
        {"count_inf.gguf", {s4, {"a.weight.counts", SLM_DTYPE_F32, 1, {1}, inf}}, 2, SLM_E_DATA, "counts[0] is inf"},
        {"only_extras.gguf", {{"a.weight.gram", SLM_DTYPE_F32, 1, {4}, NULL}}, 1, SLM_E_FORMAT, "no imatrix entries"},
        {"no_tensors.gguf", {{0}}, 0, SLM_E_FORMAT, "no imatrix entries"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_load_error(write_imatrix_gguf(cases[i].file, NULL, NULL, cases[i].t, cases[i].n), cases[i].code, cases[i].msg);
    const tspec t3[2] = {{"a.weight.in_sum2", SLM_DTYPE_F32, 3, {1, 1, 4}, NULL}, c1};
    expect_load_error(write_imatrix_gguf("rank3.gguf", NULL, NULL, t3, 2), SLM_E_FORMAT,
                      "entry 'a.weight': in_sum2 has shape [1, 1, 4] (expected [n_cols] or [n_expert, n_cols])");
}

static void test_imatrix_rejects_malformed_legacy(void **st) {
    (void)st;
    const struct {
        const char *file;
        int code;
        const char *msg;
    } cases[] = {
        {"l_empty.dat", SLM_E_FORMAT, "0 bytes: too short for an imatrix"},
        {"l_zero.dat", SLM_E_FORMAT, "legacy imatrix with 0 entries"},
        {"l_many.dat", SLM_E_FORMAT, "legacy imatrix: 1000 entries cannot fit in"},
        {"l_namelen.dat", SLM_E_FORMAT, "entry 0: name length 64 (must be 1..63)"},
        {"l_namepast.dat", SLM_E_FORMAT, "entry 0: name of 40 bytes past end of file"},
        {"l_nul.dat", SLM_E_FORMAT, "entry 0: name contains a NUL byte"},
        {"l_ncall.dat", SLM_E_FORMAT, "entry 'a.weight': ncall -1 is negative"},
        {"l_nval.dat", SLM_E_FORMAT, "entry 'a.weight': nval 0 (must be >= 1)"},
        {"l_valpast.dat", SLM_E_FORMAT, "entry 'a.weight': 100 values past end of file"},
        {"l_nan.dat", SLM_E_DATA, "entry 'a.weight': in_sum2[1] is nan"},
        {"l_dup.dat", SLM_E_FORMAT, "duplicate entry 'a.weight'"},
        {"l_stray.dat", SLM_E_FORMAT, "truncated at byte"},
        {"l_lastneg.dat", SLM_E_FORMAT, "chunk count -3 is negative"},
        {"l_dslen.dat", SLM_E_FORMAT, "dataset name length 99 past end of file"},
        {"l_after.dat", SLM_E_FORMAT, "2 bytes after the dataset name"},
        {"l_dsnul.dat", SLM_E_FORMAT, "dataset name contains a NUL byte"},
        {"l_trunc.dat", SLM_E_FORMAT, "truncated at byte 44 reading ncall and nval of entry 'b.weight'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        buf b = {{0}, 0};
        const char *f = cases[i].file;
        if (!strcmp(f, "l_zero.dat")) put32(&b, 0);
        if (!strcmp(f, "l_many.dat")) { put32(&b, 1000); put_entry(&b, "a.weight", 1, 4, 1); }
        if (!strcmp(f, "l_namelen.dat")) { put32(&b, 1); put32(&b, 64); putbytes(&b, "x", 1); put32(&b, 0); put32(&b, 0); put32(&b, 0); }
        if (!strcmp(f, "l_namepast.dat")) { put32(&b, 1); put32(&b, 40); putbytes(&b, "abcdefghijklmno", 15); }
        if (!strcmp(f, "l_nul.dat")) { put32(&b, 1); put32(&b, 8); putbytes(&b, "a\0weight", 8); put32(&b, 1); put32(&b, 1); putf(&b, 1); }
        if (!strcmp(f, "l_ncall.dat")) { put32(&b, 1); put_entry(&b, "a.weight", -1, 1, 1); }
        if (!strcmp(f, "l_nval.dat")) { put32(&b, 1); put_entry(&b, "a.weight", 1, 0, 1); putf(&b, 0); }
        if (!strcmp(f, "l_valpast.dat")) { put32(&b, 1); put_entry(&b, "a.weight", 1, 1, 1); slm_st_u32(b.b + 4 + 4 + 8 + 4, 100); }
        if (!strcmp(f, "l_nan.dat")) { put32(&b, 1); put_entry(&b, "a.weight", 1, 3, 1); slm_st_f32(b.b + b.n - 8, NAN); }
        if (!strcmp(f, "l_dup.dat")) { put32(&b, 2); put_entry(&b, "a.weight", 1, 1, 1); put_entry(&b, "a.weight", 1, 1, 1); }
        if (!strcmp(f, "l_stray.dat")) { put32(&b, 1); put_entry(&b, "a.weight", 1, 1, 1); putbytes(&b, "ab", 2); }
        if (!strcmp(f, "l_lastneg.dat")) { put32(&b, 1); put_entry(&b, "a.weight", 1, 1, 1); put32(&b, -3); }
        if (!strcmp(f, "l_dslen.dat")) { put32(&b, 1); put_entry(&b, "a.weight", 1, 1, 1); put32(&b, 1); put32(&b, 99); putbytes(&b, "x", 1); }
        if (!strcmp(f, "l_after.dat")) { put32(&b, 1); put_entry(&b, "a.weight", 1, 1, 1); put32(&b, 1); put32(&b, 1); putbytes(&b, "xyz", 3); }
        if (!strcmp(f, "l_dsnul.dat")) { put32(&b, 1); put_entry(&b, "a.weight", 1, 1, 1); put32(&b, 1); put32(&b, 3); putbytes(&b, "x\0z", 3); }
        if (!strcmp(f, "l_trunc.dat")) { put32(&b, 2); put_entry(&b, "a.weight", 1, 1, 1); put32(&b, 8); putbytes(&b, "b.weight", 8); put32(&b, 1); }
        expect_load_error(write_buf(f, &b), cases[i].code, cases[i].msg);
    }
    expect_load_error(tmp_path("does_not_exist.dat"), SLM_E_IO, "does_not_exist.dat");
    /* GGUF without the last tensor's padding: slm's GGUF reader takes it, ggml (with data) not */
    size_t n;
    uint8_t *g = read_whole_file(fixture_path(REF), &n);
    write_whole_file(tmp_path("nopad.gguf"), g, n - 1);
    free(g);
    expect_load_error(tmp_path("nopad.gguf"), SLM_E_FORMAT, "file ends 1 bytes short of the last tensor's padding");
}

/* Every prefix of both kinds of file, and each byte of a small file set to 0x00, 0x80 and
   0xff: never a crash (ASan in check-asan), always a clean result; a refusal is one line. */
static void try_parse(const uint8_t *b, size_t n, int *n_ok) {
    slm_imatrix im;
    slm_err e = {0};
    uint8_t *copy = malloc(n ? n : 1); /* exactly n bytes: ASan sees any read past the end */
    if (n) memcpy(copy, b, n);
    int rc = slm_imatrix_parse(&im, copy, n, &e);
    free(copy);
    if (rc == SLM_OK) {
        (*n_ok)++;
        assert_true(im.n_entries >= 1);
        slm_imatrix_free(&im);
    } else if (!e.msg[0] || strchr(e.msg, '\n') || (rc != SLM_E_FORMAT && rc != SLM_E_DATA)) {
        fail_msg("%zu bytes: code %d '%s'", n, rc, e.msg);
    }
}

static void test_imatrix_survives_truncation_and_byte_flips(void **st) {
    (void)st;
    float s8[8];
    fill(s8, 8, 1.0f);
    const int64_t c2[2] = {3, 0}, c1 = 5;
    slm_imatrix im = {0};
    slm_err e = {0};
    assert_int_equal(slm_imatrix_add(&im, "blk.0.ffn_up_exps.weight", 4, 2, s8, c2, &e), SLM_OK);
    assert_int_equal(slm_imatrix_add(&im, "blk.0.attn_q.weight", 8, 1, s8, &c1, &e), SLM_OK);
    assert_int_equal(slm_imatrix_add_dataset(&im, "d.txt", &e), SLM_OK);
    im.chunk_size = 2;
    im.chunk_count = 3;
    const char *paths[2] = {tmp_path("small.gguf"), tmp_path("small.dat")};
    assert_int_equal(slm_imatrix_save(&im, paths[0], &e), SLM_OK);
    assert_int_equal(slm_imatrix_save_legacy(&im, paths[1], &e), SLM_OK);
    slm_imatrix_free(&im);
    for (int k = 0; k < 2; k++) {
        size_t n;
        uint8_t *orig = read_whole_file(paths[k], &n);
        uint8_t *b = malloc(n);
        int n_ok = 0;
        for (size_t len = 0; len < n; len++) try_parse(orig, len, &n_ok);
        /* the .dat's trailer is optional: cut right before it or after last_call it still loads */
        assert_int_equal(n_ok, k == 0 ? 0 : 2);
        static const uint8_t flips[3] = {0x00, 0x80, 0xff};
        n_ok = 0;
        for (size_t i = 0; i < n; i++)
            for (int f = 0; f < 3; f++) {
                memcpy(b, orig, n);
                b[i] = flips[f];
                try_parse(b, n, &n_ok);
            }
        assert_true(n_ok > 0); /* data bytes flipped to other valid values still load */
        free(b);
        free(orig);
    }
}

/* ---- allocation failures and API refusals --------------------------------------------------- */

static void test_imatrix_out_of_memory(void **st) {
    (void)st;
    slm_imatrix im;
    slm_err e = {0};
    load_ok(&im, fixture_path(REF));
    const char *dat = tmp_path("oom.dat"), *gg = tmp_path("oom.gguf");
    assert_int_equal(slm_imatrix_save_legacy(&im, dat, &e), SLM_OK);
    const char *inputs[2] = {fixture_path(REF), dat};
    for (int which = 0; which < 4; which++) {
        int done = 0;
        long k = 0;
        for (; k < 100000 && !done; k++) {
            slm_imatrix x;
            slm_mem_fail_after(k);
            int rc = which < 2 ? slm_imatrix_load(&x, inputs[which], &e)
                               : which == 2 ? slm_imatrix_save(&im, gg, &e) : slm_imatrix_save_legacy(&im, dat, &e);
            slm_mem_fail_after(-1);
            if (rc == SLM_OK) {
                done = 1;
                if (which < 2) slm_imatrix_free(&x);
            } else {
                if (rc != SLM_E_NOMEM) fail_msg("case %d, fail after %ld: code %d '%s'", which, k, rc, e.msg);
                if (which < 2) assert_null(x.entries);
            }
        }
        assert_true(done);
        if (which < 2) assert_true(k > 28); /* the walk went through the entries' allocations */
    }
    slm_imatrix_free(&im);
}

static void test_imatrix_api_refusals(void **st) {
    (void)st;
    slm_imatrix im = {0};
    slm_err e = {0};
    float s[4] = {1, 2, 3, 4};
    const int64_t c = 1, neg = -1;
    assert_int_equal(slm_imatrix_save(&im, tmp_path("none.gguf"), &e), SLM_E_ARG);
    assert_non_null(strstr(e.msg, "needs at least one entry"));
    assert_int_equal(slm_imatrix_add(&im, "", 4, 1, s, &c, &e), SLM_E_ARG);
    assert_int_equal(slm_imatrix_add(&im, "a", 0, 1, s, &c, &e), SLM_E_ARG);
    assert_int_equal(slm_imatrix_add(&im, "a", 4, 1, s, &neg, &e), SLM_E_DATA);
    s[2] = -INFINITY;
    assert_int_equal(slm_imatrix_add(&im, "a", 4, 1, s, &c, &e), SLM_E_DATA);
    s[2] = 3;
    assert_int_equal(slm_imatrix_add(&im, "a", 4, 1, s, &c, &e), SLM_OK);
    assert_int_equal(slm_imatrix_add(&im, "a", 4, 1, s, &c, &e), SLM_E_ARG);
    assert_non_null(strstr(e.msg, "duplicate entry 'a'"));
    assert_int_equal(slm_imatrix_save_legacy(&im, tmp_path("nochunk.dat"), &e), SLM_E_ARG);
    assert_non_null(strstr(e.msg, "chunk_size > 0"));
    assert_false(file_exists(tmp_path("nochunk.dat")));
    char longn[80];
    memset(longn, 'n', 60);
    longn[60] = 0; /* 60 + ".in_sum2" is past GGUF's 63 bytes */
    assert_int_equal(slm_imatrix_add(&im, longn, 4, 1, s, &c, &e), SLM_OK);
    assert_int_equal(slm_imatrix_save(&im, tmp_path("longname.gguf"), &e), SLM_E_ARG);
    assert_non_null(strstr(e.msg, "longname.gguf"));
    assert_false(file_exists(tmp_path("longname.gguf")));
    slm_imatrix_free(&im);
    im.format = SLM_IMATRIX_LEGACY;
    assert_int_equal(slm_imatrix_add(&im, "a", 2, 2, s, NULL, &e), SLM_E_ARG);
    slm_imatrix_free(&im);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_imatrix_reads_reference),
        cmocka_unit_test(test_imatrix_writes_reference_bytes),
        cmocka_unit_test(test_imatrix_legacy_matches_llama_imatrix),
        cmocka_unit_test(test_imatrix_experts_and_partial_data),
        cmocka_unit_test(test_imatrix_legacy_forms),
        cmocka_unit_test(test_imatrix_extras_round_trip),
        cmocka_unit_test(test_imatrix_lookup_follows_llama_quantize),
        cmocka_unit_test(test_imatrix_check_model),
        cmocka_unit_test(test_imatrix_quantize_kvs),
        cmocka_unit_test(test_imatrix_rejects_malformed_gguf),
        cmocka_unit_test(test_imatrix_rejects_malformed_legacy),
        cmocka_unit_test(test_imatrix_survives_truncation_and_byte_flips),
        cmocka_unit_test(test_imatrix_out_of_memory),
        cmocka_unit_test(test_imatrix_api_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
