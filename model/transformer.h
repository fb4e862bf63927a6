/* transformer.h - the reference Llama-family transformer (Llama, Mistral-style GQA, Qwen2).
 *
 * Owns: slm_model, i.e. the hyperparameters, every parameter in ONE flat f32 buffer (size
 * table + pointer table, llm.c's fill_in_parameter_sizes), the activations of one call in
 * ONE flat buffer sized for the largest call the caller asked for (kept per layer, so
 * `*_backward` passes can be added beside each forward), the RoPE table and the KV cache;
 * building it from a model source, and the forward pass.
 * Must not: print, tokenize, or know file formats: weights come from an slm_tensor_src.
 *
 * Dimension legend (as model/layers.h): B sequences of a call, T tokens per sequence, N = B*T,
 * C model dim, F ffn dim, H heads, Hkv kv heads, D head dim, QKV = (H + 2 Hkv) D, V vocab,
 * L layers. H, Hkv and F may differ per layer (model/config.h: pruned models); a layer with
 * H = 0 has no attention, one with F = 0 no MLP. Every size and pointer table below is built
 * from the per-layer widths, never from L x one width.
 *
 * Usage:
 *   slm_model m = {0};
 *   slm_model_build(&m, &cfg, &src, 512, 0, &err);       // max_ctx: cache and activation size
 *   slm_model_forward(&m, ids, T, 0, 0, logits, &err);   // (T, V) logits of a window
 *   slm_model_forward(&m, &next, 1, T, 0, logits, &err); // decode one more token
 *   slm_model_free(&m);
 *
 * Numerics: f32 weights (quantized sources dequantized exactly as ggml does), f32
 * activations, FMA dot products in a fixed order. The logits of a token do not depend on
 * the thread count, on how the sequence was split into calls, or on the CPU path (AVX2 or
 * scalar): they are bit-identical.
 */
#ifndef SLM_TRANSFORMER_H
#define SLM_TRANSFORMER_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/tensor.h"
#include "model/config.h"
#include "model/layers.h"

/* Parameters, in buffer order. Matrices are panel-packed (model/layers.h: 16 rows
   transposed per panel), one matrix per layer, layer after layer (each its own width);
   vectors are plain. GGUF names in brackets (model/catalog.h has them all). A layer whose
   attention or MLP is removed has no entries there. */
enum {
    SLM_P_WTE,   /* (V, C) [token_embd.weight]; also the classifier when tied */
    SLM_P_LN1W,  /* (L, C) [blk.N.attn_norm.weight] */
    SLM_P_WQ,    /* (L, H*D, C) [attn_q.weight] */
    SLM_P_WK,    /* (L, Hkv*D, C) [attn_k.weight] */
    SLM_P_WV,    /* (L, Hkv*D, C) [attn_v.weight] */
    SLM_P_BQKV,  /* (L, QKV) [attn_q.bias | attn_k.bias | attn_v.bias], empty unless cfg.qkv_bias */
    SLM_P_WO,    /* (L, C, H*D) [attn_output.weight] */
    SLM_P_LN2W,  /* (L, C) [ffn_norm.weight] */
    SLM_P_WGATE, /* (L, F, C) [ffn_gate.weight] */
    SLM_P_WUP,   /* (L, F, C) [ffn_up.weight] */
    SLM_P_WDOWN, /* (L, C, F) [ffn_down.weight] */
    SLM_P_LNFW,  /* (C) [output_norm.weight] */
    SLM_P_WCLS,  /* (V, C) [output.weight], empty when tied */
    SLM_P_QNORM, /* (L, D) [attn_q_norm.weight], gemma3 and qwen3 only */
    SLM_P_KNORM, /* (L, D) [attn_k_norm.weight], gemma3 and qwen3 only */
    SLM_P_POSTATTN, /* (L, C) [post_attention_norm.weight], gemma only */
    SLM_P_POSTFFN,  /* (L, C) [post_ffw_norm.weight], gemma only */
    SLM_NUM_PARAMETER_TENSORS
};

typedef struct slm_model_params {
    float *wte, *ln1w, *wq, *wk, *wv, *bqkv, *wo, *ln2w, *wgate, *wup, *wdown, *lnfw;
    float *wcls; /* == wte when tied */
    float *qnorm, *knorm, *postattn, *postffn; /* gemma */
} slm_model_params;

