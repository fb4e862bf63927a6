/* transformer.c - the reference Llama-family transformer: parameters, activations, KV cache,
 * loading and the forward pass (llm.c's train_gpt2.c layout, inference part).
 *
 * Owns: the size and pointer tables of the flat parameter and activation buffers, reading
 * and packing the weights, the RoPE table, and forward() as straight-line code over the
 * layer kernels of layers.c.
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
#include "model/ggml_numerics.h"
#include "model/layers.h"

/* ---------------------------------------------------------------------------------------------
 * sizes and pointer tables */

/* a * b * c floats, or 0 on overflow (never a real size here: every tensor is non-empty or
   deliberately empty, and the caller checks the total). */
static int mul3(size_t a, size_t b, size_t c, size_t *out) {
    size_t ab;
    return slm_mul_ok(a, b, &ab) && slm_mul_ok(ab, c, out);
}

static int check_config(const slm_model_config *c, int max_ctx, slm_err *err) {
    if (c->n_embd <= 0 || c->n_ff <= 0 || c->n_layer <= 0 || c->n_head <= 0 || c->n_head_kv <= 0 || c->head_dim <= 0 ||
        c->n_vocab <= 0)
        return slm_errf(err, SLM_E_FORMAT, "model config: a dimension is not positive (n_embd %d, n_ff %d, n_layer %d, "
                        "n_head %d, n_head_kv %d, head_dim %d, n_vocab %d)", c->n_embd, c->n_ff, c->n_layer,
                        c->n_head, c->n_head_kv, c->head_dim, c->n_vocab);
    if (c->n_head % c->n_head_kv)
        return slm_errf(err, SLM_E_FORMAT, "model config: n_head %d is not a multiple of n_head_kv %d", c->n_head,
                        c->n_head_kv);
    if (c->head_dim % 2 || c->head_dim > 512)
        return slm_errf(err, SLM_E_UNSUPPORTED, "model config: head_dim %d (RoPE needs an even head dim <= 512)",
                        c->head_dim);
    if (c->arch != SLM_ARCH_LLAMA && c->arch != SLM_ARCH_QWEN2)
        return slm_errf(err, SLM_E_UNSUPPORTED, "model config: architecture %d is not llama or qwen2", c->arch);
    if (!(c->norm_eps > 0.0f) || !(c->rope_theta > 0.0f) || !(c->rope_scale > 0.0f))
        return slm_errf(err, SLM_E_FORMAT, "model config: norm_eps %g, rope_theta %g, rope_scale %g must be > 0",
                        (double)c->norm_eps, (double)c->rope_theta, (double)c->rope_scale);
    if (max_ctx < 1 || max_ctx > (1 << 24))
        return slm_errf(err, SLM_E_ARG, "context of %d tokens: must be in [1, 16777216]", max_ctx);
    int64_t qkv = (int64_t)(c->n_head + 2 * c->n_head_kv) * c->head_dim;
    if (qkv > (1 << 24) || (int64_t)c->n_head * c->head_dim > (1 << 24) || 2LL * c->n_ff > (1 << 24))
        return slm_errf(err, SLM_E_UNSUPPORTED, "model config: layer widths too large");
    return SLM_OK;
}

