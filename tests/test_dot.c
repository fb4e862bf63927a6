/* test_dot.c - dot products of stored weight rows with activation rows (quantize/q_dot*.c): the
 * AVX2 tiles give the scalar reference's bits for every element of every tile shape; a single
 * vec_dot equals the batched one; every kernel agrees with dequantize-then-double-precision within
 * a per-type bound, on random rows of 256..4096 values and on ggml's golden blocks
 * (../shared/golden, fixtures/golden_iq); the Q8_1 activation quantizer. DOT_REPORT=1 prints the
 * largest relative error seen per type (the numbers quoted in README.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/le.h"
#include "core/rng.h"
#include "core/slm.h"
#include "quantize/qtypes.h"
#include "quantize/quants.h"
#include "tests/testutil.h"

/* The error allowed against the double-precision dot product of the dequantized rows (ggml's
 * to_float of the weights, exact activations), relative to S = sum |w_i a_i|, in units of
 * 2^-24 (float's unit roundoff). A kernel rounds each block's scale product and each fma of a
 * block into its lane chain once (chains of n/256 or n/32 blocks, n <= 4096), then sums 8 lanes:
 * at most about (chain length + levels of sums + 2) roundings of partial sums no larger than S
 * (the classic recursive-summation bound), which the constants below are. The measured errors are
 * far smaller (DOT_REPORT=1); what the bound catches is a wrong scale, sign or index, which is off
 * by thousands of units. For the d q - m types S uses |d q| + |m| (weight_magnitude). Q4_1/Q5_1 are
 * measured against the exact sum with ggml's stored activation block sums (q8_1_sum_term). */
typedef struct bound {
    int type;
    double ulps; /* max |dot - exact| / S, in units of 2^-24 */
    const char *why;
} bound;

static const bound k_bounds[] = {
    {SLM_DTYPE_F32, 170, "chains of n/32 = 128 fma at n = 4096, 5 levels of sums, a float tail of < 32"},
    {SLM_DTYPE_F16, 140, "chains of 128 (exact products), 5 levels of sums; the tail is in double"},
    {SLM_DTYPE_BF16, 140, "as F16"},
    {SLM_DTYPE_Q4_0, 140, "8 lane chains of n/32 = 128 blocks (d rounded, one fma each), a 3-level sum"},
    {SLM_DTYPE_Q5_0, 140, "as Q4_0"},
    {SLM_DTYPE_Q8_0, 140, "as Q4_0"},
    {SLM_DTYPE_IQ4_NL, 140, "as Q4_0 (two chains of 64, one more sum level)"},
    {SLM_DTYPE_Q4_1, 140, "as Q4_0; the min x s chain is as long"},
    {SLM_DTYPE_Q5_1, 140, "as Q4_1"},
    {SLM_DTYPE_Q2_K, 32, "chains of n/256 = 16 super-blocks (scale and min parts), a 3-level sum"},
    {SLM_DTYPE_Q3_K, 32, "as Q2_K"},
    {SLM_DTYPE_Q4_K, 32, "as Q2_K"},
    {SLM_DTYPE_Q5_K, 32, "as Q2_K"},
    {SLM_DTYPE_Q6_K, 64, "as Q2_K, lanes hold the -32 offset's bsums too (|lane| up to 2x its values)"},
    {SLM_DTYPE_IQ4_XS, 32, "as Q2_K"},
    {SLM_DTYPE_IQ2_XXS, 32, "as Q2_K (the final 1/8 is exact)"},
    {SLM_DTYPE_IQ2_XS, 32, "as IQ2_XXS"},
    {SLM_DTYPE_IQ2_S, 32, "as IQ2_XXS"},
    {SLM_DTYPE_IQ3_XXS, 32, "as IQ2_XXS"},
    {SLM_DTYPE_IQ3_S, 32, "as IQ2_XXS"},
    {SLM_DTYPE_IQ1_S, 48, "as Q2_K; grid and delta parts summed apart (|g| + |delta| <= 1.3 |g + delta|)"},
    {SLM_DTYPE_IQ1_M, 48, "as IQ1_S"},
};
#define N_TYPES ((int)SLM_ARRAY_LEN(k_bounds))

