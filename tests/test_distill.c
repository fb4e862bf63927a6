/* test_distill.c - distill/: the losses (forward KL, reverse KL, JSD with temperature, mixed with
 * cross-entropy) against finite differences and known values; AdamW against a step computed by
 * hand in double, its schedule, clipping and masks, thread-count determinism; a few steps on a
 * tiny model lower the loss with pruned zeros kept at exactly 0; distillation from a teacher
 * lowers the divergence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/rng.h"
#include "core/slm.h"
#include "core/thread.h"
#include "distill/adamw.h"
#include "distill/loss.h"
#include "model/layers.h"
#include "model/train.h"
#include "model/transformer.h"
#include "tests/testutil.h"

/* Loss gradients vs central differences: logits on a grid of 2^-12 and a step of 2^-12, so the
   perturbed f32 logits are exact and the double loss is a smooth function of them; truncation
   error ~h^2 = 6e-8 (times derivatives of order 1/T^3 <= 8), gradient stored in f32 (6e-8). */
#define LOSS_FD_H 0x1p-12
#define LOSS_RTOL 2e-6
/* The forward KL at T = 1 against model/'s slm_kldiv_forward (its log-softmax sums f32 exps):
   1e-6 relative. */
#define KL_EVAL_RTOL 1e-6
/* An AdamW step in f32 against the same formulas in double: a few f32 roundings of values of
   order 1 (the moment updates, the bias corrections, sqrt, the division): 1e-6 relative. */
#define ADAMW_RTOL 1e-6

static void fill_grid(float *x, size_t n, double amp, uint64_t seed) {
    slm_rng r;
    slm_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = (float)(ldexp(floor((2 * slm_rng_uniform(&r) - 1) * amp * 4096), -12));
}

/* ---------------------------------------------------------------------------------------------
 * losses */

static double loss_of(const float *s, const float *t, const int32_t *y, int N, int V, const slm_distill_loss_opts *o) {
    slm_distill_loss_parts parts;
    slm_err err = {0};
    if (slm_distill_loss(&parts, NULL, NULL, NULL, s, t, y, N, V, o, 1.0f, &err)) fail_msg("%s", err.msg);
    return parts.loss;
}

static void test_distill_loss_gradients(void **state) {
    (void)state;
    enum { N = 3, V = 7 };
    float s[N * V], t[N * V], d[N * V], d2[N * V];
    const int32_t y[N] = {2, -1, 6};
    fill_grid(s, N * V, 3, 1);
    fill_grid(t, N * V, 3, 2);
    const float temps[3] = {1.0f, 2.5f, 0.5f}, alphas[3] = {0.0f, 0.3f, 1.0f};
    double worst = 0;
    for (int div = 0; div < 3; div++)
        for (int it = 0; it < 3; it++)
            for (int ia = 0; ia < 3; ia++) {
                const slm_distill_loss_opts o = {div, temps[it], alphas[ia]};
                slm_distill_loss_parts parts;
                slm_err err = {0};
                memset(d, 0, sizeof d);
                if (slm_distill_loss(&parts, d, NULL, NULL, s, t, y, N, V, &o, 1.0f, &err)) fail_msg("%s", err.msg);
                double fd[N * V], scale = 0, e = 0;
                for (int i = 0; i < N * V; i++) {
                    const float s0 = s[i];
                    s[i] = (float)(s0 + LOSS_FD_H);
                    double lp = loss_of(s, t, y, N, V, &o);
                    s[i] = (float)(s0 - LOSS_FD_H);
                    double lm = loss_of(s, t, y, N, V, &o);
                    s[i] = s0;
                    fd[i] = (lp - lm) / (2 * LOSS_FD_H);
                    scale = fmax(scale, fabs(fd[i]));
                }
                for (int i = 0; i < N * V; i++) e = fmax(e, fabs(d[i] - fd[i]) / scale);
                if (!(e <= LOSS_RTOL))
                    fail_msg("%s, T %g, alpha %g: gradient rel error %.3g", slm_kd_div_name(div), (double)temps[it],
                             (double)alphas[ia], e);
                worst = fmax(worst, e);
                /* grad_scale scales, and the gradient adds to what dstudent held */
                for (int i = 0; i < N * V; i++) d2[i] = 1.0f;
                if (slm_distill_loss(&parts, d2, NULL, NULL, s, t, y, N, V, &o, 0.5f, &err)) fail_msg("%s", err.msg);
                for (int i = 0; i < N * V; i++) assert_true(fabs((d2[i] - 1.0f) - 0.5f * d[i]) <= 1e-7);
            }
    printf("    forward KL, reverse KL, JSD x T {1, 2.5, 0.5} x alpha {0, 0.3, 1}: worst gradient rel error %.2e\n", worst);
}

