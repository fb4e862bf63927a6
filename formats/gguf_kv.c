/* gguf_kv.c - the ordered metadata store shared by the GGUF reader and writer.
 * Owns deep copies of keys and values; setters replace in place so KV order stays stable.
 * A hash index over the keys makes get/set O(1) (files may hold any number of keys); string
 * arrays are one allocation (headers, then the NUL-terminated bytes).
 * Must not: do file I/O.
 */
#include "gguf.h"
#include "gguf_impl.h"

#include <string.h>

#include "core/mem.h"
#include "core/slm.h"

static const char *k_type_names[SLM_GGUF_TYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};

const char *slm_gguf_type_name(int type) {
    return type >= 0 && type < SLM_GGUF_TYPE_COUNT ? k_type_names[type] : "unknown";
}

size_t slm_gguf_scalar_size(int type) {
    switch (type) {
    case SLM_GGUF_UINT8: case SLM_GGUF_INT8: case SLM_GGUF_BOOL: return 1;
    case SLM_GGUF_UINT16: case SLM_GGUF_INT16: return 2;
    case SLM_GGUF_UINT32: case SLM_GGUF_INT32: case SLM_GGUF_FLOAT32: return 4;
    case SLM_GGUF_UINT64: case SLM_GGUF_INT64: case SLM_GGUF_FLOAT64: return 8;
    }
    return 0;
}

void slm_gguf_val_free(slm_gguf_val *v) {
    if (v->type == SLM_GGUF_STRING) {
        slm_free(v->v.str.s);
    } else if (v->type == SLM_GGUF_ARRAY) {
        if (v->v.arr.type == SLM_GGUF_ARRAY) {
            slm_gguf_val *a = v->v.arr.data;
            for (uint64_t i = 0; a && i < v->v.arr.n; i++) slm_gguf_val_free(&a[i]);
        }
        slm_free(v->v.arr.data);
    }
    memset(v, 0, sizeof(*v));
}

static int copy_str(slm_gguf_str *dst, const slm_gguf_str *src, slm_err *err) {
    SLM_TRY(slm_alloc((void **)&dst->s, src->len + 1, err, "metadata string"));
    if (src->len) memcpy(dst->s, src->s, src->len);
    dst->s[src->len] = 0;
    dst->len = src->len;
    return SLM_OK;
}

int slm_gguf_str_array_alloc(slm_gguf_val *v, uint64_t n, size_t nbytes, char **bytes, slm_err *err) {
    size_t hdr, total;
    memset(v, 0, sizeof(*v));
    if (n > SIZE_MAX || !slm_mul_ok((size_t)n, sizeof(slm_gguf_str), &hdr) || !slm_add_ok(hdr, nbytes, &total))
        return slm_errf(err, SLM_E_NOMEM, "string array of %llu elements: size overflows", (unsigned long long)n);
    void *data;
    SLM_TRY(slm_alloc(&data, total, err, "string array"));
    memset(data, 0, hdr);
    v->type = SLM_GGUF_ARRAY;
    v->v.arr.type = SLM_GGUF_STRING;
    v->v.arr.n = n;
    v->v.arr.data = data;
    *bytes = (char *)data + hdr;
    return SLM_OK;
}

/* n strings (lens[i] bytes at strs[i]) into one block. */
static int str_array(slm_gguf_val *v, uint64_t n, const char *const *strs, const uint64_t *lens, const slm_gguf_str *src,
                     slm_err *err) {
    size_t nbytes = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len = src ? src[i].len : lens[i];
        if (len >= SIZE_MAX - nbytes) return slm_errf(err, SLM_E_NOMEM, "string array: size overflows");
        nbytes += (size_t)len + 1;
    }
    char *p;
    SLM_TRY(slm_gguf_str_array_alloc(v, n, nbytes, &p, err));
    slm_gguf_str *s = v->v.arr.data;
    for (uint64_t i = 0; i < n; i++) {
        s[i].len = src ? src[i].len : lens[i];
        s[i].s = p;
        if (s[i].len) memcpy(p, src ? src[i].s : strs[i], (size_t)s[i].len);
        p[s[i].len] = 0;
        p += s[i].len + 1;
    }
    return SLM_OK;
}

