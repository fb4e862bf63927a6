/* q_dot.c - dot products of stored weight rows with activation rows: the dispatch.
 *
 * Owns: the kernel table per weight type (scalar reference, AVX2 tile), slm_dot_rows[_kernel]
 * with its preconditions (SLM_ASSERTed once here, like ggml's dispatch point), the public
 * single-row entry points the type table names (slm_vec_dot_<t>_<vt>: a 1 x 1 tile on AVX2, so a
 * single dot product and a batched one are the same code), and the CPU check.
 * Must not: allocate, print, or use OpenMP (callers parallelise); know about files or models.
 */
#include "quantize/quants.h"

#include "core/cpu.h"
#include "core/slm.h"
#include "quantize/q_dot_impl.h"
#include "quantize/qtypes.h"

/* The scalar reference of each weight type (NULL: no dot product). */
static const slm_dot_ref_fn k_ref[SLM_DTYPE_COUNT] = {
    [SLM_DTYPE_F32] = slm_vec_dot_f32_f32_ref,
    [SLM_DTYPE_F16] = slm_vec_dot_f16_f16_ref,
    [SLM_DTYPE_BF16] = slm_vec_dot_bf16_bf16_ref,
    [SLM_DTYPE_Q4_0] = slm_vec_dot_q4_0_q8_0_ref,
    [SLM_DTYPE_Q4_1] = slm_vec_dot_q4_1_q8_1_ref,
    [SLM_DTYPE_Q5_0] = slm_vec_dot_q5_0_q8_0_ref,
    [SLM_DTYPE_Q5_1] = slm_vec_dot_q5_1_q8_1_ref,
    [SLM_DTYPE_Q8_0] = slm_vec_dot_q8_0_q8_0_ref,
    [SLM_DTYPE_IQ4_NL] = slm_vec_dot_iq4_nl_q8_0_ref,
    [SLM_DTYPE_Q2_K] = slm_vec_dot_q2_K_q8_K_ref,
    [SLM_DTYPE_Q3_K] = slm_vec_dot_q3_K_q8_K_ref,
    [SLM_DTYPE_Q4_K] = slm_vec_dot_q4_K_q8_K_ref,
    [SLM_DTYPE_Q5_K] = slm_vec_dot_q5_K_q8_K_ref,
    [SLM_DTYPE_Q6_K] = slm_vec_dot_q6_K_q8_K_ref,
    [SLM_DTYPE_IQ4_XS] = slm_vec_dot_iq4_xs_q8_K_ref,
    [SLM_DTYPE_IQ2_XXS] = slm_vec_dot_iq2_xxs_q8_K_ref,
    [SLM_DTYPE_IQ2_XS] = slm_vec_dot_iq2_xs_q8_K_ref,
    [SLM_DTYPE_IQ2_S] = slm_vec_dot_iq2_s_q8_K_ref,
    [SLM_DTYPE_IQ3_XXS] = slm_vec_dot_iq3_xxs_q8_K_ref,
    [SLM_DTYPE_IQ3_S] = slm_vec_dot_iq3_s_q8_K_ref,
    [SLM_DTYPE_IQ1_S] = slm_vec_dot_iq1_s_q8_K_ref,
    [SLM_DTYPE_IQ1_M] = slm_vec_dot_iq1_m_q8_K_ref,
};

#if SLM_X86_KERNELS
/* The AVX2 path of each weight type (its file documents the tile). */
static const slm_dot_avx2 *const k_avx2[SLM_DTYPE_COUNT] = {
    [SLM_DTYPE_F32] = &slm_dot_avx2_f32,
    [SLM_DTYPE_F16] = &slm_dot_avx2_f16,
    [SLM_DTYPE_BF16] = &slm_dot_avx2_bf16,
    [SLM_DTYPE_Q4_0] = &slm_dot_avx2_q4_0,
    [SLM_DTYPE_Q4_1] = &slm_dot_avx2_q4_1,
    [SLM_DTYPE_Q5_0] = &slm_dot_avx2_q5_0,
    [SLM_DTYPE_Q5_1] = &slm_dot_avx2_q5_1,
    [SLM_DTYPE_Q8_0] = &slm_dot_avx2_q8_0,
    [SLM_DTYPE_IQ4_NL] = &slm_dot_avx2_iq4_nl,
    [SLM_DTYPE_Q2_K] = &slm_dot_avx2_q2_K,
    [SLM_DTYPE_Q3_K] = &slm_dot_avx2_q3_K,
    [SLM_DTYPE_Q4_K] = &slm_dot_avx2_q4_K,
    [SLM_DTYPE_Q5_K] = &slm_dot_avx2_q5_K,
    [SLM_DTYPE_Q6_K] = &slm_dot_avx2_q6_K,
    [SLM_DTYPE_IQ4_XS] = &slm_dot_avx2_iq4_xs,
    [SLM_DTYPE_IQ2_XXS] = &slm_dot_avx2_iq2_xxs,
    [SLM_DTYPE_IQ2_XS] = &slm_dot_avx2_iq2_xs,
    [SLM_DTYPE_IQ2_S] = &slm_dot_avx2_iq2_s,
    [SLM_DTYPE_IQ3_XXS] = &slm_dot_avx2_iq3_xxs,
    [SLM_DTYPE_IQ3_S] = &slm_dot_avx2_iq3_s,
    [SLM_DTYPE_IQ1_S] = &slm_dot_avx2_iq1_s,
    [SLM_DTYPE_IQ1_M] = &slm_dot_avx2_iq1_m,
};
#endif

