/* model_src.c - open a Hugging Face folder, a GGUF file or a packed GGUF as one model source.
 *
 * HF: config.json -> config, safetensors (single or sharded) -> tensors renamed to GGUF names,
 * tokenizer files -> vocab. GGUF and packed GGUF: metadata -> config and vocab, tensors as
 * stored. All: every expected tensor present with the shape the config implies, nothing unknown.
 * Must not: print; hold tensor data, except a packed file's decompressed tensors (model_src.h).
 */
#include "model_src.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/dtype.h"
#include "quantize/qtypes.h"
#include "core/mem.h"
#include "core/slm.h"
#include "formats/gen_config.h"
#include "formats/hf_config.h"
#include "formats/phi3.h"
#include "formats/tok_import.h"
#include "model/catalog.h"
#include "quantize/quants.h"

/* ---- the tensors a config implies: the catalogue (model/catalog.h) --------------------- */

/* Expected shape and canonical order rank of a GGUF tensor name; 0 if the name is not part
   of this config's model. output.weight is accepted even when the config ties it. */
static int expected(const slm_model_config *c, const char *name, int64_t shape[2], int *ndim, long *rank) {
    int l, role = slm_catalog_parse_gguf(name, &l);
    if (role < 0 || (slm_catalog_kind(role)->per_layer && l >= c->n_layer)) return 0;
    if (role != SLM_ROLE_OUTPUT && !slm_catalog_present(c, role, l)) return 0;
    *ndim = slm_catalog_shape(c, role, l, shape);
    *rank = slm_catalog_rank(role, l);
    return 1;
}

typedef struct ranked { long rank; slm_src_tensor t; } ranked;

static int cmp_rank(const void *a, const void *b) {
    long x = ((const ranked *)a)->rank, y = ((const ranked *)b)->rank;
    return x < y ? -1 : x > y;
}

/* Checks one tensor against the config and returns its rank. */
static int check_tensor(const slm_model_config *c, const slm_src_tensor *t, long *rank, slm_err *err) {
    int64_t shape[2];
    int nd;
    if (!expected(c, t->name, shape, &nd, rank))
        return slm_errf(err, SLM_E_FORMAT, "%s: tensor '%s' is not part of a %d-layer %s model", t->file, t->src_name,
                        c->n_layer, slm_arch_gguf_name(c->arch));
    if (t->ndim != nd || t->shape[0] != shape[0] || (nd == 2 && t->shape[1] != shape[1])) {
        char got[96], want[96];
        return slm_errf(err, SLM_E_FORMAT, "%s: tensor '%s' has shape %s, the config implies %s", t->file, t->src_name,
                        slm_shape_str(got, sizeof got, t->shape, t->ndim), slm_shape_str(want, sizeof want, shape, nd));
    }
    return SLM_OK;
}

typedef struct missing_check { const slm_src *s; slm_err *err; } missing_check;

static int check_present(void *ud, slm_role role, int l) {
    const missing_check *mc = ud;
    char want[SLM_MAX_NAME];
    if (role == SLM_ROLE_OUTPUT) return SLM_OK; /* its own message (open_hf) */
    if (slm_src_find(mc->s, slm_catalog_gguf_name(role, l, want, sizeof want)) >= 0) return SLM_OK;
    if (role == SLM_ROLE_TOKEN_EMBD) return slm_errf(mc->err, SLM_E_FORMAT, "%s: missing the token embedding", mc->s->name);
    if (role == SLM_ROLE_OUTPUT_NORM) return slm_errf(mc->err, SLM_E_FORMAT, "%s: missing the final norm", mc->s->name);
    return slm_errf(mc->err, SLM_E_FORMAT, "%s: missing tensor '%s'", mc->s->name, want);
}

static const char *src_name_at(const void *ctx, size_t i) { return ((const slm_src *)ctx)->tensors[i].name; }

/* Sorts into GGUF order, indexes the names and checks nothing required is missing. */
static int finish_tensors(slm_src *s, ranked *r, size_t n, slm_err *err) {
    qsort(r, n, sizeof(*r), cmp_rank);
    for (size_t i = 0; i < n; i++) s->tensors[i] = r[i].t;
    s->n_tensors = n;
    for (size_t i = 0; i < n; i++) {
        size_t dup;
        SLM_TRY(slm_strindex_add(&s->ix, s->tensors[i].name, i, src_name_at, s, &dup, err));
        if (dup != SLM_STRINDEX_NONE) /* two source names for one GGUF name */
            return slm_errf(err, SLM_E_FORMAT, "%s: tensors '%s' and '%s' are both '%s'", s->tensors[i].file, s->tensors[dup].src_name,
                            s->tensors[i].src_name, s->tensors[i].name);
    }
    missing_check mc = {s, err};
    SLM_TRY(slm_catalog_each(&s->cfg, check_present, &mc));
    for (size_t i = 0; i < n; i++) s->total_bytes += s->tensors[i].nbytes;
    return SLM_OK;
}

/* Last path component without trailing slashes, into buf. */
static void base_name(char *buf, size_t cap, const char *path) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    const char *end = path + n, *p = end;
    while (p > path && p[-1] != '/') p--;
    snprintf(buf, cap, "%.*s", (int)(end - p), p);
}

/* Gemma stores norms as w and computes x * (1 + w); llama.cpp's converter writes 1 + w, added
   in F16 for an F16 checkpoint and in F32 otherwise (docs/families.md 0.1, 5). The shifted
   norms are held as F32 in s->shifted. */
