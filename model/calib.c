/* calib.c - calibration statistics through the forward observer (see calib.h).
 *
 * Owns: llama-imatrix's chunk/batch/ubatch schedule (which rows of a forward are summed, and in
 * which order), the per-input accumulators (float sums of squares, double sums of |x|, double
 * Gram matrices), the per-block cosine similarity, and the derived pruning scores.
 * Must not: print, read files, or change the forward's numbers. Each accumulator is a chain of
 * operations over rows in one fixed order (the schedule's); threads only split columns or
 * Gram rows, so results are bit-identical for any thread count and for the AVX2 or scalar path.
 */
#include "model/calib.h"

#include <math.h>
#include <string.h>

#include "core/cpu.h"
#include "core/mem.h"
#include "core/slm.h"
#include "model/catalog.h"
#include "model/transformer.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define CALIB_AVX2 1
#define AVX2 __attribute__((target("avx2,fma")))
#else
#define CALIB_AVX2 0
#endif

/* llama-imatrix's defaults (common_params n_batch, n_ubatch) and rules. */
#define DEFAULT_N_BATCH 2048
#define DEFAULT_N_UBATCH 512
#define MIN_UBATCH_ROWS 16 /* collect_imatrix: "why are small batches ignored (<16 tokens)?" */
#define MAX_SEQ 256        /* LLAMA_MAX_SEQ: sequences of one llama context */

/* ---------------------------------------------------------------------------------------------
 * allocation and accessors */

static int64_t input_width(const slm_model_config *cfg, int l, int kind) {
    const int64_t H = slm_cfg_n_head(cfg, l), F = slm_cfg_n_ff(cfg, l);
    switch (kind) {
    case SLM_CALIB_ATTN_IN: return H > 0 ? cfg->n_embd : 0;
    case SLM_CALIB_ATTN_OUT: return H * cfg->head_dim;
    case SLM_CALIB_FFN_IN: return F > 0 ? cfg->n_embd : 0;
    case SLM_CALIB_FFN_DOWN: return F;
    }
    return 0;
}

static int gram_limit(int gram_max_cols) { return gram_max_cols > 0 ? gram_max_cols : SLM_CALIB_GRAM_MAX; }

static int input_alloc(slm_calib_input *in, int64_t n, int with_abs, int gram_max_cols, slm_err *err) {
    in->n = n;
    if (n == 0) return SLM_OK;
    SLM_TRY(slm_calloc((void **)&in->sum2, (size_t)n, sizeof(float), err, "calibration sums"));
    if (with_abs) SLM_TRY(slm_calloc((void **)&in->abs_sum, (size_t)n, sizeof(double), err, "calibration sums"));
    if (gram_max_cols > 0 && n <= gram_max_cols)
        SLM_TRY(slm_calloc((void **)&in->gram, (size_t)(n * n), sizeof(double), err, "Gram matrix"));
    return SLM_OK;
}

static void input_free(slm_calib_input *in) {
    slm_free(in->sum2);
    slm_free(in->abs_sum);
    slm_free(in->gram);
    memset(in, 0, sizeof *in);
}

void slm_calib_free(slm_calib *c) {
    for (int i = 0; c->in && i < c->n_layer * SLM_CALIB_KINDS; i++) input_free(&c->in[i]);
    input_free(&c->out);
    slm_free(c->in);
    slm_free(c->cos_sum);
    slm_free(c->cos_count);
    memset(c, 0, sizeof *c);
}

int slm_calib_init(slm_calib *c, const slm_model_config *cfg, int with_abs, int gram_max_cols, int process_output,
                   slm_err *err) {
    memset(c, 0, sizeof *c);
    if (cfg->n_layer < 1 || cfg->n_layer > SLM_MAX_LAYERS || cfg->n_embd < 1 || cfg->head_dim < 1)
        return slm_errf(err, SLM_E_ARG, "calibration: model config of %d layers x %d dims", cfg->n_layer, cfg->n_embd);
    if (gram_max_cols > SLM_CALIB_GRAM_MAX)
        return slm_errf(err, SLM_E_ARG, "calibration: Gram matrices up to %d columns (at most %d)", gram_max_cols,
                        SLM_CALIB_GRAM_MAX);
    c->cfg = *cfg;
    c->n_layer = cfg->n_layer;
    const size_t L = (size_t)cfg->n_layer;
    int rc = slm_calloc((void **)&c->in, L * SLM_CALIB_KINDS, sizeof(slm_calib_input), err, "calibration inputs");
    if (!rc) rc = slm_calloc((void **)&c->cos_sum, L, sizeof(double), err, "calibration cosines");
    if (!rc) rc = slm_calloc((void **)&c->cos_count, L, sizeof(int64_t), err, "calibration cosines");
    for (int l = 0; !rc && l < cfg->n_layer; l++)
        for (int k = 0; !rc && k < SLM_CALIB_KINDS; k++)
            rc = input_alloc(&c->in[l * SLM_CALIB_KINDS + k], input_width(cfg, l, k), with_abs, gram_max_cols, err);
    if (!rc && process_output && !cfg->tied_embeddings) rc = input_alloc(&c->out, cfg->n_embd, with_abs, gram_max_cols, err);
    if (rc) slm_calib_free(c);
    return rc;
}

