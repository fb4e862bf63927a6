/* catalog.c - the tensor catalogue: one row per role (names, shapes, permutation, category).
 *
 * The per-layer rows are in block order as llama.cpp's converter writes them; names match
 * convert_hf_to_gguf.py's tensor map for the Llama family (gguf-py tensor_mapping.py).
 * Must not: read files or tensor data.
 */
#include "model/catalog.h"

#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/slm.h"

#define G(role, gguf, hf, rows, cols, cat) {role, gguf, hf, 0, SLM_PART_GLOBAL, rows, cols, 0, 0, cat}
#define A(role, gguf, hf, rows, cols, perm, bias, cat) {role, gguf, hf, 1, SLM_PART_ATTN, rows, cols, perm, bias, cat}
#define F(role, gguf, hf, rows, cols, cat) {role, gguf, hf, 1, SLM_PART_FFN, rows, cols, 0, 0, cat}

static const slm_tensor_kind k_kinds[SLM_ROLE_COUNT] = {
    G(SLM_ROLE_TOKEN_EMBD, "token_embd.weight", "model.embed_tokens.weight", SLM_DIM_V, SLM_DIM_C, SLM_CAT_TOKEN_EMBD),
    A(SLM_ROLE_ATTN_NORM, "attn_norm.weight", "input_layernorm.weight", SLM_DIM_C, SLM_DIM_NONE, 0, 0, SLM_CAT_NORM),
    A(SLM_ROLE_ATTN_Q, "attn_q.weight", "self_attn.q_proj.weight", SLM_DIM_Q, SLM_DIM_C, 1, 0, SLM_CAT_ATTN_Q),
    A(SLM_ROLE_ATTN_Q_BIAS, "attn_q.bias", "self_attn.q_proj.bias", SLM_DIM_Q, SLM_DIM_NONE, 0, 1, SLM_CAT_OTHER),
    A(SLM_ROLE_ATTN_K, "attn_k.weight", "self_attn.k_proj.weight", SLM_DIM_KV, SLM_DIM_C, 2, 0, SLM_CAT_ATTN_K),
    A(SLM_ROLE_ATTN_K_BIAS, "attn_k.bias", "self_attn.k_proj.bias", SLM_DIM_KV, SLM_DIM_NONE, 0, 1, SLM_CAT_OTHER),
    A(SLM_ROLE_ATTN_V, "attn_v.weight", "self_attn.v_proj.weight", SLM_DIM_KV, SLM_DIM_C, 0, 0, SLM_CAT_ATTN_V),
    A(SLM_ROLE_ATTN_V_BIAS, "attn_v.bias", "self_attn.v_proj.bias", SLM_DIM_KV, SLM_DIM_NONE, 0, 1, SLM_CAT_OTHER),
    A(SLM_ROLE_ATTN_QKV, "attn_qkv.weight", "self_attn.qkv_proj.weight", SLM_DIM_QKV, SLM_DIM_C, 0, 0, SLM_CAT_ATTN_QKV),
    A(SLM_ROLE_ATTN_Q_NORM, "attn_q_norm.weight", "self_attn.q_norm.weight", SLM_DIM_D, SLM_DIM_NONE, 0, 0, SLM_CAT_NORM),
    A(SLM_ROLE_ATTN_K_NORM, "attn_k_norm.weight", "self_attn.k_norm.weight", SLM_DIM_D, SLM_DIM_NONE, 0, 0, SLM_CAT_NORM),
    A(SLM_ROLE_ATTN_OUT, "attn_output.weight", "self_attn.o_proj.weight", SLM_DIM_C, SLM_DIM_Q, 0, 0, SLM_CAT_ATTN_OUT),
    A(SLM_ROLE_ATTN_POST_NORM, "post_attention_norm.weight", NULL, SLM_DIM_C, SLM_DIM_NONE, 0, 0, SLM_CAT_NORM),
    F(SLM_ROLE_FFN_NORM, "ffn_norm.weight", "post_attention_layernorm.weight", SLM_DIM_C, SLM_DIM_NONE, SLM_CAT_NORM),
    F(SLM_ROLE_FFN_GATE, "ffn_gate.weight", "mlp.gate_proj.weight", SLM_DIM_F, SLM_DIM_C, SLM_CAT_FFN_GATE),
    F(SLM_ROLE_FFN_UP, "ffn_up.weight", "mlp.up_proj.weight", SLM_DIM_F, SLM_DIM_C, SLM_CAT_FFN_UP),
    F(SLM_ROLE_FFN_DOWN, "ffn_down.weight", "mlp.down_proj.weight", SLM_DIM_C, SLM_DIM_F, SLM_CAT_FFN_DOWN),
    F(SLM_ROLE_FFN_POST_NORM, "post_ffw_norm.weight", "post_feedforward_layernorm.weight", SLM_DIM_C, SLM_DIM_NONE,
      SLM_CAT_NORM),
    G(SLM_ROLE_OUTPUT_NORM, "output_norm.weight", "model.norm.weight", SLM_DIM_C, SLM_DIM_NONE, SLM_CAT_NORM),
    G(SLM_ROLE_OUTPUT, "output.weight", "lm_head.weight", SLM_DIM_V, SLM_DIM_C, SLM_CAT_OUTPUT),
    G(SLM_ROLE_ROPE_LONG, "rope_factors_long.weight", NULL, SLM_DIM_R2, SLM_DIM_NONE, SLM_CAT_OTHER),
    G(SLM_ROLE_ROPE_SHORT, "rope_factors_short.weight", NULL, SLM_DIM_R2, SLM_DIM_NONE, SLM_CAT_OTHER),
    G(SLM_ROLE_ROPE_FREQS, "rope_freqs.weight", NULL, SLM_DIM_RF, SLM_DIM_NONE, SLM_CAT_OTHER),
};
#undef G
#undef A
#undef F

