/* transformer.c - the reference Llama-family transformer: parameters, activations, KV cache,
 * loading and the forward pass (llm.c's train_gpt2.c layout, inference part).
 *
 * Owns: the size and pointer tables of the flat parameter and activation buffers, built from
 * each layer's own widths; where each catalogue tensor lives (model/catalog.h); reading and
 * packing the weights; the RoPE table; forward() as straight-line code over the layer kernels
 * of layer_*.c (and ggml_numerics.c for --numerics ggml).
 * Must not: print, read files, or run anything in parallel itself (the kernels do, one loop
 * each).
 */
#include "model/transformer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/dtype.h"
#include "core/mem.h"
#include "core/slm.h"
#include "core/thread.h"
#include "quantize/qtypes.h"
#include "quantize/quants.h"
#include "model/catalog.h"
#include "model/ggml_numerics.h"
#include "model/layers.h"

/* ---------------------------------------------------------------------------------------------
 * per-layer widths */

typedef struct layer_dims {
    int H, Hkv, F; /* heads, kv heads, FFN channels (0: sub-block removed) */
    int HD, KD;    /* H*D, Hkv*D */
    int QKV;       /* (H + 2 Hkv) D */
} layer_dims;

static layer_dims dims_of(const slm_model_config *c, int l) {
    layer_dims d;
    d.H = slm_cfg_n_head(c, l);
    d.Hkv = slm_cfg_n_head_kv(c, l);
    d.F = slm_cfg_n_ff(c, l);
    d.HD = d.H * c->head_dim;
    d.KD = d.Hkv * c->head_dim;
    d.QKV = d.HD + 2 * d.KD;
    return d;
}

static int check_config(const slm_model_config *c, int max_batch, int max_ctx, slm_err *err) {
    if (c->n_embd <= 0 || c->n_ff <= 0 || c->n_layer <= 0 || c->n_head <= 0 || c->n_head_kv <= 0 || c->head_dim <= 0 ||
        c->n_vocab <= 0)
        return slm_errf(err, SLM_E_FORMAT, "model config: a dimension is not positive (n_embd %d, n_ff %d, n_layer %d, "
                        "n_head %d, n_head_kv %d, head_dim %d, n_vocab %d)", c->n_embd, c->n_ff, c->n_layer,
                        c->n_head, c->n_head_kv, c->head_dim, c->n_vocab);
    if (c->n_layer > SLM_MAX_LAYERS)
        return slm_errf(err, SLM_E_UNSUPPORTED, "model config: %d layers (at most %d)", c->n_layer, SLM_MAX_LAYERS);
    for (int l = 0; l < c->n_layer; l++) {
        layer_dims d = dims_of(c, l);
        if (d.H < 0 || d.Hkv < 0 || d.F < 0 || (d.H > 0) != (d.Hkv > 0) || (d.Hkv && d.H % d.Hkv))
            return slm_errf(err, SLM_E_FORMAT, "model config: layer %d has %d heads and %d kv heads (a positive multiple "
                            "of them, or both 0)", l, d.H, d.Hkv);
        if (d.H > c->n_head || d.Hkv > c->n_head_kv || d.F > c->n_ff)
            return slm_errf(err, SLM_E_FORMAT, "model config: layer %d is wider than the model's maximum widths", l);
    }
    if (c->head_dim % 2 || c->head_dim > 512)
        return slm_errf(err, SLM_E_UNSUPPORTED, "model config: head_dim %d (RoPE needs an even head dim <= 512)",
                        c->head_dim);
    if (c->n_rope_freqs && (c->n_rope_freqs != c->head_dim / 2 || c->n_rope_freqs > SLM_MAX_ROPE_FREQS))
        return slm_errf(err, SLM_E_FORMAT, "model config: %d RoPE frequency factors for head dim %d", c->n_rope_freqs, c->head_dim);
    if (c->arch != SLM_ARCH_LLAMA && c->arch != SLM_ARCH_QWEN2 && c->arch != SLM_ARCH_QWEN3 && !slm_arch_is_gemma(c->arch) && c->arch != SLM_ARCH_PHI3)
        return slm_errf(err, SLM_E_UNSUPPORTED, "model config: architecture %d is not llama, qwen2, qwen3, gemma2, gemma3 or phi3", c->arch);
    if (!(c->norm_eps > 0.0f) || !(c->rope_theta > 0.0f) || !(c->rope_scale > 0.0f))
        return slm_errf(err, SLM_E_FORMAT, "model config: norm_eps %g, rope_theta %g, rope_scale %g must be > 0",
                        (double)c->norm_eps, (double)c->rope_theta, (double)c->rope_scale);
    if (max_ctx < 1 || max_ctx > (1 << 24))
        return slm_errf(err, SLM_E_ARG, "context of %d tokens: must be in [1, 16777216]", max_ctx);
    if (max_batch < 1 || (int64_t)max_batch * max_ctx > (1 << 24))
        return slm_errf(err, SLM_E_ARG, "batch of %d sequences of %d tokens: at most 16777216 tokens", max_batch, max_ctx);
    int64_t qkv = (int64_t)(c->n_head + 2 * c->n_head_kv) * c->head_dim;
    if (qkv > (1 << 24) || (int64_t)c->n_head * c->head_dim > (1 << 24) || 2LL * c->n_ff > (1 << 24))
        return slm_errf(err, SLM_E_UNSUPPORTED, "model config: layer widths too large");
    return SLM_OK;
}

/* ---------------------------------------------------------------------------------------------
 * sizes and pointer tables (llm.c's fill_in_parameter_sizes, one entry per layer) */

/* *acc += a * b (floats); 0 on overflow */
static int add_mul(size_t *acc, size_t a, size_t b) {
    size_t ab;
    return slm_mul_ok(a, b, &ab) && slm_add_ok(*acc, ab, acc);
}

static int is_matrix_param(int p) {
    return p == SLM_P_WTE || p == SLM_P_WQ || p == SLM_P_WK || p == SLM_P_WV || p == SLM_P_WO || p == SLM_P_WGATE ||
           p == SLM_P_WUP || p == SLM_P_WDOWN || p == SLM_P_WCLS;
}

/* Floats of parameter tensor p at layer l (per-layer tensors) or in all (global ones, l < 0);
   a mapped model keeps only vectors here (matrices stay as stored). */
static size_t param_floats(const slm_model *m, int p, int l) {
    const slm_model_config *c = &m->cfg;
    const int64_t C = c->n_embd;
    if (m->mapped && is_matrix_param(p)) return 0;
    if (l < 0) {
        if (p == SLM_P_WTE) return slm_panel_floats(c->n_vocab, C);
        if (p == SLM_P_LNFW) return (size_t)C;
        if (p == SLM_P_WCLS) return c->tied_embeddings ? 0 : slm_panel_floats(c->n_vocab, C);
        return 0;
    }
    const layer_dims d = dims_of(c, l);
    const int attn = d.H > 0, ffn = d.F > 0;
    if (c->arch == SLM_ARCH_PHI3) /* fused: wq holds q|k|v, wup holds gate|up */
        switch (p) {
        case SLM_P_WQ: return attn ? slm_panel_floats(d.QKV, C) : 0;
        case SLM_P_WK:
        case SLM_P_WV:
        case SLM_P_WGATE: return 0;
        case SLM_P_WUP: return ffn ? slm_panel_floats(2 * (int64_t)d.F, C) : 0;
        }
    switch (p) {
    case SLM_P_LN1W: return attn ? (size_t)C : 0;
    case SLM_P_WQ: return attn ? slm_panel_floats(d.HD, C) : 0;
    case SLM_P_WK:
    case SLM_P_WV: return attn ? slm_panel_floats(d.KD, C) : 0;
    case SLM_P_BQKV: return attn && c->qkv_bias ? (size_t)d.QKV : 0;
    case SLM_P_WO: return attn ? slm_panel_floats(C, d.HD) : 0;
    case SLM_P_LN2W: return ffn ? (size_t)C : 0;
    case SLM_P_WGATE:
    case SLM_P_WUP: return ffn ? slm_panel_floats(d.F, C) : 0;
    case SLM_P_WDOWN: return ffn ? slm_panel_floats(C, d.F) : 0;
    case SLM_P_QNORM:
    case SLM_P_KNORM: return attn && slm_arch_has_qk_norm(c->arch) ? (size_t)c->head_dim : 0;
    case SLM_P_POSTATTN: return attn && slm_arch_is_gemma(c->arch) ? (size_t)C : 0;
    case SLM_P_POSTFFN: return ffn && slm_arch_is_gemma(c->arch) ? (size_t)C : 0;
    }
    return 0;
}