static void test_distill_loss_values(void **state) {
    (void)state;
    enum { N = 4, V = 9 };
    float s[N * V], t[N * V];
    int32_t y[N] = {0, 8, -1, 3};
    fill_grid(s, N * V, 4, 3);
    fill_grid(t, N * V, 4, 4);
    slm_distill_loss_parts p;
    slm_err err = {0};
    for (int div = 0; div < 3; div++) { /* a distribution against itself: 0 */
        slm_distill_loss_opts o = {div, 2.0f, 0.0f};
        assert_int_equal(slm_distill_loss(&p, NULL, NULL, NULL, s, s, NULL, N, V, &o, 1.0f, &err), SLM_OK);
        assert_true(fabs(p.kd) < 1e-15);
    }
    /* forward KL at T = 1 is eval's KL(ref || model); JSD <= log 2 (times T^2); alpha = 1 is the
       mean cross-entropy of the scored tokens, as the model's cross-entropy kernel gives it */
    double kld[N], nr[N], nm[N], dp[N], ce[N];
    uint8_t same[N];
    int32_t y0[N] = {0, 8, 0, 3};
    slm_kldiv_forward(kld, nr, nm, dp, same, t, s, y0, N, V);
    double tok_kd[N], tok_ce[N];
    slm_distill_loss_opts o = {SLM_KD_FORWARD_KL, 1.0f, 0.0f};
    assert_int_equal(slm_distill_loss(&p, NULL, tok_kd, tok_ce, s, t, NULL, N, V, &o, 1.0f, &err), SLM_OK);
    for (int i = 0; i < N; i++) assert_true(fabs(tok_kd[i] - kld[i]) <= KL_EVAL_RTOL * kld[i]);
    o = (slm_distill_loss_opts){SLM_KD_JSD, 3.0f, 0.0f};
    assert_int_equal(slm_distill_loss(&p, NULL, tok_kd, NULL, s, t, NULL, N, V, &o, 1.0f, &err), SLM_OK);
    for (int i = 0; i < N; i++) assert_true(tok_kd[i] > 0 && tok_kd[i] <= 9.0 * log(2.0));
    o = (slm_distill_loss_opts){SLM_KD_REVERSE_KL, 1.0f, 1.0f};
    assert_int_equal(slm_distill_loss(&p, NULL, NULL, tok_ce, s, NULL, y, N, V, &o, 1.0f, &err), SLM_OK); /* no teacher */
    slm_crossentropy_forward(ce, s, y0, N, V);
    assert_int_equal(p.n_ce, 3);
    assert_true(fabs(p.ce - (ce[0] + ce[1] + ce[3]) / 3) <= 1e-6 * p.ce && p.kd == 0 && p.loss == p.ce && tok_ce[2] == 0);
    /* mixing */
    o = (slm_distill_loss_opts){SLM_KD_REVERSE_KL, 2.0f, 0.25f};
    assert_int_equal(slm_distill_loss(&p, NULL, NULL, NULL, s, t, y, N, V, &o, 1.0f, &err), SLM_OK);
    assert_true(fabs(p.loss - (0.75 * p.kd + 0.25 * p.ce)) <= 1e-12 * p.loss);
    assert_int_equal(slm_kd_div_parse("jsd"), SLM_KD_JSD);
    assert_int_equal(slm_kd_div_parse("kl"), -1);
    assert_string_equal(slm_kd_div_name(SLM_KD_REVERSE_KL), "reverse-kl");
}

