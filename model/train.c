/* train.c - the gradient buffer and the backward pass of the reference transformer (llm.c's
 * gpt2_backward over transformer.c's flat buffers).
 *
 * Owns: the gradient buffer (the parameters' size table), the activation-gradient scratch, the
 * training forward (records what the backward needs), the cross-entropy loss of a training
 * forward, and backward() as straight-line code that walks transformer.c's forward in reverse.
 * Must not: print, read files, or change the forward: it reads the per-layer activations the
 * forward keeps (SLM_BUILD_KEEP_ACTS) through the model's public offset tables.
 */
#include "model/train.h"

#include <math.h>
#include <string.h>

#include "core/mem.h"
#include "core/slm.h"
#include "model/catalog.h"
#include "model/layers.h"

/* ---------------------------------------------------------------------------------------------
 * where things live: the model's offset tables (transformer.h), read the way transformer.c
 * writes them */

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

static int is_matrix_param(int p) {
    return p == SLM_P_WTE || p == SLM_P_WQ || p == SLM_P_WK || p == SLM_P_WV || p == SLM_P_WO || p == SLM_P_WGATE ||
           p == SLM_P_WUP || p == SLM_P_WDOWN || p == SLM_P_WCLS;
}

static int is_global_param(int p) { return p == SLM_P_WTE || p == SLM_P_LNFW || p == SLM_P_WCLS; }

/* Entry p of a pointer table (the fields of slm_model_params are in SLM_P_* order). */
static float **table_entry(slm_model_params *t, int p) {
    float **ptrs[SLM_NUM_PARAMETER_TENSORS] = {
        &t->wte, &t->ln1w, &t->wq, &t->wk, &t->wv, &t->bqkv, &t->wo, &t->ln2w, &t->wgate, &t->wup, &t->wdown, &t->lnfw,
        &t->wcls, &t->qnorm, &t->knorm, &t->postattn, &t->postffn,
    };
    return ptrs[p];
}

/* Floats of tensor p at layer l (per-layer tensors: the gap to the next layer's offset). */
static size_t layer_floats(const slm_model *m, int p, int l) {
    const int L = m->cfg.n_layer;
    const size_t *off = m->param_off + (size_t)p * L;
    return (l + 1 < L ? off[l + 1] : m->param_sizes[p]) - off[l];
}

int slm_train_param_range(const slm_model *m, int p, int l, size_t *off, size_t *n, int *is_matrix) {
    SLM_ASSERT(p >= 0 && p < SLM_NUM_PARAMETER_TENSORS && l >= -1 && l < m->cfg.n_layer);
    if (is_global_param(p) != (l < 0)) return 0;
    if (p == SLM_P_WCLS && m->cfg.tied_embeddings) return 0;
    size_t start = 0; /* tensors are consecutive in SLM_P_* order (transformer.c point_parameters) */
    for (int i = 0; i < p; i++) start += m->param_sizes[i];
    size_t cnt = l < 0 ? m->param_sizes[p] : layer_floats(m, p, l);
    if (l >= 0) start += m->param_off[(size_t)p * m->cfg.n_layer + l];
    if (!cnt) return 0;
    if (off) *off = start;
    if (n) *n = cnt;
    if (is_matrix) *is_matrix = is_matrix_param(p);
    return 1;
}

/* Layer l's part of tensor p in a buffer laid out like params (base: that buffer's pointer
   table entry); NULL when the layer has none. */
static float *layer_param(const slm_model *m, float *base, int p, int l) {
    if (!base || !layer_floats(m, p, l)) return NULL;
    return base + m->param_off[(size_t)p * m->cfg.n_layer + l];
}

/* Layer l's slot of activation a (keep_acts: one slot per layer). */
static float *layer_act(const slm_model *m, float *base, int a, int l) {
    return base + m->act_off[(size_t)a * m->n_act_slots + l];
}

/* ---------------------------------------------------------------------------------------------
 * init / free */