static int gemma_shift_norms(slm_src *s, ranked *r, size_t n, slm_err *err) {
    size_t total = 0, off = 0;
    for (size_t i = 0; i < n; i++)
        if (slm_catalog_category(r[i].t.name) == SLM_CAT_NORM) total += (size_t)slm_src_nrows(&r[i].t) * slm_src_ncols(&r[i].t);
    SLM_TRY(slm_alloc((void **)&s->shifted, (total + 1) * sizeof(float), err, "gemma norms"));
    for (size_t i = 0; i < n; i++) {
        slm_src_tensor *t = &r[i].t;
        if (slm_catalog_category(t->name) != SLM_CAT_NORM) continue;
        const int64_t ne = slm_src_nrows(t) * slm_src_ncols(t);
        float *w = s->shifted + off;
        if (!slm_dtype_can_read(t->dtype) || slm_dtype_get(t->dtype)->is_quantized)
            return slm_errf(err, SLM_E_UNSUPPORTED, "%s: tensor '%s' has type %s", t->file, t->src_name, slm_dtype_name(t->dtype));
        slm_dequantize_rows(t->dtype, t->data, w, 1, ne);
        for (int64_t k = 0; k < ne; k++)
            w[k] = t->dtype == SLM_DTYPE_F16 ? slm_f16_to_f32(slm_f32_to_f16(w[k] + 1.0f)) : w[k] + 1.0f;
        t->data = (const uint8_t *)w;
        t->dtype = SLM_DTYPE_F32;
        t->nbytes = (size_t)ne * sizeof(float);
        t->map = NULL;
        off += (size_t)ne;
    }
    return SLM_OK;
}

/* Phi-3 longrope: rope_factors_long / _short generated from config.json as llama.cpp's
   converter does (F32 from the JSON doubles; docs/families.md 4b). Appended to r. */
static int phi3_factor_tensors(slm_src *s, ranked *r, size_t *n, const char *dir, slm_err *err) {
    const slm_phi3 *p = &s->cfg.phi3;
    if (s->cfg.arch != SLM_ARCH_PHI3 || !p->n_factors) return SLM_OK;
    SLM_TRY(slm_alloc((void **)&s->generated, 2 * (size_t)p->n_factors * sizeof(float), err, "rope factors"));
    for (int k = 0; k < 2; k++) {
        const slm_role role = k ? SLM_ROLE_ROPE_SHORT : SLM_ROLE_ROPE_LONG;
        slm_src_tensor *t = &r[*n].t;
        float *w = s->generated + (size_t)k * p->n_factors;
        memcpy(w, k ? p->short_factor : p->long_factor, (size_t)p->n_factors * sizeof(float));
        memset(t, 0, sizeof *t);
        slm_catalog_gguf_name(role, -1, t->name, sizeof t->name);
        snprintf(t->src_name, sizeof t->src_name, "rope_scaling.%s", k ? "short_factor" : "long_factor");
        t->file = dir;
        t->dtype = SLM_DTYPE_F32;
        t->ndim = 1;
        t->shape[0] = p->n_factors;
        t->data = (const uint8_t *)w;
        t->nbytes = (size_t)p->n_factors * sizeof(float);
        r[*n].rank = slm_catalog_rank(role, -1);
        ++*n;
    }
    return SLM_OK;
}

static int open_hf(slm_src *s, const char *dir, slm_err *err) {
    SLM_TRY(slm_hf_config_load(&s->cfg, dir, err));
    SLM_TRY(slm_st_model_open(&s->st, dir, err));
    base_name(s->name, sizeof s->name, dir);
    ranked *r;
    SLM_TRY(slm_calloc((void **)&r, s->st.n_tensors + 3, sizeof(ranked), err, "tensor list"));
    int rc = slm_calloc((void **)&s->tensors, s->st.n_tensors + 3, sizeof(slm_src_tensor), err, "tensor list");
    size_t n = 0;
    for (size_t i = 0; i < s->st.n_tensors && !rc; i++) {
        slm_tensor v;
        slm_st_model_view(&s->st, i, &v);
        const slm_st_ref *ref = &s->st.tensors[i];
        slm_src_tensor *t = &r[n].t;
        t->file = s->st.shards[ref->shard].map.path;
        snprintf(t->src_name, sizeof t->src_name, "%s", v.name);
        int m = slm_hf_name_to_gguf(&s->cfg, v.name, t->name, sizeof t->name, &t->permute_heads);
        if (m == SLM_NAME_SKIP) continue;
        if (m == SLM_NAME_UNKNOWN) {
            rc = slm_errf(err, SLM_E_FORMAT, "%s: unknown tensor '%s' for %s", t->file, v.name, s->cfg.hf_arch);
            break;
        }
        t->dtype = v.dtype;
        t->ndim = v.ndim;
        memcpy(t->shape, v.shape, sizeof t->shape);
        t->data = v.data;
        t->nbytes = v.nbytes;
        t->map = slm_st_model_map(&s->st, i);
        rc = check_tensor(&s->cfg, t, &r[n].rank, err);
        n++;
    }
    if (!rc && s->cfg.n_rope_freqs) { /* generated by llama.cpp's converter from rope_scaling (docs/families.md 1) */
        slm_src_tensor *t = &r[n].t;
        snprintf(t->name, sizeof t->name, "%s", slm_catalog_kind(SLM_ROLE_ROPE_FREQS)->gguf);
        snprintf(t->src_name, sizeof t->src_name, "rope_scaling (llama3)");
        t->file = "config.json";
        t->dtype = SLM_DTYPE_F32;
        t->ndim = 1;
        t->shape[0] = s->cfg.n_rope_freqs;
        t->data = (const uint8_t *)s->cfg.rope_freqs;
        t->nbytes = (size_t)s->cfg.n_rope_freqs * sizeof(float);
        rc = check_tensor(&s->cfg, t, &r[n].rank, err);
        n++;
    }
    if (!rc && slm_arch_is_gemma(s->cfg.arch)) rc = gemma_shift_norms(s, r, n, err);
    if (!rc) rc = phi3_factor_tensors(s, r, &n, dir, err);
    if (!rc) rc = finish_tensors(s, r, n, err);
    if (!rc && !s->cfg.tied_embeddings && slm_src_find(s, "output.weight") < 0)
        rc = slm_errf(err, SLM_E_FORMAT, "%s: no lm_head.weight and tie_word_embeddings is false", dir);
    slm_free(r);
    if (rc) return rc;
    SLM_TRY(slm_hf_sampling_load(&s->sampling, dir, err));
    SLM_TRY(slm_vocab_from_hf_dir(&s->vocab, dir, err));
    if (slm_arch_is_gemma(s->cfg.arch) && s->vocab.kind != SLM_VOCAB_NONE) s->vocab.add_space_prefix = 0; /* as the converter */
    if (s->cfg.arch == SLM_ARCH_LLAMA && s->cfg.n_vocab == 49152 && s->vocab.add_bos == 1) s->vocab.add_bos = 0; /* as the GGUF (meta) */
    return SLM_OK;
}