static void test_distill_loss_rejects(void **state) {
    (void)state;
    float s[2 * 3] = {0, 1, 2, 3, 4, 5}, t[2 * 3] = {1, 1, 1, 1, 1, 1};
    int32_t y[2] = {1, 3};
    slm_distill_loss_parts p;
    slm_err err = {0};
    slm_distill_loss_opts o = {SLM_KD_FORWARD_KL, 0.0f, 0.5f};
    assert_int_equal(slm_distill_loss(&p, NULL, NULL, NULL, s, t, y, 2, 3, &o, 1.0f, &err), SLM_E_ARG);
    assert_non_null(strstr(err.msg, "temperature"));
    o.temperature = 1.0f;
    assert_int_equal(slm_distill_loss(&p, NULL, NULL, NULL, s, t, y, 2, 3, &o, 1.0f, &err), SLM_E_ARG);
    assert_non_null(strstr(err.msg, "outside the vocabulary"));
    y[1] = 2;
    o.alpha = 1.5f;
    assert_int_equal(slm_distill_loss(&p, NULL, NULL, NULL, s, t, y, 2, 3, &o, 1.0f, &err), SLM_E_ARG);
    o.alpha = 0.5f;
    o.divergence = 7;
    assert_int_equal(slm_distill_loss(&p, NULL, NULL, NULL, s, t, y, 2, 3, &o, 1.0f, &err), SLM_E_ARG);
    o.divergence = SLM_KD_JSD;
    assert_int_equal(slm_distill_loss(&p, NULL, NULL, NULL, s, NULL, y, 2, 3, &o, 1.0f, &err), SLM_E_ARG);
    assert_non_null(strstr(err.msg, "teacher"));
    s[4] = NAN;
    assert_int_equal(slm_distill_loss(&p, NULL, NULL, NULL, s, t, y, 2, 3, &o, 1.0f, &err), SLM_E_DATA);
    assert_non_null(strstr(err.msg, "not finite"));
}

/* ---------------------------------------------------------------------------------------------
 * AdamW */

static void test_distill_adamw_schedule(void **state) {
    (void)state;
    slm_adamw_opts o;
    slm_adamw_defaults(&o);
    o.lr = 1e-3f, o.min_lr = 1e-4f, o.warmup_steps = 4, o.total_steps = 14;
    assert_true(slm_adamw_lr(&o, 0) == (float)(1e-3 * 1 / 4));
    assert_true(slm_adamw_lr(&o, 3) == 1e-3f);
    assert_true(fabs(slm_adamw_lr(&o, 4) - 1e-3) < 1e-9);  /* cosine starts at the peak */
    assert_true(fabs(slm_adamw_lr(&o, 9) - 5.5e-4) < 1e-9); /* halfway: the mean of peak and floor */
    assert_true(slm_adamw_lr(&o, 14) == 1e-4f && slm_adamw_lr(&o, 1000) == 1e-4f);
    for (int64_t s = 4; s < 14; s++) assert_true(slm_adamw_lr(&o, s + 1) < slm_adamw_lr(&o, s));
    o.total_steps = 0; /* constant after warmup */
    assert_true(slm_adamw_lr(&o, 100) == 1e-3f);
    slm_adamw a;
    slm_err err = {0};
    o.min_lr = 2e-3f;
    assert_int_equal(slm_adamw_init(&a, &o, 10, &err), SLM_E_ARG);
    o.min_lr = 0, o.beta2 = 1.0f;
    assert_int_equal(slm_adamw_init(&a, &o, 10, &err), SLM_E_ARG);
}

/* Two steps on six parameters (decayed, trained without decay, frozen), with gradient
   accumulation (grad_scale 1/2), warmup, and the clip active on the first step only; the same
   formulas in double. */
