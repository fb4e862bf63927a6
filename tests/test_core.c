/* test_core.c - err, mem fail-after, dtype conversions (all 65536 half patterns + ggml
 * golden vectors), atomic files, shape arithmetic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <dirent.h>
#include <regex.h>
#include <string.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/afile.h"
#include "core/dtype.h"
#include "core/ecma_re.h"
#include "quantize/qtypes.h"
#include "core/mapfile.h"
#include "core/mem.h"
#include "core/pool.h"
#include "core/strindex.h"
#include "core/sha256.h"
#include "core/slm.h"
#include "core/tensor.h"
#include "core/utf8.h"
#include "tests/testutil.h"

static uint32_t fbits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float bitsf(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static void test_err_prefix_keeps_code(void **st) {
    (void)st;
    slm_err e = {0};
    assert_int_equal(slm_errf(&e, SLM_E_FORMAT, "tensor '%s': bad", "x"), SLM_E_FORMAT);
    slm_err_prefix(&e, "%s", "m.safetensors");
    assert_string_equal(e.msg, "m.safetensors: tensor 'x': bad");
    assert_int_equal(e.code, SLM_E_FORMAT);
}

static void test_mem_fail_after(void **st) {
    (void)st;
    slm_err e = {0};
    void *a = NULL, *b = NULL;
    slm_mem_fail_after(1);
    assert_int_equal(slm_alloc(&a, 16, &e, "first"), SLM_OK);
    assert_int_equal(slm_alloc(&b, 3u << 30, &e, "f32 copy of 'w'"), SLM_E_NOMEM);
    slm_mem_fail_after(-1);
    assert_null(b);
    assert_string_equal(e.msg, "allocating 3.00 GiB for f32 copy of 'w': out of memory");
    slm_free(a);
}

/* Independent reference: exact value of a half, then nearest-even rounding by search. */
static double half_value(uint16_t h) {
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return (h & 0x8000) ? -v : v;
}

static void test_f16_all_patterns(void **st) {
    (void)st;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = slm_f16_to_f32((uint16_t)h);
        int e = (h >> 10) & 31, m = h & 1023;
        if (e == 31 && m) { /* NaN: sign and payload kept, quiet bit set */
            assert_int_equal(fbits(f), ((h & 0x8000u) << 16) | 0x7fc00000u | ((uint32_t)m << 13));
            assert_int_equal(slm_f32_to_f16(f), (h & 0x8000u) | 0x7e00u);
            continue;
        }
        if (e == 31) assert_true(isinf(f));
        else assert_true((double)f == half_value((uint16_t)h));
        assert_int_equal(slm_f32_to_f16(f), h); /* exact values round-trip */
        /* midpoint to the next half rounds to even */
        if (e < 30 || (e == 30 && m < 1023)) {
            uint16_t n = (uint16_t)(h + 1);
            if ((h & 0x7fff) == 0x7bff) continue;
            double mid = (half_value((uint16_t)h) + half_value(n)) / 2;
            float fm = (float)mid;
            if ((double)fm != mid) continue; /* midpoint not representable in f32 */
            uint16_t want = (h & 1) ? n : (uint16_t)h;
            assert_int_equal(slm_f32_to_f16(fm), want);
        }
    }
    assert_int_equal(slm_f32_to_f16(65519.99f), 0x7bff);
    assert_int_equal(slm_f32_to_f16(65520.0f), 0x7c00);
    assert_int_equal(slm_f32_to_f16(-INFINITY), 0xfc00);
    assert_int_equal(slm_f32_to_f16(bitsf(0x00000001u)), 0x0000); /* f32 subnormal -> +0 */
    assert_int_equal(slm_f32_to_f16(bitsf(0x80000001u)), 0x8000);
}

/* The row converter (F16C where the CPU has it) equals the scalar reference on every pattern. */
static void test_f16_row_fast_path(void **st) {
    (void)st;
    static uint16_t h[65536 + 5];
    static float a[65536 + 5], b[65536 + 5];
    for (uint32_t i = 0; i < 65536 + 5; i++) h[i] = (uint16_t)(i * 40503u);
    for (int off = 0; off < 3; off++) { /* unaligned starts and ragged tails */
        slm_f16_to_f32_row(a, h + off, 65536 + 2 - off);
        slm_f16_to_f32_row_ref(b, h + off, 65536 + 2 - off);
        expect_bytes_equal("f16 row fast vs ref", a, b, (size_t)(65536 + 2 - off) * 4);
    }
}

