/* test_trainer.c - distill/trainer.c on a tiny synthetic teacher and a noisier student: a resumed
 * run gives the same weight bytes as an uninterrupted one (also with another thread count),
 * pruned zeros stay exactly 0 while the divergence falls, a non-finite loss stops with its step
 * and leaves the last good checkpoint byte-identical to a clean run's, a checkpoint of another
 * run shape is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/slm.h"
#include "core/thread.h"
#include "distill/trainer.h"
#include "model/train.h"
#include "model/transformer.h"
#include "tests/testutil.h"

typedef struct syn_ud { uint64_t seed; double noise; } syn_ud;

static double hash_u(const char *name, int64_t i, uint64_t seed) {
    uint64_t h = 1469598103934665603ull ^ seed;
    for (const char *p = name; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ull;
    uint64_t x = h ^ (uint64_t)i * 0x9e3779b97f4a7c15ull;
    return (double)(slm_splitmix64(&x) >> 11) * 0x1p-53 - 0.5;
}

static int syn_rows(void *ud, const char *name, int64_t nrows, int64_t ncols, int64_t r0, int64_t n, float *dst, slm_err *err) {
    const syn_ud *s = ud;
    (void)nrows, (void)err;
    for (int64_t r = 0; r < n; r++)
        for (int64_t c = 0; c < ncols; c++) {
            int64_t i = (r0 + r) * ncols + c;
            double u = hash_u(name, i, 1) + s->noise * hash_u(name, i, s->seed);
            dst[r * ncols + c] = (float)(strstr(name, "norm") ? 1.0 + 0.2 * u : u * 2.0 / sqrt((double)ncols));
        }
    return SLM_OK;
}

static const slm_model_config k_tiny = {.arch = SLM_ARCH_LLAMA, .n_embd = 32, .n_ff = 64, .n_layer = 2, .n_head = 4,
                                        .n_head_kv = 2, .head_dim = 8, .n_vocab = 40, .norm_eps = 1e-5f,
                                        .rope_theta = 10000.0f, .rope_scale = 1.0f, .tied_embeddings = 0, .bos_id = -1,
                                        .eos_id = -1};

enum { B = 2, T = 16, N_IDS = 400 };

static void build(slm_model *m, syn_ud *ud, int flags) {
    test_fn_src *fs = calloc(1, sizeof *fs); /* leaked on purpose: tiny, lives for the test */
    slm_tensor_src ts;
    slm_err err = {0};
    test_fn_src_init(fs, &k_tiny, syn_rows, ud, &ts);
    if (slm_model_build_batch(m, &k_tiny, &ts, B, T, flags, &err)) fail_msg("%s", err.msg);
}

static int32_t g_ids[N_IDS], g_eval[N_IDS];
static syn_ud g_tu = {0, 0.0}, g_su = {99, 0.6};

static void make_ids(void) {
    slm_rng r;
    slm_rng_seed(&r, 5);
    for (int i = 0; i < N_IDS; i++) { /* a learnable pattern with noise */
        g_ids[i] = (int32_t)((i * 7 + (slm_rng_u64(&r) % 4 == 0 ? slm_rng_u64(&r) % 40 : 0)) % 40);
        g_eval[i] = (int32_t)((i * 7 + 3 + (slm_rng_u64(&r) % 4 == 0 ? slm_rng_u64(&r) % 40 : 0)) % 40);
    }
}

static void opts(slm_trainer_opts *o, int64_t steps) {
    slm_trainer_defaults(o);
    o->batch = B, o->ctx = T, o->accum = 2, o->max_steps = steps, o->seed = 3;
    o->loss = (slm_distill_loss_opts){SLM_KD_FORWARD_KL, 2.0f, 0.2f};
    o->adamw.lr = 3e-3f, o->adamw.warmup_steps = 2, o->adamw.total_steps = 8, o->adamw.min_lr = 3e-4f;
    o->eval_ids = g_eval, o->n_eval = N_IDS, o->eval_every = 3;
}