int slm_gguf_val_copy(slm_gguf_val *dst, const slm_gguf_val *src, slm_err *err) {
    memset(dst, 0, sizeof(*dst));
    if (src->type == SLM_GGUF_STRING) {
        SLM_TRY(copy_str(&dst->v.str, &src->v.str, err));
        dst->type = SLM_GGUF_STRING;
        return SLM_OK;
    }
    if (src->type != SLM_GGUF_ARRAY) {
        *dst = *src;
        return SLM_OK;
    }
    int et = src->v.arr.type;
    uint64_t n = src->v.arr.n;
    if (et == SLM_GGUF_STRING) return str_array(dst, n, NULL, NULL, src->v.arr.data, err);
    size_t esz = et == SLM_GGUF_ARRAY ? sizeof(slm_gguf_val) : slm_gguf_scalar_size(et);
    size_t nbytes;
    if (n > SIZE_MAX || !slm_mul_ok((size_t)n, esz, &nbytes)) return slm_errf(err, SLM_E_NOMEM, "metadata array too large");
    void *data;
    SLM_TRY(slm_calloc(&data, n ? (size_t)n : 1, esz, err, "metadata array"));
    dst->type = SLM_GGUF_ARRAY;
    dst->v.arr.type = et;
    dst->v.arr.data = data;
    if (et == SLM_GGUF_ARRAY) {
        for (uint64_t i = 0; i < n; i++) {
            int rc = slm_gguf_val_copy(&((slm_gguf_val *)data)[i], &((const slm_gguf_val *)src->v.arr.data)[i], err);
            if (rc) {
                dst->v.arr.n = i;
                slm_gguf_val_free(dst);
                return rc;
            }
        }
    } else if (nbytes) {
        memcpy(data, src->v.arr.data, nbytes);
    }
    dst->v.arr.n = n;
    return SLM_OK;
}

int slm_gguf_val_equal(const slm_gguf_val *a, const slm_gguf_val *b) {
    if (a->type != b->type) return 0;
    if (a->type == SLM_GGUF_STRING) return a->v.str.len == b->v.str.len && !memcmp(a->v.str.s, b->v.str.s, a->v.str.len);
    if (a->type != SLM_GGUF_ARRAY) return !memcmp(&a->v, &b->v, slm_gguf_scalar_size(a->type));
    if (a->v.arr.type != b->v.arr.type || a->v.arr.n != b->v.arr.n) return 0;
    for (uint64_t i = 0; i < a->v.arr.n; i++) {
        if (a->v.arr.type == SLM_GGUF_STRING) {
            const slm_gguf_str *x = &((const slm_gguf_str *)a->v.arr.data)[i], *y = &((const slm_gguf_str *)b->v.arr.data)[i];
            if (x->len != y->len || memcmp(x->s, y->s, x->len)) return 0;
        } else if (a->v.arr.type == SLM_GGUF_ARRAY) {
            if (!slm_gguf_val_equal(&((const slm_gguf_val *)a->v.arr.data)[i], &((const slm_gguf_val *)b->v.arr.data)[i])) return 0;
        }
    }
    if (a->v.arr.type == SLM_GGUF_STRING || a->v.arr.type == SLM_GGUF_ARRAY || a->v.arr.n == 0) return 1;
    return !memcmp(a->v.arr.data, b->v.arr.data, (size_t)a->v.arr.n * slm_gguf_scalar_size(a->v.arr.type));
}

static const char *key_at(const void *ctx, size_t i) { return ((const slm_kvs *)ctx)->items[i].key; }

static slm_kv *find(const slm_kvs *kv, const char *key) {
    size_t i = slm_strindex_find(&kv->ix, key, key_at, kv);
    return i == SLM_STRINDEX_NONE ? NULL : &kv->items[i];
}

int slm_kvs_put_owned(slm_kvs *kv, char *key, slm_gguf_val *v, slm_err *err) {
    int rc;
    size_t dup;
    if (kv->n == kv->cap) {
        size_t nc = kv->cap ? kv->cap * 2 : 32;
        void *p = kv->items;
        if ((rc = slm_realloc(&p, nc * sizeof(slm_kv), err, "metadata list"))) goto fail;
        kv->items = p;
        kv->cap = nc;
    }
    kv->items[kv->n].key = key; /* visible to the index's comparisons only once n counts it */
    if ((rc = slm_strindex_add(&kv->ix, key, kv->n, key_at, kv, &dup, err))) goto fail;
    if (dup != SLM_STRINDEX_NONE) { /* replace in place: the order is first insertion */
        slm_gguf_val_free(&kv->items[dup].val);
        kv->items[dup].val = *v;
        slm_free(key);
        return SLM_OK;
    }
    kv->items[kv->n].val = *v;
    kv->n++;
    return SLM_OK;
fail:
    slm_free(key);
    slm_gguf_val_free(v);
    return rc;
}