/* F16C's f32 -> f16 (and AVX2's bf16 -> f32) equal the scalar conversion: 2^22 spread bit
   patterns (NaNs, infinities, subnormals, halfway cases among them), unaligned starts and
   ragged tails. (All 2^32 patterns were compared once, when the fast path came.) */
static void test_f32_to_f16_row_fast_path(void **st) {
    (void)st;
    enum { N = 1 << 22 };
    uint32_t *u = malloc(sizeof(uint32_t) * (N + 3));
    uint16_t *a = malloc(2 * (N + 3)), *b = malloc(2 * (N + 3));
    assert_true(u && a && b);
    for (uint32_t i = 0; i < N + 3; i++) u[i] = i * 2654435761u ^ (i >> 7);
    for (uint32_t i = 0; i < 65536; i++) u[i] = 0x33000000u + i * 16u; /* around f16's smallest subnormal and up */
    for (int off = 0; off < 3; off++) {
        slm_f32_to_f16_row(a, (const float *)(u + off), N + 2 - off);
        slm_f32_to_f16_row_ref(b, (const float *)(u + off), N + 2 - off);
        expect_bytes_equal("f32 -> f16 row fast vs ref", a, b, (size_t)(N + 2 - off) * 2);
    }
    static float fa[65536], fb[65536];
    static uint16_t h[65536];
    for (uint32_t i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    slm_bf16_to_f32_row(fa, h, 65536);
    for (uint32_t i = 0; i < 65536; i++) fb[i] = slm_bf16_to_f32((uint16_t)i);
    expect_bytes_equal("bf16 -> f32 row fast vs scalar", fa, fb, sizeof fa);
    free(u);
    free(a);
    free(b);
}

static void test_bf16_all_patterns(void **st) {
    (void)st;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = slm_bf16_to_f32((uint16_t)h);
        assert_int_equal(fbits(f), h << 16);
        uint16_t back = slm_f32_to_bf16(f);
        if ((h & 0x7f80) == 0x7f80 && (h & 0x7f)) assert_int_equal(back, h | 0x40); /* NaN quieted */
        else assert_int_equal(back, h);
    }
    assert_int_equal(slm_f32_to_bf16(bitsf(0x3f808000u)), 0x3f80); /* tie to even (down) */
    assert_int_equal(slm_f32_to_bf16(bitsf(0x3f818000u)), 0x3f82); /* tie to even (up) */
    assert_int_equal(slm_f32_to_bf16(bitsf(0x7f7fffffu)), 0x7f80); /* FLT_MAX -> inf */
}

/* ggml-made vectors: every input converts to the exact bytes, and back to the exact floats. */
static void check_golden_half(const char *type, const char *names[], int n) {
    for (int c = 0; c < n; c++) {
        char rel[256];
        size_t ni, nb, nd;
        snprintf(rel, sizeof rel, "%s/%s.input.f32", type, names[c]);
        float *in = read_whole_file(golden_path(rel), &ni);
        snprintf(rel, sizeof rel, "%s/%s.blocks.bin", type, names[c]);
        uint8_t *blk = read_whole_file(golden_path(rel), &nb);
        snprintf(rel, sizeof rel, "%s/%s.dequant.f32", type, names[c]);
        float *dq = read_whole_file(golden_path(rel), &nd);
        int64_t count = (int64_t)(ni / 4);
        assert_int_equal(nb, (size_t)count * 2);
        assert_int_equal(nd, ni);
        uint8_t *mine = malloc(nb);
        float *back = malloc(nd);
        if (!strcmp(type, "F16")) {
            slm_f32_to_f16_row(mine, in, count);
            slm_f16_to_f32_row(back, blk, count);
        } else {
            slm_f32_to_bf16_row(mine, in, count);
            slm_bf16_to_f32_row(back, blk, count);
        }
        expect_bytes_equal(rel, mine, blk, nb);
        expect_bytes_equal(rel, back, dq, nd);
        free(mine); free(back); free(in); free(blk); free(dq);
    }
}

