/* gguf_read.c - validating GGUF reader.
 *
 * Distrusts every number (ggml's gguf.cpp checks and a few more): magic, version (2 or 3;
 * a byte-swapped version gets a big-endian hint), counts against the bytes left, string and
 * array lengths, nesting depth, duplicate keys and tensor names, general.alignment (u32, power
 * of two), n_dims <= 4, dims >= 0, element-count overflow, known type ids, row length a
 * multiple of the block size, offsets equal to the running aligned sum, data inside the file.
 * Linear time: keys and tensor names are checked for duplicates through hash indexes. Memory:
 * values are moved into the store (held once), string arrays are one block, and everything
 * is charged against the metadata cap (gguf.h) before it is allocated.
 * Must not: print, or read past the map.
 */
#include <string.h>

#include "core/dtype.h"
#include "quantize/qtypes.h"
#include "core/le.h"
#include "core/mem.h"
#include "core/slm.h"
#include "gguf.h"
#include "gguf_impl.h"

#define MAX_DEPTH 4 /* nested arrays deeper than this are refused (stack safety) */

typedef struct cursor {
    const uint8_t *p;
    size_t size, off;
    size_t meta; /* bytes of memory the metadata read so far takes (see SLM_GGUF_META_FLOOR) */
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

/* A string's length, checked against the bytes left; the cursor stays on its first byte. */
static int rd_len(cursor *c, uint64_t *len, const char *what, slm_err *err) {
    SLM_TRY(rd_u64(c, len, what, err));
    if (*len > c->size - c->off)
        return slm_errf(err, SLM_E_FORMAT, "%s at byte %zu: length %llu past end of file", what, c->off - 8, (unsigned long long)*len);
    return SLM_OK;
}

/* Charges `bytes` of memory for the key or tensor `name` (name_len bytes, not necessarily
   NUL-terminated) against the cap, the header being known to reach at least header_end. */
static int charge(cursor *c, size_t bytes, size_t header_end, const char *kind, const char *name, size_t name_len, slm_err *err) {
    size_t limit = header_end > SIZE_MAX / 2 ? SIZE_MAX : SLM_MAX(SLM_GGUF_META_FLOOR, 2 * header_end);
    if (bytes <= limit && c->meta <= limit - bytes) {
        c->meta += bytes;
        return SLM_OK;
    }
    char want[32], cap[32];
    return slm_errf(err, SLM_E_UNSUPPORTED,
                    "%s '%.*s': metadata would take %s of memory, over the cap of %s (the larger of 64 MiB and twice the "
                    "%zu header bytes read)", kind, (int)SLM_MIN(name_len, 200), name,
                    slm_fmt_bytes(want, sizeof want, (double)c->meta + (double)bytes), slm_fmt_bytes(cap, sizeof cap, (double)limit),
                    header_end);
}

/* A string value of key `key`: charged, then copied with a NUL. */
static int rd_str(cursor *c, slm_gguf_str *s, const char *what, const char *key, slm_err *err) {
    uint64_t len;
    SLM_TRY(rd_len(c, &len, what, err));
    SLM_TRY(charge(c, (size_t)len + 1, c->off + (size_t)len, "key", key, strlen(key), err));
    SLM_TRY(slm_alloc((void **)&s->s, (size_t)len + 1, err, what));
    memcpy(s->s, c->p + c->off, (size_t)len);
    s->s[len] = 0;
    s->len = len;
    c->off += (size_t)len;
    return SLM_OK;
}

/* n strings into one block (slm_gguf_str_array_alloc): the lengths are checked and summed
   first, so the whole array is charged (and refused) before anything is allocated. */
static int rd_str_arr(cursor *c, slm_gguf_val *v, uint64_t n, const char *key, slm_err *err) {
    cursor t = *c;
    size_t nbytes = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len;
        SLM_TRY(rd_len(&t, &len, "string", err));
        t.off += (size_t)len;
        nbytes += (size_t)len + 1; /* < file size + n: no overflow */
    }
    SLM_TRY(charge(c, (size_t)n * sizeof(slm_gguf_str) + nbytes, t.off, "key", key, strlen(key), err));
    char *p;
    SLM_TRY(slm_gguf_str_array_alloc(v, n, nbytes, &p, err));
    slm_gguf_str *s = v->v.arr.data;
    for (uint64_t i = 0; i < n; i++) {
        s[i].len = slm_le_u64(c->p + c->off);
        s[i].s = p;
        memcpy(p, c->p + c->off + 8, (size_t)s[i].len);
        p[s[i].len] = 0;
        p += s[i].len + 1;
        c->off += 8 + (size_t)s[i].len;
    }
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
    if (et == SLM_GGUF_STRING) return rd_str_arr(c, v, n, key, err);
    size_t esz = et == SLM_GGUF_ARRAY ? sizeof(slm_gguf_val) : min, nbytes;
    if (!slm_mul_ok((size_t)n, esz, &nbytes)) return slm_errf(err, SLM_E_FORMAT, "key '%s': array too large", key);
    /* an allocation takes at least 16 bytes; the elements are known to reach c->off + n*min */
    SLM_TRY(charge(c, SLM_MAX(nbytes, 16), c->off + (size_t)n * min, "key", key, strlen(key), err));
    void *data;
    SLM_TRY(slm_calloc(&data, n ? (size_t)n : 1, esz, err, "metadata array"));
    v->type = SLM_GGUF_ARRAY;
    v->v.arr.type = (int)et;
    v->v.arr.data = data;
    v->v.arr.n = 0;
    if (et != SLM_GGUF_ARRAY) {
        memcpy(data, c->p + c->off, nbytes);
        c->off += nbytes;
        v->v.arr.n = n;
        if (et == SLM_GGUF_BOOL)
            for (uint64_t i = 0; i < n; i++)
                if (((uint8_t *)data)[i] > 1) return slm_errf(err, SLM_E_FORMAT, "key '%s': bool value %u", key, ((uint8_t *)data)[i]);
        return SLM_OK;
    }
    for (uint64_t i = 0; i < n; i++) {
        v->v.arr.n = i + 1; /* elements are zeroed, so a half-read one frees cleanly */
        SLM_TRY(rd_val(c, SLM_GGUF_ARRAY, &((slm_gguf_val *)data)[i], key, depth + 1, err));
    }
    return SLM_OK;
}

