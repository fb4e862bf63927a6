/* test_quants.c - quant kernels: bit-exactness against ggml's own output (../shared/golden,
 * every case of the manifest for the 12 block types, with and without importance weights,
 * blocks and dequantized floats), dequantize(quantize(x)) error bounds, identical bytes for
 * any thread count, and the fast (AVX2) paths against the scalar reference on random data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "quantize/qtypes.h"
#include "core/rng.h"
#include "core/slm.h"
#include "core/thread.h"
#include "quantize/quants.h"
#include "quantize/quantize.h"
#include "tests/testutil.h"

typedef void (*row_ref_fn)(const float *restrict x, void *restrict y, int64_t k);

/* The 12 block types the golden set covers, with their canonical scalar reference. */
typedef struct qtype {
    const char *name; /* manifest "type" */
    int type;
    row_ref_fn ref;
} qtype;

static const qtype k_types[] = {
    {"Q4_0", SLM_DTYPE_Q4_0, slm_quantize_row_q4_0_ref},
    {"Q4_1", SLM_DTYPE_Q4_1, slm_quantize_row_q4_1_ref},
    {"Q5_0", SLM_DTYPE_Q5_0, slm_quantize_row_q5_0_ref},
    {"Q5_1", SLM_DTYPE_Q5_1, slm_quantize_row_q5_1_ref},
    {"Q8_0", SLM_DTYPE_Q8_0, slm_quantize_row_q8_0_ref},
    {"Q2_K", SLM_DTYPE_Q2_K, slm_quantize_row_q2_K_ref},
    {"Q3_K", SLM_DTYPE_Q3_K, slm_quantize_row_q3_K_ref},
    {"Q4_K", SLM_DTYPE_Q4_K, slm_quantize_row_q4_K_ref},
    {"Q5_K", SLM_DTYPE_Q5_K, slm_quantize_row_q5_K_ref},
    {"Q6_K", SLM_DTYPE_Q6_K, slm_quantize_row_q6_K_ref},
    {"IQ4_NL", SLM_DTYPE_IQ4_NL, slm_quantize_row_iq4_nl_ref},
    {"IQ4_XS", SLM_DTYPE_IQ4_XS, slm_quantize_row_iq4_xs_ref},
};
#define N_TYPES ((int)(sizeof k_types / sizeof k_types[0]))

/* At most this many mismatch reports per case and kind, so a broken kernel stays readable. */
#define MAX_REPORTS 3

static size_t row_bytes(int type, int64_t n) {
    size_t b = slm_dtype_row_size(type, n);
    assert_true(b > 0);
    return b;
}

static void hex(char *out, const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", p[i]);
}

/* Compares one row of blocks; prints the first differing block. Returns 1 on mismatch. */
static int check_row_blocks(const char *what, const char *case_id, int64_t row, int type, const uint8_t *got,
                            const uint8_t *want, size_t nbytes, int *reports) {
    if (!memcmp(got, want, nbytes)) return 0;
    const size_t bb = slm_dtype_get(type)->type_size;
    size_t ib = 0;
    while (!memcmp(got + ib * bb, want + ib * bb, bb)) ib++;
    if ((*reports)++ < MAX_REPORTS) {
        char e[2 * 256 + 1], a[2 * 256 + 1];
        hex(e, want + ib * bb, bb);
        hex(a, got + ib * bb, bb);
        print_error("%s %s: %s row %lld block %zu differs\n  expected %s\n  actual   %s\n", slm_dtype_name(type),
                    case_id, what, (long long)row, ib, e, a);
    }
    return 1;
}

/* Compares floats as bit patterns (-0.0, inf and NaN bits matter). Returns 1 on mismatch. */
static int check_floats(const char *what, const char *case_id, const float *got, const float *want, int64_t n) {
    if (!memcmp(got, want, (size_t)n * sizeof(float))) return 0;
    int64_t i = 0;
    while (!memcmp(&got[i], &want[i], sizeof(float))) i++;
    uint32_t g, w;
    memcpy(&g, &got[i], 4);
    memcpy(&w, &want[i], 4);
    print_error("%s: %s: float %lld differs: expected %.9g (0x%08x) actual %.9g (0x%08x)\n", case_id, what,
                (long long)i, want[i], w, got[i], g);
    return 1;
}

/* ---------------------------------------------------------------------------- manifest */