/* <arch>.<key> as an integer (required unless dflt >= 0). */
static int arch_int(const slm_kvs *kv, const char *arch, const char *key, int64_t dflt, int *out, slm_err *err) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    if (!slm_kvs_get(kv, k) && dflt >= 0) { *out = (int)dflt; return SLM_OK; }
    int64_t v;
    SLM_TRY(slm_kvs_get_i64(kv, k, &v, err));
    if (v < 0 || v > 1000000000) return slm_errf(err, SLM_E_FORMAT, "key '%s': value %lld out of range", k, (long long)v);
    *out = (int)v;
    return SLM_OK;
}

static int arch_float(const slm_kvs *kv, const char *arch, const char *key, float dflt, float *out, slm_err *err) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    if (!slm_kvs_get(kv, k) && dflt > 0) { *out = dflt; return SLM_OK; }
    return slm_kvs_get_f32(kv, k, out, err);
}

/* <arch>.<key> as one value for every layer or an array of n_layer values (llama.cpp's
   get_key_or_arr: "deci" stores per-layer widths so). dflt (when >= 0 or the key is absent and
   dflt_arr is given) fills all layers. Returns in *max the largest value. */
static int arch_int_arr(const slm_kvs *kv, const char *arch, const char *key, int n_layer, const int *dflt_arr, int *out,
                        int *max, slm_err *err) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    const slm_gguf_val *v = slm_kvs_get(kv, k);
    *max = 0;
    if (!v && dflt_arr) {
        for (int l = 0; l < n_layer; l++) out[l] = dflt_arr[l], *max = SLM_MAX(*max, out[l]);
        return SLM_OK;
    }
    if (v && v->type == SLM_GGUF_ARRAY) {
        int et = v->v.arr.type;
        if (et != SLM_GGUF_UINT32 && et != SLM_GGUF_INT32)
            return slm_errf(err, SLM_E_FORMAT, "key '%s': expected an array of integers", k);
        if (v->v.arr.n != (uint64_t)n_layer)
            return slm_errf(err, SLM_E_FORMAT, "key '%s' has %llu values for %d layers", k, (unsigned long long)v->v.arr.n, n_layer);
        for (int l = 0; l < n_layer; l++) {
            int64_t x = et == SLM_GGUF_UINT32 ? (int64_t)((const uint32_t *)v->v.arr.data)[l] : ((const int32_t *)v->v.arr.data)[l];
            if (x < 0 || x > 1000000000) return slm_errf(err, SLM_E_FORMAT, "key '%s': value %lld out of range", k, (long long)x);
            out[l] = (int)x;
            *max = SLM_MAX(*max, out[l]);
        }
        return SLM_OK;
    }
    int one;
    SLM_TRY(arch_int(kv, arch, key, -1, &one, err));
    for (int l = 0; l < n_layer; l++) out[l] = one;
    *max = one;
    return SLM_OK;
}

/* Widths of every layer: per layer for "deci" (0: the sub-block is removed), else one value. */
static int gguf_widths(const slm_kvs *kv, const char *arch, slm_model_config *c, slm_err *err) {
    if (strcmp(arch, "deci")) {
        SLM_TRY(arch_int(kv, arch, "feed_forward_length", -1, &c->n_ff, err));
        SLM_TRY(arch_int(kv, arch, "attention.head_count", -1, &c->n_head, err));
        return arch_int(kv, arch, "attention.head_count_kv", c->n_head, &c->n_head_kv, err);
    }
    if (c->n_layer <= 0 || c->n_layer > SLM_MAX_LAYERS)
        return slm_errf(err, SLM_E_FORMAT, "deci.block_count %d is outside [1, %d]", c->n_layer, SLM_MAX_LAYERS);
    c->per_layer = 1;
    SLM_TRY(arch_int_arr(kv, arch, "feed_forward_length", c->n_layer, NULL, c->n_ff_l, &c->n_ff, err));
    SLM_TRY(arch_int_arr(kv, arch, "attention.head_count", c->n_layer, NULL, c->n_head_l, &c->n_head, err));
    return arch_int_arr(kv, arch, "attention.head_count_kv", c->n_layer, c->n_head_l, c->n_head_kv_l, &c->n_head_kv, err);
}

const slm_gguf *slm_src_gguf(const slm_src *s) {
    return s->kind == SLM_SRC_PACK ? &s->pack.gguf : s->kind == SLM_SRC_GGUF ? &s->gguf : NULL;
}

/* Gemma hyperparameters as llama.cpp's loader reads them (src/models/gemma2.cpp, gemma3.cpp). */
static int gemma_gguf_config(const slm_kvs *kv, const char *arch, slm_model_config *c, slm_err *err) {
    slm_gemma *g = &c->gemma;
    const int g2 = c->arch == SLM_ARCH_GEMMA2;
    char k[128];
    snprintf(k, sizeof k, "%s.attention.sliding_window_pattern", arch);
    if (slm_kvs_get(kv, k)) return slm_errf(err, SLM_E_UNSUPPORTED, "%s is not supported", k);
    if (g2) SLM_TRY(arch_float(kv, arch, "attn_logit_softcapping", 50.0f, &g->attn_softcap, err));
    snprintf(k, sizeof k, "%s.final_logit_softcapping", arch); /* gemma3: off unless the key is there */
    if (g2 || slm_kvs_get(kv, k)) SLM_TRY(arch_float(kv, arch, "final_logit_softcapping", 30.0f, &g->final_softcap, err));
    SLM_TRY(arch_int(kv, arch, "attention.sliding_window", g2 ? 4096 : 0, &g->n_swa, err));
    g->swa_pattern = g2 ? 2 : 6;
    SLM_TRY(arch_float(kv, arch, "rope.freq_base_swa", g2 ? c->rope_theta : 10000.0f, &g->rope_theta_swa, err));
    const int big = c->n_layer == (g2 ? 46 : 62);
    g->attn_scale = 1.0f / sqrtf((float)(big ? c->n_embd / c->n_head : c->head_dim));
    return SLM_OK;
}