/* Takes ownership of *v (moved in; on failure it is freed). */
static int put(slm_kvs *kv, const char *key, slm_gguf_val *v, slm_err *err) {
    slm_kv *it = find(kv, key);
    if (it) {
        slm_gguf_val_free(&it->val);
        it->val = *v;
        return SLM_OK;
    }
    char *k = slm_strdup(key, err);
    if (!k) {
        slm_gguf_val_free(v);
        return SLM_E_NOMEM;
    }
    return slm_kvs_put_owned(kv, k, v, err);
}

static int set_scalar(slm_kvs *kv, const char *key, int type, const void *p, slm_err *err) {
    slm_gguf_val v;
    memset(&v, 0, sizeof v);
    v.type = type;
    memcpy(&v.v, p, slm_gguf_scalar_size(type));
    return put(kv, key, &v, err);
}

int slm_kvs_set_u32(slm_kvs *kv, const char *key, uint32_t x, slm_err *err) { return set_scalar(kv, key, SLM_GGUF_UINT32, &x, err); }
int slm_kvs_set_i32(slm_kvs *kv, const char *key, int32_t x, slm_err *err) { return set_scalar(kv, key, SLM_GGUF_INT32, &x, err); }
int slm_kvs_set_u64(slm_kvs *kv, const char *key, uint64_t x, slm_err *err) { return set_scalar(kv, key, SLM_GGUF_UINT64, &x, err); }
int slm_kvs_set_f32(slm_kvs *kv, const char *key, float x, slm_err *err) { return set_scalar(kv, key, SLM_GGUF_FLOAT32, &x, err); }
int slm_kvs_set_bool(slm_kvs *kv, const char *key, int x, slm_err *err) {
    uint8_t b = x ? 1 : 0;
    return set_scalar(kv, key, SLM_GGUF_BOOL, &b, err);
}

int slm_kvs_set_str(slm_kvs *kv, const char *key, const char *s, slm_err *err) {
    slm_gguf_val v;
    memset(&v, 0, sizeof v);
    slm_gguf_str src = {strlen(s), (char *)s};
    SLM_TRY(copy_str(&v.v.str, &src, err));
    v.type = SLM_GGUF_STRING;
    return put(kv, key, &v, err);
}

int slm_kvs_set_arr(slm_kvs *kv, const char *key, int elem_type, const void *data, uint64_t n, slm_err *err) {
    SLM_ASSERT(slm_gguf_scalar_size(elem_type) > 0);
    slm_gguf_val src, v;
    memset(&src, 0, sizeof src);
    src.type = SLM_GGUF_ARRAY;
    src.v.arr.type = elem_type;
    src.v.arr.n = n;
    src.v.arr.data = (void *)data;
    SLM_TRY(slm_gguf_val_copy(&v, &src, err));
    return put(kv, key, &v, err);
}

int slm_kvs_set_arr_str(slm_kvs *kv, const char *key, const char *const *strs, uint64_t n, slm_err *err) {
    slm_gguf_val v;
    uint64_t *lens;
    SLM_TRY(slm_calloc((void **)&lens, n ? (size_t)n : 1, sizeof(uint64_t), err, "string lengths"));
    for (uint64_t i = 0; i < n; i++) lens[i] = strlen(strs[i]);
    int rc = str_array(&v, n, strs, lens, NULL, err);
    slm_free(lens);
    return rc ? rc : put(kv, key, &v, err);
}

int slm_kvs_set_val(slm_kvs *kv, const char *key, const slm_gguf_val *src, slm_err *err) {
    slm_gguf_val v;
    SLM_TRY(slm_gguf_val_copy(&v, src, err));
    return put(kv, key, &v, err);
}

int slm_kvs_remove(slm_kvs *kv, const char *key) {
    slm_kv *it = find(kv, key);
    if (!it) return 0;
    slm_free(it->key);
    slm_gguf_val_free(&it->val);
    size_t i = (size_t)(it - kv->items);
    memmove(&kv->items[i], &kv->items[i + 1], (kv->n - i - 1) * sizeof(slm_kv));
    kv->n--;
    /* positions after i moved: re-index (rare; the table keeps its size, so nothing allocates) */
    slm_strindex_clear(&kv->ix);
    slm_err e;
    for (size_t j = 0; j < kv->n; j++) {
        size_t dup;
        int rc = slm_strindex_add(&kv->ix, kv->items[j].key, j, key_at, kv, &dup, &e);
        SLM_ASSERT(rc == SLM_OK && dup == SLM_STRINDEX_NONE);
    }
    return 1;
}

