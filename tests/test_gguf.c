/* test_gguf.c - GGUF writer -> validating reader round trips: all 13 value types, nested
 * arrays, custom alignment, streamed tensor data; exact header bytes of a tiny file built
 * independently here; writer-side refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/le.h"
#include "core/slm.h"
#include "formats/gguf.h"
#include "tests/testutil.h"

static void set_scalar(slm_kvs *kv, const char *key, int type, const void *p) {
    slm_gguf_val v;
    memset(&v, 0, sizeof v);
    v.type = type;
    memcpy(&v.v, p, slm_gguf_scalar_size(type));
    slm_err e = {0};
    assert_int_equal(slm_kvs_set_val(kv, key, &v, &e), SLM_OK);
}

static void fill_all_types(slm_kvs *kv) {
    slm_err e = {0};
    uint8_t u8 = 200; int8_t i8 = -100; uint16_t u16 = 60000; int16_t i16 = -30000;
    uint32_t u32 = 4000000000u; int32_t i32 = -2000000000; float f32 = -1.5f; uint8_t b = 1;
    uint64_t u64 = 18000000000000000000ull; int64_t i64 = -9000000000000000000ll; double f64 = 3.141592653589793;
    set_scalar(kv, "t.u8", SLM_GGUF_UINT8, &u8);
    set_scalar(kv, "t.i8", SLM_GGUF_INT8, &i8);
    set_scalar(kv, "t.u16", SLM_GGUF_UINT16, &u16);
    set_scalar(kv, "t.i16", SLM_GGUF_INT16, &i16);
    set_scalar(kv, "t.u32", SLM_GGUF_UINT32, &u32);
    set_scalar(kv, "t.i32", SLM_GGUF_INT32, &i32);
    set_scalar(kv, "t.f32", SLM_GGUF_FLOAT32, &f32);
    set_scalar(kv, "t.bool", SLM_GGUF_BOOL, &b);
    set_scalar(kv, "t.u64", SLM_GGUF_UINT64, &u64);
    set_scalar(kv, "t.i64", SLM_GGUF_INT64, &i64);
    set_scalar(kv, "t.f64", SLM_GGUF_FLOAT64, &f64);
    assert_int_equal(slm_kvs_set_str(kv, "t.str", "h\xc3\xa9llo \xe2\x96\x81world", &e), SLM_OK);
    const float fa[3] = {1, -2, 3.5f};
    assert_int_equal(slm_kvs_set_arr(kv, "t.arr_f32", SLM_GGUF_FLOAT32, fa, 3, &e), SLM_OK);
    const int64_t ia[2] = {-1, 1ll << 40};
    assert_int_equal(slm_kvs_set_arr(kv, "t.arr_i64", SLM_GGUF_INT64, ia, 2, &e), SLM_OK);
    const char *sa[3] = {"a", "", "\xe2\x96\x81the"};
    assert_int_equal(slm_kvs_set_arr_str(kv, "t.arr_str", sa, 3, &e), SLM_OK);
    assert_int_equal(slm_kvs_set_arr(kv, "t.arr_empty", SLM_GGUF_UINT8, NULL, 0, &e), SLM_OK);
    /* nested: [[1, 2], [3]] of u16, and [["x"], []] */
    slm_gguf_val inner[2], outer, sinner[2], souter;
    const uint16_t a1[2] = {1, 2}, a2[1] = {3};
    memset(inner, 0, sizeof inner);
    inner[0].type = inner[1].type = SLM_GGUF_ARRAY;
    inner[0].v.arr.type = inner[1].v.arr.type = SLM_GGUF_UINT16;
    inner[0].v.arr.n = 2; inner[0].v.arr.data = (void *)a1;
    inner[1].v.arr.n = 1; inner[1].v.arr.data = (void *)a2;
    memset(&outer, 0, sizeof outer);
    outer.type = SLM_GGUF_ARRAY; outer.v.arr.type = SLM_GGUF_ARRAY; outer.v.arr.n = 2; outer.v.arr.data = inner;
    assert_int_equal(slm_kvs_set_val(kv, "t.nested", &outer, &e), SLM_OK);
    slm_gguf_str xs = {1, "x"};
    memset(sinner, 0, sizeof sinner);
    sinner[0].type = sinner[1].type = SLM_GGUF_ARRAY;
    sinner[0].v.arr.type = sinner[1].v.arr.type = SLM_GGUF_STRING;
    sinner[0].v.arr.n = 1; sinner[0].v.arr.data = &xs;
    memset(&souter, 0, sizeof souter);
    souter.type = SLM_GGUF_ARRAY; souter.v.arr.type = SLM_GGUF_ARRAY; souter.v.arr.n = 2; souter.v.arr.data = sinner;
    assert_int_equal(slm_kvs_set_val(kv, "t.nested_str", &souter, &e), SLM_OK);
}

