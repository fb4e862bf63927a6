/* config.h - hyperparameters of a Llama-family model ("the blueprint").
 *
 * Owns: slm_model_config, filled from config.json (formats/hf_config.c) or from GGUF metadata
 * (formats/model_src.c), and read by the reference transformer and the writers.
 * Dimension legend used across model/: C model dim, F ffn dim, H heads, Hkv kv heads,
 * D head dim, V vocab, L layers.
 */
#ifndef SLM_CONFIG_H
#define SLM_CONFIG_H

#include <stdint.h>

typedef enum slm_arch {
    SLM_ARCH_LLAMA = 1, /* LlamaForCausalLM, MistralForCausalLM: GGUF "llama", rope NORM (pairs) */
    SLM_ARCH_QWEN2 = 2, /* Qwen2ForCausalLM: GGUF "qwen2", q/k/v biases, rope NEOX (halves) */
} slm_arch;

/* The most layers a model may have (llama.cpp's LLAMA_MAX_LAYERS). */
#define SLM_MAX_LAYERS 512

typedef struct slm_model_config {
    int arch;            /* slm_arch */
    char hf_arch[64];    /* e.g. "LlamaForCausalLM" (empty when read from GGUF) */
    int n_embd;          /* C */
    int n_ff;            /* F */
    int n_layer;         /* L */
    int n_head;          /* H */
    int n_head_kv;       /* Hkv */
    int head_dim;        /* D (n_embd / n_head unless config says otherwise) */
    int n_vocab;         /* V */
    int n_ctx_train;     /* max_position_embeddings */
    float norm_eps;      /* rms_norm_eps */
    float rope_theta;
    float rope_scale;    /* linear rope scaling factor, 1 when none */
    int tied_embeddings; /* no lm_head / output.weight: the classifier is token_embd */
    int qkv_bias;        /* q/k/v projections have biases (Qwen2) */
    int bos_id, eos_id;  /* from config.json, -1 when absent */
    /* Per-layer widths (pruned models, GGUF "deci"): when per_layer is set, layer l has
       n_head_l[l] query heads, n_head_kv_l[l] kv heads and n_ff_l[l] FFN channels, 0 meaning
       that sub-block is removed; n_head / n_head_kv / n_ff then hold the largest values.
       Otherwise every layer has n_head, n_head_kv, n_ff. Read them through the accessors. */
    int per_layer;
    int n_head_l[SLM_MAX_LAYERS], n_head_kv_l[SLM_MAX_LAYERS], n_ff_l[SLM_MAX_LAYERS];
} slm_model_config;

static inline int slm_cfg_n_head(const slm_model_config *c, int l) { return c->per_layer ? c->n_head_l[l] : c->n_head; }
static inline int slm_cfg_n_head_kv(const slm_model_config *c, int l) {
    return c->per_layer ? c->n_head_kv_l[l] : c->n_head_kv;
}
static inline int slm_cfg_n_ff(const slm_model_config *c, int l) { return c->per_layer ? c->n_ff_l[l] : c->n_ff; }

/* GGUF architecture string for an arch ("llama", "qwen2"). */
static inline const char *slm_arch_gguf_name(int arch) {
    return arch == SLM_ARCH_QWEN2 ? "qwen2" : arch == SLM_ARCH_LLAMA ? "llama" : "?";
}

#endif
