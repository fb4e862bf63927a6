/* phi3.c - Phi-3 / Phi-3.5 (Phi3ForCausalLM, GGUF "phi3") as llama.cpp's converter and loader
 * see them (docs/families.md 4): config.json keys (longrope factors, original context, attention
 * factor, sliding window), the GGUF keys in convert_hf_to_gguf.py's order, and the GGUF
 * hyperparameters read back. The fused attn_qkv / ffn_up tensors are catalogue roles
 * (model/catalog.c); the rope factor tensors are generated from config.json (model_src.c).
 * Must not: print, or read tensor data.
 */
#include "formats/phi3.h"

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/slm.h"

/* ---- config.json ------------------------------------------------------------------------ */

static int factors(const cJSON *rs, const char *key, float *out, int n, const char *what, slm_err *err) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(rs, key);
    if (!cJSON_IsArray(a)) return slm_errf(err, SLM_E_FORMAT, "%s: rope_scaling.%s is missing (longrope needs both factor lists)", what, key);
    if (cJSON_GetArraySize(a) != n)
        return slm_errf(err, SLM_E_FORMAT, "%s: rope_scaling.%s has %d values, the rotary dims need %d", what, key,
                        cJSON_GetArraySize(a), n);
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) {
        if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble) || fabs(e->valuedouble) > FLT_MAX)
            return slm_errf(err, SLM_E_FORMAT, "%s: rope_scaling.%s[%d] is not a number", what, key, i);
        out[i++] = (float)e->valuedouble; /* torch.tensor(..., float32) */
    }
    return SLM_OK;
}

/* gguf-py metadata.py's get_model_id_components for the usual "<base>-<version>-<size>-<finetune>"
   ids without an organization: "Phi-3.5-mini-instruct" -> basename Phi-3.5, size_label mini,
   finetune instruct. Numeric size parts with a 'k' (context lengths, "4k") count as finetune. */
static void name_components(slm_phi3 *p, const char *id) {
    char buf[256], base[64] = "", size[64] = "", fine[64] = "";
    if (strchr(id, '/') || strchr(id, ' ')) return;
    snprintf(buf, sizeof buf, "%s", id);
    int at_start = 1;
    for (char *save = NULL, *part = strtok_r(buf, "-", &save); part; part = strtok_r(NULL, "-", &save)) {
        size_t n = strlen(part);
        int version = 1, first = !base[0] && !size[0] && !fine[0];
        for (size_t i = 0; i < n; i++)
            if (!isdigit((unsigned char)part[i]) && !(part[i] == '.' && i > 0 && i + 1 < n)) version = 0;
        int word_size = !first && (!strcasecmp(part, "mini") || !strcasecmp(part, "small") || !strcasecmp(part, "medium") ||
                                   !strcasecmp(part, "large") || !strcasecmp(part, "xl") || !strcasecmp(part, "xxl"));
        int ctx = !first && n >= 2 && isdigit((unsigned char)part[0]) && tolower((unsigned char)part[n - 1]) == 'k';
        int num_size = !first && !ctx && n >= 2 && isdigit((unsigned char)part[0]) && strchr("MBT", part[n - 1]);
        char *dst;
        if (at_start && (version || (!word_size && !num_size && !ctx && isalpha((unsigned char)part[0]) &&
                                     strcasecmp(part, "chat") && strcasecmp(part, "instruct")))) dst = base;
        else if (word_size || num_size) { at_start = 0; dst = size; }
        else { at_start = 0; dst = fine; if (ctx) part[n - 1] = 'k'; }
        size_t used = strlen(dst);
        snprintf(dst + used, 64 - used, "%s%s", used ? "-" : "", part);
    }
    snprintf(p->basename, sizeof p->basename, "%s", base);
    snprintf(p->size_label, sizeof p->size_label, "%s", size);
    snprintf(p->finetune, sizeof p->finetune, "%s", fine);
}

