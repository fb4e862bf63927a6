/* test_awq.c - AWQ's scale search (quantize/awq.c): uniform activations keep alpha 0 (s = 1,
 * the plain quantization); a few outlier channels make it pick alpha > 0 with a lower output
 * error and larger scales on the outliers; tied scales (GQA) follow their kv channel; a fixed
 * alpha gives E|x|^alpha normalized; the score with s = 1 is the score without scales; the
 * search gives the same scales for 1 and 2 threads. (Folding leaving the float model unchanged
 * is checked end to end in tests/run_cli.sh: F32 output, alpha 0.5, KLD < 1e-6.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "core/dtype.h"
#include "core/rng.h"
#include "core/thread.h"
#include "quantize/awq.h"
#include "quantize/method.h"
#include "quantize/qtypes.h"

enum { N = 256, ROWS = 64, COUNT = 1000 };

typedef struct fixture {
    float w[ROWS * N];
    float sum2[N];
    double abs_sum[N];
    double gram[N * N];
} fixture;

static fixture g_fx;

/* W ~ N(0, 1); X: independent columns of magnitude mag[j] (diagonal Gram) */
static slm_awq_group make_group(fixture *f, int outliers, int type) {
    slm_rng r;
    slm_rng_seed(&r, 42);
    for (int i = 0; i < ROWS * N; i++) f->w[i] = (float)slm_rng_normal(&r);
    memset(f->gram, 0, sizeof f->gram);
    for (int j = 0; j < N; j++) {
        double mag = outliers && j % 37 == 5 ? 30.0 : 1.0;
        f->abs_sum[j] = mag * COUNT;
        f->sum2[j] = (float)(mag * mag * COUNT);
        f->gram[j * N + j] = mag * mag * COUNT;
    }
    slm_awq_group g = {.n = N, .count = COUNT, .sum2 = f->sum2, .abs_sum = f->abs_sum, .gram = f->gram, .n_w = 1};
    g.w[0] = (slm_awq_weight){f->w, ROWS, type, NULL};
    return g;
}

static void test_awq_uniform_keeps_alpha0(void **state) {
    (void)state;
    slm_awq_group g = make_group(&g_fx, 0, SLM_DTYPE_Q4_0);
    slm_qmethod_params p;
    slm_qmethod_params_default(&p);
    float s[N];
    slm_awq_result res;
    slm_err err = {0};
    assert_int_equal(slm_awq_search(&g, &p, s, NULL, &res, &err), 0);
    assert_true(res.alpha == 0.0);
    assert_true(res.err == res.err_base);
    assert_true(res.err_base > 0);
    for (int j = 0; j < N; j++) assert_true(s[j] == 1.0f);
}

static void test_awq_outliers_pick_alpha(void **state) {
    (void)state;
    const int types[] = {SLM_DTYPE_Q4_0, SLM_DTYPE_Q4_K, SLM_DTYPE_Q3_K, SLM_DTYPE_Q2_K};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        slm_awq_group g = make_group(&g_fx, 1, types[t]);
        slm_qmethod_params p;
        slm_qmethod_params_default(&p);
        float s[N];
        slm_awq_result res;
        slm_err err = {0};
        assert_int_equal(slm_awq_search(&g, &p, s, NULL, &res, &err), 0);
        print_message("%s: alpha %.2f, output error %.4g -> %.4g (%.3fx)\n", slm_dtype_name(types[t]), res.alpha,
                      res.err_base, res.err, res.err / res.err_base);
        assert_true(res.alpha > 0);
        assert_true(res.err < 0.9 * res.err_base);
        assert_true(s[5] > 1.0f && s[6] < 1.0f); /* outlier channel scaled up, the rest down */
        double e = 0;
        assert_int_equal(slm_awq_score(&g, s, &e, &err), 0);
        assert_true(e == res.err); /* the search's score is slm_awq_score's */
    }
}

