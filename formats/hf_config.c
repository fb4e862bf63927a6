/* hf_config.c - config.json parsing and the HF -> GGUF tensor-name table for Llama-family
 * models. Numbers are read from valuedouble and must be integral where integers are expected.
 */
#include "hf_config.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/mapfile.h"
#include "core/slm.h"
#include "formats/phi3.h"
#include "model/catalog.h"
#include "formats/rope_freqs.h"

static const struct { const char *hf; int arch; } k_archs[] = {
    {"LlamaForCausalLM", SLM_ARCH_LLAMA},
    {"MistralForCausalLM", SLM_ARCH_LLAMA},
    {"Qwen2ForCausalLM", SLM_ARCH_QWEN2},
    {"Qwen3ForCausalLM", SLM_ARCH_QWEN3},
    {"Gemma2ForCausalLM", SLM_ARCH_GEMMA2},
    {"Gemma3ForCausalLM", SLM_ARCH_GEMMA3},
    {"Phi3ForCausalLM", SLM_ARCH_PHI3},
};

/* Required positive integer field. */
static int get_int(const cJSON *root, const char *key, int required, int dflt, int *out, const char *what, slm_err *err) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!j || cJSON_IsNull(j)) {
        if (required) return slm_errf(err, SLM_E_FORMAT, "%s: missing required field \"%s\"", what, key);
        *out = dflt;
        return SLM_OK;
    }
    int64_t v;
    if (!cJSON_IsNumber(j) || !slm_f64_to_i64(j->valuedouble, 0, 1000000000, &v))
        return slm_errf(err, SLM_E_FORMAT, "%s: field \"%s\" must be a non-negative integer", what, key);
    *out = (int)v;
    return SLM_OK;
}

/* Optional token id (bos/eos): absent, null or -1 -> -1; else an integer in [0, 2^31). */
static int get_token_id(const cJSON *j, const char *key, int *out, const char *what, slm_err *err) {
    int64_t v;
    *out = -1;
    if (!j || cJSON_IsNull(j)) return SLM_OK;
    if (!cJSON_IsNumber(j)) return SLM_OK; /* strings and the like: the tokenizer files decide */
    if (!slm_f64_to_i64(j->valuedouble, -1, INT32_MAX, &v))
        return slm_errf(err, SLM_E_FORMAT, "%s: field \"%s\" must be a token id (an integer in [-1, 2^31))", what, key);
    *out = (int)v;
    return SLM_OK;
}

static int get_float(const cJSON *root, const char *key, int required, float dflt, float *out, const char *what, slm_err *err) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!j || cJSON_IsNull(j)) {
        if (required) return slm_errf(err, SLM_E_FORMAT, "%s: missing required field \"%s\"", what, key);
        *out = dflt;
        return SLM_OK;
    }
    if (!cJSON_IsNumber(j) || !(j->valuedouble > 0) || !(j->valuedouble <= FLT_MAX)) /* (float) of more is undefined */
        return slm_errf(err, SLM_E_FORMAT, "%s: field \"%s\" must be a positive number", what, key);
    *out = (float)j->valuedouble;
    return SLM_OK;
}

int slm_model_config_check(const slm_model_config *c, slm_err *err) {
    if (c->n_embd <= 0 || c->n_ff <= 0 || c->n_layer <= 0 || c->n_head <= 0 || c->n_head_kv <= 0 || c->n_vocab <= 0 || c->head_dim <= 0)
        return slm_errf(err, SLM_E_FORMAT, "hidden size, FFN size, layers, heads, kv heads, head dim and vocab size must all be positive");
    if (c->n_head % c->n_head_kv)
        return slm_errf(err, SLM_E_FORMAT, "%d attention heads are not a multiple of %d kv heads", c->n_head, c->n_head_kv);
    if (c->head_dim % 2) return slm_errf(err, SLM_E_FORMAT, "head dim %d is odd (RoPE rotates pairs)", c->head_dim);
    if (!(c->norm_eps > 0) || !(c->rope_theta > 0)) return slm_errf(err, SLM_E_FORMAT, "norm eps and rope theta must be positive");
    for (int l = 0; c->per_layer && l < c->n_layer; l++) {
        const int h = c->n_head_l[l], kv = c->n_head_kv_l[l];
        if (h < 0 || kv < 0 || c->n_ff_l[l] < 0 || (h > 0) != (kv > 0) || (kv && h % kv))
            return slm_errf(err, SLM_E_UNSUPPORTED, "layer %d: %d heads with %d kv heads (slm needs a multiple, or both 0)", l, h, kv);
    }
    return SLM_OK;
}

