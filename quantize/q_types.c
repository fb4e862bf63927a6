/* q_types.c - the element-type table (ggml's type_traits) and the lookups built on it.
 *
 * Owns: one row per GGUF type id with its block layout and the codec entry points of this
 * folder; the static_asserts that tie each quantized type's bytes per block to its block
 * struct; name lookups. Plain types (F32, F16, BF16) get thin wrappers with the kernels'
 * signatures so callers dispatch through the table alone.
 * Must not: hold state; know about files or models.
 */
#include "quantize/qtypes.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "core/slm.h"
#include "quantize/quants.h"

/* ---- plain types behind the kernel signatures */

static size_t quantize_f32(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n, const float *im,
                           slm_quant_kernel k) {
    SLM_UNUSED(im), SLM_UNUSED(k);
    memcpy(dst, src, (size_t)(nrow * n) * sizeof(float));
    return (size_t)(nrow * n) * sizeof(float);
}
static size_t quantize_f16(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n, const float *im,
                           slm_quant_kernel k) {
    SLM_UNUSED(im), SLM_UNUSED(k);
    slm_f32_to_f16_row(dst, src, nrow * n);
    return (size_t)(nrow * n) * 2;
}
static size_t quantize_bf16(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n, const float *im,
                            slm_quant_kernel k) {
    SLM_UNUSED(im), SLM_UNUSED(k);
    slm_f32_to_bf16_row(dst, src, nrow * n);
    return (size_t)(nrow * n) * 2;
}
static void from_f32(const float *restrict x, void *restrict y, int64_t k) { memcpy(y, x, (size_t)k * sizeof(float)); }
static void from_f16(const float *restrict x, void *restrict y, int64_t k) { slm_f32_to_f16_row(y, x, k); }
static void from_bf16(const float *restrict x, void *restrict y, int64_t k) { slm_f32_to_bf16_row(y, x, k); }
static void to_f32(const void *restrict x, float *restrict y, int64_t k) { slm_f32_copy_row(y, x, k); }
static void to_f16(const void *restrict x, float *restrict y, int64_t k) { slm_f16_to_f32_row(y, x, k); }
static void to_bf16(const void *restrict x, float *restrict y, int64_t k) { slm_bf16_to_f32_row(y, x, k); }

/* ---- the table: designated initializers by wire id (ggml.c's type_traits) */

#define Q8_0 SLM_DTYPE_Q8_0
#define Q8_1 SLM_DTYPE_Q8_1 /* Q4_1/Q5_1 dot products; its values are Q8_0's (same d and rounding) */
#define Q8_K SLM_DTYPE_Q8_K
#define NONE (-1)