int slm_dot_cpu_ok(void) { return slm_cpu_has_avx2_fma(); /* every AVX2 CPU also has F16C */ }
int slm_dot_cpu_avx512(void) { return slm_cpu_has_avx512vnni(); }

static int use_avx2(slm_quant_kernel kernel) { return SLM_X86_KERNELS && kernel == SLM_KERNEL_AUTO && slm_dot_cpu_ok(); }

#if SLM_X86_KERNELS
/* The fastest tile of a type on this CPU (use_avx2 holds). */
static const slm_dot_avx2 *fast_tile(int type) {
    if (slm_dot_avx512[type] && slm_dot_cpu_avx512()) return slm_dot_avx512[type];
    return k_avx2[type];
}
#endif

/* The contract of slm_dot_rows, checked once per call. */
static void check(int type, int64_t n, int nr, int nc, size_t ld_out, const void *w, size_t wb, const void *a,
                  size_t ab) {
    const slm_dtype_traits *tr = slm_dtype_get(type);
    SLM_ASSERT(tr && tr->vec_dot && k_ref[type]);
    SLM_ASSERT(n > 0 && nr >= 0 && nc >= 0 && (nc <= 1 || ld_out >= (size_t)nr));
    const size_t w_bytes = slm_dtype_row_size(type, n), a_bytes = slm_dtype_row_size(tr->vec_dot_type, n);
    SLM_ASSERT(w_bytes > 0 && a_bytes > 0); /* n a multiple of both block sizes */
    SLM_ASSERT((nr <= 1 || wb >= w_bytes) && (nc <= 1 || ab >= a_bytes));
    SLM_ASSERT(((uintptr_t)w & 1) == 0 && (wb & 1) == 0);   /* GGUF: 2-byte aligned blocks */
    const uintptr_t a_align = tr->vec_dot_type == SLM_DTYPE_Q8_K ? 3 : 1; /* q8_K holds a float */
    SLM_ASSERT(((uintptr_t)a & a_align) == 0 && (nc <= 1 || (ab & a_align) == 0));
}

void slm_dot_rows_kernel(slm_quant_kernel kernel, int type, int64_t n, int nr, int nc, float *restrict out,
                         size_t ld_out, const void *restrict w, size_t w_row_bytes, const void *restrict a,
                         size_t a_row_bytes) {
    check(type, n, nr, nc, ld_out, w, w_row_bytes, a, a_row_bytes);
#if SLM_X86_KERNELS
    if (use_avx2(kernel)) {
        fast_tile(type)->tile(n, nr, nc, out, ld_out, w, w_row_bytes, a, a_row_bytes);
        return;
    }
#endif
    for (int c = 0; c < nc; c++)
        for (int r = 0; r < nr; r++)
            k_ref[type](n, out + (size_t)c * ld_out + r, (const uint8_t *)w + (size_t)r * w_row_bytes,
                   (const uint8_t *)a + (size_t)c * a_row_bytes);
}

void slm_dot_rows(int type, int64_t n, int nr, int nc, float *restrict out, size_t ld_out, const void *restrict w,
                  size_t w_row_bytes, const void *restrict a, size_t a_row_bytes) {
    slm_dot_rows_kernel(SLM_KERNEL_AUTO, type, n, nr, nc, out, ld_out, w, w_row_bytes, a, a_row_bytes);
}

static int has_dot(int type) { return type >= 0 && type < SLM_DTYPE_COUNT && k_ref[type]; }

void slm_dot_tile_shape(int type, int *rows, int *cols) {
    *rows = *cols = 1;
#if SLM_X86_KERNELS
    if (has_dot(type) && use_avx2(SLM_KERNEL_AUTO)) *rows = fast_tile(type)->rows, *cols = fast_tile(type)->cols;
#endif
}

const char *slm_dot_kernel_name(int type) {
    if (!has_dot(type) || !use_avx2(SLM_KERNEL_AUTO)) return "ref";
#if SLM_X86_KERNELS
    if (fast_tile(type) != k_avx2[type]) return "avx512vnni";
#endif
    return "avx2";
}

/* ---- the type table's vec_dot: one pair */