static int fill_in_parameter_sizes(slm_model *m) {
    const slm_model_config *c = &m->cfg;
    int ok = 1;
    for (int p = 0; p < SLM_NUM_PARAMETER_TENSORS; p++) {
        size_t total = param_floats(m, p, -1);
        for (int l = 0; l < c->n_layer; l++) {
            m->param_off[(size_t)p * c->n_layer + l] = total;
            ok &= slm_add_ok(total, param_floats(m, p, l), &total);
        }
        m->param_sizes[p] = total;
    }
    return ok;
}

static void point_parameters(slm_model *m) {
    slm_model_params *p = &m->params;
    float **ptrs[SLM_NUM_PARAMETER_TENSORS] = {
        &p->wte, &p->ln1w, &p->wq,   &p->wk,  &p->wv,    &p->bqkv, &p->wo,
        &p->ln2w, &p->wgate, &p->wup, &p->wdown, &p->lnfw, &p->wcls, &p->qnorm, &p->knorm, &p->postattn, &p->postffn,
    };
    float *it = m->params_memory;
    for (int i = 0; i < SLM_NUM_PARAMETER_TENSORS; i++) {
        *ptrs[i] = m->param_sizes[i] ? it : NULL;
        it += m->param_sizes[i];
    }
    if (m->cfg.tied_embeddings) p->wcls = p->wte;
}

/* Layer l's part of parameter tensor p (NULL when the layer has none). */
static float *layer_param(const slm_model *m, float *base, int p, int l) {
    if (!base || !param_floats(m, p, l)) return NULL;
    return base + m->param_off[(size_t)p * m->cfg.n_layer + l];
}

/* Floats of activation a for N tokens of layer l (l < 0: the global ones). */
static size_t act_floats(const slm_model_config *c, int a, int l, size_t N) {
    const size_t C = (size_t)c->n_embd;
    if (l < 0) {
        if (a == SLM_A_ENCODED || a == SLM_A_LNF) return N * C;
        if (a == SLM_A_LNF_RSTD) return N;
        return 0;
    }
    const layer_dims d = dims_of(c, l);
    switch (a) {
    case SLM_A_LN1:
    case SLM_A_ATTPROJ:
    case SLM_A_RESIDUAL2:
    case SLM_A_LN2:
    case SLM_A_FCPROJ:
    case SLM_A_RESIDUAL3: return N * C;
    case SLM_A_LN1_RSTD:
    case SLM_A_LN2_RSTD: return N;
    case SLM_A_QKV: return N * (size_t)d.QKV;
    case SLM_A_ATTY: return N * (size_t)d.HD;
    case SLM_A_ATT_LSE: return N * (size_t)d.H;
    case SLM_A_FCH: return N * 2 * (size_t)d.F;
    case SLM_A_FCH_SWIGLU: return N * (size_t)d.F;
    }
    return 0;
}

/* Per-layer slots with keep_acts; else one slot for all layers, sized by the widest. N = B*T
   is at most 2^24 and widths at most 2^24 (check_config), so each product fits 64 bits. */
static int fill_in_activation_sizes(slm_model *m, size_t N) {
    const slm_model_config *c = &m->cfg;
    int ok = 1;
    for (int a = 0; a < SLM_NUM_ACTIVATION_TENSORS; a++) {
        size_t total = act_floats(c, a, -1, N);
        for (int s = 0; s < m->n_act_slots; s++) {
            m->act_off[(size_t)a * m->n_act_slots + s] = total;
            size_t sz = 0;
            if (m->keep_acts) sz = act_floats(c, a, s, N);
            else
                for (int l = 0; l < c->n_layer; l++) sz = SLM_MAX(sz, act_floats(c, a, l, N));
            ok &= slm_add_ok(total, sz, &total);
        }
        m->act_sizes[a] = total;
    }
    return ok;
}

static void point_activations(slm_model *m) {
    slm_model_acts *a = &m->acts;
    float **ptrs[SLM_NUM_ACTIVATION_TENSORS] = {
        &a->encoded,   &a->ln1, &a->ln1_rstd, &a->qkv,        &a->atty,   &a->att_lse,   &a->attproj, &a->residual2,
        &a->ln2,       &a->ln2_rstd, &a->fch, &a->fch_swiglu, &a->fcproj, &a->residual3, &a->lnf,     &a->lnf_rstd,
    };
    float *it = m->acts_memory;
    for (int i = 0; i < SLM_NUM_ACTIVATION_TENSORS; i++) {
        *ptrs[i] = it;
        it += m->act_sizes[i];
    }
}

/* Layer l's slot of activation a. */
static float *layer_act(const slm_model *m, float *base, int a, int l) {
    return base + m->act_off[(size_t)a * m->n_act_slots + (m->keep_acts ? l : 0)];
}

static int sum_sizes(const size_t *sizes, int n, size_t *total) {
    *total = 0;
    for (int i = 0; i < n; i++)
        if (!slm_add_ok(*total, sizes[i], total)) return 0;
    return 1;
}

/* ---------------------------------------------------------------------------------------------
 * weights: where each catalogue tensor lives in the flat buffer */

typedef struct weight_slot {
    float *base;   /* packed matrix (or vector) of this layer; NULL for matrices of a mapped model */
    int64_t nrows, ncols;
    int packed;    /* panel layout (matrices) or plain (vectors) */
    int matrix;    /* index into act_type, or -1 for vectors */
    int wm;        /* index into wmats (matrices), or -1 */
} weight_slot;

/* wmats / act_type index of the classifier; the token embedding's wmats entry is the next */
static int cls_index(const slm_model_config *c) { return c->n_layer * SLM_LAYER_MATRICES; }