const slm_gguf_val *slm_kvs_get(const slm_kvs *kv, const char *key) {
    slm_kv *it = find(kv, key);
    return it ? &it->val : NULL;
}

static int lookup(const slm_kvs *kv, const char *key, const slm_gguf_val **v, slm_err *err) {
    *v = slm_kvs_get(kv, key);
    if (!*v) return slm_errf(err, SLM_E_FORMAT, "missing key '%s'", key);
    return SLM_OK;
}

static int wrong(const char *key, const char *want, const slm_gguf_val *v, slm_err *err) {
    return slm_errf(err, SLM_E_FORMAT, "key '%s': expected %s, found %s", key, want, slm_gguf_type_name(v->type));
}

int slm_kvs_get_i64(const slm_kvs *kv, const char *key, int64_t *out, slm_err *err) {
    const slm_gguf_val *v;
    SLM_TRY(lookup(kv, key, &v, err));
    switch (v->type) {
    case SLM_GGUF_UINT8: *out = v->v.u8; return SLM_OK;
    case SLM_GGUF_INT8: *out = v->v.i8; return SLM_OK;
    case SLM_GGUF_UINT16: *out = v->v.u16; return SLM_OK;
    case SLM_GGUF_INT16: *out = v->v.i16; return SLM_OK;
    case SLM_GGUF_UINT32: *out = v->v.u32; return SLM_OK;
    case SLM_GGUF_INT32: *out = v->v.i32; return SLM_OK;
    case SLM_GGUF_INT64: *out = v->v.i64; return SLM_OK;
    case SLM_GGUF_UINT64:
        if (v->v.u64 > INT64_MAX) return slm_errf(err, SLM_E_FORMAT, "key '%s': value out of range", key);
        *out = (int64_t)v->v.u64;
        return SLM_OK;
    }
    return wrong(key, "an integer", v, err);
}

int slm_kvs_get_u32(const slm_kvs *kv, const char *key, uint32_t *out, slm_err *err) {
    int64_t x;
    SLM_TRY(slm_kvs_get_i64(kv, key, &x, err));
    if (x < 0 || x > UINT32_MAX) return slm_errf(err, SLM_E_FORMAT, "key '%s': value %lld out of range", key, (long long)x);
    *out = (uint32_t)x;
    return SLM_OK;
}

int slm_kvs_get_f32(const slm_kvs *kv, const char *key, float *out, slm_err *err) {
    const slm_gguf_val *v;
    SLM_TRY(lookup(kv, key, &v, err));
    if (v->type == SLM_GGUF_FLOAT32) *out = v->v.f32;
    else if (v->type == SLM_GGUF_FLOAT64) *out = (float)v->v.f64;
    else return wrong(key, "a float", v, err);
    return SLM_OK;
}

int slm_kvs_get_bool(const slm_kvs *kv, const char *key, int *out, slm_err *err) {
    const slm_gguf_val *v;
    SLM_TRY(lookup(kv, key, &v, err));
    if (v->type != SLM_GGUF_BOOL) return wrong(key, "a bool", v, err);
    *out = v->v.b != 0;
    return SLM_OK;
}

int slm_kvs_get_str(const slm_kvs *kv, const char *key, const char **out, slm_err *err) {
    const slm_gguf_val *v;
    SLM_TRY(lookup(kv, key, &v, err));
    if (v->type != SLM_GGUF_STRING) return wrong(key, "a string", v, err);
    *out = v->v.str.s;
    return SLM_OK;
}

int slm_kvs_get_arr(const slm_kvs *kv, const char *key, int elem_type, const void **data, uint64_t *n, slm_err *err) {
    const slm_gguf_val *v;
    SLM_TRY(lookup(kv, key, &v, err));
    if (v->type != SLM_GGUF_ARRAY) return wrong(key, "an array", v, err);
    if (v->v.arr.type != elem_type)
        return slm_errf(err, SLM_E_FORMAT, "key '%s': expected an array of %s, found an array of %s", key,
                        slm_gguf_type_name(elem_type), slm_gguf_type_name(v->v.arr.type));
    *data = v->v.arr.data;
    *n = v->v.arr.n;
    return SLM_OK;
}

void slm_kvs_free(slm_kvs *kv) {
    for (size_t i = 0; i < kv->n; i++) {
        slm_free(kv->items[i].key);
        slm_gguf_val_free(&kv->items[i].val);
    }
    slm_free(kv->items);
    slm_strindex_free(&kv->ix);
    memset(kv, 0, sizeof(*kv));
}