/* An integral JSON number in [0, 2^53] (cJSON's valueint saturates; see STYLE E). */
static int64_t json_int(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v)) fail_msg("manifest: '%s' missing or not a number", key);
    double d = v->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != floor(d)) fail_msg("manifest: '%s' = %g is not a count", key, d);
    return (int64_t)d;
}

static const char *json_str(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static cJSON *load_manifest(void) {
    size_t n;
    char *text = read_whole_file(golden_path("manifest.json"), &n);
    cJSON *m = cJSON_ParseWithLength(text, n);
    free(text);
    if (!m) fail_msg("manifest.json: not valid JSON");
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(m, "cases");
    assert_true(cJSON_IsArray(cases));
    assert_int_equal(cJSON_GetArraySize(cases), json_int(m, "n_cases"));
    return m;
}

/* Reads the golden file of `kind` for a case; checks its size. NULL if the case has none. */
static void *read_kind(const cJSON *c, const char *kind, size_t want_bytes) {
    const char *rel = json_str(cJSON_GetObjectItemCaseSensitive(c, "files"), kind);
    if (!rel) return NULL;
    size_t n;
    void *p = read_whole_file(golden_path(rel), &n);
    if (n != want_bytes) fail_msg("%s: %zu bytes, expected %zu", rel, n, want_bytes);
    return p;
}

/* ------------------------------------------------------------------------ golden cases */

/* One manifest case: quantize every row (with and without weights, dispatch and _ref) and
 * the whole matrix threaded; dequantize ggml's blocks. Returns the number of failed checks. */
static int check_golden_case(const qtype *t, const cJSON *c) {
    const char *id = json_str(c, "id");
    const int64_t nrows = json_int(c, "nrows"), n = json_int(c, "n_per_row");
    assert_int_equal(json_int(c, "ggml_type"), t->type);
    const size_t rb = row_bytes(t->type, n);
    assert_int_equal(json_int(c, "bytes_per_row"), rb);
    const size_t nf = (size_t)(nrows * n) * sizeof(float), nq = (size_t)nrows * rb;

    float *x = read_kind(c, "input", nf);
    float *w = read_kind(c, "weights", (size_t)n * sizeof(float));
    uint8_t *blocks = read_kind(c, "blocks", nq);
    uint8_t *blocks_im = read_kind(c, "blocks_imatrix", nq);
    float *dq = read_kind(c, "dequant", nf);
    float *dq_im = read_kind(c, "dequant_imatrix", nf);
    uint8_t *blocks_ref = read_kind(c, "blocks_ref", nq);
    float *dq_ref = read_kind(c, "dequant_ref", nf);
    assert_non_null(x);
    assert_non_null(w);
    assert_non_null(blocks);
    assert_non_null(blocks_im);
    assert_non_null(dq);
    assert_non_null(dq_im);
    /* _ref equals blocks except for IQ4_NL, whose _ref has its own file (or none: "undefined",
     * ggml packs uninitialized codes for all-zero blocks there). */
    const char *ffr = json_str(c, "from_float_ref");
    const uint8_t *want_ref = NULL;
    if (ffr && !strcmp(ffr, "equal")) want_ref = blocks;
    if (ffr && !strcmp(ffr, "differs")) {
        assert_non_null(blocks_ref);
        want_ref = blocks_ref;
    }
    if (!want_ref && !(ffr && !strcmp(ffr, "undefined") && t->type == SLM_DTYPE_IQ4_NL))
        fail_msg("%s: from_float_ref '%s' not understood", id, ffr ? ffr : "(missing)");

    uint8_t *q = malloc(nq);
    float *y = malloc(nf);
    assert_non_null(q);
    assert_non_null(y);
    int bad = 0, rep_plain = 0, rep_im = 0, rep_ref = 0;
    for (int64_t r = 0; r < nrows; r++) {
        const float *xr = x + r * n;
        assert_int_equal(slm_quantize_chunk(t->type, xr, q, 1, n, NULL), rb);
        bad += check_row_blocks("blocks (slm_quantize_chunk, no imatrix)", id, r, t->type, q, blocks + r * rb, rb,
                                &rep_plain);
        assert_int_equal(slm_quantize_chunk(t->type, xr, q, 1, n, w), rb);
        bad +=
            check_row_blocks("blocks_imatrix (slm_quantize_chunk)", id, r, t->type, q, blocks_im + r * rb, rb, &rep_im);
        /* the scalar reference path too, where slm_quantize_chunk takes a faster kernel */
        slm_quantize_chunk_kernel(t->type, SLM_KERNEL_REF, xr, q, 1, n, NULL);
        bad +=
            check_row_blocks("blocks (scalar kernel, no imatrix)", id, r, t->type, q, blocks + r * rb, rb, &rep_plain);
        slm_quantize_chunk_kernel(t->type, SLM_KERNEL_REF, xr, q, 1, n, w);
        bad += check_row_blocks("blocks_imatrix (scalar kernel)", id, r, t->type, q, blocks_im + r * rb, rb, &rep_im);
        if (want_ref) {
            t->ref(xr, q, n);
            bad += check_row_blocks("_ref", id, r, t->type, q, want_ref + r * rb, rb, &rep_ref);
        }
    }
    /* whole matrix at once, through the threaded driver `slm quantize` uses */
    slm_err qe = {0};
    assert_int_equal(slm_quantize_tensor(t->type, x, nrows, n, NULL, q, NULL, &qe), SLM_OK);
    for (int64_t r = 0; r < nrows; r++)
        bad += check_row_blocks("blocks (slm_quantize_tensor)", id, r, t->type, q + r * rb, blocks + r * rb, rb,
                                &rep_plain);
    assert_int_equal(slm_quantize_tensor(t->type, x, nrows, n, w, q, NULL, &qe), SLM_OK);
    for (int64_t r = 0; r < nrows; r++)
        bad += check_row_blocks("blocks_imatrix (slm_quantize_tensor)", id, r, t->type, q + r * rb, blocks_im + r * rb,
                                rb, &rep_im);

    /* dequantize ggml's bytes, not ours: a quantizer bug must not hide a dequantizer bug */
    slm_dequantize_rows(t->type, blocks, y, nrows, n);
    bad += check_floats("dequant", id, y, dq, nrows * n);
    slm_dequantize_rows(t->type, blocks_im, y, nrows, n);
    bad += check_floats("dequant_imatrix", id, y, dq_im, nrows * n);
    if (blocks_ref) {
        assert_non_null(dq_ref);
        slm_dequantize_rows(t->type, blocks_ref, y, nrows, n);
        bad += check_floats("dequant_ref", id, y, dq_ref, nrows * n);
    }
    free(q);
    free(y);
    free(x);
    free(w);
    free(blocks);
    free(blocks_im);
    free(dq);
    free(dq_im);
    free(blocks_ref);
    free(dq_ref);
    return bad;
}

static void test_quants_golden(void **state) {
    const qtype *t = *state;
    cJSON *m = load_manifest();
    const cJSON *c;
    int expected = 0, checked = 0, failed = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(m, "cases")) {
        const char *type = json_str(c, "type");
        if (!type || strcmp(type, t->name)) continue;
        expected++;
        int bad = check_golden_case(t, c);
        failed += bad > 0;
        checked++;
    }
    cJSON_Delete(m);
    if (expected == 0) fail_msg("%s: no golden cases in the manifest", t->name);
    assert_int_equal(checked, expected); /* no silent skips */
    if (failed) fail_msg("%s: %d of %d golden cases differ", t->name, failed, checked);
}

