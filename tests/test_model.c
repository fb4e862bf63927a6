/* test_model.c - the reference transformer and its evaluation against the fixtures' numbers:
 * prompt logits of every fixture model (reference JSON files), greedy generation (run.c's and
 * the numpy/PyTorch/llama.cpp tokens), stream perplexity (README section 4), KL ordering of
 * quantized copies, and bit-identical results for 1 and 2 threads, for batched vs one-token
 * decoding, and for the AVX2 vs scalar kernels. */
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
#include <unistd.h>

#include "core/dtype.h"
#include "core/mem.h"
#include "core/rng.h"
#include "core/slm.h"
#include "core/thread.h"
#include "formats/model_src.h"
#include "model/eval.h"
#include "model/ggml_numerics.h"
#include "model/layers.h"
#include "model/transformer.h"
#include "quantize/quants.h"
#include "tests/testutil.h"

/* Float32 forward vs the numpy reference (float32 with BLAS sums): the fixture README reports
   2.2e-5 between two float32 implementations; 1e-4 leaves room for a different summation order. */
#define LOGIT_ATOL 1e-4
/* "4 significant digits" of perplexity: relative 5e-5. The float32 forwards agree far better
   (about 1e-6), so this only fails on a real error. */
#define PPL_RTOL 5e-5
/* Per-window NLL sums (a few hundred nats) against the reference: 1e-5 relative. */
#define CHUNK_RTOL 1e-5
/* Windows of the quick stream test: 20 x 255 tokens, well under a second. */
#define N_QUICK_CHUNKS 20

/* ---------------------------------------------------------------------------------------------
 * helpers */

static cJSON *load_json(const char *rel) {
    size_t n;
    char *text = read_whole_file(fixture_path(rel), &n);
    cJSON *j = cJSON_ParseWithLength(text, n);
    free(text);
    if (!j) fail_msg("%s: not JSON", rel);
    return j;
}

static cJSON *jget(const cJSON *o, const char *path) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *it = o;
    for (char *tok = strtok(buf, "."); tok; tok = strtok(NULL, ".")) {
        it = cJSON_GetObjectItemCaseSensitive(it, tok);
        if (!it) fail_msg("reference JSON has no '%s' (in %s)", tok, path);
    }
    return (cJSON *)it;
}

static int32_t *json_ids(const cJSON *arr, int *n) {
    *n = cJSON_GetArraySize(arr);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)*n);
    assert_non_null(ids);
    for (int i = 0; i < *n; i++) ids[i] = (int32_t)cJSON_GetArrayItem(arr, i)->valuedouble;
    return ids;
}

static void build(slm_model *m, const char *rel, int ctx) {
    slm_err err = {0};
    slm_src src;
    if (slm_src_open(&src, fixture_path(rel), &err)) fail_msg("%s: %s", rel, err.msg);
    int rc = test_model_build_src(&src, m, ctx, 0, &err);
    slm_src_close(&src);
    if (rc) fail_msg("%s: %s", rel, err.msg);
}

static int32_t *read_ids(int64_t *n) {
    size_t nb;
    int32_t *ids = read_whole_file(fixture_path("text/tinystories_val.tok512.i32"), &nb);
    *n = (int64_t)(nb / 4);
    return ids;
}

static float *forward_all(slm_model *m, const int32_t *ids, int T) {
    slm_err err = {0};
    float *logits = malloc(sizeof(float) * (size_t)T * m->cfg.n_vocab);
    assert_non_null(logits);
    if (slm_model_forward(m, ids, T, 0, 0, logits, &err)) fail_msg("forward: %s", err.msg);
    return logits;
}

static void fill_normal(float *x, size_t n, uint64_t seed);

/* ---------------------------------------------------------------------------------------------
 * logits */

static void check_prompt_logits(const char *model_dir, const char *json, const char *key) {
    cJSON *root = load_json(json);
    char path[128];
    snprintf(path, sizeof path, "models.%s.prompt", key);
    const cJSON *prompt = jget(root, path);
    int n;
    int32_t *ids = json_ids(jget(prompt, "ids"), &n);
    slm_model m = {0};
    build(&m, model_dir, 64);
    int V = m.cfg.n_vocab;
    float *logits = forward_all(&m, ids, n);
    float *want = malloc(sizeof(float) * (size_t)n * V);
    const cJSON *rows = jget(prompt, "logits");
    assert_int_equal(cJSON_GetArraySize(rows), n);
    for (int t = 0; t < n; t++) {
        const cJSON *row = cJSON_GetArrayItem(rows, t);
        assert_int_equal(cJSON_GetArraySize(row), V);
        for (int v = 0; v < V; v++) want[(size_t)t * V + v] = (float)cJSON_GetArrayItem(row, v)->valuedouble;
    }
    double maxdiff = 0;
    for (size_t i = 0; i < (size_t)n * V; i++) maxdiff = fmax(maxdiff, fabs((double)logits[i] - want[i]));
    printf("    %-28s prompt logits: max |diff| %.3g over %d x %d\n", model_dir, maxdiff, n, V);
    expect_tensor_near(model_dir, logits, want, (int64_t)n * V, LOGIT_ATOL, 0);
    free(want);
    free(logits);
    free(ids);
    slm_model_free(&m);
    cJSON_Delete(root);
}

static void test_model_logits_stories260K(void **state) {
    (void)state;
    check_prompt_logits("models/stories260K", "reference/stories260K.json", "stories260K");
    check_prompt_logits("models/stories260K-f16", "reference/stories260K.json", "stories260K-f16");
}

static void test_model_logits_tinystories3M(void **state) {
    (void)state;
    check_prompt_logits("models/tinystories-3M", "reference/tinystories-3M.json", "tinystories-3M");
    check_prompt_logits("models/tinystories-3M-bf16", "reference/tinystories-3M.json", "tinystories-3M-bf16");
    check_prompt_logits("models/tinystories-3M-sharded", "reference/tinystories-3M.json", "tinystories-3M-sharded");
}

/* ---------------------------------------------------------------------------------------------
 * synthetic models against a naive double-precision forward: the paths no fixture has
 * (Qwen2's q/k/v biases and NEOX RoPE, an untied classifier, linear RoPE scaling) */