int slm_calib_kind_of_role(int role) {
    switch (role) {
    case SLM_ROLE_ATTN_QKV:
    case SLM_ROLE_ATTN_Q:
    case SLM_ROLE_ATTN_K:
    case SLM_ROLE_ATTN_V: return SLM_CALIB_ATTN_IN;
    case SLM_ROLE_ATTN_OUT: return SLM_CALIB_ATTN_OUT;
    case SLM_ROLE_FFN_GATE:
    case SLM_ROLE_FFN_UP: return SLM_CALIB_FFN_IN;
    case SLM_ROLE_FFN_DOWN: return SLM_CALIB_FFN_DOWN;
    }
    return -1;
}

int slm_calib_first_role(int kind) {
    static const int roles[SLM_CALIB_KINDS] = {SLM_ROLE_ATTN_Q, SLM_ROLE_ATTN_OUT, SLM_ROLE_FFN_GATE, SLM_ROLE_FFN_DOWN};
    SLM_ASSERT(kind >= 0 && kind < SLM_CALIB_KINDS);
    return roles[kind];
}

const slm_calib_input *slm_calib_find(const slm_calib *c, const char *gguf_name) {
    int l, role = slm_catalog_parse_gguf(gguf_name, &l);
    const slm_calib_input *in = NULL;
    if (role == SLM_ROLE_OUTPUT) in = &c->out;
    else if (role >= 0 && slm_calib_kind_of_role(role) >= 0 && l >= 0 && l < c->n_layer)
        in = &c->in[l * SLM_CALIB_KINDS + slm_calib_kind_of_role(role)];
    return in && in->n > 0 ? in : NULL;
}

double slm_calib_cos_sim(const slm_calib *c, int l) {
    SLM_ASSERT(l >= 0 && l < c->n_layer);
    return c->cos_count[l] > 0 ? c->cos_sum[l] / (double)c->cos_count[l] : NAN;
}

/* Input of kind at layer l with sums of |x| and rows, or an error. */
static int abs_input(const slm_calib *c, int l, int kind, const slm_calib_input **in, slm_err *err) {
    if (l < 0 || l >= c->n_layer) return slm_errf(err, SLM_E_ARG, "calibration: no layer %d", l);
    *in = &c->in[l * SLM_CALIB_KINDS + kind];
    if ((*in)->n == 0) return slm_errf(err, SLM_E_ARG, "calibration: layer %d has no %s", l, kind == SLM_CALIB_FFN_DOWN ? "MLP" : "attention");
    if (!(*in)->abs_sum || (*in)->count == 0)
        return slm_errf(err, SLM_E_ARG, "calibration: layer %d: no sums of |x| (a plain imatrix has none)", l);
    return SLM_OK;
}

int slm_calib_ffn_channel_abs(const slm_calib *c, int l, float *out, slm_err *err) {
    const slm_calib_input *in;
    SLM_TRY(abs_input(c, l, SLM_CALIB_FFN_DOWN, &in, err));
    for (int64_t f = 0; f < in->n; f++) out[f] = (float)(in->abs_sum[f] / (double)in->count);
    return SLM_OK;
}

int slm_calib_attn_head_abs(const slm_calib *c, int l, float *out, slm_err *err) {
    const slm_calib_input *in;
    SLM_TRY(abs_input(c, l, SLM_CALIB_ATTN_OUT, &in, err));
    const int64_t D = c->cfg.head_dim;
    for (int64_t h = 0; h < in->n / D; h++) {
        double s = 0;
        for (int64_t d = 0; d < D; d++) s += in->abs_sum[h * D + d];
        out[h] = (float)(s / ((double)in->count * (double)D));
    }
    return SLM_OK;
}