/* Every manifest case is one of the 12 block types (checked above, type by type) or a
 * half-precision conversion case (checked below and in test_core): nothing goes unchecked. */
static void test_quants_golden_covers_manifest(void **state) {
    (void)state;
    cJSON *m = load_manifest();
    const cJSON *c;
    int n_block = 0, n_half = 0, n_all = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(m, "cases")) {
        const char *type = json_str(c, "type");
        assert_non_null(type);
        n_all++;
        int known = 0;
        for (int i = 0; i < N_TYPES; i++) known |= !strcmp(type, k_types[i].name);
        if (known) {
            n_block++;
        } else if (!strcmp(type, "F16") || !strcmp(type, "BF16")) {
            n_half++;
        } else {
            fail_msg("manifest case %s has type %s, which no test checks", json_str(c, "id"), type);
        }
    }
    assert_int_equal(n_all, json_int(m, "n_cases"));
    assert_int_equal(n_block + n_half, n_all);
    print_message("golden: %d block-type cases over %d types, %d F16/BF16 cases\n", n_block, N_TYPES, n_half);
    cJSON_Delete(m);
}

/* The type table writes exactly the 12 block types, F32/F16/BF16 and the 7 lattice types of
   test_iq.c, and reads those plus Q8_K (an activation type). */