static int gguf_config(slm_src *s, slm_err *err) {
    const slm_gguf *g = slm_src_gguf(s);
    const slm_kvs *kv = &g->kv;
    slm_model_config *c = &s->cfg;
    const char *arch;
    char k[128];
    SLM_TRY(slm_kvs_get_str(kv, "general.architecture", &arch, err));
    if (!strcmp(arch, "llama") || !strcmp(arch, "deci")) c->arch = SLM_ARCH_LLAMA;
    else if (!strcmp(arch, "qwen2")) c->arch = SLM_ARCH_QWEN2;
    else if (!strcmp(arch, "qwen3")) c->arch = SLM_ARCH_QWEN3;
    else if (!strcmp(arch, "gemma2")) c->arch = SLM_ARCH_GEMMA2;
    else if (!strcmp(arch, "gemma3")) c->arch = SLM_ARCH_GEMMA3;
    else if (!strcmp(arch, "phi3")) c->arch = SLM_ARCH_PHI3;
    else return slm_errf(err, SLM_E_UNSUPPORTED, "unsupported architecture '%.40s' (slm handles llama, deci, qwen2, qwen3, gemma2, gemma3 and phi3)", arch);
    SLM_TRY(arch_int(kv, arch, "embedding_length", -1, &c->n_embd, err));
    SLM_TRY(arch_int(kv, arch, "block_count", -1, &c->n_layer, err));
    SLM_TRY(gguf_widths(kv, arch, c, err));
    SLM_TRY(arch_int(kv, arch, "context_length", 2048, &c->n_ctx_train, err));
    if (c->n_head <= 0) return slm_errf(err, SLM_E_FORMAT, "%s.attention.head_count must be positive", arch);
    /* llama.cpp: n_embd / n_head of layer 0 unless the key says otherwise */
    const int h0 = slm_cfg_n_head(c, 0) > 0 ? slm_cfg_n_head(c, 0) : c->n_head;
    SLM_TRY(arch_int(kv, arch, "attention.key_length", c->n_embd / h0, &c->head_dim, err));
    snprintf(k, sizeof k, "%s.attention.key_length", arch);
    c->head_dim_key = slm_kvs_get(kv, k) != NULL;
    const int rf = slm_gguf_find(g, "rope_freqs.weight"); /* values read once the tensors are listed */
    if (rf >= 0) {
        const slm_gguf_tinfo *ti = &g->tensors[rf];
        if (ti->type != SLM_DTYPE_F32 || ti->ndim != 1 || c->head_dim % 2 || ti->shape[0] != c->head_dim / 2 ||
            c->head_dim / 2 > SLM_MAX_ROPE_FREQS)
            return slm_errf(err, SLM_E_FORMAT, "tensor 'rope_freqs.weight' must hold head dim / 2 = %d F32 values (at most %d)",
                            c->head_dim / 2, SLM_MAX_ROPE_FREQS);
        c->n_rope_freqs = c->head_dim / 2;
    }
    SLM_TRY(arch_float(kv, arch, "attention.layer_norm_rms_epsilon", -1, &c->norm_eps, err));
    SLM_TRY(arch_float(kv, arch, "rope.freq_base", 10000.0f, &c->rope_theta, err));
    c->rope_scale = 1.0f;
    snprintf(k, sizeof k, "%s.rope.scaling.type", arch);
    const char *st;
    if (slm_kvs_get(kv, k)) {
        SLM_TRY(slm_kvs_get_str(kv, k, &st, err));
        if (strcmp(st, "none") && strcmp(st, "linear")) return slm_errf(err, SLM_E_UNSUPPORTED, "rope scaling '%.32s' is not supported", st);
        if (!strcmp(st, "linear")) SLM_TRY(arch_float(kv, arch, "rope.scaling.factor", -1, &c->rope_scale, err));
    }
    int te = slm_gguf_find(g, "token_embd.weight");
    if (te < 0) return slm_errf(err, SLM_E_FORMAT, "missing tensor 'token_embd.weight'");
    int64_t dflt_vocab = g->tensors[te].shape[0];
    SLM_TRY(arch_int(kv, arch, "vocab_size", dflt_vocab, &c->n_vocab, err));
    c->tied_embeddings = slm_gguf_find(g, "output.weight") < 0;
    c->qkv_bias = slm_gguf_find(g, "blk.0.attn_q.bias") >= 0;
    c->bos_id = c->eos_id = -1;
    if (slm_arch_is_gemma(c->arch)) SLM_TRY(gemma_gguf_config(kv, arch, c, err));
    if (c->arch == SLM_ARCH_PHI3) SLM_TRY(slm_phi3_gguf_config(kv, g, c, err));
    return slm_model_config_check(c, err);
}

/* The divisors of a GGUF's rope_freqs.weight into the config (what the forward uses). */
static int read_rope_freqs(slm_src *s, const char *path, slm_err *err) {
    slm_model_config *c = &s->cfg;
    const int i = slm_src_find(s, "rope_freqs.weight");
    SLM_ASSERT(i >= 0);
    SLM_TRY(slm_src_read_rows(s, (size_t)i, 0, 1, c->rope_freqs, err));
    for (int k = 0; k < c->n_rope_freqs; k++)
        if (!(c->rope_freqs[k] > 0) || !isfinite(c->rope_freqs[k]))
            return slm_errf(err, SLM_E_DATA, "%s: tensor 'rope_freqs.weight': value %g at %d (divisors must be positive)", path,
                            (double)c->rope_freqs[k], k);
    return SLM_OK;
}

/* Config, name, file type, tensors and vocabulary of a GGUF or packed source (its header open).
   Tensors keep the file's order, so source index i is the file's tensor i. A packed file's
   tensors have no data pointer: tensor_data() decompresses them. */