/* The largest error seen per type (in units of 2^-24) and where, for DOT_REPORT. */
static double g_worst[N_TYPES];
static double g_worst_golden[N_TYPES];

static int type_index(int type) {
    for (int i = 0; i < N_TYPES; i++)
        if (k_bounds[i].type == type) return i;
    fail_msg("type %d has no bound", type);
    return -1;
}

static int act_type(int type) { return slm_dtype_get(type)->vec_dot_type; }

static size_t row_bytes(int type, int64_t n) {
    const size_t b = slm_dtype_row_size(type, n);
    assert_true(b > 0);
    return b;
}

/* Exact values of an activation row (Q8_K's d * q is not exact in float). */
static void act_to_double(int at, const void *a, double *out, int64_t n) {
    if (at == SLM_DTYPE_Q8_K) {
        const slm_block_q8_K *b = a;
        for (int64_t i = 0; i < n; i++) out[i] = (double)b[i / 256].d * b[i / 256].qs[i % 256];
        return;
    }
    float *f = malloc((size_t)n * sizeof(float));
    assert_non_null(f);
    if (at == SLM_DTYPE_Q8_1) slm_dequantize_row_q8_1(a, f, n);
    else slm_dtype_get(at)->to_float(a, f, n);
    for (int64_t i = 0; i < n; i++) out[i] = f[i];
    free(f);
}

/* Q4_1 and Q5_1 meet Q8_1 activations, whose block sums s are stored in fp16 (ggml's format:
 * s = fp16(d * sum q), d before its own rounding): the kernel multiplies each weight block's min
 * by that s, not by the sum of the activation values. Returns sum_b m_b (s_b - d_b sum q_b), what
 * the exact dot product of the dequantized rows lacks to be the one ggml's numbers approximate. */
static double q8_1_sum_term(int type, const uint8_t *w, const uint8_t *a, int64_t n) {
    if (type != SLM_DTYPE_Q4_1 && type != SLM_DTYPE_Q5_1) return 0;
    const size_t wbb = slm_dtype_get(type)->type_size;
    const slm_block_q8_1 *y = (const slm_block_q8_1 *)(const void *)a;
    double t = 0;
    for (int64_t b = 0; b < n / 32; b++) {
        int sum = 0;
        for (int j = 0; j < 32; j++) sum += y[b].qs[j];
        const double m = slm_f16_to_f32(slm_le_u16(w + b * wbb + 2)); /* min: after d in both blocks */
        t += m * ((double)slm_f16_to_f32(y[b].s) - (double)slm_f16_to_f32(y[b].d) * sum);
    }
    return t;
}

/* Byte offset of the fp16 min scale in a block of the types whose weights are d q - m (Q4_1,
 * Q5_1: m; Q2_K, Q4_K, Q5_K: dmin), or -1. */
static int min_field(int type) {
    switch (type) {
    case SLM_DTYPE_Q4_1: case SLM_DTYPE_Q5_1: case SLM_DTYPE_Q4_K: case SLM_DTYPE_Q5_K: return 2;
    case SLM_DTYPE_Q2_K: return 82;
    default: return -1;
    }
}

/* The magnitude each weight enters a kernel's float operations with: |w| for most types; for
 * the d q - m types |d q| + |m| (the kernel sums the two parts separately, so where they cancel
 * its rounding, like to_float's own, is relative to them): computed from to_float of the row
 * with its min scales zeroed. */
static void weight_magnitude(int type, const uint8_t *row, const float *w, float *mag, int64_t n) {
    const int off = min_field(type);
    if (off < 0) {
        for (int64_t i = 0; i < n; i++) mag[i] = fabsf(w[i]);
        return;
    }
    const size_t bb = slm_dtype_get(type)->type_size, rb = row_bytes(type, n);
    uint8_t *z = malloc(rb);
    assert_non_null(z);
    memcpy(z, row, rb);
    for (size_t b = 0; b < rb / bb; b++) memset(z + b * bb + off, 0, 2);
    slm_dtype_get(type)->to_float(z, mag, n);
    for (int64_t i = 0; i < n; i++) mag[i] = fabsf(mag[i]) + fabsf(w[i] - mag[i]);
    free(z);
}

