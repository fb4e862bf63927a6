/* gguf_read.c - validating GGUF reader.
 *
 * Distrusts every number (ggml's gguf.cpp checks and a few more): magic, version (2 or 3;
 * a byte-swapped version gets a big-endian hint), counts against the bytes left, string and
 * array lengths, nesting depth, duplicate keys and tensor names, general.alignment (u32, power
 * of two), n_dims <= 4, dims >= 0, element-count overflow, known type ids, row length a
 * multiple of the block size, offsets equal to the running aligned sum, data inside the file.
 * Must not: print, or read past the map.
 */
#include <string.h>

#include "core/dtype.h"
#include "quantize/qtypes.h"
#include "core/le.h"
#include "core/mem.h"
#include "core/slm.h"
#include "gguf.h"

#define MAX_DEPTH 4 /* nested arrays deeper than this are refused (stack safety) */

typedef struct cursor {
    const uint8_t *p;
    size_t size, off;
} cursor;

static int need(cursor *c, size_t n, const char *what, slm_err *err) {
    if (n > c->size - c->off)
        return slm_errf(err, SLM_E_FORMAT, "truncated at byte %zu reading %s (file has %zu bytes)", c->off, what, c->size);
    return SLM_OK;
}

static int rd_u32(cursor *c, uint32_t *v, const char *what, slm_err *err) {
    SLM_TRY(need(c, 4, what, err));
    *v = slm_le_u32(c->p + c->off);
    c->off += 4;
    return SLM_OK;
}

static int rd_u64(cursor *c, uint64_t *v, const char *what, slm_err *err) {
    SLM_TRY(need(c, 8, what, err));
    *v = slm_le_u64(c->p + c->off);
    c->off += 8;
    return SLM_OK;
}

static int rd_str(cursor *c, slm_gguf_str *s, const char *what, slm_err *err) {
    uint64_t len;
    SLM_TRY(rd_u64(c, &len, what, err));
    if (len > c->size - c->off)
        return slm_errf(err, SLM_E_FORMAT, "%s at byte %zu: length %llu past end of file", what, c->off - 8, (unsigned long long)len);
    SLM_TRY(slm_alloc((void **)&s->s, (size_t)len + 1, err, what));
    memcpy(s->s, c->p + c->off, (size_t)len);
    s->s[len] = 0;
    s->len = len;
    c->off += (size_t)len;
    return SLM_OK;
}

static int rd_val(cursor *c, int type, slm_gguf_val *v, const char *key, int depth, slm_err *err);

static int rd_arr(cursor *c, slm_gguf_val *v, const char *key, int depth, slm_err *err) {
    uint32_t et;
    uint64_t n;
    SLM_TRY(rd_u32(c, &et, "array type", err));
    SLM_TRY(rd_u64(c, &n, "array length", err));
    if (et >= SLM_GGUF_TYPE_COUNT) return slm_errf(err, SLM_E_FORMAT, "key '%s': array of unknown type %u", key, et);
    if (et == SLM_GGUF_ARRAY && depth >= MAX_DEPTH)
        return slm_errf(err, SLM_E_FORMAT, "key '%s': arrays nested deeper than %d", key, MAX_DEPTH);
    /* every element takes at least min bytes: refuse counts the rest of the file cannot hold */
    size_t min = et == SLM_GGUF_STRING ? 8 : et == SLM_GGUF_ARRAY ? 12 : slm_gguf_scalar_size(et);
    if (n > (c->size - c->off) / min)
        return slm_errf(err, SLM_E_FORMAT, "key '%s': array of %llu elements past end of file", key, (unsigned long long)n);
    size_t esz = et == SLM_GGUF_STRING ? sizeof(slm_gguf_str) : et == SLM_GGUF_ARRAY ? sizeof(slm_gguf_val) : min;
    void *data;
    SLM_TRY(slm_calloc(&data, n ? (size_t)n : 1, esz, err, "metadata array"));
    v->type = SLM_GGUF_ARRAY;
    v->v.arr.type = (int)et;
    v->v.arr.data = data;
    v->v.arr.n = 0;
    if (et != SLM_GGUF_STRING && et != SLM_GGUF_ARRAY) {
        memcpy(data, c->p + c->off, (size_t)n * esz);
        c->off += (size_t)n * esz;
        v->v.arr.n = n;
        if (et == SLM_GGUF_BOOL)
            for (uint64_t i = 0; i < n; i++)
                if (((uint8_t *)data)[i] > 1) return slm_errf(err, SLM_E_FORMAT, "key '%s': bool value %u", key, ((uint8_t *)data)[i]);
        return SLM_OK;
    }
    for (uint64_t i = 0; i < n; i++) {
        v->v.arr.n = i + 1; /* elements are zeroed, so a half-read one frees cleanly */
        int rc = et == SLM_GGUF_STRING ? rd_str(c, &((slm_gguf_str *)data)[i], "string", err)
                                       : rd_val(c, SLM_GGUF_ARRAY, &((slm_gguf_val *)data)[i], key, depth + 1, err);
        if (rc) return rc;
    }
    return SLM_OK;
}