/* Optional float that may be null or 0 (soft caps): 0 when absent. */
static int get_cap(const cJSON *root, const char *key, float *out, const char *what, slm_err *err) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = 0;
    if (!j || cJSON_IsNull(j) || (cJSON_IsNumber(j) && j->valuedouble == 0)) return SLM_OK;
    return get_float(root, key, 1, 0, out, what, err);
}

/* Gemma 2/3 keys as llama.cpp's converter and loader read them (docs/families.md 5, 6). */
static int gemma_config(slm_model_config *c, const cJSON *root, const char *what, slm_err *err) {
    slm_gemma *g = &c->gemma;
    const int g2 = c->arch == SLM_ARCH_GEMMA2;
    const cJSON *tie = cJSON_GetObjectItemCaseSensitive(root, "tie_word_embeddings");
    c->tied_embeddings = g2 || !cJSON_IsFalse(tie); /* Gemma 2's converter drops lm_head */
    if (g2) c->rope_theta = 10000.0f;                 /* not converted: the loader's default */
    SLM_TRY(get_cap(root, "attn_logit_softcapping", &g->attn_softcap, what, err));
    SLM_TRY(get_cap(root, "final_logit_softcapping", &g->final_softcap, what, err));
    if (g2 && (!g->attn_softcap || !g->final_softcap))
        return slm_errf(err, SLM_E_FORMAT, "%s: Gemma 2 needs attn_logit_softcapping and final_logit_softcapping", what);
    if (!g2 && g->attn_softcap)
        return slm_errf(err, SLM_E_UNSUPPORTED, "%s: attn_logit_softcapping is not supported for Gemma 3", what);
    SLM_TRY(get_int(root, "sliding_window", g2, 0, &g->n_swa, what, err));
    int pattern = 6;
    SLM_TRY(get_int(root, "sliding_window_pattern", 0, 6, &pattern, what, err));
    if (!g2 && pattern == 1) g->n_swa = 0; /* the converter writes no window */
    g->swa_pattern = g2 ? 2 : 6;           /* llama.cpp's fixed patterns */
    SLM_TRY(get_float(root, "rope_local_base_freq", 0, 10000.0f, &g->rope_theta_swa, what, err));
    if (g2) g->rope_theta_swa = c->rope_theta;
    const int big = c->n_layer == (g2 ? 46 : 62); /* 27B: llama.cpp scales by the model dim */
    g->attn_scale = 1.0f / sqrtf((float)(big ? c->n_embd / c->n_head : c->head_dim));
    return SLM_OK;
}

/* llama.cpp's converter turns a Qwen3 checkpoint into a reranker (cls.output, pooling, another
   chat template) when its directory name, _name_or_path or model_type names one
   (conversion/qwen.py: Qwen3Model._is_qwen3_reranker): slm converts causal LMs only. */
static int qwen3_reranker_check(const cJSON *root, const char *dir, const char *what, slm_err *err) {
    const char *hints[3] = {dir, NULL, NULL};
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, "_name_or_path");
    if (cJSON_IsString(j)) hints[1] = j->valuestring;
    j = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (cJSON_IsString(j)) hints[2] = j->valuestring;
    for (int i = 0; i < 3; i++) {
        char low[256];
        size_t n = 0;
        for (const char *p = hints[i]; p && *p && n + 1 < sizeof low; p++) low[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        low[n] = 0;
        if (strstr(low, "qwen3-reranker") || strstr(low, "qwen3-vl-reranker"))
            return slm_errf(err, SLM_E_UNSUPPORTED, "%s: Qwen3 rerankers are not supported (%.64s names one)", what, hints[i]);
    }
    return SLM_OK;
}

/* rope_scaling (or transformers 5's rope_parameters) as llama.cpp's converter takes it for these
   architectures (conversion/base.py: TextModel.set_gguf_parameters, conversion/llama.py):
   linear -> a factor; llama3 (Llama only) -> per-pair divisors, the tensor rope_freqs; dynamic
   and default -> nothing (the converter writes no key, so llama.cpp runs plain RoPE); the rest
   is refused by name. */