static void test_distill_adamw_hand_step(void **state) {
    (void)state;
    enum { n = 6 };
    slm_adamw_opts o = {.lr = 0.01f, .min_lr = 0.001f, .warmup_steps = 2, .total_steps = 10, .beta1 = 0.9f, .beta2 = 0.95f,
                        .eps = 1e-6f, .weight_decay = 0.1f, .clip_norm = 1.0f};
    slm_adamw a;
    slm_err err = {0};
    assert_int_equal(slm_adamw_init(&a, &o, n, &err), SLM_OK);
    assert_int_equal(slm_alloc((void **)&a.mask, n, &err, "mask"), SLM_OK);
    const uint8_t mask[n] = {SLM_ADAMW_DECAY, SLM_ADAMW_DECAY, SLM_ADAMW_TRAIN, SLM_ADAMW_FROZEN, SLM_ADAMW_DECAY, SLM_ADAMW_TRAIN};
    memcpy(a.mask, mask, n);
    float p[n] = {0.5f, -1.25f, 2.0f, 0.0f, 0.125f, -0.75f};
    const float g1[n] = {1.5f, -2.0f, 0.25f, 100.0f, 0.5f, -1.0f}, g2[n] = {0.1f, 0.2f, -0.3f, 100.0f, 0.05f, 0.0f};
    double P[n], M[n] = {0}, Vv[n] = {0};
    for (int i = 0; i < n; i++) P[i] = p[i];
    const float *gs[2] = {g1, g2};
    for (int s = 0; s < 2; s++) {
        /* by hand: norm of g/2 over the unfrozen ones, clip, lr of step s, bias-corrected moments */
        double ss = 0;
        for (int i = 0; i < n; i++)
            if (mask[i]) ss += 0.25 * gs[s][i] * gs[s][i];
        const double norm = sqrt(ss), clip = norm > 1.0 ? 1.0 / (norm + 1e-6) : 1.0;
        const double lr = 0.01 * (s + 1) / 2, t = s + 1;
        for (int i = 0; i < n; i++) {
            if (!mask[i]) continue;
            const double g = 0.5 * gs[s][i] * clip;
            M[i] = 0.9 * M[i] + 0.1 * g;
            Vv[i] = 0.95 * Vv[i] + 0.05 * g * g;
            const double mh = M[i] / (1 - pow(0.9, t)), vh = Vv[i] / (1 - pow(0.95, t));
            P[i] -= lr * (mh / (sqrt(vh) + 1e-6) + (mask[i] == SLM_ADAMW_DECAY ? 0.1 * P[i] : 0.0));
        }
        assert_int_equal(slm_adamw_step(&a, p, gs[s], 0.5f, &err), SLM_OK);
        assert_int_equal(a.clipped, s == 0);
        assert_true(fabs(a.grad_norm - norm) <= 1e-12 * norm);
        assert_true(a.lr == (float)lr);
        for (int i = 0; i < n; i++)
            if (!(fabs(p[i] - P[i]) <= ADAMW_RTOL * fabs(P[i])))
                fail_msg("step %d, parameter %d: %.9g, by hand %.9g", s, i, p[i], P[i]);
    }
    assert_true(p[3] == 0.0f && a.m[3] == 0.0f && a.v[3] == 0.0f); /* frozen: untouched */
    assert_int_equal(a.step, 2);
    float bad[n] = {0, 0, NAN, 0, 0, 0};
    assert_int_equal(slm_adamw_step(&a, p, bad, 1.0f, &err), SLM_E_DATA);
    assert_int_equal(a.step, 2);
    slm_adamw_free(&a);
}

static void test_distill_adamw_threads_deterministic(void **state) {
    (void)state;
    const size_t n = 300001; /* several norm chunks, a partial one last */
    float *p0 = malloc(sizeof(float) * n), *g = malloc(sizeof(float) * n), *p[2];
    fill_grid(p0, n, 1, 11);
    fill_grid(g, n, 0.01, 12);
    slm_adamw_opts o;
    slm_adamw_defaults(&o);
    o.lr = 1e-3f, o.weight_decay = 0.01f, o.clip_norm = 0.5f;
    for (int th = 1; th <= 2; th++) {
        slm_threads_set(th);
        slm_adamw a;
        slm_err err = {0};
        p[th - 1] = malloc(sizeof(float) * n);
        memcpy(p[th - 1], p0, sizeof(float) * n);
        assert_int_equal(slm_adamw_init(&a, &o, n, &err), SLM_OK);
        for (int s = 0; s < 3; s++) assert_int_equal(slm_adamw_step(&a, p[th - 1], g, 1.0f, &err), SLM_OK);
        assert_true(a.clipped);
        slm_adamw_free(&a);
    }
    slm_threads_set(0);
    expect_bytes_equal("AdamW with 1 and 2 threads", p[0], p[1], sizeof(float) * n);
    free(p0), free(g), free(p[0]), free(p[1]);
}

