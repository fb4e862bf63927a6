/* test_train.c - the backward pass: every layer's `*_backward` against central finite differences
 * of a double-precision forward on tiny shapes (accumulation with += included), the fast kernels
 * against the scalar references bit for bit; the whole model against PyTorch (loss and every
 * parameter gradient of fixtures/train_ref.safetensors, made by tests/ref/make_train_ref.py) and
 * against finite differences of a double-precision model; gradients identical for 1 and 2
 * threads, accumulating over calls, padding rows zero; misuse refused with a message. */
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

#include "core/rng.h"
#include "core/slm.h"
#include "core/thread.h"
#include "model/catalog.h"
#include "model/layers.h"
#include "model/train.h"
#include "model/transformer.h"
#include "tests/testutil.h"

/* Relative error of a gradient: max_i |a_i - b_i| / max_i |b_i| over one tensor (b the reference).
   Layer kernels vs double finite differences: the kernels run in float on tiny shapes (sums of
   <= 64 terms, one exp per probability): measured <= 2e-7 of the largest element; 1e-6 leaves
   room and catches any wrong term (those are O(1) relative). */
#define LAYER_RTOL 1e-6
/* Central differences of the double forwards: step 1e-4 on inputs of order 1 gives truncation
   ~1e-9 relative and rounding ~1e-12: both far below LAYER_RTOL. */
#define FD_H 1e-4
/* The whole model against PyTorch's float64 gradients (the bound): float32 PyTorch
   itself is 2.4e-6 away (make_train_ref.py reports it). */
#define TORCH_RTOL 1e-5
/* Loss against PyTorch's float64 loss: float32 logits of a few units, log-softmax in double. */
#define TORCH_LOSS_RTOL 1e-6
/* The whole model against finite differences of a double model (sampled parameters, the
   tensor's largest gradient as the scale): as TORCH_RTOL; the double model's RoPE angles are
   not rounded to float like slm's table (a 1e-8 relative difference of the function). */
#define MODEL_FD_RTOL 1e-5
#define MODEL_FD_H 1e-5
#define FD_SAMPLES 8 /* parameters per tensor checked by finite differences */

/* ---------------------------------------------------------------------------------------------
 * helpers */

static void fill_uniform(float *x, size_t n, double lo, double hi, uint64_t seed) {
    slm_rng r;
    slm_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * slm_rng_uniform(&r));
}

static double *to_double(const float *x, size_t n) {
    double *d = malloc(sizeof(double) * (n ? n : 1));
    assert_non_null(d);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

/* max |a - b| / max |b| */
static double rel_err(const float *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        num = isnan(d) || d > num ? (isnan(d) ? INFINITY : d) : num;
        den = fmax(den, fabs(b[i]));
    }
    return den > 0 ? num / den : num;
}

static void expect_rel(const char *what, const float *a, const double *b, size_t n, double tol) {
    double e = rel_err(a, b, n);
    if (!(e <= tol)) {
        size_t worst = 0;
        for (size_t i = 0; i < n; i++)
            if (fabs(a[i] - b[i]) > fabs(a[worst] - b[worst])) worst = i;
        fail_msg("%s: relative error %.3g > %.3g (worst at %zu: got %.9g want %.9g)", what, e, tol, worst, a[worst],
                 b[worst]);
    }
}

/* a - base: what a backward added to a buffer that held base before */
static float *added(const float *a, const float *base, size_t n) {
    float *d = malloc(sizeof(float) * (n ? n : 1));
    assert_non_null(d);
    for (size_t i = 0; i < n; i++) d[i] = a[i] - base[i];
    return d;
}

/* A scalar function of x (n doubles) and its central-difference gradient. */
typedef double (*scalar_fn)(void *ctx, const double *x);

static void fd_grad(double *g, scalar_fn f, void *ctx, double *x, size_t n, double h) {
    for (size_t i = 0; i < n; i++) {
        double x0 = x[i];
        x[i] = x0 + h;
        double fp = f(ctx, x);
        x[i] = x0 - h;
        double fm = f(ctx, x);
        x[i] = x0;
        g[i] = (fp - fm) / (2 * h);
    }
}

/* ---------------------------------------------------------------------------------------------
 * layers: each loss is L = sum(r * out) with fixed weights r, so dout = r */

/* --- rmsnorm: x (T, C) then w (C) in one vector */
typedef struct norm_ctx { int T, C; double eps; const double *r; } norm_ctx;

static double norm_loss(void *ud, const double *xw) {
    const norm_ctx *k = ud;
    const double *w = xw + k->T * k->C;
    double L = 0;
    for (int t = 0; t < k->T; t++) {
        const double *x = xw + t * k->C;
        double ss = 0;
        for (int c = 0; c < k->C; c++) ss += x[c] * x[c];
        double s = 1.0 / sqrt(ss / k->C + k->eps);
        for (int c = 0; c < k->C; c++) L += k->r[t * k->C + c] * x[c] * s * w[c];
    }
    return L;
}

static void test_train_rmsnorm_backward(void **state) {
    (void)state;
    enum { T = 5, C = 19 };
    const float eps = 1e-5f;
    float x[T * C + C], out[T * C], rstd[T], r[T * C], dx[T * C], dw[C], dx0[T * C], dw0[C];
    fill_uniform(x, T * C + C, -1.5, 1.5, 1);
    for (int c = 0; c < C; c++) x[T * C + c] = 1.0f + 0.3f * x[T * C + c];
    fill_uniform(r, T * C, -1, 1, 2);
    fill_uniform(dx0, T * C, -0.5, 0.5, 3); /* the backward adds to what is there */
    fill_uniform(dw0, C, -0.5, 0.5, 4);
    memcpy(dx, dx0, sizeof dx), memcpy(dw, dw0, sizeof dw);
    slm_rmsnorm_forward(out, rstd, x, x + T * C, T, C, eps);
    slm_rmsnorm_backward(dx, dw, r, x, x + T * C, rstd, T, C);
    double *xd = to_double(x, T * C + C), *rd = to_double(r, T * C), g[T * C + C];
    norm_ctx k = {T, C, eps, rd};
    fd_grad(g, norm_loss, &k, xd, T * C + C, FD_H);
    float *ax = added(dx, dx0, T * C), *aw = added(dw, dw0, C);
    expect_rel("rmsnorm dinp", ax, g, T * C, LAYER_RTOL);
    expect_rel("rmsnorm dweight", aw, g + T * C, C, LAYER_RTOL);
    printf("    rmsnorm: dinp %.2e, dweight %.2e\n", rel_err(ax, g, T * C), rel_err(aw, g + T * C, C));
    free(ax), free(aw), free(xd), free(rd);
}

/* --- per-head rmsnorm (q/k norms of gemma3, qwen3): x (T rows of ld, H heads of D) then w (D) */
typedef struct hnorm_ctx { int T, H, D, ld; double eps; const double *r; } hnorm_ctx;

static double hnorm_loss(void *ud, const double *xw) {
    const hnorm_ctx *k = ud;
    const double *w = xw + k->T * k->ld;
    double L = 0;
    for (int t = 0; t < k->T; t++)
        for (int h = 0; h < k->H; h++) {
            const double *x = xw + t * k->ld + h * k->D;
            double ss = 0;
            for (int d = 0; d < k->D; d++) ss += x[d] * x[d];
            double s = 1.0 / sqrt(ss / k->D + k->eps);
            for (int d = 0; d < k->D; d++) L += k->r[t * k->ld + h * k->D + d] * x[d] * s * w[d];
        }
    return L;
}

static void test_train_head_rmsnorm_backward(void **state) {
    (void)state;
    enum { T = 4, H = 3, D = 10, LD = H * D + 5 }; /* rows wider than the heads, as q inside qkv */
    const float eps = 1e-6f;
    float x[T * LD + D], y[T * LD], r[T * LD], d[T * LD], dw[D], dw0[D];
    fill_uniform(x, T * LD + D, -1.5, 1.5, 11);
    for (int j = 0; j < D; j++) x[T * LD + j] = 1.0f + 0.3f * x[T * LD + j];
    fill_uniform(r, T * LD, -1, 1, 12);
    fill_uniform(dw0, D, -0.5, 0.5, 13); /* dw accumulates */
    memcpy(y, x, sizeof y);
    slm_head_rmsnorm_forward(y, LD, x + T * LD, T, H, D, eps);
    for (int t = 0; t < T; t++) { /* the forward: head 1 of each token in double */
        double ss = 0;
        for (int j = 0; j < D; j++) ss += (double)x[t * LD + D + j] * x[t * LD + D + j];
        for (int j = 0; j < D; j++)
            assert_true(fabs(y[t * LD + D + j] - x[t * LD + D + j] / sqrt(ss / D + eps) * x[T * LD + j]) < 1e-5);
        assert_true(y[t * LD + H * D] == x[t * LD + H * D]); /* past the heads: untouched */
    }
    memcpy(d, r, sizeof d), memcpy(dw, dw0, sizeof dw);
    slm_head_rmsnorm_backward(d, LD, dw, x, LD, x + T * LD, T, H, D, eps);
    double *xd = to_double(x, T * LD + D), *rd = to_double(r, T * LD), g[T * LD + D];
    for (int t = 0; t < T; t++) /* the columns past the heads are not inputs: zero their weights */
        for (int j = H * D; j < LD; j++) rd[t * LD + j] = 0;
    hnorm_ctx k = {T, H, D, LD, eps, rd};
    fd_grad(g, hnorm_loss, &k, xd, T * LD + D, FD_H);
    float dx[T * H * D];
    double gx[T * H * D];
    for (int t = 0; t < T; t++)
        for (int j = 0; j < H * D; j++) dx[t * H * D + j] = d[t * LD + j], gx[t * H * D + j] = g[t * LD + j];
    for (int t = 0; t < T; t++) /* and the backward leaves them alone */
        for (int j = H * D; j < LD; j++) assert_true(d[t * LD + j] == r[t * LD + j]);
    float *aw = added(dw, dw0, D);
    expect_rel("head rmsnorm dinp", dx, gx, T * H * D, LAYER_RTOL);
    expect_rel("head rmsnorm dweight", aw, g + T * LD, D, LAYER_RTOL);
    printf("    head rmsnorm: dinp %.2e, dweight %.2e\n", rel_err(dx, gx, T * H * D), rel_err(aw, g + T * LD, D));
    free(aw), free(xd), free(rd);
}