static void test_quants_supported_types(void **state) {
    (void)state;
    int n_yes = 0;
    for (int type = -1; type <= SLM_DTYPE_COUNT; type++) {
        const int q = slm_dtype_can_write(type), d = slm_dtype_can_read(type);
        assert_int_equal(q || type == SLM_DTYPE_Q8_K, d);
        n_yes += q;
    }
    assert_int_equal(n_yes, N_TYPES + 3 + 7); /* + the seven lattice types, checked in test_iq.c */
    char names[256];
    assert_string_equal(slm_dtype_list_writable(names, sizeof names),
                        "F32 F16 BF16 Q8_0 Q6_K Q5_1 Q5_0 Q5_K Q4_1 Q4_0 Q4_K IQ4_NL IQ4_XS Q3_K IQ3_S IQ3_XXS Q2_K IQ2_S "
                        "IQ2_XS IQ2_XXS IQ1_M IQ1_S");
    for (int i = 0; i < N_TYPES; i++) assert_true(slm_dtype_can_write(k_types[i].type));
    assert_true(slm_dtype_can_write(SLM_DTYPE_F32) && slm_dtype_can_write(SLM_DTYPE_F16) &&
                slm_dtype_can_write(SLM_DTYPE_BF16));
    assert_false(slm_dtype_can_write(SLM_DTYPE_Q8_1) || slm_dtype_can_write(SLM_DTYPE_TQ1_0) ||
                 slm_dtype_can_write(SLM_DTYPE_Q8_K) || slm_dtype_can_write(4 /* removed Q4_2 */));
}

/* F16/BF16 through the dispatch (slm_quantize_chunk / slm_dequantize_rows). */
static void test_quants_golden_half_dispatch(void **state) {
    (void)state;
    cJSON *m = load_manifest();
    const cJSON *c;
    int checked = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(m, "cases")) {
        const char *type = json_str(c, "type");
        int dt = !strcmp(type, "F16") ? SLM_DTYPE_F16 : !strcmp(type, "BF16") ? SLM_DTYPE_BF16 : -1;
        if (dt < 0 || !json_str(cJSON_GetObjectItemCaseSensitive(c, "files"), "input")) continue;
        const int64_t nrows = json_int(c, "nrows"), n = json_int(c, "n_per_row");
        const size_t nf = (size_t)(nrows * n) * 4, nq = (size_t)(nrows * n) * 2;
        float *x = read_kind(c, "input", nf);
        uint8_t *blocks = read_kind(c, "blocks", nq);
        float *dq = read_kind(c, "dequant", nf);
        uint8_t *q = malloc(nq);
        float *y = malloc(nf);
        assert_int_equal(slm_quantize_chunk(dt, x, q, nrows, n, NULL), nq);
        expect_bytes_equal(json_str(c, "id"), q, blocks, nq);
        slm_dequantize_rows(dt, blocks, y, nrows, n);
        assert_int_equal(check_floats("dequant", json_str(c, "id"), y, dq, nrows * n), 0);
        free(x);
        free(blocks);
        free(dq);
        free(q);
        free(y);
        checked++;
    }
    assert_true(checked >= 6);
    cJSON_Delete(m);
}

/* ------------------------------------------------------------------------- properties */

/* RMSE of dequantize(quantize(x)) on x_i = 0.1 + 2 cos(i) (amplitude 2.1, std 1.41: ggml's
 * test-quantize-fns data), no importance weights. Each bound is ~1.25x the worst value measured
 * over the four lengths (SLM_TEST_VERBOSE=1 prints them); the reason is the back-of-envelope
 * uniform-error estimate step/sqrt(12) for the format's step size on this data. */
