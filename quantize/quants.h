/* quants.h - ggml block formats and their quantize/dequantize kernels, bit-exact with ggml.
 *
 * Owns: the on-disk block structs (layout pinned by static_assert), the row kernels
 * (slm_quantize_row_<t>_ref, slm_dequantize_row_<t>, slm_quantize_<t>), the row dispatch
 * (slm_quantize_chunk & co, q_rows.c); the type table is qtypes.h. Names are ggml's (ggml-common.h, ggml-quants.c of the
 * release that made ../shared/golden) behind an slm_ prefix; fp16 fields are binary16 bits.
 * Must not: know about files or tensors, allocate, print, or exit. Preconditions (known type,
 * n_per_row a multiple of the block size, 2-byte aligned blocks) are the caller's job, checked
 * with SLM_ASSERT at the dispatch point like ggml_quantize_chunk does.
 */
#ifndef SLM_QUANTS_H
#define SLM_QUANTS_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "quantize/qtypes.h" /* slm_quant_kernel */

#define SLM_QK_K 256        /* super-block size of the k-quants and iq4_xs */
#define SLM_K_SCALE_SIZE 12 /* bytes of packed 6-bit scales+mins in q4_K/q5_K */

/* ---------------------------------------------------------------- legacy 32-element blocks */

#define SLM_QK4_0 32
typedef struct slm_block_q4_0 {
    uint16_t d;                /* fp16 delta: x = (q - 8) * d */
    uint8_t qs[SLM_QK4_0 / 2]; /* nibbles: value j low nibble of qs[j], value j+16 high nibble */
} slm_block_q4_0;
static_assert(sizeof(slm_block_q4_0) == 2 + SLM_QK4_0 / 2, "wrong q4_0 block size/padding");

#define SLM_QK4_1 32
typedef struct slm_block_q4_1 {
    uint16_t d;                /* fp16 delta: x = q * d + m */
    uint16_t m;                /* fp16 min */
    uint8_t qs[SLM_QK4_1 / 2]; /* nibbles, same order as q4_0 */
} slm_block_q4_1;
static_assert(sizeof(slm_block_q4_1) == 2 * 2 + SLM_QK4_1 / 2, "wrong q4_1 block size/padding");

#define SLM_QK5_0 32
typedef struct slm_block_q5_0 {
    uint16_t d;                /* fp16 delta: x = (q - 16) * d */
    uint8_t qh[4];             /* bit j (little-endian u32) = 5th bit of value j */
    uint8_t qs[SLM_QK5_0 / 2]; /* low 4 bits, same order as q4_0 */
} slm_block_q5_0;
static_assert(sizeof(slm_block_q5_0) == 2 + 4 + SLM_QK5_0 / 2, "wrong q5_0 block size/padding");

#define SLM_QK5_1 32
typedef struct slm_block_q5_1 {
    uint16_t d;                /* fp16 delta: x = q * d + m */
    uint16_t m;                /* fp16 min */
    uint8_t qh[4];             /* 5th bits, as q5_0 */
    uint8_t qs[SLM_QK5_1 / 2]; /* low 4 bits */
} slm_block_q5_1;
static_assert(sizeof(slm_block_q5_1) == 2 * 2 + 4 + SLM_QK5_1 / 2, "wrong q5_1 block size/padding");

#define SLM_QK8_0 32
typedef struct slm_block_q8_0 {
    uint16_t d;           /* fp16 delta: x = q * d */
    int8_t qs[SLM_QK8_0]; /* quants */
} slm_block_q8_0;
static_assert(sizeof(slm_block_q8_0) == 2 + SLM_QK8_0, "wrong q8_0 block size/padding");

/* Activations only (ggml's vec_dot type of q4_1 and q5_1): q8_0's values plus the block sum. */
#define SLM_QK8_1 32
typedef struct slm_block_q8_1 {
    uint16_t d;           /* fp16 delta: x = q * d */
    uint16_t s;           /* fp16 d * sum(qs), d before its rounding to fp16 */
    int8_t qs[SLM_QK8_1]; /* quants */
} slm_block_q8_1;
static_assert(sizeof(slm_block_q8_1) == 2 * 2 + SLM_QK8_1, "wrong q8_1 block size/padding");

/* --------------------------------------------------------------- k-quants (256 per block) */

