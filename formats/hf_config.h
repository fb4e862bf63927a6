/* hf_config.h - Hugging Face config.json -> slm_model_config, and HF -> GGUF tensor names.
 *
 * Owns: the supported architectures (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM),
 * hyperparameter validation, the HF -> GGUF name table and llama.cpp's q/k row permutation
 * (HF stores RoPE in rotate-half order; GGUF "llama" expects interleaved pairs).
 * Must not: read tensor data.
 */
#ifndef SLM_HF_CONFIG_H
#define SLM_HF_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "model/config.h"

/* Reads dir/config.json. Errors name the file and the field. */
int slm_hf_config_load(slm_model_config *c, const char *dir, slm_err *err);
/* Parses config.json text (len bytes); `what` names the file in messages. */
int slm_hf_config_parse(slm_model_config *c, const char *json, size_t len, const char *what, slm_err *err);
/* config.json text for c (formats/hf_config_write.c): the base config.json (len bytes, NULL to
   write one from c alone) with the widths, layers, vocab, tying and torch_dtype of c (dtype:
   slm_dtype of the weights), head_dim when it differs from hidden / heads; the other keys kept
   in order. *out is allocated (slm_free), NUL-terminated, ends with a newline. Per-layer widths
   are refused (SLM_E_UNSUPPORTED). */
int slm_hf_config_write(const slm_model_config *c, const char *base, size_t len, int dtype, char **out, slm_err *err);
/* Checks a config for consistency (also used for configs read from GGUF). */
int slm_model_config_check(const slm_model_config *c, slm_err *err);

enum { SLM_NAME_UNKNOWN = -1, SLM_NAME_SKIP = 0, SLM_NAME_MAPPED = 1 };

/* HF tensor name -> GGUF name (out, >= 64 bytes). *permute_heads is set to the head count
   for q/k weights that need llama.cpp's row permutation, else 0. Returns SLM_NAME_*. */
int slm_hf_name_to_gguf(const slm_model_config *c, const char *hf, char *out, size_t cap, int *permute_heads);

/* GGUF row r of a permuted q/k weight with nrows rows comes from HF row slm_qk_src_row(r):
   per head, GGUF row 2i+j (pair i, element j) is HF row j*D/2 + i (D = nrows / n_heads). */
static inline int64_t slm_qk_src_row(int64_t r, int64_t nrows, int n_heads) {
    int64_t D = nrows / n_heads, h = r / D, k = r % D;
    return h * D + (k % 2) * (D / 2) + k / 2;
}

#endif