#define GGUF_BLK "blk."
#define HF_BLK "model.layers."

const slm_tensor_kind *slm_catalog_kind(slm_role role) {
    SLM_ASSERT(role >= 0 && role < SLM_ROLE_COUNT);
    return &k_kinds[role];
}

int slm_catalog_present(const slm_model_config *c, slm_role role, int l) {
    const slm_tensor_kind *k = slm_catalog_kind(role);
    if (k->bias && !c->qkv_bias) return 0;
    if (role == SLM_ROLE_OUTPUT) return !c->tied_embeddings;
    if (role == SLM_ROLE_ROPE_FREQS) return c->n_rope_freqs > 0;
    if ((role == SLM_ROLE_ATTN_Q_NORM || role == SLM_ROLE_ATTN_K_NORM) && !slm_arch_has_qk_norm(c->arch)) return 0;
    if ((role == SLM_ROLE_ATTN_POST_NORM || role == SLM_ROLE_FFN_POST_NORM) && !slm_arch_is_gemma(c->arch)) return 0;
    /* phi3: fused q|k|v and gate|up (the latter named ffn_up), generated rope factors */
    const int phi3 = c->arch == SLM_ARCH_PHI3;
    if (role == SLM_ROLE_ROPE_LONG || role == SLM_ROLE_ROPE_SHORT) return phi3 && c->phi3.n_factors > 0;
    if ((role == SLM_ROLE_ATTN_QKV) != phi3 && (role == SLM_ROLE_ATTN_QKV || role == SLM_ROLE_ATTN_Q ||
                                                role == SLM_ROLE_ATTN_K || role == SLM_ROLE_ATTN_V))
        return 0;
    if (phi3 && role == SLM_ROLE_FFN_GATE) return 0;
    if (k->part == SLM_PART_ATTN) return slm_cfg_n_head(c, l) > 0;
    if (k->part == SLM_PART_FFN) return slm_cfg_n_ff(c, l) > 0;
    return 1;
}

static int64_t dim(const slm_model_config *c, int d, int l) {
    switch (d) {
    case SLM_DIM_C: return c->n_embd;
    case SLM_DIM_F: return slm_cfg_n_ff(c, l);
    case SLM_DIM_Q: return (int64_t)slm_cfg_n_head(c, l) * c->head_dim;
    case SLM_DIM_KV: return (int64_t)slm_cfg_n_head_kv(c, l) * c->head_dim;
    case SLM_DIM_V: return c->n_vocab;
    case SLM_DIM_D: return c->head_dim;
    case SLM_DIM_QKV: return ((int64_t)slm_cfg_n_head(c, l) + 2 * slm_cfg_n_head_kv(c, l)) * c->head_dim;
    case SLM_DIM_R2: return c->head_dim / 2;
    case SLM_DIM_RF: return c->n_rope_freqs;
    }
    return 1;
}

int slm_catalog_shape(const slm_model_config *c, slm_role role, int l, int64_t shape[2]) {
    const slm_tensor_kind *k = slm_catalog_kind(role);
    shape[0] = dim(c, k->rows, l) * (role == SLM_ROLE_FFN_UP && c->arch == SLM_ARCH_PHI3 ? 2 : 1); /* gate | up */
    shape[1] = k->cols == SLM_DIM_NONE ? 0 : dim(c, k->cols, l);
    return k->cols == SLM_DIM_NONE ? 1 : 2;
}

int slm_catalog_permute_heads(const slm_model_config *c, slm_role role, int l) {
    const slm_tensor_kind *k = slm_catalog_kind(role);
    if (c->arch != SLM_ARCH_LLAMA || !k->permute) return 0; /* NEOX RoPE keeps HF's order */
    return k->permute == 1 ? slm_cfg_n_head(c, l) : slm_cfg_n_head_kv(c, l);
}

const char *slm_catalog_gguf_name(slm_role role, int l, char *buf, size_t cap) {
    const slm_tensor_kind *k = slm_catalog_kind(role);
    if (k->per_layer) snprintf(buf, cap, GGUF_BLK "%d.%s", l, k->gguf);
    else snprintf(buf, cap, "%s", k->gguf);
    return buf;
}