static const slm_dtype_traits k_traits[SLM_DTYPE_COUNT] = {
    [SLM_DTYPE_F32] = {"F32", 1, 4, 0, to_f32, from_f32, quantize_f32, 0, SLM_DTYPE_F32, from_f32, slm_vec_dot_f32_f32},
    [SLM_DTYPE_F16] = {"F16", 1, 2, 0, to_f16, from_f16, quantize_f16, 0, SLM_DTYPE_F16, from_f16, slm_vec_dot_f16_f16},
    [SLM_DTYPE_BF16] = {"BF16", 1, 2, 0, to_bf16, from_bf16, quantize_bf16, 0, SLM_DTYPE_BF16, from_bf16, slm_vec_dot_bf16_bf16},
    [SLM_DTYPE_Q4_0] = {"Q4_0", 32, sizeof(slm_block_q4_0), 1, slm_dequantize_row_q4_0, slm_quantize_row_q4_0_ref,
                        slm_quantize_q4_0_kernel, 0, Q8_0, NULL, slm_vec_dot_q4_0_q8_0},
    [SLM_DTYPE_Q4_1] = {"Q4_1", 32, sizeof(slm_block_q4_1), 1, slm_dequantize_row_q4_1, slm_quantize_row_q4_1_ref,
                        slm_quantize_q4_1_kernel, 0, Q8_1, NULL, slm_vec_dot_q4_1_q8_1},
    [SLM_DTYPE_Q5_0] = {"Q5_0", 32, sizeof(slm_block_q5_0), 1, slm_dequantize_row_q5_0, slm_quantize_row_q5_0_ref,
                        slm_quantize_q5_0_kernel, 0, Q8_0, NULL, slm_vec_dot_q5_0_q8_0},
    [SLM_DTYPE_Q5_1] = {"Q5_1", 32, sizeof(slm_block_q5_1), 1, slm_dequantize_row_q5_1, slm_quantize_row_q5_1_ref,
                        slm_quantize_q5_1_kernel, 0, Q8_1, NULL, slm_vec_dot_q5_1_q8_1},
    [SLM_DTYPE_Q8_0] = {"Q8_0", 32, sizeof(slm_block_q8_0), 1, slm_dequantize_row_q8_0, slm_quantize_row_q8_0_ref,
                        slm_quantize_q8_0_kernel, 0, Q8_0, slm_quantize_row_q8_0, slm_vec_dot_q8_0_q8_0},
    [SLM_DTYPE_Q8_1] = {"Q8_1", 32, sizeof(slm_block_q8_1), 1, NULL, NULL, NULL, 0, Q8_1, slm_quantize_row_q8_1},
    [SLM_DTYPE_Q2_K] = {"Q2_K", 256, sizeof(slm_block_q2_K), 1, slm_dequantize_row_q2_K, slm_quantize_row_q2_K_ref,
                        slm_quantize_q2_K_kernel, 0, Q8_K, NULL, slm_vec_dot_q2_K_q8_K},
    [SLM_DTYPE_Q3_K] = {"Q3_K", 256, sizeof(slm_block_q3_K), 1, slm_dequantize_row_q3_K, slm_quantize_row_q3_K_ref,
                        slm_quantize_q3_K_kernel, 0, Q8_K, NULL, slm_vec_dot_q3_K_q8_K},
    [SLM_DTYPE_Q4_K] = {"Q4_K", 256, sizeof(slm_block_q4_K), 1, slm_dequantize_row_q4_K, slm_quantize_row_q4_K_ref,
                        slm_quantize_q4_K_kernel, 0, Q8_K, NULL, slm_vec_dot_q4_K_q8_K},
    [SLM_DTYPE_Q5_K] = {"Q5_K", 256, sizeof(slm_block_q5_K), 1, slm_dequantize_row_q5_K, slm_quantize_row_q5_K_ref,
                        slm_quantize_q5_K_kernel, 0, Q8_K, NULL, slm_vec_dot_q5_K_q8_K},
    [SLM_DTYPE_Q6_K] = {"Q6_K", 256, sizeof(slm_block_q6_K), 1, slm_dequantize_row_q6_K, slm_quantize_row_q6_K_ref,
                        slm_quantize_q6_K_kernel, 0, Q8_K, NULL, slm_vec_dot_q6_K_q8_K},
    /* Q8_K is an activation type: readable (tests), never a weight slm writes */
    [SLM_DTYPE_Q8_K] = {"Q8_K", 256, sizeof(slm_block_q8_K), 1, slm_dequantize_row_q8_K, slm_quantize_row_q8_K_ref, NULL,
                        0, Q8_K, slm_quantize_row_q8_K},
    [SLM_DTYPE_IQ2_XXS] = {"IQ2_XXS", 256, sizeof(slm_block_iq2_xxs), 1, slm_dequantize_row_iq2_xxs, NULL,
                        slm_quantize_iq2_xxs_kernel, 1, Q8_K, NULL, slm_vec_dot_iq2_xxs_q8_K},
    [SLM_DTYPE_IQ2_XS] = {"IQ2_XS", 256, sizeof(slm_block_iq2_xs), 1, slm_dequantize_row_iq2_xs, NULL,
                        slm_quantize_iq2_xs_kernel, 1, Q8_K, NULL, slm_vec_dot_iq2_xs_q8_K},
    [SLM_DTYPE_IQ3_XXS] = {"IQ3_XXS", 256, sizeof(slm_block_iq3_xxs), 1, slm_dequantize_row_iq3_xxs, slm_quantize_row_iq3_xxs_ref,
                        slm_quantize_iq3_xxs_kernel, 0, Q8_K, NULL, slm_vec_dot_iq3_xxs_q8_K},
    [SLM_DTYPE_IQ1_S] = {"IQ1_S", 256, sizeof(slm_block_iq1_s), 1, slm_dequantize_row_iq1_s, NULL,
                        slm_quantize_iq1_s_kernel, 1, Q8_K, NULL, slm_vec_dot_iq1_s_q8_K},
    [SLM_DTYPE_IQ4_NL] = {"IQ4_NL", 32, sizeof(slm_block_iq4_nl), 1, slm_dequantize_row_iq4_nl, slm_quantize_row_iq4_nl_ref,
                          slm_quantize_iq4_nl_kernel, 0, Q8_0, NULL, slm_vec_dot_iq4_nl_q8_0},
    [SLM_DTYPE_IQ3_S] = {"IQ3_S", 256, sizeof(slm_block_iq3_s), 1, slm_dequantize_row_iq3_s, slm_quantize_row_iq3_s_ref,
                        slm_quantize_iq3_s_kernel, 0, Q8_K, NULL, slm_vec_dot_iq3_s_q8_K},
    [SLM_DTYPE_IQ2_S] = {"IQ2_S", 256, sizeof(slm_block_iq2_s), 1, slm_dequantize_row_iq2_s, slm_quantize_row_iq2_s_ref,
                        slm_quantize_iq2_s_kernel, 0, Q8_K, NULL, slm_vec_dot_iq2_s_q8_K},
    [SLM_DTYPE_IQ4_XS] = {"IQ4_XS", 256, sizeof(slm_block_iq4_xs), 1, slm_dequantize_row_iq4_xs, slm_quantize_row_iq4_xs_ref,
                          slm_quantize_iq4_xs_kernel, 0, Q8_K, NULL, slm_vec_dot_iq4_xs_q8_K},
    [SLM_DTYPE_I8] = {"I8", 1, 1, 0, NULL, NULL, NULL, 0, NONE, NULL},
    [SLM_DTYPE_I16] = {"I16", 1, 2, 0, NULL, NULL, NULL, 0, NONE, NULL},
    [SLM_DTYPE_I32] = {"I32", 1, 4, 0, NULL, NULL, NULL, 0, NONE, NULL},
    [SLM_DTYPE_I64] = {"I64", 1, 8, 0, NULL, NULL, NULL, 0, NONE, NULL},
    [SLM_DTYPE_F64] = {"F64", 1, 8, 0, NULL, NULL, NULL, 0, NONE, NULL},
    [SLM_DTYPE_IQ1_M] = {"IQ1_M", 256, sizeof(slm_block_iq1_m), 1, slm_dequantize_row_iq1_m, NULL,
                        slm_quantize_iq1_m_kernel, 0, Q8_K, NULL, slm_vec_dot_iq1_m_q8_K},
    [SLM_DTYPE_TQ1_0] = {"TQ1_0", 256, 54, 1, NULL, NULL, NULL, 0, Q8_K, NULL},
    [SLM_DTYPE_TQ2_0] = {"TQ2_0", 256, 66, 1, NULL, NULL, NULL, 0, Q8_K, NULL},
    [SLM_DTYPE_MXFP4] = {"MXFP4", 32, 17, 1, NULL, NULL, NULL, 0, NONE, NULL},
    [SLM_DTYPE_NVFP4] = {"NVFP4", 64, 36, 1, NULL, NULL, NULL, 0, NONE, NULL},
    [SLM_DTYPE_Q1_0] = {"Q1_0", 128, 18, 1, NULL, NULL, NULL, 0, NONE, NULL},
    [SLM_DTYPE_Q2_0] = {"Q2_0", 64, 18, 1, NULL, NULL, NULL, 0, NONE, NULL},
};
#undef Q8_0
#undef Q8_1
#undef Q8_K
#undef NONE