static int rd_val(cursor *c, int type, slm_gguf_val *v, const char *key, int depth, slm_err *err) {
    memset(v, 0, sizeof(*v));
    if (type < 0 || type >= SLM_GGUF_TYPE_COUNT) return slm_errf(err, SLM_E_FORMAT, "key '%s': unknown value type %d", key, type);
    if (type == SLM_GGUF_STRING) {
        v->type = SLM_GGUF_STRING;
        int rc = rd_str(c, &v->v.str, "string value", err);
        if (rc) v->type = 0;
        return rc;
    }
    if (type == SLM_GGUF_ARRAY) return rd_arr(c, v, key, depth, err);
    size_t n = slm_gguf_scalar_size(type);
    SLM_TRY(need(c, n, key, err));
    memcpy(&v->v, c->p + c->off, n);
    c->off += n;
    v->type = type;
    if (type == SLM_GGUF_BOOL && v->v.b > 1) return slm_errf(err, SLM_E_FORMAT, "key '%s': bool value %u", key, v->v.b);
    return SLM_OK;
}

static int read_kvs(cursor *c, slm_gguf *g, uint64_t n_kv, slm_err *err) {
    for (uint64_t i = 0; i < n_kv; i++) {
        slm_gguf_str key = {0, NULL};
        SLM_TRY(rd_str(c, &key, "key", err));
        uint32_t type;
        int rc = rd_u32(c, &type, "value type", err);
        if (!rc && slm_kvs_get(&g->kv, key.s)) rc = slm_errf(err, SLM_E_FORMAT, "duplicate key '%s'", key.s);
        slm_gguf_val v;
        memset(&v, 0, sizeof v);
        if (!rc) rc = rd_val(c, (int)type, &v, key.s, 0, err);
        if (!rc) rc = slm_kvs_set_val(&g->kv, key.s, &v, err);
        slm_gguf_val_free(&v);
        slm_free(key.s);
        if (rc) return rc;
    }
    return SLM_OK;
}

