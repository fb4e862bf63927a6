/* slm.h - project basics shared by every module: assertions, array length, host checks.
 *
 * Owns: SLM_ASSERT (always on, for our own bugs only), SLM_ARRAY_LEN, SLM_UNUSED and the
 * compile-time checks that the host is a little-endian machine with 8-bit bytes.
 * Must not: include any other slm header, or be used to check anything read from a file.
 */
#ifndef SLM_SLM_H
#define SLM_SLM_H

#include <assert.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define SLM_VERSION "0.1.0"

/* A broken invariant of our own code: print where and abort. Never for user input. */
#define SLM_ASSERT(cond)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "slm: internal error: %s:%d: assertion '%s' failed\n",        \
                    __FILE__, __LINE__, #cond);                                           \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

#define SLM_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define SLM_UNUSED(x) ((void)(x))
#define SLM_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SLM_MAX(a, b) ((a) > (b) ? (a) : (b))

static_assert(CHAR_BIT == 8, "slm needs 8-bit bytes");
static_assert(sizeof(float) == 4 && sizeof(double) == 8, "slm needs IEEE float/double");
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "slm reads and writes little-endian files through le.h and assumes a little-endian host"
#endif

/* a*b without overflow; returns 1 when the product fits. Every size product goes through these. */
static inline int slm_mul_ok(size_t a, size_t b, size_t *out) { return !__builtin_mul_overflow(a, b, out); }
static inline int slm_add_ok(size_t a, size_t b, size_t *out) { return !__builtin_add_overflow(a, b, out); }
static inline int slm_mul_i64_ok(int64_t a, int64_t b, int64_t *out) { return !__builtin_mul_overflow(a, b, out); }

static inline size_t slm_pad(size_t x, size_t align) { return (x + align - 1) / align * align; }

/* d as an integer in [lo, hi]: 1 and *out when d is integral and in range, else 0 (NaN and
   infinities included). The range check comes before the conversion: converting a double
   outside int64_t's range to an integer is undefined behaviour (JSON numbers from files). */
static inline int slm_f64_to_i64(double d, int64_t lo, int64_t hi, int64_t *out) {
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) return 0; /* [-2^63, 2^63) */
    int64_t x = (int64_t)d;
    if ((double)x != d || x < lo || x > hi) return 0;
    *out = x;
    return 1;
}

#endif