/* |dot - (exact + extra)| / S in units of 2^-24, S = sum mag_i |a_i|; -1 when the exact value is
 * not finite. */
static double rel_error_ulps(float dot, const float *w, const float *mag, const double *a, int64_t n, double extra) {
    double exact = extra, S = 0;
    for (int64_t i = 0; i < n; i++) {
        exact += (double)w[i] * a[i];
        S += (double)mag[i] * fabs(a[i]);
    }
    if (!isfinite(exact) || !(S < 0x1p126)) return -1; /* float partial sums may overflow */
    const double err = fabs((double)dot - exact);
    if (S == 0) return err == 0 ? 0 : INFINITY;
    return err / S * 0x1p24;
}

/* Float bits equal, or both NaN. */
static int same_float(float a, float b) { return !memcmp(&a, &b, sizeof a) || (isnan(a) && isnan(b)); }

/* ------------------------------------------------------------------------------ fixtures */

/* nr rows of n values: gaussian with a per-row scale, a few outliers. */
static float *random_rows(slm_rng *r, int nr, int64_t n) {
    float *x = malloc((size_t)nr * (size_t)n * sizeof(float));
    assert_non_null(x);
    for (int i = 0; i < nr; i++) {
        const double s = pow(10.0, 2.0 * slm_rng_uniform(r) - 1.0);
        for (int64_t j = 0; j < n; j++) {
            double v = s * slm_rng_normal(r);
            if (slm_rng_uniform(r) < 0.002) v *= 8; /* outliers, as activations have */
            x[(size_t)i * n + j] = (float)v;
        }
    }
    return x;
}

/* Weight rows of `type` quantized from x (nr x n); an importance vector where ggml needs one. */
static uint8_t *quantize_rows(int type, const float *x, int nr, int64_t n, slm_rng *r) {
    const size_t rb = row_bytes(type, n);
    uint8_t *q = malloc((size_t)nr * rb);
    assert_non_null(q);
    float *im = NULL;
    if (slm_dtype_needs_imatrix(type)) {
        im = malloc((size_t)n * sizeof(float));
        assert_non_null(im);
        for (int64_t j = 0; j < n; j++) im[j] = (float)exp(slm_rng_normal(r));
    }
    assert_int_equal(slm_quantize_chunk(type, x, q, nr, n, im), (size_t)nr * rb);
    free(im);
    return q;
}

/* Activation rows for a weight of `type`: from_float of its vec_dot_type, row by row. */
static uint8_t *activation_rows(int type, const float *x, int nc, int64_t n) {
    const int at = act_type(type);
    const size_t rb = row_bytes(at, n);
    uint8_t *a = malloc((size_t)nc * rb);
    assert_non_null(a);
    for (int c = 0; c < nc; c++) slm_dtype_get(at)->from_float(x + (size_t)c * n, a + (size_t)c * rb, n);
    return a;
}

/* ------------------------------------------------------------------------------- tests */

/* Every weight type with a vec_dot has an activation type slm can make (from_float). */
static void test_dot_table(void **state) {
    (void)state;
    int n_dot = 0;
    for (int t = 0; t < SLM_DTYPE_COUNT; t++) {
        const slm_dtype_traits *tr = slm_dtype_get(t);
        if (!tr || !tr->vec_dot) continue;
        n_dot++;
        type_index(t);
        assert_non_null(tr->to_float);
        const slm_dtype_traits *at = slm_dtype_get(tr->vec_dot_type);
        assert_non_null(at);
        assert_non_null(at->from_float);
        int rows, cols;
        slm_dot_tile_shape(t, &rows, &cols);
        assert_true(rows >= 1 && cols >= 1);
    }
    assert_int_equal(n_dot, N_TYPES);
}

