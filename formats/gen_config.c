/* gen_config.c - generation_config.json -> general.sampling.* (see gen_config.h). */
#include "formats/gen_config.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <stdio.h>
#include <sys/stat.h>

#include "core/mapfile.h"
#include "core/slm.h"

/* The converter's table: GGUF key suffix, generation_config key(s), type. */
enum { S_STR, S_I32, S_F32 };
static const struct { const char *key, *from, *alt; int type; } k_sampling[] = {
    {"sequence", "sequence", NULL, S_STR},
    {"top_k", "top_k", NULL, S_I32},
    {"top_p", "top_p", NULL, S_F32},
    {"min_p", "min_p", NULL, S_F32},
    {"xtc_probability", "xtc_probability", NULL, S_F32},
    {"xtc_threshold", "xtc_threshold", NULL, S_F32},
    {"temp", "temperature", NULL, S_F32},
    {"penalty_last_n", "penalty_last_n", NULL, S_I32},
    {"penalty_repeat", "penalty_repeat", "repetition_penalty", S_F32},
    {"mirostat", "mirostat", NULL, S_I32},
    {"mirostat_tau", "mirostat_tau", NULL, S_F32},
    {"mirostat_eta", "mirostat_eta", NULL, S_F32},
};

static int put(slm_kvs *kv, const char *key, int type, const cJSON *j, const char *path, slm_err *err) {
    int64_t v;
    if (type == S_STR && cJSON_IsString(j)) return slm_kvs_set_str(kv, key, j->valuestring, err);
    if (type == S_I32 && cJSON_IsNumber(j) && slm_f64_to_i64(j->valuedouble, INT32_MIN, INT32_MAX, &v))
        return slm_kvs_set_i32(kv, key, (int32_t)v, err);
    if (type == S_F32 && cJSON_IsNumber(j) && j->valuedouble >= -FLT_MAX && j->valuedouble <= FLT_MAX)
        return slm_kvs_set_f32(kv, key, (float)j->valuedouble, err);
    return slm_errf(err, SLM_E_FORMAT, "%s: \"%s\" must be %s", path, j->string,
                    type == S_STR ? "a string" : type == S_I32 ? "a 32-bit integer" : "a number");
}

int slm_hf_sampling_load(slm_kvs *kv, const char *dir, slm_err *err) {
    char path[4096], key[64];
    struct stat st;
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return SLM_OK;
    slm_map m;
    SLM_TRY(slm_map_open(&m, path, err));
    cJSON *root = cJSON_ParseWithLength((const char *)m.data, m.size);
    slm_map_close(&m);
    int rc = SLM_OK;
    for (size_t i = 0; cJSON_IsObject(root) && !rc && i < SLM_ARRAY_LEN(k_sampling); i++) {
        const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, k_sampling[i].from);
        if (!j && k_sampling[i].alt) j = cJSON_GetObjectItemCaseSensitive(root, k_sampling[i].alt);
        if (!j || cJSON_IsNull(j)) continue;
        snprintf(key, sizeof key, "general.sampling.%s", k_sampling[i].key);
        rc = put(kv, key, k_sampling[i].type, j, path, err);
    }
    cJSON_Delete(root);
    return rc;
}
