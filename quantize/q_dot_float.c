/* q_dot_float.c - dot products of plain-float rows: F32 x F32, F16 x F16, BF16 x BF16, in the order
 * of ggml's AVX2 build (vec.cpp: ggml_vec_dot_f32, ggml_vec_dot_f16, ggml_vec_dot_bf16).
 *
 * Owns: the scalar references and the AVX2 tiles of the three types.
 * Must not: allocate, print, or reorder a float operation of the orders below.
 *
 * Order (n values, np = n rounded down to a multiple of 32): four accumulators of 8 lanes, acc[j]
 * lane l takes the values i = 32k + 8j + l in increasing k. F32 and F16: acc = fma(x, y, acc)
 * (for F16 the product of two halves is exact in float, so this is also acc + x*y); BF16:
 * acc + x*y with the product rounded first (two bf16 can underflow). Reduction of the 32 lanes:
 *   F32, F16 (GGML_F32x8_REDUCE): v = (acc0 + acc2) + (acc1 + acc3); t_i = v_i + v_{i+4};
 *            r = (t0 + t1) + (t2 + t3)
 *   BF16:    v the same; r = hsum_float_8(v) = (t0 + t2) + (t1 + t3)
 * Tail i >= np: F32 in float as GCC compiled ggml's `sumf += x[i]*y[i]` (f32_tail: r + x*y for
 * groups of 4, then fma for the last n % 4); F16 and BF16 in double: (double)r + sum of (double)(x*y), rounded to float at the end.
 * The tiles keep every lane chain, but run the four accumulators of a pair one after the other
 * (four passes over the rows): one register per (weight row, activation row) pair instead of four.
 */
#include <math.h>

#include "core/dtype.h"
#include "core/le.h"
#include "core/slm.h"
#include "quantize/q_dot_impl.h"

/* F32's tail as GCC compiled ggml's `sumf += x[i]*y[i]` in the AVX2 build: groups of 4 values
   vectorized (product rounded, then added in order), the last n % 4 contracted to fma. */
static float f32_tail(float r, const uint8_t *restrict x, const uint8_t *restrict y, int64_t np, int64_t n) {
    const int64_t n4 = np + ((n - np) & ~(int64_t)3);
    int64_t k = np;
    for (; k < n4; k++) r = r + slm_le_f32(x + 4 * k) * slm_le_f32(y + 4 * k);
    for (; k < n; k++) r = fmaf(slm_le_f32(x + 4 * k), slm_le_f32(y + 4 * k), r);
    return r;
}

/* The reduction of F32/F16 (t as above). */
static float reduce_hadd(float acc[4][8]) {
    float v[8];
    for (int l = 0; l < 8; l++) v[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
    const float t0 = v[0] + v[4], t1 = v[1] + v[5], t2 = v[2] + v[6], t3 = v[3] + v[7];
    return (t0 + t1) + (t2 + t3);
}

void slm_vec_dot_f32_f32_ref(int64_t n, float *restrict s, const void *restrict vw, const void *restrict va) {
    const uint8_t *x = vw, *y = va;
    const int64_t np = n & ~(int64_t)31;
    float acc[4][8] = {{0}};
    for (int64_t i = 0; i < np; i += 32)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 8; l++) {
                const int64_t k = i + 8 * j + l;
                acc[j][l] = fmaf(slm_le_f32(x + 4 * k), slm_le_f32(y + 4 * k), acc[j][l]);
            }
    *s = f32_tail(reduce_hadd(acc), x, y, np, n);
}

void slm_vec_dot_f16_f16_ref(int64_t n, float *restrict s, const void *restrict vw, const void *restrict va) {
    const uint8_t *x = vw, *y = va;
    const int64_t np = n & ~(int64_t)31;
    float acc[4][8] = {{0}};
    for (int64_t i = 0; i < np; i += 32)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 8; l++) {
                const int64_t k = i + 8 * j + l;
                acc[j][l] += slm_f16(slm_le_u16(x + 2 * k)) * slm_f16(slm_le_u16(y + 2 * k)); /* exact product */
            }
    double r = reduce_hadd(acc);
    for (int64_t k = np; k < n; k++) r += (double)(slm_f16(slm_le_u16(x + 2 * k)) * slm_f16(slm_le_u16(y + 2 * k)));
    *s = (float)r;
}

