/* safetensors.c - parse and validate one safetensors file; write one.
 *
 * Checks: header length (past EOF, > 100 MB), JSON syntax, top-level object, duplicate keys,
 * entry objects with exactly dtype/shape/data_offsets, known dtypes (F32/F16/BF16 read;
 * other real safetensors dtypes are "unsupported", anything else "unknown"), integral
 * non-negative numbers below 2^53, <= 4 dims, element-count overflow, shape x dtype size ==
 * end - begin, offsets tiling the data exactly (no gap, no overlap, nothing after).
 * Linear time (n log n for the offset sort): duplicate names through a hash index.
 * Must not: print; touch cJSON's valueint (it saturates).
 */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "quantize/qtypes.h"
#include "core/le.h"
#include "core/mem.h"
#include "core/slm.h"

static const struct { const char *name; int dtype; } k_dtypes[] = {
    {"F32", SLM_DTYPE_F32}, {"F16", SLM_DTYPE_F16}, {"BF16", SLM_DTYPE_BF16},
};
/* valid safetensors dtypes slm does not read */
static const char *k_unsupported[] = {"F64", "I64", "I32", "I16", "I8", "U8", "U16", "U32", "U64", "BOOL",
                                      "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64"};

const char *slm_st_dtype_name(int dtype) {
    for (size_t i = 0; i < SLM_ARRAY_LEN(k_dtypes); i++)
        if (k_dtypes[i].dtype == dtype) return k_dtypes[i].name;
    return NULL;
}

/* A JSON number that must be an integer in [0, 2^53]. */
static int json_u53(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || d != (double)(uint64_t)d) return 0;
    *out = (uint64_t)d;
    return 1;
}

static const char *child_name_at(const void *ctx, size_t i) { return ((const cJSON *const *)ctx)[i]->string; }

/* The first key of obj that repeats an earlier one (*dup = its name), in linear time: cJSON
   keeps both copies of a repeated key. */
static int find_duplicate_key(const cJSON *obj, const char **dup, slm_err *err) {
    size_t n = 0;
    *dup = NULL;
    for (const cJSON *c = obj->child; c; c = c->next) n++;
    if (n <= 8) { /* the usual entry object (3 keys): no allocation */
        for (const cJSON *a = obj->child; a && !*dup; a = a->next)
            for (const cJSON *b = obj->child; b != a; b = b->next)
                if (!strcmp(a->string, b->string)) { *dup = a->string; break; }
        return SLM_OK;
    }
    const cJSON **kids;
    SLM_TRY(slm_calloc((void **)&kids, n, sizeof(*kids), err, "duplicate-key check"));
    slm_strindex ix = {0};
    int rc = SLM_OK;
    size_t i = 0;
    for (const cJSON *c = obj->child; c && !rc && !*dup; c = c->next, i++) {
        size_t d;
        kids[i] = c;
        rc = slm_strindex_add(&ix, c->string, i, child_name_at, kids, &d, err);
        if (!rc && d != SLM_STRINDEX_NONE) *dup = c->string;
    }
    slm_strindex_free(&ix);
    slm_free(kids);
    return rc;
}

