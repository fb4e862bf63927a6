/* prune_rows.c - the row kernels of unstructured pruning: exact k-smallest selection (magnitude,
 * Wanda), N:M groups, SparseGPT's OBS update, and the inverse-Hessian factor it reads.
 * Deterministic: ties are broken by position, no thread-dependent order.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/slm.h"
#include "prune/prune.h"

/* ---- selection ---------------------------------------------------------------------------- */

/* Keys (score bits << 32 | index): scores are >= 0, so their IEEE bits order like the values, and
   the index breaks ties (lower first). The order is total, so any selection algorithm picks the
   same set. */
static uint64_t key_of(float s, int64_t i) {
    uint32_t u;
    memcpy(&u, &s, 4);
    return (uint64_t)u << 32 | (uint64_t)(uint32_t)i;
}

/* Quickselect (Hoare partition, median-of-3 pivot): afterwards a[0..k) are the k smallest keys. */
static void select_k(uint64_t *a, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n - 1, t = k - 1;
    while (hi > lo) {
        uint64_t x = a[lo], y = a[lo + (hi - lo) / 2], z = a[hi];
        uint64_t p = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < p) i++;
            while (a[j] > p) j--;
            if (i <= j) {
                uint64_t tmp = a[i];
                a[i++] = a[j], a[j--] = tmp;
            }
        }
        if (t <= j) hi = j;
        else if (t >= i) lo = i;
        else break;
    }
}

/* Zeroes the k values of w[lo..hi) with the smallest scores sc[] (ties: lower index first). */
static void zero_smallest(float *w, const float *sc, int64_t lo, int64_t hi, int64_t k, int32_t *idx) {
    if (k <= 0) return;
    uint64_t *s = (uint64_t *)(void *)idx; /* idx has room for 2n ints: n keys */
    const int64_t n = hi - lo;
    if (k >= n) {
        for (int64_t j = lo; j < hi; j++) w[j] = 0.0f;
        return;
    }
    for (int64_t j = 0; j < n; j++) s[j] = key_of(sc[lo + j], lo + j);
    select_k(s, n, k);
    for (int64_t j = 0; j < k; j++) w[(uint32_t)s[j]] = 0.0f;
}

void slm_prune_row_select(float *w, int64_t n, const float *scale, int64_t k, int nk, int m, int32_t *idx) {
    float *sc = (float *)(void *)(idx + 2 * n); /* after the pairs: n floats of scores */
    for (int64_t j = 0; j < n; j++) sc[j] = fabsf(w[j]) * (scale ? scale[j] : 1.0f);
    if (m > 0) {
        for (int64_t g = 0; g + m <= n; g += m) zero_smallest(w, sc, g, g + m, m - nk, idx);
        return;
    }
    zero_smallest(w, sc, 0, n, k, idx);
}

/* ---- SparseGPT ------------------------------------------------------------------------------- */

/* Frantar & Alistarh 2023, one row: for each block of columns [b, e), choose the mask by
   w_j^2 / U_jj^2 (exact count per block so the row total is round(s * n); N:M per group), then
   column by column: err = (w_j - q_j) / U_jj, w[j+1..] -= err * U[j, j+1..] (the rest of the
   row compensates, also past the block: the lazy batch update of the paper done eagerly). */
