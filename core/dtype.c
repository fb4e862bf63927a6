/* dtype.c - half-precision conversions.
 *
 * The conversions reproduce ggml's software implementation bit for bit (the golden F16/BF16
 * vectors and all 65536 16-bit patterns are tested): f32->f16 rounds to nearest even,
 * overflows to Inf from 65520 up, maps every NaN to sign|0x7E00; f16->f32 is exact and quiets
 * NaNs keeping the payload; f32->bf16 rounds to nearest even with NaN -> upper bits | 0x40.
 */
#include "dtype.h"

#include <math.h>
#include <string.h>

#include "cpu.h"
#include "le.h"
#include "slm.h"

static inline uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

uint16_t slm_f32_to_f16(float f) {
    const uint32_t x = f32_bits(f);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    const uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return sign | 0x7e00u;          /* NaN: payload dropped */
    if (ax >= 0x477ff000u) return sign | 0x7c00u;         /* >= 65520 (and Inf): Inf */
    if (ax >= 0x38800000u) {                              /* normal f16 (>= 2^-14) */
        uint32_t r = ax - 0x38000000u;                    /* rebias exponent 127 -> 15 */
        r += 0x0fffu + ((r >> 13) & 1u);                  /* round to nearest even on 13 bits */
        return sign | (uint16_t)(r >> 13);
    }
    if (ax <= 0x33000000u) return sign;                   /* <= 2^-25 rounds (even) to 0 */
    const uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - e;                       /* value / 2^-24 = m >> shift */
    const uint32_t r = m + ((1u << (shift - 1)) - 1u) + ((m >> shift) & 1u);
    return sign | (uint16_t)(r >> shift);
}

float slm_f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1f) return bits_f32(sign | 0x7f800000u | (m ? 0x400000u | (m << 13) : 0)); /* Inf/NaN (quiet) */
    if (e == 0) {
        /* zero or subnormal: m * 2^-24, exact in f32 */
        float v = (float)m * 0x1p-24f;
        return bits_f32(sign | f32_bits(v));
    }
    return bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

uint16_t slm_f32_to_bf16(float f) {
    const uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 64u); /* quiet NaN */
    return (uint16_t)((x + (0x7fffu + ((x >> 16) & 1u))) >> 16);
}

float slm_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* F16C converts exactly like the scalar path, NaNs included (quieted, payload kept). */
__attribute__((target("avx,f16c"))) static void f16_to_f32_f16c(float *restrict dst, const uint8_t *restrict s, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + 2 * i))));
    for (; i < n; i++) dst[i] = slm_f16_to_f32(slm_le_u16(s + 2 * i));
}
#endif

void slm_f16_to_f32_row(float *restrict dst, const void *restrict src, int64_t n) {
    const uint8_t *s = src;
#if defined(__x86_64__) && defined(__GNUC__)
    if (slm_cpu_has_avx2()) { /* every AVX2 CPU has F16C */
        f16_to_f32_f16c(dst, s, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) dst[i] = slm_f16_to_f32(slm_le_u16(s + 2 * i));
}

void slm_f16_to_f32_row_ref(float *restrict dst, const void *restrict src, int64_t n) {
    const uint8_t *s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = slm_f16_to_f32(slm_le_u16(s + 2 * i));
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2"))) static void bf16_to_f32_avx2(float *restrict dst, const uint8_t *restrict s, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(s + 2 * i)));
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_slli_epi32(w, 16));
    }
    for (; i < n; i++) dst[i] = slm_bf16_to_f32(slm_le_u16(s + 2 * i));
}

/* F16C rounds to nearest even like the scalar path; NaNs differ (F16C keeps the payload), so a
   group of 8 holding one goes through the scalar path. */
__attribute__((target("avx,f16c"))) static void f32_to_f16_f16c(uint8_t *restrict d, const float *restrict src, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(src + i);
        if (_mm256_movemask_ps(_mm256_cmp_ps(x, x, _CMP_UNORD_Q))) {
            for (int k = 0; k < 8; k++) slm_st_u16(d + 2 * (i + k), slm_f32_to_f16(src[i + k]));
            continue;
        }
        _mm_storeu_si128((__m128i *)(d + 2 * i), _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    for (; i < n; i++) slm_st_u16(d + 2 * i, slm_f32_to_f16(src[i]));
}
#endif

void slm_bf16_to_f32_row(float *restrict dst, const void *restrict src, int64_t n) {
    const uint8_t *s = src;
#if defined(__x86_64__) && defined(__GNUC__)
    if (slm_cpu_has_avx2()) {
        bf16_to_f32_avx2(dst, s, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) dst[i] = slm_bf16_to_f32(slm_le_u16(s + 2 * i));
}

void slm_f32_to_f16_row(void *restrict dst, const float *restrict src, int64_t n) {
    uint8_t *d = dst;
#if defined(__x86_64__) && defined(__GNUC__)
    if (slm_cpu_has_avx2()) { /* every AVX2 CPU has F16C */
        f32_to_f16_f16c(d, src, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) slm_st_u16(d + 2 * i, slm_f32_to_f16(src[i]));
}

void slm_f32_to_f16_row_ref(void *restrict dst, const float *restrict src, int64_t n) {
    uint8_t *d = dst;
    for (int64_t i = 0; i < n; i++) slm_st_u16(d + 2 * i, slm_f32_to_f16(src[i]));
}

void slm_f32_to_bf16_row(void *restrict dst, const float *restrict src, int64_t n) {
    uint8_t *d = dst;
    for (int64_t i = 0; i < n; i++) slm_st_u16(d + 2 * i, slm_f32_to_bf16(src[i]));
}

int64_t slm_first_nonfinite(const float *x, int64_t n) {
    /* blocks of 64 scanned without a branch (the compiler vectorises the exponent test); a block
       with a hit is rescanned for the index */
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        uint32_t hit = 0;
        for (int j = 0; j < 64; j++) {
            uint32_t u;
            memcpy(&u, x + i + j, 4);
            hit |= (uint32_t)((u & 0x7f800000u) == 0x7f800000u);
        }
        if (hit) break;
    }
    for (; i < n; i++)
        if (!isfinite(x[i])) return i;
    return -1;
}

void slm_f32_copy_row(float *restrict dst, const void *restrict src, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}