static void list_cases(const char *type, char names[][128], int *n) {
    char *m = read_whole_file(golden_path("manifest.json"), NULL);
    char key[64];
    snprintf(key, sizeof key, "\"id\": \"%s/", type);
    *n = 0;
    for (char *p = strstr(m, key); p; p = strstr(p + 1, key)) {
        p += strlen(key);
        char *q = strchr(p, '"');
        snprintf(names[*n], 128, "%.*s", (int)(q - p), p);
        (*n)++;
    }
    free(m);
}

static void test_half_golden(void **st) {
    (void)st;
    const char *types[] = {"F16", "BF16"};
    for (int t = 0; t < 2; t++) {
        char names[64][128];
        const char *ptrs[64];
        int n = 0, m = 0;
        list_cases(types[t], names, &n);
        assert_true(n >= 3);
        for (int i = 0; i < n; i++) {
            char rel[256];
            snprintf(rel, sizeof rel, "%s/%s.input.f32", types[t], names[i]);
            char full[4096];
            snprintf(full, sizeof full, "%s/%s", getenv("SLM_GOLDEN") ? getenv("SLM_GOLDEN") : "../shared/golden", rel);
            if (file_exists(full)) ptrs[m++] = names[i]; /* all_bit_patterns has no input file */
        }
        assert_true(m >= 3);
        check_golden_half(types[t], ptrs, m);
    }
}

static void test_dtype_traits(void **st) {
    (void)st;
    assert_int_equal(slm_dtype_from_name("q4_k"), SLM_DTYPE_Q4_K);
    assert_int_equal(slm_dtype_from_name("BF16"), SLM_DTYPE_BF16);
    assert_int_equal(slm_dtype_from_name("Q4_2"), -1);
    assert_null(slm_dtype_get(4));
    assert_int_equal(slm_dtype_row_size(SLM_DTYPE_Q4_K, 512), 288);
    assert_int_equal(slm_dtype_row_size(SLM_DTYPE_Q4_K, 320), 0);
    assert_int_equal(slm_dtype_row_size(SLM_DTYPE_F16, 3), 6);
}

static void test_shape_overflow(void **st) {
    (void)st;
    slm_err e = {0};
    int64_t n;
    int64_t big[3] = {INT64_MAX / 2, 3, 1};
    assert_int_equal(slm_shape_nelem(big, 3, &n, &e), SLM_E_FORMAT);
    assert_string_equal(e.msg, "element count overflows");
    int64_t ok[2] = {172, 64};
    assert_int_equal(slm_shape_nelem(ok, 2, &n, &e), SLM_OK);
    assert_int_equal(n, 172 * 64);
}

/* Entries of folder dir whose names start with prefix. */
static int count_prefix(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += !strncmp(e->d_name, prefix, strlen(prefix));
    if (d) closedir(d);
    return n;
}

static const char *dir_of(const char *path) {
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    char *sl = strrchr(buf, '/');
    if (sl) *sl = 0;
    return buf;
}

static void test_afile_commit_and_abort(void **st) {
    (void)st;
    slm_err e = {0};
    const char *p = tmp_path("a.bin");
    slm_afile f;
    assert_int_equal(slm_afile_open(&f, p, &e), SLM_OK);
    assert_int_equal(slm_afile_write(&f, "abc", 3, &e), SLM_OK);
    assert_int_equal(slm_afile_pad(&f, 8, &e), SLM_OK);
    assert_false(file_exists(p)); /* nothing under the final name before commit */
    assert_int_equal(count_prefix(dir_of(p), ".a.bin.slm-"), f.tmp_path ? 1 : 0); /* unnamed (O_TMPFILE): none */
    assert_int_equal(slm_afile_commit(&f, &e), SLM_OK);
    size_t n;
    char *d = read_whole_file(p, &n);
    assert_int_equal(n, 8);
    assert_memory_equal(d, "abc\0\0\0\0\0", 8);
    free(d);
    /* abort leaves the old file and no temp */
    assert_int_equal(slm_afile_open(&f, p, &e), SLM_OK);
    assert_int_equal(slm_afile_write(&f, "zzzz", 4, &e), SLM_OK);
    slm_afile_abort(&f);
    assert_int_equal(count_prefix(dir_of(p), ".a.bin.slm-"), 0);
    d = read_whole_file(p, &n);
    assert_int_equal(n, 8);
    free(d);
    slm_afile zero;
    memset(&zero, 0, sizeof zero);
    slm_afile_abort(&zero); /* safe on a zeroed struct */
}