/* Where the tensor of `role` at layer l lives; 0 when this model has no such tensor. */
static int role_slot(const slm_model *m, int role, int l, weight_slot *s) {
    const slm_model_config *c = &m->cfg;
    const slm_model_params *p = &m->params;
    const int cls = cls_index(c);
    memset(s, 0, sizeof *s);
    if (!slm_catalog_present(c, role, l)) return 0;
    switch (role) {
    case SLM_ROLE_TOKEN_EMBD: *s = (weight_slot){p->wte, c->n_vocab, c->n_embd, 1, c->tied_embeddings ? cls : -1, cls + 1}; return 1;
    case SLM_ROLE_OUTPUT_NORM: *s = (weight_slot){p->lnfw, 1, c->n_embd, 0, -1, -1}; return 1;
    case SLM_ROLE_OUTPUT: *s = (weight_slot){p->wcls, c->n_vocab, c->n_embd, 1, cls, cls}; return 1;
    case SLM_ROLE_ROPE_LONG:  /* the model's own copy (the config's arrays), read with the weights */
    case SLM_ROLE_ROPE_SHORT:
        *s = (weight_slot){(float *)(role == SLM_ROLE_ROPE_LONG ? c->phi3.long_factor : c->phi3.short_factor), 1,
                           c->phi3.n_factors, 0, -1, -1};
        return 1;
    case SLM_ROLE_ROPE_FREQS: *s = (weight_slot){(float *)m->cfg.rope_freqs, 1, c->n_rope_freqs, 0, -1, -1}; return 1;
    }
    const layer_dims d = dims_of(c, l);
    const int64_t C = c->n_embd;
    const int mat = l * SLM_LAYER_MATRICES;
    float *bqkv = layer_param(m, p->bqkv, SLM_P_BQKV, l);
    switch (role) {
    case SLM_ROLE_ATTN_NORM: *s = (weight_slot){layer_param(m, p->ln1w, SLM_P_LN1W, l), 1, C, 0, -1, -1}; break;
    case SLM_ROLE_ATTN_Q: *s = (weight_slot){layer_param(m, p->wq, SLM_P_WQ, l), d.HD, C, 1, mat + SLM_M_Q, mat + SLM_M_Q}; break;
    case SLM_ROLE_ATTN_K: *s = (weight_slot){layer_param(m, p->wk, SLM_P_WK, l), d.KD, C, 1, mat + SLM_M_K, mat + SLM_M_K}; break;
    case SLM_ROLE_ATTN_V: *s = (weight_slot){layer_param(m, p->wv, SLM_P_WV, l), d.KD, C, 1, mat + SLM_M_V, mat + SLM_M_V}; break;
    case SLM_ROLE_ATTN_Q_BIAS: *s = (weight_slot){bqkv, 1, d.HD, 0, -1, -1}; break;
    case SLM_ROLE_ATTN_K_BIAS: *s = (weight_slot){bqkv + d.HD, 1, d.KD, 0, -1, -1}; break;
    case SLM_ROLE_ATTN_V_BIAS: *s = (weight_slot){bqkv + d.HD + d.KD, 1, d.KD, 0, -1, -1}; break;
    case SLM_ROLE_ATTN_OUT: *s = (weight_slot){layer_param(m, p->wo, SLM_P_WO, l), C, d.HD, 1, mat + SLM_M_O, mat + SLM_M_O}; break;
    case SLM_ROLE_FFN_NORM: *s = (weight_slot){layer_param(m, p->ln2w, SLM_P_LN2W, l), 1, C, 0, -1, -1}; break;
    case SLM_ROLE_ATTN_Q_NORM: *s = (weight_slot){layer_param(m, p->qnorm, SLM_P_QNORM, l), 1, c->head_dim, 0, -1, -1}; break;
    case SLM_ROLE_ATTN_K_NORM: *s = (weight_slot){layer_param(m, p->knorm, SLM_P_KNORM, l), 1, c->head_dim, 0, -1, -1}; break;
    case SLM_ROLE_ATTN_POST_NORM: *s = (weight_slot){layer_param(m, p->postattn, SLM_P_POSTATTN, l), 1, C, 0, -1, -1}; break;
    case SLM_ROLE_FFN_POST_NORM: *s = (weight_slot){layer_param(m, p->postffn, SLM_P_POSTFFN, l), 1, C, 0, -1, -1}; break;
    case SLM_ROLE_FFN_GATE:
        *s = (weight_slot){layer_param(m, p->wgate, SLM_P_WGATE, l), d.F, C, 1, mat + SLM_M_GATE, mat + SLM_M_GATE};
        break;
    case SLM_ROLE_FFN_UP: /* phi3: gate | up, 2F rows */
        *s = (weight_slot){layer_param(m, p->wup, SLM_P_WUP, l), d.F * (c->arch == SLM_ARCH_PHI3 ? 2 : 1), C, 1, mat + SLM_M_UP,
                           mat + SLM_M_UP};
        break;
    case SLM_ROLE_ATTN_QKV: *s = (weight_slot){layer_param(m, p->wq, SLM_P_WQ, l), d.QKV, C, 1, mat + SLM_M_Q, mat + SLM_M_Q}; break;
    case SLM_ROLE_FFN_DOWN:
        *s = (weight_slot){layer_param(m, p->wdown, SLM_P_WDOWN, l), C, d.F, 1, mat + SLM_M_DOWN, mat + SLM_M_DOWN};
        break;
    default: return 0;
    }
    return s->base != NULL || (m->mapped && s->wm >= 0);
}

/* The source's tensor with this name, checked to have the shape the model expects. */
static int find_tensor(const slm_tensor_src *src, const char *name, int64_t nrows, int64_t ncols, size_t *idx,
                       slm_tensor_info *ti, slm_err *err) {
    int i = src->find(src->ud, name);
    if (i < 0) return slm_errf(err, SLM_E_FORMAT, "missing tensor '%s'", name);
    *ti = slm_tensor_src_info(src, (size_t)i);
    if (slm_tensor_info_nrows(ti) != nrows || slm_tensor_info_ncols(ti) != ncols)
        return slm_errf(err, SLM_E_FORMAT, "%s: tensor '%s' is %lld x %lld, the config implies %lld x %lld", ti->file, name,
                        (long long)slm_tensor_info_nrows(ti), (long long)slm_tensor_info_ncols(ti), (long long)nrows,
                        (long long)ncols);
    *idx = (size_t)i;
    return SLM_OK;
}

typedef struct load_ctx {
    slm_model *m;
    const slm_tensor_src *src;
    float *scratch; /* SLM_PANEL rows of the widest tensor */
    slm_err *err;
} load_ctx;

/* A mapped model's matrix: the stored rows in place when the source has them contiguous and
   suitably aligned, else an owned copy in the stored type (permuted llama q/k of HF folders,
   blocks at odd offsets). Finiteness is checked when each panel is dequantized (forward). */
static int load_typed(slm_model *m, const slm_tensor_src *src, size_t idx, const slm_tensor_info *ti, const weight_slot *s,
                      slm_err *err) {
    const slm_dtype_traits *tr = slm_dtype_get(ti->dtype);
    if (!tr || !tr->to_float)
        return slm_errf(err, SLM_E_UNSUPPORTED, "%s: tensor '%s' has type %s, which slm cannot read", ti->file, ti->name,
                        slm_dtype_name(ti->dtype));
    const size_t row_bytes = slm_dtype_row_size(ti->dtype, s->ncols);
    size_t total;
    if (!row_bytes || !slm_mul_ok(row_bytes, (size_t)s->nrows, &total))
        return slm_errf(err, SLM_E_FORMAT, "%s: tensor '%s': rows of %lld %s values", ti->file, ti->name, (long long)s->ncols,
                        tr->name);
    slm_wmat *w = &m->wmats[s->wm];
    *w = (slm_wmat){ti->dtype, NULL, row_bytes, s->nrows, s->ncols, ti->file};
    const void *rows = src->read_raw(src->ud, idx, 0, 0, NULL, err); /* probe: contiguous? (0 rows, no copy) */
    uint8_t *own = NULL;
    if (rows && !(tr->is_quantized && ((uintptr_t)rows & 1))) rows = src->read_raw(src->ud, idx, 0, s->nrows, NULL, err);
    else rows = NULL;
    if (!rows) {
        SLM_TRY(slm_alloc((void **)&own, total, err, "weight copy"));
        if (!src->read_raw(src->ud, idx, 0, s->nrows, own, err)) {
            slm_free(own);
            return err->code ? err->code : SLM_E_IO;
        }
        m->owned[s->wm] = own;
        rows = own;
    }
    w->data = rows;
    return SLM_OK;
}

