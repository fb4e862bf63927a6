/* st_index.c - a checkpoint folder: model.safetensors, or model.safetensors.index.json naming
 * shard files. Every shard is mapped and validated up front; the index must name existing
 * shards and every tensor it names must be in that shard.
 * Must not: print; read tensor data.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/mem.h"
#include "core/slm.h"
#include "safetensors.h"

static int join(char *buf, size_t cap, const char *dir, const char *name, slm_err *err) {
    if ((size_t)snprintf(buf, cap, "%s/%s", dir, name) >= cap) return slm_errf(err, SLM_E_ARG, "%s/%s: path too long", dir, name);
    return SLM_OK;
}

static const char *shard_name_at(const void *ctx, size_t i) { return ((const slm_st_model *)ctx)->shard_names[i]; }
static const char *tensor_name_at(const void *ctx, size_t i) { return ((const slm_st_model *)ctx)->tensors[i].name; }

/* Opens path as the next shard, known as fname. */
static int add_shard(slm_st_model *m, const char *path, const char *fname, slm_err *err) {
    void *p = m->shards, *q = m->shard_names;
    SLM_TRY(slm_realloc(&p, (size_t)(m->n_shards + 1) * sizeof(slm_st_file), err, "shard list"));
    m->shards = p;
    SLM_TRY(slm_realloc(&q, (size_t)(m->n_shards + 1) * sizeof(char *), err, "shard list"));
    m->shard_names = q;
    char *nm = slm_strdup(fname, err);
    if (!nm) return SLM_E_NOMEM;
    int rc = slm_st_open(&m->shards[m->n_shards], path, err);
    size_t dup;
    m->shard_names[m->n_shards] = nm;
    if (!rc) rc = slm_strindex_add(&m->shard_ix, nm, (size_t)m->n_shards, shard_name_at, m, &dup, err);
    if (rc) {
        if (m->shards[m->n_shards].map.path) slm_st_close(&m->shards[m->n_shards]);
        slm_free(nm);
        return rc;
    }
    m->n_shards++;
    return SLM_OK;
}

static int find_shard(const slm_st_model *m, const char *fname) {
    size_t i = slm_strindex_find(&m->shard_ix, fname, shard_name_at, m);
    return i == SLM_STRINDEX_NONE ? -1 : (int)i;
}

static int open_index(slm_st_model *m, const char *dir, const char *ipath, slm_err *err) {
    slm_map map;
    SLM_TRY(slm_map_open(&map, ipath, err));
    cJSON *root = cJSON_ParseWithLength((const char *)map.data, map.size);
    int rc = SLM_OK;
    const cJSON *wm = root ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
    if (!root) { rc = slm_errf(err, SLM_E_FORMAT, "%s: not valid JSON", ipath); goto done; }
    if (!cJSON_IsObject(wm)) { rc = slm_errf(err, SLM_E_FORMAT, "%s: missing or non-object \"weight_map\"", ipath); goto done; }
    /* shards in order of first appearance (deterministic) */
    for (const cJSON *e = wm->child; e; e = e->next) {
        if (!cJSON_IsString(e) || strchr(e->valuestring, '/') || !e->valuestring[0]) {
            rc = slm_errf(err, SLM_E_FORMAT, "%s: weight_map entry '%s' is not a shard file name", ipath, e->string);
            goto done;
        }
        if (find_shard(m, e->valuestring) >= 0) continue;
        char sp[4096];
        struct stat st;
        if ((rc = join(sp, sizeof sp, dir, e->valuestring, err))) goto done;
        if (stat(sp, &st) != 0) {
            rc = slm_errf(err, SLM_E_FORMAT, "%s: shard '%s' (holding '%s') does not exist", ipath, e->valuestring, e->string);
            goto done;
        }
        if ((rc = add_shard(m, sp, e->valuestring, err))) goto done;
    }
    for (const cJSON *e = wm->child; e; e = e->next) {
        int s = find_shard(m, e->valuestring);
        if (slm_st_find(&m->shards[s], e->string) < 0) {
            rc = slm_errf(err, SLM_E_FORMAT, "%s: tensor '%s' is not in its shard '%s'", ipath, e->string, e->valuestring);
            goto done;
        }
    }
done:
    cJSON_Delete(root);
    slm_map_close(&map);
    return rc;
}

int slm_st_model_open(slm_st_model *m, const char *dir, slm_err *err) {
    memset(m, 0, sizeof(*m));
    char ipath[4096], spath[4096];
    struct stat st;
    int rc;
    SLM_TRY(join(ipath, sizeof ipath, dir, "model.safetensors.index.json", err));
    SLM_TRY(join(spath, sizeof spath, dir, "model.safetensors", err));
    if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode)) rc = add_shard(m, dir, dir, err); /* a single file (FIFOs refused there) */
    else if (stat(ipath, &st) == 0) rc = open_index(m, dir, ipath, err);
    else if (stat(spath, &st) == 0) rc = add_shard(m, spath, "model.safetensors", err);
    else rc = slm_errf(err, SLM_E_IO, "%s: no model.safetensors or model.safetensors.index.json", dir);
    if (rc) goto fail;
    size_t total = 0;
    for (int s = 0; s < m->n_shards; s++) total += m->shards[s].n;
    if ((rc = slm_calloc((void **)&m->tensors, total ? total : 1, sizeof(slm_st_ref), err, "tensor list"))) goto fail;
    for (int s = 0; s < m->n_shards; s++) {
        for (size_t i = 0; i < m->shards[s].n; i++) {
            const char *nm = m->shards[s].entries[i].name;
            size_t dup;
            m->tensors[m->n_tensors] = (slm_st_ref){nm, s, (int)i};
            if ((rc = slm_strindex_add(&m->ix, nm, m->n_tensors, tensor_name_at, m, &dup, err))) goto fail;
            if (dup != SLM_STRINDEX_NONE) {
                rc = slm_errf(err, SLM_E_FORMAT, "%s/%s: tensor '%s' also appears in another shard", dir, m->shard_names[s], nm);
                goto fail;
            }
            m->n_tensors++;
        }
    }
    return SLM_OK;
fail:
    slm_st_model_close(m);
    return rc;
}

void slm_st_model_close(slm_st_model *m) {
    for (int s = 0; s < m->n_shards; s++) {
        slm_st_close(&m->shards[s]);
        slm_free(m->shard_names[s]);
    }
    slm_free(m->shards);
    slm_free(m->shard_names);
    slm_free(m->tensors);
    slm_strindex_free(&m->ix);
    slm_strindex_free(&m->shard_ix);
    memset(m, 0, sizeof(*m));
}

int slm_st_model_find(const slm_st_model *m, const char *name) {
    size_t i = slm_strindex_find(&m->ix, name, tensor_name_at, m);
    return i == SLM_STRINDEX_NONE ? -1 : (int)i;
}

void slm_st_model_view(const slm_st_model *m, size_t i, slm_tensor *t) {
    SLM_ASSERT(i < m->n_tensors);
    slm_st_view(&m->shards[m->tensors[i].shard], (size_t)m->tensors[i].entry, t);
}

const slm_map *slm_st_model_map(const slm_st_model *m, size_t i) {
    return &m->shards[m->tensors[i].shard].map;
}
