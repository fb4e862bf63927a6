/* test_gptq.c - GPTQ into ggml blocks (quantize/gptq.c): on a random W whose input X has correlated
 * columns, the output error tr(dW H dW^T) is below RTN's for every writable type, with and without
 * importance weights, in every column order; with H = identity GPTQ writes RTN's (the codec's)
 * bytes exactly; the values GPTQ feeds back are what the codec's to_float reads from its blocks;
 * the bytes do not depend on the thread count; bad input is refused. */
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
#include "core/err.h"
#include "core/slm.h"
#include "core/thread.h"
#include "quantize/gptq.h"
#include "quantize/qtypes.h"
#include "quantize/quants.h"
#include "tests/testutil.h"

#define ROWS 24
#define COLS 512
#define SAMPLES 1024
#define FACTORS 8

static float W[ROWS * COLS];
static double G[COLS * COLS], I[COLS * COLS];
static float IM[COLS];

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double unif(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}
static double gauss(void) { return sqrt(-2 * log(unif() + 1e-300)) * cos(6.283185307179586 * unif()); }

/* X (SAMPLES, COLS): column scales from 0.1 to 3, 8 shared factors (correlation) plus noise;
   G = X^T X; IM = mean x^2 (llama.cpp's imatrix); W gaussian with a few outliers. */
static int setup(void **state) {
    (void)state;
    static float X[SAMPLES * COLS];
    static double B[COLS * FACTORS], s[COLS];
    for (int j = 0; j < COLS; j++) {
        s[j] = 0.1 + 2.9 * unif() * unif();
        for (int k = 0; k < FACTORS; k++) B[j * FACTORS + k] = gauss();
    }
    for (int t = 0; t < SAMPLES; t++) {
        double f[FACTORS];
        for (int k = 0; k < FACTORS; k++) f[k] = gauss();
        for (int j = 0; j < COLS; j++) {
            double v = 0.4 * gauss();
            for (int k = 0; k < FACTORS; k++) v += B[j * FACTORS + k] * f[k];
            X[t * COLS + j] = (float)(s[j] * v);
        }
    }
    for (int i = 0; i < COLS; i++)
        for (int j = 0; j < COLS; j++) {
            double a = 0;
            for (int t = 0; t < SAMPLES; t++) a += (double)X[t * COLS + i] * X[t * COLS + j];
            G[i * COLS + j] = a;
        }
    for (int j = 0; j < COLS; j++) {
        IM[j] = (float)(G[j * COLS + j] / SAMPLES);
        I[j * COLS + j] = 1;
    }
    for (int i = 0; i < ROWS * COLS; i++) W[i] = (float)(0.02 * gauss() * (unif() < 0.01 ? 8 : 1));
    return 0;
}

static const int k_types[] = {SLM_DTYPE_Q4_0, SLM_DTYPE_Q4_1, SLM_DTYPE_Q5_0, SLM_DTYPE_Q5_1, SLM_DTYPE_Q8_0,
                              SLM_DTYPE_Q2_K, SLM_DTYPE_Q3_K, SLM_DTYPE_Q4_K, SLM_DTYPE_Q5_K, SLM_DTYPE_Q6_K,
                              SLM_DTYPE_IQ4_NL, SLM_DTYPE_IQ4_XS, SLM_DTYPE_IQ3_S, SLM_DTYPE_IQ3_XXS, SLM_DTYPE_IQ2_S,
                              SLM_DTYPE_IQ2_XS, SLM_DTYPE_IQ2_XXS, SLM_DTYPE_IQ1_S, SLM_DTYPE_IQ1_M};

static size_t qbytes(int type) { return ROWS * slm_dtype_row_size(type, COLS); }

/* RTN as llama-quantize does it: the codec over all rows, and its dequantized values. */
static void rtn(int type, const float *im, uint8_t *q, float *deq) {
    slm_quantize_chunk(type, W, q, ROWS, COLS, im);
    slm_dequantize_rows(type, q, deq, ROWS, COLS);
}

static void test_gptq_beats_rtn_every_type(void **state) {
    (void)state;
    static uint8_t q[ROWS * COLS * 4];
    static float deq[ROWS * COLS], deq2[ROWS * COLS];
    slm_err err = {0};
    for (size_t t = 0; t < SLM_ARRAY_LEN(k_types); t++) {
        const int type = k_types[t];
        for (int with_im = 0; with_im < 2; with_im++) {
            const float *im = with_im ? IM : NULL;
            if (!im && slm_dtype_needs_imatrix(type)) continue;
            rtn(type, im, q, deq);
            const double e_rtn = slm_gptq_output_error(W, deq, ROWS, COLS, G);
            /* every order for two types, the default (blocks in act-order) for the others */
            const int all = type == SLM_DTYPE_Q4_K || type == SLM_DTYPE_Q4_0;
            for (int order = all ? 0 : SLM_GPTQ_ACT_BLOCKS; order < 3; order++) {
                slm_gptq_opts o = {0.01, 128, order};
                memset(q, 0xAB, sizeof q);
                assert_int_equal(slm_gptq_quantize(type, W, ROWS, COLS, G, im, &o, q, deq, &err), SLM_OK);
                /* what GPTQ fed back is what the blocks decode to, bit for bit */
                slm_dequantize_rows(type, q, deq2, ROWS, COLS);
                expect_bytes_equal(slm_dtype_name(type), deq, deq2, sizeof deq);
                const double e = slm_gptq_output_error(W, deq, ROWS, COLS, G);
                printf("%-8s im=%d order=%d  tr(dW H dW^T): rtn %.4g gptq %.4g (%.3f)\n", slm_dtype_name(type), with_im, order,
                       e_rtn, e, e / e_rtn);
                if (!(e < e_rtn)) fail_msg("%s im=%d order=%d: GPTQ %g >= RTN %g", slm_dtype_name(type), with_im, order, e, e_rtn);
            }
        }
    }
}