/* --- matmul: inp (T, C), W (OC, C), bias (OC) in one vector */
typedef struct mm_ctx { int T, C, OC; const double *r; } mm_ctx;

static double mm_loss(void *ud, const double *v) {
    const mm_ctx *k = ud;
    const double *x = v, *w = v + k->T * k->C, *b = w + k->OC * k->C;
    double L = 0;
    for (int t = 0; t < k->T; t++)
        for (int o = 0; o < k->OC; o++) {
            double acc = b[o];
            for (int c = 0; c < k->C; c++) acc += x[t * k->C + c] * w[o * k->C + c];
            L += k->r[t * k->OC + o] * acc;
        }
    return L;
}

/* One shape: dout is a column slice (ld_dout > OC) whose other columns hold NaN (never read);
   OC and C not multiples of 16 or 6 (partial panels, partial tiles). Returns the worst error. */
static double check_matmul(int T, int C, int OC, int ld, uint64_t seed) {
    const size_t nv = (size_t)T * C + (size_t)OC * C + OC, np = slm_panel_floats(OC, C);
    float *v = malloc(sizeof(float) * nv), *wp = calloc(np, sizeof(float)), *r = malloc(sizeof(float) * T * OC);
    float *dout = malloc(sizeof(float) * T * ld), *dx = malloc(sizeof(float) * T * C), *dx0 = malloc(sizeof(float) * T * C);
    float *dwp = calloc(np, sizeof(float)), *db = malloc(sizeof(float) * OC), *dw = malloc(sizeof(float) * OC * C);
    float *dwp0 = calloc(np, sizeof(float));
    fill_uniform(v, nv, -1, 1, seed);
    fill_uniform(r, (size_t)T * OC, -1, 1, seed + 1);
    fill_uniform(dx0, (size_t)T * C, -0.5, 0.5, seed + 2);
    float tmp[8192];
    fill_uniform(tmp, (size_t)OC * C, -0.5, 0.5, seed + 3); /* grads already there (padding stays 0) */
    slm_panel_pack_rows(dwp0, tmp, 0, OC, C);
    slm_panel_pack_rows(wp, v + T * C, 0, OC, C);
    for (int t = 0; t < T; t++)
        for (int j = 0; j < ld; j++) dout[t * ld + j] = j < OC ? r[t * OC + j] : NAN;
    memcpy(dx, dx0, sizeof(float) * T * C);
    memcpy(dwp, dwp0, sizeof(float) * np);
    for (int o = 0; o < OC; o++) db[o] = 0.125f;
    slm_matmul_backward(dx, dwp, db, dout, ld, v, wp, T, C, OC);
    for (size_t i = 0; i < np; i++) dwp[i] -= dwp0[i];
    float *repacked = calloc(np, sizeof(float)); /* rows past OC (panel padding) stay 0 */
    slm_panel_unpack_rows(dw, dwp, 0, OC, C);
    slm_panel_pack_rows(repacked, dw, 0, OC, C);
    expect_bytes_equal("matmul dweight padding", repacked, dwp, sizeof(float) * np);
    free(repacked);
    slm_panel_unpack_rows(dw, dwp, 0, OC, C);
    for (int o = 0; o < OC; o++) db[o] -= 0.125f;
    double *vd = to_double(v, nv), *rd = to_double(r, (size_t)T * OC), *g = malloc(sizeof(double) * nv);
    mm_ctx k = {T, C, OC, rd};
    fd_grad(g, mm_loss, &k, vd, nv, FD_H);
    float *ax = added(dx, dx0, (size_t)T * C);
    expect_rel("matmul dinp", ax, g, (size_t)T * C, LAYER_RTOL);
    expect_rel("matmul dweight", dw, g + T * C, (size_t)OC * C, LAYER_RTOL);
    expect_rel("matmul dbias", db, g + T * C + OC * C, OC, LAYER_RTOL);
    double worst = fmax(rel_err(ax, g, (size_t)T * C), fmax(rel_err(dw, g + T * C, (size_t)OC * C), rel_err(db, g + T * C + OC * C, OC)));
    free(v), free(wp), free(r), free(dout), free(dx), free(dx0), free(dwp), free(dwp0), free(db), free(dw), free(vd),
        free(rd), free(g), free(ax);
    return worst;
}

static void test_train_matmul_backward(void **state) {
    (void)state;
    double w = check_matmul(7, 13, 21, 25, 10);
    w = fmax(w, check_matmul(13, 20, 32, 32, 20));
    w = fmax(w, check_matmul(1, 3, 5, 9, 30));
    w = fmax(w, check_matmul(100, 3, 300, 301, 40)); /* two token blocks, two chunks of outputs */
    printf("    matmul: worst of dinp, dweight, dbias %.2e\n", w);
}

/* The AVX2 kernels give the scalar reference's bits (a no-op check on a CPU without AVX2). */
static void test_train_matmul_backward_simd_equals_ref(void **state) {
    (void)state;
    const int shapes[][4] = {{7, 13, 21, 25}, {37, 64, 48, 50}, {6, 6, 16, 16}, {50, 23, 97, 100}, {1, 40, 7, 7}, {100, 20, 300, 301}, {200, 17, 513, 520}};
    for (size_t s = 0; s < SLM_ARRAY_LEN(shapes); s++) {
        const int T = shapes[s][0], C = shapes[s][1], OC = shapes[s][2], ld = shapes[s][3];
        const size_t np = slm_panel_floats(OC, C);
        float *x = malloc(sizeof(float) * T * C), *w = malloc(sizeof(float) * OC * C), *wp = calloc(np, sizeof(float));
        float *dout = malloc(sizeof(float) * T * ld), *da[2], *dw[2], *db[2];
        fill_uniform(x, (size_t)T * C, -1, 1, 100 + s), fill_uniform(w, (size_t)OC * C, -1, 1, 200 + s);
        fill_uniform(dout, (size_t)T * ld, -1, 1, 300 + s);
        slm_panel_pack_rows(wp, w, 0, OC, C);
        for (int i = 0; i < 2; i++) {
            da[i] = calloc((size_t)T * C, sizeof(float)), dw[i] = calloc(np, sizeof(float)), db[i] = calloc(OC, sizeof(float));
            (i ? slm_matmul_backward_ref : slm_matmul_backward)(da[i], dw[i], db[i], dout, ld, x, wp, T, C, OC);
        }
        expect_bytes_equal("matmul dinp simd vs ref", da[0], da[1], sizeof(float) * T * C);
        expect_bytes_equal("matmul dweight simd vs ref", dw[0], dw[1], sizeof(float) * np);
        expect_bytes_equal("matmul dbias simd vs ref", db[0], db[1], sizeof(float) * OC);
        for (int i = 0; i < 2; i++) free(da[i]), free(dw[i]), free(db[i]);
        free(x), free(w), free(wp), free(dout);
    }
}

/* --- rope: linear in x, the float (cos, sin) table taken as exact */
typedef struct rope_ctx { int T, pos0, nh, D, ld, neox; const float *cs; const double *r; } rope_ctx;

static double rope_loss(void *ud, const double *x) {
    const rope_ctx *k = ud;
    double L = 0;
    for (int t = 0; t < k->T; t++)
        for (int h = 0; h < k->nh; h++)
            for (int i = 0; i < k->D / 2; i++) {
                int i0 = k->neox ? i : 2 * i, i1 = k->neox ? i + k->D / 2 : 2 * i + 1;
                double c = k->cs[(size_t)(k->pos0 + t) * k->D + 2 * i], s = k->cs[(size_t)(k->pos0 + t) * k->D + 2 * i + 1];
                double a = x[t * k->ld + h * k->D + i0], b = x[t * k->ld + h * k->D + i1];
                L += k->r[t * k->ld + h * k->D + i0] * (a * c - b * s) + k->r[t * k->ld + h * k->D + i1] * (a * s + b * c);
            }
    return L;
}

static void test_train_rope_backward(void **state) {
    (void)state;
    enum { T = 6, POS0 = 3, NH = 3, D = 8, LD = 27, NPOS = 16 };
    float cs[NPOS * D], x[T * LD], r[T * LD], dx[T * LD];
    for (int p = 0; p < NPOS; p++)
        for (int i = 0; i < D / 2; i++) {
            double a = p * pow(10000.0, -2.0 * i / D);
            cs[p * D + 2 * i] = (float)cos(a), cs[p * D + 2 * i + 1] = (float)sin(a);
        }
    fill_uniform(x, T * LD, -1, 1, 40);
    fill_uniform(r, T * LD, -1, 1, 41);
    for (int neox = 0; neox < 2; neox++) {
        memcpy(dx, r, sizeof dx);
        slm_rope_backward(dx, LD, cs, T, POS0, NH, D, neox);
        double *xd = to_double(x, T * LD), *rd = to_double(r, T * LD), g[T * LD];
        rope_ctx k = {T, POS0, NH, D, LD, neox, cs, rd};
        fd_grad(g, rope_loss, &k, xd, T * LD, FD_H);
        for (int t = 0; t < T; t++) /* columns past the heads: untouched */
            for (int j = NH * D; j < LD; j++) {
                assert_true(dx[t * LD + j] == r[t * LD + j]);
                g[t * LD + j] = r[t * LD + j];
            }
        expect_rel(neox ? "rope (neox) backward" : "rope (pairs) backward", dx, g, T * LD, LAYER_RTOL);
        free(xd), free(rd);
    }
}

/* --- attention: q | k | v rows (T, ld) */
typedef struct att_ctx { int T, H, Hkv, D, ld; const double *r; } att_ctx;