/* The widest layer's QKV, H*D, F and H (per-layer widths may be below the config's maxima). */
static void widest(const slm_model_config *c, size_t *qkv, size_t *hd, size_t *f, size_t *h) {
    *qkv = *hd = *f = *h = 0;
    for (int l = 0; l < c->n_layer; l++) {
        layer_dims d = dims_of(c, l);
        *qkv = SLM_MAX(*qkv, (size_t)d.QKV);
        *hd = SLM_MAX(*hd, (size_t)d.HD);
        *f = SLM_MAX(*f, (size_t)d.F);
        *h = SLM_MAX(*h, (size_t)d.H);
    }
}

int slm_train_init(slm_train *tr, slm_model *m, slm_err *err) {
    memset(tr, 0, sizeof *tr);
    if (!m->keep_acts || m->mapped || !m->params_memory)
        return slm_errf(err, SLM_E_ARG, "training needs a model built with SLM_BUILD_KEEP_ACTS and f32 weights "
                        "(not SLM_BUILD_MAPPED)");
    if (slm_arch_is_gemma(m->cfg.arch)) /* soft-capped, windowed attention and post norms have no backward yet */
        return slm_errf(err, SLM_E_UNSUPPORTED, "training %s models is not supported yet", slm_arch_gguf_name(m->cfg.arch));
    tr->m = m;
    tr->num_parameters = m->num_parameters;
    const size_t N = (size_t)m->max_batch * (size_t)m->max_ctx, V = (size_t)m->cfg.n_vocab;
    /* N <= 2^24 and V < 2^31 (build checks): N * V fits 64 bits */
    int rc = slm_alloc((void **)&tr->tokens, N * sizeof(int32_t), err, "training tokens");
    if (!rc) rc = slm_alloc((void **)&tr->logits, N * V * sizeof(float), err, "training logits");
    if (!rc) rc = slm_calloc((void **)&tr->dlogits, N * V, sizeof(float), err, "logit gradients");
    if (!rc) rc = slm_alloc((void **)&tr->lnf_rstd_seen, N * sizeof(float), err, "training forward statistics");
    if (!rc) rc = slm_alloc((void **)&tr->tok_loss, N * sizeof(double), err, "token losses");
    if (!rc) rc = slm_alloc((void **)&tr->tgt, N * sizeof(int32_t), err, "token targets");
    if (!rc) rc = slm_alloc((void **)&tr->dloss, N * sizeof(float), err, "token loss gradients");
    if (rc) slm_train_free(tr);
    return rc;
}

void slm_train_free(slm_train *tr) {
    slm_free(tr->grads_memory);
    slm_free(tr->dacts_memory);
    slm_free(tr->tokens);
    slm_free(tr->logits);
    slm_free(tr->dlogits);
    slm_free(tr->lnf_rstd_seen);
    slm_free(tr->tok_loss);
    slm_free(tr->tgt);
    slm_free(tr->dloss);
    memset(tr, 0, sizeof *tr);
}

/* The gradient buffer with the parameters' pointer table, and the activation-gradient scratch. */
static int alloc_grads(slm_train *tr, slm_err *err) {
    if (tr->grads_memory) return SLM_OK;
    const slm_model *m = tr->m;
    const slm_model_config *c = &m->cfg;
    const size_t N = (size_t)m->max_batch * (size_t)m->max_ctx, C = (size_t)c->n_embd;
    size_t qkv, hd, f, h;
    widest(c, &qkv, &hd, &f, &h);
    const size_t qk = slm_arch_has_qk_norm(c->arch) ? N * qkv : 0;
    const size_t sizes[8] = {N * C, N * C, N * qkv, N * hd, N * 2 * f, N * f, N * h, qk};
    size_t total = 0;
    for (int i = 0; i < 8; i++) total += sizes[i]; /* each < 2^48: N <= 2^24, widths <= 2^24 */
    SLM_TRY(slm_calloc((void **)&tr->grads_memory, tr->num_parameters, sizeof(float), err, "parameter gradients"));
    if (slm_calloc((void **)&tr->dacts_memory, total, sizeof(float), err, "activation gradients")) {
        slm_free(tr->grads_memory);
        tr->grads_memory = NULL;
        return err->code;
    }
    float *it = tr->grads_memory;
    for (int p = 0; p < SLM_NUM_PARAMETER_TENSORS; p++) {
        *table_entry(&tr->grads, p) = m->param_sizes[p] ? it : NULL;
        it += m->param_sizes[p];
    }
    if (c->tied_embeddings) tr->grads.wcls = tr->grads.wte;
    float **dst[8] = {&tr->dres, &tr->dln, &tr->dqkv, &tr->datty, &tr->dfch, &tr->dfch_swiglu, &tr->delta, &tr->qk_raw};
    it = tr->dacts_memory;
    for (int i = 0; i < 8; i++) {
        *dst[i] = sizes[i] ? it : NULL;
        it += sizes[i];
    }
    return SLM_OK;
}