void slm_vec_dot_bf16_bf16_ref(int64_t n, float *restrict s, const void *restrict vw, const void *restrict va) {
    const uint8_t *x = vw, *y = va;
    const int64_t np = n & ~(int64_t)31;
    float acc[4][8] = {{0}};
    for (int64_t i = 0; i < np; i += 32)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 8; l++) {
                const int64_t k = i + 8 * j + l;
                acc[j][l] = acc[j][l] + slm_bf16_to_f32(slm_le_u16(x + 2 * k)) * slm_bf16_to_f32(slm_le_u16(y + 2 * k));
            }
    float v[8];
    for (int l = 0; l < 8; l++) v[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
    double r = slm_hsum8(v);
    for (int64_t k = np; k < n; k++)
        r += (double)(slm_bf16_to_f32(slm_le_u16(x + 2 * k)) * slm_bf16_to_f32(slm_le_u16(y + 2 * k)));
    *s = (float)r;
}

/* ============================================================================= AVX2 tiles */
#if SLM_X86_KERNELS

#define NR 4
#define NC 3

enum { KIND_F32, KIND_F16, KIND_BF16 };

/* 8 values at element k of a row as floats. */
SLM_DOT_INLINE __m256 load8(const int kind, const uint8_t *restrict p, int64_t k) {
    if (kind == KIND_F32) return _mm256_loadu_ps((const float *)(const void *)(p + 4 * k));
    const __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(p + 2 * k));
    if (kind == KIND_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

SLM_DOT_INLINE float reduce_x8(const int kind, const __m256 acc[4]) {
    const __m256 v = _mm256_add_ps(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[1], acc[3]));
    if (kind == KIND_BF16) return slm_hsum8_x8(v);
    const __m128 t0 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 t1 = _mm_hadd_ps(t0, t0);
    return _mm_cvtss_f32(_mm_hadd_ps(t1, t1));
}

/* The tail and the final rounding of one pair (see the file header). */
static float finish(int kind, float r, const uint8_t *restrict x, const uint8_t *restrict y, int64_t np, int64_t n) {
    if (kind == KIND_F32) return f32_tail(r, x, y, np, n);
    double d = r;
    for (int64_t k = np; k < n; k++) {
        const uint16_t a = slm_le_u16(x + 2 * k), b = slm_le_u16(y + 2 * k);
        d += kind == KIND_F16 ? (double)(slm_f16(a) * slm_f16(b)) : (double)(slm_bf16_to_f32(a) * slm_bf16_to_f32(b));
    }
    return (float)d;
}

/* Values per chunk of the passes: 4 rows x 3 rows x 512 values stay in L1 (F32: 28 KB). */
#define KC 512

/* R weight rows x C activation rows. The row is cut into chunks of KC values; in each chunk,
 * pass j continues the chains of acc[j] of every pair (their state kept in `part` between
 * chunks), so one register per pair suffices and each chunk is read from L1. */
SLM_DOT_INLINE void float_micro(const int kind, const int R, const int C, int64_t n, float *restrict out, size_t ld,
                                const uint8_t *restrict w, size_t wb, const uint8_t *restrict a, size_t ab) {
    const int64_t np = n & ~(int64_t)31;
    __m256 part[4][SLM_TILE_MAX_R][SLM_TILE_MAX_C];
    for (int j = 0; j < 4; j++)
        for (int r = 0; r < R; r++)
            for (int c = 0; c < C; c++) part[j][r][c] = _mm256_setzero_ps();
    /* passes run P at a time, so that small tiles still have >= 4 independent fma chains */
    const int P = R * C <= 2 ? 4 : R * C <= 6 ? 2 : 1;
    const size_t esize = kind == KIND_F32 ? 4 : 2;
    for (int64_t k0 = 0; k0 < np; k0 += KC) {
        const int64_t k1 = np - k0 < KC ? np : k0 + KC;
        for (int j0 = 0; j0 < 4; j0 += P) {
            __m256 acc[4][SLM_TILE_MAX_R][SLM_TILE_MAX_C];
#pragma GCC unroll 4
            for (int j = 0; j < P; j++)
#pragma GCC unroll 4
                for (int r = 0; r < R; r++)
#pragma GCC unroll 4
                    for (int c = 0; c < C; c++) acc[j][r][c] = part[j0 + j][r][c];
            for (int64_t i = k0 + 8 * j0; i < k1; i += 32) {
                if (C == 1 && P == 4) /* one token: the weights stream from memory */
#pragma GCC unroll 4
                    for (int r = 0; r < R; r++) slm_prefetch_ahead(w + (size_t)r * wb + (size_t)i * esize, 32 * esize);
#pragma GCC unroll 4
                for (int j = 0; j < P; j++) {
                    __m256 y[SLM_TILE_MAX_C];
#pragma GCC unroll 4
                    for (int c = 0; c < C; c++) y[c] = load8(kind, a + (size_t)c * ab, i + 8 * j);
#pragma GCC unroll 4
                    for (int r = 0; r < R; r++) {
                        const __m256 x = load8(kind, w + (size_t)r * wb, i + 8 * j);
#pragma GCC unroll 4
                        for (int c = 0; c < C; c++)
                            acc[j][r][c] = kind == KIND_BF16 ? _mm256_add_ps(acc[j][r][c], _mm256_mul_ps(x, y[c]))
                                                             : _mm256_fmadd_ps(x, y[c], acc[j][r][c]);
                    }
                }
            }
#pragma GCC unroll 4
            for (int j = 0; j < P; j++)
#pragma GCC unroll 4
                for (int r = 0; r < R; r++)
#pragma GCC unroll 4
                    for (int c = 0; c < C; c++) part[j0 + j][r][c] = acc[j][r][c];
        }
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            const __m256 p4[4] = {part[0][r][c], part[1][r][c], part[2][r][c], part[3][r][c]};
            out[(size_t)c * ld + r] = finish(kind, reduce_x8(kind, p4), w + (size_t)r * wb, a + (size_t)c * ab, np, n);
        }
}

