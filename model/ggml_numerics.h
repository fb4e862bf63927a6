/* ggml_numerics.h - llama.cpp's CPU rounding, emulated for `--numerics ggml` (and only there).
 *
 * Owns: the activation rounding ggml applies before each matmul (the weight's vec_dot type,
 * quantize/qtypes.h), F16 rounding for the KV cache, and llama.cpp's F16 flash attention.
 * Must not: be called by the f32 path (training and the default numerics read plainly and
 * never round saved activations).
 */
#ifndef SLM_GGML_NUMERICS_H
#define SLM_GGML_NUMERICS_H

#include <stddef.h>
#include <stdint.h>

/* Rounds values to f16 and back (round to nearest even), in place: what a ggml F16 tensor keeps. */
void slm_round_f16(float *x, int64_t N);

/* ggml's CPU backend multiplies a weight by activations converted to the weight's "vec_dot
   type" (the type table's vec_dot_type): F16 and BF16 weights see F16/BF16 activations,
   Q4_0/Q5_0/Q8_0/IQ4_NL (and Q4_1/Q5_1 through Q8_1, the same values) see Q8_0 activations,
   K-quants and IQ4_XS see Q8_K activations. Returns that slm_dtype, SLM_DTYPE_F32 when none. */
int slm_act_type_of(int dtype);
/* out (T,C) = inp after the type's from_float and back (to_float): Q8_0 as ggml's x86
   quantize_row_q8_0, Q8_K as quantize_row_q8_K_ref, F16/BF16 round to nearest even; F32 copies.
   C must be a multiple of the block (32 for Q8_0, 256 for Q8_K), which the weight's own rows
   guarantee. out may equal inp. */
void slm_round_rows(float *out, const float *inp, int T, int C, int act);

/* The weight types whose products --numerics ggml takes from the dot kernels (quants.h
   slm_dot_rows) on a mapped model: every type with a vec_dot except F32 (whose f32 panels are
   kept). Returns the activation type those kernels read (the table's vec_dot_type: Q8_1 for
   Q4_1/Q5_1), or -1. */
int slm_dot_act_type(int dtype);
/* dst: T rows of row_bytes (= slm_dtype_row_size(act, C)) = the rows of inp (T,C) in act, by the
   type table's from_float: the bytes ggml's CPU backend hands vec_dot (quantize_row_q8_0 / _q8_1
   / _q8_K, fp32_to_fp16, fp32_to_bf16). Parallel over rows. */
void slm_quantize_act_rows(void *dst, size_t row_bytes, const float *inp, int T, int C, int act);

/* slm_kv_store (layers.h) into an f16 cache of the same layout: k and v already rounded to f16. */
void slm_kv_store_f16(uint16_t *kc, uint16_t *vc, const float *qkv, int ld, int k_off, int v_off, int T, int pos0, int Hkv,
                      int D, int ctx);
/* The positions [0, S) of an f16 cache (both layouts) widened into f32 caches kc, vc of the same
   layout, for the attention kernels. Parallel over kv heads. */
void slm_kv_widen_f16(float *kc, float *vc, const uint16_t *kc16, const uint16_t *vc16, int S, int Hkv, int D, int ctx);

/* The same attention as llama.cpp's CPU flash attention computes it with its F16 KV cache
   (ggml_compute_forward_flash_attn_ext_f16): q, k, v must already be rounded to f16; per key
   in order: s = (float)(sum over d in double of q[d]*k[d]) * scale, online softmax with
   libm expf, the output accumulated and rescaled in f16 (fmaf, then rounded); out = acc * (1/S).
   Exact for D < 64 (ggml's AVX-512 build sums such dot products in double). Shapes and cache
   layout as slm_attention_forward (layers.h). */
void slm_attention_forward_ggml(float *out, float *lse, const float *q, int ld, const float *kc, const float *vc, int T,
                                int pos0, int H, int Hkv, int D, int ctx);
/* The scalar reference of it (the AVX2 path, D % 8 == 0, gives the same bits). */
void slm_attention_forward_ggml_ref(float *out, float *lse, const float *q, int ld, const float *kc, const float *vc, int T,
                                    int pos0, int H, int Hkv, int D, int ctx);

#endif