/* Lengths per block size: 256..4096, plus odd block counts for the 32-blocks and plain floats. */
static const int64_t k_len_k[] = {256, 512, 1024, 2048, 4096};
static const int64_t k_len_32[] = {32, 96, 288, 256, 1056, 4096};
static const int64_t k_len_1[] = {1, 3, 31, 33, 100, 256, 300, 2087, 4096}; /* 2087: a last chunk of 32 + a tail */

static void lengths_of(int type, const int64_t **len, int *n_len) {
    const int64_t bs = slm_dtype_get(type)->blck_size;
    if (bs == 256) *len = k_len_k, *n_len = (int)SLM_ARRAY_LEN(k_len_k);
    else if (bs == 32) *len = k_len_32, *n_len = (int)SLM_ARRAY_LEN(k_len_32);
    else *len = k_len_1, *n_len = (int)SLM_ARRAY_LEN(k_len_1);
}

#define NR_TEST 9 /* two full 4-row tiles and a single row */
#define NC_TEST 7 /* two full 3-row tiles and a single row */

/* One type: fast tile == scalar reference (bit for bit, every shape), vec_dot == tile element,
 * misaligned (2-byte) weight rows, and the agreement with double precision. */
static void check_type_random(int type, uint64_t seed) {
    const int ti = type_index(type), at = act_type(type);
    const int64_t *len;
    int n_len;
    lengths_of(type, &len, &n_len);
    slm_rng r;
    slm_rng_seed(&r, seed);
    for (int li = 0; li < n_len; li++) {
        const int64_t n = len[li];
        if (n % slm_dtype_get(type)->blck_size || n % slm_dtype_get(at)->blck_size) continue;
        /* the lattice quantizers search slowly: fewer rows at the longest length */
        const int nr = n >= 2048 && slm_dtype_get(type)->blck_size == 256 && !slm_dtype_get(type)->from_float_ref ? 4 : NR_TEST;
        float *xw = random_rows(&r, nr, n), *xa = random_rows(&r, NC_TEST, n);
        uint8_t *w = quantize_rows(type, xw, nr, n, &r), *a = activation_rows(type, xa, NC_TEST, n);
        const size_t wb = row_bytes(type, n), ab = row_bytes(at, n), ld = nr + 3;
        float *ref = malloc(sizeof(float) * ld * NC_TEST), *fast = malloc(sizeof(float) * ld * NC_TEST);
        float *wf = malloc((size_t)n * sizeof(float)), *mag = malloc((size_t)n * sizeof(float));
        double *af = malloc((size_t)n * sizeof(double));
        assert_non_null(mag);
        assert_non_null(ref);
        assert_non_null(fast);
        assert_non_null(wf);
        assert_non_null(af);
        memset(ref, 0, sizeof(float) * ld * NC_TEST);
        memset(fast, 0, sizeof(float) * ld * NC_TEST);
        slm_dot_rows_kernel(SLM_KERNEL_REF, type, n, nr, NC_TEST, ref, ld, w, wb, a, ab);
        slm_dot_rows(type, n, nr, NC_TEST, fast, ld, w, wb, a, ab);
        for (int c = 0; c < NC_TEST; c++)
            for (int i = 0; i < nr; i++) {
                const float f = fast[(size_t)c * ld + i], e = ref[(size_t)c * ld + i];
                if (!same_float(f, e))
                    fail_msg("%s n=%lld: tile (%d, %d): %s %.9g != reference %.9g", slm_dtype_name(type), (long long)n, i, c,
                             slm_dot_kernel_name(type), f, e);
                float s1;
                slm_dtype_get(type)->vec_dot(n, &s1, w + (size_t)i * wb, a + (size_t)c * ab);
                if (!same_float(s1, e))
                    fail_msg("%s n=%lld: vec_dot (%d, %d) %.9g != tile %.9g", slm_dtype_name(type), (long long)n, i, c, s1, e);
            }
        /* a weight row at an address that is only 2-byte aligned (GGUF data of a mapped file) */
        uint8_t *w2 = malloc(wb + 2);
        assert_non_null(w2);
        memcpy(w2 + 2, w, wb);
        float s2;
        slm_dtype_get(type)->vec_dot(n, &s2, w2 + 2, a);
        if (!same_float(s2, ref[0])) fail_msg("%s n=%lld: misaligned row %.9g != %.9g", slm_dtype_name(type), (long long)n, s2, ref[0]);
        free(w2);
        /* against double precision */
        for (int c = 0; c < NC_TEST; c++) {
            act_to_double(at, a + (size_t)c * ab, af, n);
            for (int i = 0; i < nr; i++) {
                slm_dtype_get(type)->to_float(w + (size_t)i * wb, wf, n);
                weight_magnitude(type, w + (size_t)i * wb, wf, mag, n);
                const double e = rel_error_ulps(ref[(size_t)c * ld + i], wf, mag, af, n,
                                                q8_1_sum_term(type, w + (size_t)i * wb, a + (size_t)c * ab, n));
                assert_true(e >= 0);
                if (e > g_worst[ti]) g_worst[ti] = e;
                if (e > k_bounds[ti].ulps)
                    fail_msg("%s n=%lld (%d, %d): error %.1f x 2^-24 of sum|wa| > bound %.0f (%s)", slm_dtype_name(type),
                             (long long)n, i, c, e, k_bounds[ti].ulps, k_bounds[ti].why);
            }
        }
        free(xw), free(xa), free(w), free(a), free(ref), free(fast), free(wf), free(mag), free(af);
    }
}