static double att_loss(void *ud, const double *qkv) {
    const att_ctx *k = ud;
    const int T = k->T, H = k->H, D = k->D, ld = k->ld, group = H / k->Hkv;
    double L = 0, p[64];
    for (int i = 0; i < T; i++)
        for (int h = 0; h < H; h++) {
            const double *q = qkv + i * ld + h * D;
            const int ko = H * D + (h / group) * D, vo = H * D + k->Hkv * D + (h / group) * D;
            double mx = -INFINITY, sum = 0;
            for (int j = 0; j <= i; j++) {
                double s = 0;
                for (int d = 0; d < D; d++) s += q[d] * qkv[j * ld + ko + d];
                p[j] = s / sqrt((double)D);
                mx = fmax(mx, p[j]);
            }
            for (int j = 0; j <= i; j++) sum += (p[j] = exp(p[j] - mx));
            for (int d = 0; d < D; d++) {
                double o = 0;
                for (int j = 0; j <= i; j++) o += p[j] / sum * qkv[j * ld + vo + d];
                L += k->r[(i * H + h) * D + d] * o;
            }
        }
    return L;
}

/* Returns the worst error; checks the AVX2 path against the scalar one bit for bit. */
static double check_attention(int T, int H, int Hkv, int D, uint64_t seed) {
    const int QKV = (H + 2 * Hkv) * D, ld = QKV + 3, ctx = (T + 15) / 16 * 16;
    const size_t n = (size_t)T * ld;
    float *qkv = malloc(sizeof(float) * n), *out = malloc(sizeof(float) * T * H * D), *lse = malloc(sizeof(float) * T * H);
    float *kc = calloc((size_t)Hkv * ctx * D, sizeof(float)), *vc = calloc((size_t)Hkv * ctx * D, sizeof(float));
    float *r = malloc(sizeof(float) * T * H * D), *delta = malloc(sizeof(float) * T * H);
    float *dq[2] = {malloc(sizeof(float) * n), malloc(sizeof(float) * n)}, *dq0 = malloc(sizeof(float) * n);
    fill_uniform(qkv, n, -1.5, 1.5, seed);
    fill_uniform(r, (size_t)T * H * D, -1, 1, seed + 1);
    fill_uniform(dq0, n, -0.5, 0.5, seed + 2);
    slm_kv_store(kc, vc, qkv, ld, H * D, H * D + Hkv * D, T, 0, Hkv, D, ctx);
    slm_attention_forward(out, lse, qkv, ld, kc, vc, T, 0, H, Hkv, D, ctx);
    for (int i = 0; i < 2; i++) {
        memcpy(dq[i], dq0, sizeof(float) * n);
        (i ? slm_attention_backward_ref : slm_attention_backward)(dq[i], delta, r, qkv, out, lse, ld, H * D, H * D + Hkv * D,
                                                                  T, H, Hkv, D);
    }
    expect_bytes_equal("attention backward simd vs ref", dq[0], dq[1], sizeof(float) * n);
    float *a = added(dq[0], dq0, n);
    double *xd = to_double(qkv, n), *rd = to_double(r, (size_t)T * H * D), *g = malloc(sizeof(double) * n);
    att_ctx k = {T, H, Hkv, D, ld, rd};
    fd_grad(g, att_loss, &k, xd, n, FD_H);
    for (int t = 0; t < T; t++) /* the extra columns: untouched */
        for (int j = QKV; j < ld; j++) assert_true(a[t * ld + j] == 0.0f);
    expect_rel("attention dqkv", a, g, n, LAYER_RTOL);
    double e = rel_err(a, g, n);
    free(qkv), free(out), free(lse), free(kc), free(vc), free(r), free(delta), free(dq[0]), free(dq[1]), free(dq0), free(a),
        free(xd), free(rd), free(g);
    return e;
}

static void test_train_attention_backward(void **state) {
    (void)state;
    double e = check_attention(11, 4, 2, 8, 50); /* GQA, AVX2 path (D % 8 == 0), a partial block of 8 keys */
    e = fmax(e, check_attention(5, 3, 3, 6, 60)); /* MHA, D = 6: the scalar path */
    e = fmax(e, check_attention(20, 2, 1, 16, 70));
    printf("    attention: dq | dk | dv %.2e\n", e);
}

/* --- swiglu: gate_up (T, 2F) */
typedef struct sw_ctx { int T, F; const double *r; } sw_ctx;

static double sw_loss(void *ud, const double *gu) {
    const sw_ctx *k = ud;
    double L = 0;
    for (int t = 0; t < k->T; t++)
        for (int i = 0; i < k->F; i++) {
            double g = gu[t * 2 * k->F + i], u = gu[t * 2 * k->F + k->F + i];
            L += k->r[t * k->F + i] * g / (1 + exp(-g)) * u;
        }
    return L;
}

static void test_train_swiglu_backward(void **state) {
    (void)state;
    enum { T = 4, F = 9 };
    float gu[T * 2 * F], r[T * F], d[T * 2 * F], d0[T * 2 * F];
    fill_uniform(gu, T * 2 * F, -6, 6, 80);
    fill_uniform(r, T * F, -1, 1, 81);
    fill_uniform(d0, T * 2 * F, -0.5, 0.5, 82);
    memcpy(d, d0, sizeof d);
    slm_swiglu_backward(d, r, gu, T, F);
    double *xd = to_double(gu, T * 2 * F), *rd = to_double(r, T * F), g[T * 2 * F];
    sw_ctx k = {T, F, rd};
    fd_grad(g, sw_loss, &k, xd, T * 2 * F, FD_H);
    float *a = added(d, d0, T * 2 * F);
    expect_rel("swiglu backward", a, g, T * 2 * F, LAYER_RTOL);
    printf("    swiglu: %.2e\n", rel_err(a, g, T * 2 * F));
    free(a), free(xd), free(rd);
    /* the AVX2 path gives the scalar reference's bits (8 lanes and a scalar tail) */
    enum { T2 = 3, F2 = 37 };
    float gu2[T2 * 2 * F2], r2[T2 * F2], e1[T2 * 2 * F2] = {0}, e2[T2 * 2 * F2] = {0};
    fill_uniform(gu2, T2 * 2 * F2, -30, 30, 83);
    fill_uniform(r2, T2 * F2, -1, 1, 84);
    slm_swiglu_backward(e1, r2, gu2, T2, F2);
    slm_swiglu_backward_ref(e2, r2, gu2, T2, F2);
    expect_bytes_equal("swiglu backward simd vs ref", e1, e2, sizeof e1);
}

/* --- gemma: geglu (tanh GELU) and soft capping */
static double gg_loss(void *ud, const double *gu) {
    const sw_ctx *k = ud;
    double L = 0;
    for (int t = 0; t < k->T; t++)
        for (int i = 0; i < k->F; i++) {
            double g = gu[t * 2 * k->F + i], u = gu[t * 2 * k->F + k->F + i];
            L += k->r[t * k->F + i] * 0.5 * g * (1 + tanh(0.7978845608028654 * (g + 0.044715 * g * g * g))) * u;
        }
    return L;
}

static void test_train_geglu_backward(void **state) {
    (void)state;
    enum { T = 4, F = 9 };
    float gu[T * 2 * F], r[T * F], d[T * 2 * F], d0[T * 2 * F], out[T * F], outg[T * F];
    fill_uniform(gu, T * 2 * F, -6, 6, 90);
    fill_uniform(r, T * F, -1, 1, 91);
    fill_uniform(d0, T * 2 * F, -0.5, 0.5, 92);
    memcpy(d, d0, sizeof d);
    slm_geglu_backward(d, r, gu, T, F);
    double *xd = to_double(gu, T * 2 * F), *rd = to_double(r, T * F), g[T * 2 * F];
    sw_ctx k = {T, F, rd};
    fd_grad(g, gg_loss, &k, xd, T * 2 * F, FD_H);
    float *a = added(d, d0, T * 2 * F);
    expect_rel("geglu backward", a, g, T * 2 * F, LAYER_RTOL);
    printf("    geglu: %.2e\n", rel_err(a, g, T * 2 * F));
    /* forward: f32 and ggml's f16 table agree to f16 precision, and give 0 / x beyond +-10 */
    slm_geglu_forward(out, gu, T, F, 0);
    slm_geglu_forward(outg, gu, T, F, 1);
    for (int i = 0; i < T * F; i++) assert_true(fabsf(out[i] - outg[i]) <= 2e-3f * (fabsf(out[i]) + 1e-2f));
    float big[4] = {-11, 12, 1, 1}, o2[2];
    slm_geglu_forward(o2, big, 1, 2, 1);
    assert_true(o2[0] == 0.0f && o2[1] == 12.0f);
    free(a), free(xd), free(rd);
}

typedef struct cap_ctx { int n; float cap; const double *r; } cap_ctx;

static double cap_loss(void *ud, const double *x) {
    const cap_ctx *k = ud;
    double L = 0;
    for (int i = 0; i < k->n; i++) L += k->r[i] * k->cap * tanh(x[i] / k->cap);
    return L;
}

static void test_train_softcap_backward(void **state) {
    (void)state;
    enum { N = 40 };
    float x[N], y[N], r[N];
    fill_uniform(x, N, -80, 80, 93);
    fill_uniform(r, N, -1, 1, 94);
    memcpy(y, x, sizeof x);
    slm_softcap_forward(y, N, 30.0f);
    for (int i = 0; i < N; i++) assert_true(fabsf(y[i] - 30.0f * tanhf(x[i] / 30.0f)) <= 1e-4f);
    float d[N];
    memcpy(d, r, sizeof r);
    slm_softcap_backward(d, y, N, 30.0f);
    double *xd = to_double(x, N), *rd = to_double(r, N), g[N];
    cap_ctx k = {N, 30.0f, rd};
    fd_grad(g, cap_loss, &k, xd, N, FD_H);
    expect_rel("softcap backward", d, g, N, LAYER_RTOL);
    free(xd), free(rd);
}