static void write_file(slm_gguf_writer *w, const char *path, const void *const *data) {
    slm_err e = {0};
    slm_afile f;
    assert_int_equal(slm_afile_open(&f, path, &e), SLM_OK);
    assert_int_equal(slm_gguf_writer_begin(w, &f, &e), SLM_OK);
    for (size_t i = 0; i < w->n_tensors; i++) assert_int_equal(slm_gguf_writer_put(w, data[i], w->tensors[i].nbytes, &e), SLM_OK);
    assert_int_equal(slm_gguf_writer_end(w, &e), SLM_OK);
    assert_int_equal(slm_afile_commit(&f, &e), SLM_OK);
}

static void roundtrip(uint32_t alignment) {
    slm_err e = {0};
    slm_gguf_writer w;
    slm_gguf_writer_init(&w);
    fill_all_types(&w.kv);
    if (alignment != 32) assert_int_equal(slm_kvs_set_u32(&w.kv, "general.alignment", alignment, &e), SLM_OK);
    float a[3 * 5];
    uint16_t h[64];
    uint8_t q[2 * 18];
    for (int i = 0; i < 15; i++) a[i] = (float)i - 7.25f;
    for (int i = 0; i < 64; i++) h[i] = slm_f32_to_f16((float)i / 8);
    for (int i = 0; i < 36; i++) q[i] = (uint8_t)(i * 7);
    const int64_t sa[2] = {3, 5}, sh[1] = {64}, sq[2] = {2, 32};
    assert_int_equal(slm_gguf_writer_add(&w, "a", SLM_DTYPE_F32, 2, sa, &e), SLM_OK);
    assert_int_equal(slm_gguf_writer_add(&w, "blk.0.h", SLM_DTYPE_F16, 1, sh, &e), SLM_OK);
    assert_int_equal(slm_gguf_writer_add(&w, "q", SLM_DTYPE_Q4_0, 2, sq, &e), SLM_OK);
    const void *data[3] = {a, h, q};
    const char *path = tmp_path(alignment == 32 ? "rt32.gguf" : "rt64.gguf");
    uint64_t planned = slm_gguf_writer_file_size(&w);
    write_file(&w, path, data);
    slm_gguf g;
    assert_int_equal(slm_gguf_open(&g, path, &e), SLM_OK);
    assert_int_equal(g.map.size, planned);
    assert_int_equal(g.alignment, alignment);
    assert_int_equal(g.data_offset % alignment, 0);
    assert_int_equal(g.kv.n, w.kv.n);
    for (size_t i = 0; i < w.kv.n; i++) {
        assert_string_equal(g.kv.items[i].key, w.kv.items[i].key);
        if (!slm_gguf_val_equal(&g.kv.items[i].val, &w.kv.items[i].val)) fail_msg("value of %s differs after the round trip", w.kv.items[i].key);
    }
    assert_int_equal(g.n_tensors, 3);
    for (size_t i = 0; i < 3; i++) {
        slm_tensor t;
        slm_gguf_view(&g, i, &t);
        assert_string_equal(t.name, w.tensors[i].name);
        assert_int_equal(t.dtype, w.tensors[i].type);
        assert_int_equal(t.ndim, w.tensors[i].ndim);
        assert_memory_equal(t.shape, w.tensors[i].shape, sizeof(int64_t) * (size_t)t.ndim);
        assert_int_equal(g.tensors[i].offset % alignment, 0);
        assert_memory_equal(t.data, data[i], t.nbytes);
    }
    uint32_t u;
    assert_int_equal(slm_kvs_get_u32(&g.kv, "t.u16", &u, &e), SLM_OK);
    assert_int_equal(u, 60000);
    const char *s;
    assert_int_equal(slm_kvs_get_str(&g.kv, "t.u8", &s, &e), SLM_E_FORMAT);
    assert_string_equal(e.msg, "key 't.u8': expected a string, found u8");
    slm_gguf_close(&g);
    slm_gguf_writer_free(&w);
}

