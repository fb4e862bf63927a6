/* gptq.c - GPTQ into ggml block formats (gptq.h); it reads top to bottom:
 *   1. per type: the level nearest a value given a block's scales (put_*), written into the block;
 *   2. the factor: damping, dead columns, column order, U = upper Cholesky factor of H^-1;
 *   3. the schedule: lazy batches, cut where a block is first reached;
 *   4. the column loop over tiles of rows.
 */
#include "quantize/gptq.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/mem.h"
#include "core/slm.h"
#include "core/thread.h"
#include "quantize/qtypes.h"
#include "quantize/quants.h"

#define TILE_ROWS 16 /* rows processed together (fixed: the output never depends on threads) */

/* ---------------------------------------------------------------- 1. levels given the scales */

/* put_<t>(block, j, x): sets the code of value j of the block to the level nearest x under the
   block's scales and returns the value ggml's dequantizer gives for it (the same float
   expression). */
typedef float (*put_fn)(void *blk, int j, float x);

/* The best of q0-1, q0, q0+1 in [lo, hi] for the level function V(q) (an expression in q). */
#define BEST_LEVEL(q0, lo, hi, V, x, best_q, best_v)                                  \
    do {                                                                              \
        int q_ = (q0) < (lo) ? (lo) : (q0) > (hi) ? (hi) : (q0);                      \
        best_q = q_;                                                                  \
        { const int q = q_; best_v = (V); }                                           \
        for (int dq_ = -1; dq_ <= 1; dq_ += 2) {                                      \
            const int q = q_ + dq_;                                                   \
            if (q < (lo) || q > (hi)) continue;                                       \
            const float v_ = (V);                                                     \
            if (fabsf((x) - v_) < fabsf((x) - best_v)) best_q = q, best_v = v_;       \
        }                                                                             \
    } while (0)

/* nearest_int of t, or 0 when t is not finite (a zero scale) */
static int guess(float t) { return isfinite(t) && fabsf(t) < 4e6f ? slm_nearest_int(t) : 0; }

static void set_nibble(uint8_t *qs, int j, int half, int q) {
    if (j < half) qs[j] = (uint8_t)((qs[j] & 0xf0) | q);
    else qs[j - half] = (uint8_t)((qs[j - half] & 0x0f) | q << 4);
}

static float put_q4_0(void *vb, int j, float x) {
    slm_block_q4_0 *b = vb;
    const float d = slm_f16_to_f32(b->d);
    int bq;
    float bv;
    BEST_LEVEL(guess(x / d) + 8, 0, 15, (q - 8) * d, x, bq, bv);
    set_nibble(b->qs, j, 16, bq);
    return bv;
}

static float put_q4_1(void *vb, int j, float x) {
    slm_block_q4_1 *b = vb;
    const float d = slm_f16_to_f32(b->d), m = slm_f16_to_f32(b->m);
    int bq;
    float bv;
    BEST_LEVEL(guess((x - m) / d), 0, 15, q * d + m, x, bq, bv);
    set_nibble(b->qs, j, 16, bq);
    return bv;
}

static void set_q5_high(uint8_t qh[4], int j, int q) {
    uint32_t h;
    memcpy(&h, qh, 4);
    h = (h & ~(1u << j)) | (uint32_t)(q >> 4 & 1) << j;
    memcpy(qh, &h, 4);
}

static float put_q5_0(void *vb, int j, float x) {
    slm_block_q5_0 *b = vb;
    const float d = slm_f16_to_f32(b->d);
    int bq;
    float bv;
    BEST_LEVEL(guess(x / d) + 16, 0, 31, (q - 16) * d, x, bq, bv);
    set_nibble(b->qs, j, 16, bq & 15);
    set_q5_high(b->qh, j, bq);
    return bv;
}

static float put_q5_1(void *vb, int j, float x) {
    slm_block_q5_1 *b = vb;
    const float d = slm_f16_to_f32(b->d), m = slm_f16_to_f32(b->m);
    int bq;
    float bv;
    BEST_LEVEL(guess((x - m) / d), 0, 31, q * d + m, x, bq, bv);
    set_nibble(b->qs, j, 16, bq & 15);
    set_q5_high(b->qh, j, bq);
    return bv;
}