/* --- embedding and residual: sums of dout, compared exactly (adds in token order) */
static void test_train_embedding_residual_backward(void **state) {
    (void)state;
    enum { T = 7, C = 5, V = 20 };
    const int32_t tok[T] = {3, 17, 3, 0, 19, 3, 17};
    float dout[T * C], dwte[V * 16 * 2] = {0}, want[V * C] = {0}, got[V * C];
    fill_uniform(dout, T * C, -1, 1, 90);
    assert_true(slm_panel_floats(V, C) <= SLM_ARRAY_LEN(dwte));
    slm_embedding_backward(dwte, dout, tok, T, C);
    for (int t = 0; t < T; t++)
        for (int c = 0; c < C; c++) want[tok[t] * C + c] += dout[t * C + c];
    slm_panel_unpack_rows(got, dwte, 0, V, C);
    expect_bytes_equal("embedding backward", got, want, sizeof got);
    float d1[T * C], d2[T * C];
    for (int i = 0; i < T * C; i++) d1[i] = 1.0f, d2[i] = -2.0f;
    slm_residual_backward(d1, d2, dout, T * C);
    for (int i = 0; i < T * C; i++) assert_true(d1[i] == 1.0f + dout[i] && d2[i] == -2.0f + dout[i]);
    memcpy(d1, dout, sizeof d1); /* in place: dinp1 is dout, only dinp2 gets it */
    slm_residual_backward(d1, d2, d1, T * C);
    for (int i = 0; i < T * C; i++) assert_true(d1[i] == dout[i] && d2[i] == (-2.0f + dout[i]) + dout[i]);
}

/* --- cross-entropy: sum_t dl_t * -log softmax(x_t)[target_t] */
typedef struct ce_ctx { int T, V; const int32_t *tgt; const double *dl; } ce_ctx;

static double ce_loss(void *ud, const double *x) {
    const ce_ctx *k = ud;
    double L = 0;
    for (int t = 0; t < k->T; t++) {
        if (k->tgt[t] < 0) continue;
        double mx = -INFINITY, s = 0;
        for (int i = 0; i < k->V; i++) mx = fmax(mx, x[t * k->V + i]);
        for (int i = 0; i < k->V; i++) s += exp(x[t * k->V + i] - mx);
        L += k->dl[t] * -(x[t * k->V + k->tgt[t]] - mx - log(s));
    }
    return L;
}

static void test_train_crossentropy_backward(void **state) {
    (void)state;
    enum { T = 5, V = 11 };
    const int32_t tgt[T] = {3, -1, 10, 0, 3};
    float x[T * V], dl[T], d[T * V], d0[T * V];
    fill_uniform(x, T * V, -4, 4, 95);
    fill_uniform(dl, T, 0.1, 1, 96);
    fill_uniform(d0, T * V, -0.5, 0.5, 97);
    memcpy(d, d0, sizeof d);
    slm_crossentropy_softmax_backward(d, dl, x, tgt, T, V);
    double *xd = to_double(x, T * V), *dld = to_double(dl, T), g[T * V];
    ce_ctx k = {T, V, tgt, dld};
    fd_grad(g, ce_loss, &k, xd, T * V, FD_H);
    float *a = added(d, d0, T * V);
    expect_rel("crossentropy backward", a, g, T * V, LAYER_RTOL);
    for (int i = 0; i < V; i++) assert_true(d[V + i] == d0[V + i]); /* the unscored token: untouched */
    printf("    crossentropy: %.2e\n", rel_err(a, g, T * V));
    free(a), free(xd), free(dld);
}

/* ---------------------------------------------------------------------------------------------
 * the whole model: fixtures/train_ref.safetensors (tests/ref/make_train_ref.py) */

#define TRAIN_REF "fixtures/train_ref.safetensors"

typedef struct fixture {
    char *buf;
    cJSON *hdr;
    const uint8_t *data;
    size_t data_size;
} fixture;

static void fixture_open(fixture *f) {
    size_t n;
    f->buf = read_whole_file(TRAIN_REF, &n);
    assert_true(n >= 8);
    uint64_t len = 0;
    for (int i = 7; i >= 0; i--) len = len << 8 | (uint8_t)f->buf[i];
    assert_true(len <= n - 8);
    f->hdr = cJSON_ParseWithLength(f->buf + 8, (size_t)len);
    if (!f->hdr) fail_msg("%s: header is not JSON", TRAIN_REF);
    f->data = (const uint8_t *)f->buf + 8 + len;
    f->data_size = n - 8 - (size_t)len;
}

static void fixture_close(fixture *f) {
    cJSON_Delete(f->hdr);
    free(f->buf);
}

static const char *fixture_meta(const fixture *f, const char *key) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(f->hdr, "__metadata__"), key);
    if (!cJSON_IsString(m)) fail_msg("%s: no metadata '%s'", TRAIN_REF, key);
    return m->valuestring;
}

/* The F32 tensor "<model>.<kind>.<name>" (a view into the file buffer, 8-byte aligned data). */
static const float *fixture_tensor(const fixture *f, const char *model, char kind, const char *name, size_t *n) {
    char key[160];
    snprintf(key, sizeof key, "%s.%c.%s", model, kind, name);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(f->hdr, key);
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!e || cJSON_GetArraySize(off) != 2) fail_msg("%s: no tensor '%s'", TRAIN_REF, key);
    size_t b = (size_t)cJSON_GetArrayItem(off, 0)->valuedouble, end = (size_t)cJSON_GetArrayItem(off, 1)->valuedouble;
    assert_true(b <= end && end <= f->data_size && b % 4 == 0);
    if (n) *n = (end - b) / 4;
    return (const float *)(f->data + b);
}

static int *json_ints(const char *text, int *n) {
    cJSON *a = cJSON_Parse(text);
    assert_true(cJSON_IsArray(a));
    *n = cJSON_GetArraySize(a);
    int *v = malloc(sizeof(int) * (size_t)(*n ? *n : 1));
    for (int i = 0; i < *n; i++) v[i] = (int)cJSON_GetArrayItem(a, i)->valuedouble;
    cJSON_Delete(a);
    return v;
}

static int jint(const cJSON *o, const char *k, int dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? (int)v->valuedouble : dflt;
}

static slm_model_config fixture_config(const fixture *f, const char *model) {
    char key[96];
    snprintf(key, sizeof key, "%s.config", model);
    cJSON *j = cJSON_Parse(fixture_meta(f, key));
    assert_non_null(j);
    slm_model_config c = {0};
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(j, "arch");
    c.arch = !strcmp(arch->valuestring, "qwen2") ? SLM_ARCH_QWEN2 : SLM_ARCH_LLAMA;
    c.n_embd = jint(j, "n_embd", 0), c.n_ff = jint(j, "n_ff", 0), c.n_layer = jint(j, "n_layer", 0);
    c.n_head = jint(j, "n_head", 0), c.n_head_kv = jint(j, "n_head_kv", 0), c.head_dim = jint(j, "head_dim", 0);
    c.n_vocab = jint(j, "n_vocab", 0), c.tied_embeddings = jint(j, "tied_embeddings", 0);
    c.qkv_bias = jint(j, "qkv_bias", 0), c.per_layer = jint(j, "per_layer", 0);
    c.norm_eps = (float)cJSON_GetObjectItemCaseSensitive(j, "norm_eps")->valuedouble;
    c.rope_theta = (float)cJSON_GetObjectItemCaseSensitive(j, "rope_theta")->valuedouble;
    c.rope_scale = (float)cJSON_GetObjectItemCaseSensitive(j, "rope_scale")->valuedouble;
    c.bos_id = c.eos_id = -1;
    const char *pl[3] = {"n_head_l", "n_head_kv_l", "n_ff_l"};
    int *dst[3] = {c.n_head_l, c.n_head_kv_l, c.n_ff_l};
    for (int i = 0; c.per_layer && i < 3; i++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, pl[i]);
        assert_int_equal(cJSON_GetArraySize(a), c.n_layer);
        for (int l = 0; l < c.n_layer; l++) dst[i][l] = (int)cJSON_GetArrayItem(a, l)->valuedouble;
    }
    cJSON_Delete(j);
    return c;
}

typedef struct fixture_src { const fixture *f; const char *model; const slm_model_config *cfg; } fixture_src;

static int fixture_rows(void *ud, const char *name, int64_t nrows, int64_t ncols, int64_t r0, int64_t n, float *dst,
                        slm_err *err) {
    const fixture_src *fs = ud;
    size_t cnt;
    if (!strcmp(name, "rope_freqs.weight")) { /* not in the fixture: the config's (llama3 rope scaling) */
        assert_true(r0 == 0 && n == 1 && ncols == fs->cfg->n_rope_freqs);
        memcpy(dst, fs->cfg->rope_freqs, sizeof(float) * (size_t)ncols);
        return SLM_OK;
    }
    const float *w = fixture_tensor(fs->f, fs->model, 'w', name, &cnt);
    (void)err;
    assert_int_equal(cnt, (size_t)(nrows * ncols));
    memcpy(dst, w + r0 * ncols, sizeof(float) * (size_t)(n * ncols));
    return SLM_OK;
}

/* One fixture model built for training, with its batch. */
typedef struct train_case {
    fixture_src fsrc;
    test_fn_src tsrc;
    slm_model_config cfg;
    slm_model m;
    slm_train tr;
    int B, T;
    int32_t *tok, *tgt;
} train_case;