static int rope_scaling(slm_model_config *c, const cJSON *root, const char *what, slm_err *err) {
    c->rope_scale = 1.0f;
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    if (!rs || cJSON_IsNull(rs)) rs = cJSON_GetObjectItemCaseSensitive(root, "rope_parameters");
    if (!rs || cJSON_IsNull(rs)) return SLM_OK;
    if (!cJSON_IsObject(rs)) return slm_errf(err, SLM_E_FORMAT, "%s: field \"rope_scaling\" must be an object or null", what);
    const cJSON *full = cJSON_GetObjectItemCaseSensitive(rs, "full_attention"); /* per-layer-type parameters */
    if (cJSON_IsObject(full)) rs = full;
    if (!cJSON_GetObjectItemCaseSensitive(root, "rope_theta")) /* the converter also looks in rope_parameters */
        SLM_TRY(get_float(rs, "rope_theta", 0, c->rope_theta, &c->rope_theta, what, err));
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
    if (!ty) ty = cJSON_GetObjectItemCaseSensitive(rs, "type");
    if (!ty) return SLM_OK; /* no type: the converter writes nothing */
    if (!cJSON_IsString(ty)) return slm_errf(err, SLM_E_FORMAT, "%s: rope_scaling type must be a string", what);
    const char *t = ty->valuestring;
    if (!strcmp(t, "linear")) {
        const cJSON *fa = cJSON_GetObjectItemCaseSensitive(rs, "factor");
        if (!fa || cJSON_IsNull(fa)) return SLM_OK; /* the converter needs a factor */
        return get_float(rs, "factor", 1, 1.0f, &c->rope_scale, what, err);
    }
    if (!strcmp(t, "dynamic") || !strcmp(t, "default")) return SLM_OK;
    if (!strcasecmp(t, "llama3") && c->arch == SLM_ARCH_LLAMA) {
        slm_rope_llama3 *p = &c->llama3;
        SLM_TRY(get_float(rs, "factor", 0, 8.0f, &p->factor, what, err));
        SLM_TRY(get_float(rs, "low_freq_factor", 0, 1.0f, &p->low_freq_factor, what, err));
        SLM_TRY(get_float(rs, "high_freq_factor", 0, 4.0f, &p->high_freq_factor, what, err));
        SLM_TRY(get_int(rs, "original_max_position_embeddings", 0, 8192, &p->orig_ctx, what, err));
        if (!(p->high_freq_factor > p->low_freq_factor) || p->orig_ctx <= 0)
            return slm_errf(err, SLM_E_FORMAT, "%s: rope_scaling llama3 needs high_freq_factor > low_freq_factor and a positive original_max_position_embeddings", what);
        if (c->head_dim <= 0 || c->head_dim % 2 || c->head_dim / 2 > SLM_MAX_ROPE_FREQS)
            return slm_errf(err, SLM_E_UNSUPPORTED, "%s: rope_scaling llama3 with head dim %d (slm: even, at most %d)", what,
                            c->head_dim, 2 * SLM_MAX_ROPE_FREQS);
        c->rope_llama3 = 1;
        c->n_rope_freqs = c->head_dim / 2;
        slm_rope_llama3_freqs(p, c->rope_theta, c->head_dim, c->rope_freqs);
        return SLM_OK;
    }
    return slm_errf(err, SLM_E_UNSUPPORTED, "%s: rope_scaling %.32s is not supported for %s (slm handles none, linear, dynamic%s)",
                    what, t, c->hf_arch, c->arch == SLM_ARCH_LLAMA ? ", llama3" : "");
}