/* The four tile shapes of a type, each with constant bounds. */
SLM_DOT_INLINE void float_shapes(const int kind, int R, int C, int64_t n, float *restrict out, size_t ld,
                                 const uint8_t *restrict w, size_t wb, const uint8_t *restrict a, size_t ab) {
    if (R == NR && C == NC) float_micro(kind, NR, NC, n, out, ld, w, wb, a, ab);
    else if (R == NR) float_micro(kind, NR, 1, n, out, ld, w, wb, a, ab);
    else if (C == NC) float_micro(kind, 1, NC, n, out, ld, w, wb, a, ab);
    else float_micro(kind, 1, 1, n, out, ld, w, wb, a, ab);
}

static SLM_DOT_AVX2 void micro_f32(int R, int C, int64_t n, float *restrict out, size_t ld, const uint8_t *restrict w,
                                   size_t wb, const uint8_t *restrict a, size_t ab) {
    float_shapes(KIND_F32, R, C, n, out, ld, w, wb, a, ab);
}
static SLM_DOT_AVX2 void micro_f16(int R, int C, int64_t n, float *restrict out, size_t ld, const uint8_t *restrict w,
                                   size_t wb, const uint8_t *restrict a, size_t ab) {
    float_shapes(KIND_F16, R, C, n, out, ld, w, wb, a, ab);
}
static SLM_DOT_AVX2 void micro_bf16(int R, int C, int64_t n, float *restrict out, size_t ld, const uint8_t *restrict w,
                                   size_t wb, const uint8_t *restrict a, size_t ab) {
    float_shapes(KIND_BF16, R, C, n, out, ld, w, wb, a, ab);
}

static void tile_f32(int64_t n, int nr, int nc, float *restrict out, size_t ld_out, const void *restrict w,
                           size_t w_row_bytes, const void *restrict a, size_t a_row_bytes) {
    slm_tile_drive(NR, NC, micro_f32, n, nr, nc, out, ld_out, w, w_row_bytes, a, a_row_bytes);
}
const slm_dot_avx2 slm_dot_avx2_f32 = {tile_f32, NR, NC};

static void tile_f16(int64_t n, int nr, int nc, float *restrict out, size_t ld_out, const void *restrict w,
                           size_t w_row_bytes, const void *restrict a, size_t a_row_bytes) {
    slm_tile_drive(NR, NC, micro_f16, n, nr, nc, out, ld_out, w, w_row_bytes, a, a_row_bytes);
}
const slm_dot_avx2 slm_dot_avx2_f16 = {tile_f16, NR, NC};

static void tile_bf16(int64_t n, int nr, int nc, float *restrict out, size_t ld_out, const void *restrict w,
                            size_t w_row_bytes, const void *restrict a, size_t a_row_bytes) {
    slm_tile_drive(NR, NC, micro_bf16, n, nr, nc, out, ld_out, w, w_row_bytes, a, a_row_bytes);
}
const slm_dot_avx2 slm_dot_avx2_bf16 = {tile_bf16, NR, NC};

/* ------------------------------------------------- AVX-512: the same chains, two per register */

/* A zmm holds the chains acc[2h] and acc[2h + 1] of a pair (lanes 0-7 and 8-15: the values
 * 32k + 16h .. 32k + 16h + 15, contiguous), so pass h of the 512-bit tile does passes 2h and
 * 2h + 1 of the 256-bit one, lane for lane; the reduction takes the halves apart. */
#define SLM_DOT_AVX512F __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw")))
#define ZINLINE static inline __attribute__((always_inline)) SLM_DOT_AVX512F
#define ZR 4
#define ZC 4
#define ZKC 2048 /* values per chunk (F32: half): the 8 rows' chunks, 32 KiB, stay in L1 */