/* Trains a fresh student with o; its weights (num_parameters floats) into a new buffer. */
static float *train(const slm_trainer_opts *o, int expect_rc, slm_trainer_result *res, char *msg) {
    slm_model t = {0}, s = {0};
    slm_err err = {0};
    build(&t, &g_tu, 0);
    build(&s, &g_su, SLM_BUILD_KEEP_ACTS);
    int rc = slm_trainer_run(&t, &s, g_ids, N_IDS, o, res, &err);
    if (rc != expect_rc) fail_msg("trainer: rc %d, want %d: %s", rc, expect_rc, err.msg);
    if (msg) snprintf(msg, 512, "%s", err.msg);
    float *w = malloc(s.num_parameters * sizeof(float));
    memcpy(w, s.params_memory, s.num_parameters * sizeof(float));
    slm_model_free(&s), slm_model_free(&t);
    return w;
}

static size_t n_params(void) {
    slm_model s = {0};
    build(&s, &g_su, SLM_BUILD_KEEP_ACTS);
    size_t n = s.num_parameters;
    slm_model_free(&s);
    return n;
}

/* 8 steps straight == 4 steps + checkpoint + resume for 4 more (on 1 thread), byte for byte;
   and the weights did move. */
static void test_trainer_resume_bit_identical(void **state) {
    (void)state;
    make_ids();
    slm_trainer_opts o;
    slm_trainer_result r;
    const size_t n = n_params();
    slm_threads_set(2);
    opts(&o, 8);
    float *straight = train(&o, SLM_OK, &r, NULL);
    assert_int_equal(r.steps, 8);
    assert_int_equal(r.tokens, 8 * 2 * B * T);
    opts(&o, 4);
    o.checkpoint = tmp_path("half.ckpt"), o.checkpoint_every = 2;
    float *half = train(&o, SLM_OK, &r, NULL);
    assert_int_equal(r.ckpt_step, 4);
    slm_threads_set(1);
    opts(&o, 8);
    o.resume = tmp_path("half.ckpt");
    float *resumed = train(&o, SLM_OK, &r, NULL);
    slm_threads_set(2);
    assert_int_equal(r.steps, 8);
    assert_int_equal(r.steps_run, 4);
    expect_bytes_equal("8 steps vs 4 + resume 4", resumed, straight, n * sizeof(float));
    size_t moved = 0;
    for (size_t i = 0; i < n; i++) moved += half[i] != straight[i];
    printf("    8 steps straight == 4 + resumed 4 (%zu parameters, %zu differ between step 4 and 8)\n", n, moved);
    assert_true(moved > n / 2);
    free(straight), free(half), free(resumed);
}

static int g_n_eval;
static double g_kld_first, g_kld_last;
static void watch(void *ud, const slm_trainer_point *p) {
    (void)ud;
    if (!p->is_eval) return;
    if (g_n_eval++ == 0) g_kld_first = p->kld;
    g_kld_last = p->kld;
}

/* Half of ffn_up of layer 1 pruned to 0 stays exactly 0 after training; the held-out KLD falls. */
static void test_trainer_masks_keep_zeros(void **state) {
    (void)state;
    make_ids();
    slm_model t = {0}, s = {0};
    slm_err err = {0};
    build(&t, &g_tu, 0);
    build(&s, &g_su, SLM_BUILD_KEEP_ACTS);
    size_t off, n;
    int is_matrix;
    assert_true(slm_train_param_range(&s, SLM_P_WUP, 1, &off, &n, &is_matrix) && is_matrix);
    for (size_t i = 0; i < n; i += 2) s.params_memory[off + i] = 0.0f;
    float *before = malloc(n * sizeof(float));
    memcpy(before, s.params_memory + off, n * sizeof(float));
    slm_trainer_opts o;
    slm_trainer_result r;
    opts(&o, 8);
    o.on_point = watch, g_n_eval = 0;
    if (slm_trainer_run(&t, &s, g_ids, N_IDS, &o, &r, &err)) fail_msg("%s", err.msg);
    assert_true(r.n_frozen >= (int64_t)(n / 2) - 16);
    size_t moved = 0;
    for (size_t i = 0; i < n; i++) {
        if (i % 2 == 0) assert_true(s.params_memory[off + i] == 0.0f);
        else moved += s.params_memory[off + i] != before[i];
    }
    printf("    zeros kept: %zu of %zu; the other half moved: %zu; held-out KLD %.4f -> %.4f (%d evaluations)\n", n / 2, n,
           moved, g_kld_first, g_kld_last, g_n_eval);
    assert_true(moved > n / 4);
    assert_int_equal(g_n_eval, 4); /* steps 0, 3, 6 and the end */
    assert_true(g_kld_last < 0.8 * g_kld_first);
    free(before);
    slm_model_free(&s), slm_model_free(&t);
}