/* ---------------------------------------------------------------------------------------------
 * on a tiny model */

typedef struct syn_ud { uint64_t seed; double noise; } syn_ud;

/* weights from a hash of the name, index and seed; a second seed adds noise (the student) */
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
                                        .rope_theta = 10000.0f, .rope_scale = 1.0f, .tied_embeddings = 1, .bos_id = -1,
                                        .eos_id = -1};

static void tiny_build(slm_model *m, syn_ud *ud, int B, int T, int flags) {
    static test_fn_src fs[2];
    static int k;
    slm_tensor_src ts;
    slm_err err = {0};
    test_fn_src_init(&fs[k], &k_tiny, syn_rows, ud, &ts);
    k = (k + 1) % 2;
    if (slm_model_build_batch(m, &k_tiny, &ts, B, T, flags, &err)) fail_msg("%s", err.msg);
}

/* a fixed batch: a repeating pattern the model can learn, targets the next ids */
static void tiny_batch(int32_t *tok, int32_t *tgt, int B, int T) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            tok[b * T + t] = (int32_t)((t * 7 + b * 3) % 40);
            tgt[b * T + t] = (int32_t)(((t + 1) * 7 + b * 3) % 40);
        }
}

/* 20 steps of AdamW on the cross-entropy of one batch lower it; half of one matrix pruned to 0
   and frozen by the mask stays exactly 0. */
static void test_distill_adamw_trains_tiny_model(void **state) {
    (void)state;
    enum { B = 2, T = 16, STEPS = 20 };
    syn_ud ud = {0, 0.0};
    slm_model m = {0};
    slm_train tr = {0};
    slm_adamw a;
    slm_err err = {0};
    tiny_build(&m, &ud, B, T, SLM_BUILD_KEEP_ACTS);
    size_t off, n;
    int is_matrix;
    assert_true(slm_train_param_range(&m, SLM_P_WUP, 1, &off, &n, &is_matrix) && is_matrix);
    for (size_t i = 0; i < n; i += 2) m.params_memory[off + i] = 0.0f; /* prune every other weight */
    slm_adamw_opts o;
    slm_adamw_defaults(&o);
    o.lr = 3e-3f, o.warmup_steps = 3, o.total_steps = STEPS, o.weight_decay = 0.01f;
    int64_t n_frozen;
    if (slm_train_init(&tr, &m, &err) || slm_adamw_init(&a, &o, tr.num_parameters, &err) ||
        slm_adamw_mask_model(&a, &m, 1, &n_frozen, &err))
        fail_msg("%s", err.msg);
    assert_true(n_frozen >= (int64_t)(n / 2) - 16); /* the pruned half (a few random zeros aside) */
    int32_t tok[B * T], tgt[B * T];
    tiny_batch(tok, tgt, B, T);
    double first = 0, loss = 0;
    for (int s = 0; s < STEPS; s++) {
        if (slm_train_zero_grad(&tr, &err) || slm_train_forward(&tr, tok, B, T, &err) ||
            slm_train_loss_xent(&tr, tgt, 1.0f, &loss, &err) || slm_train_backward(&tr, &err) ||
            slm_adamw_step(&a, m.params_memory, tr.grads_memory, 1.0f, &err))
            fail_msg("step %d: %s", s, err.msg);
        if (s == 0) first = loss;
    }
    printf("    tiny model, %d AdamW steps: cross-entropy %.4f -> %.4f\n", STEPS, first, loss);
    assert_true(loss < 0.5 * first);
    for (size_t i = 0; i < n; i += 2) assert_true(m.params_memory[off + i] == 0.0f);
    slm_adamw_free(&a);
    slm_train_free(&tr);
    slm_model_free(&m);
}

