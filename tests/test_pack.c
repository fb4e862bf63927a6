/* test_pack.c - packed GGUF (formats/pack.h): pack -> unpack gives every fixture model's GGUF
 * back byte for byte (converted to F32/F16/BF16 and quantized to several recipes), and so does
 * plain zstd decompression of the whole container; the bytes do not depend on the thread
 * count; each tensor read alone equals the GGUF's; the model source reads a packed file as it
 * reads the GGUF (same rows, same perplexity bit for bit, memory released or pinned as the
 * caller needs); malformed containers are refused with their exact message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "core/le.h"
#include "core/mem.h"
#include "core/slm.h"
#include "formats/gguf.h"
#include "formats/model_src.h"
#include "formats/pack.h"
#include "model/eval.h"
#include "model/tokenizer.h"
#include "model/transformer.h"
#include "tests/testutil.h"

static void pack_file(const char *in, const char *out, int level, int threads) {
    slm_err e = {0};
    slm_gguf g;
    slm_afile f;
    slm_pack_stats st;
    slm_pack_opts o = {.level = level, .threads = threads};
    if (slm_gguf_open(&g, in, &e) || slm_afile_open(&f, out, &e)) fail_msg("%s", e.msg);
    if (slm_pack_write(&g, &o, &f, &st, &e) || slm_afile_commit(&f, &e)) fail_msg("packing %s: %s", in, e.msg);
    assert_int_equal(st.gguf_bytes, g.map.size);
    slm_gguf_close(&g);
}

static void unpack_file(const char *in, const char *out) {
    slm_err e = {0};
    slm_pack p;
    slm_afile f;
    if (slm_pack_open(&p, in, &e) || slm_afile_open(&f, out, &e)) fail_msg("%s", e.msg);
    if (slm_pack_unpack(&p, &f, NULL, NULL, &e) || slm_afile_commit(&f, &e)) fail_msg("unpacking %s: %s", in, e.msg);
    slm_pack_close(&p);
}

/* Every tensor read alone from the pack equals the GGUF's bytes. */
static void expect_tensors_equal(const char *gguf, const char *packed) {
    slm_err e = {0};
    slm_gguf g;
    slm_pack p;
    assert_int_equal(slm_gguf_open(&g, gguf, &e), SLM_OK);
    if (slm_pack_open(&p, packed, &e)) fail_msg("%s", e.msg);
    assert_int_equal(p.gguf.n_tensors, g.n_tensors);
    assert_int_equal(p.gguf_size, g.map.size);
    for (size_t i = g.n_tensors; i-- > 0;) { /* backwards: no frame needs another */
        slm_tensor t;
        const uint8_t *d;
        slm_gguf_view(&g, i, &t);
        if (slm_pack_tensor(&p, i, &d, &e)) fail_msg("%s", e.msg);
        assert_int_equal((uintptr_t)d % 16, 0);
        expect_bytes_equal(t.name, d, t.data, t.nbytes);
        slm_pack_release(&p, i);
    }
    assert_int_equal(slm_pack_cached_bytes(&p), 0);
    slm_pack_close(&p);
    slm_gguf_close(&g);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* model -> recipe -> GGUF -> pack -> unpack; threads2: also pack with 2 threads and compare. */
static void roundtrip_one(const char *model, const char *recipe, int threads2) {
    const double t0 = now();
    char gguf[4096], packed[4096], back[4096], packed2[4096];
    snprintf(gguf, sizeof gguf, "%s", tmp_path("rt.gguf"));
    snprintf(packed, sizeof packed, "%s", tmp_path("rt.gguf.zst"));
    snprintf(packed2, sizeof packed2, "%s", tmp_path("rt2.gguf.zst"));
    snprintf(back, sizeof back, "%s", tmp_path("back.gguf"));
    test_export_file(fixture_path(model), gguf, recipe);
    pack_file(gguf, packed, SLM_PACK_DEFAULT_LEVEL, 1);
    unpack_file(packed, back);
    size_t n, nz, nb, nz2;
    uint8_t *a = read_whole_file(gguf, &n), *z = read_whole_file(packed, &nz), *b = read_whole_file(back, &nb), *z2 = NULL;
    char what[160];
    snprintf(what, sizeof what, "%s %s: unpacked", model, recipe);
    assert_int_equal(nb, n);
    expect_bytes_equal(what, b, a, n);
    if (threads2) {
        pack_file(gguf, packed2, SLM_PACK_DEFAULT_LEVEL, 2);
        z2 = read_whole_file(packed2, &nz2);
        snprintf(what, sizeof what, "%s %s: packed with 1 and 2 threads", model, recipe);
        assert_int_equal(nz2, nz);
        expect_bytes_equal(what, z2, z, nz);
    }
    /* the container is a zstd stream whose decompression is the GGUF (skippable frames skipped) */
    uint8_t *d = malloc(n + 1);
    assert_non_null(d);
    size_t got = ZSTD_decompress(d, n + 1, z, nz);
    if (ZSTD_isError(got)) fail_msg("%s %s: zstd -d: %s", model, recipe, ZSTD_getErrorName(got));
    assert_int_equal(got, n);
    snprintf(what, sizeof what, "%s %s: zstd -d", model, recipe);
    expect_bytes_equal(what, d, a, n);
    expect_tensors_equal(gguf, packed);
    printf("    %-30s %-7s %9zu -> %9zu bytes (%.3f), %.2f s\n", model, recipe, n, nz, (double)nz / (double)n, now() - t0);
    free(a), free(b), free(z), free(z2), free(d);
    unlink(gguf), unlink(packed), unlink(packed2), unlink(back);
}

/* Every fixture model converted to F32, F16 and BF16; the two model sizes quantized to six
   recipes (K types fall back on stories260K's 64-wide rows, as llama.cpp does). */
static void test_pack_roundtrip_fixtures(void **state) {
    (void)state;
    static const char *const models[] = {"models/stories260K", "models/stories260K-f16", "models/tinystories-3M",
                                         "models/tinystories-3M-bf16", "models/tinystories-3M-sharded"};
    static const char *const floats[] = {"F32", "F16", "BF16"};
    static const char *const quants[] = {"Q8_0", "Q6_K", "Q4_K_M", "Q4_0", "IQ4_NL", "Q2_K"};
    for (size_t m = 0; m < SLM_ARRAY_LEN(models); m++)
        for (size_t r = 0; r < SLM_ARRAY_LEN(floats); r++) roundtrip_one(models[m], floats[r], r == 0);
    for (size_t m = 0; m < 3; m += 2)
        for (size_t r = 0; r < SLM_ARRAY_LEN(quants); r++) roundtrip_one(models[m], quants[r], r == 2);
}

/* A GGUF with no tensors and trailing bytes, and one whose tensors are empty, come back too. */
static void test_pack_roundtrip_edge_cases(void **state) {
    (void)state;
    slm_err e = {0};
    char gguf[4096], packed[4096], back[4096];
    snprintf(gguf, sizeof gguf, "%s", tmp_path("edge.gguf"));
    snprintf(packed, sizeof packed, "%s", tmp_path("edge.gguf.zst"));
    snprintf(back, sizeof back, "%s", tmp_path("edge.back.gguf"));
    for (int kind = 0; kind < 2; kind++) {
        slm_gguf_writer w;
        slm_afile f;
        slm_gguf_writer_init(&w);
        assert_int_equal(slm_kvs_set_str(&w.kv, "general.name", "edge", &e), SLM_OK);
        const int64_t empty[2] = {0, 32}, one[1] = {3};
        if (kind == 1) {
            assert_int_equal(slm_gguf_writer_add(&w, "empty", 0, 2, empty, &e), SLM_OK);
            assert_int_equal(slm_gguf_writer_add(&w, "three", 0, 1, one, &e), SLM_OK);
        }
        assert_int_equal(slm_afile_open(&f, gguf, &e), SLM_OK);
        assert_int_equal(slm_gguf_writer_begin(&w, &f, &e), SLM_OK);
        if (kind == 1) {
            const float x[3] = {1, 2, 3};
            assert_int_equal(slm_gguf_writer_put(&w, NULL, 0, &e), SLM_OK);
            assert_int_equal(slm_gguf_writer_put(&w, x, sizeof x, &e), SLM_OK);
        }
        assert_int_equal(slm_gguf_writer_end(&w, &e), SLM_OK);
        assert_int_equal(slm_afile_write(&f, "trailing", 8, &e), SLM_OK); /* kept byte for byte */
        assert_int_equal(slm_afile_commit(&f, &e), SLM_OK);
        slm_gguf_writer_free(&w);
        pack_file(gguf, packed, 1, 1);
        unpack_file(packed, back);
        size_t n, nb;
        uint8_t *a = read_whole_file(gguf, &n), *b = read_whole_file(back, &nb);
        assert_int_equal(nb, n);
        expect_bytes_equal(kind ? "two tensors, one empty" : "no tensors", b, a, n);
        free(a), free(b);
        if (kind == 1) expect_tensors_equal(gguf, packed);
        unlink(gguf), unlink(packed), unlink(back);
    }
}

/* ---------------------------------------------------------------------------------------------
 * the model source */

static void test_pack_source_reads_like_gguf(void **state) {
    (void)state;
    char gguf[4096], packed[4096];
    snprintf(gguf, sizeof gguf, "%s", tmp_path("src.gguf"));
    snprintf(packed, sizeof packed, "%s", tmp_path("src.gguf.zst"));
    test_export_file(fixture_path("models/tinystories-3M"), gguf, "Q4_K_M");
    pack_file(gguf, packed, SLM_PACK_DEFAULT_LEVEL, 1);
    slm_err e = {0};
    slm_src a, b;
    assert_int_equal(slm_src_open(&a, gguf, &e), SLM_OK);
    if (slm_src_open(&b, packed, &e)) fail_msg("%s", e.msg);
    assert_int_equal(b.kind, SLM_SRC_PACK);
    assert_int_equal(b.n_tensors, a.n_tensors);
    assert_memory_equal(&b.cfg, &a.cfg, sizeof a.cfg);
    assert_int_equal(b.file_type, a.file_type);
    assert_int_equal(b.total_bytes, a.total_bytes);
    assert_int_equal(b.vocab.n_tokens, a.vocab.n_tokens);
    slm_tensor_src ta, tb;
    slm_src_tensors(&a, &ta);
    slm_src_tensors(&b, &tb);
    for (size_t i = 0; i < a.n_tensors; i++) {
        int64_t nr = slm_src_nrows(&a.tensors[i]), nc = slm_src_ncols(&a.tensors[i]);
        float *x = malloc(sizeof(float) * (size_t)(nr * nc)), *y = malloc(sizeof(float) * (size_t)(nr * nc));
        assert_int_equal(slm_src_read_rows(&a, i, 0, nr, x, &e), SLM_OK);
        assert_int_equal(slm_src_read_rows(&b, i, 0, nr, y, &e), SLM_OK);
        assert_memory_equal(x, y, sizeof(float) * (size_t)(nr * nc));
        free(x), free(y);
        /* a reader done with the whole tensor releases a packed tensor's copy */
        slm_tensor_src_advise(&tb, i, 0, nr, 0);
        assert_int_equal(slm_pack_cached_bytes(&b.pack), 0);
    }
    /* rows lent without scratch (the mapped transformer) stay until the source closes */
    const void *probe = tb.read_raw(tb.ud, 1, 0, 0, NULL, &e);
    assert_non_null(probe);
    assert_memory_equal(probe, ta.read_raw(ta.ud, 1, 0, 0, NULL, &e), a.tensors[1].nbytes);
    slm_tensor_src_advise(&tb, 1, 0, slm_src_nrows(&b.tensors[1]), 0);
    assert_true(slm_pack_cached_bytes(&b.pack) >= b.tensors[1].nbytes);
    slm_src_close(&b);
    slm_src_close(&a);
    unlink(gguf), unlink(packed);
}

/* The mapped transformer on a packed file: the same perplexity as on the GGUF, bit for bit. */
static void test_pack_eval_equals_gguf(void **state) {
    (void)state;
    char gguf[4096], packed[4096];
    snprintf(gguf, sizeof gguf, "%s", tmp_path("ev.gguf"));
    snprintf(packed, sizeof packed, "%s", tmp_path("ev.gguf.zst"));
    static const char *const recipes[] = {"F16", "Q4_K_M"};
    for (size_t r = 0; r < SLM_ARRAY_LEN(recipes); r++) {
        test_export_file(fixture_path("models/stories260K"), gguf, recipes[r]);
        pack_file(gguf, packed, SLM_PACK_DEFAULT_LEVEL, 1);
        slm_err e = {0};
        slm_src sa, sb;
        slm_model ma, mb;
        memset(&ma, 0, sizeof ma), memset(&mb, 0, sizeof mb);
        assert_int_equal(slm_src_open(&sa, gguf, &e), SLM_OK);
        assert_int_equal(slm_src_open(&sb, packed, &e), SLM_OK);
        assert_int_equal(test_model_build_src(&sa, &ma, 64, SLM_BUILD_MAPPED, &e), SLM_OK);
        if (test_model_build_src(&sb, &mb, 64, SLM_BUILD_MAPPED, &e)) fail_msg("%s", e.msg);
        /* the first 8 KB of the held-out text, tokenized with the packed file's vocabulary */
        size_t n_text, n_ids;
        char *text = read_whole_file(fixture_path("text/tinystories_val.txt"), &n_text);
        slm_tokenizer tok = {0};
        int32_t *ids;
        assert_int_equal(slm_tokenizer_build(&tok, &sb.vocab, &e), SLM_OK);
        assert_int_equal(slm_tokenize(&tok, text, SLM_MIN(n_text, (size_t)8192), 0, &ids, &n_ids, &e), SLM_OK);
        slm_eval_opts o = {.ctx = 64, .convention = SLM_PPL_ALL, .bos_id = slm_tokenizer_bos(&tok)};
        slm_ppl_result pa, pb;
        assert_int_equal(slm_eval_ppl(&ma, ids, (int64_t)n_ids, &o, &pa, &e), SLM_OK);
        assert_int_equal(slm_eval_ppl(&mb, ids, (int64_t)n_ids, &o, &pb, &e), SLM_OK);
        slm_free(ids);
        slm_tokenizer_free(&tok);
        free(text);
        assert_true(pa.nll_sum == pb.nll_sum && pa.nll2_sum == pb.nll2_sum && pa.scored == pb.scored);
        printf("    stories260K %s: PPL %.6f over %lld ids from the GGUF and from the packed file\n", recipes[r], pb.ppl, (long long)pb.scored);
        slm_ppl_result_free(&pa), slm_ppl_result_free(&pb);
        slm_model_free(&ma), slm_model_free(&mb);
        slm_src_close(&sa), slm_src_close(&sb);
    }
    unlink(gguf), unlink(packed);
}

/* ---------------------------------------------------------------------------------------------
 * malformed containers */

typedef struct image {
    uint8_t *d;
    size_t n;
    size_t at;      /* index frame */
    size_t n_frames;
} image;

static image load_image(const char *path) {
    image im;
    im.d = read_whole_file(path, &im.n);
    im.n_frames = (size_t)slm_le_u64(im.d + im.n - 16);
    im.at = im.n - 16 - 24 * im.n_frames - 8;
    return im;
}

static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Index entry k of a copy c of the image. */
static uint8_t *entry(uint8_t *c, const image *im, size_t k) { return c + im->at + 8 + 24 * k; }

/* The refusal of a modified copy: code and the whole message. */
static void expect_refusal(const char *what, const uint8_t *d, size_t n, int code, const char *msg) {
    slm_pack p;
    slm_err e = {0};
    int rc = slm_pack_parse(&p, d, n, &e);
    if (rc == SLM_OK) {
        slm_pack_close(&p);
        fail_msg("%s: accepted", what);
    }
    if (rc != code || strcmp(e.msg, msg)) fail_msg("%s: code %d '%s', want %d '%s'", what, rc, e.msg, code, msg);
}

static void test_pack_rejects_malformed(void **state) {
    (void)state;
    char gguf[4096], packed[4096], want[512];
    snprintf(gguf, sizeof gguf, "%s", tmp_path("bad.gguf"));
    snprintf(packed, sizeof packed, "%s", tmp_path("bad.gguf.zst"));
    test_export_file(fixture_path("models/stories260K"), gguf, "F32");
    pack_file(gguf, packed, SLM_PACK_DEFAULT_LEVEL, 1);
    image im = load_image(packed);
    uint8_t *c = malloc(im.n);
    const uint64_t gsize = slm_le_u64(im.d + 24);
    assert_non_null(c);
#define FRESH() memcpy(c, im.d, im.n)
    FRESH(); c[0] ^= 1;
    expect_refusal("bad magic", c, im.n, SLM_E_FORMAT, "not a packed GGUF (bad magic 51 2a 4d 18)");
    size_t ng;
    uint8_t *g = read_whole_file(gguf, &ng);
    expect_refusal("a plain GGUF", g, ng, SLM_E_FORMAT, "a GGUF file, not a packed one");
    free(g);
    expect_refusal("empty", im.d, 0, SLM_E_FORMAT, "not a packed GGUF (0 bytes)");
    expect_refusal("header only", im.d, 20, SLM_E_FORMAT, "truncated: 20 bytes, the pack header alone has 32");
    FRESH(); c[16] = 2;
    expect_refusal("version 2", c, im.n, SLM_E_FORMAT, "unsupported pack version 2 (slm reads 1)");
    FRESH(); c[20] = 0;
    expect_refusal("level 0", c, im.n, SLM_E_FORMAT, "pack header: zstd level 0 is not in 1..22");
    expect_refusal("truncated by one byte", im.d, im.n - 1, SLM_E_FORMAT,
                   "no index at the end of the file (truncated, or not a finished pack)");
    expect_refusal("first 1000 bytes", im.d, 1000, SLM_E_FORMAT, "no index at the end of the file (truncated, or not a finished pack)");
    FRESH(); put64(c + im.n - 16, 1000000);
    snprintf(want, sizeof want, "index of 1000000 frames does not fit in a %zu-byte file", im.n);
    expect_refusal("frame count too large", c, im.n, SLM_E_FORMAT, want);
    FRESH(); put64(c + im.n - 16, im.n_frames - 1);
    snprintf(want, sizeof want, "index frame at byte %zu is damaged (bad magic or size)", im.at + 24);
    expect_refusal("frame count one short", c, im.n, SLM_E_FORMAT, want);
    /* O(k, f): field f (0 offset, 1 compressed size, 2 decompressed size) of entry k, unmodified */
#define O(k, f) slm_le_u64(entry(im.d, &im, k) + 8 * (f))
    FRESH(); put64(entry(c, &im, 1), O(1, 0) + 1);
    snprintf(want, sizeof want, "index: frame 1 at byte %llu, expected %llu (frames follow each other)",
             (unsigned long long)O(1, 0) + 1, (unsigned long long)O(1, 0));
    expect_refusal("frame offset", c, im.n, SLM_E_FORMAT, want);
    FRESH(); put64(entry(c, &im, 2) + 8, 1ull << 40);
    snprintf(want, sizeof want, "index: frame 2 of %llu bytes runs past the index at byte %zu", 1ull << 40, im.at);
    expect_refusal("compressed size past the index", c, im.n, SLM_E_FORMAT, want);
    FRESH(); put64(entry(c, &im, 2) + 16, O(2, 2) + 1);
    snprintf(want, sizeof want, "index: the frames decompress to %llu bytes, the header says the GGUF has %llu",
             (unsigned long long)gsize + 1, (unsigned long long)gsize);
    expect_refusal("sizes do not add up", c, im.n, SLM_E_FORMAT, want);
    /* consistent sums, a frame that does not record that size */
    FRESH(); put64(entry(c, &im, 2) + 16, O(2, 2) + 32); put64(c + 24, gsize + 32);
    snprintf(want, sizeof want, "frame 2: the zstd frame records %llu bytes, the index says %llu", (unsigned long long)O(2, 2),
             (unsigned long long)O(2, 2) + 32);
    expect_refusal("content size", c, im.n, SLM_E_FORMAT, want);
    /* a size no frame of that many bytes can decompress to (memory the file cannot back) */
    FRESH(); put64(entry(c, &im, 0) + 16, 1ull << 40); put64(c + 24, gsize - O(0, 2) + (1ull << 40));
    snprintf(want, sizeof want, "index: frame 0 cannot decompress %llu bytes to %llu", (unsigned long long)O(0, 1), 1ull << 40);
    expect_refusal("expansion", c, im.n, SLM_E_FORMAT, want);
    FRESH(); c[O(3, 0)] ^= 0xff;
    expect_refusal("frame magic", c, im.n, SLM_E_FORMAT, "frame 3 is not a zstd frame");
    /* the last 4 bytes of a frame are its checksum */
    FRESH(); c[O(0, 0) + O(0, 1) - 1] ^= 1;
    expect_refusal("header checksum", c, im.n, SLM_E_FORMAT,
                   "the GGUF header (frame 0): corrupt compressed data (zstd: Restored data doesn't match checksum)");
    /* a damaged tensor: the container opens, the tensor is refused when read */
    FRESH(); c[O(1, 0) + O(1, 1) - 1] ^= 1;
    slm_pack p;
    slm_err e = {0};
    const uint8_t *d;
    assert_int_equal(slm_pack_parse(&p, c, im.n, &e), SLM_OK);
    assert_int_equal(slm_pack_tensor(&p, 1, &d, &e), SLM_OK);
    assert_int_equal(slm_pack_tensor(&p, 0, &d, &e), SLM_E_FORMAT);
    assert_string_equal(e.msg, "tensor 'output_norm.weight' (frame 1): corrupt compressed data (zstd: Restored data doesn't match checksum)");
    assert_null(p.cache[0]);
    slm_pack_close(&p);
#undef O
#undef FRESH
    free(c);
    free(im.d);
    unlink(gguf), unlink(packed);
}

/* The GGUF header parsed apart from its data: sizes checked against the whole file's. */
static void test_pack_gguf_header_only(void **state) {
    (void)state;
    char gguf[4096];
    snprintf(gguf, sizeof gguf, "%s", tmp_path("head.gguf"));
    test_export_file(fixture_path("models/stories260K"), gguf, "Q8_0");
    slm_err e = {0};
    slm_gguf g, h;
    assert_int_equal(slm_gguf_open(&g, gguf, &e), SLM_OK);
    assert_int_equal(slm_gguf_parse_header(&h, g.map.data, g.data_offset, g.map.size, &e), SLM_OK);
    assert_int_equal(h.n_tensors, g.n_tensors);
    assert_int_equal(h.kv.n, g.kv.n);
    assert_true(h.header_only);
    slm_gguf_close(&h);
    assert_int_equal(slm_gguf_parse_header(&h, g.map.data, g.data_offset + 32, g.map.size, &e), SLM_E_FORMAT);
    char want[160];
    snprintf(want, sizeof want, "GGUF header is %zu bytes, its tensor data starts at %zu", g.data_offset + 32, g.data_offset);
    assert_string_equal(e.msg, want);
    const slm_gguf_tinfo *last = &g.tensors[g.n_tensors - 1];
    assert_int_equal(slm_gguf_parse_header(&h, g.map.data, g.data_offset, g.data_offset + last->offset + last->nbytes - 1, &e),
                     SLM_E_FORMAT);
    assert_non_null(strstr(e.msg, "past end of file"));
    slm_gguf_close(&g);
    unlink(gguf);
}

static void test_pack_writer_refusals(void **state) {
    (void)state;
    char gguf[4096];
    snprintf(gguf, sizeof gguf, "%s", tmp_path("lv.gguf"));
    test_export_file(fixture_path("models/stories260K"), gguf, "Q8_0");
    slm_err e = {0};
    slm_gguf g;
    slm_afile f;
    slm_pack_stats st;
    assert_int_equal(slm_gguf_open(&g, gguf, &e), SLM_OK);
    assert_int_equal(slm_afile_open(&f, tmp_path("lv.gguf.zst"), &e), SLM_OK);
    slm_pack_opts o = {.level = 20, .threads = 1};
    assert_int_equal(slm_pack_write(&g, &o, &f, &st, &e), SLM_E_ARG);
    assert_string_equal(e.msg, "zstd level 20 is not in 1..19");
    o.level = 0;
    assert_int_equal(slm_pack_write(&g, &o, &f, &st, &e), SLM_E_ARG);
    slm_afile_abort(&f);
    slm_gguf_close(&g);
    unlink(gguf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pack_roundtrip_fixtures),
        cmocka_unit_test(test_pack_roundtrip_edge_cases),
        cmocka_unit_test(test_pack_source_reads_like_gguf),
        cmocka_unit_test(test_pack_eval_equals_gguf),
        cmocka_unit_test(test_pack_rejects_malformed),
        cmocka_unit_test(test_pack_gguf_header_only),
        cmocka_unit_test(test_pack_writer_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