const char *slm_catalog_hf_name(slm_role role, int l, char *buf, size_t cap) {
    const slm_tensor_kind *k = slm_catalog_kind(role);
    const char *hf = k->hf ? k->hf : role == SLM_ROLE_ATTN_POST_NORM ? "post_attention_layernorm.weight" /* gemma's name */
                                                                     : k->gguf; /* generated: no HF name */
    if (k->per_layer) snprintf(buf, cap, HF_BLK "%d.%s", l, hf);
    else snprintf(buf, cap, "%s", hf);
    return buf;
}

/* "<prefix><digits>.<rest>": layer and rest, or NULL. No sign, no leading '+', at most 9 digits. */
static const char *split_layer(const char *name, const char *prefix, int *layer) {
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n)) return NULL;
    const char *p = name + n;
    int v = 0, digits = 0;
    for (; *p >= '0' && *p <= '9' && digits < 9; p++, digits++) v = v * 10 + (*p - '0');
    if (!digits || *p != '.') return NULL;
    *layer = v;
    return p + 1;
}

static int parse(const char *name, int *layer, int hf) {
    int l;
    const char *rest = split_layer(name, hf ? HF_BLK : GGUF_BLK, &l);
    for (int r = 0; r < SLM_ROLE_COUNT; r++) {
        const slm_tensor_kind *k = &k_kinds[r];
        const char *kn = hf ? k->hf : k->gguf;
        if (!kn) continue;
        if (!rest && !k->per_layer && !strcmp(name, kn)) return *layer = -1, r;
        if (rest && k->per_layer && !strcmp(rest, kn)) return *layer = l, r;
    }
    return -1;
}

int slm_catalog_parse_gguf(const char *name, int *layer) { return parse(name, layer, 0); }
int slm_catalog_parse_hf(const char *name, int *layer) { return parse(name, layer, 1); }

/* Gemma: post_attention_layernorm is the attention output's norm, pre_feedforward_layernorm
   the FFN input's (llama.cpp's MODEL_TENSORS[GEMMA2]). */
int slm_catalog_parse_hf_cfg(const slm_model_config *c, const char *name, int *layer) {
    int l;
    const char *rest = split_layer(name, HF_BLK, &l);
    if (rest && slm_arch_is_gemma(c->arch)) {
        if (!strcmp(rest, "post_attention_layernorm.weight")) return *layer = l, SLM_ROLE_ATTN_POST_NORM;
        if (!strcmp(rest, "pre_feedforward_layernorm.weight")) return *layer = l, SLM_ROLE_FFN_NORM;
    }
    if (rest && c->arch == SLM_ARCH_PHI3 && !strcmp(rest, "mlp.gate_up_proj.weight")) return *layer = l, SLM_ROLE_FFN_UP;
    int r = parse(name, layer, 1);
    if (r == SLM_ROLE_FFN_NORM && slm_arch_is_gemma(c->arch)) return -1;
    if (r == SLM_ROLE_FFN_UP && c->arch == SLM_ARCH_PHI3) return -1; /* phi3's up_proj is fused with the gate */
    return r;
}

long slm_catalog_rank(slm_role role, int l) {
    const slm_tensor_kind *k = slm_catalog_kind(role);
    if (role == SLM_ROLE_ROPE_LONG || role == SLM_ROLE_ROPE_SHORT) return role == SLM_ROLE_ROPE_LONG ? -2 : -1;
    if (role == SLM_ROLE_ROPE_FREQS) return -1;
    if (!k->per_layer) return role == SLM_ROLE_TOKEN_EMBD ? 0 : (1L << 40) + (long)role;
    return 1 + (long)l * 64 + (long)role;
}

slm_tcat slm_catalog_category(const char *gguf_name) {
    int l, r = slm_catalog_parse_gguf(gguf_name, &l);
    return r < 0 ? SLM_CAT_OTHER : k_kinds[r].category;
}

int slm_catalog_each(const slm_model_config *c, int (*fn)(void *ud, slm_role role, int l), void *ud) {
    int rc;
    if (slm_catalog_present(c, SLM_ROLE_ROPE_LONG, -1) &&
        ((rc = fn(ud, SLM_ROLE_ROPE_LONG, -1)) || (rc = fn(ud, SLM_ROLE_ROPE_SHORT, -1))))
        return rc;
    if (slm_catalog_present(c, SLM_ROLE_ROPE_FREQS, -1) && (rc = fn(ud, SLM_ROLE_ROPE_FREQS, -1))) return rc;
    if ((rc = fn(ud, SLM_ROLE_TOKEN_EMBD, -1))) return rc;
    for (int l = 0; l < c->n_layer; l++)
        for (int r = 0; r < SLM_ROLE_COUNT; r++)
            if (k_kinds[r].per_layer && slm_catalog_present(c, (slm_role)r, l) && (rc = fn(ud, (slm_role)r, l))) return rc;
    if ((rc = fn(ud, SLM_ROLE_OUTPUT_NORM, -1))) return rc;
    if (slm_catalog_present(c, SLM_ROLE_OUTPUT, -1) && (rc = fn(ud, SLM_ROLE_OUTPUT, -1))) return rc;
    return SLM_OK;
}