/* bytes per block as ggml-common.h pins them (sizeof of the structs is asserted in quants.h) */
static_assert(sizeof(slm_block_q4_0) == 18 && sizeof(slm_block_q4_1) == 20 && sizeof(slm_block_q5_0) == 22 &&
                  sizeof(slm_block_q5_1) == 24 && sizeof(slm_block_q8_0) == 34 && sizeof(slm_block_q2_K) == 84 &&
                  sizeof(slm_block_q3_K) == 110 && sizeof(slm_block_q4_K) == 144 && sizeof(slm_block_q5_K) == 176 &&
                  sizeof(slm_block_q6_K) == 210 && sizeof(slm_block_q8_K) == 292 && sizeof(slm_block_iq4_nl) == 18 &&
                  sizeof(slm_block_iq4_xs) == 136 && sizeof(slm_block_iq2_xxs) == 66 && sizeof(slm_block_iq2_xs) == 74 &&
                  sizeof(slm_block_iq2_s) == 82 && sizeof(slm_block_iq3_xxs) == 98 && sizeof(slm_block_iq3_s) == 110 &&
                  sizeof(slm_block_iq1_s) == 50 && sizeof(slm_block_iq1_m) == 56,
              "block sizes differ from ggml's");

const slm_dtype_traits *slm_dtype_get(int type) {
    if (type < 0 || type >= SLM_DTYPE_COUNT) return NULL;
    return k_traits[type].blck_size ? &k_traits[type] : NULL;
}