/* Outputs of several buffers: the writer thread takes full buffers (O_DIRECT where the file
   system allows it, buffered on tmpfs, which refuses it), the tail goes buffered; the bytes
   read back are the bytes written, pieces crossing buffer boundaries. */
static void afile_big_roundtrip(const char *p) {
    slm_err e = {0};
    const size_t n = ((size_t)5 << 20) + 12345;
    uint8_t *data = malloc(n);
    assert_non_null(data);
    for (size_t i = 0; i < n; i++) data[i] = (uint8_t)(i * 2654435761u >> 13);
    slm_afile f;
    assert_int_equal(slm_afile_open(&f, p, &e), SLM_OK);
    for (size_t off = 0, k = 1; off < n; off += k, k = k * 3 + 7) {
        if (k > n - off) k = n - off;
        assert_int_equal(slm_afile_write(&f, data + off, k, &e), SLM_OK);
    }
    assert_int_equal(slm_afile_commit(&f, &e), SLM_OK);
    size_t m;
    char *d = read_whole_file(p, &m);
    assert_int_equal(m, n);
    assert_memory_equal(d, data, n);
    free(d);
    free(data);
    unlink(p);
}

static void test_afile_big(void **st) {
    (void)st;
    afile_big_roundtrip(tmp_path("big.bin"));
    struct stat sb;
    if (stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) && access("/dev/shm", W_OK) == 0) {
        char p[64];
        snprintf(p, sizeof p, "/dev/shm/slm-test-big-%ld.bin", (long)getpid());
        afile_big_roundtrip(p);
    }
}

/* Every task runs exactly once per run, for any number of threads, over many short runs
   (workers that wake after a run ended must not run its tasks again). */