static void test_dot_random(void **state) {
    const bound *b = *state;
    check_type_random(b->type, 0x5eed0000u + (uint64_t)b->type);
}

/* ---------------------------------------------------------------------------- golden data */

static int64_t json_int(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v)) fail_msg("manifest: '%s' missing or not a number", key);
    const double d = v->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != floor(d)) fail_msg("manifest: '%s' = %g is not a count", key, d);
    return (int64_t)d;
}

static const char *json_str(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static cJSON *load_manifest(const char *path) {
    size_t n;
    char *text = read_whole_file(path, &n);
    cJSON *m = cJSON_ParseWithLength(text, n);
    free(text);
    if (!m) fail_msg("%s: not valid JSON", path);
    return m;
}

static int all_finite(const float *x, int64_t n) { return slm_first_nonfinite(x, n) < 0; }

/* One golden case of `type`: ggml's blocks (plain and, if present, with importance weights) as
 * weights; the case's input rows, quantized with from_float, as activations (row i with rows i
 * and i + 1). Returns the number of rows compared. */
static int check_golden_case(int type, const cJSON *c, const char *dir) {
    const int ti = type_index(type), at = act_type(type);
    const char *id = json_str(c, "id");
    const int64_t nrows = json_int(c, "nrows"), n = json_int(c, "n_per_row");
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(c, "files");
    const char *in_rel = json_str(files, "input");
    if (!in_rel || n % slm_dtype_get(at)->blck_size) return 0; /* no input rows, or not a Q8_0 length */
    char path[1024];
    size_t sz;
    snprintf(path, sizeof path, "%s/%s", dir, in_rel);
    float *x = read_whole_file(path, &sz);
    assert_int_equal(sz, (size_t)(nrows * n) * sizeof(float));
    const size_t wb = row_bytes(type, n), ab = row_bytes(at, n);
    uint8_t *a = malloc(ab);
    float *wf = malloc((size_t)n * sizeof(float)), *mag = malloc((size_t)n * sizeof(float));
    double *af = malloc((size_t)n * sizeof(double));
    assert_non_null(mag);
    assert_non_null(a);
    assert_non_null(wf);
    assert_non_null(af);
    int compared = 0;
    static const char *const kinds[][2] = {{"blocks", "dequant"}, {"blocks_imatrix", "dequant_imatrix"}};
    for (int k = 0; k < 2; k++) {
        const char *b_rel = json_str(files, kinds[k][0]), *d_rel = json_str(files, kinds[k][1]);
        if (!b_rel || !d_rel) continue;
        snprintf(path, sizeof path, "%s/%s", dir, b_rel);
        uint8_t *blocks = read_whole_file(path, &sz);
        assert_int_equal(sz, (size_t)nrows * wb);
        snprintf(path, sizeof path, "%s/%s", dir, d_rel);
        float *dq = read_whole_file(path, &sz);
        assert_int_equal(sz, (size_t)(nrows * n) * sizeof(float));
        for (int64_t i = 0; i < nrows; i++)
            for (int64_t j = i; j <= i + 1 && j < nrows + (nrows == 1); j++) {
                const float *xa = x + (j % nrows) * n;
                if (!all_finite(xa, n)) continue;
                slm_dtype_get(at)->from_float(xa, a, n);
                float ref, fast;
                slm_dot_rows_kernel(SLM_KERNEL_REF, type, n, 1, 1, &ref, 1, blocks + i * wb, wb, a, ab);
                slm_dot_rows(type, n, 1, 1, &fast, 1, blocks + i * wb, wb, a, ab);
                if (!same_float(ref, fast)) fail_msg("%s %s row %lld: fast %.9g != reference %.9g", id, kinds[k][0], (long long)i, fast, ref);
                /* ggml's own dequantization of its blocks is the weight */
                slm_dtype_get(type)->to_float(blocks + i * wb, wf, n);
                if (memcmp(wf, dq + i * n, (size_t)n * sizeof(float)) && all_finite(dq + i * n, n))
                    fail_msg("%s row %lld: to_float differs from ggml's dequant", id, (long long)i);
                if (!all_finite(wf, n)) continue;
                act_to_double(at, a, af, n);
                weight_magnitude(type, blocks + i * wb, wf, mag, n);
                const double e = rel_error_ulps(ref, wf, mag, af, n, q8_1_sum_term(type, blocks + i * wb, a, n));
                if (e < 0) continue; /* huge values: the exact sum overflows too */
                compared++;
                if (e > g_worst_golden[ti]) g_worst_golden[ti] = e;
                if (e > k_bounds[ti].ulps)
                    fail_msg("%s %s row %lld x %lld: error %.1f x 2^-24 > bound %.0f", id, kinds[k][0], (long long)i,
                             (long long)(j % nrows), e, k_bounds[ti].ulps);
            }
        free(blocks);
        free(dq);
    }
    free(x), free(a), free(wf), free(mag), free(af);
    return compared;
}

static void check_golden_set(const char *dir, int want_types) {
    char path[1024];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    cJSON *m = load_manifest(path);
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(m, "cases"), *c;
    assert_true(cJSON_IsArray(cases));
    int rows = 0, types_seen[SLM_DTYPE_COUNT] = {0}, n_types = 0;
    cJSON_ArrayForEach(c, cases) {
        const int type = slm_dtype_from_name(json_str(c, "type"));
        assert_true(type >= 0);
        if (!slm_dtype_get(type)->vec_dot) continue;
        const int k = check_golden_case(type, c, dir);
        rows += k;
        if (k && !types_seen[type]++) n_types++;
    }
    cJSON_Delete(m);
    if (n_types < want_types) fail_msg("%s: dot products checked for %d types, expected %d", dir, n_types, want_types);
    assert_true(rows > 100);
}

static void test_dot_golden(void **state) {
    (void)state;
    const char *dir = golden_path(".");
    check_golden_set(dir, 14); /* 12 block types + F16 + BF16 */
}

static void test_dot_golden_iq(void **state) {
    (void)state;
    check_golden_set("fixtures/golden_iq", 7);
}

/* ------------------------------------------------------------------------------- Q8_1 */

/* quantize_row_q8_1 = q8_0's d and quants, and s = fp16(d * sum of the quants) (d unrounded). */
static void test_dot_q8_1_quantizer(void **state) {
    (void)state;
    slm_rng r;
    slm_rng_seed(&r, 81);
    const int64_t n = 32 * 64;
    float *x = random_rows(&r, 1, n);
    for (int j = 0; j < 32; j++) x[j] = 0; /* an all-zero block */
    slm_block_q8_1 *b1 = malloc(sizeof(slm_block_q8_1) * (size_t)(n / 32));
    slm_block_q8_0 *b0 = malloc(sizeof(slm_block_q8_0) * (size_t)(n / 32));
    assert_non_null(b1);
    assert_non_null(b0);
    slm_dtype_get(SLM_DTYPE_Q8_1)->from_float(x, b1, n);
    slm_quantize_row_q8_0(x, b0, n);
    for (int64_t i = 0; i < n / 32; i++) {
        assert_int_equal(b1[i].d, b0[i].d);
        assert_memory_equal(b1[i].qs, b0[i].qs, 32);
        float amax = 0;
        int sum = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[i * 32 + j])), sum += b0[i].qs[j];
        assert_int_equal(b1[i].s, slm_f32_to_f16(amax / 127.f * (float)sum));
    }
    free(x), free(b1), free(b0);
}