/* Rows per read: one panel, so a matrix never needs more than 16 rows of f32 scratch. Each
   tensor is read once, in row order, and its pages are released after. */
static int load_role(void *ud, slm_role role, int l) {
    const load_ctx *x = ud;
    slm_model *m = x->m;
    weight_slot s;
    char name[SLM_MAX_NAME];
    SLM_ASSERT(role_slot(m, role, l, &s));
    slm_catalog_gguf_name(role, l, name, sizeof name);
    size_t idx = 0;
    slm_tensor_info ti;
    SLM_TRY(find_tensor(x->src, name, s.nrows, s.ncols, &idx, &ti, x->err));
    if (s.matrix >= 0) m->act_type[s.matrix] = (int8_t)slm_act_type_of(ti.dtype);
    if (m->mapped && s.wm >= 0) return load_typed(m, x->src, idx, &ti, &s, x->err);
    for (int64_t r0 = 0; r0 < s.nrows; r0 += SLM_PANEL) {
        int64_t n = SLM_MIN(s.nrows - r0, (int64_t)SLM_PANEL);
        if (x->src->read_f32(x->src->ud, idx, r0, n, x->scratch, x->err)) return slm_err_prefix(x->err, "%s", ti.file);
        int64_t bad = slm_first_nonfinite(x->scratch, n * s.ncols);
        if (bad >= 0)
            return slm_errf(x->err, SLM_E_DATA, "%s: tensor '%s': non-finite value %g at row %lld, column %lld", ti.file,
                            ti.src_name, (double)x->scratch[bad], (long long)(r0 + bad / s.ncols), (long long)(bad % s.ncols));
        if (s.packed) slm_panel_pack_rows(s.base, x->scratch, r0, n, s.ncols);
        else memcpy(s.base, x->scratch, sizeof(float) * (size_t)s.ncols);
    }
    slm_tensor_src_advise(x->src, idx, 0, s.nrows, 0);
    return SLM_OK;
}

/* cos, sin of pos * theta^(-2i/D) / rope_scale / freqs[i] (freqs NULL: 1), in double then rounded. */
static void fill_rope_table(float *cs, int n_pos, int D, double theta, double scale, const float *freqs) {
    for (int pos = 0; pos < n_pos; pos++)
        for (int i = 0; i < D / 2; i++) {
            double angle = (double)pos * pow(theta, -2.0 * i / D) / scale / (freqs ? (double)freqs[i] : 1.0);
            cs[((size_t)pos * (D / 2) + i) * 2] = (float)cos(angle);
            cs[((size_t)pos * (D / 2) + i) * 2 + 1] = (float)sin(angle);
        }
}

/* ---------------------------------------------------------------------------------------------
 * build / free */

typedef struct list_ctx { slm_model *m; int n; } list_ctx;
static int list_role(void *ud, slm_role role, int l);

static int64_t count_params(const slm_model_config *c) {
    const int64_t C = c->n_embd;
    int64_t n = (int64_t)c->n_vocab * C * (c->tied_embeddings ? 1 : 2) + C;
    for (int l = 0; l < c->n_layer; l++) {
        const layer_dims d = dims_of(c, l);
        if (d.H) n += C + ((int64_t)d.HD + 2 * d.KD) * C + (c->qkv_bias ? d.QKV : 0) + C * d.HD;
        if (d.F) n += C + 3 * C * (int64_t)d.F;
        if (slm_arch_is_gemma(c->arch)) n += (d.H ? C : 0) + (d.F ? C : 0);
        if (d.H && slm_arch_has_qk_norm(c->arch)) n += 2 * c->head_dim;
    }
    return n;
}

/* Floats of the KV caches (layer offsets into kv_off), the RoPE table and the rounding scratch. */
static int kv_sizes(slm_model *m, size_t *kv_cache, size_t *rope, size_t *scratch) {
    const slm_model_config *c = &m->cfg;
    const size_t N = (size_t)m->max_tokens;
    int64_t widest = SLM_MAX(SLM_MAX((int64_t)c->n_embd, (int64_t)c->n_head * c->head_dim), (int64_t)c->n_ff);
    int ok = 1;
    *kv_cache = 0;
    for (int l = 0; l < c->n_layer; l++) {
        m->kv_off[l] = *kv_cache;
        size_t per_seq;
        ok &= slm_mul_ok((size_t)slm_cfg_n_head_kv(c, l) * (size_t)m->ctx_pad, (size_t)c->head_dim, &per_seq);
        ok &= add_mul(kv_cache, per_seq, (size_t)m->max_batch);
    }
    if (m->kv_f16) { /* the f16 caches take kv_cache values each; the f32 ones one widest (sequence, layer) */
        m->kv16_values = *kv_cache;
        ok &= slm_mul_ok((size_t)c->n_head_kv * (size_t)m->ctx_pad, (size_t)c->head_dim, kv_cache);
    }
    ok &= slm_mul_ok((size_t)m->max_ctx, (size_t)c->head_dim, rope);
    ok &= slm_mul_ok(N, (size_t)widest, scratch);
    return ok;
}

/* The stored-matrix table, the owned copies' table, the per-thread panel scratch. */
static int alloc_mapped(slm_model *m, slm_err *err) {
    const slm_model_config *c = &m->cfg;
    const size_t n = (size_t)cls_index(c) + 2;
    int64_t widest = SLM_MAX(SLM_MAX((int64_t)c->n_embd, (int64_t)c->n_head * c->head_dim), (int64_t)c->n_ff);
    int64_t widest_out = SLM_MAX(widest, (int64_t)c->n_vocab);
    widest_out = SLM_MAX(widest_out, SLM_MAX(2 * (int64_t)c->n_ff, (int64_t)(c->n_head + 2 * c->n_head_kv) * c->head_dim));
    m->n_panel_threads = slm_threads_get();
    size_t per = slm_matmul_scratch_floats(widest), total;
    if (!slm_mul_ok(per, (size_t)m->n_panel_threads, &total)) return slm_errf(err, SLM_E_NOMEM, "panel scratch: size overflows");
    SLM_TRY(slm_calloc((void **)&m->wmats, n, sizeof(slm_wmat), err, "weight table"));
    SLM_TRY(slm_calloc((void **)&m->owned, n, sizeof(uint8_t *), err, "weight table"));
    SLM_TRY(slm_alloc((void **)&m->panel_scratch, total * sizeof(float), err, "panel scratch"));
    return slm_calloc((void **)&m->bad_panels, (size_t)widest_out / SLM_PANEL + 2, 1, err, "panel flags");
}

int slm_model_build(slm_model *m, const slm_model_config *cfg, const slm_tensor_src *src, int max_ctx, int flags,
                    slm_err *err) {
    return slm_model_build_batch(m, cfg, src, 1, max_ctx, flags, err);
}

int slm_model_build_batch(slm_model *m, const slm_model_config *cfg, const slm_tensor_src *src, int max_batch,
                          int max_ctx, int flags, slm_err *err) {
    const int64_t n = (int64_t)max_batch * max_ctx;
    return slm_model_build_calls(m, cfg, src, max_batch, max_ctx, n > 0 && n <= (1 << 24) ? (int)n : 1, flags, err);
}

