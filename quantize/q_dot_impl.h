/* q_dot_impl.h - internals shared by the dot-product kernels q_dot*.c; not an API (nothing outside
 * quantize/ includes it).
 *
 * Owns: the per-type kernel entry points the dispatcher (q_dot.c) calls (scalar reference and
 * AVX2 tile of each weight type), the "lanes" ggml's x86 kernels accumulate in and their
 * horizontal sums, written once in scalar C and once with intrinsics, and the micro-tile driver.
 * Must not: allocate, print, or reorder a float operation of the order documented below.
 *
 * The order (ggml's AVX2 vec_dot, arch/x86/quants.c of llama.cpp v0.5.0): a quantized dot product
 * is a sum of int32 "lanes" per block: lane m of a 32-value group holds the exact integer sum of
 * the products of its values 4m .. 4m+3 (maddubs then madd), times integer sub-block scales;
 * each lane is converted to float (exact: |lane| < 2^24 for every type) and accumulated across
 * blocks as acc[m] = fmaf(d, lane[m], acc[m]) with d the block's float scale product; at the end
 * the 8 lanes are summed in ggml's tree (hsum_float_8). Integer parts are exact, so any code that
 * produces the same lanes gives the same floats: the scalar references below build the lanes
 * value by value, the AVX2 tiles with ggml's instructions, and both equal ggml's kernel bit for
 * bit (bench/dot_kernels.c compares against libggml-cpu). Activations must come from the type
 * table's from_float (|q| <= 127: ggml's x86 kernels negate activations with _mm256_sign_epi8,
 * which leaves -128 as -128).
 */
#ifndef SLM_Q_DOT_IMPL_H
#define SLM_Q_DOT_IMPL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/dtype.h"
#include "core/le.h"
#include "quantize/quants.h"

/* ---------------------------------------------------------------- kernels per weight type */