static void test_awq_fixed_alpha_and_ties(void **state) {
    (void)state;
    slm_awq_group g = make_group(&g_fx, 1, SLM_DTYPE_Q4_0);
    int32_t tie[N];
    for (int j = 0; j < N; j++) tie[j] = j % 64; /* 4 query heads of 64 share one kv head */
    g.n_red = 64;
    g.tie = tie;
    slm_qmethod_params p;
    slm_qmethod_params_default(&p);
    p.awq_alpha = 0.5;
    float s[N], s_red[64];
    slm_awq_result res;
    slm_err err = {0};
    assert_int_equal(slm_awq_search(&g, &p, s, s_red, &res, &err), 0);
    assert_true(res.alpha == 0.5);
    for (int j = 0; j < N; j++) assert_true(s[j] == s_red[tie[j]]);
    /* channel k's magnitude: mean over its 4 tied columns; max * min = 1 after normalizing */
    double lo = 1e30, hi = 0;
    for (int k = 0; k < 64; k++) lo = fmin(lo, s_red[k]), hi = fmax(hi, s_red[k]);
    assert_true(fabs(lo * hi - 1.0) < 1e-5);
    /* kv channel 5: columns 5, 69, 133, 197, of which 5 is an outlier; channel 0: none */
    double m5 = 0, m0 = 0;
    for (int c = 0; c < 4; c++) m5 += g_fx.abs_sum[5 + 64 * c] / COUNT, m0 += g_fx.abs_sum[0 + 64 * c] / COUNT;
    assert_float_equal(s_red[5] / s_red[0], sqrt(m5 / 4) / sqrt(m0 / 4), 1e-5);
}

static void test_awq_score_unit_scales(void **state) {
    (void)state;
    slm_awq_group g = make_group(&g_fx, 1, SLM_DTYPE_Q4_K);
    float one[N];
    for (int j = 0; j < N; j++) one[j] = 1.0f;
    double a = 0, b = 0;
    slm_err err = {0};
    assert_int_equal(slm_awq_score(&g, NULL, &a, &err), 0);
    assert_int_equal(slm_awq_score(&g, one, &b, &err), 0);
    assert_true(a == b && a > 0);
    /* without a Gram matrix the diagonal sum2 is used: the same here (the Gram is diagonal) */
    g.gram = NULL;
    assert_int_equal(slm_awq_score(&g, NULL, &b, &err), 0);
    assert_float_equal(a, b, 1e-9 * a);
    g.n_w = 0;
    float s[N];
    slm_awq_result res;
    slm_qmethod_params p;
    slm_qmethod_params_default(&p);
    assert_int_equal(slm_awq_search(&g, &p, s, NULL, &res, &err), SLM_E_ARG);
    assert_non_null(strstr(err.msg, "AWQ: malformed group"));
}

static void test_awq_threads_deterministic(void **state) {
    (void)state;
    slm_awq_group g = make_group(&g_fx, 1, SLM_DTYPE_Q3_K);
    slm_qmethod_params p;
    slm_qmethod_params_default(&p);
    float s1[N], s2[N];
    slm_awq_result r1, r2;
    slm_err err = {0};
    slm_threads_set(1);
    assert_int_equal(slm_awq_search(&g, &p, s1, NULL, &r1, &err), 0);
    slm_threads_set(2);
    assert_int_equal(slm_awq_search(&g, &p, s2, NULL, &r2, &err), 0);
    slm_threads_set(0);
    assert_memory_equal(s1, s2, sizeof s1);
    assert_true(r1.err == r2.err && r1.alpha == r2.alpha);
}

static void test_awq_clip(void **state) {
    (void)state;
    float v[4] = {1, -4, 2, 3};
    slm_awq_clip_row(v, 4, 0.5f);
    assert_true(v[0] == 1 && v[1] == -2 && v[2] == 2 && v[3] == 2);
    slm_awq_clip_row(v, 4, 1.0f);
    assert_true(v[1] == -2);
    /* Q4_0 takes its scale from the block's max |w|: on Gaussian rows clipping lowers the error */
    slm_awq_group g = make_group(&g_fx, 0, SLM_DTYPE_Q4_0);
    float clip[SLM_AWQ_MAX_W] = {0};
    slm_err err = {0};
    assert_int_equal(slm_awq_clip_search(&g, NULL, clip, &err), 0);
    print_message("Q4_0 Gaussian rows: clip %.3f\n", clip[0]);
    assert_true(clip[0] < 1.0f && clip[0] >= 0.75f);
}

static void test_awq_sample_rows(void **state) {
    (void)state;
    assert_int_equal(slm_awq_sample_rows(100, 64, 0), 100);
    assert_int_equal(slm_awq_sample_rows(100, 64, 1L << 24), 100);
    assert_int_equal(slm_awq_sample_rows(4096, 4096, 1L << 24), 16); /* at least 16 */
    assert_int_equal(slm_awq_sample_rows(4096, 1024, 1L << 24), 16);
    assert_int_equal(slm_awq_sample_rows(4096, 256, 1L << 24), 256);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_awq_uniform_keeps_alpha0),  cmocka_unit_test(test_awq_outliers_pick_alpha),
        cmocka_unit_test(test_awq_fixed_alpha_and_ties), cmocka_unit_test(test_awq_score_unit_scales),
        cmocka_unit_test(test_awq_threads_deterministic), cmocka_unit_test(test_awq_sample_rows),
        cmocka_unit_test(test_awq_clip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