/* After step 2 a weight becomes NaN: step 3 stops the run with SLM_E_DATA and its number; the
   checkpoint of step 2 is left, byte-identical to that of a clean 2-step run. */
static slm_model *g_poison;
static void poison(void *ud, const slm_trainer_point *p) {
    (void)ud;
    size_t off, n;
    int is_matrix;
    if (!p->is_eval && p->step == 2 && slm_train_param_range(g_poison, SLM_P_LNFW, -1, &off, &n, &is_matrix))
        g_poison->params_memory[off] = NAN; /* the final norm: every token's logits */
}

static void test_trainer_nan_stops(void **state) {
    (void)state;
    make_ids();
    slm_trainer_opts o;
    slm_trainer_result r;
    opts(&o, 2);
    o.eval_ids = NULL;
    o.checkpoint = tmp_path("clean.ckpt"), o.checkpoint_every = 1;
    free(train(&o, SLM_OK, &r, NULL));
    slm_model t = {0}, s = {0};
    slm_err err = {0};
    build(&t, &g_tu, 0);
    build(&s, &g_su, SLM_BUILD_KEEP_ACTS);
    opts(&o, 8);
    o.adamw.total_steps = 8, o.eval_ids = NULL;
    o.checkpoint = tmp_path("nan.ckpt"), o.checkpoint_every = 1, o.on_point = poison, g_poison = &s;
    int rc = slm_trainer_run(&t, &s, g_ids, N_IDS, &o, &r, &err);
    printf("    %s\n", err.msg);
    assert_int_equal(rc, SLM_E_DATA);
    assert_non_null(strstr(err.msg, "loss is not finite at step 3"));
    assert_int_equal(r.nan_step, 3);
    assert_int_equal(r.ckpt_step, 2);
    size_t na, nb;
    void *a = read_whole_file(tmp_path("nan.ckpt"), &na), *b = read_whole_file(tmp_path("clean.ckpt"), &nb);
    assert_int_equal(na, nb);
    expect_bytes_equal("checkpoint of step 2", a, b, na);
    free(a), free(b);
    slm_model_free(&s), slm_model_free(&t);
}

/* A checkpoint of batch 2 is refused by a run of batch 1, naming both shapes. */
static void test_trainer_refuses_other_checkpoint(void **state) {
    (void)state;
    make_ids();
    slm_trainer_opts o;
    slm_trainer_result r;
    char msg[512];
    opts(&o, 1);
    o.eval_ids = NULL, o.checkpoint = tmp_path("b2.ckpt");
    free(train(&o, SLM_OK, &r, NULL));
    opts(&o, 2);
    o.eval_ids = NULL, o.batch = 1, o.resume = tmp_path("b2.ckpt");
    free(train(&o, SLM_E_ARG, &r, msg));
    assert_non_null(strstr(msg, "checkpoint of another run"));
    opts(&o, 0);
    free(train(&o, SLM_E_ARG, &r, msg));
    assert_non_null(strstr(msg, "no stop condition"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trainer_resume_bit_identical),
        cmocka_unit_test(test_trainer_masks_keep_zeros),
        cmocka_unit_test(test_trainer_nan_stops),
        cmocka_unit_test(test_trainer_refuses_other_checkpoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
