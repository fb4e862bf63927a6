/* test_prune.c - the row selection of unstructured pruning (prune/prune_rows.c): the k smallest
 * |w| (times Wanda's column scale) are zeroed, exactly k, ties to the lower index, the same set as
 * a full sort; N:M leaves exactly N of every M consecutive values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "prune/prune.h"

#define N 1000

typedef struct { float s; int32_t i; } ref_key;
static int cmp_ref(const void *a, const void *b) {
    const ref_key *x = a, *y = b;
    if (x->s != y->s) return x->s < y->s ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

static uint32_t rng = 12345;
static float rnd_level(void) { /* few distinct values: many ties, signs mixed, no zero */
    rng = rng * 1664525u + 1013904223u;
    int v = (int)(rng >> 24) % 9 - 4;
    return v == 0 ? 0.5f : (float)v;
}

/* Reference: zeroes the k smallest scores by a full sort (ties: lower index). */
static void ref_select(float *w, int64_t n, const float *scale, int64_t k) {
    ref_key *r = malloc(sizeof *r * (size_t)n);
    for (int64_t j = 0; j < n; j++) r[j] = (ref_key){fabsf(w[j]) * (scale ? scale[j] : 1.0f), (int32_t)j};
    qsort(r, (size_t)n, sizeof *r, cmp_ref);
    for (int64_t j = 0; j < k; j++) w[r[j].i] = 0.0f;
    free(r);
}

static void test_select_matches_sort(void **state) {
    (void)state;
    static float w[N], v[N], scale[N];
    static int32_t idx[4 * N];
    for (int with_scale = 0; with_scale < 2; with_scale++)
        for (int64_t k = 0; k <= N; k += 137) {
            for (int j = 0; j < N; j++) w[j] = v[j] = rnd_level(), scale[j] = 1.0f + (float)(j % 3);
            slm_prune_row_select(w, N, with_scale ? scale : NULL, k, 0, 0, idx);
            ref_select(v, N, with_scale ? scale : NULL, k);
            int zeros = 0;
            for (int j = 0; j < N; j++) zeros += w[j] == 0.0f;
            assert_int_equal(zeros, k);
            assert_memory_equal(w, v, sizeof w);
        }
}

static void test_wanda_scale_decides(void **state) {
    (void)state;
    float w[4] = {1, -1, 1, -1}, scale[4] = {4, 3, 2, 1};
    int32_t idx[16];
    slm_prune_row_select(w, 4, scale, 2, 0, 0, idx);
    assert_true(w[0] == 1 && w[1] == -1 && w[2] == 0 && w[3] == 0);
}

static void test_nm_groups(void **state) {
    (void)state;
    static float w[N];
    static int32_t idx[4 * N];
    const int nm[2][2] = {{2, 4}, {4, 8}};
    for (int c = 0; c < 2; c++) {
        for (int j = 0; j < N; j++) w[j] = rnd_level();
        slm_prune_row_select(w, N, NULL, 0, nm[c][0], nm[c][1], idx);
        for (int g = 0; g + nm[c][1] <= N; g += nm[c][1]) {
            int zeros = 0;
            for (int j = 0; j < nm[c][1]; j++) zeros += w[g + j] == 0.0f;
            assert_int_equal(zeros, nm[c][1] - nm[c][0]);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_select_matches_sort),
        cmocka_unit_test(test_wanda_scale_decides),
        cmocka_unit_test(test_nm_groups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