int slm_train_zero_grad(slm_train *tr, slm_err *err) {
    SLM_TRY(alloc_grads(tr, err));
    memset(tr->grads_memory, 0, tr->num_parameters * sizeof(float));
    return SLM_OK;
}

/* ---------------------------------------------------------------------------------------------
 * forward and loss */

int slm_train_forward(slm_train *tr, const int32_t *tokens, int B, int T, slm_err *err) {
    slm_model *m = tr->m;
    if (m->numerics != SLM_NUMERICS_F32)
        return slm_errf(err, SLM_E_ARG, "training forward: the model must compute with f32 numerics");
    tr->B = tr->T = 0;
    SLM_TRY(slm_model_forward_batch(m, tokens, B, T, 0, 0, tr->logits, err));
    const size_t N = (size_t)B * T;
    memcpy(tr->tokens, tokens, N * sizeof(int32_t));
    memcpy(tr->lnf_rstd_seen, m->acts.lnf_rstd, N * sizeof(float));
    tr->B = B;
    tr->T = T;
    return SLM_OK;
}

int slm_train_loss_xent(slm_train *tr, const int32_t *targets, float scale, double *loss, slm_err *err) {
    const int N = tr->B * tr->T, V = tr->m->cfg.n_vocab;
    if (!N) return slm_errf(err, SLM_E_ARG, "loss: no training forward to score");
    int64_t n_scored = 0;
    for (int i = 0; i < N; i++) {
        if (targets[i] >= V)
            return slm_errf(err, SLM_E_ARG, "target id %d at token %d is outside the vocabulary [0, %d)", targets[i], i, V);
        n_scored += targets[i] >= 0;
    }
    if (!n_scored) return slm_errf(err, SLM_E_ARG, "loss: every target is negative (nothing scored)");
    /* -log p[target] per token (unscored tokens read id 0, their loss is dropped) */
    for (int i = 0; i < N; i++) tr->tgt[i] = targets[i] < 0 ? 0 : targets[i];
    slm_crossentropy_forward(tr->tok_loss, tr->logits, tr->tgt, N, V);
    double sum = 0.0;
    for (int i = 0; i < N; i++) {
        if (targets[i] < 0) tr->tok_loss[i] = 0.0;
        sum += tr->tok_loss[i];
    }
    *loss = sum / (double)n_scored;
    /* d mean / d loss_t = 1/n for every scored token */
    const float g = (float)(scale / (double)n_scored);
    for (int i = 0; i < N; i++) tr->dloss[i] = targets[i] < 0 ? 0.0f : g;
    memset(tr->dlogits, 0, sizeof(float) * (size_t)N * V);
    slm_crossentropy_softmax_backward(tr->dlogits, tr->dloss, tr->logits, targets, N, V);
    return SLM_OK;
}

/* ---------------------------------------------------------------------------------------------
 * backward: transformer.c's forward, read bottom to top */