int slm_model_build_calls(slm_model *m, const slm_model_config *cfg, const slm_tensor_src *src, int max_batch,
                          int max_ctx, int max_tokens, int flags, slm_err *err) {
    memset(m, 0, sizeof *m);
    SLM_TRY(check_config(cfg, max_batch, max_ctx, err));
    if (max_tokens < 1 || (int64_t)max_tokens > (int64_t)max_batch * max_ctx)
        return slm_errf(err, SLM_E_ARG, "calls of %d tokens: must be in [1, %lld] (batch x context)", max_tokens,
                        (long long)max_batch * max_ctx);
    m->cfg = *cfg;
    const slm_model_config *c = &m->cfg;
    m->max_ctx = max_ctx;
    m->max_batch = max_batch;
    m->max_tokens = max_tokens;
    m->ctx_pad = (max_ctx + SLM_PANEL - 1) / SLM_PANEL * SLM_PANEL;
    m->neox = c->arch != SLM_ARCH_LLAMA; /* qwen2, qwen3, gemma2, gemma3, phi3 */
    m->keep_acts = !!(flags & SLM_BUILD_KEEP_ACTS);
    m->mapped = !!(flags & SLM_BUILD_MAPPED);
    m->kv_f16 = !!(flags & SLM_BUILD_KV_F16);
    if (m->kv_f16) m->numerics = SLM_NUMERICS_GGML;
    m->bad_weight = -1;
    m->n_act_slots = m->keep_acts ? c->n_layer : 1;
    m->n_params = count_params(c);

    float *rows = NULL;
    const size_t L = (size_t)c->n_layer;
    int rc = slm_calloc((void **)&m->param_off, SLM_NUM_PARAMETER_TENSORS * L, sizeof(size_t), err, "parameter table");
    if (!rc) rc = slm_calloc((void **)&m->act_off, SLM_NUM_ACTIVATION_TENSORS * (size_t)m->n_act_slots, sizeof(size_t), err,
                             "activation table");
    if (!rc) rc = slm_calloc((void **)&m->kv_off, L, sizeof(size_t), err, "KV cache table");
    if (!rc && m->mapped) rc = alloc_mapped(m, err);
    if (rc) goto done;
    size_t kv_cache, rope, scratch_floats, kv_total;
    int ok = fill_in_parameter_sizes(m) && sum_sizes(m->param_sizes, SLM_NUM_PARAMETER_TENSORS, &m->num_parameters);
    ok = ok && fill_in_activation_sizes(m, (size_t)max_tokens) &&
         sum_sizes(m->act_sizes, SLM_NUM_ACTIVATION_TENSORS, &m->num_activations);
    ok = ok && kv_sizes(m, &kv_cache, &rope, &scratch_floats);
    ok = ok && slm_add_ok(kv_cache, kv_cache, &kv_total) && slm_add_ok(kv_total, rope, &kv_total) &&
         slm_add_ok(kv_total, scratch_floats, &kv_total);
    if (!ok || m->num_parameters > SIZE_MAX / sizeof(float) || m->num_activations > SIZE_MAX / sizeof(float) ||
        kv_total > SIZE_MAX / sizeof(float)) {
        rc = slm_errf(err, SLM_E_NOMEM, "model of %d layers x %d dims with a context of %d: size overflows", c->n_layer,
                      c->n_embd, max_ctx);
        goto done;
    }

    int64_t widest = SLM_MAX(SLM_MAX((int64_t)c->n_embd, (int64_t)c->n_head * c->head_dim), (int64_t)c->n_ff);
    rc = slm_calloc((void **)&m->params_memory, m->num_parameters, sizeof(float), err, "model parameters");
    if (!rc) rc = slm_calloc((void **)&m->acts_memory, m->num_activations, sizeof(float), err, "model activations");
    if (!rc) rc = slm_calloc((void **)&m->kv_memory, kv_total, sizeof(float), err, "KV cache");
    if (!rc && m->kv_f16) {
        size_t n16;
        rc = slm_mul_ok(m->kv16_values, 2, &n16) ? slm_calloc((void **)&m->kv16_memory, n16, sizeof(uint16_t), err, "KV cache")
                                                 : slm_errf(err, SLM_E_NOMEM, "KV cache: size overflows");
        if (!rc) m->key_cache16 = m->kv16_memory, m->value_cache16 = m->kv16_memory + m->kv16_values;
    }
    if (!rc) rc = slm_calloc((void **)&m->act_type, L * SLM_LAYER_MATRICES + 1, 1, err, "matrix types");
    if (!rc) rc = slm_alloc((void **)&rows, sizeof(float) * SLM_PANEL * (size_t)widest, err,
                            "weight rows");
    if (rc) goto done;
    point_parameters(m);
    point_activations(m);
    m->rope_cs = m->kv_memory;
    m->key_cache = m->rope_cs + rope;
    m->value_cache = m->key_cache + kv_cache;
    m->scratch = m->value_cache + kv_cache;
    if (slm_arch_is_gemma(c->arch)) { /* sliding layers: their own base, no scaling (llama.cpp) */
        rc = slm_alloc((void **)&m->rope_cs_swa, sizeof(float) * rope, err, "RoPE table");
        if (rc) goto done;
        fill_rope_table(m->rope_cs_swa, max_ctx, c->head_dim, c->gemma.rope_theta_swa, 1.0, NULL);
    }
    list_ctx li = {m, 0};
    slm_catalog_each(c, list_role, &li); /* count, */
    m->n_tensors = li.n;
    rc = slm_calloc((void **)&m->tensor_role, (size_t)li.n, sizeof(int16_t), err, "tensor list");
    if (!rc) rc = slm_calloc((void **)&m->tensor_layer, (size_t)li.n, sizeof(int16_t), err, "tensor list");
    if (rc) goto done;
    li.n = 0;
    slm_catalog_each(c, list_role, &li); /* then fill */
    load_ctx lc = {m, src, rows, err};
    rc = slm_catalog_each(c, load_role, &lc);
    /* after the load: the frequency divisors are the source's rope_freqs tensor */
    if (!rc) fill_rope_table(m->rope_cs, max_ctx, c->head_dim, c->rope_theta, c->rope_scale, c->n_rope_freqs ? c->rope_freqs : NULL);
    if (!rc && m->mapped && c->tied_embeddings) m->wmats[cls_index(c)] = m->wmats[cls_index(c) + 1];
    if (!rc && c->arch == SLM_ARCH_PHI3) slm_phi3_rope_table(m->rope_cs, max_ctx, c);
done:
    slm_free(rows);
    if (rc) slm_model_free(m);
    return rc;
}

void slm_model_free(slm_model *m) {
    for (int i = 0; m->owned && i < cls_index(&m->cfg) + 2; i++) slm_free(m->owned[i]);
    slm_free(m->owned);
    slm_free(m->wmats);
    slm_free(m->panel_scratch);
    slm_free(m->bad_panels);
    slm_free(m->params_memory);
    slm_free(m->acts_memory);
    slm_free(m->kv_memory);
    slm_free(m->rope_cs_swa);
    slm_free(m->kv16_memory);
    slm_free(m->act_type);
    slm_free(m->param_off);
    slm_free(m->act_off);
    slm_free(m->kv_off);
    slm_free(m->tensor_role);
    slm_free(m->tensor_layer);
    memset(m, 0, sizeof *m);
}

/* ---------------------------------------------------------------------------------------------
 * forward */

/* Matrix mi of a mapped model under --numerics ggml: inp quantized to the weight's dot type into
   m->scratch (as bytes; *rounded = SLM_ROUNDED_BYTES | act caches it for the next matrix with the
   same input), then ggml's dot products. A group of outputs with a NaN/Inf is checked against
   its dequantized weights (the only place a mapped weight's finiteness shows). */
