/* hf_config_write.c - slm_model_config -> config.json (the HF folders prune and distill write). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "core/dtype.h"
#include "core/mem.h"
#include "formats/hf_config.h"

static const char *torch_dtype(int dtype) {
    return dtype == SLM_DTYPE_F16 ? "float16" : dtype == SLM_DTYPE_BF16 ? "bfloat16" : "float32";
}

/* key = v, replacing a value already there (the base's order is kept) */
static int set(cJSON *o, const char *key, cJSON *v) {
    if (!v) return 0;
    if (cJSON_GetObjectItemCaseSensitive(o, key)) return cJSON_ReplaceItemInObjectCaseSensitive(o, key, v) ? 1 : (cJSON_Delete(v), 0);
    return cJSON_AddItemToObject(o, key, v) ? 1 : (cJSON_Delete(v), 0);
}

static cJSON *fresh(const slm_model_config *c) {
    cJSON *o = cJSON_CreateObject(), *a = cJSON_CreateArray();
    const int qwen = c->arch == SLM_ARCH_QWEN2, qwen3 = c->arch == SLM_ARCH_QWEN3;
    const char *arch = c->hf_arch[0] ? c->hf_arch : qwen ? "Qwen2ForCausalLM" : qwen3 ? "Qwen3ForCausalLM" : "LlamaForCausalLM";
    if (!o || !a || !cJSON_AddItemToArray(a, cJSON_CreateString(arch)) || !cJSON_AddItemToObject(o, "architectures", a))
        return cJSON_Delete(o), cJSON_Delete(a), NULL;
    int ok = set(o, "model_type", cJSON_CreateString(qwen ? "qwen2" : qwen3 ? "qwen3" : "llama")) &&
             set(o, "max_position_embeddings", cJSON_CreateNumber(c->n_ctx_train)) &&
             set(o, "rms_norm_eps", cJSON_CreateNumber(c->norm_eps)) && set(o, "rope_theta", cJSON_CreateNumber(c->rope_theta)) &&
             set(o, "hidden_act", cJSON_CreateString("silu"));
    if (ok && c->bos_id >= 0) ok = set(o, "bos_token_id", cJSON_CreateNumber(c->bos_id));
    if (ok && c->eos_id >= 0) ok = set(o, "eos_token_id", cJSON_CreateNumber(c->eos_id));
    if (ok && c->rope_scale != 1.0f) {
        cJSON *rs = cJSON_CreateObject();
        ok = rs && set(rs, "type", cJSON_CreateString("linear")) && set(rs, "factor", cJSON_CreateNumber(c->rope_scale)) &&
             set(o, "rope_scaling", rs);
    }
    if (ok && c->rope_llama3) { /* Llama 3.x's keys, in its order */
        const slm_rope_llama3 *p = &c->llama3;
        cJSON *rs = cJSON_CreateObject();
        ok = rs && set(rs, "factor", cJSON_CreateNumber(p->factor)) && set(rs, "high_freq_factor", cJSON_CreateNumber(p->high_freq_factor)) &&
             set(rs, "low_freq_factor", cJSON_CreateNumber(p->low_freq_factor)) &&
             set(rs, "original_max_position_embeddings", cJSON_CreateNumber(p->orig_ctx)) &&
             set(rs, "rope_type", cJSON_CreateString("llama3")) && set(o, "rope_scaling", rs);
    }
    return ok ? o : (cJSON_Delete(o), NULL);
}

int slm_hf_config_write(const slm_model_config *c, const char *base, size_t len, int dtype, char **out, slm_err *err) {
    *out = NULL;
    if (c->per_layer)
        return slm_errf(err, SLM_E_UNSUPPORTED,
                        "per-layer widths cannot be written as a Hugging Face config (one width for every layer): prune with --uniform");
    if (!base && c->n_rope_freqs && !c->rope_llama3) /* a GGUF's rope_freqs: the rope_scaling that made it is not known */
        return slm_errf(err, SLM_E_UNSUPPORTED, "the model's RoPE frequency factors (rope_freqs.weight) cannot be written as "
                        "config.json rope_scaling: start from the Hugging Face folder");
    cJSON *o = base ? cJSON_ParseWithLength(base, len) : fresh(c);
    if (base && !cJSON_IsObject(o)) return cJSON_Delete(o), slm_errf(err, SLM_E_FORMAT, "config.json: not a JSON object");
    int ok = o && set(o, "hidden_size", cJSON_CreateNumber(c->n_embd)) && set(o, "intermediate_size", cJSON_CreateNumber(c->n_ff)) &&
             set(o, "num_hidden_layers", cJSON_CreateNumber(c->n_layer)) &&
             set(o, "num_attention_heads", cJSON_CreateNumber(c->n_head)) &&
             set(o, "num_key_value_heads", cJSON_CreateNumber(c->n_head_kv)) &&
             set(o, "vocab_size", cJSON_CreateNumber(c->n_vocab)) &&
             set(o, "tie_word_embeddings", cJSON_CreateBool(c->tied_embeddings)) &&
             set(o, "torch_dtype", cJSON_CreateString(torch_dtype(dtype)));
    /* heads removed: hidden / heads no longer gives the head size */
    if (ok && (c->n_embd != c->n_head * c->head_dim || c->arch == SLM_ARCH_QWEN3 || cJSON_GetObjectItemCaseSensitive(o, "head_dim")))
        ok = set(o, "head_dim", cJSON_CreateNumber(c->head_dim));
    char *s = ok ? cJSON_Print(o) : NULL;
    cJSON_Delete(o);
    if (!s) return slm_errf(err, SLM_E_NOMEM, "config.json: out of memory");
    size_t n = strlen(s);
    int rc = slm_alloc((void **)out, n + 2, err, "config.json");
    if (!rc) memcpy(*out, s, n), (*out)[n] = '\n', (*out)[n + 1] = 0;
    cJSON_free(s);
    return rc;
}