static int open_gguf_header(slm_src *s, const char *path, slm_err *err) {
    const slm_gguf *g = slm_src_gguf(s);
    int rc = gguf_config(s, err);
    if (rc) return slm_err_prefix(err, "%s", path);
    const char *nm;
    if (slm_kvs_get(&g->kv, "general.name") && !slm_kvs_get_str(&g->kv, "general.name", &nm, NULL))
        snprintf(s->name, sizeof s->name, "%s", nm);
    else
        base_name(s->name, sizeof s->name, path);
    uint32_t ft;
    s->file_type = slm_kvs_get(&g->kv, "general.file_type") && !slm_kvs_get_u32(&g->kv, "general.file_type", &ft, NULL) ? (int)ft : -1;
    ranked *r;
    SLM_TRY(slm_calloc((void **)&r, g->n_tensors + 1, sizeof(ranked), err, "tensor list"));
    rc = slm_calloc((void **)&s->tensors, g->n_tensors + 1, sizeof(slm_src_tensor), err, "tensor list");
    for (size_t i = 0; i < g->n_tensors && !rc; i++) {
        const slm_gguf_tinfo *ti = &g->tensors[i];
        slm_src_tensor *t = &r[i].t;
        snprintf(t->name, sizeof t->name, "%s", ti->name);
        snprintf(t->src_name, sizeof t->src_name, "%s", ti->name);
        t->file = s->kind == SLM_SRC_PACK ? s->pack.map.path : s->gguf.map.path;
        t->dtype = ti->type;
        t->ndim = ti->ndim;
        memcpy(t->shape, ti->shape, sizeof t->shape);
        t->nbytes = ti->nbytes;
        if (s->kind == SLM_SRC_GGUF) {
            slm_tensor v;
            slm_gguf_view(g, i, &v);
            t->data = v.data;
            t->map = &s->gguf.map;
        }
        if (!slm_dtype_can_read(t->dtype))
            rc = slm_errf(err, SLM_E_UNSUPPORTED, "%s: tensor '%s' has type %s, which slm cannot read", path, ti->name, slm_dtype_name(ti->type));
        if (!rc) rc = check_tensor(&s->cfg, t, &r[i].rank, err);
        r[i].rank = (long)i; /* keep the file's order */
    }
    if (!rc) rc = finish_tensors(s, r, g->n_tensors, err);
    slm_free(r);
    if (!rc && s->cfg.n_rope_freqs) rc = read_rope_freqs(s, path, err);
    if (rc) return rc;
    if (slm_kvs_get(&g->kv, "tokenizer.ggml.model")) {
        rc = slm_vocab_from_kvs(&s->vocab, &g->kv, err);
        if (rc) return slm_err_prefix(err, "%s", path);
    }
    return SLM_OK;
}

/* A file: packed GGUF by its first bytes, else GGUF (whose reader names a bad magic). */
static int open_file(slm_src *s, const char *path, slm_err *err) {
    slm_map m;
    SLM_TRY(slm_map_open(&m, path, err));
    const int packed = slm_pack_sniff(m.data, m.size);
    slm_map_close(&m);
    s->kind = packed ? SLM_SRC_PACK : SLM_SRC_GGUF;
    SLM_TRY(packed ? slm_pack_open(&s->pack, path, err) : slm_gguf_open(&s->gguf, path, err));
    return open_gguf_header(s, path, err);
}

int slm_src_open(slm_src *s, const char *path, slm_err *err) {
    memset(s, 0, sizeof(*s));
    s->file_type = -1;
    struct stat st;
    if (stat(path, &st) != 0) return slm_errf(err, SLM_E_IO, "%s: no such file or folder", path);
    int rc;
    if (S_ISDIR(st.st_mode)) {
        s->kind = SLM_SRC_HF;
        rc = open_hf(s, path, err);
    } else {
        rc = open_file(s, path, err);
    }
    if (rc) slm_src_close(s);
    return rc;
}

void slm_src_close(slm_src *s) {
    slm_vocab_free(&s->vocab);
    slm_free(s->tensors);
    slm_free(s->shifted);
    slm_free(s->generated);
    slm_kvs_free(&s->sampling);
    slm_strindex_free(&s->ix);
    slm_st_model_close(&s->st);
    slm_gguf_close(&s->gguf);
    slm_pack_close(&s->pack);
    memset(s, 0, sizeof(*s));
}

int slm_src_find(const slm_src *s, const char *name) {
    size_t i = slm_strindex_find(&s->ix, name, src_name_at, s);
    return i == SLM_STRINDEX_NONE ? -1 : (int)i;
}

int64_t slm_src_ncols(const slm_src_tensor *t) { return t->ndim ? t->shape[t->ndim - 1] : 1; }
int64_t slm_src_nrows(const slm_src_tensor *t) {
    int64_t n = 1;
    for (int d = 0; d + 1 < t->ndim; d++) n *= t->shape[d];
    return n;
}

/* Byte offset of GGUF-layout row r in the stored data. */
static size_t row_offset(const slm_src_tensor *t, int64_t r, size_t rowb) {
    int64_t src = t->permute_heads ? slm_qk_src_row(r, slm_src_nrows(t), t->permute_heads) : r;
    return (size_t)src * rowb;
}

/* Tensor i's stored bytes: in the map, or a packed file's decompressed copy (kept by the pack
   until released). */
static int tensor_data(const slm_src *s, size_t i, const uint8_t **data, slm_err *err) {
    const slm_src_tensor *t = &s->tensors[i];
    if (s->kind != SLM_SRC_PACK) {
        *data = t->data;
        return SLM_OK;
    }
    int rc = slm_pack_tensor(&s->pack, i, data, err);
    return rc ? slm_err_prefix(err, "%s", t->file) : SLM_OK;
}

int slm_src_copy_rows(const slm_src *s, size_t i, int64_t r0, int64_t n, void *dst, slm_err *err) {
    const slm_src_tensor *t = &s->tensors[i];
    size_t rowb = slm_dtype_row_size(t->dtype, slm_src_ncols(t));
    const uint8_t *d;
    SLM_TRY(tensor_data(s, i, &d, err));
    if (!t->permute_heads) {
        if (n) memcpy(dst, d + (size_t)r0 * rowb, (size_t)n * rowb);
        return SLM_OK;
    }
    for (int64_t r = 0; r < n; r++) memcpy((uint8_t *)dst + (size_t)r * rowb, d + row_offset(t, r0 + r, rowb), rowb);
    return SLM_OK;
}