/* The matrices of a layer, for per-matrix facts (the stored type). */
enum { SLM_M_Q, SLM_M_K, SLM_M_V, SLM_M_O, SLM_M_GATE, SLM_M_UP, SLM_M_DOWN, SLM_LAYER_MATRICES };

/* How a forward rounds (model.numerics, set after build; default F32):
   SLM_NUMERICS_F32: f32 activations and KV cache; weights as dequantized.
   SLM_NUMERICS_GGML: what llama.cpp's CPU backend computes with the same weights: matmul inputs
   rounded to each weight's ggml vec_dot type (Q8_0 for Q4_0/Q8_0..., Q8_K for K-quants, F16 for
   F16 weights; layers.h slm_act_type_of), an F16 KV cache, and flash attention as the AVX-512
   build runs it: tiled in f32 for >= 64 queries with D % 16 == 0, else per query with an F16 q
   and an F16 accumulator (slm_attention_forward_ggml). On a mapped model the stored F16/BF16/
   quantized matrices multiply the activations quantized to that type (ggml_numerics.h
   slm_quantize_act_rows) with ggml's dot products (layers.h slm_matmul_forward_dot: its AVX2
   vec_dot bit for bit); F32 matrices, and every matrix of an f32 build, use the f32 panels on
   the rounded activations. Not bit-exact with llama.cpp (its build for this CPU may sum in
   another order: AVX-512 f16 dots, repacked Q4_0/Q4_K GEMMs; f16 rounding magnifies those
   ulps), but perplexities agree with llama.cpp's to about 1e-4 relative where the f32
   numerics of quantized models differ by up to 3e-4. */
enum { SLM_NUMERICS_F32 = 0, SLM_NUMERICS_GGML = 1 };

/* Activations of one call of N = B*T <= max_batch * max_ctx tokens, per layer where a
   backward would need them (layer l's slot sized by its own widths). */
enum {
    SLM_A_ENCODED,    /* (N, C) token embeddings: the residual stream entering layer 0 */
    SLM_A_LN1,        /* (L, N, C) */
    SLM_A_LN1_RSTD,   /* (L, N) */
    SLM_A_QKV,        /* (L, N, QKV) q | k | v, q and k after RoPE */
    SLM_A_ATTY,       /* (L, N, H*D) attention output before the projection */
    SLM_A_ATT_LSE,    /* (L, N, H) log-sum-exp of the scores (to recompute probabilities) */
    SLM_A_ATTPROJ,    /* (L, N, C) */
    SLM_A_RESIDUAL2,  /* (L, N, C) stream after attention (a copy of the input when it is removed) */
    SLM_A_LN2,        /* (L, N, C) */
    SLM_A_LN2_RSTD,   /* (L, N) */
    SLM_A_FCH,        /* (L, N, 2F) gate | up */
    SLM_A_FCH_SWIGLU, /* (L, N, F) */
    SLM_A_FCPROJ,     /* (L, N, C) */
    SLM_A_RESIDUAL3,  /* (L, N, C) stream after the MLP: the next layer's input */
    SLM_A_LNF,        /* (N, C) */
    SLM_A_LNF_RSTD,   /* (N) */
    SLM_NUM_ACTIVATION_TENSORS
};

typedef struct slm_model_acts {
    float *encoded, *ln1, *ln1_rstd, *qkv, *atty, *att_lse, *attproj, *residual2, *ln2, *ln2_rstd, *fch, *fch_swiglu,
        *fcproj, *residual3, *lnf, *lnf_rstd;
} slm_model_acts;

/* Observers see activations during a forward, between kernels, on the calling thread:
   calibration statistics (model/calib), teacher features. matmul_input: the input x (N, cols)
   of matrix `matrix` (SLM_M_*) of layer l, or of the classifier (l = n_layer, matrix 0), as the
   f32 path computes it (before any ggml rounding). hidden: the residual stream x (N, C) after
   layer l (l = -1: the embeddings). Either may be NULL. Nothing an observer does changes the
   forward's numbers. */
typedef struct slm_forward_observer {
    void (*matmul_input)(void *ud, int l, int matrix, const float *x, int64_t N, int cols);
    void (*hidden)(void *ud, int l, const float *x, int64_t N, int C);
    void *ud;
} slm_forward_observer;