/* ------------------------------------------------------------------------------- Q8_K */

/* The type table's Q8_K from_float (AVX2 here) writes slm_quantize_row_q8_K_ref's bytes: random
 * blocks, an all-zero block, a block whose largest |x| comes first as -a then as +a (max keeps the
 * first), ties at .5 after scaling, and blocks with a NaN and an Inf (the reference's path). */
static void test_dot_q8_K_quantizer(void **state) {
    (void)state;
    slm_rng r;
    slm_rng_seed(&r, 88);
    const int64_t n = 256 * 40;
    float *x = random_rows(&r, 1, n);
    for (int j = 0; j < 256; j++) x[256 + j] = 0;
    x[2 * 256 + 7] = -50.0f, x[2 * 256 + 100] = 50.0f;
    for (int j = 0; j < 256; j++) x[3 * 256 + j] = (float)(j % 9 - 4) * 0.5f; /* iscale * x on .5 steps */
    x[3 * 256 + 11] = 127.0f;
    x[4 * 256 + 3] = NAN;
    x[5 * 256 + 200] = -INFINITY;
    for (int j = 0; j < 256; j++) x[6 * 256 + j] = 1e-30f * (float)(j - 128); /* tiny values */
    const size_t bytes = sizeof(slm_block_q8_K) * (size_t)(n / 256);
    uint8_t *a = calloc(1, bytes), *b = calloc(1, bytes);
    assert_non_null(a);
    assert_non_null(b);
    slm_dtype_get(SLM_DTYPE_Q8_K)->from_float(x, a, n);
    slm_quantize_row_q8_K_ref(x, b, n);
    for (int64_t i = 0; i < n / 256; i++)
        assert_memory_equal(a + i * sizeof(slm_block_q8_K), b + i * sizeof(slm_block_q8_K), sizeof(slm_block_q8_K));
    const slm_block_q8_K *blk = (const slm_block_q8_K *)(const void *)b;
    assert_true(blk[2].d > 0); /* max = -50, the first of the two: iscale = -127 / max > 0 */
    free(x), free(a), free(b);
}

