/* test_calib.c - calibration statistics (model/calib.c) and their imatrix files
 * (formats/imatrix_calib.c): llama-imatrix's own output on tinystories-3M (fixtures/imatrix,
 * made by llama.cpp v0.5.0, see fixtures/imatrix/README.md) reproduced entry by entry, count by
 * count, including its schedule (which rows count, in which order); bit-identical results for 1
 * and 2 threads and for the AVX2 and scalar Gram kernels; Gram matrices, sums, cosines, channel
 * and head scores of a tiny synthetic model against a naive computation in double; the imatrix
 * round trip, llama-imatrix's bytes from its own sums, and refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "core/mem.h"
#include "core/rng.h"
#include "core/slm.h"
#include "core/thread.h"
#include "formats/imatrix_calib.h"
#include "formats/model_src.h"
#include "model/calib.h"
#include "model/catalog.h"
#include "model/tokenizer.h"
#include "model/transformer.h"
#include "tests/testutil.h"

/* llama-imatrix's reference (fixture README section 10) and the calibration text it names. */
#define REF "reference/tinystories-3M.calib40.imatrix.gguf"
#define CALIB_BYTES 317760 /* calib40 = head -c 317760 text/tinystories_val.txt */
/* llama-imatrix -c 512 --chunks 8 --process-output and -c 20 -b 40 -ub 32 --chunks 5 on calib40
   (fixtures/imatrix). */
#define FIX_C512 "fixtures/imatrix/ts3m.calib40.c512.chunks8.output.imatrix.gguf"
#define FIX_C20 "fixtures/imatrix/ts3m.calib40.c20.b40.ub32.chunks5.imatrix.gguf"

/* Sums of squares vs llama-imatrix, relative per column. The rows and their order are
   llama-imatrix's (blk.0's attention input, which both compute bit for bit, matches exactly);
   the rest differs only because our --numerics ggml emulation of ggml's CPU backend (F16 KV
   cache, flash attention) rounds a few activations differently: measured 6.0e-5 on 8 chunks of
   512 (9.1e-6 on all 301 chunks, whose sums average more rows). */
#define IMATRIX_RTOL 2.5e-4
/* The same with chunks of 20 tokens: ggml's per-query F16 flash attention (fewer than 64
   queries), which our emulation follows less closely, and only 84 rows per sum (6.6e-4). */
#define IMATRIX_SMALL_RTOL 2e-3
/* Gram matrix vs a naive double sum: the same exact products, rounded differently (fma
   chain vs product then add), relative to sqrt(G_ii G_jj). */
#define GRAM_RTOL 1e-12
/* Cosines and |x| means vs naive double: sums of doubles in another order. */
#define STAT_RTOL 1e-12

/* ---------------------------------------------------------------------------------------------
 * tinystories-3M and its calibration text */

typedef struct ts3m {
    slm_src src;
    int32_t *ids;
    size_t n_ids;
    int32_t bos;
} ts3m;

/* calib40 tokenized as llama-imatrix does (add_special: BOS first). */
static void ts3m_open(ts3m *t) {
    slm_err err = {0};
    if (slm_src_open(&t->src, fixture_path("models/tinystories-3M"), &err)) fail_msg("%s", err.msg);
    slm_tokenizer tok = {0};
    if (slm_tokenizer_build(&tok, &t->src.vocab, &err)) fail_msg("%s", err.msg);
    size_t n;
    char *text = read_whole_file(fixture_path("text/tinystories_val.txt"), &n);
    assert_true(n >= CALIB_BYTES);
    if (slm_tokenize(&tok, text, CALIB_BYTES, 1, &t->ids, &t->n_ids, &err)) fail_msg("%s", err.msg);
    t->bos = slm_tokenizer_bos(&tok);
    assert_int_equal(t->bos, 1);
    free(text);
    slm_tokenizer_free(&tok);
}

static void ts3m_close(ts3m *t) {
    slm_free(t->ids);
    slm_src_close(&t->src);
}