typedef struct pool_ctx { int *count; int64_t *sum; } pool_ctx;
static void pool_task(void *ctx, int64_t k, int thread) {
    pool_ctx *c = ctx;
    __atomic_fetch_add(&c->count[k], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(c->sum, k * 3 + thread * 0, __ATOMIC_RELAXED);
}

static void test_pool(void **st) {
    (void)st;
    for (int nth = 0; nth <= 4; nth++) {
        slm_pool *p = slm_pool_create(nth);
        assert_int_equal(slm_pool_threads(p), nth < 1 ? 1 : nth);
        int count[37];
        int64_t sum;
        for (int run = 0; run < 300; run++) {
            const int64_t n = run % 37 + 1 - (run % 5 == 0); /* 0 .. 37 tasks */
            memset(count, 0, sizeof count);
            sum = 0;
            pool_ctx c = {count, &sum};
            slm_pool_run(p, n, pool_task, &c);
            for (int64_t k = 0; k < n; k++) assert_int_equal(count[k], 1);
            assert_int_equal(sum, 3 * n * (n - 1) / 2);
        }
        slm_pool_free(p);
    }
    slm_pool_run(NULL, 3, pool_task, &(pool_ctx){(int[3]){0}, &(int64_t){0}});
    slm_pool_free(NULL);
}

/* Without SLM_AFILE_REPLACE an existing file is refused at open, and a file that appears
   between open and commit (another run racing for the path) makes the commit fail: it is
   never replaced (link, not a check-then-write). */
static void test_afile_exclusive(void **st) {
    (void)st;
    slm_err e = {0};
    const char *p = tmp_path("x.bin");
    unlink(p);
    slm_afile f, g;
    assert_int_equal(slm_afile_open_flags(&f, p, 0, &e), SLM_OK);
    assert_int_equal(slm_afile_open_flags(&g, p, 0, &e), SLM_OK);
    assert_int_equal(slm_afile_write(&f, "first", 5, &e), SLM_OK);
    assert_int_equal(slm_afile_write(&g, "second", 6, &e), SLM_OK);
    assert_int_equal(slm_afile_commit(&f, &e), SLM_OK);
    assert_int_equal(slm_afile_commit(&g, &e), SLM_E_IO);
    assert_non_null(strstr(e.msg, "already exists (another process wrote it meanwhile)"));
    size_t n;
    char *d = read_whole_file(p, &n);
    assert_int_equal(n, 5);
    free(d);
    assert_int_equal(slm_afile_open_flags(&f, p, 0, &e), SLM_E_ARG);
    assert_non_null(strstr(e.msg, "already exists (use -f to overwrite)"));
    assert_int_equal(count_prefix(dir_of(p), ".x.bin.slm-"), 0);
}

/* Folders, FIFOs and devices are never replaced, even with -f; a named temp of a dead
   process is removed by the next open of the same output. */
static void test_afile_special_and_stale(void **st) {
    (void)st;
    slm_err e = {0};
    slm_afile f;
    const char *fifo = tmp_path("fifo");
    unlink(fifo);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(slm_afile_open(&f, fifo, &e), SLM_E_ARG);
    assert_non_null(strstr(e.msg, "not a regular file"));
    assert_int_equal(slm_afile_open(&f, "/dev/null", &e), SLM_E_ARG);
    assert_int_equal(slm_afile_open(&f, dir_of(fifo), &e), SLM_E_ARG);
    assert_non_null(strstr(e.msg, "is a folder"));
    char stale[4200], live[4200];
    const char *p = tmp_path("s.bin");
    snprintf(stale, sizeof stale, "%s/.s.bin.slm-%d-abcdef", dir_of(p), 999999999); /* no such pid */
    snprintf(live, sizeof live, "%s/.s.bin.slm-%d-abcdef", dir_of(p), (int)getppid()); /* alive */
    write_whole_file(stale, "x", 1);
    write_whole_file(live, "x", 1);
    assert_int_equal(slm_afile_open(&f, p, &e), SLM_OK);
    slm_afile_abort(&f);
    assert_false(file_exists(stale));
    assert_true(file_exists(live));
    unlink(live);
}

static void test_afile_bad_dir(void **st) {
    (void)st;
    slm_err e = {0};
    slm_afile f;
    assert_int_equal(slm_afile_open(&f, "/nonexistent-dir/x.gguf", &e), SLM_E_IO);
    assert_non_null(strstr(e.msg, "/nonexistent-dir/x.gguf: cannot create a file in '/nonexistent-dir'"));
}

/* A set commits all its files or leaves none: a failing commit removes the files it had put
   in place, and the folders it created. */
static void test_outset_all_or_nothing(void **st) {
    (void)st;
    slm_err e = {0};
    slm_outset os;
    char dir[4200], a[4300], b[4300];
    snprintf(dir, sizeof dir, "%s/new/deeper", dir_of(tmp_path("o")));
    snprintf(a, sizeof a, "%s/a.txt", dir);
    snprintf(b, sizeof b, "%s/b.txt", dir);
    slm_outset_init(&os, 0);
    assert_int_equal(slm_outset_mkdir(&os, dir, &e), SLM_OK);
    assert_int_equal(slm_outset_write_file(&os, a, "a", 1, &e), SLM_OK);
    assert_int_equal(slm_outset_write_file(&os, b, "b", 1, &e), SLM_OK);
    write_whole_file(b, "someone else", 12); /* b appears before the commit: the set fails */
    assert_int_equal(slm_outset_commit(&os, &e), SLM_E_IO);
    assert_false(file_exists(a)); /* a was put in place, then removed */
    unlink(b);
    assert_int_equal(count_prefix(dir, ".a.txt.slm-") + count_prefix(dir, ".b.txt.slm-"), 0);
    slm_outset_init(&os, 0);
    assert_int_equal(slm_outset_mkdir(&os, dir, &e), SLM_OK);
    assert_int_equal(slm_outset_write_file(&os, a, "a", 1, &e), SLM_OK);
    slm_outset_abort(&os);
    assert_false(file_exists(a));
    char top[4200];
    snprintf(top, sizeof top, "%s/new2", dir_of(tmp_path("o")));
    slm_outset_init(&os, 0);
    assert_int_equal(slm_outset_mkdir(&os, top, &e), SLM_OK);
    slm_outset_abort(&os);
    assert_false(file_exists(top)); /* the folder it made is gone */
}

/* The output-path rules. */
static void test_output_check(void **st) {
    (void)st;
    slm_err e = {0};
    const char *in = tmp_path("in.gguf"), *other = tmp_path("other.gguf");
    write_whole_file(in, "x", 1);
    const char *ins[] = {in, fixture_path("models/stories260K")};
    char cfg[4096];
    snprintf(cfg, sizeof cfg, "%s/config.json", fixture_path("models/stories260K"));
    unlink(other);
    assert_int_equal(slm_output_check(other, ins, 2, NULL, 0, 0, &e), SLM_OK);
    assert_int_equal(slm_output_check("-", ins, 2, NULL, 0, 1, &e), SLM_E_ARG);
    assert_non_null(strstr(e.msg, "never a stream"));
    assert_int_equal(slm_output_check(in, ins, 2, NULL, 0, 1, &e), SLM_E_ARG);
    assert_non_null(strstr(e.msg, "is the input"));
    assert_int_equal(slm_output_check(cfg, ins, 2, NULL, 0, 1, &e), SLM_E_ARG);
    assert_non_null(strstr(e.msg, "is a file of the model folder"));
    const char *outs[] = {other};
    assert_int_equal(slm_output_check(other, ins, 2, outs, 1, 1, &e), SLM_E_ARG);
    assert_non_null(strstr(e.msg, "given twice as an output"));
    char dangling[4200];
    snprintf(dangling, sizeof dangling, "%s", tmp_path("dangling"));
    unlink(dangling);
    assert_int_equal(symlink("/nonexistent/target", dangling), 0);
    assert_int_equal(slm_output_check(dangling, ins, 2, NULL, 0, 0, &e), SLM_E_ARG);
    assert_non_null(strstr(e.msg, "already exists (use -f to overwrite)"));
    assert_int_equal(slm_output_check("/dev/null", ins, 2, NULL, 0, 1, &e), SLM_E_ARG);
    assert_non_null(strstr(e.msg, "not a regular file"));
}

static void test_map_missing(void **st) {
    (void)st;
    slm_err e = {0};
    slm_map m;
    assert_int_equal(slm_map_open(&m, "/nonexistent/y.safetensors", &e), SLM_E_IO);
    assert_string_equal(e.msg, "/nonexistent/y.safetensors: No such file or directory");
    slm_map_close(&m);
}

static const char *name_at(const void *ctx, size_t i) { return ((const char (*)[16])ctx)[i]; }

/* The name index: every name found at its position, repeats reported with the first
   position, absent names absent, across the table's growth and after clear. */
static void test_strindex(void **st) {
    (void)st;
    enum { N = 100000 };
    char (*names)[16] = malloc(sizeof(*names) * N);
    assert_non_null(names);
    slm_strindex ix = {0};
    slm_err e = {0};
    size_t dup;
    assert_int_equal(slm_strindex_find(&ix, "x", name_at, names), SLM_STRINDEX_NONE); /* zeroed index */
    for (size_t i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "blk.%zu.w", i);
        assert_int_equal(slm_strindex_add(&ix, names[i], i, name_at, names, &dup, &e), SLM_OK);
        assert_int_equal(dup, SLM_STRINDEX_NONE);
    }
    assert_int_equal(ix.n, N);
    assert_true(ix.cap >= 2 * N && ix.cap <= 4 * N); /* SLM_STRINDEX_BYTES_PER_NAME = 4 slots x 8 */
    for (size_t i = 0; i < N; i++) assert_int_equal(slm_strindex_find(&ix, names[i], name_at, names), i);
    assert_int_equal(slm_strindex_find(&ix, "blk.100000.w", name_at, names), SLM_STRINDEX_NONE);
    assert_int_equal(slm_strindex_find(&ix, "", name_at, names), SLM_STRINDEX_NONE);
    char again[16] = "blk.4242.w";
    assert_int_equal(slm_strindex_add(&ix, again, N, name_at, names, &dup, &e), SLM_OK);
    assert_int_equal(dup, 4242);
    assert_int_equal(ix.n, N);
    slm_strindex_clear(&ix);
    assert_int_equal(slm_strindex_find(&ix, names[7], name_at, names), SLM_STRINDEX_NONE);
    slm_strindex_free(&ix);
    slm_strindex_free(&ix); /* safe twice */
    free(names);
}