int slm_src_read_rows(const slm_src *s, size_t i, int64_t r0, int64_t n, float *dst, slm_err *err) {
    const slm_src_tensor *t = &s->tensors[i];
    int64_t nc = slm_src_ncols(t);
    size_t rowb = slm_dtype_row_size(t->dtype, nc);
    SLM_ASSERT(r0 >= 0 && n >= 0 && r0 + n <= slm_src_nrows(t));
    if (!slm_dtype_can_read(t->dtype))
        return slm_errf(err, SLM_E_UNSUPPORTED, "tensor '%s': cannot read type %s", t->name, slm_dtype_name(t->dtype));
    const uint8_t *d;
    SLM_TRY(tensor_data(s, i, &d, err));
    if (slm_dtype_get(t->dtype)->is_quantized && ((uintptr_t)d & 1)) {
        /* blocks hold 16-bit fields: a GGUF with general.alignment 1 can put them at an odd
           offset of the map, so such rows are copied to an aligned buffer first */
        void *buf;
        SLM_TRY(slm_alloc(&buf, (size_t)n * rowb, err, "unaligned tensor rows"));
        int rc = slm_src_copy_rows(s, i, r0, n, buf, err);
        if (!rc) slm_dequantize_rows_mt(t->dtype, buf, dst, n, nc);
        slm_free(buf);
        return rc;
    }
    if (!t->permute_heads) {
        slm_dequantize_rows_mt(t->dtype, d + (size_t)r0 * rowb, dst, n, nc);
        return SLM_OK;
    }
    for (int64_t r = 0; r < n; r++) slm_dequantize_rows(t->dtype, d + row_offset(t, r0 + r, rowb), dst + r * nc, 1, nc);
    return SLM_OK;
}

void slm_src_release(const slm_src *s, size_t i) {
    const slm_src_tensor *t = &s->tensors[i];
    if (s->kind == SLM_SRC_PACK) {
        if (!t->pinned) slm_pack_release(&s->pack, i);
        return;
    }
    if (!t->map) return;
    slm_map_advise_dontneed(t->map, (size_t)(t->data - t->map->data), t->nbytes);
}

/* A packed tensor is decompressed whole when first read and dropped whole: row hints do nothing. */
void slm_src_prefetch_rows(const slm_src *s, size_t i, int64_t r0, int64_t n) {
    const slm_src_tensor *t = &s->tensors[i];
    if (s->kind == SLM_SRC_PACK || !t->map) return;
    size_t rowb = slm_dtype_row_size(t->dtype, slm_src_ncols(t));
    slm_map_advise_populate(t->map, (size_t)(t->data - t->map->data) + (size_t)r0 * rowb, (size_t)n * rowb);
}

void slm_src_release_rows(const slm_src *s, size_t i, int64_t r0, int64_t n) {
    const slm_src_tensor *t = &s->tensors[i];
    if (s->kind == SLM_SRC_PACK || !t->map) return;
    size_t rowb = slm_dtype_row_size(t->dtype, slm_src_ncols(t));
    slm_map_advise_dontneed(t->map, (size_t)(t->data - t->map->data) + (size_t)r0 * rowb, (size_t)n * rowb);
}

int slm_src_gguf_meta(const slm_src *s, slm_kvs *kv, slm_err *err) {
    if (s->sampling.n) { /* the converter's place for them: after general.type (re-setting keeps a key's place) */
        SLM_TRY(slm_kvs_set_str(kv, "general.architecture", slm_arch_gguf_name(s->cfg.arch), err));
        SLM_TRY(slm_kvs_set_str(kv, "general.type", "model", err));
        for (size_t k = 0; k < s->sampling.n; k++)
            SLM_TRY(slm_kvs_set_val(kv, s->sampling.items[k].key, &s->sampling.items[k].val, err));
    }
    return slm_model_gguf_meta(&s->cfg, s->name, &s->vocab, kv, err);
}

/* The widths: one value each, or for per-layer widths ("deci") arrays of n_layer values as
   llama.cpp's converter writes them for DeciLM / Nemotron-NAS (INT32 arrays). */
static int meta_widths(const slm_model_config *c, const char *a, slm_kvs *kv, slm_err *err) {
    char k[128];
    static const char *const keys[3] = {"feed_forward_length", "attention.head_count", "attention.head_count_kv"};
    const int one[3] = {c->n_ff, c->n_head, c->n_head_kv};
    const int *arr[3] = {c->n_ff_l, c->n_head_l, c->n_head_kv_l};
    for (int i = 0; i < 3; i++) {
        snprintf(k, sizeof k, "%s.%s", a, keys[i]);
        if (!c->per_layer) SLM_TRY(slm_kvs_set_u32(kv, k, (uint32_t)one[i], err));
        else SLM_TRY(slm_kvs_set_arr(kv, k, SLM_GGUF_INT32, arr[i], (uint64_t)c->n_layer, err));
    }
    return SLM_OK;
}

/* Qwen3: TextModel.set_gguf_parameters's keys in their order (docs/families.md 0.3, 3a):
   key_length / value_length always (every Qwen3 config.json has head_dim), no vocab_size and
   no rope.dimension_count. */