int slm_hf_config_parse(slm_model_config *c, const char *json, size_t len, const char *what, slm_err *err) {
    memset(c, 0, sizeof(*c));
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) return slm_errf(err, SLM_E_FORMAT, "%s: not valid JSON", what);
    int rc = SLM_OK;
    if (!cJSON_IsObject(root)) { rc = slm_errf(err, SLM_E_FORMAT, "%s: not a JSON object", what); goto done; }
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const cJSON *a0 = cJSON_IsArray(archs) ? cJSON_GetArrayItem(archs, 0) : NULL;
    if (!cJSON_IsString(a0)) { rc = slm_errf(err, SLM_E_FORMAT, "%s: missing required field \"architectures\"", what); goto done; }
    for (size_t i = 0; i < SLM_ARRAY_LEN(k_archs); i++)
        if (!strcmp(a0->valuestring, k_archs[i].hf)) c->arch = k_archs[i].arch;
    if (!c->arch) {
        rc = slm_errf(err, SLM_E_UNSUPPORTED, "%s: unsupported architecture %.64s (slm handles LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM, Phi3ForCausalLM)",
                      what, a0->valuestring);
        goto done;
    }
    snprintf(c->hf_arch, sizeof c->hf_arch, "%s", a0->valuestring);
    if ((rc = get_int(root, "hidden_size", 1, 0, &c->n_embd, what, err)) ||
        (rc = get_int(root, "intermediate_size", 1, 0, &c->n_ff, what, err)) ||
        (rc = get_int(root, "num_hidden_layers", 1, 0, &c->n_layer, what, err)) ||
        (rc = get_int(root, "num_attention_heads", 1, 0, &c->n_head, what, err)) ||
        (rc = get_int(root, "vocab_size", 1, 0, &c->n_vocab, what, err)) ||
        (rc = get_int(root, "num_key_value_heads", 0, c->n_head, &c->n_head_kv, what, err)) ||
        (rc = get_int(root, "max_position_embeddings", 0, 2048, &c->n_ctx_train, what, err)) ||
        (rc = get_float(root, "rms_norm_eps", 1, 0, &c->norm_eps, what, err)) ||
        (rc = get_float(root, "rope_theta", 0, 10000.0f, &c->rope_theta, what, err)))
        goto done;
    if (c->n_head <= 0) { rc = slm_errf(err, SLM_E_FORMAT, "%s: num_attention_heads must be positive", what); goto done; }
    if ((rc = get_int(root, "head_dim", 0, c->n_embd / c->n_head, &c->head_dim, what, err))) goto done;
    c->head_dim_key = cJSON_GetObjectItemCaseSensitive(root, "head_dim") != NULL;
    const cJSON *eos = cJSON_GetObjectItemCaseSensitive(root, "eos_token_id");
    if (cJSON_IsArray(eos)) eos = cJSON_GetArrayItem(eos, 0); /* some configs list several */
    if ((rc = get_token_id(eos, "eos_token_id", &c->eos_id, what, err)) ||
        (rc = get_token_id(cJSON_GetObjectItemCaseSensitive(root, "bos_token_id"), "bos_token_id", &c->bos_id, what, err)))
        goto done;
    const cJSON *tie = cJSON_GetObjectItemCaseSensitive(root, "tie_word_embeddings");
    if (tie && !cJSON_IsBool(tie) && !cJSON_IsNull(tie)) { rc = slm_errf(err, SLM_E_FORMAT, "%s: field \"tie_word_embeddings\" must be a boolean", what); goto done; }
    c->tied_embeddings = cJSON_IsTrue(tie);
    c->qkv_bias = c->arch == SLM_ARCH_QWEN2;
    if (slm_arch_is_gemma(c->arch) && (rc = gemma_config(c, root, what, err))) goto done;
    if (c->arch == SLM_ARCH_QWEN3 && (rc = qwen3_reranker_check(root, NULL, what, err))) goto done;
    if (c->arch == SLM_ARCH_PHI3) { /* its own rope_scaling (longrope) */
        c->rope_scale = 1.0f;
        if (!(rc = slm_phi3_config(c, root, what, err)) && (rc = slm_model_config_check(c, err))) slm_err_prefix(err, "%s", what);
        goto done;
    }
    const cJSON *ab = cJSON_GetObjectItemCaseSensitive(root, "attention_bias");
    if ((c->arch == SLM_ARCH_LLAMA || c->arch == SLM_ARCH_QWEN3) && cJSON_IsTrue(ab)) {
        rc = slm_errf(err, SLM_E_UNSUPPORTED, "%s: attention_bias = true is not supported for %s", what, c->hf_arch);
        goto done;
    }
    if ((rc = rope_scaling(c, root, what, err))) goto done;
    rc = slm_model_config_check(c, err);
    if (rc) slm_err_prefix(err, "%s", what);
done:
    cJSON_Delete(root);
    return rc;
}

int slm_hf_config_load(slm_model_config *c, const char *dir, slm_err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    slm_map m;
    SLM_TRY(slm_map_open(&m, path, err));
    int rc = slm_hf_config_parse(c, (const char *)m.data, m.size, path, err);
    slm_map_close(&m);
    if (!rc && c->arch == SLM_ARCH_QWEN3) {
        const char *end = dir + strlen(dir), *base;
        while (end > dir && end[-1] == '/') end--;
        for (base = end; base > dir && base[-1] != '/'; base--) {}
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(end - base), base);
        rc = qwen3_reranker_check(NULL, name, path, err);
    }
    return rc;
}

/* ---- names: the tensor catalogue (model/catalog.h) ------------------------------------ */

int slm_hf_name_to_gguf(const slm_model_config *c, const char *hf, char *out, size_t cap, int *permute_heads) {
    int l, pos = 0;
    *permute_heads = 0;
    if (sscanf(hf, "model.layers.%d.%n", &l, &pos) == 1 && pos && strstr(hf + pos, "rotary_emb.inv_freq"))
        return SLM_NAME_SKIP; /* recomputed by every runtime */
    if (c->arch == SLM_ARCH_GEMMA2 && !strcmp(hf, "lm_head.weight")) return SLM_NAME_SKIP; /* as llama.cpp's converter */
    int role = slm_catalog_parse_hf_cfg(c, hf, &l);
    if (role < 0 || (slm_catalog_kind(role)->per_layer && l >= c->n_layer)) return SLM_NAME_UNKNOWN;
    /* lm_head.weight is taken even when the config ties it (the loader checks it) */
    if (role != SLM_ROLE_OUTPUT && !slm_catalog_present(c, role, l)) return SLM_NAME_UNKNOWN;
    slm_catalog_gguf_name(role, l, out, cap);
    *permute_heads = slm_catalog_permute_heads(c, role, l);
    return SLM_NAME_MAPPED;
}