static void test_gguf_roundtrip_all_types(void **st) { (void)st; roundtrip(32); }
static void test_gguf_roundtrip_alignment_64(void **st) { (void)st; roundtrip(64); }

/* The exact bytes of a one-KV, one-tensor file, assembled by hand from the spec. */
static void test_gguf_exact_bytes(void **st) {
    (void)st;
    slm_err e = {0};
    slm_gguf_writer w;
    slm_gguf_writer_init(&w);
    assert_int_equal(slm_kvs_set_str(&w.kv, "general.architecture", "llama", &e), SLM_OK);
    const int64_t shape[2] = {2, 3};
    assert_int_equal(slm_gguf_writer_add(&w, "w", SLM_DTYPE_F32, 2, shape, &e), SLM_OK);
    const float d[6] = {1, 2, 3, 4, 5, 6};
    const void *data[1] = {d};
    const char *path = tmp_path("exact.gguf");
    write_file(&w, path, data);
    uint8_t want[256];
    size_t n = 0;
#define U32(x) (slm_st_u32(want + n, (x)), n += 4)
#define U64(x) (slm_st_u64(want + n, (x)), n += 8)
#define STR(s) (U64(strlen(s)), memcpy(want + n, (s), strlen(s)), n += strlen(s))
    memcpy(want, "GGUF", 4); n = 4;
    U32(3); U64(1); U64(1);
    STR("general.architecture"); U32(8); STR("llama");
    STR("w"); U32(2); U64(3); U64(2); U32(0); U64(0); /* ne[] = {3, 2}: row length first */
    while (n % 32) want[n++] = 0;
    memcpy(want + n, d, sizeof d); n += sizeof d;
    while (n % 32) want[n++] = 0;
    size_t got_n;
    uint8_t *got = read_whole_file(path, &got_n);
    assert_int_equal(got_n, n);
    expect_bytes_equal("exact.gguf", got, want, n);
    free(got);
    slm_gguf_writer_free(&w);
}

static void test_gguf_writer_refusals(void **st) {
    (void)st;
    slm_err e = {0};
    slm_gguf_writer w;
    slm_gguf_writer_init(&w);
    const int64_t shape[1] = {32}, bad[1] = {48};
    char name[80];
    memset(name, 'n', 64);
    name[64] = 0;
    assert_int_equal(slm_gguf_writer_add(&w, name, SLM_DTYPE_F32, 1, shape, &e), SLM_E_ARG);
    assert_non_null(strstr(e.msg, "is 64 bytes (GGUF allows at most 63)"));
    name[63] = 0;
    assert_int_equal(slm_gguf_writer_add(&w, name, SLM_DTYPE_F32, 1, shape, &e), SLM_OK);
    assert_int_equal(slm_gguf_writer_add(&w, name, SLM_DTYPE_F32, 1, shape, &e), SLM_E_ARG);
    assert_non_null(strstr(e.msg, "duplicate tensor name"));
    assert_int_equal(slm_gguf_writer_add(&w, "q", SLM_DTYPE_Q4_K, 1, bad, &e), SLM_E_ARG);
    assert_string_equal(e.msg, "tensor 'q': row length 48 is not a multiple of Q4_K's block size 256");
    slm_gguf_writer_free(&w);
}