/* 16 sub-blocks of 16: x = d * (scales[j] & 15) * q - dmin * (scales[j] >> 4). 2.625 bpw. */
typedef struct slm_block_q2_K {
    uint8_t scales[SLM_QK_K / 16]; /* 4-bit scale (low) and 4-bit min (high) per sub-block */
    uint8_t qs[SLM_QK_K / 4];      /* 2-bit quants, 4 per byte (values j, j+32, j+64, j+96) */
    uint16_t d;                    /* fp16 super-block scale of the scales */
    uint16_t dmin;                 /* fp16 super-block scale of the mins */
} slm_block_q2_K;
static_assert(sizeof(slm_block_q2_K) == 2 * 2 + SLM_QK_K / 16 + SLM_QK_K / 4, "wrong q2_K block size/padding");

/* 16 sub-blocks of 16: x = d * (scale - 32) * (q - 4). 3.4375 bpw. */
typedef struct slm_block_q3_K {
    uint8_t hmask[SLM_QK_K / 8]; /* high (3rd) bit of each quant */
    uint8_t qs[SLM_QK_K / 4];    /* low 2 bits */
    uint8_t scales[12];          /* 16 6-bit scales, packed */
    uint16_t d;                  /* fp16 super-block scale */
} slm_block_q3_K;
static_assert(sizeof(slm_block_q3_K) == 2 + SLM_QK_K / 4 + SLM_QK_K / 8 + 12, "wrong q3_K block size/padding");

/* 8 sub-blocks of 32: x = d * sc * q - dmin * m. 4.5 bpw. */
typedef struct slm_block_q4_K {
    uint16_t d;                       /* fp16 super-block scale of the scales */
    uint16_t dmin;                    /* fp16 super-block scale of the mins */
    uint8_t scales[SLM_K_SCALE_SIZE]; /* 8 scales + 8 mins, 6 bits each, packed */
    uint8_t qs[SLM_QK_K / 2];         /* 4-bit quants */
} slm_block_q4_K;
static_assert(sizeof(slm_block_q4_K) == 2 * 2 + SLM_K_SCALE_SIZE + SLM_QK_K / 2, "wrong q4_K block size/padding");

/* 8 sub-blocks of 32: x = d * sc * q - dmin * m, q in 0..31. 5.5 bpw. */
typedef struct slm_block_q5_K {
    uint16_t d;                       /* fp16 super-block scale of the scales */
    uint16_t dmin;                    /* fp16 super-block scale of the mins */
    uint8_t scales[SLM_K_SCALE_SIZE]; /* 8 scales + 8 mins, 6 bits each, packed */
    uint8_t qh[SLM_QK_K / 8];         /* 5th bit of the quants */
    uint8_t qs[SLM_QK_K / 2];         /* low 4 bits */
} slm_block_q5_K;
static_assert(sizeof(slm_block_q5_K) == 2 * 2 + SLM_K_SCALE_SIZE + SLM_QK_K / 2 + SLM_QK_K / 8,
              "wrong q5_K block size/padding");

/* 16 sub-blocks of 16: x = d * scales[j] * (q - 32). 6.5625 bpw. */
typedef struct slm_block_q6_K {
    uint8_t ql[SLM_QK_K / 2];     /* low 4 bits of the quants */
    uint8_t qh[SLM_QK_K / 4];     /* high 2 bits */
    int8_t scales[SLM_QK_K / 16]; /* 8-bit sub-block scales */
    uint16_t d;                   /* fp16 super-block scale */
} slm_block_q6_K;
static_assert(sizeof(slm_block_q6_K) == 2 + SLM_QK_K / 16 + 3 * SLM_QK_K / 4, "wrong q6_K block size/padding");

/* Activations only (ggml's vec_dot type of the k-quants): x = d * q, d in f32. */
typedef struct slm_block_q8_K {
    float d;                       /* f32 scale */
    int8_t qs[SLM_QK_K];           /* quants */
    int16_t bsums[SLM_QK_K / 16];  /* sum of the quants of each group of 16 */
} slm_block_q8_K;
static_assert(sizeof(slm_block_q8_K) == 4 + SLM_QK_K + SLM_QK_K / 16 * 2, "wrong q8_K block size/padding");

/* ------------------------------------------------------------------ non-linear 4-bit */

#define SLM_QK4_NL 32
typedef struct slm_block_iq4_nl {
    uint16_t d;                 /* fp16 delta: x = d * kvalues_iq4nl[q] */
    uint8_t qs[SLM_QK4_NL / 2]; /* 4-bit table indices, same order as q4_0 */
} slm_block_iq4_nl;
static_assert(sizeof(slm_block_iq4_nl) == 2 + SLM_QK4_NL / 2, "wrong iq4_nl block size/padding");