/* The loop the trainer will run: teacher logits, student forward, KD loss (reverse KL at T = 2
   mixed with the text), backward with 2 accumulated micro-batches, AdamW: the divergence falls. */
static void test_distill_kd_lowers_divergence(void **state) {
    (void)state;
    enum { B = 1, T = 16, STEPS = 15, MICRO = 2 };
    syn_ud tu = {0, 0.0}, su = {99, 0.6};
    slm_model teacher = {0}, student = {0};
    slm_train tr = {0};
    slm_adamw a;
    slm_err err = {0};
    tiny_build(&teacher, &tu, B, T, 0);
    tiny_build(&student, &su, B, T, SLM_BUILD_KEEP_ACTS);
    slm_adamw_opts o;
    slm_adamw_defaults(&o);
    o.lr = 2e-3f;
    if (slm_train_init(&tr, &student, &err) || slm_adamw_init(&a, &o, tr.num_parameters, &err) ||
        slm_adamw_mask_model(&a, &student, 0, NULL, &err))
        fail_msg("%s", err.msg);
    const int V = k_tiny.n_vocab;
    float *tl = malloc(sizeof(float) * MICRO * T * V);
    int32_t tok[MICRO][T], tgt[MICRO][T]; /* text: targets are the next ids, the last one unscored */
    for (int k = 0; k < MICRO; k++) {
        for (int t = 0; t < T; t++) tok[k][t] = (int32_t)((t * 7 + 5 * k) % V);
        for (int t = 0; t < T; t++) tgt[k][t] = t + 1 < T ? tok[k][t + 1] : -1;
        if (slm_model_forward(&teacher, tok[k], T, 0, 0, tl + (size_t)k * T * V, &err)) fail_msg("%s", err.msg);
    }
    const slm_distill_loss_opts lo = {SLM_KD_REVERSE_KL, 2.0f, 0.1f};
    double first = 0, kd = 0;
    for (int s = 0; s < STEPS; s++) {
        double sum_kd = 0;
        if (slm_train_zero_grad(&tr, &err)) fail_msg("%s", err.msg);
        for (int k = 0; k < MICRO; k++) {
            slm_distill_loss_parts parts;
            memset(tr.dlogits, 0, sizeof(float) * T * V);
            if (slm_train_forward(&tr, tok[k], B, T, &err) ||
                slm_distill_loss(&parts, tr.dlogits, NULL, NULL, tr.logits, tl + (size_t)k * T * V, tgt[k], T, V, &lo,
                                 1.0f / MICRO, &err) ||
                slm_train_backward(&tr, &err))
                fail_msg("step %d: %s", s, err.msg);
            sum_kd += parts.kd / MICRO;
        }
        if (slm_adamw_step(&a, student.params_memory, tr.grads_memory, 1.0f, &err)) fail_msg("%s", err.msg);
        if (s == 0) first = sum_kd;
        kd = sum_kd;
    }
    printf("    distillation, %d steps (reverse KL, T 2, alpha 0.1, 2 micro-batches): T^2 KL %.4f -> %.4f\n", STEPS,
           first, kd);
    assert_true(kd < 0.5 * first);
    free(tl);
    slm_adamw_free(&a);
    slm_train_free(&tr);
    slm_model_free(&student);
    slm_model_free(&teacher);
}


/* The top-k forward KL (the teacher cache): k = V equals slm_distill_loss's fkl (value and
   gradient, both in double from the same logits); k < V is a lower bound that grows with k; the
   gradient matches central differences for k < V, with alpha mixing the cross-entropy. */