/* Streaming a tensor in parts gives the same file as one put. */
static void test_gguf_put_part(void **st) {
    (void)st;
    slm_err e = {0};
    float d[64];
    for (int i = 0; i < 64; i++) d[i] = (float)i;
    const char *paths[2] = {tmp_path("whole.gguf"), tmp_path("parts.gguf")};
    for (int k = 0; k < 2; k++) {
        slm_gguf_writer w;
        slm_gguf_writer_init(&w);
        const int64_t shape[2] = {8, 8};
        assert_int_equal(slm_gguf_writer_add(&w, "a", SLM_DTYPE_F32, 2, shape, &e), SLM_OK);
        assert_int_equal(slm_gguf_writer_add(&w, "b", SLM_DTYPE_F32, 2, shape, &e), SLM_OK);
        slm_afile f;
        assert_int_equal(slm_afile_open(&f, paths[k], &e), SLM_OK);
        assert_int_equal(slm_gguf_writer_begin(&w, &f, &e), SLM_OK);
        for (int t = 0; t < 2; t++) {
            if (k == 0) assert_int_equal(slm_gguf_writer_put(&w, d, sizeof d, &e), SLM_OK);
            else for (int r = 0; r < 8; r++) assert_int_equal(slm_gguf_writer_put_part(&w, d + 8 * r, 32, &e), SLM_OK);
        }
        assert_int_equal(slm_gguf_writer_end(&w, &e), SLM_OK);
        assert_int_equal(slm_afile_commit(&f, &e), SLM_OK);
        slm_gguf_writer_free(&w);
    }
    size_t n0, n1;
    char *a = read_whole_file(paths[0], &n0), *b = read_whole_file(paths[1], &n1);
    assert_int_equal(n0, n1);
    expect_bytes_equal("parts vs whole", b, a, n0);
    free(a);
    free(b);
}

/* llama.cpp's own files read back: a real vocab GGUF (0 tensors). */
static void test_gguf_reads_llamacpp_vocab(void **st) {
    (void)st;
    slm_err e = {0};
    slm_gguf g;
    assert_int_equal(slm_gguf_open(&g, fixture_path("vocab/ggml-vocab-llama-spm.gguf"), &e), SLM_OK);
    assert_int_equal(g.n_tensors, 0);
    const void *toks;
    uint64_t n;
    assert_int_equal(slm_kvs_get_arr(&g.kv, "tokenizer.ggml.tokens", SLM_GGUF_STRING, &toks, &n, &e), SLM_OK);
    assert_int_equal(n, 32000);
    assert_string_equal(((const slm_gguf_str *)toks)[1].s, "<s>");
    slm_gguf_close(&g);
}

/* ---- in-memory images built by hand (large counts: the readers' index and memory cap) ---- */

typedef struct img { uint8_t *p; size_t n, cap; } img;