/* 8 sub-blocks of 32: x = d * (ls - 32) * kvalues_iq4nl[q], ls a 6-bit scale. 4.25 bpw. */
typedef struct slm_block_iq4_xs {
    uint16_t d;                      /* fp16 super-block scale */
    uint16_t scales_h;               /* high 2 bits of the 8 scales */
    uint8_t scales_l[SLM_QK_K / 64]; /* low 4 bits of the 8 scales */
    uint8_t qs[SLM_QK_K / 2];        /* 4-bit table indices */
} slm_block_iq4_xs;
static_assert(sizeof(slm_block_iq4_xs) == 2 + 2 + SLM_QK_K / 64 + SLM_QK_K / 2, "wrong iq4_xs block size/padding");

/* ------------------------------------------- lattice quants (ggml's iq1/iq2/iq3, QK_K blocks)
 *
 * Groups of 8 (iq2, iq1) or 4 (iq3) values are one point of a fixed grid (q_iq_grids.c: one byte
 * per coordinate) times a sign pattern; grid indices, signs and low-bit sub-block scales are
 * packed below. ggml_quantize_chunk needs importance weights for iq2_xxs, iq2_xs and iq1_s. */

/* 8 sub-blocks of 32: per sub-block 4 grid bytes (u32 #0) and a u32 #1 with four 7-bit sign
 * indices (bits 0..27) and a 4-bit scale s (bits 28..31): x = d * (0.5 + s) * 0.25 * grid * sign.
 * 2.0625 bpw. */
typedef struct slm_block_iq2_xxs {
    uint16_t d;                 /* fp16 super-block scale */
    uint16_t qs[SLM_QK_K / 8];  /* 8 bytes per sub-block, read as two little-endian u32 */
} slm_block_iq2_xxs;
static_assert(sizeof(slm_block_iq2_xxs) == 2 + SLM_QK_K / 8 * 2, "wrong iq2_xxs block size/padding");

/* 16 sub-blocks of 16: qs[j] = 9-bit grid index | 7-bit sign index << 9, a 4-bit scale per
 * sub-block (low nibble even, high nibble odd). 2.3125 bpw. */
typedef struct slm_block_iq2_xs {
    uint16_t d;                     /* fp16 super-block scale */
    uint16_t qs[SLM_QK_K / 8];      /* grid index | signs << 9, one per group of 8 */
    uint8_t scales[SLM_QK_K / 32];  /* 4-bit sub-block scales, two per byte */
} slm_block_iq2_xs;
static_assert(sizeof(slm_block_iq2_xs) == 2 + SLM_QK_K / 8 * 2 + SLM_QK_K / 32, "wrong iq2_xs block size/padding");

/* 16 sub-blocks of 16: 10-bit grid indices (8 low bits in qs[0..32), 2 high bits in qh), full
 * 8-bit sign bytes in qs[32..64), 4-bit scales. 2.5625 bpw. */
typedef struct slm_block_iq2_s {
    uint16_t d;                     /* fp16 super-block scale */
    uint8_t qs[SLM_QK_K / 4];       /* grid index low bytes, then one sign byte per group of 8 */
    uint8_t qh[SLM_QK_K / 32];      /* 2 high index bits per group, 4 groups per byte */
    uint8_t scales[SLM_QK_K / 32];  /* 4-bit sub-block scales, two per byte */
} slm_block_iq2_s;
static_assert(sizeof(slm_block_iq2_s) == 2 + SLM_QK_K / 4 + SLM_QK_K / 16, "wrong iq2_s block size/padding");

/* 8 sub-blocks of 32 = 8 groups of 4: qs[0..64) grid bytes, then per sub-block a u32 with four
 * 7-bit sign indices (one per 8 values) and a 4-bit scale s: x = d * (0.5 + s) * 0.5 * grid * sign.
 * 3.0625 bpw. */
typedef struct slm_block_iq3_xxs {
    uint16_t d;                     /* fp16 super-block scale */
    uint8_t qs[3 * SLM_QK_K / 8];   /* grid bytes, then scales and signs (little-endian u32) */
} slm_block_iq3_xxs;
static_assert(sizeof(slm_block_iq3_xxs) == 2 + 3 * (SLM_QK_K / 8), "wrong iq3_xxs block size/padding");