int slm_train_backward(slm_train *tr, slm_err *err) {
    slm_model *m = tr->m;
    const int B = tr->B, T = tr->T, N = B * T;
    if (!N) return slm_errf(err, SLM_E_ARG, "backward: no training forward (slm_train_forward) to differentiate");
    if (memcmp(tr->lnf_rstd_seen, m->acts.lnf_rstd, (size_t)N * sizeof(float)))
        return slm_errf(err, SLM_E_ARG, "backward: the model ran another forward after slm_train_forward; its "
                        "activations are gone");
    SLM_TRY(alloc_grads(tr, err));
    /* convenience aliases (llama2.c) */
    const slm_model_config *c = &m->cfg;
    const int C = c->n_embd, D = c->head_dim, V = c->n_vocab;
    const size_t NC = (size_t)N * C;
    slm_model_params *p = &m->params, *g = &tr->grads;
    const slm_model_acts *a = &m->acts;
    float *dres = tr->dres, *dln = tr->dln;

    /* logits = lm_head(lnf), lnf = rmsnorm(x): dres = d x of the last layer's output */
    const float *residual = c->n_layer ? layer_act(m, a->residual3, SLM_A_RESIDUAL3, c->n_layer - 1) : a->encoded;
    memset(dln, 0, NC * sizeof(float));
    slm_matmul_backward(dln, g->wcls, NULL, tr->dlogits, V, a->lnf, p->wcls, N, C, V);
    memset(dres, 0, NC * sizeof(float));
    slm_rmsnorm_backward(dres, g->lnfw, dln, residual, p->lnfw, a->lnf_rstd, N, C);

    for (int l = c->n_layer - 1; l >= 0; l--) {
        if (tr->dhidden) /* a loss on the layer's output (feature distillation) */
            for (size_t i = 0; i < NC; i++) dres[i] += tr->dhidden[(size_t)l * NC + i];
        const layer_dims d = dims_of(c, l);
        const int H = d.H, Hkv = d.Hkv, F = d.F, HD = d.HD, KD = d.KD, QKV = d.QKV;
        /* this layer's parameters and their gradients */
        const float *l_ln1w = layer_param(m, p->ln1w, SLM_P_LN1W, l), *l_ln2w = layer_param(m, p->ln2w, SLM_P_LN2W, l);
        const float *l_wq = layer_param(m, p->wq, SLM_P_WQ, l), *l_wk = layer_param(m, p->wk, SLM_P_WK, l);
        const float *l_wv = layer_param(m, p->wv, SLM_P_WV, l), *l_wo = layer_param(m, p->wo, SLM_P_WO, l);
        const float *l_wgate = layer_param(m, p->wgate, SLM_P_WGATE, l), *l_wup = layer_param(m, p->wup, SLM_P_WUP, l);
        const float *l_wdown = layer_param(m, p->wdown, SLM_P_WDOWN, l);
        float *dl_ln1w = layer_param(m, g->ln1w, SLM_P_LN1W, l), *dl_ln2w = layer_param(m, g->ln2w, SLM_P_LN2W, l);
        float *dl_wq = layer_param(m, g->wq, SLM_P_WQ, l), *dl_wk = layer_param(m, g->wk, SLM_P_WK, l);
        float *dl_wv = layer_param(m, g->wv, SLM_P_WV, l), *dl_bqkv = layer_param(m, g->bqkv, SLM_P_BQKV, l);
        float *dl_wo = layer_param(m, g->wo, SLM_P_WO, l);
        float *dl_wgate = layer_param(m, g->wgate, SLM_P_WGATE, l), *dl_wup = layer_param(m, g->wup, SLM_P_WUP, l);
        float *dl_wdown = layer_param(m, g->wdown, SLM_P_WDOWN, l);
        /* this layer's activations; its input is the previous layer's output */
        const float *l_in = l > 0 ? layer_act(m, a->residual3, SLM_A_RESIDUAL3, l - 1) : a->encoded;
        const float *l_ln1 = layer_act(m, a->ln1, SLM_A_LN1, l), *l_ln1_rstd = layer_act(m, a->ln1_rstd, SLM_A_LN1_RSTD, l);
        const float *l_qkv = layer_act(m, a->qkv, SLM_A_QKV, l), *l_atty = layer_act(m, a->atty, SLM_A_ATTY, l);
        const float *l_att_lse = layer_act(m, a->att_lse, SLM_A_ATT_LSE, l);
        const float *l_residual2 = layer_act(m, a->residual2, SLM_A_RESIDUAL2, l);
        const float *l_ln2 = layer_act(m, a->ln2, SLM_A_LN2, l), *l_ln2_rstd = layer_act(m, a->ln2_rstd, SLM_A_LN2_RSTD, l);
        const float *l_fch = layer_act(m, a->fch, SLM_A_FCH, l);
        const float *l_fch_swiglu = layer_act(m, a->fch_swiglu, SLM_A_FCH_SWIGLU, l);

        /* x = h + down_proj(silu(gate_proj(n)) * up_proj(n)), n = rmsnorm(h): the residual passes
           dres on to h unchanged (dres is d h from here) and the branch gets dres too */
        if (F > 0) {
            memset(tr->dfch_swiglu, 0, (size_t)N * F * sizeof(float));
            slm_matmul_backward(tr->dfch_swiglu, dl_wdown, NULL, dres, C, l_fch_swiglu, l_wdown, N, F, C);
            memset(tr->dfch, 0, (size_t)N * 2 * F * sizeof(float));
            slm_swiglu_backward(tr->dfch, tr->dfch_swiglu, l_fch, N, F);
            memset(dln, 0, NC * sizeof(float));
            if (c->arch == SLM_ARCH_PHI3) { /* fused gate | up */
                slm_matmul_backward(dln, dl_wup, NULL, tr->dfch, 2 * F, l_ln2, l_wup, N, C, 2 * F);
            } else {
                slm_matmul_backward(dln, dl_wgate, NULL, tr->dfch, 2 * F, l_ln2, l_wgate, N, C, F);
                slm_matmul_backward(dln, dl_wup, NULL, tr->dfch + F, 2 * F, l_ln2, l_wup, N, C, F);
            }
            slm_rmsnorm_backward(dres, dl_ln2w, dln, l_residual2, l_ln2w, l_ln2_rstd, N, C);
        }
        /* h = x + o_proj(attn(rope(q_proj(n)), rope(k_proj(n)), v_proj(n))), n = rmsnorm(x) */
        if (H > 0) {
            memset(tr->datty, 0, (size_t)N * HD * sizeof(float));
            slm_matmul_backward(tr->datty, dl_wo, NULL, dres, C, l_atty, l_wo, N, HD, C);
            memset(tr->dqkv, 0, (size_t)N * QKV * sizeof(float));
            for (int b = 0; b < B; b++) {
                const size_t r0 = (size_t)b * T;
                float *dqkv_b = tr->dqkv + r0 * QKV;
                slm_attention_backward(dqkv_b, tr->delta + r0 * H, tr->datty + r0 * HD, l_qkv + r0 * QKV, l_atty + r0 * HD,
                                       l_att_lse + r0 * H, QKV, HD, HD + KD, T, H, Hkv, D);
                slm_rope_backward(dqkv_b, QKV, m->rope_cs, T, 0, H, D, m->neox);
                slm_rope_backward(dqkv_b + HD, QKV, m->rope_cs, T, 0, Hkv, D, m->neox);
            }
            if (slm_arch_has_qk_norm(c->arch)) { /* q, k = headnorm(q_proj(n)), headnorm(k_proj(n)) before RoPE */
                const float *l_bqkv = layer_param(m, p->bqkv, SLM_P_BQKV, l);
                slm_matmul_forward(tr->qk_raw, QKV, l_ln1, l_wq, l_bqkv, N, C, HD); /* the forward's inputs again */
                slm_matmul_forward(tr->qk_raw + HD, QKV, l_ln1, l_wk, l_bqkv ? l_bqkv + HD : NULL, N, C, KD);
                slm_head_rmsnorm_backward(tr->dqkv, QKV, layer_param(m, g->qnorm, SLM_P_QNORM, l), tr->qk_raw, QKV,
                                          layer_param(m, p->qnorm, SLM_P_QNORM, l), N, H, D, c->norm_eps);
                slm_head_rmsnorm_backward(tr->dqkv + HD, QKV, layer_param(m, g->knorm, SLM_P_KNORM, l), tr->qk_raw + HD,
                                          QKV, layer_param(m, p->knorm, SLM_P_KNORM, l), N, Hkv, D, c->norm_eps);
            }
            memset(dln, 0, NC * sizeof(float));
            if (c->arch == SLM_ARCH_PHI3) { /* fused q | k | v */
                slm_matmul_backward(dln, dl_wq, NULL, tr->dqkv, QKV, l_ln1, l_wq, N, C, QKV);
            } else {
                slm_matmul_backward(dln, dl_wq, dl_bqkv, tr->dqkv, QKV, l_ln1, l_wq, N, C, HD);
                slm_matmul_backward(dln, dl_wk, dl_bqkv ? dl_bqkv + HD : NULL, tr->dqkv + HD, QKV, l_ln1, l_wk, N, C, KD);
                slm_matmul_backward(dln, dl_wv, dl_bqkv ? dl_bqkv + HD + KD : NULL, tr->dqkv + HD + KD, QKV, l_ln1, l_wv, N,
                                    C, KD);
            }
            slm_rmsnorm_backward(dres, dl_ln1w, dln, l_in, l_ln1w, l_ln1_rstd, N, C);
        }
    }
    /* x = wte[tokens] */
    slm_embedding_backward(g->wte, dres, tr->tokens, N, C);
    return SLM_OK;
}