static const struct {
    int type;
    double max_rmse;
    const char *why;
} k_rmse_bounds[] = {
    {SLM_DTYPE_Q4_0, 0.100, "16 symmetric levels, step amax/8 = 0.26: step/sqrt(12) = 0.076"},
    {SLM_DTYPE_Q4_1, 0.110, "16 levels over [min, max] of 32 values, step 4.2/15 = 0.28: 0.081"},
    {SLM_DTYPE_Q5_0, 0.048, "32 symmetric levels: half the q4_0 step, 0.038"},
    {SLM_DTYPE_Q5_1, 0.045, "32 levels over [min, max]: half the q4_1 step, 0.040"},
    {SLM_DTYPE_Q8_0, 0.0062, "255 levels, step amax/127 = 0.0165: 0.0048"},
    {SLM_DTYPE_Q2_K, 0.375, "4 levels per 16 values, step ~ range/3 ~ 1: ~0.3 with fitted min"},
    {SLM_DTYPE_Q3_K, 0.200, "8 levels per 16 values, step amax/4 = 0.53: 0.15"},
    {SLM_DTYPE_Q4_K, 0.080, "16 levels per 32 values over a fitted [min, max], step ~0.22: 0.064"},
    {SLM_DTYPE_Q5_K, 0.043, "32 levels per 32 values over a fitted [min, max]: half the q4_K error"},
    {SLM_DTYPE_Q6_K, 0.021, "64 levels per 16 values, step amax/32 = 0.066: 0.019"},
    {SLM_DTYPE_IQ4_NL, 0.105, "16 non-linear levels per 32 values, coarse at the extremes: ~q4_0"},
    {SLM_DTYPE_IQ4_XS, 0.100, "iq4_nl levels with 6-bit sub-block scales: ~iq4_nl"},
};

static void cos_data(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = 0.1f + 2.0f * cosf((float)i);
}

static void test_quants_roundtrip_rmse(void **state) {
    (void)state;
    static const int64_t lengths[] = {32, 256, 1024, 4096};
    assert_int_equal(SLM_ARRAY_LEN(k_rmse_bounds), N_TYPES);
    float *x = malloc(4096 * sizeof(float)), *y = malloc(4096 * sizeof(float));
    uint8_t *q = malloc(4096 * 4);
    for (size_t t = 0; t < SLM_ARRAY_LEN(k_rmse_bounds); t++) {
        const int type = k_rmse_bounds[t].type;
        int tried = 0;
        for (size_t il = 0; il < SLM_ARRAY_LEN(lengths); il++) {
            const int64_t n = lengths[il];
            if (n % slm_dtype_get(type)->blck_size) continue; /* 32 is too short for 256-blocks */
            cos_data(x, n);
            slm_quantize_chunk(type, x, q, 1, n, NULL);
            slm_dequantize_rows(type, q, y, 1, n);
            double se = 0;
            for (int64_t i = 0; i < n; i++) se += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
            const double rmse = sqrt(se / (double)n);
            if (getenv("SLM_TEST_VERBOSE"))
                print_message("%s n=%lld rmse %.5f\n", slm_dtype_name(type), (long long)n, rmse);
            if (!(rmse <= k_rmse_bounds[t].max_rmse))
                fail_msg("%s n=%lld: rmse %.5f above %.5f (%s)", slm_dtype_name(type), (long long)n, rmse,
                         k_rmse_bounds[t].max_rmse, k_rmse_bounds[t].why);
            tried++;
        }
        assert_true(tried >= 3);
    }
    free(x);
    free(y);
    free(q);
}

/* ------------------------------------------------------------------------ determinism */

#define DET_ROWS 64
#define DET_COLS 1024

static void gaussian_rows(float *x, int64_t nrows, int64_t n, uint64_t seed) {
    slm_rng r;
    slm_rng_seed(&r, seed);
    for (int64_t i = 0; i < nrows; i++) {
        const double s = pow(10.0, 3.0 * slm_rng_uniform(&r) - 2.0); /* per-row scale 0.01..10 */
        for (int64_t j = 0; j < n; j++) x[i * n + j] = (float)(s * slm_rng_normal(&r));
    }
}