/* H = I: no error is fed back, every code is the codec's own: RTN's bytes exactly. */
static void test_gptq_identity_is_rtn(void **state) {
    (void)state;
    static uint8_t q[ROWS * COLS * 4], r[ROWS * COLS * 4];
    static float deq[ROWS * COLS];
    slm_err err = {0};
    for (size_t t = 0; t < SLM_ARRAY_LEN(k_types); t++) {
        const int type = k_types[t];
        for (int with_im = 0; with_im < 2; with_im++) {
            const float *im = with_im ? IM : NULL;
            if (!im && slm_dtype_needs_imatrix(type)) continue;
            rtn(type, im, r, deq);
            for (int order = (int)t % 3; order < 3; order += 2) { /* every order, with and without imatrix */
                slm_gptq_opts o = {0.01, 128, order};
                assert_int_equal(slm_gptq_quantize(type, W, ROWS, COLS, I, im, &o, q, NULL, &err), SLM_OK);
                char what[64];
                snprintf(what, sizeof what, "%s im=%d order=%d", slm_dtype_name(type), with_im, order);
                expect_bytes_equal(what, q, r, qbytes(type));
            }
        }
    }
}

static void test_gptq_threads_deterministic(void **state) {
    (void)state;
    static uint8_t a[ROWS * COLS * 4], b[ROWS * COLS * 4];
    slm_err err = {0};
    const int types[] = {SLM_DTYPE_Q4_K, SLM_DTYPE_Q4_0, SLM_DTYPE_IQ4_NL};
    for (size_t t = 0; t < SLM_ARRAY_LEN(types); t++) {
        slm_gptq_opts o = {0.01, 64, SLM_GPTQ_ACT};
        slm_threads_set(1);
        assert_int_equal(slm_gptq_quantize(types[t], W, ROWS, COLS, G, IM, &o, a, NULL, &err), SLM_OK);
        slm_threads_set(2);
        assert_int_equal(slm_gptq_quantize(types[t], W, ROWS, COLS, G, IM, &o, b, NULL, &err), SLM_OK);
        expect_bytes_equal(slm_dtype_name(types[t]), a, b, qbytes(types[t]));
    }
    slm_threads_set(0);
}

/* A dead input column (never moved) and a rank-deficient Hessian still give a factor. */
static void test_gptq_dead_columns(void **state) {
    (void)state;
    static double g[COLS * COLS];
    static uint8_t q[ROWS * COLS * 4];
    static float deq[ROWS * COLS];
    slm_err err = {0};
    memcpy(g, G, sizeof g);
    for (int j = 0; j < COLS; j++) g[5 * COLS + j] = g[j * COLS + 5] = 0;
    assert_int_equal(slm_gptq_quantize(SLM_DTYPE_Q4_K, W, ROWS, COLS, g, NULL, NULL, q, deq, &err), SLM_OK);
    /* rank 1 (every column a multiple of one): damping makes it positive definite */
    for (int i = 0; i < COLS; i++)
        for (int j = 0; j < COLS; j++) g[i * COLS + j] = (1 + i % 7) * (1 + j % 7);
    assert_int_equal(slm_gptq_quantize(SLM_DTYPE_Q4_K, W, ROWS, COLS, g, NULL, NULL, q, deq, &err), SLM_OK);
}

static void test_gptq_refusals(void **state) {
    (void)state;
    static uint8_t q[ROWS * COLS * 4];
    static float w[ROWS * COLS];
    static double g[COLS * COLS];
    slm_err err = {0};
    assert_int_equal(slm_gptq_quantize(SLM_DTYPE_Q4_K, W, ROWS, 320, G, NULL, NULL, q, NULL, &err), SLM_E_ARG);
    assert_non_null(strstr(err.msg, "not a multiple of Q4_K's block size 256"));
    assert_int_equal(slm_gptq_quantize(SLM_DTYPE_IQ2_XXS, W, ROWS, COLS, G, NULL, NULL, q, NULL, &err), SLM_E_ARG);
    assert_non_null(strstr(err.msg, "needs importance weights"));
    memcpy(w, W, sizeof w);
    w[3 * COLS + 7] = NAN;
    assert_int_equal(slm_gptq_quantize(SLM_DTYPE_Q4_K, w, ROWS, COLS, G, NULL, NULL, q, NULL, &err), SLM_E_DATA);
    assert_non_null(strstr(err.msg, "row 3, column 7"));
    memcpy(g, G, sizeof g);
    g[9 * COLS + 2] = INFINITY;
    assert_int_equal(slm_gptq_quantize(SLM_DTYPE_Q4_K, W, ROWS, COLS, g, NULL, NULL, q, NULL, &err), SLM_E_DATA);
    assert_non_null(strstr(err.msg, "not finite"));
    g[9 * COLS + 2] = G[9 * COLS + 2];
    g[4 * COLS + 4] = -1;
    assert_int_equal(slm_gptq_quantize(SLM_DTYPE_Q4_K, W, ROWS, COLS, g, NULL, NULL, q, NULL, &err), SLM_E_DATA);
    assert_non_null(strstr(err.msg, "Hessian diagonal 4"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gptq_beats_rtn_every_type),
        cmocka_unit_test(test_gptq_identity_is_rtn),
        cmocka_unit_test(test_gptq_threads_deterministic),
        cmocka_unit_test(test_gptq_dead_columns),
        cmocka_unit_test(test_gptq_refusals),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