/* Builds m for o on the ids (the sequences slm_calib_batch asks for) and runs. */
static void run_calib(slm_calib *c, const slm_src *src, const int32_t *ids, size_t n_ids, const slm_calib_opts *o,
                      int numerics) {
    slm_err err = {0};
    slm_tensor_src ts;
    slm_src_tensors(src, &ts);
    slm_model m = {0};
    /* activations for one ubatch only (llama-imatrix's memory), the caches for every sequence */
    if (slm_model_build_calls(&m, &src->cfg, &ts, slm_calib_batch(o, (int64_t)n_ids), o->ctx,
                              slm_calib_call_tokens(o, (int64_t)n_ids), numerics == SLM_NUMERICS_GGML ? SLM_BUILD_KV_F16 : 0, &err))
        fail_msg("%s", err.msg);
    m.numerics = numerics;
    if (slm_calib_run(c, &m, ids, (int64_t)n_ids, o, &err)) fail_msg("%s", err.msg);
    assert_null(m.observer);
    slm_model_free(&m);
}

/* Every entry of the llama-imatrix file `ref` against ours: names, counts, keys exactly; sums
   within rtol; blk.0's q/k/v bit for bit. Returns the largest relative difference. */
static double compare_with_llama(const slm_calib *c, const char *ref, double rtol) {
    slm_err err = {0};
    slm_imatrix want, got;
    if (slm_imatrix_load(&want, ref, &err)) fail_msg("%s", err.msg);
    if (slm_imatrix_from_calib(&got, c, "calib40.txt", 0, &err)) fail_msg("%s", err.msg);
    assert_int_equal(got.n_entries, want.n_entries);
    assert_int_equal(got.chunk_count, want.chunk_count);
    assert_int_equal(got.chunk_size, want.chunk_size);
    double worst = 0;
    for (size_t i = 0; i < want.n_entries; i++) {
        const slm_imatrix_entry *w = &want.entries[i], *g = &got.entries[i];
        assert_string_equal(g->name, w->name);
        assert_int_equal(g->ncols, w->ncols);
        assert_int_equal(g->n_mat, 1);
        if (g->counts[0] != w->counts[0])
            fail_msg("%s: %lld rows, llama-imatrix %lld", w->name, (long long)g->counts[0], (long long)w->counts[0]);
        for (int64_t j = 0; j < w->ncols; j++) {
            double d = fabs((double)g->in_sum2[j] - w->in_sum2[j]) / w->in_sum2[j];
            worst = SLM_MAX(worst, d);
            if (d > rtol) fail_msg("%s[%lld]: %.9g, llama-imatrix %.9g (relative %.3g > %.3g)", w->name, (long long)j,
                                   g->in_sum2[j], w->in_sum2[j], d, rtol);
        }
        if (!strncmp(w->name, "blk.0.attn_", 11) && strcmp(w->name, "blk.0.attn_output.weight"))
            expect_bytes_equal("blk.0 attention input sums (same rows, same order, same float sums as "
                               "llama-imatrix; a difference means the RMS norm or the schedule changed)",
                               g->in_sum2, w->in_sum2, sizeof(float) * (size_t)w->ncols);
    }
    slm_imatrix_free(&want);
    slm_imatrix_free(&got);
    return worst;
}

/* llama-imatrix -c 512 --chunks 8 --process-output: 2 forwards of 4 chunks, ubatches of 4 x 128
   tokens; output.weight too. */
static void test_calib_matches_llama_imatrix(void **state) {
    (void)state;
    ts3m t;
    ts3m_open(&t);
    slm_calib_opts o = {.ctx = 512, .chunks = 8, .bos_id = t.bos, .process_output = 1};
    assert_int_equal(slm_calib_batch(&o, (int64_t)t.n_ids), 4);
    assert_int_equal(slm_calib_call_tokens(&o, (int64_t)t.n_ids), 512); /* 4 x 128, not 4 x 512 */
    slm_calib c;
    run_calib(&c, &t.src, t.ids, t.n_ids, &o, SLM_NUMERICS_GGML);
    assert_int_equal(c.n_chunks, 8);
    double worst = compare_with_llama(&c, FIX_C512, IMATRIX_RTOL);
    printf("    vs llama-imatrix --chunks 8 --process-output: 29 entries, counts equal, max relative difference %.2g\n", worst);
    /* the reference file's keys: the same text, context and schedule */
    slm_imatrix ref;
    slm_err err = {0};
    if (slm_imatrix_load(&ref, fixture_path(REF), &err)) fail_msg("%s", err.msg);
    assert_int_equal(ref.chunk_size, 512);
    assert_int_equal(ref.chunk_count, (uint32_t)(t.n_ids / 512)); /* 301: all chunks of calib40 */
    assert_string_equal(ref.datasets[0], "calib40.txt");
    slm_imatrix_free(&ref);
    slm_calib_free(&c);
    ts3m_close(&t);
}