/* ---------------------------------------------------------------------------------------------
 * llama-imatrix's schedule */

typedef struct sched {
    int S;        /* chunks per forward (sequences of one llama_decode) */
    int n_batch;  /* tokens of one llama_decode per sequence: min(b, S*C) */
    int n_ubatch; /* u' = min(u, n_batch) */
} sched;

static sched sched_of(const slm_calib_opts *o) {
    const int b = o->n_batch > 0 ? o->n_batch : DEFAULT_N_BATCH, u = o->n_ubatch > 0 ? o->n_ubatch : DEFAULT_N_UBATCH;
    sched s;
    s.S = SLM_MAX(1, b / o->ctx);
    s.n_batch = (int)SLM_MIN((int64_t)b, (int64_t)s.S * o->ctx);
    s.n_ubatch = SLM_MIN(u, s.n_batch);
    return s;
}

/* llama-imatrix's ubatches for B sequences of C tokens: per llama_decode call (one per n_batch
   tokens of a sequence when C > n_batch), ubatches of k tokens of each sequence (split_equal,
   k = max(1, u'/B); one sequence: u' tokens). Each is one forward of (B, kk) tokens at position
   t0, its rows b*kk + t in llama-imatrix's order (sequence after sequence); ubatches of fewer
   than 16 rows run (the KV cache needs them) but are not summed. */
static int ubatch_len(const sched *s, int B) {
    return B == 1 ? s->n_ubatch : SLM_MAX(1, s->n_ubatch / B);
}

/* Calls k = 0, 1, ...: sets *t0 and *kk of call k; 0 when there is none. */
static int ubatch_at(const sched *s, int B, int C, int k, int *t0, int *kk) {
    const int u = ubatch_len(s, B);
    for (int j0 = 0; j0 < C; j0 += s->n_batch) {
        const int len = SLM_MIN(s->n_batch, C - j0), n = (len + u - 1) / u;
        if (k < n) {
            *t0 = j0 + k * u;
            *kk = SLM_MIN(u, len - k * u);
            return 1;
        }
        k -= n;
    }
    return 0;
}

int slm_calib_batch(const slm_calib_opts *o, int64_t n_ids) {
    if (o->ctx < 1) return 1;
    const int64_t n_chunks = n_ids / o->ctx, S = sched_of(o).S;
    return (int)SLM_MAX(1, SLM_MIN(S, o->chunks > 0 ? SLM_MIN(n_chunks, o->chunks) : n_chunks));
}

int slm_calib_call_tokens(const slm_calib_opts *o, int64_t n_ids) {
    if (o->ctx < 1) return 1;
    const sched s = sched_of(o);
    const int B = slm_calib_batch(o, n_ids);
    return B * SLM_MIN(ubatch_len(&s, B), SLM_MIN(s.n_batch, o->ctx));
}

size_t slm_calib_bytes(const slm_model_config *cfg, const slm_calib_opts *o, int batch, size_t *gram_bytes) {
    const int gmax = o->gram ? gram_limit(o->gram_max_cols) : 0;
    double total = 0, gram = 0; /* in double: no overflow, and exact far beyond any real size */
    for (int l = 0; l < cfg->n_layer; l++) {
        for (int k = 0; k < SLM_CALIB_KINDS; k++) {
            double n = (double)input_width(cfg, l, k);
            total += n * (sizeof(float) + sizeof(double));
            if (n > 0 && n <= gmax) gram += n * n * sizeof(double);
        }
        total += sizeof(double) + sizeof(int64_t);
    }
    if (o->process_output && !cfg->tied_embeddings) {
        double n = cfg->n_embd;
        total += n * (sizeof(float) + sizeof(double));
        if (n <= gmax) gram += n * n * sizeof(double);
    }
    const sched s = sched_of(o);
    const double N = (double)SLM_MAX(batch, 1) * SLM_MAX(o->ctx, 1);
    const double Nc = (double)SLM_MAX(batch, 1) * SLM_MIN(ubatch_len(&s, SLM_MAX(batch, 1)), SLM_MAX(SLM_MIN(s.n_batch, o->ctx), 1));
    total += Nc * ((double)cfg->n_embd * sizeof(float) + sizeof(double) + sizeof(int32_t)) + N * sizeof(int32_t);
    total += (double)cfg->n_layer * SLM_CALIB_KINDS * sizeof(slm_calib_input);
    if (gram_bytes) *gram_bytes = gram >= (double)SIZE_MAX ? SIZE_MAX : (size_t)gram;
    total += gram;
    return total >= (double)SIZE_MAX ? SIZE_MAX : (size_t)total;
}