/* The strict UTF-8 check: overlong forms, surrogates, values past U+10FFFF, stray and missing
   continuation bytes are invalid; slm_utf8_fix puts one U+FFFD per invalid byte. */
static void test_utf8_strict(void **st) {
    (void)st;
    static const struct { const char *s; int valid; } k[] = {
        {"", 1}, {"plain", 1}, {"caf\xc3\xa9", 1}, {"\xe2\x96\x81", 1}, {"\xf0\x9f\x98\x80", 1}, {"\xf4\x8f\xbf\xbf", 1},
        {"\xc0\xaf", 0}, {"\xe0\x80\xaf", 0}, {"\xf0\x80\x80\xaf", 0}, /* overlong '/' */
        {"\xed\xa0\x80", 0}, {"\xf4\x90\x80\x80", 0}, {"\xf8\x88\x80\x80\x80", 0},
        {"\x80", 0}, {"\xc3", 0}, {"\xe2\x96", 0}, {"a\xff" "b", 0},
    };
    for (size_t i = 0; i < SLM_ARRAY_LEN(k); i++)
        if (slm_utf8_valid(k[i].s, strlen(k[i].s)) != k[i].valid) fail_msg("case %zu: want valid=%d", i, k[i].valid);
    slm_err e = {0};
    char *f = slm_utf8_fix("a\xc3(\xed\xa0\x80\xc3\xa9", 8, &e);
    assert_string_equal(f, "a\xef\xbf\xbd(\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xc3\xa9");
    slm_free(f);
}