static float put_q8_0(void *vb, int j, float x) {
    slm_block_q8_0 *b = vb;
    const float d = slm_f16_to_f32(b->d);
    int bq;
    float bv;
    BEST_LEVEL(guess(x / d), -127, 127, q * d, x, bq, bv);
    b->qs[j] = (int8_t)bq;
    return bv;
}

static float put_q2_K(void *vb, int j, float x) {
    slm_block_q2_K *b = vb;
    const uint8_t sc = b->scales[j / 16];
    const float dl = slm_f16_to_f32(b->d) * (sc & 0xF), ml = slm_f16_to_f32(b->dmin) * (sc >> 4);
    int bq;
    float bv;
    BEST_LEVEL(guess((x + ml) / dl), 0, 3, dl * q - ml, x, bq, bv);
    const int byte = j / 128 * 32 + j % 32, shift = 2 * (j % 128 / 32);
    b->qs[byte] = (uint8_t)((b->qs[byte] & ~(3 << shift)) | bq << shift);
    return bv;
}

static int q3_K_scale(const uint8_t s[12], int i) { /* 6-bit scale i of 16 (ggml's unpacking) */
    const int lo = i < 8 ? s[i % 8] & 0xF : s[i % 8] >> 4;
    const int hi = s[8 + i % 4] >> (2 * (i / 4)) & 3;
    return lo | hi << 4;
}

static float put_q3_K(void *vb, int j, float x) {
    slm_block_q3_K *b = vb;
    const float dl = slm_f16_to_f32(b->d) * (q3_K_scale(b->scales, j / 16) - 32);
    int bq;
    float bv;
    BEST_LEVEL(guess(x / dl) + 4, 0, 7, dl * (q - 4), x, bq, bv);
    const int l = j % 32, byte = j / 128 * 32 + l, shift = 2 * (j % 128 / 32), hbit = j / 128 * 4 + j % 128 / 32;
    b->qs[byte] = (uint8_t)((b->qs[byte] & ~(3 << shift)) | (bq & 3) << shift);
    b->hmask[l] = (uint8_t)((b->hmask[l] & ~(1 << hbit)) | (bq >> 2) << hbit);
    return bv;
}

static void k4_scale_min(int j, const uint8_t *q, int *d, int *m) { /* ggml's get_scale_min_k4 */
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
    }
}

static float put_q4_K(void *vb, int j, float x) {
    slm_block_q4_K *b = vb;
    int sc, mn;
    k4_scale_min(j / 32, b->scales, &sc, &mn);
    const float d1 = slm_f16_to_f32(b->d) * (uint8_t)sc, m1 = slm_f16_to_f32(b->dmin) * (uint8_t)mn;
    int bq;
    float bv;
    BEST_LEVEL(guess((x + m1) / d1), 0, 15, d1 * q - m1, x, bq, bv);
    const int byte = j / 64 * 32 + j % 32;
    if (j % 64 < 32) b->qs[byte] = (uint8_t)((b->qs[byte] & 0xf0) | bq);
    else b->qs[byte] = (uint8_t)((b->qs[byte] & 0x0f) | bq << 4);
    return bv;
}

static float put_q5_K(void *vb, int j, float x) {
    slm_block_q5_K *b = vb;
    int sc, mn;
    k4_scale_min(j / 32, b->scales, &sc, &mn);
    const float d1 = slm_f16_to_f32(b->d) * (uint8_t)sc, m1 = slm_f16_to_f32(b->dmin) * (uint8_t)mn;
    int bq;
    float bv;
    BEST_LEVEL(guess((x + m1) / d1), 0, 31, d1 * q - m1, x, bq, bv);
    const int l = j % 32, byte = j / 64 * 32 + l, bit = j / 32; /* u1/u2 of ggml: bit 2*(j/64) + (j%64 >= 32) */
    if (j % 64 < 32) b->qs[byte] = (uint8_t)((b->qs[byte] & 0xf0) | (bq & 15));
    else b->qs[byte] = (uint8_t)((b->qs[byte] & 0x0f) | (bq & 15) << 4);
    b->qh[l] = (uint8_t)((b->qh[l] & ~(1 << bit)) | (bq >> 4) << bit);
    return bv;
}