/* ---------------------------------------------------------------------------------------------
 * accumulators */

/* sum2[j] += x[j]*x[j] in float (product rounded, then the sum: llama-imatrix's
   `acc[j] += x[j] * x[j]` without FMA), abs_sum[j] += |x[j]| in double, rows in order. */
static void accumulate_sums(slm_calib_input *in, const float *x, const int32_t *rows, int64_t n_rows) {
    const int64_t n = in->n;
    float *restrict s2 = in->sum2;
    double *restrict sa = in->abs_sum;
    for (int64_t r = 0; r < n_rows; r++) {
        const float *restrict xr = x + (size_t)rows[r] * (size_t)n;
        for (int64_t j = 0; j < n; j++) s2[j] += xr[j] * xr[j];
        if (sa)
            for (int64_t j = 0; j < n; j++) sa[j] += (double)fabsf(xr[j]);
    }
}

/* Gram tile: G[i0..i0+4) x [j0..j0+8) += sum over rows of x_i x_j, each entry one chain of
   fused multiply-adds in double over the rows in order (products of floats are exact in
   double). The scalar and AVX2 versions perform the same operations. */
#define GT_I 4
#define GT_J 8

static void gram_tile_ref(double *G, int64_t n, const float *x, const int32_t *rows, int64_t n_rows, int64_t i0,
                          int64_t ni, int64_t j0, int64_t nj) {
    double acc[GT_I][GT_J];
    for (int64_t a = 0; a < ni; a++)
        for (int64_t b = 0; b < nj; b++) acc[a][b] = G[(i0 + a) * n + j0 + b];
    for (int64_t r = 0; r < n_rows; r++) {
        const float *xr = x + (size_t)rows[r] * (size_t)n;
        for (int64_t a = 0; a < ni; a++)
            for (int64_t b = 0; b < nj; b++) acc[a][b] = fma((double)xr[i0 + a], (double)xr[j0 + b], acc[a][b]);
    }
    for (int64_t a = 0; a < ni; a++)
        for (int64_t b = 0; b < nj; b++) G[(i0 + a) * n + j0 + b] = acc[a][b];
}

#if CALIB_AVX2
static AVX2 void gram_tile_avx2(double *G, int64_t n, const float *x, const int32_t *rows, int64_t n_rows, int64_t i0,
                                int64_t j0) {
    double *g0 = G + i0 * n + j0, *g1 = g0 + n, *g2 = g1 + n, *g3 = g2 + n;
    __m256d a00 = _mm256_loadu_pd(g0), a01 = _mm256_loadu_pd(g0 + 4), a10 = _mm256_loadu_pd(g1);
    __m256d a11 = _mm256_loadu_pd(g1 + 4), a20 = _mm256_loadu_pd(g2), a21 = _mm256_loadu_pd(g2 + 4);
    __m256d a30 = _mm256_loadu_pd(g3), a31 = _mm256_loadu_pd(g3 + 4);
    for (int64_t r = 0; r < n_rows; r++) {
        const float *xr = x + (size_t)rows[r] * (size_t)n;
        __m256d x0 = _mm256_cvtps_pd(_mm_loadu_ps(xr + j0)), x1 = _mm256_cvtps_pd(_mm_loadu_ps(xr + j0 + 4)), b;
        b = _mm256_set1_pd((double)xr[i0]);
        a00 = _mm256_fmadd_pd(b, x0, a00);
        a01 = _mm256_fmadd_pd(b, x1, a01);
        b = _mm256_set1_pd((double)xr[i0 + 1]);
        a10 = _mm256_fmadd_pd(b, x0, a10);
        a11 = _mm256_fmadd_pd(b, x1, a11);
        b = _mm256_set1_pd((double)xr[i0 + 2]);
        a20 = _mm256_fmadd_pd(b, x0, a20);
        a21 = _mm256_fmadd_pd(b, x1, a21);
        b = _mm256_set1_pd((double)xr[i0 + 3]);
        a30 = _mm256_fmadd_pd(b, x0, a30);
        a31 = _mm256_fmadd_pd(b, x1, a31);
    }
    _mm256_storeu_pd(g0, a00);
    _mm256_storeu_pd(g0 + 4, a01);
    _mm256_storeu_pd(g1, a10);
    _mm256_storeu_pd(g1 + 4, a11);
    _mm256_storeu_pd(g2, a20);
    _mm256_storeu_pd(g2 + 4, a21);
    _mm256_storeu_pd(g3, a30);
    _mm256_storeu_pd(g3 + 4, a31);
}
#endif