typedef struct slm_model {
    slm_model_config cfg; /* the blueprint (copied from the source) */
    int max_ctx;          /* positions the KV cache holds; also the largest T of one call */
    int max_batch;        /* sequences of one call (each with its own KV cache) */
    int max_tokens;       /* B*T of one call: activations and scratch are sized by it */
    int ctx_pad;          /* max_ctx rounded up to 16 (the key cache's panels) */
    int neox;             /* RoPE pairs: 0 adjacent (llama), 1 halves (qwen2) */

    size_t param_sizes[SLM_NUM_PARAMETER_TENSORS]; /* floats */
    size_t num_parameters;                         /* floats in params_memory (incl. panel padding) */
    int64_t n_params;                              /* real parameter count (the model card's) */
    float *params_memory;
    slm_model_params params;
    size_t *param_off;  /* (SLM_NUM_PARAMETER_TENSORS, L): layer l's floats start at params.<p> + off */

    int keep_acts;      /* SLM_BUILD_KEEP_ACTS: per-layer activation slots */
    int n_act_slots;    /* L with keep_acts, else 1 (sized for the widest layer) */
    size_t act_sizes[SLM_NUM_ACTIVATION_TENSORS];
    size_t num_activations;
    float *acts_memory;
    slm_model_acts acts;
    size_t *act_off;    /* (SLM_NUM_ACTIVATION_TENSORS, n_act_slots): slot s starts at acts.<a> + off */

    int numerics;       /* SLM_NUMERICS_*; may be changed between forwards */
    int8_t *act_type;   /* (L * SLM_LAYER_MATRICES + 1) slm_dtype ggml rounds each matrix's input to
                           (ggml_numerics.h), the classifier last */
    float *scratch;     /* (max_batch * max_ctx, widest input) matmul inputs rounded as ggml does */

    int mapped;         /* SLM_BUILD_MAPPED */
    slm_wmat *wmats;    /* (L * SLM_LAYER_MATRICES + 2) stored matrices: layer matrices, then the
                           classifier, then the token embedding; NULL unless mapped */
    uint8_t **owned;    /* (same count) copies the model owns, or NULL entries */
    float *panel_scratch; /* (n_panel_threads, slm_matmul_scratch_floats(widest)) */
    int n_panel_threads;
    uint8_t *bad_panels; /* (widest output / 16 + 1) NaN/Inf flags of the last typed matmul */
    int bad_weight;      /* index into wmats of a matrix found non-finite, -1 */

    float *rope_cs;     /* (max_ctx, D/2, 2): cos, sin of pos * theta^(-2i/D) / rope_scale */
    float *rope_cs_swa; /* gemma's sliding-window layers: theta_swa, scale 1 (owned; NULL otherwise) */
    float *key_cache;   /* per layer (B, Hkv, ctx_pad, D) in panels of 16 positions (layers.h) */
    float *value_cache; /* per layer (B, Hkv, ctx_pad, D) */
    size_t *kv_off;     /* (L) layer l's cache starts at key_cache + off (value_cache + off) */
    float *kv_memory;   /* owns rope_cs, key_cache, value_cache, scratch */
    int kv_f16;         /* SLM_BUILD_KV_F16: the caches are key_cache16 / value_cache16 (same layout and
                           offsets, f16 values), and key_cache / value_cache hold one (sequence, layer)
                           of them widened to f32 for the attention kernels */
    uint16_t *key_cache16, *value_cache16;
    uint16_t *kv16_memory; /* owns key_cache16, value_cache16 */
    size_t kv16_values;    /* values of each f16 cache */

    const slm_forward_observer *observer; /* NULL, or set between forwards */

    int n_tensors;         /* the model's tensors in catalogue order (model/catalog.h) */
    int16_t *tensor_role;  /* (n_tensors) slm_role */
    int16_t *tensor_layer; /* (n_tensors) layer, -1 for global tensors */
} slm_model;

/* Build flags. SLM_BUILD_KEEP_ACTS keeps every layer's activations of the last forward (what a
   backward pass needs: the (L, T, ...) tensors above). Without it the layers share one slot
   (the size table holds L = 1) and only the last layer's activations survive a forward:
   inference needs a quarter of the memory or less. */