/* llama-imatrix -c 20 -b 40 -ub 32 --chunks 5: forwards of 2 chunks cut into ubatches of 2 x 16
   and 2 x 4 tokens; the 8-token ubatches are not collected (84 of 100 rows count), and
   imatrix.chunk_count is 84 / 20 = 4. */
static void test_calib_small_ubatches_like_llama_imatrix(void **state) {
    (void)state;
    ts3m t;
    ts3m_open(&t);
    slm_calib_opts o = {.ctx = 20, .chunks = 5, .bos_id = t.bos, .n_batch = 40, .n_ubatch = 32};
    assert_int_equal(slm_calib_batch(&o, (int64_t)t.n_ids), 2);
    assert_int_equal(slm_calib_call_tokens(&o, (int64_t)t.n_ids), 32);
    slm_calib c;
    run_calib(&c, &t.src, t.ids, t.n_ids, &o, SLM_NUMERICS_GGML);
    assert_int_equal(c.in[0].count, 84);
    double worst = compare_with_llama(&c, FIX_C20, IMATRIX_SMALL_RTOL);
    printf("    vs llama-imatrix -c 20 -b 40 -ub 32: 84 of 100 rows, max relative difference %.2g\n", worst);
    slm_calib_free(&c);
    ts3m_close(&t);
}

/* Every array of two runs, byte for byte. */
static void expect_calib_equal(const slm_calib *a, const slm_calib *b) {
    assert_int_equal(a->n_layer, b->n_layer);
    for (int i = 0; i <= a->n_layer * SLM_CALIB_KINDS; i++) {
        const slm_calib_input *x = i < a->n_layer * SLM_CALIB_KINDS ? &a->in[i] : &a->out;
        const slm_calib_input *y = i < a->n_layer * SLM_CALIB_KINDS ? &b->in[i] : &b->out;
        assert_int_equal(x->n, y->n);
        assert_int_equal(x->count, y->count);
        if (!x->n) continue;
        expect_bytes_equal("sum2", x->sum2, y->sum2, sizeof(float) * (size_t)x->n);
        expect_bytes_equal("abs_sum", x->abs_sum, y->abs_sum, sizeof(double) * (size_t)x->n);
        assert_true(!x->gram == !y->gram);
        if (x->gram) expect_bytes_equal("gram", x->gram, y->gram, sizeof(double) * (size_t)(x->n * x->n));
    }
    expect_bytes_equal("cos_sum", a->cos_sum, b->cos_sum, sizeof(double) * (size_t)a->n_layer);
    expect_bytes_equal("cos_count", a->cos_count, b->cos_count, sizeof(int64_t) * (size_t)a->n_layer);
}

/* Everything on (Gram matrices of every input, the classifier input), 1 vs 2 threads. */
static void test_calib_threads_deterministic(void **state) {
    (void)state;
    ts3m t;
    ts3m_open(&t);
    slm_calib_opts o = {.ctx = 64, .chunks = 6, .bos_id = t.bos, .gram = 1, .process_output = 1};
    slm_calib a, b;
    slm_threads_set(1);
    run_calib(&a, &t.src, t.ids, t.n_ids, &o, SLM_NUMERICS_F32);
    slm_threads_set(2);
    run_calib(&b, &t.src, t.ids, t.n_ids, &o, SLM_NUMERICS_F32);
    slm_threads_set(0);
    assert_int_equal(a.out.n, 256);
    assert_non_null(a.in[SLM_CALIB_FFN_DOWN].gram);
    expect_calib_equal(&a, &b);
    /* the diagonal of X^T X is the sum of squares (in double vs float) */
    for (int64_t j = 0; j < a.in[0].n; j++)
        assert_true(fabs(a.in[0].gram[j * a.in[0].n + j] - a.in[0].sum2[j]) <= 1e-5 * a.in[0].sum2[j]);
    slm_calib_free(&a);
    slm_calib_free(&b);
    ts3m_close(&t);
}

/* ---------------------------------------------------------------------------------------------
 * a tiny synthetic model against a naive computation */

