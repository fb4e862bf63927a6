/* layer_simd.h - what the layer kernels share (internal to model/, not an API): the AVX2+FMA
 * switch, the exp polynomial's constants and its 8-lane twin, horizontal reductions.
 * Must not: be included outside model/layer_*.c and model/ggml_numerics.c.
 */
#ifndef SLM_LAYER_SIMD_H
#define SLM_LAYER_SIMD_H

#include <math.h>
#include <string.h>

#include "model/layers.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define SLM_HAVE_AVX2_KERNELS 1
#define AVX2 __attribute__((target("avx2,fma")))
#define AVX512 __attribute__((target("avx2,fma,avx512f")))
#else
#define SLM_HAVE_AVX2_KERNELS 0
#endif

/* The largest head dim the attention kernels keep on the stack (Llama-family models use <= 256). */
#define MAX_HEAD_DIM 512

static inline int min_i(int a, int b) { return a < b ? a : b; }

/* ---------------------------------------------------------------------------------------------
 * exp: Cephes expf. x = n ln2 + r, |r| <= ln2/2; e^r ~ 1 + r + r^2 P(r); times 2^n.
 * Every step is one IEEE operation (fmaf where written), so the AVX2 lanes give the same bits. */

#define EXP_HI 88.3762626647949f
#define EXP_LO (-87.3365447504019f) /* below: 0 (2^-126 and smaller are not needed by softmax) */
#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693359375f
#define LN2_LO (-2.12194440e-4f)
#define EXP_P0 1.9875691500E-4f
#define EXP_P1 1.3981999507E-3f
#define EXP_P2 8.3334519073E-3f
#define EXP_P3 4.1665795894E-2f
#define EXP_P4 1.6666665459E-1f
#define EXP_P5 5.0000001201E-1f

#if SLM_HAVE_AVX2_KERNELS
static inline AVX2 __m256 expf_avx2(__m256 x) {
    const __m256 lo = _mm256_set1_ps(EXP_LO), hi = _mm256_set1_ps(EXP_HI);
    __m256 ok = _mm256_cmp_ps(x, lo, _CMP_GE_OQ);    /* false for NaN, -inf, tiny */
    __m256 big = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
    __m256 isnan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi); /* keep the lanes we discard finite */
    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LN2_HI), xc);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LN2_LO), r);
    __m256 p = _mm256_set1_ps(EXP_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P5));
    __m256 y = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r);
    y = _mm256_add_ps(y, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
    y = _mm256_and_ps(y, ok);                                      /* x < EXP_LO -> 0 */
    y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), big);        /* x > EXP_HI -> inf */
    return _mm256_blendv_ps(y, x, isnan);                          /* NaN -> NaN */
}
#endif

#endif