/* Weight (r, c) of a named tensor: uniform in [-0.5, 0.5) from a hash of the name and index. */
static double syn_w(const char *name, int64_t r, int64_t c, int64_t ncols) {
    uint64_t h = 1469598103934665603ull;
    for (const char *p = name; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ull;
    uint64_t x = h ^ (uint64_t)(r * ncols + c) * 0x9e3779b97f4a7c15ull;
    x = slm_splitmix64(&x);
    double u = (double)(x >> 11) * 0x1p-53 - 0.5;
    if (strstr(name, "norm")) u = 1.0 + 0.2 * u; /* norms near 1 */
    return u;
}

static int syn_reader(void *ud, const char *name, int64_t nrows, int64_t ncols, int64_t r0, int64_t n, float *dst,
                      slm_err *err) {
    (void)ud, (void)nrows, (void)err;
    for (int64_t r = 0; r < n; r++)
        for (int64_t c = 0; c < ncols; c++) dst[r * ncols + c] = (float)syn_w(name, r0 + r, c, ncols);
    return SLM_OK;
}

/* y (n) = W (n, k) x (k) + b, W and b read back as floats (the model's exact weights) */
static void naive_linear(double *y, const double *x, const char *name, const char *bias, int n, int k) {
    for (int i = 0; i < n; i++) {
        double acc = bias ? (double)(float)syn_w(bias, 0, i, n) : 0.0;
        for (int j = 0; j < k; j++) acc += (double)(float)syn_w(name, i, j, k) * x[j];
        y[i] = acc;
    }
}

static void naive_rmsnorm(double *y, const double *x, const char *w, int C, double eps) {
    double ss = 0;
    for (int c = 0; c < C; c++) ss += x[c] * x[c];
    double s = 1.0 / sqrt(ss / C + eps);
    for (int c = 0; c < C; c++) y[c] = x[c] * s * (double)(float)syn_w(w, 0, c, C);
}

/* logits (T, V) of tokens, HF math in double; neox: rotate_half pairs (i, i + D/2), else (2i, 2i+1) */
static void naive_forward(double *logits, const slm_model_config *cf, const int32_t *tok, int T) {
    const int C = cf->n_embd, D = cf->head_dim, V = cf->n_vocab;
    const int Fm = cf->n_ff, Hm = cf->n_head, Gm = cf->n_head_kv; /* the widest layer's */
    const int neox = cf->arch == SLM_ARCH_QWEN2;
    double *x = calloc((size_t)T * C, 8), *h = calloc(C, 8), *q = calloc((size_t)T * Hm * D, 8);
    double *k = calloc((size_t)T * Gm * D, 8), *v = calloc((size_t)T * Gm * D, 8), *att = calloc((size_t)Hm * D, 8);
    double *o = calloc(C, 8), *g = calloc(Fm, 8), *u = calloc(Fm, 8), *sc = calloc(T, 8);
    char n1[64], n2[64];
    for (int t = 0; t < T; t++)
        for (int c = 0; c < C; c++) x[t * C + c] = (float)syn_w("token_embd.weight", tok[t], c, C);
    for (int l = 0; l < cf->n_layer; l++) {
        const int H = slm_cfg_n_head(cf, l), G = slm_cfg_n_head_kv(cf, l), F = slm_cfg_n_ff(cf, l);
#define NAME(buf, s) (snprintf(buf, sizeof buf, "blk.%d.%s", l, s), buf)
        for (int t = 0; t < T && H > 0; t++) {
            naive_rmsnorm(h, x + t * C, NAME(n1, "attn_norm.weight"), C, cf->norm_eps);
            naive_linear(q + t * H * D, h, NAME(n1, "attn_q.weight"), cf->qkv_bias ? NAME(n2, "attn_q.bias") : NULL, H * D, C);
            naive_linear(k + t * G * D, h, NAME(n1, "attn_k.weight"), cf->qkv_bias ? NAME(n2, "attn_k.bias") : NULL, G * D, C);
            naive_linear(v + t * G * D, h, NAME(n1, "attn_v.weight"), cf->qkv_bias ? NAME(n2, "attn_v.bias") : NULL, G * D, C);
            for (int hh = 0; hh < H + G; hh++) { /* RoPE on q heads, then k heads */
                double *z = hh < H ? q + t * H * D + hh * D : k + t * G * D + (hh - H) * D;
                for (int i = 0; i < D / 2; i++) {
                    double a = t * pow(cf->rope_theta, -2.0 * i / D) / cf->rope_scale;
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
                naive_linear(o, att, NAME(n1, "attn_output.weight"), NULL, C, H * D);
                for (int c = 0; c < C; c++) x[t * C + c] += o[c];
            }
            if (F == 0) continue;
            naive_rmsnorm(h, x + t * C, NAME(n1, "ffn_norm.weight"), C, cf->norm_eps);
            naive_linear(g, h, NAME(n1, "ffn_gate.weight"), NULL, F, C);
            naive_linear(u, h, NAME(n1, "ffn_up.weight"), NULL, F, C);
            for (int i = 0; i < F; i++) g[i] = g[i] / (1 + exp(-g[i])) * u[i];
            naive_linear(o, g, NAME(n1, "ffn_down.weight"), NULL, C, F);
            for (int c = 0; c < C; c++) x[t * C + c] += o[c];
        }
#undef NAME
    }
    for (int t = 0; t < T; t++) {
        naive_rmsnorm(h, x + t * C, "output_norm.weight", C, cf->norm_eps);
        naive_linear(logits + (size_t)t * V, h, cf->tied_embeddings ? "token_embd.weight" : "output.weight", NULL, V, C);
    }
    free(x), free(h), free(q), free(k), free(v), free(att), free(o), free(g), free(u), free(sc);
}

/* A mapped build (matrices in their stored type, dequantized panel by panel) gives the f32
   build's logits bit for bit, for F32, F16 and quantized files, with f32 numerics, in a
   fraction of the parameter memory; with ggml numerics its stored F16/quantized matrices go
   through ggml's dot products instead (close to the rounded f32 panels, not equal), the same
   for any thread count. */
static void test_model_mapped_equals_f32(void **state) {
    (void)state;
    const char *files[3] = {tmp_path("mapped-f16.gguf"), tmp_path("mapped-q4k.gguf"), tmp_path("mapped-q40.gguf")};
    const char *types[3] = {"F16", "Q4_K_M", "Q4_0"};
    for (int i = 0; i < 3; i++) {
        unlink(files[i]);
        test_export_file(fixture_path("models/tinystories-3M"), files[i], types[i]);
    }
    const char *srcs[4] = {fixture_path("models/tinystories-3M"), files[0], files[1], files[2]};
    int64_t n_ids;
    int32_t *ids = read_ids(&n_ids);
    for (int k = 0; k < 4; k++) {
        slm_err err = {0};
        slm_src s;
        if (slm_src_open(&s, srcs[k], &err)) fail_msg("%s", err.msg);
        slm_tensor_src ts;
        slm_src_tensors(&s, &ts);
        slm_model f = {0}, mp = {0};
        if (slm_model_build(&f, &s.cfg, &ts, 96, 0, &err) || slm_model_build(&mp, &s.cfg, &ts, 96, SLM_BUILD_MAPPED, &err))
            fail_msg("%s: %s", srcs[k], err.msg);
        assert_true(mp.num_parameters * 20 < f.num_parameters); /* only the vectors are f32 */
        const size_t n_logits = 96 * (size_t)f.cfg.n_vocab;
        for (int num = 0; num < 2; num++) {
            f.numerics = mp.numerics = num ? SLM_NUMERICS_GGML : SLM_NUMERICS_F32;
            float *a = forward_all(&f, ids, 96), *b = forward_all(&mp, ids, 96);
            if (!num || k == 0) { /* f32 numerics, and F32 weights under ggml's: the same panels */
                expect_bytes_equal(srcs[k], a, b, sizeof(float) * n_logits);
            } else { /* ggml numerics on stored weights: ggml's dot products (quantized activations) */
                double maxdiff = 0;
                for (size_t i = 0; i < n_logits; i++) maxdiff = fmax(maxdiff, fabs((double)a[i] - b[i]));
                printf("    %s ggml numerics: dot kernels vs rounded f32 panels: max |logit diff| %.3g\n", types[k - 1], maxdiff);
                /* float sums in another order, magnified by the f16 cache and attention, and for
                   K-quants by the cancelling min term (d * sum - dmin * bsums) */
                assert_true(maxdiff > 0 && maxdiff < (k == 1 ? 0.05 : 0.5));
                slm_threads_set(1);
                float *c1 = forward_all(&mp, ids, 96);
                slm_threads_set(2);
                float *c2 = forward_all(&mp, ids, 96);
                slm_threads_set(0);
                expect_bytes_equal("mapped ggml numerics, 1 vs 2 threads", c1, c2, sizeof(float) * n_logits);
                expect_bytes_equal("mapped ggml numerics, default vs 1 thread", b, c1, sizeof(float) * n_logits);
                free(c1), free(c2);
            }
            free(a), free(b);
        }
        slm_model_free(&mp);
        slm_model_free(&f);
        slm_src_close(&s);
    }
    free(ids);
}

/* An f16 KV cache (SLM_BUILD_KV_F16) gives the logits of the f32 cache under ggml numerics bit for
   bit (the values are rounded to f16 either way), batched and token by token, and refuses the f32
   numerics. */
/* llama.cpp's per-query flash attention: the AVX2 path (D % 8 == 0) gives the scalar reference's
   bits, over several cache panels, GQA, a partial last panel, rescales (rising scores) and
   D = 24 (scalar both ways); q, k, v rounded to f16 first, as the forward does. */
static void test_model_attention_ggml_simd_equals_ref(void **state) {
    (void)state;
    static const int shapes[][5] = {{1, 70, 4, 2, 64}, {5, 0, 2, 1, 32}, {3, 33, 2, 2, 128}, {2, 9, 4, 1, 24}, {1, 200, 1, 1, 8}};
    slm_rng r;
    slm_rng_seed(&r, 7);
    for (size_t i = 0; i < SLM_ARRAY_LEN(shapes); i++) {
        const int T = shapes[i][0], pos0 = shapes[i][1], H = shapes[i][2], Hkv = shapes[i][3], D = shapes[i][4];
        const int ctx = (pos0 + T + SLM_PANEL - 1) / SLM_PANEL * SLM_PANEL, ld = H * D + 2 * Hkv * D;
        float *q = malloc(sizeof(float) * (size_t)T * ld), *kc = malloc(sizeof(float) * (size_t)Hkv * ctx * D);
        float *vc = malloc(sizeof(float) * (size_t)Hkv * ctx * D);
        float *o1 = malloc(sizeof(float) * (size_t)T * H * D), *o2 = malloc(sizeof(float) * (size_t)T * H * D);
        float *l1 = malloc(sizeof(float) * (size_t)T * H), *l2 = malloc(sizeof(float) * (size_t)T * H);
        for (size_t k = 0; k < (size_t)T * ld; k++) q[k] = (float)slm_rng_normal(&r) * 2.0f;
        for (size_t k = 0; k < (size_t)Hkv * ctx * D; k++) {
            kc[k] = (float)slm_rng_normal(&r) + 0.01f * (float)(k % 97); /* scores that rise: rescales */
            vc[k] = (float)slm_rng_normal(&r);
        }
        slm_round_f16(q, (int64_t)T * ld);
        slm_round_f16(kc, (int64_t)Hkv * ctx * D);
        slm_round_f16(vc, (int64_t)Hkv * ctx * D);
        slm_attention_forward_ggml(o1, l1, q, ld, kc, vc, T, pos0, H, Hkv, D, ctx);
        slm_attention_forward_ggml_ref(o2, l2, q, ld, kc, vc, T, pos0, H, Hkv, D, ctx);
        expect_bytes_equal("ggml attention simd vs ref: out", o1, o2, sizeof(float) * (size_t)T * H * D);
        expect_bytes_equal("ggml attention simd vs ref: lse", l1, l2, sizeof(float) * (size_t)T * H);
        for (size_t k = 0; k < (size_t)T * H * D; k++) assert_true(isfinite(o1[k]) && fabsf(o1[k]) < 10.0f);
        free(q), free(kc), free(vc), free(o1), free(o2), free(l1), free(l2);
    }
    /* slm_round_f16: the F16C path equals the scalar conversion pair, NaN included */
    float x[19], y[19];
    for (int k = 0; k < 19; k++) x[k] = (float)slm_rng_normal(&r) * (k < 8 ? 1e-5f : 3e4f);
    x[3] = NAN, x[17] = 65519.0f, x[18] = 1e-8f;
    memcpy(y, x, sizeof x);
    slm_round_f16(x, 19);
    for (int k = 0; k < 19; k++) {
        const float e = slm_f16_to_f32(slm_f32_to_f16(y[k]));
        if (memcmp(&e, &x[k], sizeof e)) fail_msg("slm_round_f16(%g) = %g, scalar %g", (double)y[k], (double)x[k], (double)e);
    }
}

static void test_model_kv_f16(void **state) {
    (void)state;
    slm_err err = {0};
    slm_src s;
    if (slm_src_open(&s, fixture_path("models/tinystories-3M"), &err)) fail_msg("%s", err.msg);
    slm_tensor_src ts;
    slm_src_tensors(&s, &ts);
    slm_model a = {0}, b = {0};
    if (slm_model_build(&a, &s.cfg, &ts, 80, SLM_BUILD_MAPPED, &err) ||
        slm_model_build(&b, &s.cfg, &ts, 80, SLM_BUILD_MAPPED | SLM_BUILD_KV_F16, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(b.numerics, SLM_NUMERICS_GGML);
    a.numerics = SLM_NUMERICS_GGML;
    int64_t n_ids;
    int32_t *ids = read_ids(&n_ids);
    const size_t V = (size_t)s.cfg.n_vocab;
    for (int T = 8; T <= 72; T += 64) { /* per query (T < 64) and tiled flash attention */
        float *la = forward_all(&a, ids, T), *lb = forward_all(&b, ids, T);
        expect_bytes_equal("f16 KV cache vs f32 cache, ggml numerics", la, lb, sizeof(float) * T * V);
        free(la), free(lb);
    }
    float *la = forward_all(&a, ids, 20), *step = malloc(sizeof(float) * V);
    for (int t = 0; t < 20; t++)
        if (slm_model_forward(&b, ids + t, 1, t, 0, step, &err)) fail_msg("%s", err.msg);
    expect_bytes_equal("f16 KV cache, token by token", la + 19 * V, step, sizeof(float) * V);
    b.numerics = SLM_NUMERICS_F32;
    assert_int_equal(slm_model_forward(&b, ids, 4, 0, 4, NULL, &err), SLM_E_ARG);
    assert_non_null(strstr(err.msg, "f16 KV cache"));
    free(la), free(step), free(ids);
    slm_model_free(&a);
    slm_model_free(&b);
    slm_src_close(&s);
}

/* slm_matmul_forward_dot equals, element by element, the type's scalar vec_dot of the weight row
   and the activation row quantized by the type table's from_float, plus the bias, for several
   block types, ragged shapes (OC not a multiple of 16, T not of the token chunk) and 1 or 2
   threads. */
static void test_matmul_dot_equals_vec_dot(void **state) {
    (void)state;
    enum { T = 37, C = 512, OC = 40 };
    const int types[] = {SLM_DTYPE_Q4_K, SLM_DTYPE_Q6_K, SLM_DTYPE_Q8_0, SLM_DTYPE_Q4_1, SLM_DTYPE_F16, SLM_DTYPE_IQ4_XS,
                         SLM_DTYPE_Q5_0, SLM_DTYPE_BF16};
    float *x = malloc(sizeof(float) * T * C), *wf = malloc(sizeof(float) * OC * C), bias[OC];
    float *out = malloc(sizeof(float) * T * OC), *out2 = malloc(sizeof(float) * T * OC);
    uint8_t *wq = malloc((size_t)OC * C * 4), *aq = malloc((size_t)T * C * 4), bad[OC / 16 + 1];
    fill_normal(x, (size_t)T * C, 5);
    fill_normal(wf, (size_t)OC * C, 6);
    for (int o = 0; o < OC; o++) bias[o] = 0.01f * (float)o;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        const int ty = types[i], act = slm_dot_act_type(ty);
        assert_true(act >= 0);
        const size_t wb = slm_dtype_row_size(ty, C), ab = slm_dtype_row_size(act, C);
        slm_quantize_chunk(ty, wf, wq, OC, C, NULL);
        slm_quantize_act_rows(aq, ab, x, T, C, act);
        slm_wmat w = {ty, wq, wb, OC, C, "test"};
        for (int th = 1; th <= 2; th++) {
            slm_threads_set(th);
            slm_matmul_forward_dot(th == 1 ? out : out2, OC, aq, ab, &w, bias, T, C, OC, bad);
        }
        slm_threads_set(0);
        expect_bytes_equal(slm_dtype_name(ty), out, out2, sizeof(float) * T * OC);
        for (int t = 0; t < T; t++)
            for (int o = 0; o < OC; o++) {
                float want;
                slm_dot_rows_kernel(SLM_KERNEL_REF, ty, C, 1, 1, &want, 1, wq + (size_t)o * wb, wb, aq + (size_t)t * ab, ab);
                want += bias[o];
                if (memcmp(&want, &out[t * OC + o], sizeof want))
                    fail_msg("%s: token %d row %d: %.9g, vec_dot %.9g", slm_dtype_name(ty), t, o, out[t * OC + o], want);
            }
        for (int g = 0; g < OC / 16 + 1; g++) assert_int_equal(bad[g], 0);
    }
    /* a NaN scale in row 17 flags the second group of 16 rows, and only it */
    const size_t wb = slm_dtype_row_size(SLM_DTYPE_Q8_0, C), ab = slm_dtype_row_size(SLM_DTYPE_Q8_0, C);
    slm_quantize_chunk(SLM_DTYPE_Q8_0, wf, wq, OC, C, NULL);
    slm_quantize_act_rows(aq, ab, x, T, C, SLM_DTYPE_Q8_0);
    wq[17 * wb] = 0x00, wq[17 * wb + 1] = 0x7e; /* f16 NaN */
    slm_wmat w = {SLM_DTYPE_Q8_0, wq, wb, OC, C, "test"};
    memset(bad, 0, sizeof bad);
    slm_matmul_forward_dot(out, OC, aq, ab, &w, NULL, T, C, OC, bad);
    assert_int_equal(bad[0], 0);
    assert_int_equal(bad[1], 1);
    assert_int_equal(bad[2], 0);
    free(x), free(wf), free(out), free(out2), free(wq), free(aq);
}

/* B sequences in one call give each sequence's logits of a B = 1 call, bit for bit (per-layer
   widths, a removed attention and a removed MLP included), and an observer sees every matmul
   input without changing a number. */
typedef struct obs_count { int n_matmul, n_hidden; double sum; } obs_count;
static void obs_matmul(void *ud, int l, int matrix, const float *x, int64_t N, int cols) {
    obs_count *o = ud;
    (void)l, (void)matrix;
    o->n_matmul++;
    for (int64_t i = 0; i < N * cols; i++) o->sum += x[i];
}
static void obs_hidden(void *ud, int l, const float *x, int64_t N, int C) {
    obs_count *o = ud;
    (void)l, (void)x, (void)N, (void)C;
    o->n_hidden++;
}

static void test_model_batch_equals_single(void **state) {
    (void)state;
    static slm_model_config c;
    c = (slm_model_config){.arch = SLM_ARCH_QWEN2, .n_embd = 64, .n_ff = 96, .n_layer = 3, .n_head = 4, .n_head_kv = 2,
                           .head_dim = 16, .n_vocab = 120, .norm_eps = 1e-6f, .rope_theta = 1e6f, .rope_scale = 1.0f,
                           .qkv_bias = 1, .bos_id = -1, .eos_id = -1, .per_layer = 1};
    const int ph[3] = {4, 0, 2}, pkv[3] = {2, 0, 1}, pf[3] = {96, 32, 0};
    for (int l = 0; l < 3; l++) c.n_head_l[l] = ph[l], c.n_head_kv_l[l] = pkv[l], c.n_ff_l[l] = pf[l];
    static test_fn_src fs;
    slm_tensor_src ts;
    test_fn_src_init(&fs, &c, syn_reader, NULL, &ts);
    slm_model one = {0}, three = {0};
    slm_err err = {0};
    enum { B = 3, T = 21 };
    if (slm_model_build(&one, &c, &ts, T, 0, &err) || slm_model_build_batch(&three, &c, &ts, B, T, 0, &err))
        fail_msg("%s", err.msg);
    int32_t tok[B * T];
    for (int i = 0; i < B * T; i++) tok[i] = (i * 53 + 7) % c.n_vocab;
    float *lb = malloc(sizeof(float) * B * T * c.n_vocab), *l1 = malloc(sizeof(float) * T * c.n_vocab);
    obs_count oc = {0};
    slm_forward_observer ob = {obs_matmul, obs_hidden, &oc};
    three.observer = &ob;
    assert_int_equal(slm_model_forward_batch(&three, tok, B, T, 0, 0, lb, &err), SLM_OK);
    /* per sequence: 3 + 1 + 3 (layer 0) + 3 (layer 1 MLP) + 4 (layer 2 attention) ... counted once per call */
    assert_int_equal(oc.n_hidden, 1 + c.n_layer);
    assert_int_equal(oc.n_matmul, 7 + 3 + 4 + B); /* q k v o gate up down, gate up down, q k v o, classifier per sequence */
    assert_true(isfinite(oc.sum));
    for (int b = 0; b < B; b++) {
        assert_int_equal(slm_model_forward(&one, tok + b * T, T, 0, 0, l1, &err), SLM_OK);
        expect_bytes_equal("batched logits", lb + (size_t)b * T * c.n_vocab, l1, sizeof(float) * T * c.n_vocab);
    }
    assert_int_equal(slm_model_forward_batch(&one, tok, 2, T, 0, 0, lb, &err), SLM_E_ARG);
    assert_non_null(strstr(err.msg, "built for 1"));
    free(lb), free(l1);
    slm_model_free(&one);
    slm_model_free(&three);
}

/* float32 forward vs double naive forward of random weights: rounding only */
#define SYN_ATOL 2e-4

static void test_model_synthetic_vs_naive(void **state) {
    (void)state;
    slm_model_config qwen = {.arch = SLM_ARCH_QWEN2, .n_embd = 64, .n_ff = 96, .n_layer = 2, .n_head = 4, .n_head_kv = 2,
                             .head_dim = 16, .n_vocab = 300, .norm_eps = 1e-6f, .rope_theta = 1e6f, .rope_scale = 1.0f,
                             .tied_embeddings = 0, .qkv_bias = 1, .bos_id = -1, .eos_id = -1};
    slm_model_config llama = {.arch = SLM_ARCH_LLAMA, .n_embd = 48, .n_ff = 80, .n_layer = 2, .n_head = 6, .n_head_kv = 2,
                              .head_dim = 8, .n_vocab = 200, .norm_eps = 1e-5f, .rope_theta = 10000.0f, .rope_scale = 2.0f,
                              .tied_embeddings = 1, .qkv_bias = 0, .bos_id = 1, .eos_id = 2};
    /* a pruned model: every layer its own widths, layer 1 without attention, layer 2 without MLP */
    static slm_model_config pruned;
    pruned = (slm_model_config){.arch = SLM_ARCH_LLAMA, .n_embd = 48, .n_ff = 96, .n_layer = 4, .n_head = 6, .n_head_kv = 3,
                                .head_dim = 8, .n_vocab = 150, .norm_eps = 1e-5f, .rope_theta = 10000.0f, .rope_scale = 1.0f,
                                .tied_embeddings = 0, .bos_id = -1, .eos_id = -1, .per_layer = 1};
    const int ph[4] = {6, 0, 4, 2}, pkv[4] = {3, 0, 2, 1}, pf[4] = {96, 40, 0, 16};
    for (int l = 0; l < 4; l++) pruned.n_head_l[l] = ph[l], pruned.n_head_kv_l[l] = pkv[l], pruned.n_ff_l[l] = pf[l];
    const slm_model_config *cfgs[] = {&qwen, &llama, &pruned};
    const int T = 37;
    for (size_t i = 0; i < SLM_ARRAY_LEN(cfgs); i++) {
        const slm_model_config *cf = cfgs[i];
        int32_t tok[37];
        for (int t = 0; t < T; t++) tok[t] = (t * 37 + 11) % cf->n_vocab;
        slm_model m = {0};
        slm_err err = {0};
        test_fn_src fs;
        slm_tensor_src ts;
        test_fn_src_init(&fs, cf, syn_reader, NULL, &ts);
        if (slm_model_build(&m, cf, &ts, 64, 0, &err)) fail_msg("%s", err.msg);
        float *got = forward_all(&m, tok, T);
        double *want = malloc(sizeof(double) * (size_t)T * cf->n_vocab);
        naive_forward(want, cf, tok, T);
        float *wantf = malloc(sizeof(float) * (size_t)T * cf->n_vocab);
        double maxdiff = 0;
        for (size_t j = 0; j < (size_t)T * cf->n_vocab; j++) {
            wantf[j] = (float)want[j];
            maxdiff = fmax(maxdiff, fabs(got[j] - want[j]));
        }
        const char *what = cf->per_layer ? "pruned llama" : cf->arch == SLM_ARCH_QWEN2 ? "qwen2" : "llama";
        printf("    synthetic %s (%s RoPE%s%s%s): max |logit diff| vs naive double forward %.3g\n", what,
               cf->arch == SLM_ARCH_QWEN2 ? "NEOX" : "pairs", cf->qkv_bias ? ", q/k/v biases" : "",
               cf->tied_embeddings ? ", tied, rope scale 2" : ", untied",
               cf->per_layer ? ", per-layer widths, a layer without attention, one without MLP" : "", maxdiff);
        expect_tensor_near(what, got, wantf, (int64_t)T * cf->n_vocab, SYN_ATOL, 0);
        /* the weights read back as stored, through the panel layout */
        float w[48 * 80];
        int64_t nr, nc;
        const char *nm = cf->qkv_bias ? "blk.1.attn_k.bias" : "blk.1.ffn_down.weight";
        assert_int_equal(slm_model_get_weight(&m, nm, w, &nr, &nc, &err), 0);
        for (int64_t r = 0; r < nr; r++)
            for (int64_t c = 0; c < nc; c++) assert_true(w[r * nc + c] == (float)syn_w(nm, r, c, nc));
        free(got), free(want), free(wantf);
        slm_model_free(&m);
    }
}

/* ---------------------------------------------------------------------------------------------
 * greedy generation */

static void test_model_greedy_stories260K(void **state) {
    (void)state;
    cJSON *root = load_json("reference/stories260K.json");
    int n;
    int32_t *want = json_ids(jget(root, "llama2c_greedy_tokens"), &n);
    assert_int_equal(n, 257);
    slm_model m = {0};
    build(&m, "models/stories260K", 512);
    int32_t out[256];
    int n_out;
    slm_err err = {0};
    slm_gen_opts o = {.n_gen = 256};
    if (slm_generate_greedy(&m, want, 1, &o, out, &n_out, &err)) fail_msg("%s", err.msg);
    assert_int_equal(n_out, 256);
    for (int i = 0; i < 256; i++)
        if (out[i] != want[i + 1]) fail_msg("greedy token %d: got %d want %d", i + 1, out[i], want[i + 1]);
    free(want);
    slm_model_free(&m);
    cJSON_Delete(root);
}

static void test_model_greedy_tinystories3M(void **state) {
    (void)state;
    cJSON *root = load_json("reference/tinystories-3M.json");
    int n;
    int32_t *want = json_ids(jget(root, "models.tinystories-3M.greedy_tokens"), &n);
    assert_int_equal(n, 205);
    static const char *dirs[] = {"models/tinystories-3M", "models/tinystories-3M-sharded"};
    for (size_t d = 0; d < SLM_ARRAY_LEN(dirs); d++) {
        slm_model m = {0};
        build(&m, dirs[d], 256);
        int32_t out[200];
        int n_out;
        slm_err err = {0};
        slm_gen_opts o = {.n_gen = 200};
        if (slm_generate_greedy(&m, want, 5, &o, out, &n_out, &err)) fail_msg("%s", err.msg);
        assert_int_equal(n_out, 200);
        for (int i = 0; i < 200; i++)
            if (out[i] != want[i + 5]) fail_msg("%s: greedy token %d: got %d want %d", dirs[d], i + 5, out[i], want[i + 5]);
        slm_model_free(&m);
    }
    free(want);
    cJSON_Delete(root);
}

/* llama.cpp's numerics (f16 KV cache and flash attention, activations rounded to each weight's
   dot type) keep run.c's greedy text, as llama.cpp itself does on the F32 GGUF; they move the
   logits by about f16 precision, and change nothing of the f32 path. */
static void test_model_ggml_numerics(void **state) {
    (void)state;
    cJSON *root = load_json("reference/stories260K.json");
    int n;
    int32_t *want = json_ids(jget(root, "llama2c_greedy_tokens"), &n);
    slm_model m = {0};
    build(&m, "models/stories260K", 256);
    float *f32 = forward_all(&m, want, 64);
    m.numerics = SLM_NUMERICS_GGML;
    float *g = forward_all(&m, want, 64);
    double maxdiff = 0;
    for (size_t i = 0; i < (size_t)64 * 512; i++) maxdiff = fmax(maxdiff, fabs((double)g[i] - f32[i]));
    printf("    ggml numerics vs f32: max |logit diff| %.3g over 64 positions\n", maxdiff);
    assert_true(maxdiff > 0 && maxdiff < 0.05);
    int32_t out[200];
    int n_out;
    slm_err err = {0};
    slm_gen_opts o = {.n_gen = 200};
    if (slm_generate_greedy(&m, want, 1, &o, out, &n_out, &err)) fail_msg("%s", err.msg);
    for (int i = 0; i < 200; i++)
        if (out[i] != want[i + 1]) fail_msg("ggml numerics: greedy token %d: got %d want %d", i + 1, out[i], want[i + 1]);
    m.numerics = SLM_NUMERICS_F32;
    float *again = forward_all(&m, want, 64);
    expect_bytes_equal("f32 numerics after ggml ones", again, f32, sizeof(float) * 64 * 512);
    /* activation rounding: Q8_0 keeps each value within half a step of its block's scale */
    float x[256], y[256];
    fill_normal(x, 256, 7);
    slm_round_rows(y, x, 1, 256, SLM_DTYPE_Q8_0);
    for (int b = 0; b < 8; b++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[b * 32 + j]));
        /* half a step, plus the scale kept in f16 (2^-11 relative) times at most 127 steps */
        for (int j = 0; j < 32; j++) assert_true(fabsf(y[b * 32 + j] - x[b * 32 + j]) <= amax / 127 * (0.5f + 127.0f / 2048));
    }
    slm_round_rows(y, x, 1, 256, SLM_DTYPE_Q8_K);
    for (int j = 0; j < 256; j++) assert_true(fabsf(y[j] - x[j]) < 0.05f);
    free(f32), free(g), free(again), free(want);
    slm_model_free(&m);
    cJSON_Delete(root);
}

/* ---------------------------------------------------------------------------------------------
 * bit-identical results */

/* Decoding token by token through the KV cache gives the batched forward's logits, bit for bit. */
static void test_model_decode_equals_batched(void **state) {
    (void)state;
    static const char *dirs[] = {"models/stories260K", "models/tinystories-3M"};
    int64_t n_ids;
    int32_t *ids = read_ids(&n_ids);
    const int T = 40;
    for (size_t d = 0; d < SLM_ARRAY_LEN(dirs); d++) {
        slm_model m = {0};
        build(&m, dirs[d], 64);
        int V = m.cfg.n_vocab;
        float *batched = forward_all(&m, ids, T);
        float *one = malloc(sizeof(float) * (size_t)T * V);
        slm_err err = {0};
        /* 7 tokens, then one at a time, then 9 at once: splits of every kind */
        assert_int_equal(slm_model_forward(&m, ids, 7, 0, 0, one, &err), 0);
        for (int t = 7; t < 31; t++) assert_int_equal(slm_model_forward(&m, ids + t, 1, t, 0, one + (size_t)t * V, &err), 0);
        assert_int_equal(slm_model_forward(&m, ids + 31, 9, 31, 0, one + (size_t)31 * V, &err), 0);
        expect_bytes_equal(dirs[d], one, batched, sizeof(float) * (size_t)T * V);
        free(one);
        free(batched);
        slm_model_free(&m);
    }
    free(ids);
}

static void test_model_threads_deterministic(void **state) {
    (void)state;
    int64_t n_ids;
    int32_t *ids = read_ids(&n_ids);
    slm_model m = {0};
    build(&m, "models/tinystories-3M", 256);
    slm_threads_set(1);
    float *l1 = forward_all(&m, ids, 256);
    slm_threads_set(2);
    float *l2 = forward_all(&m, ids, 256);
    expect_bytes_equal("logits, 1 vs 2 threads", l1, l2, sizeof(float) * 256 * (size_t)m.cfg.n_vocab);
    /* keeping every layer's activations (for a backward) changes no number */
    {
        slm_model mk = {0};
        slm_err err = {0};
        slm_src src;
        assert_int_equal(slm_src_open(&src, fixture_path("models/tinystories-3M"), &err), 0);
        assert_int_equal(test_model_build_src(&src, &mk, 256, SLM_BUILD_KEEP_ACTS, &err), 0);
        slm_src_close(&src);
        assert_true(mk.num_activations > 3 * m.num_activations);
        float *lk = forward_all(&mk, ids, 256);
        expect_bytes_equal("logits with per-layer activations", lk, l1, sizeof(float) * 256 * (size_t)m.cfg.n_vocab);
        size_t TC = (size_t)256 * mk.cfg.n_embd; /* layers 0 and 1 have their own outputs */
        assert_true(memcmp(mk.acts.residual3, mk.acts.residual3 + TC, sizeof(float) * TC) != 0);
        free(lk);
        slm_model_free(&mk);
    }
    /* the evaluation too, both conventions */
    for (int conv = SLM_PPL_ALL; conv <= SLM_PPL_SECOND_HALF; conv++) {
        slm_eval_opts o = {.ctx = 128, .convention = conv, .bos_id = 1, .max_chunks = 4};
        slm_ppl_result r1, r2;
        slm_err err = {0};
        slm_threads_set(1);
        assert_int_equal(slm_eval_ppl(&m, ids, n_ids, &o, &r1, &err), 0);
        slm_threads_set(2);
        assert_int_equal(slm_eval_ppl(&m, ids, n_ids, &o, &r2, &err), 0);
        expect_bytes_equal("window NLL sums, 1 vs 2 threads", r1.chunk_nll, r2.chunk_nll, sizeof(double) * 4);
        slm_ppl_result_free(&r1);
        slm_ppl_result_free(&r2);
    }
    slm_threads_set(0);
    free(l1);
    free(l2);
    free(ids);
    slm_model_free(&m);
}

static void fill_normal(float *x, size_t n, uint64_t seed) {
    slm_rng r;
    slm_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = (float)slm_rng_normal(&r);
}

/* The AVX2 kernels compute the very same float operations as the scalar reference. */
static void test_model_kernels_simd_equals_ref(void **state) {
    (void)state;
    printf("    kernels: %s\n", slm_layers_simd() == SLM_SIMD_AVX512 ? "AVX-512 matmul, AVX2+FMA elsewhere, vs scalar"
                                 : slm_layers_simd()                  ? "AVX2+FMA vs scalar"
                                                                      : "scalar only (no AVX2 on this CPU)");
    static const int shapes[][3] = {{1, 64, 16}, {7, 64, 172}, {13, 172, 64}, {40, 256, 768}, {5, 33, 9}};
    for (size_t s = 0; s < SLM_ARRAY_LEN(shapes); s++) {
        int T = shapes[s][0], C = shapes[s][1], OC = shapes[s][2];
        float *x = malloc(sizeof(float) * (size_t)T * C), *w = malloc(sizeof(float) * (size_t)OC * C);
        float *wp = calloc(slm_panel_floats(OC, C), sizeof(float)), *b = malloc(sizeof(float) * (size_t)OC);
        float *o1 = malloc(sizeof(float) * (size_t)T * OC), *o2 = malloc(sizeof(float) * (size_t)T * OC);
        fill_normal(x, (size_t)T * C, 1 + s);
        fill_normal(w, (size_t)OC * C, 100 + s);
        fill_normal(b, (size_t)OC, 200 + s);
        slm_panel_pack_rows(wp, w, 0, OC, C);
        slm_matmul_forward(o1, OC, x, wp, s % 2 ? b : NULL, T, C, OC);
        slm_matmul_forward_ref(o2, OC, x, wp, s % 2 ? b : NULL, T, C, OC);
        expect_bytes_equal("matmul simd vs ref", o1, o2, sizeof(float) * (size_t)T * OC);
        /* and the reference is the plain dot product up to rounding */
        for (int t = 0; t < T; t++)
            for (int o = 0; o < OC; o++) {
                double acc = s % 2 ? b[o] : 0;
                for (int c = 0; c < C; c++) acc += (double)x[t * C + c] * w[o * C + c];
                assert_true(fabs(acc - o2[t * OC + o]) < 1e-4 * (1 + fabs(acc)));
            }
        free(x), free(w), free(wp), free(b), free(o1), free(o2);
    }
    /* T, H, Hkv, D, pos0: every accumulator layout (D 8, 16, 24, 32, 48, 64), several query tiles
       and key chunks, a chunk boundary inside a tile */
    static const int att[][5] = {{1, 8, 4, 8, 0},   {19, 8, 4, 8, 5},  {33, 8, 4, 32, 40}, {3, 4, 4, 16, 70},
                                 {2, 8, 8, 64, 100}, {5, 4, 2, 24, 3}, {9, 4, 4, 48, 60},  {27, 2, 1, 32, 101}};
    for (size_t s = 0; s < SLM_ARRAY_LEN(att); s++) {
        int T = att[s][0], H = att[s][1], Hkv = att[s][2], D = att[s][3], pos0 = att[s][4], ctx = 128;
        int ld = (H + 2 * Hkv) * D;
        float *qkv = malloc(sizeof(float) * (size_t)T * ld);
        float *kc = calloc((size_t)Hkv * ctx * D, sizeof(float)), *vc = calloc((size_t)Hkv * ctx * D, sizeof(float));
        float *o1 = malloc(sizeof(float) * (size_t)T * H * D), *o2 = malloc(sizeof(float) * (size_t)T * H * D);
        float *l1 = malloc(sizeof(float) * (size_t)T * H), *l2 = malloc(sizeof(float) * (size_t)T * H);
        float *past = malloc(sizeof(float) * (size_t)(pos0 + 1) * ld);
        fill_normal(past, (size_t)(pos0 + 1) * ld, 300 + s);
        fill_normal(qkv, (size_t)T * ld, 400 + s);
        for (int i = 0; i < T * ld; i++) qkv[i] *= 3.0f; /* peaked softmax: exercises the rescaling */
        slm_kv_store(kc, vc, past, ld, H * D, (H + Hkv) * D, pos0, 0, Hkv, D, ctx);
        slm_kv_store(kc, vc, qkv, ld, H * D, (H + Hkv) * D, T, pos0, Hkv, D, ctx);
        slm_attention_forward(o1, l1, qkv, ld, kc, vc, T, pos0, H, Hkv, D, ctx);
        slm_attention_forward_ref(o2, l2, qkv, ld, kc, vc, T, pos0, H, Hkv, D, ctx);
        expect_bytes_equal("attention simd vs ref", o1, o2, sizeof(float) * (size_t)T * H * D);
        expect_bytes_equal("attention lse simd vs ref", l1, l2, sizeof(float) * (size_t)T * H);
        free(qkv), free(kc), free(vc), free(o1), free(o2), free(l1), free(l2), free(past);
    }
    /* swiglu (vector exp) on values across the whole range, odd widths for the scalar tail */
    static const int sw[][2] = {{1, 8}, {3, 172}, {5, 768}, {2, 13}};
    for (size_t s = 0; s < SLM_ARRAY_LEN(sw); s++) {
        int T = sw[s][0], F = sw[s][1];
        float *gu = malloc(sizeof(float) * (size_t)T * 2 * F), *o1 = malloc(sizeof(float) * (size_t)T * F);
        float *o2 = malloc(sizeof(float) * (size_t)T * F);
        fill_normal(gu, (size_t)T * 2 * F, 500 + s);
        for (int i = 0; i < T * 2 * F; i += 7) gu[i] *= 40.0f; /* saturated sigmoids, both signs */
        slm_swiglu_forward(o1, gu, T, F);
        slm_swiglu_forward_ref(o2, gu, T, F);
        expect_bytes_equal("swiglu simd vs ref", o1, o2, sizeof(float) * (size_t)T * F);
        for (int t = 0; t < T; t++)
            for (int i = 0; i < F; i++) {
                double g = gu[t * 2 * F + i], u = gu[t * 2 * F + F + i], want = g / (1 + exp(-g)) * u;
                assert_true(fabs(o2[t * F + i] - want) <= 1e-6 * (1 + fabs(want)));
            }
        free(gu), free(o1), free(o2);
    }
    /* exp against libm */
    double maxrel = 0;
    for (float x = -87.0f; x <= 0.0f; x += 0.0137f) maxrel = fmax(maxrel, fabs(slm_expf(x) - exp(x)) / exp(x));
    printf("    slm_expf on [-87, 0]: max rel error %.3g\n", maxrel);
    assert_true(maxrel < 3e-7);
    assert_true(slm_expf(-INFINITY) == 0.0f && slm_expf(-100.0f) == 0.0f && slm_expf(0.0f) == 1.0f);
}

/* ---------------------------------------------------------------------------------------------
 * perplexity: the fixture README's stream protocol */

/* The README's stream protocol on ids[offset:], against stream[0] of a reference entry
   (ctx 256, chunk_nll_sums): n_chunks windows (0: all, then the totals too). */
static void check_stream(const char *model_dir, const char *json, const char *stream_path, int64_t offset,
                         int n_chunks) {
    cJSON *root = load_json(json);
    const cJSON *ps = cJSON_GetArrayItem(jget(root, stream_path), 0);
    assert_int_equal((int)jget(ps, "ctx")->valuedouble, 256);
    const cJSON *sums = jget(ps, "chunk_nll_sums");
    int64_t n_ids;
    int32_t *ids = read_ids(&n_ids);
    slm_model m = {0};
    build(&m, model_dir, 256);
    slm_eval_opts o = {.ctx = 256, .convention = SLM_PPL_ALL, .bos_id = 1, .max_chunks = n_chunks};
    slm_ppl_result r;
    slm_err err = {0};
    if (slm_eval_ppl(&m, ids + offset, n_ids - offset, &o, &r, &err)) fail_msg("%s", err.msg);
    double want_sum = 0, worst = 0;
    for (int64_t k = 0; k < r.n_chunks; k++) {
        double want = cJSON_GetArrayItem(sums, (int)k)->valuedouble;
        want_sum += want;
        worst = fmax(worst, fabs(r.chunk_nll[k] - want) / want);
        if (fabs(r.chunk_nll[k] - want) > CHUNK_RTOL * want)
            fail_msg("window %lld: NLL sum %.6f, reference %.6f", (long long)k, r.chunk_nll[k], want);
    }
    double want_ppl = exp(want_sum / (double)r.scored);
    printf("    %s stream ctx 256 from id %lld, %lld windows, %lld ids: ppl %.6f (reference %.6f), worst window rel diff %.2g\n",
           model_dir, (long long)offset, (long long)r.n_chunks, (long long)r.scored, r.ppl, want_ppl, worst);
    assert_true(fabs(r.ppl - want_ppl) < PPL_RTOL * want_ppl);
    if (!n_chunks) {
        assert_int_equal(r.n_chunks, (int64_t)jget(ps, "chunks")->valuedouble);
        assert_int_equal(r.scored, (int64_t)jget(ps, "scored")->valuedouble);
        double ref = jget(ps, "ppl")->valuedouble;
        printf("    all windows: ppl %.6f +/- %.5f, reference %.6f\n", r.ppl, r.ppl_err, ref);
        assert_true(fabs(r.ppl - ref) < PPL_RTOL * ref);
    }
    slm_ppl_result_free(&r);
    slm_model_free(&m);
    free(ids);
    cJSON_Delete(root);
}

static void test_model_ppl_stream_quick(void **state) {
    (void)state;
    check_stream("models/stories260K", "reference/stories260K.json", "models.stories260K.ppl_stream", 0, N_QUICK_CHUNKS);
}

/* stories260K on the whole file (1541 windows), README section 4: 5.698645 */
static void test_model_ppl_stream_full(void **state) {
    (void)state;
    check_stream("models/stories260K", "reference/stories260K.json", "models.stories260K.ppl_stream", 0, 0);
}

/* tinystories-3M on its held-out part (231 windows), README section 7.6: 5.898395 */
static void test_model_ppl_heldout_tinystories3M(void **state) {
    (void)state;
    cJSON *root = load_json("reference/tinystories-3M.json");
    int64_t offset = (int64_t)jget(root, "split.token_offset")->valuedouble;
    cJSON_Delete(root);
    check_stream("models/tinystories-3M", "reference/tinystories-3M.json", "models.tinystories-3M.heldout_stream", offset, 0);
}

/* ---------------------------------------------------------------------------------------------
 * KL ordering: quantized copies made with the library's ggml-exact kernels */

typedef struct qreader {
    const slm_src *src;
    int type; /* SLM_DTYPE_Q8_0 or Q4_0: 2-D weights whose rows are a multiple of 32 */
} qreader;

static int quant_reader(void *ud, const char *name, int64_t nrows, int64_t ncols, int64_t r0, int64_t n,
                        float *dst, slm_err *err) {
    const qreader *q = ud;
    int i = slm_src_find(q->src, name);
    if (i < 0) return slm_errf(err, SLM_E_FORMAT, "missing %s", name);
    assert_int_equal(slm_src_nrows(&q->src->tensors[i]), nrows);
    SLM_TRY(slm_src_read_rows(q->src, (size_t)i, r0, n, dst, err));
    if (nrows == 1 || ncols % 32) return SLM_OK; /* norms, and ffn_down of stories260K (172) */
    uint8_t blocks[34 * 64];
    assert_true(ncols / 32 * 34 <= (int64_t)sizeof blocks);
    for (int64_t r = 0; r < n; r++) {
        if (q->type == SLM_DTYPE_Q8_0) {
            slm_quantize_row_q8_0_ref(dst + r * ncols, blocks, ncols);
            slm_dequantize_row_q8_0(blocks, dst + r * ncols, ncols);
        } else {
            slm_quantize_row_q4_0_ref(dst + r * ncols, blocks, ncols);
            slm_dequantize_row_q4_0(blocks, dst + r * ncols, ncols);
        }
    }
    return SLM_OK;
}

static void test_model_kl_ordering(void **state) {
    (void)state;
    slm_err err = {0};
    slm_src src;
    if (slm_src_open(&src, fixture_path("models/stories260K"), &err)) fail_msg("%s", err.msg);
    slm_model ref = {0}, same = {0}, q8 = {0}, q4 = {0};
    qreader r8 = {&src, SLM_DTYPE_Q8_0}, r4 = {&src, SLM_DTYPE_Q4_0};
    assert_int_equal(test_model_build_src(&src, &ref, 256, 0, &err), 0);
    assert_int_equal(test_model_build_src(&src, &same, 256, 0, &err), 0);
    static test_fn_src f8, f4;
    slm_tensor_src t8, t4;
    test_fn_src_init(&f8, &src.cfg, quant_reader, &r8, &t8);
    test_fn_src_init(&f4, &src.cfg, quant_reader, &r4, &t4);
    assert_int_equal(slm_model_build(&q8, &src.cfg, &t8, 256, 0, &err), 0);
    assert_int_equal(slm_model_build(&q4, &src.cfg, &t4, 256, 0, &err), 0);
    slm_src_close(&src);
    int64_t n_ids;
    int32_t *ids = read_ids(&n_ids);
    slm_eval_opts o = {.ctx = 256, .convention = SLM_PPL_SECOND_HALF, .bos_id = 1, .max_chunks = 16};
    slm_kl_result k0, k8, k4;
    assert_int_equal(slm_eval_kl(&ref, &same, ids, n_ids, &o, &k0, &err), 0);
    assert_int_equal(slm_eval_kl(&ref, &q8, ids, n_ids, &o, &k8, &err), 0);
    assert_int_equal(slm_eval_kl(&ref, &q4, ids, n_ids, &o, &k4, &err), 0);
    printf("    KL(F32||F32) %.3g, KL(F32||Q8_0) %.6f +/- %.6f (top1 %.4f, dPPL %+.5f +/- %.5f), "
           "KL(F32||Q4_0) %.6f +/- %.6f (top1 %.4f, dPPL %+.5f +/- %.5f), %lld ids\n",
           k0.kld_mean, k8.kld_mean, k8.kld_mean_err, k8.top1, k8.dppl, k8.dppl_err, k4.kld_mean, k4.kld_mean_err,
           k4.top1, k4.dppl, k4.dppl_err, (long long)k8.model.scored);
    assert_true(k0.kld_mean == 0.0 && k0.kld_max == 0.0 && k0.top1 == 1.0 && k0.dppl == 0.0);
    assert_true(k8.kld_mean > 0.0 && k8.kld_mean < 1e-3);
    assert_true(k4.kld_mean > 3 * k8.kld_mean);
    assert_true(k4.kld_median > k8.kld_median && k4.kld_p99 > k8.kld_p99);
    assert_true(k8.top1 > 0.95 && k4.top1 < k8.top1);
    /* the reference side is the plain perplexity of the reference model */
    slm_ppl_result p;
    assert_int_equal(slm_eval_ppl(&ref, ids, n_ids, &o, &p, &err), 0);
    expect_bytes_equal("ref ppl from eval_kl vs eval_ppl", k8.ref.chunk_nll, p.chunk_nll, sizeof(double) * 16);
    slm_ppl_result_free(&p);
    slm_kl_result_free(&k0), slm_kl_result_free(&k8), slm_kl_result_free(&k4);
    slm_model_free(&ref), slm_model_free(&same), slm_model_free(&q8), slm_model_free(&q4);
    free(ids);
}

/* ---------------------------------------------------------------------------------------------
 * errors */

static void test_model_rejects_bad_calls(void **state) {
    (void)state;
    slm_model m = {0};
    build(&m, "models/stories260K", 32);
    slm_err err = {0};
    float logits[512];
    int32_t ids[40] = {1, 403, 407};
    assert_int_equal(slm_model_forward(&m, ids, 33, 0, 32, logits, &err), SLM_E_ARG);
    assert_non_null(strstr(err.msg, "32 positions"));
    assert_int_equal(slm_model_forward(&m, ids, 2, 31, 1, logits, &err), SLM_E_ARG);
    ids[1] = 512;
    assert_int_equal(slm_model_forward(&m, ids, 2, 0, 1, logits, &err), SLM_E_ARG);
    assert_non_null(strstr(err.msg, "token id 512"));
    ids[1] = 403;
    slm_eval_opts o = {.ctx = 64, .convention = SLM_PPL_ALL, .bos_id = 1};
    slm_ppl_result r;
    assert_int_equal(slm_eval_ppl(&m, ids, 40, &o, &r, &err), SLM_E_ARG); /* ctx > max_ctx */
    o.ctx = 32;
    assert_int_equal(slm_eval_ppl(&m, ids, 30, &o, &r, &err), SLM_E_DATA); /* shorter than a window */
    assert_non_null(strstr(err.msg, "fewer than one window"));
    /* out of memory at every allocation of the build */
    slm_src src;
    assert_int_equal(slm_src_open(&src, fixture_path("models/stories260K"), &err), 0);
    long k = 0;
    for (;; k++) { /* every allocation of a build fails once, until the build succeeds */
        slm_model m2 = {0};
        slm_mem_fail_after(k);
        int rc = test_model_build_src(&src, &m2, 32, 0, &err);
        slm_mem_fail_after(-1);
        slm_model_free(&m2);
        if (rc == SLM_OK) break;
        assert_int_equal(rc, SLM_E_NOMEM);
    }
    assert_true(k >= 9); /* tables, parameters, activations, cache, types, rows, tensor list */
    slm_src_close(&src);
    slm_model_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_kernels_simd_equals_ref),
        cmocka_unit_test(test_model_logits_stories260K),
        cmocka_unit_test(test_model_logits_tinystories3M),
        cmocka_unit_test(test_model_synthetic_vs_naive),
        cmocka_unit_test(test_model_batch_equals_single),
        cmocka_unit_test(test_model_mapped_equals_f32),
        cmocka_unit_test(test_model_greedy_stories260K),
        cmocka_unit_test(test_model_greedy_tinystories3M),
        cmocka_unit_test(test_model_ggml_numerics),
        cmocka_unit_test(test_matmul_dot_equals_vec_dot),
        cmocka_unit_test(test_model_kv_f16),
        cmocka_unit_test(test_model_attention_ggml_simd_equals_ref),
        cmocka_unit_test(test_model_decode_equals_batched),
        cmocka_unit_test(test_model_threads_deterministic),
        cmocka_unit_test(test_model_ppl_stream_quick),
        cmocka_unit_test(test_model_kl_ordering),
        cmocka_unit_test(test_model_rejects_bad_calls),
        cmocka_unit_test(test_model_ppl_stream_full),
        cmocka_unit_test(test_model_ppl_heldout_tinystories3M),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