static double syn_w(const char *name, int64_t r, int64_t c, int64_t ncols) {
    uint64_t h = 1469598103934665603ull;
    for (const char *p = name; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ull;
    uint64_t x = h ^ (uint64_t)(r * ncols + c) * 0x9e3779b97f4a7c15ull;
    x = slm_splitmix64(&x);
    double u = (double)(x >> 11) * 0x1p-53 - 0.5;
    if (strstr(name, "norm")) u = 1.0 + 0.2 * u;
    return u;
}

static int syn_reader(void *ud, const char *name, int64_t nrows, int64_t ncols, int64_t r0, int64_t n, float *dst,
                      slm_err *err) {
    (void)ud, (void)nrows, (void)err;
    for (int64_t r = 0; r < n; r++)
        for (int64_t c = 0; c < ncols; c++) dst[r * ncols + c] = (float)syn_w(name, r0 + r, c, ncols);
    return SLM_OK;
}

/* A pruned Llama: layer 1 without attention, layer 2 without MLP, widths per layer. */
static const slm_model_config *syn_config(void) {
    static slm_model_config c;
    c = (slm_model_config){.arch = SLM_ARCH_LLAMA, .n_embd = 48, .n_ff = 80, .n_layer = 4, .n_head = 6, .n_head_kv = 3,
                           .head_dim = 8, .n_vocab = 97, .norm_eps = 1e-5f, .rope_theta = 10000.0f, .rope_scale = 1.0f,
                           .tied_embeddings = 0, .bos_id = 1, .eos_id = 2, .per_layer = 1};
    const int h[4] = {6, 0, 4, 6}, kv[4] = {2, 0, 2, 3}, f[4] = {80, 36, 0, 52};
    for (int l = 0; l < 4; l++) c.n_head_l[l] = h[l], c.n_head_kv_l[l] = kv[l], c.n_ff_l[l] = f[l];
    return &c;
}

/* What an observer sees in one forward, copied: every distinct input and the hidden states. */
typedef struct recorder {
    int n_layer;
    int64_t N;
    float *in[8][SLM_CALIB_KINDS];
    int cols[8][SLM_CALIB_KINDS];
    float *hid[9]; /* hid[l + 1]: after layer l; hid[0]: embeddings */
    int C;
} recorder;

static float *dup_floats(const float *x, size_t n) {
    float *p = malloc(sizeof(float) * n);
    assert_non_null(p);
    memcpy(p, x, sizeof(float) * n);
    return p;
}

static void rec_matmul(void *ud, int l, int matrix, const float *x, int64_t N, int cols) {
    recorder *r = ud;
    const int kind = matrix == SLM_M_Q ? 0 : matrix == SLM_M_O ? 1 : matrix == SLM_M_GATE ? 2 : matrix == SLM_M_DOWN ? 3 : -1;
    if (l >= r->n_layer || kind < 0) return;
    r->N = N;
    r->in[l][kind] = dup_floats(x, (size_t)(N * cols));
    r->cols[l][kind] = cols;
}

static void rec_hidden(void *ud, int l, const float *x, int64_t N, int C) {
    recorder *r = ud;
    r->C = C;
    r->hid[l + 1] = dup_floats(x, (size_t)(N * C));
}

static void recorder_free(recorder *r) {
    for (int l = 0; l < 8; l++)
        for (int k = 0; k < SLM_CALIB_KINDS; k++) free(r->in[l][k]);
    for (int l = 0; l < 9; l++) free(r->hid[l]);
}

static double naive_cos(const float *a, const float *b, int C) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < C; i++) ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
    return ab / sqrt(aa * bb);
}