static int qwen3_meta(const slm_model_config *c, const char *name, const slm_vocab *vocab, slm_kvs *kv, slm_err *err) {
    char k[128];
#define KEY(suffix) (snprintf(k, sizeof k, "qwen3.%s", suffix), k)
    SLM_TRY(slm_kvs_set_str(kv, "general.architecture", "qwen3", err));
    SLM_TRY(slm_kvs_set_str(kv, "general.type", "model", err));
    SLM_TRY(slm_kvs_set_str(kv, "general.name", name, err));
    SLM_TRY(slm_kvs_set_u32(kv, KEY("block_count"), (uint32_t)c->n_layer, err));
    SLM_TRY(slm_kvs_set_u32(kv, KEY("context_length"), (uint32_t)c->n_ctx_train, err));
    SLM_TRY(slm_kvs_set_u32(kv, KEY("embedding_length"), (uint32_t)c->n_embd, err));
    SLM_TRY(slm_kvs_set_u32(kv, KEY("feed_forward_length"), (uint32_t)c->n_ff, err));
    SLM_TRY(slm_kvs_set_u32(kv, KEY("attention.head_count"), (uint32_t)c->n_head, err));
    SLM_TRY(slm_kvs_set_u32(kv, KEY("attention.head_count_kv"), (uint32_t)c->n_head_kv, err));
    if (c->rope_scale != 1.0f) {
        SLM_TRY(slm_kvs_set_str(kv, KEY("rope.scaling.type"), "linear", err));
        SLM_TRY(slm_kvs_set_f32(kv, KEY("rope.scaling.factor"), c->rope_scale, err));
    }
    SLM_TRY(slm_kvs_set_f32(kv, KEY("rope.freq_base"), c->rope_theta, err));
    SLM_TRY(slm_kvs_set_f32(kv, KEY("attention.layer_norm_rms_epsilon"), c->norm_eps, err));
    SLM_TRY(slm_kvs_set_u32(kv, KEY("attention.key_length"), (uint32_t)c->head_dim, err));
    SLM_TRY(slm_kvs_set_u32(kv, KEY("attention.value_length"), (uint32_t)c->head_dim, err));
#undef KEY
    if (vocab && vocab->kind != SLM_VOCAB_NONE) SLM_TRY(slm_vocab_to_kvs(vocab, kv, err));
    return SLM_OK;
}

/* Gemma 2/3: the keys of llama.cpp's Gemma2Model / Gemma3Model.set_gguf_parameters in their
   order (docs/families.md 5a, 6a), and add_space_prefix false as the last tokenizer key. */
static int gemma_meta(const slm_model_config *c, const char *name, const slm_vocab *vocab, slm_kvs *kv, slm_err *err) {
    const char *a = slm_arch_gguf_name(c->arch);
    const slm_gemma *g = &c->gemma;
    char k[128];
#define KEY(suffix) (snprintf(k, sizeof k, "%s.%s", a, suffix), k)
    SLM_TRY(slm_kvs_set_str(kv, "general.architecture", a, err));
    SLM_TRY(slm_kvs_set_str(kv, "general.type", "model", err));
    SLM_TRY(slm_kvs_set_str(kv, "general.name", name, err));
    if (c->arch == SLM_ARCH_GEMMA2) {
        SLM_TRY(slm_kvs_set_u32(kv, KEY("context_length"), (uint32_t)c->n_ctx_train, err));
        SLM_TRY(slm_kvs_set_u32(kv, KEY("embedding_length"), (uint32_t)c->n_embd, err));
        SLM_TRY(slm_kvs_set_u32(kv, KEY("block_count"), (uint32_t)c->n_layer, err));
    } else {
        SLM_TRY(slm_kvs_set_u32(kv, KEY("block_count"), (uint32_t)c->n_layer, err));
        SLM_TRY(slm_kvs_set_u32(kv, KEY("context_length"), (uint32_t)c->n_ctx_train, err));
        SLM_TRY(slm_kvs_set_u32(kv, KEY("embedding_length"), (uint32_t)c->n_embd, err));
    }
    SLM_TRY(slm_kvs_set_u32(kv, KEY("feed_forward_length"), (uint32_t)c->n_ff, err));
    SLM_TRY(slm_kvs_set_u32(kv, KEY("attention.head_count"), (uint32_t)c->n_head, err));
    SLM_TRY(slm_kvs_set_u32(kv, KEY("attention.head_count_kv"), (uint32_t)c->n_head_kv, err));
    if (c->arch == SLM_ARCH_GEMMA3) {
        SLM_TRY(slm_kvs_set_f32(kv, KEY("rope.freq_base"), c->rope_theta, err));
        SLM_TRY(slm_kvs_set_f32(kv, KEY("rope.freq_base_swa"), g->rope_theta_swa, err));
        if (c->rope_scale != 1.0f) {
            SLM_TRY(slm_kvs_set_str(kv, KEY("rope.scaling.type"), "linear", err));
            SLM_TRY(slm_kvs_set_f32(kv, KEY("rope.scaling.factor"), c->rope_scale, err));
        }
    }
    SLM_TRY(slm_kvs_set_f32(kv, KEY("attention.layer_norm_rms_epsilon"), c->norm_eps, err));
    SLM_TRY(slm_kvs_set_u32(kv, KEY("attention.key_length"), (uint32_t)c->head_dim, err));
    SLM_TRY(slm_kvs_set_u32(kv, KEY("attention.value_length"), (uint32_t)c->head_dim, err));
    if (c->arch == SLM_ARCH_GEMMA2) SLM_TRY(slm_kvs_set_f32(kv, KEY("attn_logit_softcapping"), g->attn_softcap, err));
    if (g->final_softcap) SLM_TRY(slm_kvs_set_f32(kv, KEY("final_logit_softcapping"), g->final_softcap, err));
    if (c->arch == SLM_ARCH_GEMMA2 || g->n_swa) SLM_TRY(slm_kvs_set_u32(kv, KEY("attention.sliding_window"), (uint32_t)g->n_swa, err));
#undef KEY
    if (!vocab || vocab->kind == SLM_VOCAB_NONE) return SLM_OK;
    SLM_TRY(slm_vocab_to_kvs(vocab, kv, err));
    slm_kvs_remove(kv, "tokenizer.ggml.add_space_prefix");
    return slm_kvs_set_bool(kv, "tokenizer.ggml.add_space_prefix", 0, err);
}