#define SLM_ROUNDED_BYTES 0x100
static void matmul_dot(slm_model *m, float *out, int ld_out, const float *inp, const float *bias, int N, int C, int OC,
                       int mi, int act, int *rounded) {
    const slm_wmat *w = &m->wmats[mi];
    const size_t ab = slm_dtype_row_size(act, C);
    if (*rounded != (SLM_ROUNDED_BYTES | act)) slm_quantize_act_rows(m->scratch, ab, inp, N, C, act);
    *rounded = SLM_ROUNDED_BYTES | act;
    const int n_groups = (OC + SLM_PANEL - 1) / SLM_PANEL;
    memset(m->bad_panels, 0, (size_t)n_groups);
    slm_matmul_forward_dot(out, ld_out, m->scratch, ab, w, bias, N, C, OC, m->bad_panels);
    for (int g = 0; g < n_groups && m->bad_weight < 0; g++) {
        if (!m->bad_panels[g]) continue;
        const int64_t r0 = (int64_t)g * SLM_PANEL, n = SLM_MIN((int64_t)OC - r0, (int64_t)SLM_PANEL);
        slm_dequantize_rows(w->dtype, w->data + (size_t)r0 * w->row_bytes, m->panel_scratch, n, C);
        if (slm_first_nonfinite(m->panel_scratch, n * C) >= 0) m->bad_weight = mi;
    }
}

/* out (N, OC), ld_out = inp (N, C) @ W^T + bias. The observer sees inp as the f32 path has it;
   under SLM_NUMERICS_GGML inp is then rounded as ggml would for this matrix (*rounded caches
   which act type m->scratch holds for inp). */
static void matmul(slm_model *m, float *out, int ld_out, const float *inp, const float *wp, const float *bias, int N,
                   int C, int OC, int l, int matrix, int *rounded) {
    const slm_forward_observer *ob = m->observer;
    const int mi = l * SLM_LAYER_MATRICES + matrix;
    if (ob && ob->matmul_input) ob->matmul_input(ob->ud, l, matrix, inp, N, C);
    const int dot = m->mapped && m->numerics == SLM_NUMERICS_GGML ? slm_dot_act_type(m->wmats[mi].dtype) : -1;
    if (dot >= 0) {
        matmul_dot(m, out, ld_out, inp, bias, N, C, OC, mi, dot, rounded);
        return;
    }
    int act = m->numerics == SLM_NUMERICS_GGML ? m->act_type[mi] : SLM_DTYPE_F32;
    if (act != SLM_DTYPE_F32) {
        if (*rounded != act) slm_round_rows(m->scratch, inp, N, C, act);
        *rounded = act;
        inp = m->scratch;
    }
    if (!m->mapped) {
        slm_matmul_forward(out, ld_out, inp, wp, bias, N, C, OC);
        return;
    }
    const int n_panels = (OC + SLM_PANEL - 1) / SLM_PANEL;
    memset(m->bad_panels, 0, (size_t)n_panels);
    slm_matmul_forward_typed(out, ld_out, inp, &m->wmats[mi], bias, N, C, OC, m->panel_scratch, m->n_panel_threads,
                             m->bad_panels);
    for (int p = 0; p < n_panels && m->bad_weight < 0; p++)
        if (m->bad_panels[p]) m->bad_weight = mi;
}

/* The GGUF name of wmats entry i (for messages). */
static const char *wmat_name(const slm_model *m, int i, char *buf, size_t cap) {
    const int cls = cls_index(&m->cfg);
    static const slm_role k_roles[SLM_LAYER_MATRICES] = {SLM_ROLE_ATTN_Q, SLM_ROLE_ATTN_K, SLM_ROLE_ATTN_V,
                                                         SLM_ROLE_ATTN_OUT, SLM_ROLE_FFN_GATE, SLM_ROLE_FFN_UP,
                                                         SLM_ROLE_FFN_DOWN};
    if (i == cls + 1 || (i == cls && m->cfg.tied_embeddings)) return slm_catalog_gguf_name(SLM_ROLE_TOKEN_EMBD, -1, buf, cap);
    if (i == cls) return slm_catalog_gguf_name(SLM_ROLE_OUTPUT, -1, buf, cap);
    const slm_role r = m->cfg.arch == SLM_ARCH_PHI3 && i % SLM_LAYER_MATRICES == SLM_M_Q ? SLM_ROLE_ATTN_QKV : k_roles[i % SLM_LAYER_MATRICES];
    return slm_catalog_gguf_name(r, i / SLM_LAYER_MATRICES, buf, cap);
}

static void observe_hidden(const slm_model *m, int l, const float *x, int N) {
    const slm_forward_observer *ob = m->observer;
    if (ob && ob->hidden) ob->hidden(ob->ud, l, x, N, m->cfg.n_embd);
}

static int check_call(const slm_model *m, const int32_t *tokens, int B, int T, int pos0, int t_out, const float *logits,
                      slm_err *err) {
    if (T < 1 || pos0 < 0 || pos0 > m->max_ctx - T)
        return slm_errf(err, SLM_E_ARG, "forward of %d tokens at position %d: the model was built for %d positions", T,
                        pos0, m->max_ctx);
    if (B < 1 || B > m->max_batch)
        return slm_errf(err, SLM_E_ARG, "forward of %d sequences: the model was built for %d", B, m->max_batch);
    if ((int64_t)B * T > m->max_tokens)
        return slm_errf(err, SLM_E_ARG, "forward of %d x %d tokens: the model was built for calls of %d", B, T, m->max_tokens);
    if (m->kv_f16 && m->numerics != SLM_NUMERICS_GGML)
        return slm_errf(err, SLM_E_ARG, "forward: the model has an f16 KV cache, which only --numerics ggml uses");
    if (t_out < 0 || t_out > T || (t_out < T && !logits))
        return slm_errf(err, SLM_E_ARG, "forward: logits from token %d of %d", t_out, T);
    for (int i = 0; i < B * T; i++)
        if (tokens[i] < 0 || tokens[i] >= m->cfg.n_vocab)
            return slm_errf(err, SLM_E_ARG, "token id %d at position %d is outside the vocabulary [0, %d)", tokens[i],
                            pos0 + i % T, m->cfg.n_vocab);
    return SLM_OK;
}

/* ---- gemma's additions to the block (docs/families.md 5c, 6c) ---- */

static void gemma_scale(float *x, int64_t n, float s) {
    for (int64_t i = 0; i < n; i++) x[i] *= s;
}

/* q (the first HD values of each row) times the attention scale (llama.cpp scales q, then
   attends with scale 1). */
static void gemma_scale_q(float *qkv, int ld, int T, int HD, float s) {
    for (int t = 0; t < T; t++) gemma_scale(qkv + (size_t)t * ld, HD, s);
}

/* gemma3, qwen3: per-head RMSNorm of q and k before RoPE. */
static void head_qk_norm(slm_model *m, int l, float *qkv, int N, int H, int Hkv) {
    const slm_model_config *c = &m->cfg;
    if (!slm_arch_has_qk_norm(c->arch)) return;
    const int D = c->head_dim, QKV = (H + 2 * Hkv) * D;
    slm_head_rmsnorm_forward(qkv, QKV, layer_param(m, m->params.qnorm, SLM_P_QNORM, l), N, H, D, c->norm_eps);
    slm_head_rmsnorm_forward(qkv + (size_t)H * D, QKV, layer_param(m, m->params.knorm, SLM_P_KNORM, l), N, Hkv, D, c->norm_eps);
}

int slm_model_forward(slm_model *m, const int32_t *tokens, int T, int pos0, int t_out, float *logits, slm_err *err) {
    return slm_model_forward_batch(m, tokens, 1, T, pos0, t_out, logits, err);
}