/* 3 chunks of 24 tokens in one forward (one ubatch of 72 rows: every row counts, in row order). */
static void test_calib_synthetic_vs_naive(void **state) {
    (void)state;
    const slm_model_config *cf = syn_config();
    enum { T = 24, NCH = 3, N = T * NCH };
    int32_t ids[N + 5];
    for (int i = 0; i < N + 5; i++) ids[i] = (i * 37 + 11) % cf->n_vocab;
    slm_calib_opts o = {.ctx = T, .bos_id = 1, .gram = 1, .process_output = 1};
    assert_int_equal(slm_calib_batch(&o, N + 5), NCH);
    static test_fn_src fs;
    slm_tensor_src ts;
    test_fn_src_init(&fs, cf, syn_reader, NULL, &ts);
    slm_model m = {0};
    slm_err err = {0};
    if (slm_model_build_batch(&m, cf, &ts, NCH, T, 0, &err)) fail_msg("%s", err.msg);
    slm_calib c;
    if (slm_calib_run(&c, &m, ids, N + 5, &o, &err)) fail_msg("%s", err.msg);
    /* the same forward, recorded */
    int32_t tok[N];
    memcpy(tok, ids, sizeof tok);
    for (int b = 0; b < NCH; b++) tok[b * T] = 1;
    recorder r = {.n_layer = cf->n_layer};
    slm_forward_observer ob = {rec_matmul, rec_hidden, &r};
    m.observer = &ob;
    assert_int_equal(slm_model_forward_batch(&m, tok, NCH, T, 0, T, NULL, &err), SLM_OK);
    assert_int_equal(r.N, N);
    for (int l = 0; l < cf->n_layer; l++) {
        for (int k = 0; k < SLM_CALIB_KINDS; k++) {
            const slm_calib_input *in = &c.in[l * SLM_CALIB_KINDS + k];
            if (!r.in[l][k]) {
                assert_int_equal(in->n, 0);
                continue;
            }
            const int n = r.cols[l][k];
            assert_int_equal(in->n, n);
            assert_int_equal(in->count, N);
            const float *x = r.in[l][k];
            for (int i = 0; i < n; i++) {
                float s2 = 0; /* llama-imatrix's float sum, rows in order */
                double sa = 0;
                for (int t = 0; t < N; t++) s2 += x[t * n + i] * x[t * n + i], sa += fabs((double)x[t * n + i]);
                assert_true(s2 == in->sum2[i]);
                assert_true(fabs(sa - in->abs_sum[i]) <= STAT_RTOL * sa);
                for (int j = 0; j < n; j++) {
                    double g = 0;
                    for (int t = 0; t < N; t++) g += (double)x[t * n + i] * x[t * n + j];
                    double tol = GRAM_RTOL * sqrt(in->gram[i * n + i] * in->gram[j * n + j]);
                    if (fabs(g - in->gram[i * n + j]) > tol)
                        fail_msg("layer %d kind %d: G[%d][%d] = %.17g, naive %.17g", l, k, i, j, in->gram[i * n + j], g);
                }
            }
        }
        /* block influence: cos(entering, leaving), mean over the rows */
        double cs = 0;
        for (int t = 0; t < N; t++) cs += naive_cos(r.hid[l] + t * r.C, r.hid[l + 1] + t * r.C, r.C);
        assert_true(fabs(cs / N - slm_calib_cos_sim(&c, l)) <= STAT_RTOL);
        assert_int_equal(c.cos_count[l], N);
        /* structured-pruning scores */
        float got[128];
        const int F = slm_cfg_n_ff(cf, l), H = slm_cfg_n_head(cf, l), D = cf->head_dim;
        if (F > 0) {
            assert_int_equal(slm_calib_ffn_channel_abs(&c, l, got, &err), SLM_OK);
            for (int f = 0; f < F; f++) {
                double s = 0;
                for (int t = 0; t < N; t++) s += fabs((double)r.in[l][SLM_CALIB_FFN_DOWN][t * F + f]);
                assert_true(fabs(s / N - got[f]) <= 1e-6 * s / N); /* stored as float */
            }
        } else {
            assert_int_equal(slm_calib_ffn_channel_abs(&c, l, got, &err), SLM_E_ARG);
        }
        if (H > 0) {
            assert_int_equal(slm_calib_attn_head_abs(&c, l, got, &err), SLM_OK);
            for (int h = 0; h < H; h++) {
                double s = 0;
                for (int t = 0; t < N; t++)
                    for (int d = 0; d < D; d++) s += fabs((double)r.in[l][SLM_CALIB_ATTN_OUT][t * H * D + h * D + d]);
                assert_true(fabs(s / (N * D) - got[h]) <= 1e-6 * s / (N * D));
            }
        } else {
            assert_int_equal(slm_calib_attn_head_abs(&c, l, got, &err), SLM_E_ARG);
        }
    }
    /* the classifier input: output_norm of the last hidden state, every row */
    assert_int_equal(c.out.count, N);
    assert_non_null(slm_calib_find(&c, "output.weight"));
    assert_ptr_equal(slm_calib_find(&c, "blk.3.attn_v.weight"), &c.in[3 * SLM_CALIB_KINDS + SLM_CALIB_ATTN_IN]);
    assert_null(slm_calib_find(&c, "blk.1.attn_q.weight")); /* removed attention */
    assert_null(slm_calib_find(&c, "blk.0.attn_norm.weight"));
    recorder_free(&r);
    m.observer = NULL;
    slm_calib_free(&c);
    slm_model_free(&m);
}