static int parse_entry(const cJSON *j, slm_st_entry *e, slm_err *err) {
    const char *nm = j->string;
    if (!cJSON_IsObject(j)) return slm_errf(err, SLM_E_FORMAT, "tensor '%s': entry is not an object", nm);
    const char *dup;
    SLM_TRY(find_duplicate_key(j, &dup, err));
    if (dup) return slm_errf(err, SLM_E_FORMAT, "tensor '%s': duplicate key '%s'", nm, dup);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(j, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(j, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(j, "data_offsets");
    if (!cJSON_IsString(dt)) return slm_errf(err, SLM_E_FORMAT, "tensor '%s': missing or non-string dtype", nm);
    if (!cJSON_IsArray(sh)) return slm_errf(err, SLM_E_FORMAT, "tensor '%s': missing or non-array shape", nm);
    if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2)
        return slm_errf(err, SLM_E_FORMAT, "tensor '%s': data_offsets must be an array of two integers", nm);
    for (const cJSON *k = j->child; k; k = k->next)
        if (strcmp(k->string, "dtype") && strcmp(k->string, "shape") && strcmp(k->string, "data_offsets"))
            return slm_errf(err, SLM_E_FORMAT, "tensor '%s': unexpected key '%s'", nm, k->string);
    e->dtype = -1;
    for (size_t i = 0; i < SLM_ARRAY_LEN(k_dtypes); i++)
        if (!strcmp(dt->valuestring, k_dtypes[i].name)) e->dtype = k_dtypes[i].dtype;
    if (e->dtype < 0) {
        for (size_t i = 0; i < SLM_ARRAY_LEN(k_unsupported); i++)
            if (!strcmp(dt->valuestring, k_unsupported[i]))
                return slm_errf(err, SLM_E_UNSUPPORTED, "tensor '%s': unsupported dtype '%s' (slm reads F32, F16 and BF16)", nm, dt->valuestring);
        return slm_errf(err, SLM_E_FORMAT, "tensor '%s': unknown dtype '%.32s'", nm, dt->valuestring);
    }
    int nd = cJSON_GetArraySize(sh);
    if (nd > SLM_MAX_DIMS) return slm_errf(err, SLM_E_UNSUPPORTED, "tensor '%s': %d dimensions (slm handles at most %d)", nm, nd, SLM_MAX_DIMS);
    e->ndim = nd;
    int d = 0;
    for (const cJSON *x = sh->child; x; x = x->next, d++) {
        uint64_t v;
        if (!json_u53(x, &v)) return slm_errf(err, SLM_E_FORMAT, "tensor '%s': shape[%d] is not a non-negative integer", nm, d);
        e->shape[d] = (int64_t)v;
    }
    if (!json_u53(of->child, &e->begin) || !json_u53(of->child->next, &e->end))
        return slm_errf(err, SLM_E_FORMAT, "tensor '%s': data_offsets are not non-negative integers", nm);
    if (e->end < e->begin) return slm_errf(err, SLM_E_FORMAT, "tensor '%s': data_offsets [%llu, %llu) end before begin", nm,
                                           (unsigned long long)e->begin, (unsigned long long)e->end);
    int64_t nelem;
    size_t nbytes;
    if (slm_shape_nelem(e->shape, e->ndim, &nelem, err) || !slm_mul_ok((size_t)nelem, slm_dtype_get(e->dtype)->type_size, &nbytes))
        return slm_errf(err, SLM_E_FORMAT, "tensor '%s': element count of the shape overflows", nm);
    if (nbytes != e->end - e->begin) {
        char sb[96];
        return slm_errf(err, SLM_E_FORMAT, "tensor '%s': shape %s x %s needs %zu bytes but data_offsets span %llu", nm,
                        slm_shape_str(sb, sizeof sb, e->shape, e->ndim), dt->valuestring, nbytes,
                        (unsigned long long)(e->end - e->begin));
    }
    return SLM_OK;
}

static int cmp_begin(const void *a, const void *b) {
    const slm_st_entry *x = *(const slm_st_entry *const *)a, *y = *(const slm_st_entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int check_tiling(slm_st_file *f, uint64_t data_size, slm_err *err) {
    slm_st_entry **order;
    SLM_TRY(slm_calloc((void **)&order, f->n ? f->n : 1, sizeof(*order), err, "offset check"));
    for (size_t i = 0; i < f->n; i++) order[i] = &f->entries[i];
    qsort(order, f->n, sizeof(*order), cmp_begin);
    uint64_t pos = 0;
    int rc = SLM_OK;
    for (size_t i = 0; i < f->n && !rc; i++) {
        const slm_st_entry *e = order[i];
        if (e->end > data_size)
            rc = slm_errf(err, SLM_E_FORMAT, "tensor '%s': data_offsets [%llu, %llu) past end of data (%llu bytes; file truncated?)",
                          e->name, (unsigned long long)e->begin, (unsigned long long)e->end, (unsigned long long)data_size);
        else if (e->begin < pos)
            rc = slm_errf(err, SLM_E_FORMAT, "tensor '%s': data_offsets [%llu, %llu) overlap the previous tensor (ends at %llu)",
                          e->name, (unsigned long long)e->begin, (unsigned long long)e->end, (unsigned long long)pos);
        else if (e->begin > pos)
            rc = slm_errf(err, SLM_E_FORMAT, "tensor '%s': gap of %llu bytes before its data at offset %llu", e->name,
                          (unsigned long long)(e->begin - pos), (unsigned long long)e->begin);
        pos = e->end;
    }
    if (!rc && pos != data_size)
        rc = slm_errf(err, SLM_E_FORMAT, "%llu bytes of data after the last tensor", (unsigned long long)(data_size - pos));
    slm_free(order);
    return rc;
}

static const char *entry_name_at(const void *ctx, size_t i) { return ((const slm_st_entry *)ctx)[i].name; }

static int parse_header(slm_st_file *f, const char *json, size_t len, uint64_t data_size, slm_err *err) {
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) return slm_errf(err, SLM_E_FORMAT, "header is not valid JSON");
    int rc = SLM_OK;
    const char *dup;
    if (!cJSON_IsObject(root)) { rc = slm_errf(err, SLM_E_FORMAT, "header is not a JSON object"); goto done; }
    if ((rc = find_duplicate_key(root, &dup, err))) goto done;
    if (dup) { rc = slm_errf(err, SLM_E_FORMAT, "duplicate tensor name '%s'", dup); goto done; }
    size_t n = 0;
    for (cJSON *j = root->child; j; j = j->next) n += strcmp(j->string, "__metadata__") != 0;
    if ((rc = slm_calloc((void **)&f->entries, n ? n : 1, sizeof(slm_st_entry), err, "safetensors entries"))) goto done;
    for (cJSON *j = root->child; j; j = j->next) {
        if (!strcmp(j->string, "__metadata__")) {
            if (!cJSON_IsObject(j)) { rc = slm_errf(err, SLM_E_FORMAT, "__metadata__ is not an object"); goto done; }
            for (cJSON *m = j->child; m; m = m->next)
                if (!cJSON_IsString(m)) { rc = slm_errf(err, SLM_E_FORMAT, "__metadata__ value '%s' is not a string", m->string); goto done; }
            continue;
        }
        slm_st_entry *e = &f->entries[f->n];
        size_t d;
        if (!(e->name = slm_strdup(j->string, err))) { rc = SLM_E_NOMEM; goto done; }
        f->n++;
        if ((rc = parse_entry(j, e, err))) goto done;
        if ((rc = slm_strindex_add(&f->ix, e->name, f->n - 1, entry_name_at, f->entries, &d, err))) goto done;
        if (d != SLM_STRINDEX_NONE) { rc = slm_errf(err, SLM_E_FORMAT, "duplicate tensor name '%s'", e->name); goto done; }
    }
    rc = check_tiling(f, data_size, err);
done:
    cJSON_Delete(root);
    return rc;
}

static void free_entries(slm_st_file *f) {
    for (size_t i = 0; i < f->n; i++) slm_free(f->entries[i].name);
    slm_free(f->entries);
    slm_strindex_free(&f->ix);
    f->entries = NULL;
    f->n = 0;
}

int slm_st_parse(slm_st_file *f, const uint8_t *data, size_t size, slm_err *err) {
    memset(f, 0, sizeof(*f));
    if (size < 8) return slm_errf(err, SLM_E_FORMAT, "file too short for a safetensors header (%zu bytes)", size);
    uint64_t hl = slm_le_u64(data);
    if (hl > SLM_ST_MAX_HEADER) return slm_errf(err, SLM_E_FORMAT, "header length %llu exceeds the 100 MB limit", (unsigned long long)hl);
    if (hl > size - 8)
        return slm_errf(err, SLM_E_FORMAT, "header length %llu past end of file (%zu bytes)", (unsigned long long)hl, size);
    f->map.data = data;
    f->map.size = size;
    f->data_start = 8 + (size_t)hl;
    int rc = parse_header(f, (const char *)data + 8, (size_t)hl, size - f->data_start, err);
    if (rc) free_entries(f);
    return rc;
}

int slm_st_open(slm_st_file *f, const char *path, slm_err *err) {
    slm_map m;
    memset(f, 0, sizeof(*f));
    SLM_TRY(slm_map_open(&m, path, err));
    int rc = slm_st_parse(f, m.data, m.size, err);
    if (rc) {
        slm_err_prefix(err, "%s", path);
        slm_map_close(&m);
        memset(f, 0, sizeof(*f));
        return rc;
    }
    f->map = m;
    return SLM_OK;
}

void slm_st_close(slm_st_file *f) {
    free_entries(f);
    if (f->map.path) slm_map_close(&f->map);
    memset(f, 0, sizeof(*f));
}

int slm_st_find(const slm_st_file *f, const char *name) {
    size_t i = slm_strindex_find(&f->ix, name, entry_name_at, f->entries);
    return i == SLM_STRINDEX_NONE ? -1 : (int)i;
}

void slm_st_view(const slm_st_file *f, size_t i, slm_tensor *t) {
    SLM_ASSERT(i < f->n);
    const slm_st_entry *e = &f->entries[i];
    t->name = e->name;
    t->dtype = e->dtype;
    t->ndim = e->ndim;
    memset(t->shape, 0, sizeof(t->shape));
    memcpy(t->shape, e->shape, (size_t)e->ndim * sizeof(int64_t));
    t->data = f->map.data + f->data_start + e->begin;
    t->nbytes = (size_t)(e->end - e->begin);
}

/* ---- writer ---------------------------------------------------------------------------- */

void slm_st_writer_init(slm_st_writer *w) { memset(w, 0, sizeof(*w)); }

void slm_st_writer_free(slm_st_writer *w) {
    for (size_t i = 0; i < w->n; i++) slm_free(w->entries[i].name);
    for (size_t i = 0; i < w->n_meta; i++) { slm_free(w->meta_keys[i]); slm_free(w->meta_vals[i]); }
    slm_free(w->entries);
    slm_strindex_free(&w->ix);
    slm_free(w->meta_keys);
    slm_free(w->meta_vals);
    memset(w, 0, sizeof(*w));
}

int slm_st_writer_meta(slm_st_writer *w, const char *key, const char *val, slm_err *err) {
    void *k = w->meta_keys, *v = w->meta_vals;
    SLM_TRY(slm_realloc(&k, (w->n_meta + 1) * sizeof(char *), err, "metadata"));
    w->meta_keys = k;
    SLM_TRY(slm_realloc(&v, (w->n_meta + 1) * sizeof(char *), err, "metadata"));
    w->meta_vals = v;
    char *ks = slm_strdup(key, err), *vs = ks ? slm_strdup(val, err) : NULL;
    if (!vs) { slm_free(ks); return SLM_E_NOMEM; }
    w->meta_keys[w->n_meta] = ks;
    w->meta_vals[w->n_meta++] = vs;
    return SLM_OK;
}

static const char *writer_name_at(const void *ctx, size_t i) { return ((const slm_st_writer *)ctx)->entries[i].name; }

int slm_st_writer_add(slm_st_writer *w, const char *name, int dtype, int ndim, const int64_t *shape, slm_err *err) {
    SLM_ASSERT(!w->out && slm_st_dtype_name(dtype) && ndim >= 0 && ndim <= SLM_MAX_DIMS);
    if (slm_strindex_find(&w->ix, name, writer_name_at, w) != SLM_STRINDEX_NONE)
        return slm_errf(err, SLM_E_ARG, "duplicate tensor name '%s'", name);
    int64_t nelem;
    SLM_TRY(slm_shape_nelem(shape, ndim, &nelem, err));
    if (w->n == w->cap) {
        size_t nc = w->cap ? 2 * w->cap : 64;
        void *p = w->entries;
        SLM_TRY(slm_realloc(&p, nc * sizeof(slm_st_entry), err, "safetensors plan"));
        w->entries = p;
        w->cap = nc;
    }
    slm_st_entry *e = &w->entries[w->n];
    memset(e, 0, sizeof(*e));
    size_t dup;
    if (!(e->name = slm_strdup(name, err))) return SLM_E_NOMEM;
    int rc = slm_strindex_add(&w->ix, e->name, w->n, writer_name_at, w, &dup, err);
    if (rc) {
        slm_free(e->name);
        return rc;
    }
    e->dtype = dtype;
    e->ndim = ndim;
    memcpy(e->shape, shape, (size_t)ndim * sizeof(int64_t));
    e->begin = w->data_size;
    e->end = e->begin + (uint64_t)nelem * slm_dtype_get(dtype)->type_size;
    w->data_size = e->end;
    w->n++;
    return SLM_OK;
}

int slm_st_writer_begin(slm_st_writer *w, slm_afile *out, slm_err *err) {
    cJSON *root = cJSON_CreateObject();
    int rc = SLM_OK;
    char *json = NULL;
    if (!root) return slm_errf(err, SLM_E_NOMEM, "building safetensors header: out of memory");
    if (w->n_meta) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        for (size_t i = 0; m && i < w->n_meta; i++) cJSON_AddStringToObject(m, w->meta_keys[i], w->meta_vals[i]);
    }
    for (size_t i = 0; i < w->n; i++) {
        const slm_st_entry *e = &w->entries[i];
        cJSON *o = cJSON_AddObjectToObject(root, e->name);
        if (!o) break;
        cJSON_AddStringToObject(o, "dtype", slm_st_dtype_name(e->dtype));
        cJSON *sh = cJSON_AddArrayToObject(o, "shape");
        for (int d = 0; sh && d < e->ndim; d++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)e->shape[d]));
        cJSON *of = cJSON_AddArrayToObject(o, "data_offsets");
        if (of) {
            cJSON_AddItemToArray(of, cJSON_CreateNumber((double)e->begin));
            cJSON_AddItemToArray(of, cJSON_CreateNumber((double)e->end));
        }
    }
    json = cJSON_PrintUnformatted(root);
    if (!json) { rc = slm_errf(err, SLM_E_NOMEM, "building safetensors header: out of memory"); goto done; }
    size_t len = strlen(json), padded = slm_pad(len, 8);
    uint8_t hdr[8];
    slm_st_u64(hdr, padded);
    if ((rc = slm_afile_write(out, hdr, 8, err)) || (rc = slm_afile_write(out, json, len, err))) goto done;
    for (size_t i = len; i < padded && !rc; i++) rc = slm_afile_write(out, " ", 1, err);
    if (!rc) { w->out = out; w->next = 0; w->written = 0; }
done:
    free(json);
    cJSON_Delete(root);
    return rc;
}

int slm_st_writer_put(slm_st_writer *w, const void *data, size_t nbytes, slm_err *err) {
    SLM_ASSERT(w->out && w->next < w->n);
    const slm_st_entry *e = &w->entries[w->next];
    SLM_ASSERT(nbytes == e->end - e->begin && w->written == e->begin);
    SLM_TRY(slm_afile_write(w->out, data, nbytes, err));
    w->written += nbytes;
    w->next++;
    return SLM_OK;
}

int slm_st_writer_end(slm_st_writer *w, slm_err *err) {
    if (w->next != w->n) return slm_errf(err, SLM_E_ARG, "safetensors writer: %zu of %zu tensors written", w->next, w->n);
    return SLM_OK;
}