static void test_quants_threads_identical(void **state) {
    (void)state;
    static const int types[] = {SLM_DTYPE_Q4_0,   SLM_DTYPE_Q4_1,   SLM_DTYPE_Q5_0, SLM_DTYPE_Q5_1, SLM_DTYPE_Q8_0,
                                SLM_DTYPE_Q2_K,   SLM_DTYPE_Q3_K,   SLM_DTYPE_Q4_K, SLM_DTYPE_Q5_K, SLM_DTYPE_Q6_K,
                                SLM_DTYPE_IQ4_NL, SLM_DTYPE_IQ4_XS, SLM_DTYPE_F16,  SLM_DTYPE_BF16, SLM_DTYPE_F32};
    const uint64_t seed = 20240611;
    float *x = malloc(DET_ROWS * DET_COLS * sizeof(float));
    float imatrix[DET_COLS];
    gaussian_rows(x, DET_ROWS, DET_COLS, seed);
    for (int j = 0; j < DET_COLS; j++) imatrix[j] = (float)(0.01 + (j * 7919 % 1000) * 0.1);
    const size_t cap = DET_ROWS * DET_COLS * 4;
    uint8_t *serial = malloc(cap), *one = malloc(cap), *two = malloc(cap);
    float *y1 = malloc(DET_ROWS * DET_COLS * sizeof(float)), *y2 = malloc(DET_ROWS * DET_COLS * sizeof(float));
    for (size_t t = 0; t < SLM_ARRAY_LEN(types); t++) {
        for (int with_im = 0; with_im < 2; with_im++) {
            const float *im = with_im ? imatrix : NULL;
            const size_t nq = slm_quantize_chunk(types[t], x, serial, DET_ROWS, DET_COLS, im);
            slm_err e = {0};
            slm_qstats s1, s2;
            slm_threads_set(1);
            assert_int_equal(slm_quantize_tensor(types[t], x, DET_ROWS, DET_COLS, im, one, &s1, &e), SLM_OK);
            slm_threads_set(2);
            assert_int_equal(slm_quantize_tensor(types[t], x, DET_ROWS, DET_COLS, im, two, &s2, &e), SLM_OK);
            assert_memory_equal(&s1, &s2, sizeof s1); /* the error statistics do not depend on threads either */
            char what[96];
            snprintf(what, sizeof what, "%s %s imatrix, 1 thread vs serial (seed %llu)", slm_dtype_name(types[t]),
                     with_im ? "with" : "without", (unsigned long long)seed);
            expect_bytes_equal(what, one, serial, nq);
            snprintf(what, sizeof what, "%s %s imatrix, 2 threads vs serial (seed %llu)", slm_dtype_name(types[t]),
                     with_im ? "with" : "without", (unsigned long long)seed);
            expect_bytes_equal(what, two, serial, nq);
            slm_dequantize_rows(types[t], serial, y1, DET_ROWS, DET_COLS);
            slm_dequantize_rows_mt(types[t], serial, y2, DET_ROWS, DET_COLS);
            expect_bytes_equal("dequantize_rows_mt vs serial", y2, y1, DET_ROWS * DET_COLS * sizeof(float));
        }
    }
    slm_threads_set(0);
    free(x);
    free(serial);
    free(one);
    free(two);
    free(y1);
    free(y2);
}

/* ------------------------------------------------------- fast paths vs scalar reference */

/* Input families for the fast-vs-reference check: the golden distributions plus ones that
 * stress the edge branches (all-equal sub-blocks, fp16 under/overflow, non-finite values). */
enum {
    D_GAUSS,
    D_OUTLIER,
    D_POSITIVE,
    D_TINY,
    D_LARGE,
    D_DENORMAL,
    D_CONSTANT,
    D_SPARSE,
    D_NONFINITE,
    D_EXTREME,
    D_COUNT
};

static void family_data(float *x, int64_t n, int family, slm_rng *r) {
    const double s = pow(10.0, 4.0 * slm_rng_uniform(r) - 2.0);
    for (int64_t i = 0; i < n; i++) {
        double g = slm_rng_normal(r);
        double v;
        switch (family) {
        case D_GAUSS:
            v = s * g;
            break;
        case D_OUTLIER:
            v = s * g * (slm_rng_uniform(r) < 0.01 ? 25.0 : 1.0);
            break;
        case D_POSITIVE:
            v = s * fabs(g) + (i % 64 < 32 ? s : 0);
            break;
        case D_TINY:
            v = 1e-8 * g;
            break;
        case D_LARGE:
            v = 6.5e4 * tanh(g);
            break;
        case D_DENORMAL:
            v = (slm_rng_uniform(r) < 0.5 ? 1e-40 : 3e-6) * g;
            break;
        case D_CONSTANT:
            v = (i / 32) % 3 == 0 ? 0.0 : (i / 16) % 2 ? s : -s;
            break;
        case D_SPARSE:
            v = slm_rng_uniform(r) < 0.1 ? s * g : 0.0;
            break;
        case D_EXTREME: { /* whole blocks of +inf, -inf, +-FLT_MAX, signed zeros (+ subnormals), normal */
            const int kind = (int)((i / 32) % 6);
            const double sign = slm_rng_uniform(r) < 0.5 ? -1.0 : 1.0;
            v = kind == 0   ? INFINITY
                : kind == 1 ? -INFINITY
                : kind == 2 ? sign * FLT_MAX
                : kind == 3 ? sign * 0.0
                : kind == 4 ? sign * (slm_rng_uniform(r) < 0.5 ? 0.0 : 1e-44)
                            : s * g;
            break;
        }
        default: { /* D_NONFINITE: a few NaN and +-inf among normal values */
            double u = slm_rng_uniform(r);
            v = u < 0.002 ? NAN : u < 0.004 ? INFINITY : u < 0.006 ? -INFINITY : s * g;
        }
        }
        x[i] = (float)v;
    }
}

