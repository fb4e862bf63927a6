/* catalog.h - the one tensor catalogue: every tensor a supported model has, by role.
 *
 * Owns: for each role, its GGUF name, its Hugging Face name, its shape in config dimensions
 * (per layer, so pruned models with per-layer widths are described too), whether it exists
 * for a config (biases, untied output, removed sub-blocks), llama.cpp's q/k row permutation,
 * its category in llama.cpp's quantization recipes, and the canonical GGUF order.
 * Used by formats/ (names, shape checks, order), model/ (where each weight lives),
 * quantize/ recipes (categories) and the exporters of in-memory models.
 * Must not: read files or tensor data.
 */
#ifndef SLM_CATALOG_H
#define SLM_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "model/config.h"

/* What a tensor is, whatever a file calls it. Per-layer roles come in block order. */
typedef enum slm_role {
    SLM_ROLE_TOKEN_EMBD,
    SLM_ROLE_ATTN_NORM,
    SLM_ROLE_ATTN_Q,
    SLM_ROLE_ATTN_Q_BIAS,
    SLM_ROLE_ATTN_K,
    SLM_ROLE_ATTN_K_BIAS,
    SLM_ROLE_ATTN_V,
    SLM_ROLE_ATTN_V_BIAS,
    SLM_ROLE_ATTN_QKV,       /* fused q | k | v rows (phi3), instead of ATTN_Q, _K, _V */
    SLM_ROLE_ATTN_Q_NORM,    /* per-head RMSNorm of q (gemma3, qwen3) */
    SLM_ROLE_ATTN_K_NORM,
    SLM_ROLE_ATTN_OUT,
    SLM_ROLE_ATTN_POST_NORM, /* RMSNorm of the attention output (gemma) */
    SLM_ROLE_FFN_NORM,
    SLM_ROLE_FFN_GATE,
    SLM_ROLE_FFN_UP,
    SLM_ROLE_FFN_DOWN,
    SLM_ROLE_FFN_POST_NORM,  /* RMSNorm of the FFN output (gemma) */
    SLM_ROLE_OUTPUT_NORM,
    SLM_ROLE_OUTPUT,
    SLM_ROLE_ROPE_LONG,      /* phi3 longrope frequency factors (first in the file) */
    SLM_ROLE_ROPE_SHORT,
    SLM_ROLE_ROPE_FREQS,     /* RoPE frequency divisors (llama3 rope scaling): generated, not in HF; first in the GGUF */
    SLM_ROLE_COUNT
} slm_role;

/* Shape dimensions in config terms (layer l where they vary): */
enum {
    SLM_DIM_NONE = 0, /* as a column count: the tensor is 1-D */
    SLM_DIM_C,        /* n_embd */
    SLM_DIM_F,        /* n_ff of layer l */
    SLM_DIM_Q,        /* n_head(l) * head_dim */
    SLM_DIM_KV,       /* n_head_kv(l) * head_dim */
    SLM_DIM_V,        /* n_vocab */
    SLM_DIM_D,        /* head_dim */
    SLM_DIM_QKV,      /* (n_head(l) + 2 n_head_kv(l)) * head_dim */
    SLM_DIM_R2,       /* head_dim / 2 (rotary pairs) */
    SLM_DIM_RF,       /* n_rope_freqs (head_dim / 2) */
};

/* The branches of llama.cpp's per-tensor type rules (llama-quant.cpp), by name there. */
typedef enum slm_tcat {
    SLM_CAT_OTHER,
    SLM_CAT_OUTPUT,
    SLM_CAT_TOKEN_EMBD,
    SLM_CAT_ATTN_V,
    SLM_CAT_ATTN_K,
    SLM_CAT_ATTN_Q,
    SLM_CAT_ATTN_OUT,
    SLM_CAT_FFN_UP,
    SLM_CAT_FFN_GATE,
    SLM_CAT_FFN_DOWN,
    SLM_CAT_NORM,
    SLM_CAT_ATTN_QKV, /* llama.cpp counts and types it as attn_v */
} slm_tcat;

/* Which sub-block a per-layer tensor belongs to (removed when that width is 0). */
enum { SLM_PART_GLOBAL, SLM_PART_ATTN, SLM_PART_FFN };

typedef struct slm_tensor_kind {
    slm_role role;
    const char *gguf;  /* GGUF name; per-layer names follow "blk.<l>." */
    const char *hf;    /* Hugging Face name; per-layer names follow "model.layers.<l>." */
    int per_layer;
    int part;          /* SLM_PART_* */
    int rows, cols;    /* SLM_DIM_*: shape (rows, cols), or (rows) when cols is SLM_DIM_NONE */
    int permute;       /* 1: q rows (n_head heads), 2: k rows (n_head_kv heads) are permuted from HF's
                          rotate-half order to GGUF's interleaved pairs, for the "llama" RoPE */
    int bias;          /* exists only when cfg.qkv_bias */
    slm_tcat category;
} slm_tensor_kind;

/* The kind of a role. */
const slm_tensor_kind *slm_catalog_kind(slm_role role);
/* Whether a config's model has this tensor at layer l (ignored for global roles). */
int slm_catalog_present(const slm_model_config *c, slm_role role, int l);
/* Shape of the tensor at layer l: returns ndim (1 or 2). */
int slm_catalog_shape(const slm_model_config *c, slm_role role, int l, int64_t shape[2]);
/* Heads for llama.cpp's q/k row permutation of the HF tensor, 0 when it is stored as is. */
int slm_catalog_permute_heads(const slm_model_config *c, slm_role role, int l);
/* GGUF / HF name of a role at layer l into buf; returns buf. */
const char *slm_catalog_gguf_name(slm_role role, int l, char *buf, size_t cap);
const char *slm_catalog_hf_name(slm_role role, int l, char *buf, size_t cap);
/* Role and layer of a GGUF / HF name; -1 when the catalogue has no such name (layer -1 for
   global roles). Layers are not checked against a config. */
int slm_catalog_parse_gguf(const char *name, int *layer);
int slm_catalog_parse_hf(const char *name, int *layer);
/* As slm_catalog_parse_hf for a config's architecture (Gemma names its norms differently). */
int slm_catalog_parse_hf_cfg(const slm_model_config *c, const char *name, int *layer);
/* Canonical GGUF order of a tensor: the generated rope tensors (phi3's rope factors, llama3's
   rope_freqs), token_embd, then block by block in role order, then output_norm and output. */
long slm_catalog_rank(slm_role role, int l);
/* Recipe category of a GGUF tensor name (SLM_CAT_OTHER for names outside the catalogue). */
slm_tcat slm_catalog_category(const char *gguf_name);

/* Calls fn for every tensor of the config's model in canonical order; stops at the first
   non-zero return and returns it. */
int slm_catalog_each(const slm_model_config *c, int (*fn)(void *ud, slm_role role, int l), void *ud);

#endif