/* 8 sub-blocks of 32 = 8 groups of 4: 9-bit grid indices (qs low bytes, qh 9th bits), 8-bit sign
 * bytes, 4-bit scales s per sub-block: x = d * (1 + 2s) * grid * sign. 3.4375 bpw. */
typedef struct slm_block_iq3_s {
    uint16_t d;                     /* fp16 super-block scale */
    uint8_t qs[SLM_QK_K / 4];       /* grid index low bytes */
    uint8_t qh[SLM_QK_K / 32];      /* 9th index bits, one byte per sub-block */
    uint8_t signs[SLM_QK_K / 8];    /* one sign byte per 8 values */
    uint8_t scales[SLM_QK_K / 64];  /* 4-bit scales, two per byte */
} slm_block_iq3_s;
static_assert(sizeof(slm_block_iq3_s) == 2 + 13 * (SLM_QK_K / 32) + SLM_QK_K / 64, "wrong iq3_s block size/padding");

#define SLM_IQ1S_DELTA 0.125f /* ggml's IQ1S_DELTA (= IQ1M_DELTA): grid coordinates -1, 0, 1 +- delta */

/* 8 sub-blocks of 32: 11-bit grid indices (qs low bytes; qh[ib] bits 3l..3l+2), per sub-block a
 * 3-bit scale s (qh bits 12..14) and the sign of delta (bit 15): x = d * (2s + 1) * (grid + delta).
 * 1.5625 bpw. */
typedef struct slm_block_iq1_s {
    uint16_t d;                     /* fp16 super-block scale */
    uint8_t qs[SLM_QK_K / 8];       /* grid index low bytes */
    uint16_t qh[SLM_QK_K / 32];     /* high index bits, scale, delta sign */
} slm_block_iq1_s;
static_assert(sizeof(slm_block_iq1_s) == 2 + SLM_QK_K / 8 + SLM_QK_K / 16, "wrong iq1_s block size/padding");

/* 16 sub-blocks of 16: 11-bit grid indices (qs low bytes; qh nibbles: 3 high bits + delta sign
 * bit per group of 8), 3-bit scales per sub-block, and the fp16 super-block scale spread over
 * the top nibbles of the four little-endian u16 in scales[]. 1.75 bpw. */
typedef struct slm_block_iq1_m {
    uint8_t qs[SLM_QK_K / 8];       /* grid index low bytes */
    uint8_t qh[SLM_QK_K / 16];      /* per group of 8: 3 high index bits, then the delta sign bit */
    uint8_t scales[SLM_QK_K / 32];  /* 4 u16: 4 x 3-bit scales (bits 0..11) + a nibble of the fp16 d */
} slm_block_iq1_m;
static_assert(sizeof(slm_block_iq1_m) == SLM_QK_K / 8 + SLM_QK_K / 16 + SLM_QK_K / 32, "wrong iq1_m block size/padding");

/* ------------------------------------------------------------------------------ kernels
 *
 * slm_quantize_row_<t>_ref(x, y, k): ggml's reference quantizer; k a multiple of the block size.
 * slm_dequantize_row_<t>(x, y, k): ggml's to_float.
 * slm_quantize_<t>_kernel(src, dst, nrow, n_per_row, imatrix, kernel) (below): ggml's
 *   quantize_<t>, what ggml_quantize_chunk calls: imatrix NULL or n_per_row importance weights
 *   (one per column, shared by all rows); returns bytes written. SLM_KERNEL_AUTO runs the AVX2
 *   kernels on a CPU that has them, which give the scalar code's bytes for every input;
 *   tests/test_quants.c checks both against ggml's golden bytes and against each other.
 */
void slm_quantize_row_q4_0_ref(const float *restrict x, void *restrict y, int64_t k);
void slm_dequantize_row_q4_0(const void *restrict x, float *restrict y, int64_t k);

void slm_quantize_row_q4_1_ref(const float *restrict x, void *restrict y, int64_t k);
void slm_dequantize_row_q4_1(const void *restrict x, float *restrict y, int64_t k);

void slm_quantize_row_q5_0_ref(const float *restrict x, void *restrict y, int64_t k);
void slm_dequantize_row_q5_0(const void *restrict x, float *restrict y, int64_t k);

void slm_quantize_row_q5_1_ref(const float *restrict x, void *restrict y, int64_t k);
void slm_dequantize_row_q5_1(const void *restrict x, float *restrict y, int64_t k);