/* rope_divisors (D/2 values) or NULL: the model gets llama3-style RoPE frequency divisors */
static void case_open_rope(train_case *k, const fixture *f, const char *model, const float *rope_divisors) {
    char key[96];
    int n;
    memset(k, 0, sizeof *k);
    k->cfg = fixture_config(f, model);
    if (rope_divisors) {
        k->cfg.n_rope_freqs = k->cfg.head_dim / 2;
        memcpy(k->cfg.rope_freqs, rope_divisors, sizeof(float) * (size_t)k->cfg.n_rope_freqs);
    }
    k->fsrc = (fixture_src){f, model, &k->cfg};
    snprintf(key, sizeof key, "%s.batch", model);
    int *bt = json_ints(fixture_meta(f, key), &n);
    k->B = bt[0], k->T = bt[1];
    free(bt);
    snprintf(key, sizeof key, "%s.tokens", model);
    k->tok = (int32_t *)json_ints(fixture_meta(f, key), &n);
    assert_int_equal(n, k->B * k->T);
    snprintf(key, sizeof key, "%s.targets", model);
    k->tgt = (int32_t *)json_ints(fixture_meta(f, key), &n);
    slm_tensor_src ts;
    slm_err err = {0};
    test_fn_src_init(&k->tsrc, &k->cfg, fixture_rows, &k->fsrc, &ts);
    if (slm_model_build_batch(&k->m, &k->cfg, &ts, k->B, k->T, SLM_BUILD_KEEP_ACTS, &err) || slm_train_init(&k->tr, &k->m, &err))
        fail_msg("%s: %s", model, err.msg);
}

static void case_open(train_case *k, const fixture *f, const char *model) { case_open_rope(k, f, model, NULL); }

static void case_close(train_case *k) {
    slm_train_free(&k->tr);
    slm_model_free(&k->m);
    free(k->tok), free(k->tgt);
}

/* zero_grad, forward, mean cross-entropy, backward: returns the loss */
static double case_step(train_case *k) {
    slm_err err = {0};
    double loss;
    if (slm_train_zero_grad(&k->tr, &err) || slm_train_forward(&k->tr, k->tok, k->B, k->T, &err) ||
        slm_train_loss_xent(&k->tr, k->tgt, 1.0f, &loss, &err) || slm_train_backward(&k->tr, &err))
        fail_msg("training step: %s", err.msg);
    return loss;
}

typedef struct name_list { int n; char names[64][SLM_MAX_NAME]; } name_list;

static int add_name(void *ud, slm_role role, int l) {
    name_list *nl = ud;
    assert_true(nl->n < 64);
    slm_catalog_gguf_name(role, l, nl->names[nl->n++], SLM_MAX_NAME);
    return SLM_OK;
}

static const char *const k_models[] = {"llama_gqa_tied", "qwen2_bias", "llama_pruned"};

static void test_train_matches_pytorch(void **state) {
    (void)state;
    fixture f;
    fixture_open(&f);
    for (size_t i = 0; i < SLM_ARRAY_LEN(k_models); i++) {
        train_case k;
        case_open(&k, &f, k_models[i]);
        double loss = case_step(&k);
        char key[96];
        snprintf(key, sizeof key, "%s.loss", k_models[i]);
        const double want = strtod(fixture_meta(&f, key), NULL);
        const double loss_rel = fabs(loss - want) / fabs(want);
        if (!(loss_rel <= TORCH_LOSS_RTOL)) fail_msg("%s: loss %.12g, PyTorch %.12g", k_models[i], loss, want);
        name_list nl = {0};
        slm_catalog_each(&k.cfg, add_name, &nl);
        double worst = 0;
        const char *worst_name = "";
        for (int t = 0; t < nl.n; t++) {
            size_t n;
            const float *g = fixture_tensor(&f, k_models[i], 'g', nl.names[t], &n);
            float *got = malloc(sizeof(float) * n);
            int64_t r, c;
            slm_err err = {0};
            if (slm_train_get_grad(&k.tr, nl.names[t], got, &r, &c, &err)) fail_msg("%s", err.msg);
            assert_int_equal((size_t)(r * c), n);
            double *want_g = to_double(g, n);
            char what[128];
            snprintf(what, sizeof what, "%s: gradient of %s vs PyTorch", k_models[i], nl.names[t]);
            expect_rel(what, got, want_g, n, TORCH_RTOL);
            double e = rel_err(got, want_g, n);
            if (e > worst) worst = e, worst_name = nl.names[t];
            free(got), free(want_g);
        }
        printf("    %-15s vs PyTorch (float64): loss rel %.1e, %d gradients, worst rel %.2e (%s)\n", k_models[i], loss_rel,
               nl.n, worst, worst_name);
        case_close(&k);
    }
    fixture_close(&f);
}

/* --- the same models in double precision, for finite differences */

typedef struct dmodel {
    const slm_model_config *c;
    name_list nl;
    double *w[64];
    size_t n[64];
} dmodel;

static void dmodel_init(dmodel *dm, const fixture *f, const char *model, const slm_model_config *c) {
    memset(dm, 0, sizeof *dm);
    dm->c = c;
    slm_catalog_each(c, add_name, &dm->nl);
    for (int i = 0; i < dm->nl.n; i++) {
        if (!strcmp(dm->nl.names[i], "rope_freqs.weight")) { /* constants, from the config */
            dm->n[i] = (size_t)c->n_rope_freqs;
            dm->w[i] = to_double(c->rope_freqs, dm->n[i]);
            continue;
        }
        const float *w = fixture_tensor(f, model, 'w', dm->nl.names[i], &dm->n[i]);
        dm->w[i] = to_double(w, dm->n[i]);
    }
}

static void dmodel_free(dmodel *dm) {
    for (int i = 0; i < dm->nl.n; i++) free(dm->w[i]);
}

static const double *dm_get(const dmodel *dm, const char *fmt, int l) {
    char name[SLM_MAX_NAME];
    snprintf(name, sizeof name, fmt, l);
    for (int i = 0; i < dm->nl.n; i++)
        if (!strcmp(dm->nl.names[i], name)) return dm->w[i];
    return NULL;
}

/* y (n) = W (n, k) x (k) + b */
static void dlinear(double *y, const double *x, const double *W, const double *b, int n, int k) {
    for (int i = 0; i < n; i++) {
        double acc = b ? b[i] : 0.0;
        for (int j = 0; j < k; j++) acc += W[(size_t)i * k + j] * x[j];
        y[i] = acc;
    }
}

static void drmsnorm(double *y, const double *x, const double *w, int C, double eps) {
    double ss = 0;
    for (int c = 0; c < C; c++) ss += x[c] * x[c];
    double s = 1.0 / sqrt(ss / C + eps);
    for (int c = 0; c < C; c++) y[c] = x[c] * s * w[c];
}

/* mean cross-entropy of targets (< 0 not scored) over B sequences of T tokens, HF math in double */
static double dmodel_loss(const dmodel *dm, const int32_t *tok, const int32_t *tgt, int B, int T) {
    const slm_model_config *cf = dm->c;
    const int C = cf->n_embd, D = cf->head_dim, V = cf->n_vocab, neox = cf->arch != SLM_ARCH_LLAMA;
    const int Hm = cf->n_head, Gm = cf->n_head_kv, Fm = cf->n_ff;
    double *x = calloc((size_t)T * C, 8), *h = calloc(C, 8), *q = calloc((size_t)T * Hm * D, 8);
    double *k = calloc((size_t)T * Gm * D, 8), *v = calloc((size_t)T * Gm * D, 8), *att = calloc((size_t)Hm * D, 8);
    double *o = calloc(C, 8), *g = calloc(Fm, 8), *u = calloc(Fm, 8), *sc = calloc(T, 8), *lg = calloc(V, 8);
    double total = 0;
    int scored = 0;
    for (int b = 0; b < B; b++) {
        const int32_t *tk = tok + b * T;
        const double *wte = dm_get(dm, "token_embd.weight", 0);
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++) x[t * C + c] = wte[(size_t)tk[t] * C + c];
        for (int l = 0; l < cf->n_layer; l++) {
            const int H = slm_cfg_n_head(cf, l), G = slm_cfg_n_head_kv(cf, l), F = slm_cfg_n_ff(cf, l);
            for (int t = 0; t < T && H > 0; t++) {
                drmsnorm(h, x + t * C, dm_get(dm, "blk.%d.attn_norm.weight", l), C, cf->norm_eps);
                dlinear(q + t * H * D, h, dm_get(dm, "blk.%d.attn_q.weight", l), dm_get(dm, "blk.%d.attn_q.bias", l), H * D, C);
                dlinear(k + t * G * D, h, dm_get(dm, "blk.%d.attn_k.weight", l), dm_get(dm, "blk.%d.attn_k.bias", l), G * D, C);
                dlinear(v + t * G * D, h, dm_get(dm, "blk.%d.attn_v.weight", l), dm_get(dm, "blk.%d.attn_v.bias", l), G * D, C);
                for (int hh = 0; hh < H + G; hh++) {
                    double *z = hh < H ? q + t * H * D + hh * D : k + t * G * D + (hh - H) * D;
                    const double *qk_w = dm_get(dm, hh < H ? "blk.%d.attn_q_norm.weight" : "blk.%d.attn_k_norm.weight", l);
                    if (qk_w) drmsnorm(z, z, qk_w, D, cf->norm_eps); /* qwen3: per head, before RoPE */
                    for (int i = 0; i < D / 2; i++) {
                        const double *rf = dm_get(dm, "rope_freqs.weight", 0);
                        double a = t * pow(cf->rope_theta, -2.0 * i / D) / cf->rope_scale / (rf ? rf[i] : 1.0);
                        int i0 = neox ? i : 2 * i, i1 = neox ? i + D / 2 : 2 * i + 1;
                        double z0 = z[i0], z1 = z[i1];
                        z[i0] = z0 * cos(a) - z1 * sin(a);
                        z[i1] = z0 * sin(a) + z1 * cos(a);
                    }
                }
            }
            for (int t = 0; t < T; t++) {
                for (int hh = 0; hh < H; hh++) {
                    int gg = hh / (H / G);
                    double mx = -INFINITY, sum = 0;
                    for (int s2 = 0; s2 <= t; s2++) {
                        double d = 0;
                        for (int i = 0; i < D; i++) d += q[t * H * D + hh * D + i] * k[s2 * G * D + gg * D + i];
                        sc[s2] = d / sqrt((double)D);
                        mx = fmax(mx, sc[s2]);
                    }
                    for (int s2 = 0; s2 <= t; s2++) sum += (sc[s2] = exp(sc[s2] - mx));
                    for (int i = 0; i < D; i++) {
                        double a = 0;
                        for (int s2 = 0; s2 <= t; s2++) a += sc[s2] / sum * v[s2 * G * D + gg * D + i];
                        att[hh * D + i] = a;
                    }
                }
                if (H > 0) {
                    dlinear(o, att, dm_get(dm, "blk.%d.attn_output.weight", l), NULL, C, H * D);
                    for (int c = 0; c < C; c++) x[t * C + c] += o[c];
                }
                if (F == 0) continue;
                drmsnorm(h, x + t * C, dm_get(dm, "blk.%d.ffn_norm.weight", l), C, cf->norm_eps);
                dlinear(g, h, dm_get(dm, "blk.%d.ffn_gate.weight", l), NULL, F, C);
                dlinear(u, h, dm_get(dm, "blk.%d.ffn_up.weight", l), NULL, F, C);
                for (int i = 0; i < F; i++) g[i] = g[i] / (1 + exp(-g[i])) * u[i];
                dlinear(o, g, dm_get(dm, "blk.%d.ffn_down.weight", l), NULL, C, F);
                for (int c = 0; c < C; c++) x[t * C + c] += o[c];
            }
        }
        const double *cls = dm_get(dm, cf->tied_embeddings ? "token_embd.weight" : "output.weight", 0);
        for (int t = 0; t < T; t++) {
            const int y = tgt[b * T + t];
            if (y < 0) continue;
            drmsnorm(h, x + t * C, dm_get(dm, "output_norm.weight", 0), C, cf->norm_eps);
            dlinear(lg, h, cls, NULL, V, C);
            double mx = -INFINITY, s = 0;
            for (int i = 0; i < V; i++) mx = fmax(mx, lg[i]);
            for (int i = 0; i < V; i++) s += exp(lg[i] - mx);
            total += -(lg[y] - mx - log(s));
            scored++;
        }
    }
    free(x), free(h), free(q), free(k), free(v), free(att), free(o), free(g), free(u), free(sc), free(lg);
    return total / scored;
}