/* *s = dot(weight row w, activation row a) of n values, scalar reference (canonical). */
typedef void (*slm_dot_ref_fn)(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
/* out[c * ld_out + r] = dot(w row r, a row c) for r < nr, c < nc; the AVX2 path. Rows are
 * w_row_bytes / a_row_bytes apart. Every element equals the reference bit for bit. */
typedef void (*slm_dot_tile_fn)(int64_t n, int nr, int nc, float *restrict out, size_t ld_out, const void *restrict w,
                                size_t w_row_bytes, const void *restrict a, size_t a_row_bytes);

void slm_vec_dot_f32_f32_ref(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_f16_f16_ref(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_bf16_bf16_ref(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_q4_0_q8_0_ref(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_q4_1_q8_1_ref(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_q5_0_q8_0_ref(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_q5_1_q8_1_ref(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_q8_0_q8_0_ref(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_iq4_nl_q8_0_ref(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_q2_K_q8_K_ref(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_q3_K_q8_K_ref(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_q4_K_q8_K_ref(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_q5_K_q8_K_ref(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_q6_K_q8_K_ref(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_iq4_xs_q8_K_ref(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_iq2_xxs_q8_K_ref(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_iq2_xs_q8_K_ref(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_iq2_s_q8_K_ref(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_iq3_xxs_q8_K_ref(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_iq3_s_q8_K_ref(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_iq1_s_q8_K_ref(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_iq1_m_q8_K_ref(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);

#if SLM_X86_KERNELS
/* The AVX2 path of a weight type: its tile function and register tile (weight rows x activation
   rows; the function covers any nr x nc with it). */
typedef struct slm_dot_avx2 {
    slm_dot_tile_fn tile;
    int rows, cols;
} slm_dot_avx2;
extern const slm_dot_avx2 slm_dot_avx2_f32;
extern const slm_dot_avx2 slm_dot_avx2_f16;
extern const slm_dot_avx2 slm_dot_avx2_bf16;
extern const slm_dot_avx2 slm_dot_avx2_q4_0;
extern const slm_dot_avx2 slm_dot_avx2_q4_1;
extern const slm_dot_avx2 slm_dot_avx2_q5_0;
extern const slm_dot_avx2 slm_dot_avx2_q5_1;
extern const slm_dot_avx2 slm_dot_avx2_q8_0;
extern const slm_dot_avx2 slm_dot_avx2_iq4_nl;
extern const slm_dot_avx2 slm_dot_avx2_q2_K;
extern const slm_dot_avx2 slm_dot_avx2_q3_K;
extern const slm_dot_avx2 slm_dot_avx2_q4_K;
extern const slm_dot_avx2 slm_dot_avx2_q5_K;
extern const slm_dot_avx2 slm_dot_avx2_q6_K;
extern const slm_dot_avx2 slm_dot_avx2_iq4_xs;
extern const slm_dot_avx2 slm_dot_avx2_iq2_xxs;
extern const slm_dot_avx2 slm_dot_avx2_iq2_xs;
extern const slm_dot_avx2 slm_dot_avx2_iq2_s;
extern const slm_dot_avx2 slm_dot_avx2_iq3_xxs;
extern const slm_dot_avx2 slm_dot_avx2_iq3_s;
extern const slm_dot_avx2 slm_dot_avx2_iq1_s;
extern const slm_dot_avx2 slm_dot_avx2_iq1_m;
/* The same products on CPUs with AVX-512VL, BW and VNNI (q_dot_q8k.c): 32 registers hold a 4 x 4
   tile and vpdpwssd fuses each lane sum's multiply and add; F32/F16/BF16, Q4_0/Q4_1/Q5_0/Q5_1/Q8_0
   and Q4_K/Q5_K/Q6_K put two of ggml's 256-bit lane groups in each 512-bit register, the others
   keep 256-bit vectors;
   same bits. NULL where a type has none. */
extern const slm_dot_avx2 *const slm_dot_avx512[SLM_DTYPE_COUNT];
extern const slm_dot_avx2 slm_dot_avx512_f32, slm_dot_avx512_f16, slm_dot_avx512_bf16; /* q_dot_float.c */
extern const slm_dot_avx2 slm_dot_avx512_q4_0, slm_dot_avx512_q4_1, slm_dot_avx512_q5_0, slm_dot_avx512_q5_1,
    slm_dot_avx512_q8_0; /* q_dot_legacy.c */
#endif

/* 1 when the AVX2 tiles may run: an x86-64 GCC/clang build on a CPU with AVX2, FMA and F16C. */
int slm_dot_cpu_ok(void);
/* 1 when the slm_dot_avx512 tiles may run too (AVX-512 F, VL, BW and VNNI). */
int slm_dot_cpu_avx512(void);

/* ------------------------------------------------------------------- scalar lane helpers */

/* Lane of value v inside its 32-value group. */
#define SLM_LANE(v) (((v) >> 2) & 7)

/* acc[m] = fmaf(d, lane[m], acc[m]): _mm256_fmadd_ps(set1(d), cvtepi32_ps(lane), acc). */
static inline void slm_lanes_fma(float acc[8], float d, const int32_t lane[8]) {
    for (int m = 0; m < 8; m++) acc[m] = fmaf(d, (float)lane[m], acc[m]);
}

/* ggml's hsum_float_8: ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)). */
static inline float slm_hsum8(const float a[8]) {
    return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

static inline float slm_f16(uint16_t h) { return slm_f16_to_f32(h); }

/* -------------------------------------------------------------------- AVX2 helpers and tile */

#if SLM_X86_KERNELS
#include <immintrin.h>

#define SLM_DOT_AVX2 __attribute__((target("avx2,fma,f16c")))
#define SLM_DOT_INLINE static inline __attribute__((always_inline)) SLM_DOT_AVX2

/* The largest micro-tile any kernel uses (fixed-size accumulator arrays, no VLAs). */
#define SLM_TILE_MAX_R 4
#define SLM_TILE_MAX_C 4

/* Pins a running sum to a register at this point: GCC otherwise sinks a chain of integer adds to
   its use (legal, as integer adds associate), keeping every product alive and spilling them. */
#define SLM_KEEP_IN_REGISTER(v) __asm__("" : "+v"(v)) /* "v": ymm16-31 too where AVX-512VL is on */

/* Decoding one token streams every weight once from memory: a matrix-vector product waits on
   DRAM unless the lines SLM_PREFETCH_AHEAD bytes past the block being read are requested now
   (measured on the 1B Q4_K_M model, 2 threads: 1 KiB ahead 31 tok/s, 9 KiB 45, 16-20 KiB 43-46, 36 KiB 41). */
#define SLM_PREFETCH_AHEAD 18432
SLM_DOT_INLINE void slm_prefetch_ahead(const uint8_t *p, size_t bytes) {
    for (size_t o = 0; o < bytes; o += 64) _mm_prefetch((const char *)(p + SLM_PREFETCH_AHEAD + o), _MM_HINT_T0);
}

SLM_DOT_INLINE float slm_hsum8_x8(__m256 x) {
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(x, 1), _mm256_castps256_ps128(x));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

SLM_DOT_INLINE float slm_f16_x86(uint16_t h) { return _cvtsh_ss(h); }

/* ggml's mul_sum_i8_pairs_float (no VNNI): lanes of sum over 4 bytes of x*y, as floats. */
SLM_DOT_INLINE __m256i slm_mul_sum_i8_pairs(__m256i x, __m256i y) {
    const __m256i dot = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
    return _mm256_madd_epi16(_mm256_set1_epi16(1), dot);
}
/* The same with |x| precomputed (ax = sign(x, x)): one weight row against many activations. */
SLM_DOT_INLINE __m256i slm_mul_sum_i8_pairs_ax(__m256i ax, __m256i x, __m256i y) {
    return _mm256_madd_epi16(_mm256_set1_epi16(1), _mm256_maddubs_epi16(ax, _mm256_sign_epi8(y, x)));
}
/* ggml's mul_sum_us8_pairs_float: x unsigned bytes (< 128 here), y signed. */
SLM_DOT_INLINE __m256i slm_mul_sum_us8_pairs(__m256i x, __m256i y) {
    return _mm256_madd_epi16(_mm256_set1_epi16(1), _mm256_maddubs_epi16(x, y));
}

/* A micro-kernel computes an R x C block of out from the rows at w and a (row strides wb, ab),
 * for (R, C) in {NR, 1} x {NC, 1}: each kernel is one function whose body is an always_inline
 * routine called with constant shapes, so every shape compiles with constant loop bounds and its
 * accumulators in registers. */
typedef void (*slm_micro_fn)(int R, int C, int64_t n, float *restrict out, size_t ld, const uint8_t *restrict w,
                             size_t wb, const uint8_t *restrict a, size_t ab);

/* Covers nr x nc with NR x NC tiles, then a last column strip (NR x 1), a last row strip (1 x NC)
 * and the corner (1 x 1). Activation rows outer: the NC activation rows of a tile stay in L1 while
 * the nr weight rows stream past (callers pass groups of a few dozen rows, which stay in L1/L2
 * across the column tiles). */
static inline void slm_tile_drive(int NR, int NC, slm_micro_fn micro, int64_t n, int nr, int nc, float *restrict out,
                                  size_t ld, const void *restrict w, size_t wb, const void *restrict a, size_t ab) {
    const uint8_t *W = w, *A = a;
    for (int c = 0; c < nc;) {
        const int C = nc - c >= NC ? NC : 1; /* the columns past the last full tile one at a time */
        int r = 0;
        for (; r + NR <= nr; r += NR) micro(NR, C, n, out + (size_t)c * ld + r, ld, W + (size_t)r * wb, wb, A + (size_t)c * ab, ab);
        for (; r < nr; r++) micro(1, C, n, out + (size_t)c * ld + r, ld, W + (size_t)r * wb, wb, A + (size_t)c * ab, ab);
        c += C;
    }
}

/* The tile function FN of micro-kernel MICRO: slm_tile_drive with NR x NC register tiles. */
#define SLM_DOT_TILE_FN(FN, MICRO, NR, NC)                                                                              \
    static void FN(int64_t n, int nr, int nc, float *restrict out, size_t ld_out, const void *restrict w,               \
                   size_t w_row_bytes, const void *restrict a, size_t a_row_bytes) {                                    \
        slm_tile_drive(NR, NC, MICRO, n, nr, nc, out, ld_out, w, w_row_bytes, a, a_row_bytes);                         \
    }

#endif /* SLM_X86_KERNELS */

#endif