static void vec_dot(int type, int64_t n, float *restrict s, const void *restrict w, const void *restrict a) {
    slm_dot_rows_kernel(SLM_KERNEL_AUTO, type, n, 1, 1, s, 1, w, 0, a, 0);
}

void slm_vec_dot_f32_f32(int64_t n, float *restrict s, const void *restrict w, const void *restrict a) {
    vec_dot(SLM_DTYPE_F32, n, s, w, a);
}
void slm_vec_dot_f16_f16(int64_t n, float *restrict s, const void *restrict w, const void *restrict a) {
    vec_dot(SLM_DTYPE_F16, n, s, w, a);
}
void slm_vec_dot_bf16_bf16(int64_t n, float *restrict s, const void *restrict w, const void *restrict a) {
    vec_dot(SLM_DTYPE_BF16, n, s, w, a);
}
void slm_vec_dot_q4_0_q8_0(int64_t n, float *restrict s, const void *restrict w, const void *restrict a) {
    vec_dot(SLM_DTYPE_Q4_0, n, s, w, a);
}
void slm_vec_dot_q4_1_q8_1(int64_t n, float *restrict s, const void *restrict w, const void *restrict a) {
    vec_dot(SLM_DTYPE_Q4_1, n, s, w, a);
}
void slm_vec_dot_q5_0_q8_0(int64_t n, float *restrict s, const void *restrict w, const void *restrict a) {
    vec_dot(SLM_DTYPE_Q5_0, n, s, w, a);
}
void slm_vec_dot_q5_1_q8_1(int64_t n, float *restrict s, const void *restrict w, const void *restrict a) {
    vec_dot(SLM_DTYPE_Q5_1, n, s, w, a);
}
void slm_vec_dot_q8_0_q8_0(int64_t n, float *restrict s, const void *restrict w, const void *restrict a) {
    vec_dot(SLM_DTYPE_Q8_0, n, s, w, a);
}
void slm_vec_dot_iq4_nl_q8_0(int64_t n, float *restrict s, const void *restrict w, const void *restrict a) {
    vec_dot(SLM_DTYPE_IQ4_NL, n, s, w, a);
}
void slm_vec_dot_q2_K_q8_K(int64_t n, float *restrict s, const void *restrict w, const void *restrict a) {
    vec_dot(SLM_DTYPE_Q2_K, n, s, w, a);
}
void slm_vec_dot_q3_K_q8_K(int64_t n, float *restrict s, const void *restrict w, const void *restrict a) {
    vec_dot(SLM_DTYPE_Q3_K, n, s, w, a);
}
void slm_vec_dot_q4_K_q8_K(int64_t n, float *restrict s, const void *restrict w, const void *restrict a) {
    vec_dot(SLM_DTYPE_Q4_K, n, s, w, a);
}
void slm_vec_dot_q5_K_q8_K(int64_t n, float *restrict s, const void *restrict w, const void *restrict a) {
    vec_dot(SLM_DTYPE_Q5_K, n, s, w, a);
}
void slm_vec_dot_q6_K_q8_K(int64_t n, float *restrict s, const void *restrict w, const void *restrict a) {
    vec_dot(SLM_DTYPE_Q6_K, n, s, w, a);
}
void slm_vec_dot_iq4_xs_q8_K(int64_t n, float *restrict s, const void *restrict w, const void *restrict a) {
    vec_dot(SLM_DTYPE_IQ4_XS, n, s, w, a);
}
void slm_vec_dot_iq2_xxs_q8_K(int64_t n, float *restrict s, const void *restrict w, const void *restrict a) {
    vec_dot(SLM_DTYPE_IQ2_XXS, n, s, w, a);
}
void slm_vec_dot_iq2_xs_q8_K(int64_t n, float *restrict s, const void *restrict w, const void *restrict a) {
    vec_dot(SLM_DTYPE_IQ2_XS, n, s, w, a);
}
void slm_vec_dot_iq2_s_q8_K(int64_t n, float *restrict s, const void *restrict w, const void *restrict a) {
    vec_dot(SLM_DTYPE_IQ2_S, n, s, w, a);
}
void slm_vec_dot_iq3_xxs_q8_K(int64_t n, float *restrict s, const void *restrict w, const void *restrict a) {
    vec_dot(SLM_DTYPE_IQ3_XXS, n, s, w, a);
}
void slm_vec_dot_iq3_s_q8_K(int64_t n, float *restrict s, const void *restrict w, const void *restrict a) {
    vec_dot(SLM_DTYPE_IQ3_S, n, s, w, a);
}
void slm_vec_dot_iq1_s_q8_K(int64_t n, float *restrict s, const void *restrict w, const void *restrict a) {
    vec_dot(SLM_DTYPE_IQ1_S, n, s, w, a);
}
void slm_vec_dot_iq1_m_q8_K(int64_t n, float *restrict s, const void *restrict w, const void *restrict a) {
    vec_dot(SLM_DTYPE_IQ1_M, n, s, w, a);
}