/* The Gram kernel: AVX2 and scalar give the same bits, on odd widths and a subset of rows. */
static void test_calib_gram_simd_equals_scalar(void **state) {
    (void)state;
    printf("    Gram kernel: %s\n", slm_cpu_has_avx2_fma() ? "AVX2+FMA vs scalar" : "scalar only (no AVX2 on this CPU)");
    slm_rng rng;
    slm_rng_seed(&rng, 7);
    const int64_t widths[] = {1, 5, 8, 12, 37, 64, 100};
    for (size_t w = 0; w < SLM_ARRAY_LEN(widths); w++) {
        const int64_t n = widths[w], R = 50;
        float *x = malloc(sizeof(float) * (size_t)(R * n));
        double *g1 = calloc((size_t)(n * n), sizeof(double)), *g2 = calloc((size_t)(n * n), sizeof(double));
        int32_t rows[40];
        for (int i = 0; i < R * n; i++) x[i] = (float)(slm_rng_normal(&rng) * (i % 7 ? 1.0 : 100.0));
        for (int i = 0; i < 40; i++) rows[i] = (int32_t)((i * 31) % R);
        for (int pass = 0; pass < 2; pass++) { /* twice: accumulation onto existing sums */
            slm_calib_gram_add(g1, n, x, rows, 40, 1);
            slm_calib_gram_add(g2, n, x, rows, 40, 0);
        }
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = i; j < n; j++)
                if (memcmp(&g1[i * n + j], &g2[i * n + j], sizeof(double)))
                    fail_msg("n %lld: G[%lld][%lld] %.17g (simd) vs %.17g", (long long)n, (long long)i, (long long)j,
                             g1[i * n + j], g2[i * n + j]);
        free(x), free(g1), free(g2);
    }
}

/* ---------------------------------------------------------------------------------------------
 * imatrix files */

/* llama-imatrix's sums read and written back: the reference file, byte for byte. */
static void test_calib_imatrix_bytes_like_llama(void **state) {
    (void)state;
    slm_err err = {0};
    slm_src src;
    if (slm_src_open(&src, fixture_path("models/tinystories-3M"), &err)) fail_msg("%s", err.msg);
    slm_imatrix ref, out;
    slm_calib c;
    if (slm_imatrix_load(&ref, fixture_path(REF), &err)) fail_msg("%s", err.msg);
    if (slm_calib_from_imatrix(&c, &ref, &src.cfg, &err)) fail_msg("%s", err.msg);
    assert_int_equal(c.ctx, 512);
    assert_null(c.in[0].abs_sum); /* a plain imatrix has no sums of |x| */
    float v[768];
    assert_int_equal(slm_calib_ffn_channel_abs(&c, 0, v, &err), SLM_E_ARG);
    if (slm_imatrix_from_calib(&out, &c, "calib40.txt", 1, &err)) fail_msg("%s", err.msg);
    assert_int_equal(out.n_extras, 0);
    const char *path = tmp_path("again.imatrix.gguf");
    if (slm_imatrix_save(&out, path, &err)) fail_msg("%s", err.msg);
    size_t na, nb;
    void *a = read_whole_file(fixture_path(REF), &na), *b = read_whole_file(path, &nb);
    assert_int_equal(na, nb);
    expect_bytes_equal("llama-imatrix's file from its own sums", a, b, na);
    free(a), free(b);
    /* an imatrix of another model */
    slm_calib_free(&c);
    slm_model_config other = src.cfg;
    other.n_ff = 512;
    assert_int_equal(slm_calib_from_imatrix(&c, &ref, &other, &err), SLM_E_ARG);
    assert_non_null(strstr(err.msg, "another model"));
    slm_imatrix_free(&ref);
    slm_imatrix_free(&out);
    slm_src_close(&src);
}