void slm_quantize_row_q8_0_ref(const float *restrict x, void *restrict y, int64_t k);
void slm_dequantize_row_q8_0(const void *restrict x, float *restrict y, int64_t k);
/* ggml's CPU backend's quantize_row_q8_0 (x86): d = amax/127 kept in f16, q = x * (127/amax)
   rounded half to even. Not _ref's bytes (that divides by d and rounds half away from zero):
   this is how llama.cpp quantizes activations before a dot product with a Q8_0 weight. */
void slm_quantize_row_q8_0(const float *restrict x, void *restrict y, int64_t k);

/* ggml's CPU backend's quantize_row_q8_1 (x86): q8_0's d and quants (slm_quantize_row_q8_0) and
   s = fp16(d * sum of the quants); the activations of a dot product with a Q4_1 or Q5_1 weight.
   The dequantizer (x = q * d, for tests) is not in the type table: Q8_1 is never a weight. */
void slm_quantize_row_q8_1(const float *restrict x, void *restrict y, int64_t k);
void slm_dequantize_row_q8_1(const void *restrict x, float *restrict y, int64_t k);

/* Q8_K: activations only. _ref is what ggml's CPU backend uses for them on x86. */
void slm_quantize_row_q8_K_ref(const float *restrict x, void *restrict y, int64_t k);
/* The same bytes, AVX2 where the CPU has it (the type table's from_float). */
void slm_quantize_row_q8_K(const float *restrict x, void *restrict y, int64_t k);
void slm_dequantize_row_q8_K(const void *restrict x, float *restrict y, int64_t k);

void slm_quantize_row_q2_K_ref(const float *restrict x, void *restrict y, int64_t k);
void slm_dequantize_row_q2_K(const void *restrict x, float *restrict y, int64_t k);

void slm_quantize_row_q3_K_ref(const float *restrict x, void *restrict y, int64_t k);
void slm_dequantize_row_q3_K(const void *restrict x, float *restrict y, int64_t k);

void slm_quantize_row_q4_K_ref(const float *restrict x, void *restrict y, int64_t k);
void slm_dequantize_row_q4_K(const void *restrict x, float *restrict y, int64_t k);

void slm_quantize_row_q5_K_ref(const float *restrict x, void *restrict y, int64_t k);
void slm_dequantize_row_q5_K(const void *restrict x, float *restrict y, int64_t k);

void slm_quantize_row_q6_K_ref(const float *restrict x, void *restrict y, int64_t k);
void slm_dequantize_row_q6_K(const void *restrict x, float *restrict y, int64_t k);

void slm_quantize_row_iq4_nl_ref(const float *restrict x, void *restrict y, int64_t k);
void slm_dequantize_row_iq4_nl(const void *restrict x, float *restrict y, int64_t k);

void slm_quantize_row_iq4_xs_ref(const float *restrict x, void *restrict y, int64_t k);
void slm_dequantize_row_iq4_xs(const void *restrict x, float *restrict y, int64_t k);

/* ggml has a from_float_ref for these three (its chunk quantizer without weights). */
void slm_quantize_row_iq3_xxs_ref(const float *restrict x, void *restrict y, int64_t k);
void slm_dequantize_row_iq3_xxs(const void *restrict x, float *restrict y, int64_t k);

void slm_quantize_row_iq3_s_ref(const float *restrict x, void *restrict y, int64_t k);
void slm_dequantize_row_iq3_s(const void *restrict x, float *restrict y, int64_t k);

void slm_quantize_row_iq2_s_ref(const float *restrict x, void *restrict y, int64_t k);
void slm_dequantize_row_iq2_s(const void *restrict x, float *restrict y, int64_t k);

void slm_dequantize_row_iq2_xxs(const void *restrict x, float *restrict y, int64_t k);
void slm_dequantize_row_iq2_xs(const void *restrict x, float *restrict y, int64_t k);
void slm_dequantize_row_iq1_s(const void *restrict x, float *restrict y, int64_t k);
void slm_dequantize_row_iq1_m(const void *restrict x, float *restrict y, int64_t k);

/* ------------------------------------------------------------------------ row dispatch */

/* Name of the kernel slm_quantize_chunk uses for `type` on this CPU: "avx2" or "ref" (scalar).
 * For reports and the benchmark. */
const char *slm_quant_kernel_name(int type);