/* Upper triangle by tiles (entries below the diagonal inside diagonal tiles too; gram_mirror
   completes the rest). Threads own row blocks. */
void slm_calib_gram_add(double *G, int64_t n, const float *x, const int32_t *rows, int64_t n_rows, int simd) {
    const int64_t n_iblk = (n + GT_I - 1) / GT_I;
#pragma omp parallel for schedule(static, 1)
    for (int64_t ib = 0; ib < n_iblk; ib++) {
        const int64_t i0 = ib * GT_I, ni = SLM_MIN((int64_t)GT_I, n - i0);
        for (int64_t j0 = i0 / GT_J * GT_J; j0 < n; j0 += GT_J) {
            const int64_t nj = SLM_MIN((int64_t)GT_J, n - j0);
#if CALIB_AVX2
            if (simd && ni == GT_I && nj == GT_J) {
                gram_tile_avx2(G, n, x, rows, n_rows, i0, j0);
                continue;
            }
#endif
            gram_tile_ref(G, n, x, rows, n_rows, i0, ni, j0, nj);
        }
    }
    SLM_UNUSED(simd);
}

/* G[i][j] = G[j][i] for j < i, from the upper triangle. */
static void gram_mirror(double *G, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < i; j++) G[i * n + j] = G[j * n + i];
}

/* ---------------------------------------------------------------------------------------------
 * the observer */

typedef struct run_ctx {
    slm_calib *c;
    const int32_t *rows; /* rows of the current forward that count, in llama-imatrix's order */
    int64_t n_rows;
    float *prev;         /* (B*C, n_embd) residual stream entering the current block */
    double *cos;         /* (B*C) per-row cosines of the current block */
    int simd;
    int bad;             /* first non-finite sum seen: 1 + layer * SLM_CALIB_KINDS + kind */
} run_ctx;

static void observe_input(run_ctx *x, slm_calib_input *in, const float *inp, int cols, int tag) {
    SLM_ASSERT(in->n == cols);
    accumulate_sums(in, inp, x->rows, x->n_rows);
    if (in->gram) slm_calib_gram_add(in->gram, in->n, inp, x->rows, x->n_rows, x->simd);
    in->count += x->n_rows;
    if (!x->bad)
        for (int64_t j = 0; j < in->n; j++)
            if (!isfinite(in->sum2[j])) {
                x->bad = 1 + tag;
                break;
            }
}

/* q, k and v read the same input (so do gate and up): it is summed once, at the first. */
static void on_matmul_input(void *ud, int l, int matrix, const float *inp, int64_t N, int cols) {
    run_ctx *x = ud;
    SLM_UNUSED(N);
    if (l >= x->c->n_layer) return; /* the classifier: with process_output, read after the forward */
    int kind;
    switch (matrix) {
    case SLM_M_Q: kind = SLM_CALIB_ATTN_IN; break;
    case SLM_M_O: kind = SLM_CALIB_ATTN_OUT; break;
    case SLM_M_GATE: kind = SLM_CALIB_FFN_IN; break;
    case SLM_M_DOWN: kind = SLM_CALIB_FFN_DOWN; break;
    case SLM_M_UP: /* phi3's fused gate | up is the only FFN input matrix */
        if (x->c->cfg.arch != SLM_ARCH_PHI3) return;
        kind = SLM_CALIB_FFN_IN;
        break;
    default: return;
    }
    observe_input(x, &x->c->in[l * SLM_CALIB_KINDS + kind], inp, cols, l * SLM_CALIB_KINDS + kind);
}

/* cos(a, b) in double; two zero vectors are the same (1), one zero vector is orthogonal (0). */
static double cosine(const float *a, const float *b, int C) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < C; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    if (aa == 0 || bb == 0) return aa == bb ? 1.0 : 0.0;
    return ab / sqrt(aa * bb);
}