/* Importance weights over several decades (as real imatrix files), some exactly zero (columns
 * never activated), or all equal. */
static void family_weights(float *w, int64_t n, int family, slm_rng *r) {
    for (int64_t j = 0; j < n; j++) {
        const double u = slm_rng_uniform(r);
        w[j] = family % 3 == 0   ? 1.0f
               : family % 3 == 1 ? (float)exp(3.0 * slm_rng_normal(r))
               : u < 0.2         ? 0.0f
                                 : (float)u;
    }
}

/* slm_quantize_chunk's kernel (AVX2 where available) against the scalar reference path, with
 * and without importance weights, on every input family; and the _ref row functions against
 * the scalar chunk path without weights (ggml's from_float_ref == quantize_chunk, IQ4_NL aside). */
static void test_quants_fast_matches_ref(void **state) {
    (void)state;
    const int64_t nrows = 4, n_max = 1120;
    float *x = malloc(nrows * n_max * sizeof(float));
    float w[1120];
    uint8_t *a = malloc(nrows * n_max * 2), *b = malloc(nrows * n_max * 2);
    int n_fast = 0;
    for (int i = 0; i < N_TYPES; i++) {
        const qtype *t = &k_types[i];
        /* 35 blocks of 32 (kernels that take 8 blocks at a time must handle the tail), or 4 of 256 */
        const int64_t n = slm_dtype_get(t->type)->blck_size == 32 ? 1120 : 1024;
        n_fast += !strcmp(slm_quant_kernel_name(t->type), "avx2");
        for (int family = 0; family < D_COUNT; family++) {
            for (uint64_t seed = 1; seed <= 3; seed++) { /* seed % 3 picks the weight family */
                const uint64_t s = seed * 1000 + (uint64_t)family;
                slm_rng r;
                slm_rng_seed(&r, s);
                for (int64_t row = 0; row < nrows; row++) family_data(x + row * n, n, family, &r);
                family_weights(w, n, (int)seed, &r);
                char what[160];
                for (int with_im = 0; with_im < 2; with_im++) {
                    const float *im = with_im ? w : NULL;
                    const size_t nq = slm_quantize_chunk(t->type, x, a, nrows, n, im);
                    slm_quantize_chunk_kernel(t->type, SLM_KERNEL_REF, x, b, nrows, n, im);
                    snprintf(what, sizeof what, "%s %s kernel vs scalar, %s imatrix, family %d seed %llu", t->name,
                             slm_quant_kernel_name(t->type), with_im ? "with" : "no", family, (unsigned long long)s);
                    expect_bytes_equal(what, a, b, nq);
                }
            }
        }
    }
    if (slm_quant_cpu_has_avx2()) assert_int_equal(n_fast, N_TYPES); /* every block type has an AVX2 kernel */
    print_message("fast kernels checked against the scalar reference: %d types%s\n", n_fast,
                  n_fast ? "" : " (this CPU has no AVX2: nothing to compare)");
    free(x);
    free(a);
    free(b);
}

/* -------------------------------------------------------------------------------- main */

int main(void) {
    struct CMUnitTest tests[N_TYPES + 6];
    static char names[N_TYPES][48];
    int nt = 0;
    for (int i = 0; i < N_TYPES; i++) {
        snprintf(names[i], sizeof names[i], "test_quants_golden_%s", k_types[i].name);
        tests[nt++] = (struct CMUnitTest){names[i], test_quants_golden, NULL, NULL, (void *)&k_types[i]};
    }
    tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_quants_golden_covers_manifest);
    tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_quants_supported_types);
    tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_quants_golden_half_dispatch);
    tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_quants_roundtrip_rmse);
    tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_quants_threads_identical);
    tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_quants_fast_matches_ref);
    assert(nt == (int)SLM_ARRAY_LEN(tests));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
