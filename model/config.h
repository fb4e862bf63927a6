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
    SLM_ARCH_QWEN3 = 13, /* Qwen3ForCausalLM: GGUF "qwen3", per-head q/k RMSNorm, rope NEOX, no biases */
    SLM_ARCH_GEMMA2 = 10, /* Gemma2ForCausalLM: GGUF "gemma2" (see slm_gemma below) */
    SLM_ARCH_GEMMA3 = 11, /* Gemma3ForCausalLM: GGUF "gemma3" */
    SLM_ARCH_PHI3 = 12,   /* Phi3ForCausalLM: GGUF "phi3" (see slm_phi3 below) */
} slm_arch;

static inline int slm_arch_is_gemma(int arch) { return arch == SLM_ARCH_GEMMA2 || arch == SLM_ARCH_GEMMA3; }
/* The arch has attn_q_norm / attn_k_norm: RMSNorm of each q and k head before RoPE. */
static inline int slm_arch_has_qk_norm(int arch) { return arch == SLM_ARCH_GEMMA3 || arch == SLM_ARCH_QWEN3; }

/* Gemma 2/3 (docs/families.md sections 5, 6), all as llama.cpp runs them: embeddings scaled
   by sqrtf(C), norms stored with the + 1 (GGUF) and post-attention / post-FFN norms, GeGLU FFN
   (tanh GELU), NEOX RoPE, q pre-scaled by attn_scale, soft caps cap*tanh(x/cap) (0: none),
   sliding-window layers (layer l slides iff l % swa_pattern < swa_pattern - 1), Gemma 3's
   per-head q/k norms and its own RoPE base on sliding layers. */
typedef struct slm_gemma {
    float attn_softcap, final_softcap; /* 0 when absent */
    int n_swa;                         /* window (query sees keys p1 - p0 < n_swa), 0: none */
    int swa_pattern;                   /* 2 (gemma2), 6 (gemma3) */
    float rope_theta_swa;              /* gemma3 sliding layers (10000 default) */
    float attn_scale;                  /* 1/sqrt(head_dim) (27B: 1/sqrt(C/H)) */
} slm_gemma;

/* Phi-3 / Phi-3.5 (docs/families.md 4), as llama.cpp runs them: one fused attn_qkv matrix
   (rows q | k | v) and one fused ffn_up (rows gate | up, 2F), NEOX RoPE whose theta_i is divided
   by a frequency factor, the long factors when the context exceeds orig_ctx, else the short
   ones, with cos and sin times attn_factor. The sliding window is not applied (llama.cpp). */
#define SLM_PHI3_MAX_FACTORS 256
typedef struct slm_phi3 {
    int orig_ctx;      /* rope.scaling.original_context_length */
    int n_swa;         /* attention.sliding_window as written (0: none); not applied */
    int n_factors;     /* head_dim / 2 with longrope, 0: no factors (Phi-3-mini-4k) */
    float attn_factor; /* rope.scaling.attn_factor (1 without factors) */
    float long_factor[SLM_PHI3_MAX_FACTORS], short_factor[SLM_PHI3_MAX_FACTORS];
    char basename[64], finetune[64], size_label[64]; /* general.* from config.json _name_or_path (converter) */
} slm_phi3;
/* Llama 3 RoPE scaling (config.json rope_scaling {"rope_type": "llama3", ...}; docs/families.md 1):
   llama.cpp's converter turns these into the divisors of each rotary pair's frequency, the F32
   tensor rope_freqs.weight (D/2 values, the first tensor), and writes no key. */
typedef struct slm_rope_llama3 {
    float factor, low_freq_factor, high_freq_factor; /* defaults 8, 1, 4 */
    int orig_ctx;                                    /* original_max_position_embeddings, default 8192 */
} slm_rope_llama3;

/* The most rotary pairs of a frequency-factor tensor (head_dim <= 512, model/transformer.c). */
#define SLM_MAX_ROPE_FREQS 256

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
    int head_dim_key;    /* config.json has head_dim (GGUF: attention.key_length): the converter writes
                            key_length and value_length even when D = C/H */
    /* Per-pair RoPE frequency divisors: pair i turns by pos * theta^(-2i/D) / rope_freqs[i]
       (GGUF tensor rope_freqs.weight). n_rope_freqs is 0 (none) or D/2. rope_llama3 is set when
       the config.json parameters that made them are known (an HF folder), 0 from a GGUF. */
    int n_rope_freqs;
    float rope_freqs[SLM_MAX_ROPE_FREQS];
    int rope_llama3;
    slm_rope_llama3 llama3;
    int tied_embeddings; /* no lm_head / output.weight: the classifier is token_embd */
    int qkv_bias;        /* q/k/v projections have biases (Qwen2) */
    int bos_id, eos_id;  /* from config.json, -1 when absent */
    /* Per-layer widths (pruned models, GGUF "deci"): when per_layer is set, layer l has
       n_head_l[l] query heads, n_head_kv_l[l] kv heads and n_ff_l[l] FFN channels, 0 meaning
       that sub-block is removed; n_head / n_head_kv / n_ff then hold the largest values.
       Otherwise every layer has n_head, n_head_kv, n_ff. Read them through the accessors. */
    int per_layer;
    slm_gemma gemma;     /* arch gemma2 / gemma3 only */
    slm_phi3 phi3;       /* arch phi3 only */
    int n_head_l[SLM_MAX_LAYERS], n_head_kv_l[SLM_MAX_LAYERS], n_ff_l[SLM_MAX_LAYERS];
} slm_model_config;

static inline int slm_cfg_n_head(const slm_model_config *c, int l) { return c->per_layer ? c->n_head_l[l] : c->n_head; }
static inline int slm_cfg_n_head_kv(const slm_model_config *c, int l) {
    return c->per_layer ? c->n_head_kv_l[l] : c->n_head_kv;
}
static inline int slm_cfg_n_ff(const slm_model_config *c, int l) { return c->per_layer ? c->n_ff_l[l] : c->n_ff; }

/* GGUF architecture string for an arch ("llama", "qwen2"). */
static inline const char *slm_arch_gguf_name(int arch) {
    return arch == SLM_ARCH_QWEN2 ? "qwen2" : arch == SLM_ARCH_LLAMA ? "llama" : arch == SLM_ARCH_GEMMA2 ? "gemma2"
           : arch == SLM_ARCH_GEMMA3 ? "gemma3" : arch == SLM_ARCH_QWEN3 ? "qwen3" : arch == SLM_ARCH_PHI3 ? "phi3" : "?";
}

/* Layer l of a gemma model uses the sliding window. */
static inline int slm_cfg_is_swa(const slm_model_config *c, int l) {
    return slm_arch_is_gemma(c->arch) && c->gemma.n_swa > 0 && c->gemma.swa_pattern > 0 &&
           l % c->gemma.swa_pattern < c->gemma.swa_pattern - 1;
}

#endif