static void img_put(img *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void img_u32(img *b, uint32_t v) { uint8_t x[4]; slm_st_u32(x, v); img_put(b, x, 4); }
static void img_u64(img *b, uint64_t v) { uint8_t x[8]; slm_st_u64(x, v); img_put(b, x, 8); }
static void img_str(img *b, const char *s) { img_u64(b, strlen(s)); img_put(b, s, strlen(s)); }
static void img_head(img *b, uint64_t n_tensors, uint64_t n_kv) { img_put(b, "GGUF", 4); img_u32(b, 3); img_u64(b, n_tensors); img_u64(b, n_kv); }

/* n u32 keys "k.%05d" (+ a repeat of dup_key if >= 0), n 1-element F32 tensors "t.%05d" (+ a
   repeat of dup_tensor if >= 0). */
static img names_image(int n, int dup_key, int dup_tensor) {
    img b = {0};
    char nm[32];
    img_head(&b, (uint64_t)(n + (dup_tensor >= 0)), (uint64_t)(n + (dup_key >= 0)));
    for (int i = 0; i <= n; i++) {
        int k = i < n ? i : dup_key;
        if (k < 0) break;
        snprintf(nm, sizeof nm, "k.%05d", k);
        img_str(&b, nm);
        img_u32(&b, SLM_GGUF_UINT32);
        img_u32(&b, (uint32_t)k);
    }
    for (int i = 0; i <= n; i++) {
        int k = i < n ? i : dup_tensor;
        if (k < 0) break;
        snprintf(nm, sizeof nm, "t.%05d", k);
        img_str(&b, nm);
        img_u32(&b, 1);
        img_u64(&b, 1);
        img_u32(&b, SLM_DTYPE_F32);
        img_u64(&b, (uint64_t)i * 32);
    }
    size_t pad = (32 - b.n % 32) % 32 + (size_t)(n + (dup_tensor >= 0)) * 32;
    uint8_t z[64] = {0};
    for (; pad; pad -= SLM_MIN(pad, sizeof z)) img_put(&b, z, SLM_MIN(pad, sizeof z));
    return b;
}

/* 20000 keys and tensors: every lookup lands on its own entry (the hash index), repeats are
   refused with the first repeated name, and removing keys keeps the others reachable. */
static void test_gguf_many_names(void **st) {
    (void)st;
    enum { N = 20000 };
    slm_err e = {0};
    img b = names_image(N, -1, -1);
    slm_gguf g;
    assert_int_equal(slm_gguf_parse(&g, b.p, b.n, &e), SLM_OK);
    assert_int_equal(g.kv.n, N);
    assert_int_equal(g.n_tensors, N);
    char nm[32];
    for (int i = 0; i < N; i++) {
        snprintf(nm, sizeof nm, "k.%05d", i);
        const slm_gguf_val *v = slm_kvs_get(&g.kv, nm);
        assert_ptr_equal(v, &g.kv.items[i].val);
        assert_int_equal(v->v.u32, i);
        snprintf(nm, sizeof nm, "t.%05d", i);
        assert_int_equal(slm_gguf_find(&g, nm), i);
    }
    assert_null(slm_kvs_get(&g.kv, "k.20000"));
    assert_int_equal(slm_gguf_find(&g, "t.20000"), -1);
    assert_int_equal(slm_kvs_remove(&g.kv, "k.00005"), 1);
    assert_int_equal(slm_kvs_remove(&g.kv, "k.10000"), 1);
    assert_int_equal(slm_kvs_remove(&g.kv, "k.10000"), 0);
    assert_int_equal(g.kv.n, N - 2);
    for (int i = 0; i < N; i++) {
        snprintf(nm, sizeof nm, "k.%05d", i);
        const slm_gguf_val *v = slm_kvs_get(&g.kv, nm);
        if (i == 5 || i == 10000) assert_null(v);
        else assert_int_equal(v->v.u32, i);
    }
    assert_int_equal(slm_kvs_set_u32(&g.kv, "k.00005", 77, &e), SLM_OK); /* re-added at the end */
    assert_string_equal(g.kv.items[N - 2].key, "k.00005");
    slm_gguf_close(&g);
    free(b.p);

    b = names_image(N, 17, -1);
    assert_int_equal(slm_gguf_parse(&g, b.p, b.n, &e), SLM_E_FORMAT);
    assert_string_equal(e.msg, "duplicate key 'k.00017'");
    free(b.p);
    b = names_image(N, -1, 12345);
    assert_int_equal(slm_gguf_parse(&g, b.p, b.n, &e), SLM_E_FORMAT);
    assert_string_equal(e.msg, "duplicate tensor name 't.12345'");
    free(b.p);
}

/* One key "big": an array of n strings of len bytes each. */
static img strarr_image(uint64_t n, size_t len) {
    img b = {0};
    img_head(&b, 0, 1);
    img_str(&b, "big");
    img_u32(&b, SLM_GGUF_ARRAY);
    img_u32(&b, SLM_GGUF_STRING);
    img_u64(&b, n);
    b.cap = b.n + n * (8 + len);
    b.p = realloc(b.p, b.cap);
    assert_non_null(b.p);
    for (uint64_t i = 0; i < n; i++) {
        slm_st_u64(b.p + b.n, len);
        memset(b.p + b.n + 8, 'a' + (int)(i % 26), len);
        b.n += 8 + len;
    }
    return b;
}

/* Metadata memory is bounded by the file: 5M empty strings (40 MB of file) would take 85 MB
   in memory (16-byte header + NUL each), over max(64 MiB, 2 x 40 MB): refused with one line
   naming the key, before anything is allocated. (The reader used to take ~12x the file.) */
static void test_gguf_metadata_cap_refuses_empty_strings(void **st) {
    (void)st;
    slm_err e = {0};
    img b = strarr_image(5000000, 0);
    slm_gguf g;
    assert_int_equal(slm_gguf_parse(&g, b.p, b.n, &e), SLM_E_UNSUPPORTED);
    assert_string_equal(e.msg, "key 'big': metadata would take 81.1 MiB of memory, over the cap of 76.3 MiB (the larger of "
                               "64 MiB and twice the 40000051 header bytes read)");
    free(b.p);
}

/* ...while 5M 4-byte strings (60 MB) parse, within twice the file, one block for the array. */
static void test_gguf_metadata_cap_keeps_real_arrays(void **st) {
    (void)st;
    slm_err e = {0};
    const uint64_t n = 5000000;
    img b = strarr_image(n, 4);
    slm_gguf g;
    assert_int_equal(slm_gguf_parse(&g, b.p, b.n, &e), SLM_OK);
    assert_true(g.meta_bytes > n * (sizeof(slm_gguf_str) + 5));
    assert_true(g.meta_bytes <= 2 * b.n);
    const void *data;
    uint64_t got;
    assert_int_equal(slm_kvs_get_arr(&g.kv, "big", SLM_GGUF_STRING, &data, &got, &e), SLM_OK);
    assert_int_equal(got, n);
    const slm_gguf_str *s = data;
    assert_string_equal(s[0].s, "aaaa");
    assert_string_equal(s[n - 1].s, "rrrr"); /* (n - 1) % 26 = 17 */
    assert_ptr_equal(s[1].s, s[0].s + 5);    /* one block: bytes follow each other */
    slm_gguf_val copy;
    assert_int_equal(slm_gguf_val_copy(&copy, slm_kvs_get(&g.kv, "big"), &e), SLM_OK);
    assert_true(slm_gguf_val_equal(&copy, slm_kvs_get(&g.kv, "big")));
    slm_gguf_val_free(&copy);
    slm_gguf_close(&g);
    free(b.p);
}

/* A million tiny keys (21 MB) would take ~81 MB of key slots, names and index: refused at
   the key that crosses the cap. */
static void test_gguf_metadata_cap_refuses_key_flood(void **st) {
    (void)st;
    enum { N = 1000000 };
    slm_err e = {0};
    img b = {0};
    img_head(&b, 0, N);
    char nm[16];
    for (int i = 0; i < N; i++) {
        snprintf(nm, sizeof nm, "k%07d", i);
        img_str(&b, nm);
        img_u32(&b, SLM_GGUF_UINT8);
        img_put(&b, "x", 1);
    }
    slm_gguf g;
    assert_int_equal(slm_gguf_parse(&g, b.p, b.n, &e), SLM_E_UNSUPPORTED);
    assert_true(!strncmp(e.msg, "key 'k0", 7));
    assert_non_null(strstr(e.msg, "': metadata would take 64.0 MiB of memory, over the cap of 64.0 MiB (the larger of 64 MiB"));
    free(b.p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gguf_many_names),
        cmocka_unit_test(test_gguf_metadata_cap_refuses_empty_strings),
        cmocka_unit_test(test_gguf_metadata_cap_keeps_real_arrays),
        cmocka_unit_test(test_gguf_metadata_cap_refuses_key_flood),
        cmocka_unit_test(test_gguf_roundtrip_all_types),
        cmocka_unit_test(test_gguf_roundtrip_alignment_64),
        cmocka_unit_test(test_gguf_exact_bytes),
        cmocka_unit_test(test_gguf_writer_refusals),
        cmocka_unit_test(test_gguf_put_part),
        cmocka_unit_test(test_gguf_reads_llamacpp_vocab),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