int slm_phi3_config(slm_model_config *c, const cJSON *root, const char *what, slm_err *err) {
    slm_phi3 *p = &c->phi3;
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, "_name_or_path");
    if (cJSON_IsString(j)) name_components(p, j->valuestring);
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    j = cJSON_GetObjectItemCaseSensitive(root, "original_max_position_embeddings");
    if (!j && cJSON_IsObject(rs)) j = cJSON_GetObjectItemCaseSensitive(rs, "original_max_position_embeddings"); /* rope parameters */
    if (!cJSON_IsNumber(j) || !(j->valuedouble >= 1) || j->valuedouble > 1e9 || j->valuedouble != floor(j->valuedouble))
        return slm_errf(err, SLM_E_FORMAT, "%s: Phi-3 needs original_max_position_embeddings (a positive integer)", what);
    p->orig_ctx = (int)j->valuedouble;
    j = cJSON_GetObjectItemCaseSensitive(root, "partial_rotary_factor");
    const double rot = cJSON_IsNumber(j) ? j->valuedouble : 1.0;
    const double rdims = floor(rot * c->n_embd) / c->n_head; /* int(rot * C) // H */
    if (floor(rdims) != c->head_dim)
        return slm_errf(err, SLM_E_UNSUPPORTED, "%s: partial_rotary_factor %g rotates %d of %d head dims (slm rotates whole heads)",
                        what, rot, (int)floor(rdims), c->head_dim);
    if (c->head_dim / 2 > SLM_PHI3_MAX_FACTORS) return slm_errf(err, SLM_E_UNSUPPORTED, "%s: head dim %d is too large", what, c->head_dim);
    j = cJSON_GetObjectItemCaseSensitive(root, "sliding_window");
    p->n_swa = 0;
    if (j && !cJSON_IsNull(j)) {
        if (!cJSON_IsNumber(j) || j->valuedouble < 0 || j->valuedouble > 4294967295.0)
            return slm_errf(err, SLM_E_FORMAT, "%s: sliding_window must be a non-negative integer or null", what);
        p->n_swa = (int)SLM_MIN(j->valuedouble, 2147483647.0);
    }
    p->attn_factor = 1.0f;
    const cJSON *lf = cJSON_IsObject(rs) ? cJSON_GetObjectItemCaseSensitive(rs, "long_factor") : NULL;
    if (rs && !cJSON_IsNull(rs) && !cJSON_IsObject(rs)) return slm_errf(err, SLM_E_FORMAT, "%s: rope_scaling must be an object or null", what);
    if (!lf || cJSON_IsNull(lf) || (cJSON_IsArray(lf) && cJSON_GetArraySize(lf) == 0)) return SLM_OK; /* the converter writes none */
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
    if (!ty) ty = cJSON_GetObjectItemCaseSensitive(rs, "type");
    const char *t = cJSON_IsString(ty) ? ty->valuestring : "";
    const double s = (double)c->n_ctx_train / p->orig_ctx;
    if (!strcasecmp(t, "longrope") || !strcasecmp(t, "su")) p->attn_factor = s > 1.0 ? (float)sqrt(1 + log(s) / log((double)p->orig_ctx)) : 1.0f;
    else if (!strcasecmp(t, "yarn")) p->attn_factor = s > 1.0 ? (float)(0.1 * log(s) + 1.0) : 1.0f;
    else return slm_errf(err, SLM_E_UNSUPPORTED, "%s: rope_scaling type '%.32s' is not supported for Phi-3 (longrope, su or yarn)", what, t);
    p->n_factors = c->head_dim / 2;
    SLM_TRY(factors(rs, "long_factor", p->long_factor, p->n_factors, what, err));
    SLM_TRY(factors(rs, "short_factor", p->short_factor, p->n_factors, what, err));
    return SLM_OK;
}

/* ---- GGUF ------------------------------------------------------------------------------- */