/* Our statistics in an imatrix file and back: llama.cpp's part unchanged, the extras as F32. */
static void test_calib_imatrix_round_trip(void **state) {
    (void)state;
    const slm_model_config *cf = syn_config();
    enum { T = 16, N = 64 };
    int32_t ids[N];
    for (int i = 0; i < N; i++) ids[i] = (i * 29 + 3) % cf->n_vocab;
    slm_calib_opts o = {.ctx = T, .bos_id = 1, .gram = 1, .gram_max_cols = 64, .process_output = 1, .n_batch = T};
    static test_fn_src fs;
    slm_tensor_src ts;
    test_fn_src_init(&fs, cf, syn_reader, NULL, &ts);
    slm_model m = {0};
    slm_err err = {0};
    if (slm_model_build(&m, cf, &ts, T, 0, &err)) fail_msg("%s", err.msg);
    slm_calib c, back;
    if (slm_calib_run(&c, &m, ids, N, &o, &err)) fail_msg("%s", err.msg);
    assert_null(c.in[0 * SLM_CALIB_KINDS + SLM_CALIB_FFN_DOWN].gram); /* 80 columns > gram_max_cols */
    slm_imatrix im, rd;
    if (slm_imatrix_from_calib(&im, &c, "syn.txt", 1, &err)) fail_msg("%s", err.msg);
    const char *path = tmp_path("syn.imatrix.gguf");
    if (slm_imatrix_save(&im, path, &err)) fail_msg("%s", err.msg);
    if (slm_imatrix_load(&rd, path, &err)) fail_msg("%s", err.msg);
    /* 3 blocks with attention x 4 weights + 3 with an MLP x 3 + output = 22 entries */
    assert_int_equal(rd.n_entries, 22);
    assert_int_equal(rd.chunk_count, 4);
    assert_int_equal(rd.chunk_size, T);
    if (slm_calib_from_imatrix(&back, &rd, cf, &err)) fail_msg("%s", err.msg);
    for (int i = 0; i <= c.n_layer * SLM_CALIB_KINDS; i++) {
        const slm_calib_input *x = i < c.n_layer * SLM_CALIB_KINDS ? &c.in[i] : &c.out;
        const slm_calib_input *y = i < c.n_layer * SLM_CALIB_KINDS ? &back.in[i] : &back.out;
        assert_int_equal(x->n, y->n);
        if (!x->n) continue;
        assert_int_equal(x->count, y->count);
        expect_bytes_equal("sum2", x->sum2, y->sum2, sizeof(float) * (size_t)x->n);
        for (int64_t j = 0; j < x->n; j++) assert_true(y->abs_sum[j] == (double)(float)x->abs_sum[j]);
        assert_true(!x->gram == !y->gram);
        for (int64_t j = 0; x->gram && j < x->n * x->n; j++) assert_true(y->gram[j] == (double)(float)x->gram[j]);
    }
    for (int l = 0; l < c.n_layer; l++)
        assert_true(slm_calib_cos_sim(&back, l) == (double)(float)slm_calib_cos_sim(&c, l));
    /* the derived scores are in the file too */
    int found = 0;
    for (size_t i = 0; i < rd.n_extras; i++) found += !strcmp(rd.extras[i].name, "blk.3.attn_head_abs") && rd.extras[i].shape[0] == 6;
    for (size_t i = 0; i < rd.n_extras; i++) found += !strcmp(rd.extras[i].name, "blk.1.ffn_channel_abs") && rd.extras[i].shape[0] == 36;
    assert_int_equal(found, 2);
    slm_imatrix_free(&im);
    slm_imatrix_free(&rd);
    slm_calib_free(&back);
    slm_calib_free(&c);
    slm_model_free(&m);
}

/* ---------------------------------------------------------------------------------------------
 * refusals and sizes */