/* Same bytes as ggml_quantize_chunk(type, src, dst, 0, nrow, n_per_row, imatrix). Serial.
 * src: (nrow, n_per_row) f32; dst: nrow * slm_dtype_row_size(type, n_per_row) bytes. */
size_t slm_quantize_chunk(int type, const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *imatrix);
/* ggml's to_float row by row: src nrow rows of blocks -> dst (nrow, n_per_row) f32; _mt spreads
 * the rows over slm_threads_get() OpenMP threads (same floats). The threaded quantizer is
 * slm_quantize_tensor (quantize.h). */
void slm_dequantize_rows(int type, const void *src, float *dst, int64_t nrow, int64_t n_per_row);
void slm_dequantize_rows_mt(int type, const void *src, float *dst, int64_t nrow, int64_t n_per_row);

/* ------------------------------------------------------------ dot products (q_dot*.c)
 *
 * slm_vec_dot_<t>_<vt>(n, s, w, a): *s = dot(weight row w, activation row a) of n values (ggml's
 * vec_dot with nrc = 1), w a row of type t (mapped file data: any 2-byte aligned address), a a row
 * of t's vec_dot_type made by the type table's from_float (4-byte aligned). The numbers are ggml's
 * AVX2 kernels' (arch/x86/quants.c, vec.cpp of llama.cpp v0.5.0): exact integer block sums,
 * accumulated in float in ggml's lane order (q_dot_impl.h, q_dot_float.c say how); the scalar
 * reference and the AVX2 path give the same bits, chosen at run time (AVX2+FMA+F16C). n must be a
 * multiple of t's block size. These are the type table's vec_dot (qtypes.h). */