/* ------------------------------------------------------------------------------- main */

static int report(void **state) {
    (void)state;
    const char *v = getenv("DOT_REPORT");
    if (!v || !*v || !strcmp(v, "0")) return 0;
    printf("type      max error / sum|w*a| in 2^-24 units: random rows  golden   bound\n");
    for (int i = 0; i < N_TYPES; i++)
        printf("%-9s %44.2f %8.2f %7.0f\n", slm_dtype_name(k_bounds[i].type), g_worst[i], g_worst_golden[i], k_bounds[i].ulps);
    return 0;
}

int main(void) {
    struct CMUnitTest tests[N_TYPES + 5];
    static char names[N_TYPES][48];
    int nt = 0;
    tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_dot_table);
    for (int i = 0; i < N_TYPES; i++) {
        snprintf(names[i], sizeof names[i], "test_dot_random_%s", slm_dtype_name(k_bounds[i].type));
        tests[nt++] = (struct CMUnitTest){names[i], test_dot_random, NULL, NULL, (void *)&k_bounds[i]};
    }
    tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_dot_golden);
    tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_dot_golden_iq);
    tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_dot_q8_1_quantizer);
    tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_dot_q8_K_quantizer);
    assert(nt == (int)SLM_ARRAY_LEN(tests));
    return cmocka_run_group_tests(tests, NULL, report);
}