static void on_hidden(void *ud, int l, const float *h, int64_t N, int C) {
    run_ctx *x = ud;
    const size_t NC = (size_t)N * (size_t)C;
    if (l >= 0) {
        const int32_t *rows = x->rows;
        double *cos = x->cos;
        const float *prev = x->prev;
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < x->n_rows; r++)
            cos[r] = cosine(prev + (size_t)rows[r] * C, h + (size_t)rows[r] * C, C);
        double s = x->c->cos_sum[l];
        for (int64_t r = 0; r < x->n_rows; r++) s += cos[r];
        x->c->cos_sum[l] = s;
        x->c->cos_count[l] += x->n_rows;
    }
    if (l < x->c->n_layer - 1) memcpy(x->prev, h, sizeof(float) * NC);
}

/* ---------------------------------------------------------------------------------------------
 * the run */

static int check_run(const slm_model *m, const int32_t *ids, int64_t n_ids, const slm_calib_opts *o, int64_t *n_chunks,
                     slm_err *err) {
    if (o->ctx < 1 || o->ctx > m->max_ctx)
        return slm_errf(err, SLM_E_ARG, "calibration context %d: must be in [1, %d] (the model's context)", o->ctx, m->max_ctx);
    if (o->chunks < 0 || o->n_batch < 0 || o->n_ubatch < 0)
        return slm_errf(err, SLM_E_ARG, "calibration: negative chunks, batch or ubatch size");
    if (o->gram && o->gram_max_cols > SLM_CALIB_GRAM_MAX)
        return slm_errf(err, SLM_E_ARG, "calibration: Gram matrices up to %d columns (at most %d)", o->gram_max_cols,
                        SLM_CALIB_GRAM_MAX);
    const sched s = sched_of(o);
    if (s.S > MAX_SEQ)
        return slm_errf(err, SLM_E_ARG, "calibration: batch %d over context %d is %d sequences (llama.cpp allows %d)",
                        o->n_batch > 0 ? o->n_batch : DEFAULT_N_BATCH, o->ctx, s.S, MAX_SEQ);
    if (o->bos_id >= m->cfg.n_vocab)
        return slm_errf(err, SLM_E_ARG, "BOS id %d is outside the vocabulary [0, %d)", o->bos_id, m->cfg.n_vocab);
    *n_chunks = n_ids / o->ctx;
    if (*n_chunks < 1)
        return slm_errf(err, SLM_E_DATA, "calibration text: %lld tokens are fewer than one chunk of %d", (long long)n_ids,
                        o->ctx);
    if (o->chunks && o->chunks < *n_chunks) *n_chunks = o->chunks;
    const int B = slm_calib_batch(o, n_ids);
    if (m->max_batch < B)
        return slm_errf(err, SLM_E_ARG, "calibration runs %d chunks per forward (batch %d / context %d): the model was "
                        "built for %d sequences", B, s.n_batch, o->ctx, m->max_batch);
    for (int64_t i = 0; i < *n_chunks * o->ctx; i++)
        if (ids[i] < 0 || ids[i] >= m->cfg.n_vocab)
            return slm_errf(err, SLM_E_ARG, "token id %d at %lld is outside the vocabulary [0, %d)", ids[i], (long long)i,
                            m->cfg.n_vocab);
    return SLM_OK;
}

/* After the forward of a batch: the classifier input of every row (lnf holds all of them). */
static void observe_output(run_ctx *x, const slm_model *m) {
    if (x->c->out.n > 0) observe_input(x, &x->c->out, m->acts.lnf, m->cfg.n_embd, x->c->n_layer * SLM_CALIB_KINDS);
}

static int bad_sum(const run_ctx *x, slm_err *err) {
    const int tag = x->bad - 1, l = tag / SLM_CALIB_KINDS;
    char name[SLM_MAX_NAME];
    if (l >= x->c->n_layer) snprintf(name, sizeof name, "output.weight");
    else if (x->c->cfg.arch == SLM_ARCH_PHI3 && tag % SLM_CALIB_KINDS == SLM_CALIB_ATTN_IN) slm_catalog_gguf_name(SLM_ROLE_ATTN_QKV, l, name, sizeof name);
    else if (x->c->cfg.arch == SLM_ARCH_PHI3 && tag % SLM_CALIB_KINDS == SLM_CALIB_FFN_IN) slm_catalog_gguf_name(SLM_ROLE_FFN_UP, l, name, sizeof name);
    else slm_catalog_gguf_name(slm_calib_first_role(tag % SLM_CALIB_KINDS), l, name, sizeof name);
    return slm_errf(err, SLM_E_DATA, "calibration: non-finite sum of squares for '%s' (activations overflow float32)", name);
}