static float put_q6_K(void *vb, int j, float x) {
    slm_block_q6_K *b = vb;
    const int half = j / 128, r = j % 128, l = r % 32, quarter = r / 32;
    const float d = slm_f16_to_f32(b->d);
    const int8_t s = b->scales[half * 8 + l / 16 + 2 * quarter];
    int bq;
    float bv;
    BEST_LEVEL(guess(x / (d * s)), -32, 31, d * s * (int8_t)q, x, bq, bv);
    const int code = bq + 32;
    uint8_t *ql = b->ql + half * 64 + l + (quarter & 1) * 32, *qh = b->qh + half * 32 + l;
    if (quarter < 2) *ql = (uint8_t)((*ql & 0xf0) | (code & 15));
    else *ql = (uint8_t)((*ql & 0x0f) | (code & 15) << 4);
    *qh = (uint8_t)((*qh & ~(3 << 2 * quarter)) | (code >> 4) << 2 * quarter);
    return bv;
}

static const int8_t kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/* the level of dl * kvalues nearest x: all 16 (they are not evenly spaced) */
static int iq4_best(float dl, float x, float *v) {
    int bq = 0;
    float bv = dl * kvalues_iq4nl[0];
    for (int q = 1; q < 16; q++) {
        const float vq = dl * kvalues_iq4nl[q];
        if (fabsf(x - vq) < fabsf(x - bv)) bq = q, bv = vq;
    }
    *v = bv;
    return bq;
}

static float put_iq4_nl(void *vb, int j, float x) {
    slm_block_iq4_nl *b = vb;
    float v;
    set_nibble(b->qs, j, 16, iq4_best(slm_f16_to_f32(b->d), x, &v));
    return v;
}