ZINLINE __m512 load16(const int kind, const uint8_t *restrict p, int64_t k) {
    if (kind == KIND_F32) return _mm512_loadu_ps((const void *)(p + 4 * k));
    const __m256i h = _mm256_loadu_si256((const __m256i *)(const void *)(p + 2 * k));
    if (kind == KIND_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

ZINLINE void zfloat_micro(const int kind, const int R, const int C, int64_t n, float *restrict out, size_t ld,
                          const uint8_t *restrict w, size_t wb, const uint8_t *restrict a, size_t ab) {
    const int64_t np = n & ~(int64_t)31;
    __m512 part[2][SLM_TILE_MAX_R][SLM_TILE_MAX_C];
    for (int h = 0; h < 2; h++)
        for (int r = 0; r < R; r++)
            for (int c = 0; c < C; c++) part[h][r][c] = _mm512_setzero_ps();
    const int P = R * C <= 4 ? 2 : 1; /* at least 4 independent chains where the tile is small */
    const int64_t kc = kind == KIND_F32 ? ZKC / 2 : ZKC;
    const size_t esize = kind == KIND_F32 ? 4 : 2;
    for (int64_t k0 = 0; k0 < np; k0 += kc) {
        const int64_t k1 = np - k0 < kc ? np : k0 + kc;
        for (int h0 = 0; h0 < 2; h0 += P) {
            __m512 acc[2][SLM_TILE_MAX_R][SLM_TILE_MAX_C];
#pragma GCC unroll 2
            for (int h = 0; h < P; h++)
#pragma GCC unroll 4
                for (int r = 0; r < R; r++)
#pragma GCC unroll 4
                    for (int c = 0; c < C; c++) acc[h][r][c] = part[h0 + h][r][c];
            for (int64_t i = k0 + 16 * h0; i < k1; i += 32) {
                if (C == 1) /* one token: the weights stream from memory */
#pragma GCC unroll 4
                    for (int r = 0; r < R; r++) slm_prefetch_ahead(w + (size_t)r * wb + (size_t)i * esize, 32 * esize);
#pragma GCC unroll 2
                for (int h = 0; h < P; h++) {
                    __m512 y[SLM_TILE_MAX_C];
#pragma GCC unroll 4
                    for (int c = 0; c < C; c++) y[c] = load16(kind, a + (size_t)c * ab, i + 16 * h);
#pragma GCC unroll 4
                    for (int r = 0; r < R; r++) {
                        const __m512 x = load16(kind, w + (size_t)r * wb, i + 16 * h);
#pragma GCC unroll 4
                        for (int c = 0; c < C; c++)
                            acc[h][r][c] = kind == KIND_BF16 ? _mm512_add_ps(acc[h][r][c], _mm512_mul_ps(x, y[c]))
                                                             : _mm512_fmadd_ps(x, y[c], acc[h][r][c]);
                    }
                }
            }
#pragma GCC unroll 2
            for (int h = 0; h < P; h++)
#pragma GCC unroll 4
                for (int r = 0; r < R; r++)
#pragma GCC unroll 4
                    for (int c = 0; c < C; c++) part[h0 + h][r][c] = acc[h][r][c];
        }
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            const __m256 p4[4] = {_mm512_castps512_ps256(part[0][r][c]),
                                  _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(part[0][r][c]), 1)),
                                  _mm512_castps512_ps256(part[1][r][c]),
                                  _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(part[1][r][c]), 1))};
            out[(size_t)c * ld + r] = finish(kind, reduce_x8(kind, p4), w + (size_t)r * wb, a + (size_t)c * ab, np, n);
        }
}

#define ZFLOAT(t, KIND)                                                                                                  \
    static SLM_DOT_AVX512F void zmicro_##t(int R, int C, int64_t n, float *restrict out, size_t ld,                     \
                                           const uint8_t *restrict w, size_t wb, const uint8_t *restrict a, size_t ab) { \
        if (R == ZR && C == ZC) zfloat_micro(KIND, ZR, ZC, n, out, ld, w, wb, a, ab);                                    \
        else if (R == ZR) zfloat_micro(KIND, ZR, 1, n, out, ld, w, wb, a, ab);                                           \
        else if (C == ZC) zfloat_micro(KIND, 1, ZC, n, out, ld, w, wb, a, ab);                                           \
        else zfloat_micro(KIND, 1, 1, n, out, ld, w, wb, a, ab);                                                         \
    }                                                                                                                    \
    SLM_DOT_TILE_FN(ztile_##t, zmicro_##t, ZR, ZC) \
    const slm_dot_avx2 slm_dot_avx512_##t = {ztile_##t, ZR, ZC};
ZFLOAT(f32, KIND_F32)
ZFLOAT(f16, KIND_F16)
ZFLOAT(bf16, KIND_BF16)

#endif /* SLM_X86_KERNELS */
