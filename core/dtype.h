/* dtype.h - element types: ggml's type ids and f16/bf16 <-> f32 rows.
 *
 * Owns: slm_dtype (values ARE ggml's wire ids, never renumbered) and the exact half-precision
 * conversions ggml performs (round to nearest even; NaN and Inf kept; ggml's NaN bit patterns).
 * Must not: describe blocks or quantize: the one type table (block sizes, codecs) is
 * quantize/qtypes.h; or know about files.
 */
#ifndef SLM_DTYPE_H
#define SLM_DTYPE_H

#include <stddef.h>
#include <stdint.h>

typedef enum slm_dtype {
    SLM_DTYPE_F32 = 0,
    SLM_DTYPE_F16 = 1,
    SLM_DTYPE_Q4_0 = 2,
    SLM_DTYPE_Q4_1 = 3,
    /* 4, 5: Q4_2, Q4_3, removed from ggml */
    SLM_DTYPE_Q5_0 = 6,
    SLM_DTYPE_Q5_1 = 7,
    SLM_DTYPE_Q8_0 = 8,
    SLM_DTYPE_Q8_1 = 9,
    SLM_DTYPE_Q2_K = 10,
    SLM_DTYPE_Q3_K = 11,
    SLM_DTYPE_Q4_K = 12,
    SLM_DTYPE_Q5_K = 13,
    SLM_DTYPE_Q6_K = 14,
    SLM_DTYPE_Q8_K = 15,
    SLM_DTYPE_IQ2_XXS = 16,
    SLM_DTYPE_IQ2_XS = 17,
    SLM_DTYPE_IQ3_XXS = 18,
    SLM_DTYPE_IQ1_S = 19,
    SLM_DTYPE_IQ4_NL = 20,
    SLM_DTYPE_IQ3_S = 21,
    SLM_DTYPE_IQ2_S = 22,
    SLM_DTYPE_IQ4_XS = 23,
    SLM_DTYPE_I8 = 24,
    SLM_DTYPE_I16 = 25,
    SLM_DTYPE_I32 = 26,
    SLM_DTYPE_I64 = 27,
    SLM_DTYPE_F64 = 28,
    SLM_DTYPE_IQ1_M = 29,
    SLM_DTYPE_BF16 = 30,
    /* 31..33: Q4_0_4_4, Q4_0_4_8, Q4_0_8_8, removed from GGUF files */
    SLM_DTYPE_TQ1_0 = 34,
    SLM_DTYPE_TQ2_0 = 35,
    /* 36..38: IQ4_NL_4_4, IQ4_NL_4_8, IQ4_NL_8_8, removed */
    SLM_DTYPE_MXFP4 = 39,
    SLM_DTYPE_NVFP4 = 40,
    SLM_DTYPE_Q1_0 = 41,
    SLM_DTYPE_Q2_0 = 42,
    SLM_DTYPE_COUNT = 43,
} slm_dtype;

/* Scalar conversions, bit-identical to ggml's software paths (ggml-base, no F16C). */
uint16_t slm_f32_to_f16(float f);
float slm_f16_to_f32(uint16_t h);
uint16_t slm_f32_to_bf16(float f);
float slm_bf16_to_f32(uint16_t h);

/* Row conversions. Source pointers may be unaligned (mapped files): loads go through memcpy. */
void slm_f16_to_f32_row(float *restrict dst, const void *restrict src, int64_t n);     /* F16C when present */
void slm_f16_to_f32_row_ref(float *restrict dst, const void *restrict src, int64_t n); /* scalar reference */
void slm_bf16_to_f32_row(float *restrict dst, const void *restrict src, int64_t n);   /* AVX2 when present */
void slm_f32_to_f16_row(void *restrict dst, const float *restrict src, int64_t n);     /* F16C when present */
void slm_f32_to_f16_row_ref(void *restrict dst, const float *restrict src, int64_t n); /* scalar reference */
void slm_f32_to_bf16_row(void *restrict dst, const float *restrict src, int64_t n);
/* Index of the first NaN/Inf in x[0..n), or -1 (weights are checked before any use). */
int64_t slm_first_nonfinite(const float *x, int64_t n);
void slm_f32_copy_row(float *restrict dst, const void *restrict src, int64_t n); /* unaligned src */

#endif