/* ---------------------------------------------------------------------------------------------
 * reading a gradient back by name */

/* The parameter tensor of a role (and where inside its layer slot: the q/k/v biases share one). */
static int role_param(const slm_model_config *c, int role, int l, int *p, size_t *sub) {
    *sub = 0;
    switch (role) {
    case SLM_ROLE_TOKEN_EMBD: *p = SLM_P_WTE; return 1;
    case SLM_ROLE_OUTPUT_NORM: *p = SLM_P_LNFW; return 1;
    case SLM_ROLE_OUTPUT: *p = c->tied_embeddings ? SLM_P_WTE : SLM_P_WCLS; return 1;
    case SLM_ROLE_ATTN_NORM: *p = SLM_P_LN1W; return 1;
    case SLM_ROLE_ATTN_Q:
    case SLM_ROLE_ATTN_QKV: *p = SLM_P_WQ; return 1; /* phi3's fused matrix lives in wq */
    case SLM_ROLE_ATTN_K: *p = SLM_P_WK; return 1;
    case SLM_ROLE_ATTN_V: *p = SLM_P_WV; return 1;
    case SLM_ROLE_ATTN_OUT: *p = SLM_P_WO; return 1;
    case SLM_ROLE_FFN_NORM: *p = SLM_P_LN2W; return 1;
    case SLM_ROLE_FFN_GATE: *p = SLM_P_WGATE; return 1;
    case SLM_ROLE_FFN_UP: *p = SLM_P_WUP; return 1;
    case SLM_ROLE_FFN_DOWN: *p = SLM_P_WDOWN; return 1;
    case SLM_ROLE_ATTN_Q_NORM: *p = SLM_P_QNORM; return 1;
    case SLM_ROLE_ATTN_K_NORM: *p = SLM_P_KNORM; return 1;
    case SLM_ROLE_ROPE_FREQS: return 0; /* constants: no gradient */
    }
    const layer_dims d = dims_of(c, l);
    *p = SLM_P_BQKV;
    if (role == SLM_ROLE_ATTN_Q_BIAS) return 1;
    *sub = (size_t)d.HD;
    if (role == SLM_ROLE_ATTN_K_BIAS) return 1;
    *sub = (size_t)(d.HD + d.KD);
    return role == SLM_ROLE_ATTN_V_BIAS;
}