void slm_prune_row_sparsegpt(float *w, int64_t n, const double *U, double s, int nk, int m, int block, float *tmp,
                             int32_t *idx) {
    double *wd = (double *)(void *)tmp; /* n doubles = 2n floats */
    float *sc = (float *)(void *)(idx + 2 * n), *keep = (float *)(void *)(idx + 3 * n); /* keep: 0 = pruned */
    for (int64_t j = 0; j < n; j++) wd[j] = w[j], keep[j] = 1.0f;
    for (int64_t b = 0; b < n; b += block) {
        const int64_t e = SLM_MIN(n, b + block);
        for (int64_t j = b; j < e; j++) {
            const double d = U[j * n + j];
            sc[j] = (float)(wd[j] * wd[j] / (d * d));
        }
        if (m > 0) {
            for (int64_t g = b; g + m <= e; g += m) zero_smallest(keep, sc, g, g + m, m - nk, idx);
        } else {
            zero_smallest(keep, sc, b, e, llround(s * (double)e) - llround(s * (double)b), idx);
        }
        for (int64_t j = b; j < e; j++) {
            if (keep[j] != 0.0f) continue;
            const double *u = U + j * n;
            const double err = wd[j] / u[j];
            wd[j] = 0.0;
            for (int64_t c = j + 1; c < n; c++) wd[c] -= err * u[c];
        }
    }
    for (int64_t j = 0; j < n; j++) w[j] = keep[j] == 0.0f ? 0.0f : (float)wd[j];
}

/* In-place Cholesky A = L L^T (lower, row-major n x n); 0 when not positive definite. */
static int cholesky(double *A, int64_t n) {
    for (int64_t j = 0; j < n; j++) {
        double d = A[j * n + j];
        for (int64_t k = 0; k < j; k++) d -= A[j * n + k] * A[j * n + k];
        if (!(d > 0)) return 0;
        d = sqrt(d);
        A[j * n + j] = d;
#pragma omp parallel for schedule(static)
        for (int64_t i = j + 1; i < n; i++) {
            double s = A[i * n + j];
            for (int64_t k = 0; k < j; k++) s -= A[i * n + k] * A[j * n + k];
            A[i * n + j] = s / d;
        }
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++) A[i * n + j] = 0.0;
    return 1;
}

int slm_prune_hinv(const double *G, int64_t n, int64_t count, double damp, double *U, float *dead, slm_err *err) {
    double *A, *Li;
    SLM_TRY(slm_alloc((void **)&A, sizeof(double) * (size_t)(n * n), err, "Hessian"));
    int rc = slm_calloc((void **)&Li, (size_t)(n * n), sizeof(double), err, "Hessian inverse");
    if (rc) return slm_free(A), rc;
    const double f = count > 0 ? 2.0 / (double)count : 1.0;
    double mean = 0;
    for (int64_t i = 0; i < n * n; i++) A[i] = G[i] * f;
    for (int64_t i = 0; i < n; i++) {
        dead[i] = A[i * n + i] == 0.0;
        if (dead[i]) A[i * n + i] = 1.0;
        mean += A[i * n + i];
    }
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++) A[i * n + i] += damp * mean;
    if (!cholesky(A, n)) {
        rc = slm_errf(err, SLM_E_DATA, "the Hessian is not positive definite (raise the dampening)");
        goto done;
    }
    /* Li = L^-1 (lower), column by column */
#pragma omp parallel for schedule(dynamic, 8)
    for (int64_t c = 0; c < n; c++) {
        Li[c * n + c] = 1.0 / A[c * n + c];
        for (int64_t i = c + 1; i < n; i++) {
            double s = 0;
            for (int64_t k = c; k < i; k++) s -= A[i * n + k] * Li[k * n + c];
            Li[i * n + c] = s / A[i * n + i];
        }
    }
    /* H^-1 = Li^T Li into U, then its upper Cholesky factor: U^T U = H^-1 (via the lower one) */
#pragma omp parallel for schedule(dynamic, 8)
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j <= i; j++) {
            double s = 0;
            for (int64_t k = i; k < n; k++) s += Li[k * n + i] * Li[k * n + j];
            U[i * n + j] = U[j * n + i] = s;
        }
    if (!cholesky(U, n)) {
        rc = slm_errf(err, SLM_E_DATA, "the inverse Hessian is not positive definite (raise the dampening)");
        goto done;
    }
    /* lower L with L L^T = H^-1 -> upper U = L^T (U^T U = H^-1) */
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++) {
            U[i * n + j] = U[j * n + i];
            U[j * n + i] = 0.0;
        }
done:
    slm_free(A);
    slm_free(Li);
    return rc;
}