static void test_calib_refusals(void **state) {
    (void)state;
    const slm_model_config *cf = syn_config();
    static test_fn_src fs;
    slm_tensor_src ts;
    test_fn_src_init(&fs, cf, syn_reader, NULL, &ts);
    slm_model m = {0};
    slm_err err = {0};
    if (slm_model_build_batch(&m, cf, &ts, 2, 32, 0, &err)) fail_msg("%s", err.msg);
    int32_t ids[200];
    for (int i = 0; i < 200; i++) ids[i] = i % cf->n_vocab;
    slm_calib c;
    slm_calib_opts o = {.ctx = 64, .bos_id = 1};
    assert_int_equal(slm_calib_run(&c, &m, ids, 200, &o, &err), SLM_E_ARG); /* ctx > the model's */
    o.ctx = 16;
    assert_int_equal(slm_calib_run(&c, &m, ids, 200, &o, &err), SLM_E_ARG); /* 12 chunks per forward, built for 2 */
    assert_non_null(strstr(err.msg, "built for 2"));
    o.n_batch = 32;
    assert_int_equal(slm_calib_run(&c, &m, ids, 10, &o, &err), SLM_E_DATA); /* less than a chunk */
    ids[20] = cf->n_vocab;
    assert_int_equal(slm_calib_run(&c, &m, ids, 200, &o, &err), SLM_E_ARG);
    assert_non_null(strstr(err.msg, "vocabulary"));
    ids[20] = 0;
    o.gram = 1, o.gram_max_cols = SLM_CALIB_GRAM_MAX + 1;
    assert_int_equal(slm_calib_run(&c, &m, ids, 200, &o, &err), SLM_E_ARG);
    o.gram_max_cols = 0, o.ctx = 1, o.n_batch = 0;
    assert_int_equal(slm_calib_run(&c, &m, ids, 200, &o, &err), SLM_E_ARG); /* 2048 sequences */
    o.ctx = 16, o.n_batch = 32, o.chunks = 3;
    assert_int_equal(slm_calib_run(&c, &m, ids, 200, &o, &err), SLM_OK);
    assert_int_equal(c.n_chunks, 3);
    slm_calib_free(&c);
    slm_calib_free(&c); /* twice is fine */
    /* forwards of one ubatch: a model whose calls hold fewer tokens is refused, one built for
       exactly slm_calib_call_tokens gives the same sums as one built for whole chunks */
    slm_calib whole, calls;
    assert_int_equal(slm_calib_call_tokens(&o, 200), 32);
    assert_int_equal(slm_calib_run(&whole, &m, ids, 200, &o, &err), SLM_OK);
    slm_model mc = {0};
    if (slm_model_build_calls(&mc, cf, &ts, 2, 32, 31, 0, &err)) fail_msg("%s", err.msg);
    assert_int_equal(slm_calib_run(&calls, &mc, ids, 200, &o, &err), SLM_E_ARG);
    assert_non_null(strstr(err.msg, "forwards of 32 tokens"));
    slm_model_free(&mc);
    assert_int_equal(slm_model_build_calls(&mc, cf, &ts, 2, 32, 65, 0, &err), SLM_E_ARG); /* more than 2 x 32 */
    if (slm_model_build_calls(&mc, cf, &ts, 2, 32, 32, 0, &err)) fail_msg("%s", err.msg);
    assert_true(mc.num_activations < m.num_activations);
    assert_int_equal(slm_calib_run(&calls, &mc, ids, 200, &o, &err), SLM_OK);
    expect_calib_equal(&whole, &calls);
    slm_calib_free(&whole);
    slm_calib_free(&calls);
    slm_model_free(&mc);
    /* out of memory at every allocation: an error, nothing leaked (ASan) */
    for (long k = 0;; k++) {
        slm_mem_fail_after(k);
        int rc = slm_calib_run(&c, &m, ids, 200, &o, &err);
        slm_mem_fail_after(-1);
        if (rc == SLM_OK) {
            slm_calib_free(&c);
            break;
        }
        assert_int_equal(rc, SLM_E_NOMEM);
    }
    slm_model_free(&m);
}

/* slm_calib_bytes: the Gram matrices of tinystories-3M, before anything is allocated. */
static void test_calib_bytes(void **state) {
    (void)state;
    slm_model_config c = {.arch = SLM_ARCH_LLAMA, .n_embd = 256, .n_ff = 768, .n_layer = 4, .n_head = 8, .n_head_kv = 4,
                          .head_dim = 32, .n_vocab = 512};
    slm_calib_opts o = {.ctx = 512, .gram = 1};
    size_t gram, total = slm_calib_bytes(&c, &o, 4, &gram);
    assert_int_equal(gram, 4 * (3 * 256 * 256 + 768 * 768) * sizeof(double));
    assert_true(total > gram && total < gram + (1u << 20) * 8);
    o.gram_max_cols = 256;
    slm_calib_bytes(&c, &o, 4, &gram);
    assert_int_equal(gram, 4 * 3 * 256 * 256 * sizeof(double));
    o.gram = 0;
    slm_calib_bytes(&c, &o, 4, &gram);
    assert_int_equal(gram, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calib_matches_llama_imatrix),
        cmocka_unit_test(test_calib_small_ubatches_like_llama_imatrix),
        cmocka_unit_test(test_calib_threads_deterministic),
        cmocka_unit_test(test_calib_synthetic_vs_naive),
        cmocka_unit_test(test_calib_gram_simd_equals_scalar),
        cmocka_unit_test(test_calib_imatrix_bytes_like_llama),
        cmocka_unit_test(test_calib_imatrix_round_trip),
        cmocka_unit_test(test_calib_refusals),
        cmocka_unit_test(test_calib_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