static int read_tinfo(cursor *c, slm_gguf *g, size_t i, slm_err *err) {
    slm_gguf_tinfo *t = &g->tensors[i];
    slm_gguf_str name = {0, NULL};
    SLM_TRY(rd_str(c, &name, "tensor name", err));
    if (name.len >= SLM_MAX_NAME) {
        int rc = slm_errf(err, SLM_E_FORMAT, "tensor name '%.40s...' is %llu bytes (at most %d)", name.s,
                          (unsigned long long)name.len, SLM_MAX_NAME - 1);
        slm_free(name.s);
        return rc;
    }
    memcpy(t->name, name.s, name.len + 1);
    slm_free(name.s);
    if (strlen(t->name) != name.len) return slm_errf(err, SLM_E_FORMAT, "tensor %zu: name contains a NUL byte", i);
    for (size_t j = 0; j < i; j++)
        if (!strcmp(g->tensors[j].name, t->name)) return slm_errf(err, SLM_E_FORMAT, "duplicate tensor name '%s'", t->name);
    uint32_t nd, type;
    SLM_TRY(rd_u32(c, &nd, "n_dims", err));
    if (nd > SLM_MAX_DIMS) return slm_errf(err, SLM_E_FORMAT, "tensor '%s': %u dimensions (at most %d)", t->name, nd, SLM_MAX_DIMS);
    t->ndim = (int)nd;
    int64_t ne[SLM_MAX_DIMS];
    for (uint32_t d = 0; d < nd; d++) {
        uint64_t x;
        SLM_TRY(rd_u64(c, &x, "dimension", err));
        if (x > INT64_MAX) return slm_errf(err, SLM_E_FORMAT, "tensor '%s': dimension %u is negative", t->name, d);
        ne[d] = (int64_t)x;
        t->shape[nd - 1 - d] = (int64_t)x; /* ggml ne[] -> row-major */
    }
    SLM_TRY(rd_u32(c, &type, "tensor type", err));
    SLM_TRY(rd_u64(c, &t->offset, "tensor offset", err));
    const slm_dtype_traits *tr = slm_dtype_get((int)type);
    if (!tr) return slm_errf(err, SLM_E_FORMAT, "tensor '%s': unknown type id %u", t->name, type);
    t->type = (int)type;
    int64_t nelem;
    if (slm_shape_nelem(t->shape, t->ndim, &nelem, err))
        return slm_errf(err, SLM_E_FORMAT, "tensor '%s': element count overflows", t->name);
    int64_t ne0 = nd ? ne[0] : 1;
    if (ne0 % tr->blck_size)
        return slm_errf(err, SLM_E_FORMAT, "tensor '%s': row length %lld is not a multiple of %s's block size %lld", t->name,
                        (long long)ne0, tr->name, (long long)tr->blck_size);
    size_t rowb = slm_dtype_row_size(t->type, ne0), nb;
    if ((ne0 && !rowb) || !slm_mul_ok(rowb, (size_t)(ne0 ? nelem / ne0 : 0), &nb))
        return slm_errf(err, SLM_E_FORMAT, "tensor '%s': byte size overflows", t->name);
    t->nbytes = nb;
    return SLM_OK;
}

