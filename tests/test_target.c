/* test_target.c - the size-target allocation (quantize/target.h): never over the target, close to
 * it, least error first, the refusal when even the cheapest types do not fit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "quantize/target.h"
#include "tests/testutil.h"

enum { N = 40 };

/* N tensors of 2.6 .. 8.5 bits per weight over 1000..40000 weights; error ~ scale * 2^-2bpw */
static void make(slm_target_tensor *t) {
    static const double bpw[] = {2.625, 3.4375, 4.5, 5.5, 6.5625, 8.5};
    memset(t, 0, sizeof(*t) * N);
    for (int i = 0; i < N; i++) {
        const uint64_t nw = 1000 + (uint64_t)(i * 997) % 39000;
        const double scale = 1.0 + (i * 7) % 13;
        t[i].n_cand = 6;
        for (int c = 0; c < 6; c++) {
            t[i].types[c] = c;
            t[i].bytes[c] = (uint64_t)(bpw[c] * (double)nw / 8);
            t[i].err[c] = scale * (double)nw * __builtin_exp2(-2 * bpw[c]);
        }
    }
}

static void test_target_sizes(void **state) {
    (void)state;
    slm_target_tensor t[N];
    int ch[N], ch2[N];
    uint64_t size, size2;
    slm_err err = {0};
    make(t);
    uint64_t lo = 5000, hi = 5000;
    for (int i = 0; i < N; i++) lo += (t[i].bytes[0] + 31) / 32 * 32, hi += (t[i].bytes[5] + 31) / 32 * 32;
    for (int k = 1; k <= 9; k++) {
        const uint64_t target = lo + (hi - lo) * (uint64_t)k / 10;
        assert_int_equal(slm_target_allocate(t, N, 5000, 32, target, ch, &size, &err), SLM_OK);
        uint64_t check = 5000;
        for (int i = 0; i < N; i++) check += (t[i].bytes[ch[i]] + 31) / 32 * 32;
        assert_true(check == size);
        assert_true(size <= target);
        assert_true((double)size >= 0.995 * (double)target);
        assert_int_equal(slm_target_allocate(t, N, 5000, 32, target, ch2, &size2, &err), SLM_OK); /* deterministic */
        assert_memory_equal(ch, ch2, sizeof ch);
    }
    /* everything fits: every tensor at its best type */
    assert_int_equal(slm_target_allocate(t, N, 5000, 32, hi, ch, &size, &err), SLM_OK);
    for (int i = 0; i < N; i++) assert_int_equal(ch[i], 5);
    assert_true(size == hi);
    /* too small */
    assert_int_equal(slm_target_allocate(t, N, 5000, 32, lo - 1, ch, &size, &err), SLM_E_ARG);
    assert_non_null(strstr(err.msg, "smaller than the smallest possible file"));
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_target_sizes)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