static void test_distill_loss_topk(void **state) {
    (void)state;
    enum { N = 6, V = 40 };
    float zs[N * V], zt[N * V], g1[N * V], g2[N * V], vals[N * V];
    double lse[N], tail[N];
    int32_t ids[N * V], tgt[N];
    fill_grid(zs, N * V, 3.0, 11);
    fill_grid(zt, N * V, 4.0, 12);
    for (int t = 0; t < N; t++) tgt[t] = (t * 7) % V;
    for (int T2 = 0; T2 < 2; T2++) {
        slm_distill_loss_opts o = {.divergence = SLM_KD_FORWARD_KL, .temperature = T2 ? 2.0f : 1.0f, .alpha = 0.25f};
        slm_distill_loss_parts full, top;
        slm_err err = {0};
        for (int t = 0; t < N; t++) slm_distill_topk(zt + t * V, V, V, o.temperature, ids + t * V, vals + t * V, &lse[t], &tail[t]);
        for (int t = 0; t < N; t++)
            for (int j = 1; j < V; j++) assert_true(vals[t * V + j - 1] >= vals[t * V + j]); /* sorted */
        memset(g1, 0, sizeof g1), memset(g2, 0, sizeof g2);
        assert_int_equal(slm_distill_loss(&full, g1, NULL, NULL, zs, zt, tgt, N, V, &o, 1.0f, &err), 0);
        assert_int_equal(slm_distill_loss_topk(&top, g2, zs, ids, vals, lse, tail, V, tgt, N, V, &o, 1.0f, &err), 0);
        assert_true(fabs(top.kd - full.kd) <= 1e-9 * full.kd);
        assert_true(fabs(top.loss - full.loss) <= 1e-9 * full.loss);
        for (int i = 0; i < N * V; i++) assert_true(fabsf(g1[i] - g2[i]) <= 1e-6f + 1e-5f * fabsf(g1[i]));
        double prev = 0.0;
        for (int k = 1; k <= V; k *= 2) { /* lower bound, non-decreasing in k */
            for (int t = 0; t < N; t++) slm_distill_topk(zt + t * V, V, k, o.temperature, ids + t * k, vals + t * k, &lse[t], &tail[t]);
            assert_int_equal(slm_distill_loss_topk(&top, NULL, zs, ids, vals, lse, tail, k, tgt, N, V, &o, 1.0f, &err), 0);
            assert_true(top.kd <= full.kd * (1 + 1e-9) && top.kd >= prev * (1 - 1e-9));
            prev = top.kd;
        }
        /* central differences at k = 5 */
        const int k = 5;
        for (int t = 0; t < N; t++) slm_distill_topk(zt + t * V, V, k, o.temperature, ids + t * k, vals + t * k, &lse[t], &tail[t]);
        memset(g2, 0, sizeof g2);
        assert_int_equal(slm_distill_loss_topk(&top, g2, zs, ids, vals, lse, tail, k, tgt, N, V, &o, 1.0f, &err), 0);
        for (int i = 0; i < N * V; i += 7) {
            slm_distill_loss_parts a, b;
            const float z0 = zs[i];
            zs[i] = z0 + (float)LOSS_FD_H;
            assert_int_equal(slm_distill_loss_topk(&a, NULL, zs, ids, vals, lse, tail, k, tgt, N, V, &o, 1.0f, &err), 0);
            zs[i] = z0 - (float)LOSS_FD_H;
            assert_int_equal(slm_distill_loss_topk(&b, NULL, zs, ids, vals, lse, tail, k, tgt, N, V, &o, 1.0f, &err), 0);
            zs[i] = z0;
            const double fd = (a.loss - b.loss) / (2 * LOSS_FD_H);
            assert_true(fabs(fd - g2[i]) <= 1e-5 + LOSS_RTOL * fabs(fd));
        }
        o.divergence = SLM_KD_JSD;
        assert_int_equal(slm_distill_loss_topk(&top, NULL, zs, ids, vals, lse, tail, k, tgt, N, V, &o, 1.0f, &err), SLM_E_ARG);
        assert_non_null(strstr(err.msg, "forward KL only"));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distill_loss_gradients),
        cmocka_unit_test(test_distill_loss_topk),
        cmocka_unit_test(test_distill_loss_values),
        cmocka_unit_test(test_distill_loss_rejects),
        cmocka_unit_test(test_distill_adamw_schedule),
        cmocka_unit_test(test_distill_adamw_hand_step),
        cmocka_unit_test(test_distill_adamw_threads_deterministic),
        cmocka_unit_test(test_distill_adamw_trains_tiny_model),
        cmocka_unit_test(test_distill_kd_lowers_divergence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