int slm_gguf_parse(slm_gguf *g, const uint8_t *data, size_t size, slm_err *err) {
    memset(g, 0, sizeof(*g));
    g->map.data = data;
    g->map.size = size;
    cursor c = {data, size, 0};
    uint32_t version;
    uint64_t n_tensors, n_kv;
    int rc;
    if (size < 4 || slm_le_u32(data) != SLM_GGUF_MAGIC) {
        if (size < 4) return slm_errf(err, SLM_E_FORMAT, "not a GGUF file (%zu bytes)", size);
        return slm_errf(err, SLM_E_FORMAT, "not a GGUF file (bad magic %02x %02x %02x %02x)", data[0], data[1], data[2], data[3]);
    }
    c.off = 4;
    if ((rc = rd_u32(&c, &version, "version", err))) return rc;
    if (version == 0x03000000u || version == 0x02000000u)
        return slm_errf(err, SLM_E_FORMAT, "GGUF version looks byte-swapped (big-endian file?); slm reads little-endian GGUF");
    if (version < 2 || version > 3) return slm_errf(err, SLM_E_FORMAT, "unsupported GGUF version %u (slm reads 2 and 3)", version);
    g->version = version;
    if ((rc = rd_u64(&c, &n_tensors, "tensor count", err)) || (rc = rd_u64(&c, &n_kv, "metadata count", err))) return rc;
    if (n_kv > (size - c.off) / 12)
        return slm_errf(err, SLM_E_FORMAT, "metadata count %llu too large for a %zu-byte file", (unsigned long long)n_kv, size);
    if (n_tensors > (size - c.off) / 24)
        return slm_errf(err, SLM_E_FORMAT, "tensor count %llu too large for a %zu-byte file", (unsigned long long)n_tensors, size);
    if ((rc = read_kvs(&c, g, n_kv, err))) goto fail;
    g->alignment = SLM_GGUF_DEFAULT_ALIGNMENT;
    const slm_gguf_val *al = slm_kvs_get(&g->kv, "general.alignment");
    if (al) {
        if (al->type != SLM_GGUF_UINT32) {
            rc = slm_errf(err, SLM_E_FORMAT, "general.alignment has type %s (must be u32)", slm_gguf_type_name(al->type));
            goto fail;
        }
        if (al->v.u32 == 0 || (al->v.u32 & (al->v.u32 - 1))) {
            rc = slm_errf(err, SLM_E_FORMAT, "general.alignment %u is not a power of two", al->v.u32);
            goto fail;
        }
        g->alignment = al->v.u32;
    }
    if ((rc = slm_calloc((void **)&g->tensors, n_tensors ? (size_t)n_tensors : 1, sizeof(slm_gguf_tinfo), err, "tensor infos"))) goto fail;
    g->n_tensors = (size_t)n_tensors;
    for (size_t i = 0; i < g->n_tensors; i++)
        if ((rc = read_tinfo(&c, g, i, err))) goto fail;
    g->data_offset = n_tensors ? slm_pad(c.off, g->alignment) : c.off;
    uint64_t expect = 0;
    for (size_t i = 0; i < g->n_tensors; i++) {
        slm_gguf_tinfo *t = &g->tensors[i];
        if (t->offset != expect) {
            rc = slm_errf(err, SLM_E_FORMAT, "tensor '%s': data offset %llu, expected %llu (offsets must be contiguous and aligned to %zu)",
                          t->name, (unsigned long long)t->offset, (unsigned long long)expect, g->alignment);
            goto fail;
        }
        if (g->data_offset > size || t->nbytes > size - g->data_offset || t->offset > size - g->data_offset - t->nbytes) {
            rc = slm_errf(err, SLM_E_FORMAT, "tensor '%s': data [%llu, +%zu) past end of file (%zu bytes of data)", t->name,
                          (unsigned long long)t->offset, t->nbytes, g->data_offset <= size ? size - g->data_offset : 0);
            goto fail;
        }
        expect = t->offset + slm_pad(t->nbytes, g->alignment);
    }
    return SLM_OK;
fail:
    slm_kvs_free(&g->kv);
    slm_free(g->tensors);
    g->tensors = NULL;
    g->n_tensors = 0;
    return rc;
}

int slm_gguf_open(slm_gguf *g, const char *path, slm_err *err) {
    slm_map m;
    memset(g, 0, sizeof(*g));
    SLM_TRY(slm_map_open(&m, path, err));
    int rc = slm_gguf_parse(g, m.data, m.size, err);
    if (rc) {
        slm_err_prefix(err, "%s", path);
        slm_map_close(&m);
        memset(g, 0, sizeof(*g));
        return rc;
    }
    g->map = m;
    return SLM_OK;
}

void slm_gguf_close(slm_gguf *g) {
    slm_kvs_free(&g->kv);
    slm_free(g->tensors);
    if (g->map.path) slm_map_close(&g->map); /* parse() images are not ours to unmap */
    memset(g, 0, sizeof(*g));
}

int slm_gguf_find(const slm_gguf *g, const char *name) {
    for (size_t i = 0; i < g->n_tensors; i++)
        if (!strcmp(g->tensors[i].name, name)) return (int)i;
    return -1;
}

void slm_gguf_view(const slm_gguf *g, size_t i, slm_tensor *t) {
    SLM_ASSERT(i < g->n_tensors);
    const slm_gguf_tinfo *ti = &g->tensors[i];
    t->name = ti->name;
    t->dtype = ti->type;
    t->ndim = ti->ndim;
    memcpy(t->shape, ti->shape, sizeof(t->shape));
    t->data = g->map.data + g->data_offset + ti->offset;
    t->nbytes = ti->nbytes;
}