/* One chunk batch (nb sequences of C tokens, BOS set) through m, ubatch by ubatch. */
static int run_batch(run_ctx *x, slm_model *m, const sched *s, const int32_t *tokens, int32_t *piece, int nb, int C,
                     int process_output, slm_err *err) {
    const slm_forward_observer ob = {on_matmul_input, on_hidden, x}, *saved = m->observer;
    int t0, kk, rc = SLM_OK;
    for (int k = 0; !rc && ubatch_at(s, nb, C, k, &t0, &kk); k++) {
        for (int b = 0; b < nb; b++) memcpy(piece + (size_t)b * kk, tokens + (size_t)b * C + t0, sizeof(int32_t) * (size_t)kk);
        x->n_rows = (int64_t)nb * kk < MIN_UBATCH_ROWS ? 0 : (int64_t)nb * kk;
        m->observer = &ob;
        rc = slm_model_forward_batch(m, piece, nb, kk, t0, kk, NULL, err);
        m->observer = saved;
        if (!rc && process_output) observe_output(x, m);
    }
    return rc;
}

int slm_calib_run(slm_calib *c, slm_model *m, const int32_t *ids, int64_t n_ids, const slm_calib_opts *o, slm_err *err) {
    int64_t n_chunks = 0;
    memset(c, 0, sizeof *c);
    SLM_TRY(check_run(m, ids, n_ids, o, &n_chunks, err));
    const sched s = sched_of(o);
    const int C = o->ctx, B = slm_calib_batch(o, n_ids);
    const size_t N = (size_t)B * (size_t)C, Nc = (size_t)slm_calib_call_tokens(o, n_ids);
    int32_t *tokens = NULL, *piece = NULL, *rows = NULL;
    run_ctx x = {.c = c, .simd = 0};
#if CALIB_AVX2
    x.simd = slm_cpu_has_avx2_fma();
#endif
    if (m->max_tokens < (int)Nc)
        return slm_errf(err, SLM_E_ARG, "calibration runs forwards of %zu tokens: the model was built for %d", Nc,
                        m->max_tokens);
    int rc = slm_calib_init(c, &m->cfg, 1, o->gram ? gram_limit(o->gram_max_cols) : 0, o->process_output, err);
    if (!rc) rc = slm_alloc((void **)&tokens, N * sizeof(int32_t), err, "calibration tokens");
    if (!rc) rc = slm_alloc((void **)&piece, Nc * sizeof(int32_t), err, "calibration tokens");
    if (!rc) rc = slm_alloc((void **)&rows, Nc * sizeof(int32_t), err, "calibration rows");
    if (!rc) rc = slm_alloc((void **)&x.prev, Nc * (size_t)m->cfg.n_embd * sizeof(float), err, "calibration residuals");
    if (!rc) rc = slm_alloc((void **)&x.cos, Nc * sizeof(double), err, "calibration cosines");
    if (rc) goto done;
    for (size_t r = 0; r < Nc; r++) rows[r] = (int32_t)r;
    x.rows = rows;
    c->ctx = C;
    for (int64_t i = 0; i < n_chunks && !rc; i += B) {
        const int nb = (int)SLM_MIN((int64_t)B, n_chunks - i);
        for (int b = 0; b < nb; b++) {
            memcpy(tokens + (size_t)b * C, ids + (i + b) * C, sizeof(int32_t) * (size_t)C);
            if (o->bos_id >= 0) tokens[(size_t)b * C] = o->bos_id;
        }
        rc = run_batch(&x, m, &s, tokens, piece, nb, C, o->process_output, err);
        if (!rc && x.bad) rc = bad_sum(&x, err);
        c->n_chunks = i + nb;
        if (!rc && o->progress) o->progress(o->progress_ud, c->n_chunks, n_chunks);
    }
    for (int i = 0; !rc && i < c->n_layer * SLM_CALIB_KINDS; i++)
        if (c->in[i].gram) gram_mirror(c->in[i].gram, c->in[i].n);
    if (!rc && c->out.gram) gram_mirror(c->out.gram, c->out.n);
done:
    slm_free(tokens);
    slm_free(piece);
    slm_free(rows);
    slm_free(x.prev);
    slm_free(x.cos);
    if (rc) slm_calib_free(c);
    return rc;
}