const char *slm_dtype_name(int type) {
    const slm_dtype_traits *t = slm_dtype_get(type);
    return t ? t->name : "?";
}

int slm_dtype_from_name(const char *name) {
    for (int i = 0; i < SLM_DTYPE_COUNT; i++) {
        const char *n = k_traits[i].name;
        if (!n) continue;
        size_t j = 0;
        while (n[j] && name[j] && toupper((unsigned char)name[j]) == n[j]) j++;
        if (!n[j] && !name[j]) return i;
    }
    return -1;
}

size_t slm_dtype_row_size(int type, int64_t n) {
    const slm_dtype_traits *t = slm_dtype_get(type);
    size_t out;
    if (!t || n < 0 || n % t->blck_size) return 0;
    if (!slm_mul_ok((size_t)(n / t->blck_size), t->type_size, &out)) return 0;
    return out;
}

int slm_dtype_can_write(int type) {
    const slm_dtype_traits *t = slm_dtype_get(type);
    return t && t->quantize;
}

int slm_dtype_needs_imatrix(int type) {
    const slm_dtype_traits *t = slm_dtype_get(type);
    return t && t->needs_imatrix;
}

int slm_dtype_can_read(int type) {
    const slm_dtype_traits *t = slm_dtype_get(type);
    return t && t->to_float;
}

static double bits_per_weight(int type) { return 8.0 * (double)k_traits[type].type_size / (double)k_traits[type].blck_size; }

const char *slm_dtype_list_writable(char *buf, size_t cap) {
    /* most bits first, then by id: a stable order for --help */
    int ids[SLM_DTYPE_COUNT], n = 0;
    for (int t = 0; t < SLM_DTYPE_COUNT; t++) {
        if (!slm_dtype_can_write(t)) continue;
        int j = n++;
        while (j > 0 && bits_per_weight(ids[j - 1]) < bits_per_weight(t)) ids[j] = ids[j - 1], j--;
        ids[j] = t;
    }
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < n && len < cap; i++) len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? " " : "", k_traits[ids[i]].name);
    return buf;
}