static float put_iq4_xs(void *vb, int j, float x) {
    slm_block_iq4_xs *b = vb;
    const int ib = j / 32;
    const int ls = ((b->scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) | (((b->scales_h >> 2 * ib) & 3) << 4);
    const float dl = slm_f16_to_f32(b->d) * (ls - 32);
    float v;
    set_nibble(b->qs + ib * 16, j % 32, 16, iq4_best(dl, x, &v));
    return v;
}

/* NULL: codes are not per value (lattice types): whole blocks from the codec */
static put_fn put_for(int type) {
    switch (type) {
    case SLM_DTYPE_Q4_0: return put_q4_0;
    case SLM_DTYPE_Q4_1: return put_q4_1;
    case SLM_DTYPE_Q5_0: return put_q5_0;
    case SLM_DTYPE_Q5_1: return put_q5_1;
    case SLM_DTYPE_Q8_0: return put_q8_0;
    case SLM_DTYPE_Q2_K: return put_q2_K;
    case SLM_DTYPE_Q3_K: return put_q3_K;
    case SLM_DTYPE_Q4_K: return put_q4_K;
    case SLM_DTYPE_Q5_K: return put_q5_K;
    case SLM_DTYPE_Q6_K: return put_q6_K;
    case SLM_DTYPE_IQ4_NL: return put_iq4_nl;
    case SLM_DTYPE_IQ4_XS: return put_iq4_xs;
    default: return NULL;
    }
}

/* ggml's legacy weighted quantizers weigh by the mean x^2 of the whole row: a block's scales then
   depend on the row, so the codec is run on the whole current row. */
static int row_context(int type, const float *imatrix) {
    return imatrix && (type == SLM_DTYPE_Q4_0 || type == SLM_DTYPE_Q4_1 || type == SLM_DTYPE_Q5_0 || type == SLM_DTYPE_Q5_1);
}

/* ---------------------------------------------------------------- 2. the factor */

/* Sum of a[i] * b[i] in 4 fixed lanes (vectorised, same bits every run). */
static double dot(const double *restrict a, const double *restrict b, int64_t n) {
    double s[4] = {0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++) s[k] += a[i + k] * b[i + k];
    for (; i < n; i++) s[0] += a[i] * b[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

/* In place: the lower Cholesky factor of A (n, n), row by row; 0 when not positive definite. */
static int cholesky(double *A, int64_t n) {
    int ok = 1;
    for (int64_t j = 0; j < n && ok; j++) {
        double *Lj = A + j * n;
        const double djj = Lj[j] - dot(Lj, Lj, j);
        if (!(djj > 0) || !isfinite(djj)) return 0;
        Lj[j] = sqrt(djj);
        const double inv = 1 / Lj[j];
#pragma omp parallel for schedule(static) if (n - j > 256)
        for (int64_t i = j + 1; i < n; i++) {
            double *Li = A + i * n;
            Li[j] = (Li[j] - dot(Li, Lj, j)) * inv;
        }
    }
    return ok;
}

/* T (n, n) = (L^-1)^T for the lower factor L in A: column c of L^-1 by forward substitution,
   stored as row c of T (x[i] = 0 for i < c). */
static void lower_inverse_t(const double *A, double *T, int64_t n) {
#pragma omp parallel for schedule(dynamic, 8)
    for (int64_t c = 0; c < n; c++) {
        double *x = T + c * n;
        memset(x, 0, (size_t)n * sizeof *x);
        x[c] = 1 / A[c * n + c];
        for (int64_t i = c + 1; i < n; i++) x[i] = -dot(A + i * n + c, x + c, i - c) / A[i * n + i];
    }
}

static int64_t first_nonfinite_d(const double *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return i;
    return -1;
}

typedef slm_gptq_factor factor;

typedef struct diag_key { double v; int64_t i; } diag_key;

static int cmp_diag_desc(const void *a, const void *b) {
    const diag_key *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* The processing order (gptq.h): keys are diag(H) per column, or per block then per column. */
static void column_order(int order, const double *diag, int64_t n, int64_t bs, int64_t *perm, diag_key *k) {
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    if (order == SLM_GPTQ_ACT) {
        for (int64_t i = 0; i < n; i++) k[i] = (diag_key){diag[i], i};
        qsort(k, (size_t)n, sizeof *k, cmp_diag_desc);
        for (int64_t i = 0; i < n; i++) perm[i] = k[i].i;
    } else if (order == SLM_GPTQ_ACT_BLOCKS) {
        const int64_t nb = n / bs;
        for (int64_t b = 0; b < nb; b++) {
            double s = 0;
            for (int64_t j = 0; j < bs; j++) s += diag[b * bs + j];
            k[b] = (diag_key){s, b};
        }
        qsort(k, (size_t)nb, sizeof *k, cmp_diag_desc);
        diag_key *kc = k + nb;
        for (int64_t p = 0; p < nb; p++) {
            const int64_t b = k[p].i;
            for (int64_t j = 0; j < bs; j++) kc[j] = (diag_key){diag[b * bs + j], b * bs + j};
            qsort(kc, (size_t)bs, sizeof *kc, cmp_diag_desc);
            for (int64_t j = 0; j < bs; j++) perm[p * bs + j] = kc[j].i;
        }
    }
}

/* U = upper Cholesky factor of (P H P^T)^-1, through the reversal J: with J (P H P^T) J = L L^T,
   (P H P^T)^-1 = M^T M for the upper M = J L^-1 J, so U[i][j] = L^-1[n-1-i][n-1-j]. */
static int make_factor(factor *f, const double *gram, int64_t n, int64_t bs, const slm_gptq_opts *o, slm_err *err) {
    double *A = NULL, *T = NULL, *diag = NULL;
    diag_key *keys = NULL;
    int rc;
    f->n = n;
    if ((rc = slm_alloc((void **)&f->perm, (size_t)n * sizeof(int64_t), err, "GPTQ order")) ||
        (rc = slm_alloc((void **)&f->U, (size_t)n * (size_t)n * sizeof(float), err, "GPTQ factor")) ||
        (rc = slm_alloc((void **)&A, (size_t)n * (size_t)n * sizeof(double), err, "GPTQ Hessian")) ||
        (rc = slm_alloc((void **)&T, (size_t)n * (size_t)n * sizeof(double), err, "GPTQ Hessian")) ||
        (rc = slm_alloc((void **)&diag, (size_t)n * sizeof(double), err, "GPTQ Hessian")) ||
        (rc = slm_alloc((void **)&keys, (size_t)(2 * n) * sizeof(diag_key), err, "GPTQ order")))
        goto done;
    double mean = 0;
    for (int64_t i = 0; i < n; i++) {
        diag[i] = gram[i * n + i];
        if (!isfinite(diag[i]) || diag[i] < 0) {
            rc = slm_errf(err, SLM_E_DATA, "Hessian diagonal %lld is %g", (long long)i, diag[i]);
            goto done;
        }
        if (diag[i] == 0) diag[i] = 1; /* dead column */
        mean += diag[i];
    }
    mean /= (double)n;
    const int64_t bad = first_nonfinite_d(gram, n * n);
    if (bad >= 0) {
        rc = slm_errf(err, SLM_E_DATA, "Hessian entry (%lld, %lld) is not finite", (long long)(bad / n), (long long)(bad % n));
        goto done;
    }
    column_order(o->order, diag, n, bs, f->perm, keys);
    double damp = o->damp * mean;
    for (int attempt = 0;; attempt++) {
        for (int64_t i = 0; i < n; i++) { /* A = J P (H + damp I) P^T J */
            const int64_t ci = f->perm[n - 1 - i];
            const int dead_i = gram[ci * n + ci] == 0;
            for (int64_t j = 0; j <= i; j++) {
                const int64_t cj = f->perm[n - 1 - j];
                double h = i == j ? diag[ci] + damp : dead_i || gram[cj * n + cj] == 0 ? 0 : gram[ci * n + cj];
                A[i * n + j] = h;
            }
        }
        if (cholesky(A, n)) break;
        if (attempt == 3) {
            rc = slm_errf(err, SLM_E_DATA, "Hessian not positive definite (damping %g of the mean diagonal)", o->damp * 1000);
            goto done;
        }
        damp *= 10;
    }
    lower_inverse_t(A, T, n);
    /* L^-1[r][c] = T[c][r]; U[i][j] = L^-1[n-1-i][n-1-j] = T[n-1-j][n-1-i] (zero below the diagonal) */
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) f->U[i * n + j] = j < i ? 0.f : (float)T[(n - 1 - j) * n + (n - 1 - i)];
done:
    slm_free(A);
    slm_free(T);
    slm_free(diag);
    slm_free(keys);
    return rc;
}

void slm_gptq_factor_free(slm_gptq_factor *f) {
    slm_free(f->perm);
    slm_free(f->U);
    memset(f, 0, sizeof *f);
}

static slm_gptq_opts defaults(const slm_gptq_opts *o) {
    slm_gptq_opts opt = o ? *o : (slm_gptq_opts){0};
    if (!(opt.damp > 0)) opt.damp = 0.01;
    if (opt.batch <= 0) opt.batch = 128;
    return opt;
}

int slm_gptq_factor_make(slm_gptq_factor *f, const double *gram, int64_t n, int64_t block, const slm_gptq_opts *o,
                         slm_err *err) {
    memset(f, 0, sizeof *f);
    const slm_gptq_opts opt = defaults(o);
    if (n <= 0 || block <= 0 || n % block) return slm_errf(err, SLM_E_ARG, "GPTQ: %lld columns in blocks of %lld", (long long)n, (long long)block);
    int rc = make_factor(f, gram, n, block, &opt, err);
    f->block = block;
    f->batch = opt.batch;
    if (rc) slm_gptq_factor_free(f);
    return rc;
}

/* ---------------------------------------------------------------- 3. the schedule */

/* first[i] = 1 when position i is the first of its block; batch ends: end[i] = 1 when a lazy batch
   ends after position i (every `batch` columns, and before a block is first reached). */
static void make_schedule(const int64_t *perm, int64_t n, int64_t bs, int batch, uint8_t *first, uint8_t *end, uint8_t *seen) {
    memset(seen, 0, (size_t)(n / bs));
    int64_t start = 0;
    for (int64_t i = 0; i < n; i++) {
        const int64_t b = perm[i] / bs;
        first[i] = !seen[b];
        seen[b] = 1;
        end[i] = 0;
        if (first[i] && i > start) end[i - 1] = 1, start = i;
        if (i - start + 1 == batch) end[i] = 1, start = i + 1;
    }
    end[n - 1] = 1;
}

/* ---------------------------------------------------------------- 4. the column loop */

typedef struct job {
    int type;
    const slm_dtype_traits *tr;
    put_fn put;
    int64_t n, bs, rowb;
    const float *imatrix;
    const factor *f;
    const int64_t *inv;    /* column -> position */
    const uint8_t *first, *end;
    int batch;
} job;

typedef struct scratch {
    float *w;     /* (TILE_ROWS, n) working weights, processing order */
    float *snap;  /* (TILE_ROWS, n) the value the codec saw, column order */
    float *deq;   /* (TILE_ROWS, n) the codec's dequantized block, column order */
    float *err;   /* (TILE_ROWS, batch) scaled errors of the current batch */
    float *row;   /* (n) a row in column order */
    uint8_t *qrow;/* (rowb) a quantized row */
} scratch;

/* The block of column c in row r reached for the first time: the codec chooses its scales (and
   codes) from the current weights. */
static void start_block(const job *J, const scratch *s, int r, int64_t c, const float *w, uint8_t *out) {
    const int64_t b0 = c / J->bs * J->bs, n = J->n;
    float *snap = s->snap + r * n, *deq = s->deq + r * n;
    uint8_t *blk = out + (size_t)(b0 / J->bs) * J->tr->type_size;
    if (row_context(J->type, J->imatrix)) {
        for (int64_t k = 0; k < n; k++) s->row[k] = w[J->inv[k]];
        J->tr->quantize(s->row, s->qrow, 1, n, J->imatrix, SLM_KERNEL_AUTO);
        memcpy(blk, s->qrow + (size_t)(b0 / J->bs) * J->tr->type_size, J->tr->type_size);
        memcpy(snap + b0, s->row + b0, (size_t)J->bs * sizeof(float));
    } else {
        for (int64_t k = b0; k < b0 + J->bs; k++) snap[k] = w[J->inv[k]];
        J->tr->quantize(snap + b0, blk, 1, J->bs, J->imatrix ? J->imatrix + b0 : NULL, SLM_KERNEL_AUTO);
    }
    J->tr->to_float(blk, deq + b0, J->bs);
}

/* Rows r0 .. r0+nr of W through the whole column loop into dst (and deq_out). */
static void run_tile(const job *J, const scratch *s, const float *W, int64_t r0, int nr, uint8_t *dst, float *deq_out) {
    const int64_t n = J->n;
    const float *U = J->f->U;
    const int64_t *perm = J->f->perm;
    for (int r = 0; r < nr; r++)
        for (int64_t i = 0; i < n; i++) s->w[r * n + i] = W[(r0 + r) * n + perm[i]];
    int64_t i1 = 0;
    for (int64_t i = 0; i < n; i++) {
        const int64_t c = perm[i], cb = c % J->bs;
        const float uii = U[i * n + i];
        int64_t i2 = i;
        while (!J->end[i2]) i2++; /* batch end (inclusive) */
        for (int r = 0; r < nr; r++) {
            float *w = s->w + r * n;
            uint8_t *out = dst + (size_t)(r0 + r) * (size_t)J->rowb;
            if (J->first[i]) start_block(J, s, r, c, w, out);
            const float x = w[i];
            float q;
            if (!J->put || x == s->snap[r * n + c]) q = s->deq[r * n + c];
            else q = J->put(out + (size_t)(c / J->bs) * J->tr->type_size, (int)cb, x);
            if (deq_out) deq_out[(r0 + r) * n + c] = q;
            const float e = (x - q) / uii;
            s->err[r * J->batch + (i - i1)] = e;
            const float *Ui = U + i * n;
            for (int64_t k = i + 1; k <= i2; k++) w[k] -= e * Ui[k];
        }
        if (!J->end[i]) continue;
        /* the batch's errors reach every later column */
        for (int64_t b = i1; b <= i; b++) {
            const float *Ub = U + b * n;
            for (int r = 0; r < nr; r++) {
                float *w = s->w + r * n;
                const float e = s->err[r * J->batch + (b - i1)];
                for (int64_t k = i + 1; k < n; k++) w[k] -= e * Ub[k];
            }
        }
        i1 = i + 1;
    }
}

static int check_input(int type, const float *W, int64_t nrow, int64_t ncols, const float *imatrix, slm_err *err) {
    const slm_dtype_traits *tr = slm_dtype_get(type);
    if (!tr || !slm_dtype_can_write(type)) return slm_errf(err, SLM_E_ARG, "GPTQ cannot write type %s", slm_dtype_name(type));
    if (ncols <= 0 || ncols % tr->blck_size)
        return slm_errf(err, SLM_E_ARG, "row length %lld is not a multiple of %s's block size %lld", (long long)ncols, tr->name,
                        (long long)tr->blck_size);
    if (!imatrix && tr->needs_imatrix)
        return slm_errf(err, SLM_E_ARG, "%s needs importance weights (an imatrix): ggml does not quantize it without", tr->name);
    const int64_t bad = slm_first_nonfinite(W, nrow * ncols);
    if (bad >= 0)
        return slm_errf(err, SLM_E_DATA, "NaN or Inf weight at row %lld, column %lld", (long long)(bad / ncols),
                        (long long)(bad % ncols));
    return SLM_OK;
}

int slm_gptq_quantize_f(const slm_gptq_factor *f, int type, const float *W, int64_t nrow, int64_t ncols,
                        const float *imatrix, void *dst, float *deq, slm_err *err) {
    SLM_TRY(check_input(type, W, nrow, ncols, imatrix, err));
    const slm_dtype_traits *tr = slm_dtype_get(type);
    if (!tr->is_quantized) { /* nothing to round: F32/F16/BF16 as they are */
        tr->quantize(W, dst, nrow, ncols, NULL, SLM_KERNEL_AUTO);
        if (deq) slm_dequantize_rows(type, dst, deq, nrow, ncols);
        return SLM_OK;
    }
    const int64_t n = ncols, bs = tr->blck_size;
    if (f->n != n || f->block != bs)
        return slm_errf(err, SLM_E_ARG, "GPTQ factor made for %lld columns in blocks of %lld, not %lld in blocks of %lld",
                        (long long)f->n, (long long)f->block, (long long)n, (long long)bs);
    const int nth = slm_threads_get();
    int64_t *inv = NULL;
    uint8_t *flags = NULL;
    float *fs = NULL;
    uint8_t *qs = NULL;
    job J = {type, tr, put_for(type), n, bs, (int64_t)slm_dtype_row_size(type, n), imatrix, f, NULL, NULL, NULL, f->batch};
    const size_t per_thread = (size_t)(3 * TILE_ROWS * n + TILE_ROWS * f->batch + n);
    int rc;
    if ((rc = slm_alloc((void **)&inv, (size_t)n * sizeof(int64_t), err, "GPTQ order")) ||
        (rc = slm_alloc((void **)&flags, (size_t)(2 * n + n / bs), err, "GPTQ schedule")) ||
        (rc = slm_alloc((void **)&fs, (size_t)nth * per_thread * sizeof(float), err, "GPTQ rows")) ||
        (rc = slm_alloc((void **)&qs, (size_t)nth * (size_t)J.rowb, err, "GPTQ rows")))
        goto done;
    for (int64_t i = 0; i < n; i++) inv[f->perm[i]] = i;
    make_schedule(f->perm, n, bs, f->batch, flags, flags + n, flags + 2 * n);
    J.inv = inv, J.first = flags, J.end = flags + n;
    const int64_t ntile = (nrow + TILE_ROWS - 1) / TILE_ROWS;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nth)
    for (int64_t t = 0; t < ntile; t++) {
        const int id = slm_thread_id();
        float *base = fs + (size_t)id * per_thread;
        scratch s = {base, base + TILE_ROWS * n, base + 2 * TILE_ROWS * n, base + 3 * TILE_ROWS * n,
                     base + 3 * TILE_ROWS * n + TILE_ROWS * f->batch, qs + (size_t)id * (size_t)J.rowb};
        const int64_t r0 = t * TILE_ROWS;
        run_tile(&J, &s, W, r0, (int)SLM_MIN(TILE_ROWS, nrow - r0), dst, deq);
    }
done:
    slm_free(inv);
    slm_free(flags);
    slm_free(fs);
    slm_free(qs);
    return rc;
}

int slm_gptq_quantize(int type, const float *W, int64_t nrow, int64_t ncols, const double *gram, const float *imatrix,
                      const slm_gptq_opts *o, void *dst, float *deq, slm_err *err) {
    SLM_TRY(check_input(type, W, nrow, ncols, imatrix, err));
    const slm_dtype_traits *tr = slm_dtype_get(type);
    if (!tr->is_quantized) return slm_gptq_quantize_f(NULL, type, W, nrow, ncols, imatrix, dst, deq, err);
    slm_gptq_factor f;
    SLM_TRY(slm_gptq_factor_make(&f, gram, ncols, tr->blck_size, o, err));
    int rc = slm_gptq_quantize_f(&f, type, W, nrow, ncols, imatrix, dst, deq, err);
    slm_gptq_factor_free(&f);
    return rc;
}

double slm_gptq_output_error(const float *W, const float *Q, int64_t nrow, int64_t ncols, const double *gram) {
    double total = 0;
    double *d = malloc((size_t)ncols * sizeof *d);
    if (!d) return NAN;
    for (int64_t r = 0; r < nrow; r++) {
        for (int64_t j = 0; j < ncols; j++) d[j] = (double)W[r * ncols + j] - (double)Q[r * ncols + j];
        for (int64_t i = 0; i < ncols; i++) total += d[i] * dot(gram + i * ncols, d, ncols);
    }
    free(d);
    return total;
}