/* llm.c's fill_in_parameter_sizes. Returns 0 on overflow. */
static int fill_in_parameter_sizes(size_t *sizes, const slm_model_config *c, int qkv_dim) {
    size_t L = (size_t)c->n_layer, C = (size_t)c->n_embd;
    int64_t HD = (int64_t)c->n_head * c->head_dim, KD = (int64_t)c->n_head_kv * c->head_dim;
    int ok = 1;
    sizes[SLM_P_WTE] = slm_panel_floats(c->n_vocab, c->n_embd);
    ok &= slm_mul_ok(L, C, &sizes[SLM_P_LN1W]);
    ok &= slm_mul_ok(L, slm_panel_floats(HD, c->n_embd), &sizes[SLM_P_WQ]);
    ok &= slm_mul_ok(L, slm_panel_floats(KD, c->n_embd), &sizes[SLM_P_WK]);
    ok &= slm_mul_ok(L, slm_panel_floats(KD, c->n_embd), &sizes[SLM_P_WV]);
    ok &= slm_mul_ok(c->qkv_bias ? L : 0, (size_t)qkv_dim, &sizes[SLM_P_BQKV]);
    ok &= slm_mul_ok(L, slm_panel_floats(c->n_embd, HD), &sizes[SLM_P_WO]);
    ok &= slm_mul_ok(L, C, &sizes[SLM_P_LN2W]);
    ok &= slm_mul_ok(L, slm_panel_floats(c->n_ff, c->n_embd), &sizes[SLM_P_WGATE]);
    ok &= slm_mul_ok(L, slm_panel_floats(c->n_ff, c->n_embd), &sizes[SLM_P_WUP]);
    ok &= slm_mul_ok(L, slm_panel_floats(c->n_embd, c->n_ff), &sizes[SLM_P_WDOWN]);
    sizes[SLM_P_LNFW] = C;
    sizes[SLM_P_WCLS] = c->tied_embeddings ? 0 : slm_panel_floats(c->n_vocab, c->n_embd);
    return ok;
}

static void point_parameters(slm_model *m) {
    slm_model_params *p = &m->params;
    float **ptrs[SLM_NUM_PARAMETER_TENSORS] = {
        &p->wte, &p->ln1w, &p->wq,   &p->wk,  &p->wv,    &p->bqkv, &p->wo,
        &p->ln2w, &p->wgate, &p->wup, &p->wdown, &p->lnfw, &p->wcls,
    };
    float *it = m->params_memory;
    for (int i = 0; i < SLM_NUM_PARAMETER_TENSORS; i++) {
        *ptrs[i] = m->param_sizes[i] ? it : NULL;
        it += m->param_sizes[i];
    }
    if (m->cfg.tied_embeddings) p->wcls = p->wte;
}