static int rd_val(cursor *c, int type, slm_gguf_val *v, const char *key, int depth, slm_err *err) {
    memset(v, 0, sizeof(*v));
    if (type < 0 || type >= SLM_GGUF_TYPE_COUNT) return slm_errf(err, SLM_E_FORMAT, "key '%s': unknown value type %d", key, type);
    if (type == SLM_GGUF_STRING) {
        v->type = SLM_GGUF_STRING;
        int rc = rd_str(c, &v->v.str, "string value", key, err);
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

/* Memory per key besides its value: the name's NUL, a list slot and the index. (The list
   doubles as it grows; its unused tail is never touched, so it takes no RAM.) */
#define KEY_BYTES (sizeof(slm_kv) + SLM_STRINDEX_BYTES_PER_NAME + 1)

static int read_kvs(cursor *c, slm_gguf *g, uint64_t n_kv, slm_err *err) {
    for (uint64_t i = 0; i < n_kv; i++) {
        uint64_t klen;
        SLM_TRY(rd_len(c, &klen, "key", err));
        const char *kf = (const char *)c->p + c->off;
        SLM_TRY(charge(c, (size_t)klen + KEY_BYTES, c->off + (size_t)klen, "key", kf, (size_t)klen, err));
        char *key;
        SLM_TRY(slm_alloc((void **)&key, (size_t)klen + 1, err, "key"));
        memcpy(key, kf, (size_t)klen);
        key[klen] = 0;
        c->off += (size_t)klen;
        uint32_t type;
        int rc = rd_u32(c, &type, "value type", err);
        if (!rc && slm_kvs_get(&g->kv, key)) rc = slm_errf(err, SLM_E_FORMAT, "duplicate key '%s'", key);
        slm_gguf_val v;
        memset(&v, 0, sizeof v);
        if (!rc) rc = rd_val(c, (int)type, &v, key, 0, err);
        if (rc) {
            slm_gguf_val_free(&v);
            slm_free(key);
            return rc;
        }
        SLM_TRY(slm_kvs_put_owned(&g->kv, key, &v, err)); /* moved in: the value is held once */
    }
    return SLM_OK;
}

static const char *tensor_name_at(const void *ctx, size_t i) { return ((const slm_gguf *)ctx)->tensors[i].name; }

/* Memory per tensor: its info and the name index (the table's untouched tail takes no RAM). */
#define TENSOR_BYTES (sizeof(slm_gguf_tinfo) + SLM_STRINDEX_BYTES_PER_NAME)

static int read_tinfo(cursor *c, slm_gguf *g, size_t i, slm_err *err) {
    slm_gguf_tinfo *t = &g->tensors[i];
    uint64_t len;
    SLM_TRY(rd_len(c, &len, "tensor name", err));
    const char *nf = (const char *)c->p + c->off;
    if (len >= SLM_MAX_NAME)
        return slm_errf(err, SLM_E_FORMAT, "tensor name '%.*s...' is %llu bytes (at most %d)", 40, nf, (unsigned long long)len,
                        SLM_MAX_NAME - 1);
    memcpy(t->name, nf, (size_t)len);
    t->name[len] = 0;
    c->off += (size_t)len;
    if (strlen(t->name) != len) return slm_errf(err, SLM_E_FORMAT, "tensor %zu: name contains a NUL byte", i);
    SLM_TRY(charge(c, TENSOR_BYTES, c->off, "tensor", t->name, (size_t)len, err));
    size_t dup;
    SLM_TRY(slm_strindex_add(&g->tix, t->name, i, tensor_name_at, g, &dup, err));
    if (dup != SLM_STRINDEX_NONE) return slm_errf(err, SLM_E_FORMAT, "duplicate tensor name '%s'", t->name);
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

/* The header is read from data[0 .. size); tensor data must lie inside a file of file_size
   bytes (file_size = size: the whole file is in memory). */
static int parse(slm_gguf *g, const uint8_t *data, size_t size, size_t file_size, slm_err *err) {
    memset(g, 0, sizeof(*g));
    g->map.data = data;
    g->map.size = size;
    g->header_only = file_size != size;
    cursor c = {data, size, 0, 0};
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
    /* the table grows as infos are read, so a count the file cannot back allocates nothing */
    for (size_t i = 0, cap = 0; i < (size_t)n_tensors; i++) {
        if (i == cap) {
            cap = cap ? 2 * cap : 64;
            void *p = g->tensors;
            if ((rc = slm_realloc(&p, cap * sizeof(slm_gguf_tinfo), err, "tensor infos"))) goto fail;
            g->tensors = p;
        }
        memset(&g->tensors[i], 0, sizeof(slm_gguf_tinfo));
        g->n_tensors = i + 1;
        if ((rc = read_tinfo(&c, g, i, err))) goto fail;
    }
    g->meta_bytes = c.meta;
    g->data_offset = n_tensors ? slm_pad(c.off, g->alignment) : c.off;
    uint64_t expect = 0;
    for (size_t i = 0; i < g->n_tensors; i++) {
        slm_gguf_tinfo *t = &g->tensors[i];
        if (t->offset != expect) {
            rc = slm_errf(err, SLM_E_FORMAT, "tensor '%s': data offset %llu, expected %llu (offsets must be contiguous and aligned to %zu)",
                          t->name, (unsigned long long)t->offset, (unsigned long long)expect, g->alignment);
            goto fail;
        }
        if (g->data_offset > file_size || t->nbytes > file_size - g->data_offset ||
            t->offset > file_size - g->data_offset - t->nbytes) {
            rc = slm_errf(err, SLM_E_FORMAT, "tensor '%s': data [%llu, +%zu) past end of file (%zu bytes of data)", t->name,
                          (unsigned long long)t->offset, t->nbytes, g->data_offset <= file_size ? file_size - g->data_offset : 0);
            goto fail;
        }
        expect = t->offset + slm_pad(t->nbytes, g->alignment);
    }
    return SLM_OK;
fail:
    slm_kvs_free(&g->kv);
    slm_free(g->tensors);
    slm_strindex_free(&g->tix);
    g->tensors = NULL;
    g->n_tensors = 0;
    return rc;
}

int slm_gguf_parse(slm_gguf *g, const uint8_t *data, size_t size, slm_err *err) { return parse(g, data, size, size, err); }

int slm_gguf_parse_header(slm_gguf *g, const uint8_t *head, size_t head_size, size_t file_size, slm_err *err) {
    if (file_size < head_size)
        return slm_errf(err, SLM_E_FORMAT, "GGUF header of %zu bytes in a file of %zu bytes", head_size, file_size);
    int rc = parse(g, head, head_size, file_size, err);
    if (!rc && g->n_tensors && g->data_offset != head_size) {
        rc = slm_errf(err, SLM_E_FORMAT, "GGUF header is %zu bytes, its tensor data starts at %zu", head_size, g->data_offset);
        slm_gguf_close(g);
    }
    if (!rc) g->header_only = 1;
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
    slm_strindex_free(&g->tix);
    if (g->map.path) slm_map_close(&g->map); /* parse() images are not ours to unmap */
    memset(g, 0, sizeof(*g));
}

int slm_gguf_find(const slm_gguf *g, const char *name) {
    size_t i = slm_strindex_find(&g->tix, name, tensor_name_at, g);
    return i == SLM_STRINDEX_NONE ? -1 : (int)i;
}

void slm_gguf_view(const slm_gguf *g, size_t i, slm_tensor *t) {
    SLM_ASSERT(i < g->n_tensors && !g->header_only);
    const slm_gguf_tinfo *ti = &g->tensors[i];
    t->name = ti->name;
    t->dtype = ti->type;
    t->ndim = ti->ndim;
    memcpy(t->shape, ti->shape, sizeof(t->shape));
    t->data = g->map.data + g->data_offset + ti->offset;
    t->nbytes = ti->nbytes;
}