int slm_model_forward_batch(slm_model *m, const int32_t *tokens, int B, int T, int pos0, int t_out, float *logits,
                            slm_err *err) {
    SLM_TRY(check_call(m, tokens, B, T, pos0, t_out, logits, err));
    /* convenience aliases (llama2.c) */
    const slm_model_config *c = &m->cfg;
    const int C = c->n_embd, D = c->head_dim, V = c->n_vocab, N = B * T;
    const size_t NC = (size_t)N * C;
    const int ggml = m->numerics == SLM_NUMERICS_GGML;
    /* llama.cpp's AVX-512 CPU backend runs flash attention tiled, in f32 over the f16 cache, for
       batches of >= 64 queries when D fills 16-float vectors; otherwise per query, in f16 */
    const int fa_tiled = ggml && T >= 64 && D % 16 == 0;
    const slm_model_params *p = &m->params;
    const slm_model_acts *a = &m->acts;

    /* x = wte[tokens] */
    if (m->mapped) slm_embedding_forward_typed(a->encoded, tokens, &m->wmats[cls_index(c) + 1], N, C);
    else slm_embedding_forward(a->encoded, tokens, p->wte, N, C);
    const int gemma = slm_arch_is_gemma(c->arch), phi3 = c->arch == SLM_ARCH_PHI3;
    if (gemma) gemma_scale(a->encoded, (int64_t)NC, sqrtf((float)C));
    observe_hidden(m, -1, a->encoded, N);
    const float *residual = a->encoded;
    for (int l = 0; l < c->n_layer; l++) {
        const layer_dims d = dims_of(c, l);
        const int H = d.H, Hkv = d.Hkv, F = d.F, HD = d.HD, KD = d.KD, QKV = d.QKV;
        int rounded; /* act type m->scratch holds for the current matmul input, -1: none */
        /* this layer's parameters */
        const float *l_ln1w = layer_param(m, p->ln1w, SLM_P_LN1W, l), *l_ln2w = layer_param(m, p->ln2w, SLM_P_LN2W, l);
        const float *l_wq = layer_param(m, p->wq, SLM_P_WQ, l), *l_wk = layer_param(m, p->wk, SLM_P_WK, l);
        const float *l_wv = layer_param(m, p->wv, SLM_P_WV, l), *l_bqkv = layer_param(m, p->bqkv, SLM_P_BQKV, l);
        const float *l_wo = layer_param(m, p->wo, SLM_P_WO, l);
        const float *l_wgate = layer_param(m, p->wgate, SLM_P_WGATE, l), *l_wup = layer_param(m, p->wup, SLM_P_WUP, l);
        const float *l_wdown = layer_param(m, p->wdown, SLM_P_WDOWN, l);
        const size_t kv_seq = (size_t)Hkv * m->ctx_pad * D; /* one sequence's cache of this layer */
        float *l_kc = m->kv_f16 ? NULL : m->key_cache + m->kv_off[l], *l_vc = m->kv_f16 ? NULL : m->value_cache + m->kv_off[l];
        /* this layer's activations */
        float *l_ln1 = layer_act(m, a->ln1, SLM_A_LN1, l), *l_ln1_rstd = layer_act(m, a->ln1_rstd, SLM_A_LN1_RSTD, l);
        float *l_qkv = layer_act(m, a->qkv, SLM_A_QKV, l);
        float *l_atty = layer_act(m, a->atty, SLM_A_ATTY, l), *l_att_lse = layer_act(m, a->att_lse, SLM_A_ATT_LSE, l);
        float *l_attproj = layer_act(m, a->attproj, SLM_A_ATTPROJ, l);
        float *l_residual2 = layer_act(m, a->residual2, SLM_A_RESIDUAL2, l);
        float *l_ln2 = layer_act(m, a->ln2, SLM_A_LN2, l), *l_ln2_rstd = layer_act(m, a->ln2_rstd, SLM_A_LN2_RSTD, l);
        float *l_fch = layer_act(m, a->fch, SLM_A_FCH, l), *l_fch_swiglu = layer_act(m, a->fch_swiglu, SLM_A_FCH_SWIGLU, l);
        float *l_fcproj = layer_act(m, a->fcproj, SLM_A_FCPROJ, l);
        float *l_residual3 = layer_act(m, a->residual3, SLM_A_RESIDUAL3, l); /* may be residual: read first */

        /* h = x + o_proj(attn(rope(q_proj(n)), rope(k_proj(n)), v_proj(n))), n = rmsnorm(x) */
        if (H > 0) {
            slm_rmsnorm_forward(l_ln1, l_ln1_rstd, residual, l_ln1w, N, C, c->norm_eps);
            rounded = -1;
            if (phi3) { /* one fused matrix: q | k | v */
                matmul(m, l_qkv, QKV, l_ln1, l_wq, NULL, N, C, QKV, l, SLM_M_Q, &rounded);
            } else {
                matmul(m, l_qkv, QKV, l_ln1, l_wq, l_bqkv, N, C, HD, l, SLM_M_Q, &rounded);
                matmul(m, l_qkv + HD, QKV, l_ln1, l_wk, l_bqkv ? l_bqkv + HD : NULL, N, C, KD, l, SLM_M_K, &rounded);
                matmul(m, l_qkv + HD + KD, QKV, l_ln1, l_wv, l_bqkv ? l_bqkv + HD + KD : NULL, N, C, KD, l, SLM_M_V, &rounded);
            }
            head_qk_norm(m, l, l_qkv, N, H, Hkv);
            const float *rope_cs = gemma && slm_cfg_is_swa(c, l) ? m->rope_cs_swa : m->rope_cs;
            for (int b = 0; b < B; b++) {
                float *qkv_b = l_qkv + (size_t)b * T * QKV;
                slm_rope_forward(qkv_b, QKV, rope_cs, T, pos0, H, D, m->neox);
                slm_rope_forward(qkv_b + HD, QKV, rope_cs, T, pos0, Hkv, D, m->neox);
                if (gemma) gemma_scale_q(qkv_b, QKV, T, HD, c->gemma.attn_scale);
                if (phi3 && ggml) gemma_scale_q(qkv_b, QKV, T, HD, 1.0f / sqrtf((float)D)); /* llama.cpp scales q, attends with scale 1 */
                if (ggml) /* F16 KV cache; the per-query flash attention also rounds q to F16 */
                    for (int t = 0; t < T; t++)
                        slm_round_f16(qkv_b + (size_t)t * QKV + (fa_tiled ? HD : 0), fa_tiled ? 2 * KD : QKV);
                float *kc, *vc;
                float *atty = l_atty + (size_t)b * T * HD, *lse = l_att_lse + (size_t)b * T * H;
                if (m->kv_f16) { /* stored in f16, widened for the kernels (the same values) */
                    uint16_t *kc16 = m->key_cache16 + m->kv_off[l] + (size_t)b * kv_seq;
                    uint16_t *vc16 = m->value_cache16 + m->kv_off[l] + (size_t)b * kv_seq;
                    slm_kv_store_f16(kc16, vc16, qkv_b, QKV, HD, HD + KD, T, pos0, Hkv, D, m->ctx_pad);
                    kc = m->key_cache, vc = m->value_cache;
                    slm_kv_widen_f16(kc, vc, kc16, vc16, pos0 + T, Hkv, D, m->ctx_pad);
                } else {
                    kc = l_kc + (size_t)b * kv_seq, vc = l_vc + (size_t)b * kv_seq;
                    slm_kv_store(kc, vc, qkv_b, QKV, HD, HD + KD, T, pos0, Hkv, D, m->ctx_pad);
                }
                if (gemma || (phi3 && ggml)) /* phi3 in f32: the usual attention (it has a backward) */
                    slm_gemma_attention_forward(atty, lse, qkv_b, QKV, kc, vc, T, pos0, H, Hkv, D, m->ctx_pad,
                                                gemma ? c->gemma.attn_softcap : 0, slm_cfg_is_swa(c, l) ? c->gemma.n_swa : 0,
                                                ggml && !fa_tiled);
                else if (ggml && !fa_tiled) slm_attention_forward_ggml(atty, lse, qkv_b, QKV, kc, vc, T, pos0, H, Hkv, D, m->ctx_pad);
                else slm_attention_forward(atty, lse, qkv_b, QKV, kc, vc, T, pos0, H, Hkv, D, m->ctx_pad);
            }
            rounded = -1;
            matmul(m, l_attproj, C, l_atty, l_wo, NULL, N, HD, C, l, SLM_M_O, &rounded);
            if (gemma) slm_rmsnorm_forward(l_attproj, a->lnf_rstd, l_attproj, layer_param(m, p->postattn, SLM_P_POSTATTN, l), N, C, c->norm_eps);
            slm_residual_forward(l_residual2, residual, l_attproj, (int64_t)NC);
        } else {
            memmove(l_residual2, residual, sizeof(float) * NC);
        }
        /* x = h + down_proj(silu(gate_proj(n)) * up_proj(n)), n = rmsnorm(h) */
        if (F > 0) {
            slm_rmsnorm_forward(l_ln2, l_ln2_rstd, l_residual2, l_ln2w, N, C, c->norm_eps);
            rounded = -1;
            if (phi3) { /* one fused matrix: gate | up */
                matmul(m, l_fch, 2 * F, l_ln2, l_wup, NULL, N, C, 2 * F, l, SLM_M_UP, &rounded);
            } else {
                matmul(m, l_fch, 2 * F, l_ln2, l_wgate, NULL, N, C, F, l, SLM_M_GATE, &rounded);
                matmul(m, l_fch + F, 2 * F, l_ln2, l_wup, NULL, N, C, F, l, SLM_M_UP, &rounded);
            }
            if (gemma) slm_geglu_forward(l_fch_swiglu, l_fch, N, F, ggml);
            else slm_swiglu_forward(l_fch_swiglu, l_fch, N, F);
            rounded = -1;
            matmul(m, l_fcproj, C, l_fch_swiglu, l_wdown, NULL, N, F, C, l, SLM_M_DOWN, &rounded);
            if (gemma) slm_rmsnorm_forward(l_fcproj, a->lnf_rstd, l_fcproj, layer_param(m, p->postffn, SLM_P_POSTFFN, l), N, C, c->norm_eps);
            slm_residual_forward(l_residual3, l_residual2, l_fcproj, (int64_t)NC);
        } else {
            memmove(l_residual3, l_residual2, sizeof(float) * NC);
        }
        residual = l_residual3;
        observe_hidden(m, l, residual, N);
    }
    /* logits = lm_head(rmsnorm(x)) for the tokens asked for */
    slm_rmsnorm_forward(a->lnf, a->lnf_rstd, residual, p->lnfw, N, C, c->norm_eps);
    const int n_out = T - t_out;
    for (int b = 0; b < B && n_out > 0; b++) {
        int rounded = -1;
        matmul(m, logits + (size_t)b * n_out * V, V, a->lnf + ((size_t)b * T + t_out) * C, p->wcls, NULL, n_out, C, V,
               c->n_layer, 0, &rounded);
    }
    if (gemma && c->gemma.final_softcap > 0 && n_out > 0)
        slm_softcap_forward(logits, (int64_t)B * n_out * V, c->gemma.final_softcap);
    if (m->bad_weight >= 0) { /* a mapped matrix held a NaN/Inf: found when its panel was dequantized */
        char name[SLM_MAX_NAME];
        int i = m->bad_weight;
        m->bad_weight = -1;
        return slm_errf(err, SLM_E_DATA, "%s: tensor '%s': non-finite values (NaN/Inf)", m->wmats[i].file,
                        wmat_name(m, i, name, sizeof name));
    }
    return SLM_OK;
}