void slm_vec_dot_f32_f32(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_f16_f16(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_bf16_bf16(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_q4_0_q8_0(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_q4_1_q8_1(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_q5_0_q8_0(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_q5_1_q8_1(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_q8_0_q8_0(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_iq4_nl_q8_0(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_q2_K_q8_K(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_q3_K_q8_K(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_q4_K_q8_K(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_q5_K_q8_K(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_q6_K_q8_K(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_iq4_xs_q8_K(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_iq2_xxs_q8_K(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_iq2_xs_q8_K(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_iq2_s_q8_K(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_iq3_xxs_q8_K(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_iq3_s_q8_K(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_iq1_s_q8_K(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);
void slm_vec_dot_iq1_m_q8_K(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);

/* Many dot products at once (a matmul tile): out[c * ld_out + r] = dot(w row r, a row c) for
 * r < nr weight rows and c < nc activation rows (rows w_row_bytes / a_row_bytes apart; ld_out >= nr).
 * Every element equals the type's vec_dot bit for bit, so batching never changes a number. The
 * AVX2 path works in register tiles of weight rows x activation rows (slm_dot_tile_shape) with
 * the tile's weight blocks unpacked once for all its activation rows; for speed pass nr a multiple
 * of the tile's rows and nc up to a few dozen rows (the activations stay in L2 while each group
 * of weight rows sweeps them). No allocation, no threads: the caller parallelises, e.g. over
 * groups of weight rows. type must have a vec_dot (SLM_ASSERTed, with the other preconditions). */
void slm_dot_rows(int type, int64_t n, int nr, int nc, float *restrict out, size_t ld_out, const void *restrict w,
                  size_t w_row_bytes, const void *restrict a, size_t a_row_bytes);
/* The same with a chosen kernel: SLM_KERNEL_REF runs the scalar reference for every element. */
void slm_dot_rows_kernel(slm_quant_kernel kernel, int type, int64_t n, int nr, int nc, float *restrict out,
                         size_t ld_out, const void *restrict w, size_t w_row_bytes, const void *restrict a,
                         size_t a_row_bytes);
/* The register tile slm_dot_rows uses for `type` on this CPU (1 x 1 for the scalar path). */
void slm_dot_tile_shape(int type, int *rows, int *cols);
/* "avx2" or "ref": the code slm_dot_rows runs for `type` on this CPU. */
const char *slm_dot_kernel_name(int type);

/* ------------------------------------------- internal: shared by the quantize/ kernels, not an API */

/* ggml's nearest_int: round to nearest even through the 1.5*2^23 trick (|fval| <= 4194303;
 * outside that range the result is ggml's garbage, reproduced bit for bit). */
static inline int slm_nearest_int(float fval) {
    float val = fval + 12582912.f;
    int32_t i;
    memcpy(&i, &val, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* C's float -> integer cast as x86 executes it (cvttss2si): truncate, and INT32_MIN for NaN and
 * out-of-range values, where C leaves the cast undefined. ggml's (int8_t)(x + 8.5f) is this
 * followed by taking the low byte. */
static inline int32_t slm_cvtt_i32(float f) {
    if (f >= -2147483648.0f && f < 2147483648.0f) return (int32_t)f;
    return INT32_MIN;
}

/* 1 when the fast x86 kernels may run: an x86-64 GCC/clang build on a CPU with AVX2. */
int slm_quant_cpu_has_avx2(void);


static inline int slm_quant_use_avx2(slm_quant_kernel kernel) {
    return kernel == SLM_KERNEL_AUTO && slm_quant_cpu_has_avx2();
}

size_t slm_quantize_chunk_kernel(int type, slm_quant_kernel kernel, const float *src, void *dst, int64_t nrow,
                                 int64_t n_per_row, const float *imatrix);
/* The same per block type. */
size_t slm_quantize_q4_0_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                const float *imatrix, slm_quant_kernel kernel);
size_t slm_quantize_q4_1_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                const float *imatrix, slm_quant_kernel kernel);
size_t slm_quantize_q5_0_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                const float *imatrix, slm_quant_kernel kernel);
size_t slm_quantize_q5_1_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                const float *imatrix, slm_quant_kernel kernel);
size_t slm_quantize_q8_0_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                const float *imatrix, slm_quant_kernel kernel);
size_t slm_quantize_q2_K_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                const float *imatrix, slm_quant_kernel kernel);
size_t slm_quantize_q3_K_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                const float *imatrix, slm_quant_kernel kernel);
size_t slm_quantize_q4_K_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                const float *imatrix, slm_quant_kernel kernel);
size_t slm_quantize_q5_K_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                const float *imatrix, slm_quant_kernel kernel);
size_t slm_quantize_q6_K_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                const float *imatrix, slm_quant_kernel kernel);
size_t slm_quantize_iq4_nl_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                  const float *imatrix, slm_quant_kernel kernel);
size_t slm_quantize_iq4_xs_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                  const float *imatrix, slm_quant_kernel kernel);
/* The lattice quants (q_iq1.c, q_iq2.c, q_iq3.c): SLM_KERNEL_AUTO runs the AVX2 neighbour scans and
 * split searches where the CPU has them (the scalar code's bytes; test_iq.c checks both against
 * ggml's golden bytes and each other). imatrix may be NULL for iq3_xxs, iq3_s, iq2_s and iq1_m
 * (ggml's weightless formulas); iq2_xxs, iq2_xs and iq1_s SLM_ASSERT it (slm_quant_requires_imatrix). */
size_t slm_quantize_iq2_xxs_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                   const float *imatrix, slm_quant_kernel kernel);
size_t slm_quantize_iq2_xs_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                  const float *imatrix, slm_quant_kernel kernel);
size_t slm_quantize_iq2_s_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                 const float *imatrix, slm_quant_kernel kernel);
size_t slm_quantize_iq3_xxs_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                   const float *imatrix, slm_quant_kernel kernel);
size_t slm_quantize_iq3_s_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                 const float *imatrix, slm_quant_kernel kernel);
size_t slm_quantize_iq1_s_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                 const float *imatrix, slm_quant_kernel kernel);
size_t slm_quantize_iq1_m_kernel(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                 const float *imatrix, slm_quant_kernel kernel);

/* Solvers from q_kquants.c that the legacy importance-weighted paths share (ggml's names). */
float slm_make_qx_quants(int n, int nmax, const float *restrict x, int8_t *restrict L, int rmse_type,
                         const float *restrict qw);
/* ggml's make_qp_quants: non-negative x to L in [0, nmax] (also iq2_xxs's start scale). */
float slm_make_qp_quants(int n, int nmax, const float *restrict x, uint8_t *restrict L, const float *quant_weights);
float slm_make_qkx3_quants(int n, int nmax, const float *restrict x, const float *restrict weights, uint8_t *restrict L,
                           float *restrict the_min, uint8_t *restrict Laux, float rmin, float rdelta, int nstep,
                           int use_mad);

/* ------------------------------------ internal: AVX2 helpers shared by the quantize/ kernels
 *
 * Compiled only into the kernel files, which define SLM_QUANTS_AVX2_HELPERS before including this
 * header; each helper is `target("avx2")` and is called only after slm_quant_use_avx2(). Every
 * helper maps one scalar C expression of ggml's to the same IEEE operation per lane.
 */
#if defined(__x86_64__) && defined(__GNUC__)
#define SLM_X86_KERNELS 1
#else
#define SLM_X86_KERNELS 0
#endif

#if SLM_X86_KERNELS && defined(SLM_QUANTS_AVX2_HELPERS)
#include <immintrin.h>

#define SLM_AVX2 __attribute__((target("avx2")))

/* r[t] <- column t of the 8x8 matrix whose rows are r[0..7]. */
static inline SLM_AVX2 void slm_transpose_8x8(__m256 *r) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/* 8 groups of len consecutive values (len a multiple of 8), transposed: xt[i] lane j = x[len*j + i]. */
static inline SLM_AVX2 void slm_load_transposed(__m256 *restrict xt, const float *restrict x, int len) {
    for (int c = 0; c < len / 8; c++) {
        for (int j = 0; j < 8; j++) xt[8 * c + j] = _mm256_loadu_ps(x + len * j + 8 * c);
        slm_transpose_8x8(xt + 8 * c);
    }
}

/* slm_nearest_int in every lane. */
static inline SLM_AVX2 __m256i slm_nearest_int_x8(__m256 f) {
    __m256i i = _mm256_castps_si256(_mm256_add_ps(f, _mm256_set1_ps(12582912.f)));
    return _mm256_sub_epi32(_mm256_and_si256(i, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x00400000));
}

/* MAX(lo, MIN(hi, v)) */
static inline SLM_AVX2 __m256i slm_clamp_x8(__m256i v, int lo, int hi) {
    return _mm256_max_epi32(_mm256_set1_epi32(lo), _mm256_min_epi32(_mm256_set1_epi32(hi), v));
}

static inline SLM_AVX2 __m256 slm_abs_x8(__m256 v) {
    return _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
}

/* -v (sign flip, not 0 - v) */
static inline SLM_AVX2 __m256 slm_neg_x8(__m256 v) {
    return _mm256_xor_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(INT32_MIN)));
}

/* mask ? b : a, per lane */
static inline SLM_AVX2 __m256 slm_select_x8(__m256 a, __m256 b, __m256 mask) { return _mm256_blendv_ps(a, b, mask); }

/* Low byte of each int32 lane (C's int -> uint8_t) to dst[0..7]. */
static inline SLM_AVX2 void slm_store_bytes_x8(uint8_t *dst, __m256i v) {
    const __m256i pick = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12, -1,
                                          -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    __m256i b = _mm256_shuffle_epi8(v, pick); /* bytes 0..3 of each 128-bit half */
    b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0));
    _mm_storel_epi64((__m128i *)(void *)dst, _mm256_castsi256_si128(b));
}