int slm_phi3_gguf_config(const slm_kvs *kv, const slm_gguf *g, slm_model_config *c, slm_err *err) {
    slm_phi3 *p = &c->phi3;
    const slm_gguf_val *v;
    uint32_t u;
    if ((v = slm_kvs_get(kv, "phi3.rope.dimension_count"))) {
        SLM_TRY(slm_kvs_get_u32(kv, "phi3.rope.dimension_count", &u, err));
        if ((int64_t)u != c->head_dim)
            return slm_errf(err, SLM_E_UNSUPPORTED, "phi3.rope.dimension_count %u: slm rotates whole heads (%d dims)", u, c->head_dim);
    }
    p->orig_ctx = c->n_ctx_train;
    if (slm_kvs_get(kv, "phi3.rope.scaling.original_context_length")) {
        SLM_TRY(slm_kvs_get_u32(kv, "phi3.rope.scaling.original_context_length", &u, err));
        p->orig_ctx = (int)SLM_MIN(u, 1000000000u);
    }
    p->n_swa = 0;
    if (slm_kvs_get(kv, "phi3.attention.sliding_window")) {
        SLM_TRY(slm_kvs_get_u32(kv, "phi3.attention.sliding_window", &u, err));
        p->n_swa = (int)SLM_MIN(u, 2147483647u);
    }
    p->attn_factor = 1.0f;
    if (slm_kvs_get(kv, "phi3.rope.scaling.attn_factor")) SLM_TRY(slm_kvs_get_f32(kv, "phi3.rope.scaling.attn_factor", &p->attn_factor, err));
    const int has_long = slm_gguf_find(g, "rope_factors_long.weight") >= 0, has_short = slm_gguf_find(g, "rope_factors_short.weight") >= 0;
    if (has_long != has_short) return slm_errf(err, SLM_E_FORMAT, "phi3: rope_factors_long and rope_factors_short come together");
    if (c->head_dim / 2 > SLM_PHI3_MAX_FACTORS) return slm_errf(err, SLM_E_UNSUPPORTED, "phi3: head dim %d is too large", c->head_dim);
    p->n_factors = has_long ? c->head_dim / 2 : 0; /* the values are read with the weights */
    return SLM_OK;
}

int slm_phi3_meta(const slm_model_config *c, const char *name, const slm_vocab *vocab, slm_kvs *kv, slm_err *err) {
    const slm_phi3 *p = &c->phi3;
    SLM_TRY(slm_kvs_set_str(kv, "general.architecture", "phi3", err));
    if (p->n_factors) SLM_TRY(slm_kvs_set_f32(kv, "phi3.rope.scaling.attn_factor", p->attn_factor, err));
    SLM_TRY(slm_kvs_set_str(kv, "general.type", "model", err));
    SLM_TRY(slm_kvs_set_str(kv, "general.name", name, err));
    if (p->finetune[0]) SLM_TRY(slm_kvs_set_str(kv, "general.finetune", p->finetune, err));
    if (p->basename[0]) SLM_TRY(slm_kvs_set_str(kv, "general.basename", p->basename, err));
    if (p->size_label[0]) SLM_TRY(slm_kvs_set_str(kv, "general.size_label", p->size_label, err));
    SLM_TRY(slm_kvs_set_u32(kv, "phi3.context_length", (uint32_t)c->n_ctx_train, err));
    SLM_TRY(slm_kvs_set_u32(kv, "phi3.rope.scaling.original_context_length", (uint32_t)p->orig_ctx, err));
    SLM_TRY(slm_kvs_set_u32(kv, "phi3.embedding_length", (uint32_t)c->n_embd, err));
    SLM_TRY(slm_kvs_set_u32(kv, "phi3.feed_forward_length", (uint32_t)c->n_ff, err));
    SLM_TRY(slm_kvs_set_u32(kv, "phi3.block_count", (uint32_t)c->n_layer, err));
    SLM_TRY(slm_kvs_set_u32(kv, "phi3.attention.head_count", (uint32_t)c->n_head, err));
    SLM_TRY(slm_kvs_set_u32(kv, "phi3.attention.head_count_kv", (uint32_t)c->n_head_kv, err));
    SLM_TRY(slm_kvs_set_f32(kv, "phi3.attention.layer_norm_rms_epsilon", c->norm_eps, err));
    SLM_TRY(slm_kvs_set_u32(kv, "phi3.rope.dimension_count", (uint32_t)c->head_dim, err));
    SLM_TRY(slm_kvs_set_f32(kv, "phi3.rope.freq_base", c->rope_theta, err));
    SLM_TRY(slm_kvs_set_u32(kv, "phi3.attention.sliding_window", (uint32_t)p->n_swa, err));
    if (vocab && vocab->kind != SLM_VOCAB_NONE) SLM_TRY(slm_vocab_to_kvs(vocab, kv, err));
    return SLM_OK;
}