/* The backward's gradients of a model against central differences of the double model, on
   FD_SAMPLES sampled parameters of every tensor (the tensor's largest gradient as the scale). */
static void check_model_fd(const char *label, const slm_train *tr, dmodel *dm, const int32_t *tok, const int32_t *tgt,
                           int B, int T, double loss, slm_rng *rng) {
    const double dloss = dmodel_loss(dm, tok, tgt, B, T);
    if (!(fabs(loss - dloss) <= TORCH_LOSS_RTOL * dloss)) fail_msg("%s: loss %.12g, double model %.12g", label, loss, dloss);
    double worst = 0;
    int n_checked = 0;
    for (int t = 0; t < dm->nl.n; t++) {
        if (!strcmp(dm->nl.names[t], "rope_freqs.weight")) continue; /* constants: no gradient */
        float *got = malloc(sizeof(float) * dm->n[t]);
        slm_err err = {0};
        if (slm_train_get_grad(tr, dm->nl.names[t], got, NULL, NULL, &err)) fail_msg("%s", err.msg);
        double scale = 0;
        for (size_t j = 0; j < dm->n[t]; j++) scale = fmax(scale, fabs(got[j]));
        for (int s = 0; s < FD_SAMPLES; s++) {
            const size_t j = (size_t)(slm_rng_u64(rng) % dm->n[t]);
            const double w0 = dm->w[t][j];
            dm->w[t][j] = w0 + MODEL_FD_H;
            double lp = dmodel_loss(dm, tok, tgt, B, T);
            dm->w[t][j] = w0 - MODEL_FD_H;
            double lm = dmodel_loss(dm, tok, tgt, B, T);
            dm->w[t][j] = w0;
            const double fd = (lp - lm) / (2 * MODEL_FD_H), e = fabs(got[j] - fd) / scale;
            if (!(e <= MODEL_FD_RTOL))
                fail_msg("%s: d loss / d %s[%zu]: backward %.9g, finite difference %.9g (rel %.3g)", label, dm->nl.names[t],
                         j, got[j], fd, e);
            worst = fmax(worst, e);
            n_checked++;
        }
        free(got);
    }
    printf("    %-15s vs finite differences of a double model: loss rel %.1e, %d parameters, worst rel %.2e\n", label,
           fabs(loss - dloss) / dloss, n_checked, worst);
}

static void test_train_model_finite_differences(void **state) {
    (void)state;
    fixture f;
    fixture_open(&f);
    slm_rng rng;
    slm_rng_seed(&rng, 7);
    /* the last case: k_models[0] with RoPE frequency divisors (llama3 rope scaling; < 1 turns
       faster, so they matter over the fixture's few positions) */
    float divisors[SLM_MAX_ROPE_FREQS];
    for (int i = 0; i < SLM_MAX_ROPE_FREQS; i++) divisors[i] = 0.25f + 0.5f * (float)i;
    for (size_t c = 0; c <= SLM_ARRAY_LEN(k_models); c++) {
        const int rope = c == SLM_ARRAY_LEN(k_models);
        const size_t i = rope ? 0 : c;
        train_case k;
        case_open_rope(&k, &f, k_models[i], rope ? divisors : NULL);
        const double loss = case_step(&k);
        dmodel dm;
        dmodel_init(&dm, &f, k_models[i], &k.cfg);
        check_model_fd(rope ? "rope_freqs" : k_models[i], &k.tr, &dm, k.tok, k.tgt, k.B, k.T, loss, &rng);
        dmodel_free(&dm);
        case_close(&k);
    }
    fixture_close(&f);
}

/* ---------------------------------------------------------------------------------------------
 * properties of the model backward */