/* ---------------------------------------------------------------------------------------------
 * reading weights back, and the model as a tensor source (to write a model held in memory) */

/* Rows [r0, r0+n) of a weight as f32 (a mapped matrix dequantized from its stored rows). */
static void read_slot_rows(const slm_model *m, const weight_slot *s, int64_t r0, int64_t n, float *dst) {
    if (!s->base) {
        const slm_wmat *w = &m->wmats[s->wm];
        slm_dequantize_rows(w->dtype, w->data + (size_t)r0 * w->row_bytes, dst, n, w->cols);
    } else if (s->packed) {
        slm_panel_unpack_rows(dst, s->base, r0, n, s->ncols);
    } else {
        memcpy(dst, s->base, sizeof(float) * (size_t)s->ncols);
    }
}

int slm_model_get_weight(const slm_model *m, const char *name, float *dst, int64_t *nrows, int64_t *ncols, slm_err *err) {
    weight_slot s;
    int l, role = slm_catalog_parse_gguf(name, &l);
    if (!m->params_memory || role < 0 || (slm_catalog_kind(role)->per_layer && (l < 0 || l >= m->cfg.n_layer)) ||
        !role_slot(m, role, l, &s))
        return slm_errf(err, SLM_E_ARG, "model has no tensor '%s'", name);
    if (nrows) *nrows = s.nrows;
    if (ncols) *ncols = s.ncols;
    if (!dst) return SLM_OK;
    read_slot_rows(m, &s, 0, s.nrows, dst);
    return SLM_OK;
}

/* Tensor i of the model's own list (catalogue order) as role and layer. */

static int list_role(void *ud, slm_role role, int l) {
    list_ctx *x = ud;
    if (x->m->tensor_role) {
        x->m->tensor_role[x->n] = (int16_t)role;
        x->m->tensor_layer[x->n] = (int16_t)l;
    }
    x->n++;
    return SLM_OK;
}

static void model_info(const void *ud, size_t i, slm_tensor_info *o) {
    const slm_model *m = ud;
    const int role = m->tensor_role[i], l = m->tensor_layer[i];
    int64_t shape[2];
    memset(o, 0, sizeof *o);
    slm_catalog_gguf_name(role, l, o->name, sizeof o->name);
    snprintf(o->src_name, sizeof o->src_name, "%s", o->name);
    o->file = "the model in memory";
    o->dtype = SLM_DTYPE_F32;
    o->ndim = slm_catalog_shape(&m->cfg, role, l, shape);
    o->shape[0] = shape[0];
    o->shape[1] = shape[1];
    o->nbytes = sizeof(float) * (size_t)shape[0] * (size_t)(o->ndim == 2 ? shape[1] : 1);
}

static int model_find(const void *ud, const char *name) {
    const slm_model *m = ud;
    int l, role = slm_catalog_parse_gguf(name, &l);
    for (int i = 0; role >= 0 && i < m->n_tensors; i++)
        if (m->tensor_role[i] == role && m->tensor_layer[i] == l) return i;
    return -1;
}

static int model_read_f32(const void *ud, size_t i, int64_t r0, int64_t n, float *dst, slm_err *err) {
    const slm_model *m = ud;
    weight_slot s;
    SLM_UNUSED(err);
    SLM_ASSERT(role_slot(m, m->tensor_role[i], m->tensor_layer[i], &s) && r0 >= 0 && r0 + n <= s.nrows);
    read_slot_rows(m, &s, r0, n, dst);
    return SLM_OK;
}

static const void *model_read_raw(const void *ud, size_t i, int64_t r0, int64_t n, void *scratch, slm_err *err) {
    return model_read_f32(ud, i, r0, n, scratch, err) ? NULL : scratch;
}

void slm_model_tensors(const slm_model *m, slm_tensor_src *out) {
    *out = (slm_tensor_src){(size_t)m->n_tensors, m, model_info, model_find, model_read_f32, model_read_raw, NULL};
}