/* A FIFO (or any non-regular file) is refused at once instead of blocking in open(). */
static void test_map_fifo(void **st) {
    (void)st;
    slm_err e = {0};
    const char *p = tmp_path("in.fifo");
    assert_int_equal(mkfifo(p, 0600), 0);
    slm_map m;
    assert_int_equal(slm_map_open(&m, p, &e), SLM_E_IO);
    char want[4200];
    snprintf(want, sizeof want, "%s: not a regular file", p);
    assert_string_equal(e.msg, want);
    slm_map_close(&m);
}

/* FIPS 180-4 vectors (empty, "abc", the two-block message, a million 'a' fed in odd pieces) and
   a folder's hash = sha256sum's lines of its files, hashed. */
static void test_sha256(void **state) {
    (void)state;
    char h[65];
    slm_sha256 s;
    slm_sha256_init(&s);
    slm_sha256_hex(&s, h);
    assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    slm_sha256_init(&s);
    slm_sha256_update(&s, "abc", 3);
    slm_sha256_hex(&s, h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    slm_sha256_init(&s);
    slm_sha256_update(&s, two, strlen(two));
    slm_sha256_hex(&s, h);
    assert_string_equal(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    char a[1000];
    memset(a, 'a', sizeof a);
    slm_sha256_init(&s);
    for (size_t done = 0, k = 1; done < 1000000; k = k % 997 + 1) {
        size_t n = SLM_MIN(k, 1000000 - done);
        slm_sha256_update(&s, a, n);
        done += n;
    }
    slm_sha256_hex(&s, h);
    assert_string_equal(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    /* a folder: "<sha>  <name>\n" per regular file, sorted (hidden files and folders left out) */
    char dir[4096], p[4200];
    slm_err e = {0};
    snprintf(dir, sizeof dir, "%s", tmp_path("shadir"));
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/b", dir), assert_int_equal(slm_write_file_atomic(p, "abc", 3, &e), SLM_OK);
    snprintf(p, sizeof p, "%s/a", dir), assert_int_equal(slm_write_file_atomic(p, "", 0, &e), SLM_OK);
    snprintf(p, sizeof p, "%s/.hidden", dir), assert_int_equal(slm_write_file_atomic(p, "x", 1, &e), SLM_OK);
    snprintf(p, sizeof p, "%s/sub", dir), mkdir(p, 0755);
    assert_int_equal(slm_sha256_path(dir, h, &e), SLM_OK);
    const char *lines = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  a\n"
                        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  b\n";
    char want[65];
    slm_sha256_init(&s);
    slm_sha256_update(&s, lines, strlen(lines));
    slm_sha256_hex(&s, want);
    assert_string_equal(h, want);
    snprintf(p, sizeof p, "%s/b", dir);
    assert_int_equal(slm_sha256_path(p, h, &e), SLM_OK);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(slm_sha256_path(tmp_path("no-such"), h, &e), SLM_E_IO);
    snprintf(p, sizeof p, "rm -rf '%s'", dir);
    assert_int_equal(system(p), 0);
}

/* llama.cpp's ECMAScript patterns as ERE: the exact translation, and regexec agreeing with
   what std::regex_search gives on tensor names. */
static int ere_search(const char *ecma, const char *name) {
    char ere[256];
    slm_err err = {0};
    regex_t re;
    assert_int_equal(slm_ere_from_ecma(ecma, ere, sizeof ere, &err), SLM_OK);
    assert_int_equal(regcomp(&re, ere, REG_EXTENDED | REG_NOSUB), 0);
    int hit = regexec(&re, name, 0, NULL, 0) == 0;
    regfree(&re);
    return hit;
}

static void test_ecma_re(void **state) {
    (void)state;
    static const char *const tr[][2] = {
        {"blk\\.\\d+\\.attn_q", "blk\\.[0-9]+\\.attn_q"},
        {"blk\\.(?:0|1)\\.ffn_(?:up|down)", "blk\\.(0|1)\\.ffn_(up|down)"},
        {"\\w+_norm", "[A-Za-z0-9_]+_norm"},
        {"a\\sb\\S", "a[ \t\n\r\f\v]b[^ \t\n\r\f\v]"},
        {"[\\d.]+", "[0-9.]+"},
        {"[^\\w]", "[^A-Za-z0-9_]"},
        {"a.*?b+?c??d{1,2}?", "a.*b+c?d{1,2}"},
        {"\\/\\-\\x41\\.", "/-A\\."},
        {"[\\]a\\-]", "[]a-]"},
        {"[\\^]", "\\^"},
        {"[-a]", "[a-]"},
        {"[[:digit:]x]", "[[:digit:]x]"},
        {"[\\d-x]", "[0-9x-]"}, /* a class escape ends no range: the '-' is literal */
        {"[a-\\d]", "[a0-9-]"},
    };
    for (size_t i = 0; i < SLM_ARRAY_LEN(tr); i++) {
        char out[256];
        slm_err err = {0};
        assert_int_equal(slm_ere_from_ecma(tr[i][0], out, sizeof out, &err), SLM_OK);
        assert_string_equal(out, tr[i][1]);
    }
    assert_true(ere_search("blk\\.\\d+\\.attn_q", "blk.12.attn_q.weight"));
    assert_false(ere_search("blk\\.\\d+\\.attn_q", "blk.x.attn_q.weight"));
    assert_true(ere_search("ffn_(?:up|gate)", "blk.0.ffn_gate.weight"));
    assert_false(ere_search("^ffn", "blk.0.ffn_gate.weight")); /* search, but anchors hold */
    static const char *const bad[][2] = {
        {"attn(?=_q)", "lookahead"},  {"(?<!x)attn", "lookbehind"}, {"\\battn", "word boundary"},
        {"(a)\\1", "backreference"},  {"\\q", "unknown escape"},    {"a{x}", "{n}"},
        {"[\\D]", "negated class"},   {"[]", "empty class"},        {"[abc", "unterminated"},
        {"(?<n>a)", "named group"},
    };
    for (size_t i = 0; i < SLM_ARRAY_LEN(bad); i++) {
        char out[256];
        slm_err err = {0};
        assert_int_equal(slm_ere_from_ecma(bad[i][0], out, sizeof out, &err), SLM_E_ARG);
        assert_non_null(strstr(err.msg, bad[i][1]));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strindex),
        cmocka_unit_test(test_err_prefix_keeps_code),
        cmocka_unit_test(test_mem_fail_after),
        cmocka_unit_test(test_f16_all_patterns),
        cmocka_unit_test(test_f16_row_fast_path),
        cmocka_unit_test(test_f32_to_f16_row_fast_path),
        cmocka_unit_test(test_bf16_all_patterns),
        cmocka_unit_test(test_half_golden),
        cmocka_unit_test(test_dtype_traits),
        cmocka_unit_test(test_shape_overflow),
        cmocka_unit_test(test_afile_commit_and_abort),
        cmocka_unit_test(test_afile_bad_dir),
        cmocka_unit_test(test_afile_big),
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_afile_exclusive),
        cmocka_unit_test(test_afile_special_and_stale),
        cmocka_unit_test(test_outset_all_or_nothing),
        cmocka_unit_test(test_output_check),
        cmocka_unit_test(test_map_missing),
        cmocka_unit_test(test_map_fifo),
        cmocka_unit_test(test_utf8_strict),
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_ecma_re),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