/* The legacy importance-weighted paths' solvers for 8 consecutive blocks of 32 at once
 * (q_kquants.c): group b gets exactly what slm_make_qx_quants(32, nmax, x + 32*b, L + 32*b, 1,
 * w + 32*b) / slm_make_qkx3_quants(32, nmax, x + 32*b, w + 32*b, L + 32*b, &the_mins[b], ...,
 * use_mad = 0) give. */
SLM_AVX2 void slm_make_qx_quants_8x32(int nmax, const float *restrict x, const float *restrict w, int8_t *restrict L,
                                      float *restrict scales);
SLM_AVX2 void slm_make_qkx3_quants_8x32(int nmax, const float *restrict x, const float *restrict w, uint8_t *restrict L,
                                        float *restrict scales, float *restrict the_mins, float rmin, float rdelta,
                                        int nstep);

/* Low bytes of the lanes of a then b to dst[0..15]. */
static inline SLM_AVX2 void slm_store_bytes_x16(uint8_t *dst, __m256i a, __m256i b) {
    const __m256i lo = _mm256_set1_epi32(0xff);
    __m256i ab = _mm256_packus_epi32(_mm256_and_si256(a, lo), _mm256_and_si256(b, lo)); /* a0-3 b0-3 a4-7 b4-7 */
    ab = _mm256_permute4x64_epi64(ab, _MM_SHUFFLE(3, 1, 2, 0));                         /* a0-7 b0-7 (16-bit) */
    _mm_storeu_si128((__m128i *)(void *)dst,
                     _mm_packus_epi16(_mm256_castsi256_si128(ab), _mm256_extracti128_si256(ab, 1)));
}
#endif

#endif