/* Weight (r, c) of a named tensor: uniform in [-0.5, 0.5) from a hash of the name and index. */
static double syn_w(const char *name, int64_t r, int64_t c, int64_t ncols) {
    uint64_t h = 1469598103934665603ull;
    for (const char *p = name; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ull;
    uint64_t x = h ^ (uint64_t)(r * ncols + c) * 0x9e3779b97f4a7c15ull;
    double u = (double)(slm_splitmix64(&x) >> 11) * 0x1p-53 - 0.5;
    return strstr(name, "norm") ? 1.0 + 0.2 * u : u;
}

static int syn_rows(void *ud, const char *name, int64_t nrows, int64_t ncols, int64_t r0, int64_t n, float *dst, slm_err *err) {
    (void)ud, (void)nrows, (void)err;
    for (int64_t r = 0; r < n; r++)
        for (int64_t c = 0; c < ncols; c++) dst[r * ncols + c] = (float)syn_w(name, r0 + r, c, ncols);
    return SLM_OK;
}

/* A synthetic model wide enough for several tiles, panels and threads: qwen2 with biases,
   per-layer widths with a removed attention and a removed MLP, vocab not a multiple of 16. */
static void syn_config(slm_model_config *c) {
    *c = (slm_model_config){.arch = SLM_ARCH_QWEN2, .n_embd = 64, .n_ff = 96, .n_layer = 3, .n_head = 4, .n_head_kv = 2,
                            .head_dim = 16, .n_vocab = 101, .norm_eps = 1e-6f, .rope_theta = 1e6f, .rope_scale = 1.0f,
                            .qkv_bias = 1, .bos_id = -1, .eos_id = -1, .per_layer = 1};
    const int ph[3] = {4, 0, 2}, pkv[3] = {2, 0, 1}, pf[3] = {96, 40, 0};
    for (int l = 0; l < 3; l++) c->n_head_l[l] = ph[l], c->n_head_kv_l[l] = pkv[l], c->n_ff_l[l] = pf[l];
}

static void syn_build(slm_model *m, slm_train *tr, const slm_model_config *c, int B, int T) {
    static test_fn_src fs;
    slm_tensor_src ts;
    slm_err err = {0};
    test_fn_src_init(&fs, c, syn_rows, NULL, &ts);
    if (slm_model_build_batch(m, c, &ts, B, T, SLM_BUILD_KEEP_ACTS, &err) || slm_train_init(tr, m, &err))
        fail_msg("%s", err.msg);
}

static void syn_step(slm_train *tr, const int32_t *tok, const int32_t *tgt, int B, int T, int zero) {
    slm_err err = {0};
    double loss;
    if ((zero && slm_train_zero_grad(tr, &err)) || slm_train_forward(tr, tok, B, T, &err) ||
        slm_train_loss_xent(tr, tgt, 1.0f, &loss, &err) || slm_train_backward(tr, &err))
        fail_msg("%s", err.msg);
}

/* Same gradients, byte for byte, with 1 and 2 threads; a second backward adds exactly the
   same again (accumulation); panel padding of every gradient matrix stays 0. */
static void test_train_grads_deterministic_and_accumulating(void **state) {
    (void)state;
    enum { B = 2, T = 37 };
    slm_model_config c;
    syn_config(&c);
    slm_model m = {0};
    slm_train tr = {0};
    syn_build(&m, &tr, &c, B, T);
    int32_t tok[B * T], tgt[B * T];
    for (int i = 0; i < B * T; i++) tok[i] = (i * 53 + 7) % c.n_vocab, tgt[i] = i % 9 == 4 ? -1 : (i * 31 + 3) % c.n_vocab;
    float *g[2];
    for (int th = 1; th <= 2; th++) {
        slm_threads_set(th);
        syn_step(&tr, tok, tgt, B, T, 1);
        g[th - 1] = malloc(sizeof(float) * tr.num_parameters);
        memcpy(g[th - 1], tr.grads_memory, sizeof(float) * tr.num_parameters);
    }
    slm_threads_set(0);
    expect_bytes_equal("gradients with 1 and 2 threads", g[0], g[1], sizeof(float) * tr.num_parameters);
    syn_step(&tr, tok, tgt, B, T, 0); /* no zero_grad: += */
    for (size_t i = 0; i < tr.num_parameters; i++)
        if (tr.grads_memory[i] != 2 * g[0][i]) fail_msg("accumulated gradient %zu: %g, want 2 x %g", i, tr.grads_memory[i], g[0][i]);
    /* padding: unpack every matrix, pack it again into zeros: the same bytes */
    for (int p = 0; p < SLM_NUM_PARAMETER_TENSORS; p++)
        for (int l = -1; l < c.n_layer; l++) {
            size_t off, n;
            int is_matrix;
            if (!slm_train_param_range(&m, p, l, &off, &n, &is_matrix) || !is_matrix) continue;
            const int64_t HD = (int64_t)slm_cfg_n_head(&c, l) * c.head_dim, KD = (int64_t)slm_cfg_n_head_kv(&c, l) * c.head_dim;
            const int64_t F = slm_cfg_n_ff(&c, l), E = c.n_embd;
            int64_t rows = c.n_vocab, cols = E; /* wte, wcls */
            if (p == SLM_P_WQ) rows = HD;
            if (p == SLM_P_WK || p == SLM_P_WV) rows = KD;
            if (p == SLM_P_WO) rows = E, cols = HD;
            if (p == SLM_P_WGATE || p == SLM_P_WUP) rows = F;
            if (p == SLM_P_WDOWN) rows = E, cols = F;
            assert_int_equal(n, slm_panel_floats(rows, cols));
            float *u = malloc(sizeof(float) * n), *re = calloc(n, sizeof(float));
            slm_panel_unpack_rows(u, tr.grads_memory + off, 0, rows, cols);
            slm_panel_pack_rows(re, u, 0, rows, cols); /* the real rows only: padding stays 0 in re */
            expect_bytes_equal("gradient panel layout", re, tr.grads_memory + off, sizeof(float) * n);
            free(u), free(re);
        }
    /* the vocabulary's padding rows (101 -> 112) of the classifier and embedding gradients */
    const int64_t Vp = (int64_t)slm_panel_floats(c.n_vocab, c.n_embd) / c.n_embd;
    for (int64_t r = c.n_vocab; r < Vp; r++)
        for (int64_t k = 0; k < c.n_embd; k++)
            assert_true(tr.grads.wte[slm_panel_index(r, k, c.n_embd)] == 0.0f && tr.grads.wcls[slm_panel_index(r, k, c.n_embd)] == 0.0f);
    free(g[0]), free(g[1]);
    slm_train_free(&tr);
    slm_model_free(&m);
}

/* Qwen3 (per-head q/k RMSNorm before NEOX RoPE, head_dim != C/H, tied): the whole backward,
   q/k norm gradients included, against finite differences of the double model. */
static void test_train_qwen3_finite_differences(void **state) {
    (void)state;
    enum { B = 2, T = 9 };
    slm_model_config c = {.arch = SLM_ARCH_QWEN3, .n_embd = 32, .n_ff = 48, .n_layer = 2, .n_head = 4, .n_head_kv = 2,
                          .head_dim = 16, .n_vocab = 61, .norm_eps = 1e-6f, .rope_theta = 1e6f, .rope_scale = 1.0f,
                          .tied_embeddings = 1, .bos_id = -1, .eos_id = -1};
    slm_model m = {0};
    slm_train tr = {0};
    syn_build(&m, &tr, &c, B, T);
    int32_t tok[B * T], tgt[B * T];
    for (int i = 0; i < B * T; i++) tok[i] = (i * 37 + 5) % c.n_vocab, tgt[i] = i % 7 == 3 ? -1 : (i * 23 + 1) % c.n_vocab;
    slm_err err = {0};
    double loss;
    if (slm_train_zero_grad(&tr, &err) || slm_train_forward(&tr, tok, B, T, &err) ||
        slm_train_loss_xent(&tr, tgt, 1.0f, &loss, &err) || slm_train_backward(&tr, &err))
        fail_msg("%s", err.msg);
    dmodel dm;
    memset(&dm, 0, sizeof dm);
    dm.c = &c;
    slm_catalog_each(&c, add_name, &dm.nl);
    int n_qk = 0;
    for (int i = 0; i < dm.nl.n; i++) {
        int l, role = slm_catalog_parse_gguf(dm.nl.names[i], &l);
        int64_t shape[2];
        const int nd = slm_catalog_shape(&c, role, l, shape);
        const int64_t rows = nd == 2 ? shape[0] : 1, cols = nd == 2 ? shape[1] : shape[0];
        dm.n[i] = (size_t)(rows * cols);
        dm.w[i] = malloc(sizeof(double) * dm.n[i]);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t k = 0; k < cols; k++) dm.w[i][r * cols + k] = (double)(float)syn_w(dm.nl.names[i], r, k, cols);
        n_qk += role == SLM_ROLE_ATTN_Q_NORM || role == SLM_ROLE_ATTN_K_NORM;
    }
    assert_int_equal(n_qk, 2 * c.n_layer);
    slm_rng rng;
    slm_rng_seed(&rng, 9);
    check_model_fd("qwen3_qk_norm", &tr, &dm, tok, tgt, B, T, loss, &rng);
    dmodel_free(&dm);
    slm_train_free(&tr);
    slm_model_free(&m);
}

/* Misuse gets SLM_E_ARG and a message, never a crash. */
static void test_train_rejects_misuse(void **state) {
    (void)state;
    slm_model_config c;
    syn_config(&c);
    static test_fn_src fs;
    slm_tensor_src ts;
    test_fn_src_init(&fs, &c, syn_rows, NULL, &ts);
    slm_err err = {0};
    slm_model m = {0};
    slm_train tr = {0};
    assert_int_equal(slm_model_build(&m, &c, &ts, 16, 0, &err), SLM_OK);
    assert_int_equal(slm_train_init(&tr, &m, &err), SLM_E_ARG);
    assert_non_null(strstr(err.msg, "SLM_BUILD_KEEP_ACTS"));
    slm_model_free(&m);
    syn_build(&m, &tr, &c, 2, 16);
    int32_t tok[32], tgt[32];
    for (int i = 0; i < 32; i++) tok[i] = i, tgt[i] = i + 1;
    assert_int_equal(slm_train_backward(&tr, &err), SLM_E_ARG);
    assert_non_null(strstr(err.msg, "no training forward"));
    double loss;
    assert_int_equal(slm_train_loss_xent(&tr, tgt, 1.0f, &loss, &err), SLM_E_ARG);
    assert_int_equal(slm_train_forward(&tr, tok, 3, 16, &err), SLM_E_ARG); /* batch too large */
    assert_int_equal(slm_train_forward(&tr, tok, 2, 16, &err), SLM_OK);
    tgt[5] = c.n_vocab;
    assert_int_equal(slm_train_loss_xent(&tr, tgt, 1.0f, &loss, &err), SLM_E_ARG);
    assert_non_null(strstr(err.msg, "outside the vocabulary"));
    for (int i = 0; i < 32; i++) tgt[i] = -1;
    assert_int_equal(slm_train_loss_xent(&tr, tgt, 1.0f, &loss, &err), SLM_E_ARG);
    float logits[16 * 101];
    assert_int_equal(slm_model_forward(&m, tok + 3, 5, 0, 4, logits, &err), SLM_OK); /* another forward */
    assert_int_equal(slm_train_backward(&tr, &err), SLM_E_ARG);
    assert_non_null(strstr(err.msg, "another forward"));
    assert_int_equal(slm_train_get_grad(&tr, "blk.1.attn_q.weight", NULL, NULL, NULL, &err), SLM_E_ARG); /* no grads yet; no attention */
    assert_int_equal(slm_train_zero_grad(&tr, &err), SLM_OK);
    assert_int_equal(slm_train_get_grad(&tr, "blk.1.attn_q.weight", NULL, NULL, NULL, &err), SLM_E_ARG);
    assert_int_equal(slm_train_get_grad(&tr, "blk.2.ffn_up.weight", NULL, NULL, NULL, &err), SLM_E_ARG);
    assert_int_equal(slm_train_get_grad(&tr, "blk.0.attn_k.bias", NULL, NULL, NULL, &err), SLM_OK);
    m.numerics = SLM_NUMERICS_GGML;
    assert_int_equal(slm_train_forward(&tr, tok, 2, 16, &err), SLM_E_ARG);
    assert_non_null(strstr(err.msg, "f32"));
    slm_train_free(&tr);
    slm_model_free(&m);
}

/* Phi-3's fused matrices (attn_qkv = q | k | v rows, ffn_up = gate | up rows, both in one
   parameter each): the same loss and gradients as the separate qwen2 layout (no biases) whose
   matrices are cut out of the fused ones. The RoPE tables differ in rounding only (phi3's is
   ggml's float running product), so: loss within 1e-5, every gradient within 1e-3 of its
   tensor's largest. */
static int phi3_split_rows(void *ud, const char *name, int64_t nrows, int64_t ncols, int64_t r0, int64_t n, float *dst,
                           slm_err *err) {
    const slm_model_config *c = ud;
    (void)nrows, (void)err;
    int l = -1, pos = 0;
    char fused[SLM_MAX_NAME];
    int64_t off = 0;
    snprintf(fused, sizeof fused, "%s", name);
    if (sscanf(name, "blk.%d.%n", &l, &pos) == 1 && pos) {
        const char *rest = name + pos;
        const int64_t HD = (int64_t)c->n_head * c->head_dim, KD = (int64_t)c->n_head_kv * c->head_dim;
        if (!strcmp(rest, "attn_q.weight")) off = 0;
        else if (!strcmp(rest, "attn_k.weight")) off = HD;
        else if (!strcmp(rest, "attn_v.weight")) off = HD + KD;
        else if (!strcmp(rest, "ffn_gate.weight")) off = 0;
        else if (!strcmp(rest, "ffn_up.weight")) off = c->n_ff;
        else off = -1;
        if (off >= 0) snprintf(fused, sizeof fused, "blk.%d.%s", l, !strncmp(rest, "attn", 4) ? "attn_qkv.weight" : "ffn_up.weight");
        else off = 0;
    }
    for (int64_t r = 0; r < n; r++)
        for (int64_t k = 0; k < ncols; k++) dst[r * ncols + k] = (float)syn_w(fused, off + r0 + r, k, ncols);
    return SLM_OK;
}