int slm_train_get_grad(const slm_train *tr, const char *name, float *dst, int64_t *nrows, int64_t *ncols, slm_err *err) {
    const slm_model *m = tr->m;
    int l, p, role = m ? slm_catalog_parse_gguf(name, &l) : -1;
    size_t sub, off;
    int64_t shape[2];
    const int per_layer = role >= 0 && slm_catalog_kind(role)->per_layer;
    if (!tr->grads_memory || role < 0 || (per_layer && (l < 0 || l >= m->cfg.n_layer)) ||
        !slm_catalog_present(&m->cfg, role, per_layer ? l : -1) || !role_param(&m->cfg, role, l, &p, &sub) ||
        !slm_train_param_range(m, p, per_layer ? l : -1, &off, NULL, NULL))
        return slm_errf(err, SLM_E_ARG, "no gradient of tensor '%s'", name);
    const int ndim = slm_catalog_shape(&m->cfg, role, per_layer ? l : -1, shape);
    const int64_t r = ndim == 2 ? shape[0] : 1, cols = ndim == 2 ? shape[1] : shape[0];
    if (nrows) *nrows = r;
    if (ncols) *ncols = cols;
    if (!dst) return SLM_OK;
    const float *base = tr->grads_memory + off + sub;
    if (is_matrix_param(p)) slm_panel_unpack_rows(dst, base, 0, r, cols);
    else memcpy(dst, base, sizeof(float) * (size_t)cols);
    return SLM_OK;
}