int slm_model_gguf_meta(const slm_model_config *c, const char *name, const slm_vocab *vocab, slm_kvs *kv, slm_err *err) {
    const char *a = c->per_layer ? "deci" : slm_arch_gguf_name(c->arch);
    char k[128];
    if (slm_arch_is_gemma(c->arch) && !c->per_layer) return gemma_meta(c, name, vocab, kv, err);
    if (c->arch == SLM_ARCH_QWEN3 && !c->per_layer) return qwen3_meta(c, name, vocab, kv, err);
    if (c->arch == SLM_ARCH_PHI3 && !c->per_layer) return slm_phi3_meta(c, name, vocab, kv, err);
    if (c->per_layer && c->arch != SLM_ARCH_LLAMA)
        return slm_errf(err, SLM_E_UNSUPPORTED, "per-layer widths need llama.cpp's deci architecture, which has no %s variant",
                        slm_arch_gguf_name(c->arch));
#define KEY(suffix) (snprintf(k, sizeof k, "%s.%s", a, suffix), k)
    SLM_TRY(slm_kvs_set_str(kv, "general.architecture", a, err));
    SLM_TRY(slm_kvs_set_str(kv, "general.type", "model", err));
    SLM_TRY(slm_kvs_set_str(kv, "general.name", name, err));
    SLM_TRY(slm_kvs_set_u32(kv, KEY("block_count"), (uint32_t)c->n_layer, err));
    SLM_TRY(slm_kvs_set_u32(kv, KEY("context_length"), (uint32_t)c->n_ctx_train, err));
    SLM_TRY(slm_kvs_set_u32(kv, KEY("embedding_length"), (uint32_t)c->n_embd, err));
    SLM_TRY(meta_widths(c, a, kv, err));
    if (c->rope_scale != 1.0f) { /* llama.cpp's order: scaling, base, eps, lengths (llama3 scaling: no key) */
        SLM_TRY(slm_kvs_set_str(kv, KEY("rope.scaling.type"), "linear", err));
        SLM_TRY(slm_kvs_set_f32(kv, KEY("rope.scaling.factor"), c->rope_scale, err));
    }
    SLM_TRY(slm_kvs_set_f32(kv, KEY("rope.freq_base"), c->rope_theta, err));
    SLM_TRY(slm_kvs_set_f32(kv, KEY("attention.layer_norm_rms_epsilon"), c->norm_eps, err));
    /* written when config.json has head_dim; deci: llama.cpp takes the head size from layer 0's
       head count unless these keys say it */
    if (c->per_layer || c->head_dim_key || c->head_dim != c->n_embd / c->n_head) {
        SLM_TRY(slm_kvs_set_u32(kv, KEY("attention.key_length"), (uint32_t)c->head_dim, err));
        SLM_TRY(slm_kvs_set_u32(kv, KEY("attention.value_length"), (uint32_t)c->head_dim, err));
    }
    SLM_TRY(slm_kvs_set_u32(kv, KEY("vocab_size"), (uint32_t)c->n_vocab, err));
    SLM_TRY(slm_kvs_set_u32(kv, KEY("rope.dimension_count"), (uint32_t)c->head_dim, err));
#undef KEY
    if (!vocab || vocab->kind == SLM_VOCAB_NONE) return SLM_OK;
    SLM_TRY(slm_vocab_to_kvs(vocab, kv, err));
    /* LlamaModel.set_vocab: "granite small models" (vocab 49152: SmolLM) get add_bos_token false,
       in place or after the other tokenizer keys */
    if (c->arch == SLM_ARCH_LLAMA && !c->per_layer && c->n_vocab == 49152)
        SLM_TRY(slm_kvs_set_bool(kv, "tokenizer.ggml.add_bos_token", 0, err));
    return SLM_OK;
}

/* ---- the source as an slm_tensor_src (core/tensor.h) ------------------------------------- */

static void src_info(const void *ud, size_t i, slm_tensor_info *o) {
    const slm_src_tensor *t = &((const slm_src *)ud)->tensors[i];
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "%s", t->name);
    snprintf(o->src_name, sizeof o->src_name, "%s", t->src_name);
    o->file = t->file;
    o->dtype = t->dtype;
    o->ndim = t->ndim;
    memcpy(o->shape, t->shape, sizeof o->shape);
    o->nbytes = t->nbytes;
}

static int src_find(const void *ud, const char *name) { return slm_src_find(ud, name); }

static int src_read_f32(const void *ud, size_t i, int64_t r0, int64_t n, float *dst, slm_err *err) {
    return slm_src_read_rows(ud, i, r0, n, dst, err);
}

/* Rows lent without scratch (a mapped model's matrices) pin a packed tensor's copy: it stays
   until the source closes. */
static const void *src_read_raw(const void *ud, size_t i, int64_t r0, int64_t n, void *scratch, slm_err *err) {
    const slm_src *s = ud;
    slm_src_tensor *t = &s->tensors[i];
    if (!t->permute_heads) {
        const uint8_t *d;
        if (tensor_data(s, i, &d, err)) return NULL;
        if (!scratch && s->kind == SLM_SRC_PACK) t->pinned = 1;
        return d + (size_t)r0 * slm_dtype_row_size(t->dtype, slm_src_ncols(t));
    }
    if (!scratch) return NULL; /* permuted rows are never contiguous */
    return slm_src_copy_rows(s, i, r0, n, scratch, err) ? NULL : scratch;
}

/* Permuted tensors read rows from all over the tensor: only releasing all of it makes sense. */
static void src_advise(const void *ud, size_t i, int64_t r0, int64_t n, int need) {
    const slm_src *s = ud;
    const slm_src_tensor *t = &s->tensors[i];
    if (!need && r0 == 0 && n == slm_src_nrows(t)) slm_src_release(s, i);
    else if (t->permute_heads) return;
    else if (need) slm_src_prefetch_rows(s, i, r0, n);
    else slm_src_release_rows(s, i, r0, n);
}

void slm_src_tensors(const slm_src *s, slm_tensor_src *out) {
    *out = (slm_tensor_src){s->n_tensors, s, src_info, src_find, src_read_f32, src_read_raw, src_advise};
}

int slm_src_output_meta(const slm_src *s, slm_kvs *kv, slm_err *err) {
    const slm_gguf *g = slm_src_gguf(s);
    if (!g) return slm_src_gguf_meta(s, kv, err);
    for (size_t k = 0; k < g->kv.n; k++) SLM_TRY(slm_kvs_set_val(kv, g->kv.items[k].key, &g->kv.items[k].val, err));
    return SLM_OK;
}