enum { SLM_BUILD_KEEP_ACTS = 1, SLM_BUILD_MAPPED = 2, SLM_BUILD_KV_F16 = 4 };
/* SLM_BUILD_KV_F16 (with --numerics ggml, as llama.cpp's default cache): the KV cache in f16, half
   the memory; the values are those SLM_NUMERICS_GGML rounds to f16 anyway, so the numbers are the
   same as with the f32 cache. Such a model runs SLM_NUMERICS_GGML only (SLM_E_ARG otherwise). */
/* SLM_BUILD_MAPPED (inference: eval, generate, calibration, a teacher): matrices stay in the
   type they are stored in, read from the source's mapped file (owned copies only where rows
   are not contiguous: llama q/k of HF folders, odd-aligned blocks); each panel of 16 rows is
   dequantized when a matmul needs it (model/layers.h slm_matmul_forward_typed), so the logits
   equal those of the f32 build bit for bit, in a fraction of the memory. The model borrows the
   source's maps: keep the source open while the model is used. Vectors (norms, biases) are
   f32 as always. Without the flag every parameter is f32 in params_memory (training). */

/* Builds the model for calls of up to max_ctx tokens and max_ctx cache positions, reading
   every tensor once, in row order, from src by GGUF name (SLM_E_FORMAT when one is missing or
   shaped otherwise than cfg implies); the stored dtype of each matrix decides the activation
   rounding of SLM_NUMERICS_GGML. Every weight must be finite (SLM_E_DATA names the tensor
   otherwise). On failure m is freed. A model folder or GGUF file (formats/model_src.h
   slm_src_tensors) is such a source; model/ itself never reads files. */
int slm_model_build(slm_model *m, const slm_model_config *cfg, const slm_tensor_src *src, int max_ctx, int flags,
                    slm_err *err);
/* The same for calls of up to max_batch sequences of max_ctx tokens each. */
int slm_model_build_batch(slm_model *m, const slm_model_config *cfg, const slm_tensor_src *src, int max_batch,
                          int max_ctx, int flags, slm_err *err);
/* The same with calls of at most max_tokens tokens in all (B*T <= max_tokens, e.g. llama.cpp's
   ubatch: max_batch caches of max_ctx positions filled by several calls): the activations take
   max_tokens rows instead of max_batch * max_ctx. */
int slm_model_build_calls(slm_model *m, const slm_model_config *cfg, const slm_tensor_src *src, int max_batch,
                          int max_ctx, int max_tokens, int flags, slm_err *err);

/* Safe on a zeroed or freed model. */
void slm_model_free(slm_model *m);

/* Runs tokens[0 .. T) at positions pos0 .. pos0+T-1. The cache must hold positions
   [0, pos0) from earlier calls (pos0 = 0 starts a new sequence; the cache of positions >= pos0
   is overwritten). Writes the logits of tokens t_out .. T-1 to logits ((T - t_out), V);
   t_out = T - 1 gives the last token's only, t_out = T none (logits may then be NULL).
   SLM_E_ARG for T < 1, pos0 + T > max_ctx, t_out outside [0, T], or an id outside [0, V). */
int slm_model_forward(slm_model *m, const int32_t *tokens, int T, int pos0, int t_out, float *logits, slm_err *err);
/* B sequences at once: tokens (B, T), each sequence b with its own cache; logits
   (B, T - t_out, V). B <= max_batch. Sequence b's logits equal those of a B = 1 call. */
int slm_model_forward_batch(slm_model *m, const int32_t *tokens, int B, int T, int pos0, int t_out, float *logits,
                            slm_err *err);

/* Reads back one weight matrix or vector in GGUF layout (rows of ncols), e.g. to check the
   load or to export: name is a GGUF name ("blk.0.attn_k.weight"). SLM_E_ARG when unknown. */
int slm_model_get_weight(const slm_model *m, const char *name, float *dst, int64_t *nrows, int64_t *ncols, slm_err *err);

/* The model's parameters as a tensor source (core/tensor.h): every catalogue tensor of its
   config, in canonical order, F32 in GGUF layout, so the export pipeline can write a model
   held in memory (pruned, distilled). Valid while m is. */
void slm_model_tensors(const slm_model *m, slm_tensor_src *out);

#endif