static double phi3_step(slm_model *m, slm_train *tr, const slm_model_config *c, test_rows_fn rows, const int32_t *tok,
                        const int32_t *tgt, int B, int T) {
    static test_fn_src fs[2];
    static int which;
    slm_tensor_src ts;
    slm_err err = {0};
    double loss;
    test_fn_src_init(&fs[which], c, rows, (void *)c, &ts);
    which ^= 1;
    if (slm_model_build_batch(m, c, &ts, B, T, SLM_BUILD_KEEP_ACTS, &err) || slm_train_init(tr, m, &err) ||
        slm_train_zero_grad(tr, &err) || slm_train_forward(tr, tok, B, T, &err) || slm_train_loss_xent(tr, tgt, 1.0f, &loss, &err) ||
        slm_train_backward(tr, &err))
        fail_msg("%s", err.msg);
    return loss;
}

static void phi3_grad(const slm_train *tr, const char *name, int64_t r0, int64_t rows, int64_t ncols, float *dst) {
    slm_err err = {0};
    int64_t nr, nc;
    if (slm_train_get_grad(tr, name, NULL, &nr, &nc, &err)) fail_msg("%s", err.msg);
    float *all = malloc(sizeof(float) * (size_t)(nr * nc));
    if (slm_train_get_grad(tr, name, all, NULL, NULL, &err)) fail_msg("%s", err.msg);
    assert_true(nc == ncols && r0 + rows <= nr);
    memcpy(dst, all + r0 * nc, sizeof(float) * (size_t)(rows * nc));
    free(all);
}

static void test_train_phi3_fused(void **state) {
    (void)state;
    slm_model_config pc = {.arch = SLM_ARCH_PHI3, .n_embd = 64, .n_ff = 96, .n_layer = 2, .n_head = 4, .n_head_kv = 2,
                           .head_dim = 16, .n_vocab = 101, .n_ctx_train = 4096, .norm_eps = 1e-5f, .rope_theta = 1e4f,
                           .rope_scale = 1.0f, .bos_id = -1, .eos_id = -1};
    pc.phi3.orig_ctx = 4096, pc.phi3.attn_factor = 1.0f;
    slm_model_config qc = pc;
    qc.arch = SLM_ARCH_QWEN2;
    enum { B = 2, T = 12 };
    int32_t tok[B * T], tgt[B * T];
    for (int i = 0; i < B * T; i++) tok[i] = (i * 37 + 11) % pc.n_vocab, tgt[i] = (i * 53 + 5) % pc.n_vocab;
    slm_model pm, qm;
    slm_train ptr, qtr;
    const double lp = phi3_step(&pm, &ptr, &pc, syn_rows, tok, tgt, B, T);
    const double lq = phi3_step(&qm, &qtr, &qc, phi3_split_rows, tok, tgt, B, T);
    if (!(fabs(lp - lq) <= 1e-5 * lq)) fail_msg("phi3 loss %.9g, separate matrices %.9g", lp, lq);
    const int64_t C = pc.n_embd, F = pc.n_ff, HD = pc.n_head * pc.head_dim, KD = pc.n_head_kv * pc.head_dim;
    double worst = 0;
    for (int l = 0; l < pc.n_layer; l++) {
        struct { const char *fused, *part; int64_t r0, rows; } parts[] = {
            {"attn_qkv", "attn_q", 0, HD}, {"attn_qkv", "attn_k", HD, KD}, {"attn_qkv", "attn_v", HD + KD, KD},
            {"ffn_up", "ffn_gate", 0, F}, {"ffn_up", "ffn_up", F, F}, {"attn_output", "attn_output", 0, C},
            {"ffn_down", "ffn_down", 0, C}, {"attn_norm", "attn_norm", 0, 1}, {"ffn_norm", "ffn_norm", 0, 1}};
        for (size_t i = 0; i < SLM_ARRAY_LEN(parts); i++) {
            char pn[64], qn[64];
            snprintf(pn, sizeof pn, "blk.%d.%s.weight", l, parts[i].fused);
            snprintf(qn, sizeof qn, "blk.%d.%s.weight", l, parts[i].part);
            int64_t nr, nc;
            slm_err err = {0};
            if (slm_train_get_grad(&qtr, qn, NULL, &nr, &nc, &err)) fail_msg("%s", err.msg);
            float *a = malloc(sizeof(float) * (size_t)(nr * nc)), *b = malloc(sizeof(float) * (size_t)(nr * nc));
            phi3_grad(&ptr, pn, parts[i].r0, nr, nc, a);
            phi3_grad(&qtr, qn, 0, nr, nc, b);
            double scale = 0, e = 0;
            for (int64_t j = 0; j < nr * nc; j++) scale = fmax(scale, fabs(b[j]));
            for (int64_t j = 0; j < nr * nc; j++) e = fmax(e, fabs(a[j] - b[j]) / scale);
            if (!(scale > 0 && e <= 1e-3)) fail_msg("%s rows %lld..: gradient differs from %s by %.3g of its largest", pn,
                                                     (long long)parts[i].r0, qn, e);
            worst = fmax(worst, e);
            free(a), free(b);
        }
    }
    printf("    phi3 fused q|k|v, gate|up vs separate matrices: loss %.9g / %.9g, worst gradient %.2e\n", lp, lq, worst);
    slm_train_free(&ptr), slm_train_free(&qtr);
    slm_model_free(&pm), slm_model_free(&qm);
}


/* The feature-loss hook (tr.dhidden): with d loss / d logits = 0 and dhidden = R, the backward
   gives the gradient of f = sum_l R_l . h_l (h_l the residual stream after layer l, as the
   observer sees it). Checked against central differences of f through the f32 forward (step 1e-2
   on weights of order 0.1, f summed in double): 2e-2 of the tensor's largest gradient. */
typedef struct feat_ctx {
    const float *R;
    int64_t NC;
    double f;
} feat_ctx;

static void feat_hidden(void *ud, int l, const float *x, int64_t N, int C) {
    feat_ctx *c = ud;
    (void)N, (void)C;
    if (l < 0) return;
    for (int64_t i = 0; i < c->NC; i++) c->f += (double)c->R[(size_t)l * c->NC + i] * x[i];
}

static double feat_f(train_case *k, feat_ctx *c) {
    slm_err err = {0};
    slm_forward_observer ob = {.hidden = feat_hidden, .ud = c};
    c->f = 0;
    k->m.observer = &ob;
    if (slm_model_forward_batch(&k->m, k->tok, k->B, k->T, 0, k->T, NULL, &err)) fail_msg("%s", err.msg);
    k->m.observer = NULL;
    return c->f;
}

static void test_train_feature_hook(void **state) {
    (void)state;
    fixture f;
    fixture_open(&f);
    train_case k;
    case_open(&k, &f, "llama_gqa_tied");
    const int64_t NC = (int64_t)k.B * k.T * k.cfg.n_embd, L = k.cfg.n_layer;
    float *R = malloc(sizeof(float) * (size_t)(L * NC));
    fill_uniform(R, (size_t)(L * NC), -1, 1, 5);
    slm_err err = {0};
    if (slm_train_zero_grad(&k.tr, &err) || slm_train_forward(&k.tr, k.tok, k.B, k.T, &err)) fail_msg("%s", err.msg);
    memset(k.tr.dlogits, 0, sizeof(float) * (size_t)k.B * k.T * k.cfg.n_vocab);
    k.tr.dhidden = R;
    if (slm_train_backward(&k.tr, &err)) fail_msg("%s", err.msg);
    k.tr.dhidden = NULL;
    feat_ctx c = {.R = R, .NC = NC};
    const int ps[3] = {SLM_P_WDOWN, SLM_P_WQ, SLM_P_LN1W};
    double worst = 0;
    for (int q = 0; q < 3; q++)
        for (int l = 0; l < L; l++) {
            size_t off, n;
            int is_matrix;
            if (!slm_train_param_range(&k.m, ps[q], l, &off, &n, &is_matrix)) continue;
            double scale = 0;
            for (size_t j = 0; j < n; j++) scale = fmax(scale, fabs(k.tr.grads_memory[off + j]));
            for (size_t s = 0, j = off; s < 4; s++, j += n / 5) {
                float *w = &k.m.params_memory[j];
                const float w0 = *w, h = 1e-2f;
                *w = w0 + h;
                double fp = feat_f(&k, &c);
                *w = w0 - h;
                double fm = feat_f(&k, &c);
                *w = w0;
                const double fd = (fp - fm) / (2.0 * (double)h), e = fabs(fd - k.tr.grads_memory[j]) / scale;
                if (!(e <= 2e-2)) fail_msg("feature hook: p %d layer %d [%zu]: backward %.6g, finite difference %.6g", ps[q], l, j - off,
                                           k.tr.grads_memory[j], fd);
                worst = fmax(worst, e);
            }
        }
    printf("    feature hook vs finite differences of sum R . h: worst %.2e of the largest gradient\n", worst);
    free(R);
    case_close(&k);
    fixture_close(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_train_rmsnorm_backward),
        cmocka_unit_test(test_train_head_rmsnorm_backward),
        cmocka_unit_test(test_train_matmul_backward),
        cmocka_unit_test(test_train_matmul_backward_simd_equals_ref),
        cmocka_unit_test(test_train_rope_backward),
        cmocka_unit_test(test_train_attention_backward),
        cmocka_unit_test(test_train_swiglu_backward),
        cmocka_unit_test(test_train_geglu_backward),
        cmocka_unit_test(test_train_softcap_backward),
        cmocka_unit_test(test_train_embedding_residual_backward),
        cmocka_unit_test(test_train_crossentropy_backward),
        cmocka_unit_test(test_train_matches_pytorch),
        cmocka_unit_test(test_train_model_finite_differences),
        cmocka_unit_test(test_train_grads_deterministic_and_accumulating),
        cmocka_unit_test(test_train_qwen3_finite_differences),
        cmocka_unit_test(test_train_rejects_misuse),
        cmocka_unit_test(test_train_feature_hook),
        cmocka_unit_test(test_train_phi3_fused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