/* L: layers with their own activation slot (n_layer, or 1 when layers share one) */
static int fill_in_activation_sizes(size_t *sizes, const slm_model_config *c, int n_slots, int qkv_dim, size_t T) {
    size_t L = (size_t)n_slots, C = (size_t)c->n_embd, F = (size_t)c->n_ff, H = (size_t)c->n_head;
    size_t HD = H * (size_t)c->head_dim;
    int ok = 1;
    sizes[SLM_A_ENCODED] = T * C;
    ok &= mul3(L, T, C, &sizes[SLM_A_LN1]);
    sizes[SLM_A_LN1_RSTD] = L * T;
    ok &= mul3(L, T, (size_t)qkv_dim, &sizes[SLM_A_QKV]);
    ok &= mul3(L, T, HD, &sizes[SLM_A_ATTY]);
    ok &= mul3(L, T, H, &sizes[SLM_A_ATT_LSE]);
    ok &= mul3(L, T, C, &sizes[SLM_A_ATTPROJ]);
    ok &= mul3(L, T, C, &sizes[SLM_A_RESIDUAL2]);
    ok &= mul3(L, T, C, &sizes[SLM_A_LN2]);
    sizes[SLM_A_LN2_RSTD] = L * T;
    ok &= mul3(L, T, 2 * F, &sizes[SLM_A_FCH]);
    ok &= mul3(L, T, F, &sizes[SLM_A_FCH_SWIGLU]);
    ok &= mul3(L, T, C, &sizes[SLM_A_FCPROJ]);
    ok &= mul3(L, T, C, &sizes[SLM_A_RESIDUAL3]);
    sizes[SLM_A_LNF] = T * C;
    sizes[SLM_A_LNF_RSTD] = T;
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

static int sum_sizes(const size_t *sizes, int n, size_t *total) {
    *total = 0;
    for (int i = 0; i < n; i++)
        if (!slm_add_ok(*total, sizes[i], total)) return 0;
    return 1;
}

/* ---------------------------------------------------------------------------------------------
 * weights: where each GGUF tensor lives in the flat buffer */

typedef struct weight_slot {
    float *base;   /* packed matrix (or vector) of this layer */
    int64_t nrows, ncols;
    int packed;    /* panel layout (matrices) or plain (vectors) */
    int matrix;    /* index into act_type, or -1 for vectors */
} weight_slot;

/* The tensors of one block, in load order; layer_slots fills their slots in the same order. */
static const char *const k_layer_suffix[] = {"attn_norm.weight", "attn_q.weight",      "attn_k.weight",   "attn_v.weight",
                                             "attn_q.bias",      "attn_k.bias",        "attn_v.bias",     "attn_output.weight",
                                             "ffn_norm.weight",  "ffn_gate.weight",    "ffn_up.weight",   "ffn_down.weight"};
enum { N_LAYER_TENSORS = SLM_ARRAY_LEN(k_layer_suffix) };

/* Where block l's tensors live; base NULL for the biases of a model without them. */
static void layer_slots(const slm_model *m, int l, weight_slot out[N_LAYER_TENSORS]) {
    const slm_model_config *c = &m->cfg;
    int64_t C = c->n_embd, F = c->n_ff, HD = (int64_t)c->n_head * c->head_dim, KD = (int64_t)c->n_head_kv * c->head_dim;
    const slm_model_params *p = &m->params;
    size_t L = (size_t)l;
    float *bqkv = p->bqkv ? p->bqkv + L * m->qkv_dim : NULL;
    int mat = l * SLM_LAYER_MATRICES;
    const weight_slot slots[N_LAYER_TENSORS] = {
        {p->ln1w + L * C, 1, C, 0, -1},
        {p->wq + L * slm_panel_floats(HD, C), HD, C, 1, mat + SLM_M_Q},
        {p->wk + L * slm_panel_floats(KD, C), KD, C, 1, mat + SLM_M_K},
        {p->wv + L * slm_panel_floats(KD, C), KD, C, 1, mat + SLM_M_V},
        {bqkv, 1, HD, 0, -1},
        {bqkv ? bqkv + HD : NULL, 1, KD, 0, -1},
        {bqkv ? bqkv + HD + KD : NULL, 1, KD, 0, -1},
        {p->wo + L * slm_panel_floats(C, HD), C, HD, 1, mat + SLM_M_O},
        {p->ln2w + L * C, 1, C, 0, -1},
        {p->wgate + L * slm_panel_floats(F, C), F, C, 1, mat + SLM_M_GATE},
        {p->wup + L * slm_panel_floats(F, C), F, C, 1, mat + SLM_M_UP},
        {p->wdown + L * slm_panel_floats(C, F), C, F, 1, mat + SLM_M_DOWN},
    };
    memcpy(out, slots, sizeof slots);
}

/* Resolves "blk.N.<suffix>" and the global names; 0 when the model has no such tensor. */
static int find_slot(const slm_model *m, const char *name, weight_slot *s) {
    const slm_model_config *c = &m->cfg;
    const slm_model_params *p = &m->params;
    int cls = c->n_layer * SLM_LAYER_MATRICES;
    memset(s, 0, sizeof *s);
    if (!strcmp(name, "token_embd.weight")) return *s = (weight_slot){p->wte, c->n_vocab, c->n_embd, 1, c->tied_embeddings ? cls : -1}, 1;
    if (!strcmp(name, "output_norm.weight")) return *s = (weight_slot){p->lnfw, 1, c->n_embd, 0, -1}, 1;
    if (!strcmp(name, "output.weight")) {
        if (c->tied_embeddings) return 0;
        return *s = (weight_slot){p->wcls, c->n_vocab, c->n_embd, 1, cls}, 1;
    }
    int l, n = 0;
    char suffix[64];
    if (sscanf(name, "blk.%d.%63s%n", &l, suffix, &n) != 2 || name[n] || l < 0 || l >= c->n_layer) return 0;
    weight_slot slots[N_LAYER_TENSORS];
    layer_slots(m, l, slots);
    for (size_t i = 0; i < N_LAYER_TENSORS; i++) {
        if (strcmp(suffix, k_layer_suffix[i])) continue;
        if (!slots[i].base) return 0; /* a bias the model does not have */
        *s = slots[i];
        return 1;
    }
    return 0;
}

/* Rows per read: one panel, so a matrix never needs more than 16 rows of f32 scratch. */
static int load_tensor(slm_model *m, const char *name, const weight_slot *sl, const slm_weight_reader *rd, float *scratch,
                       slm_err *err) {
    const weight_slot s = *sl;
    if (s.matrix >= 0) m->act_type[s.matrix] = (int8_t)slm_act_type_of(rd->dtype ? rd->dtype(rd->ud, name) : 0);
    for (int64_t r0 = 0; r0 < s.nrows; r0 += SLM_PANEL) {
        int64_t n = SLM_MIN(s.nrows - r0, (int64_t)SLM_PANEL);
        SLM_TRY(rd->read(rd->ud, name, s.nrows, s.ncols, r0, n, scratch, err));
        int64_t bad = slm_first_nonfinite(scratch, n * s.ncols);
        if (bad >= 0)
            return slm_errf(err, SLM_E_DATA, "tensor '%s': non-finite value %g at row %lld, column %lld", name,
                            (double)scratch[bad], (long long)(r0 + bad / s.ncols), (long long)(bad % s.ncols));
        if (s.packed) slm_panel_pack_rows(s.base, scratch, r0, n, s.ncols);
        else memcpy(s.base, scratch, sizeof(float) * (size_t)s.ncols);
    }
    return SLM_OK;
}

static int load_named(slm_model *m, const char *name, const slm_weight_reader *rd, float *scratch, slm_err *err) {
    weight_slot s;
    SLM_ASSERT(find_slot(m, name, &s));
    return load_tensor(m, name, &s, rd, scratch, err);
}

static int load_weights(slm_model *m, const slm_weight_reader *rd, float *scratch, slm_err *err) {
    char name[96];
    weight_slot slots[N_LAYER_TENSORS];
    SLM_TRY(load_named(m, "token_embd.weight", rd, scratch, err));
    for (int l = 0; l < m->cfg.n_layer; l++) {
        layer_slots(m, l, slots);
        for (size_t k = 0; k < N_LAYER_TENSORS; k++) {
            if (!slots[k].base) continue; /* biases of a model without them */
            snprintf(name, sizeof name, "blk.%d.%s", l, k_layer_suffix[k]);
            SLM_TRY(load_tensor(m, name, &slots[k], rd, scratch, err));
        }
    }
    SLM_TRY(load_named(m, "output_norm.weight", rd, scratch, err));
    if (!m->cfg.tied_embeddings) SLM_TRY(load_named(m, "output.weight", rd, scratch, err));
    return SLM_OK;
}

/* cos, sin of pos * theta^(-2i/D) / rope_scale, in double then rounded. */
static void fill_rope_table(float *cs, int n_pos, int D, double theta, double scale) {
    for (int pos = 0; pos < n_pos; pos++)
        for (int i = 0; i < D / 2; i++) {
            double angle = (double)pos * pow(theta, -2.0 * i / D) / scale;
            cs[((size_t)pos * (D / 2) + i) * 2] = (float)cos(angle);
            cs[((size_t)pos * (D / 2) + i) * 2 + 1] = (float)sin(angle);
        }
}

/* ---------------------------------------------------------------------------------------------
 * build / free */

int slm_model_build(slm_model *m, const slm_model_config *cfg, const slm_weight_reader *rd, int max_ctx, int flags,
                    slm_err *err) {
    memset(m, 0, sizeof *m);
    SLM_TRY(check_config(cfg, max_ctx, err));
    m->cfg = *cfg;
    const slm_model_config *c = &m->cfg;
    m->qkv_dim = (c->n_head + 2 * c->n_head_kv) * c->head_dim;
    m->max_ctx = max_ctx;
    m->ctx_pad = (max_ctx + SLM_PANEL - 1) / SLM_PANEL * SLM_PANEL;
    m->neox = c->arch == SLM_ARCH_QWEN2;

    size_t kv_cache, rope, scratch_floats, kv_total;
    int64_t widest = SLM_MAX(SLM_MAX((int64_t)c->n_embd, (int64_t)c->n_head * c->head_dim), (int64_t)c->n_ff);
    int ok = fill_in_parameter_sizes(m->param_sizes, c, m->qkv_dim) && sum_sizes(m->param_sizes, SLM_NUM_PARAMETER_TENSORS, &m->num_parameters);
    m->keep_acts = !!(flags & SLM_BUILD_KEEP_ACTS);
    ok = ok && fill_in_activation_sizes(m->act_sizes, c, m->keep_acts ? c->n_layer : 1, m->qkv_dim, (size_t)max_ctx) &&
         sum_sizes(m->act_sizes, SLM_NUM_ACTIVATION_TENSORS, &m->num_activations);
    ok = ok && mul3((size_t)c->n_layer * c->n_head_kv, (size_t)m->ctx_pad, (size_t)c->head_dim, &kv_cache);
    ok = ok && slm_mul_ok((size_t)max_ctx, (size_t)c->head_dim, &rope);
    ok = ok && slm_mul_ok((size_t)max_ctx, (size_t)widest, &scratch_floats);
    ok = ok && slm_add_ok(kv_cache, kv_cache, &kv_total) && slm_add_ok(kv_total, rope, &kv_total) &&
         slm_add_ok(kv_total, scratch_floats, &kv_total);
    if (!ok || m->num_parameters > SIZE_MAX / sizeof(float) || m->num_activations > SIZE_MAX / sizeof(float) ||
        kv_total > SIZE_MAX / sizeof(float))
        return slm_errf(err, SLM_E_NOMEM, "model of %d layers x %d dims with a context of %d: size overflows",
                        c->n_layer, c->n_embd, max_ctx);

    int64_t C = c->n_embd, HD = (int64_t)c->n_head * c->head_dim, KD = (int64_t)c->n_head_kv * c->head_dim;
    int64_t per_layer = 2 * C + (HD + 2 * KD) * C + (c->qkv_bias ? HD + 2 * KD : 0) + C * HD + 3 * C * (int64_t)c->n_ff;
    m->n_params = (int64_t)c->n_vocab * C * (c->tied_embeddings ? 1 : 2) + c->n_layer * per_layer + C;

    float *rows = NULL;
    int rc = slm_calloc((void **)&m->params_memory, m->num_parameters, sizeof(float), err, "model parameters");
    if (!rc) rc = slm_calloc((void **)&m->acts_memory, m->num_activations, sizeof(float), err, "model activations");
    if (!rc) rc = slm_calloc((void **)&m->kv_memory, kv_total, sizeof(float), err, "KV cache");
    if (!rc) rc = slm_calloc((void **)&m->act_type, (size_t)c->n_layer * SLM_LAYER_MATRICES + 1, 1, err, "matrix types");
    if (!rc) rc = slm_alloc((void **)&rows, sizeof(float) * SLM_PANEL * (size_t)widest, err, "weight rows");
    if (rc) goto done;
    point_parameters(m);
    point_activations(m);
    m->rope_cs = m->kv_memory;
    m->key_cache = m->rope_cs + rope;
    m->value_cache = m->key_cache + kv_cache;
    m->scratch = m->value_cache + kv_cache;
    fill_rope_table(m->rope_cs, max_ctx, c->head_dim, c->rope_theta, c->rope_scale);
    rc = load_weights(m, rd, rows, err);
done:
    slm_free(rows);
    if (rc) slm_model_free(m);
    return rc;
}

void slm_model_free(slm_model *m) {
    slm_free(m->params_memory);
    slm_free(m->acts_memory);
    slm_free(m->kv_memory);
    slm_free(m->act_type);
    memset(m, 0, sizeof *m);
}

/* ---------------------------------------------------------------------------------------------
 * forward */

/* out (T, OC), ld_out = inp (T, C) @ W^T + bias, with inp first rounded as ggml would for this
   matrix under SLM_NUMERICS_GGML. *rounded caches which act type m->scratch holds for inp. */
static void matmul(slm_model *m, float *out, int ld_out, const float *inp, const float *wp, const float *bias, int T,
                   int C, int OC, int matrix, int *rounded) {
    int act = m->numerics == SLM_NUMERICS_GGML ? m->act_type[matrix] : SLM_DTYPE_F32;
    if (act != SLM_DTYPE_F32) {
        if (*rounded != act) slm_round_rows(m->scratch, inp, T, C, act);
        *rounded = act;
        inp = m->scratch;
    }
    slm_matmul_forward(out, ld_out, inp, wp, bias, T, C, OC);
}

int slm_model_forward(slm_model *m, const int32_t *tokens, int T, int pos0, int t_out, float *logits, slm_err *err) {
    const slm_model_config *c = &m->cfg;
    if (T < 1 || pos0 < 0 || pos0 > m->max_ctx - T)
        return slm_errf(err, SLM_E_ARG, "forward of %d tokens at position %d: the model was built for %d positions", T,
                        pos0, m->max_ctx);
    if (t_out < 0 || t_out > T || (t_out < T && !logits))
        return slm_errf(err, SLM_E_ARG, "forward: logits from token %d of %d", t_out, T);
    for (int t = 0; t < T; t++)
        if (tokens[t] < 0 || tokens[t] >= c->n_vocab)
            return slm_errf(err, SLM_E_ARG, "token id %d at position %d is outside the vocabulary [0, %d)", tokens[t],
                            pos0 + t, c->n_vocab);

    /* convenience aliases (llama2.c) */
    const int C = c->n_embd, F = c->n_ff, H = c->n_head, Hkv = c->n_head_kv, D = c->head_dim, V = c->n_vocab;
    const int QKV = m->qkv_dim, HD = H * D, KD = Hkv * D;
    const size_t TC = (size_t)T * C;
    const int ggml = m->numerics == SLM_NUMERICS_GGML;
    /* llama.cpp's AVX-512 CPU backend runs flash attention tiled, in f32 over the f16 cache, for
       batches of >= 64 queries when D fills 16-float vectors; otherwise per query, in f16 */
    const int fa_tiled = ggml && T >= 64 && D % 16 == 0;
    const slm_model_params *p = &m->params;
    const slm_model_acts *a = &m->acts;
    const size_t lq = slm_panel_floats(HD, C), lkd = slm_panel_floats(KD, C), lo = slm_panel_floats(C, HD);
    const size_t lf = slm_panel_floats(F, C), ld = slm_panel_floats(C, F);
    const size_t lkv = (size_t)Hkv * m->ctx_pad * D;

    slm_embedding_forward(a->encoded, tokens, p->wte, T, C); /* x = wte[tokens] */
    const float *residual = a->encoded;
    for (int l = 0; l < c->n_layer; l++) {
        const size_t L = (size_t)l, LA = m->keep_acts ? L : 0; /* parameter / activation slot */
        const int mat = l * SLM_LAYER_MATRICES;
        int rounded; /* act type m->scratch holds for the current matmul input, -1: none */
        /* this layer's parameters */
        const float *l_ln1w = p->ln1w + L * C, *l_ln2w = p->ln2w + L * C;
        const float *l_wq = p->wq + L * lq, *l_wk = p->wk + L * lkd, *l_wv = p->wv + L * lkd;
        const float *l_bqkv = p->bqkv ? p->bqkv + L * QKV : NULL;
        const float *l_wo = p->wo + L * lo;
        const float *l_wgate = p->wgate + L * lf, *l_wup = p->wup + L * lf, *l_wdown = p->wdown + L * ld;
        float *l_kc = m->key_cache + L * lkv, *l_vc = m->value_cache + L * lkv;
        /* this layer's activations */
        float *l_ln1 = a->ln1 + LA * TC, *l_ln1_rstd = a->ln1_rstd + LA * T;
        float *l_qkv = a->qkv + LA * T * QKV;
        float *l_atty = a->atty + LA * T * HD, *l_att_lse = a->att_lse + LA * T * H;
        float *l_attproj = a->attproj + LA * TC, *l_residual2 = a->residual2 + LA * TC;
        float *l_ln2 = a->ln2 + LA * TC, *l_ln2_rstd = a->ln2_rstd + LA * T;
        float *l_fch = a->fch + LA * T * 2 * F, *l_fch_swiglu = a->fch_swiglu + LA * T * F;
        float *l_fcproj = a->fcproj + LA * TC, *l_residual3 = a->residual3 + LA * TC; /* may be residual: read first */

        /* h = x + o_proj(attn(rope(q_proj(n)), rope(k_proj(n)), v_proj(n))), n = rmsnorm(x) */
        slm_rmsnorm_forward(l_ln1, l_ln1_rstd, residual, l_ln1w, T, C, c->norm_eps);
        rounded = -1;
        matmul(m, l_qkv, QKV, l_ln1, l_wq, l_bqkv, T, C, HD, mat + SLM_M_Q, &rounded);
        matmul(m, l_qkv + HD, QKV, l_ln1, l_wk, l_bqkv ? l_bqkv + HD : NULL, T, C, KD, mat + SLM_M_K, &rounded);
        matmul(m, l_qkv + HD + KD, QKV, l_ln1, l_wv, l_bqkv ? l_bqkv + HD + KD : NULL, T, C, KD, mat + SLM_M_V, &rounded);
        slm_rope_forward(l_qkv, QKV, m->rope_cs, T, pos0, H, D, m->neox);
        slm_rope_forward(l_qkv + HD, QKV, m->rope_cs, T, pos0, Hkv, D, m->neox);
        if (ggml) /* F16 KV cache; the per-query flash attention also rounds q to F16 */
            for (int t = 0; t < T; t++) slm_round_f16(l_qkv + (size_t)t * QKV + (fa_tiled ? HD : 0), fa_tiled ? 2 * KD : QKV);
        slm_kv_store(l_kc, l_vc, l_qkv, QKV, HD, HD + KD, T, pos0, Hkv, D, m->ctx_pad);
        if (ggml && !fa_tiled)
            slm_attention_forward_ggml(l_atty, l_att_lse, l_qkv, QKV, l_kc, l_vc, T, pos0, H, Hkv, D, m->ctx_pad);
        else slm_attention_forward(l_atty, l_att_lse, l_qkv, QKV, l_kc, l_vc, T, pos0, H, Hkv, D, m->ctx_pad);
        rounded = -1;
        matmul(m, l_attproj, C, l_atty, l_wo, NULL, T, HD, C, mat + SLM_M_O, &rounded);
        slm_residual_forward(l_residual2, residual, l_attproj, (int64_t)TC);
        /* x = h + down_proj(silu(gate_proj(n)) * up_proj(n)), n = rmsnorm(h) */
        slm_rmsnorm_forward(l_ln2, l_ln2_rstd, l_residual2, l_ln2w, T, C, c->norm_eps);
        rounded = -1;
        matmul(m, l_fch, 2 * F, l_ln2, l_wgate, NULL, T, C, F, mat + SLM_M_GATE, &rounded);
        matmul(m, l_fch + F, 2 * F, l_ln2, l_wup, NULL, T, C, F, mat + SLM_M_UP, &rounded);
        slm_swiglu_forward(l_fch_swiglu, l_fch, T, F);
        rounded = -1;
        matmul(m, l_fcproj, C, l_fch_swiglu, l_wdown, NULL, T, F, C, mat + SLM_M_DOWN, &rounded);
        slm_residual_forward(l_residual3, l_residual2, l_fcproj, (int64_t)TC);
        residual = l_residual3;
    }
    /* logits = lm_head(rmsnorm(x)) for the tokens asked for */
    slm_rmsnorm_forward(a->lnf, a->lnf_rstd, residual, p->lnfw, T, C, c->norm_eps);
    int rounded = -1;
    if (t_out < T)
        matmul(m, logits, V, a->lnf + (size_t)t_out * C, p->wcls, NULL, T - t_out, C, V,
               c->n_layer * SLM_LAYER_MATRICES, &rounded);
    return SLM_OK;
}

/* ---------------------------------------------------------------------------------------------
 * reading weights back */

int slm_model_get_weight(const slm_model *m, const char *name, float *dst, int64_t *nrows, int64_t *ncols, slm_err *err) {
    weight_slot s;
    if (!m->params_memory || !find_slot(m, name, &s)) return slm_errf(err, SLM_E_ARG, "model has no tensor '%s'", name);
    if (nrows) *nrows = s.nrows;
    if (ncols) *ncols = s.ncols;
    if (!dst) return SLM_OK;
    if (s.packed) slm_panel_unpack_rows(dst, s.base, 0, s.nrows, s.ncols);
    else memcpy(dst, s.base, sizeof(float) * (size_t)s.ncols);
    return SLM_OK;
}
