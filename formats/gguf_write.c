/* gguf_write.c - GGUF v3 writer: the whole plan (types, sizes, offsets) is known before the
 * first byte is written; tensor data is then streamed one tensor at a time through an afile.
 * Must not: seek, or hold more than the caller's current tensor.
 */
#include <string.h>

#include "core/dtype.h"
#include "quantize/qtypes.h"
#include "core/le.h"
#include "core/mem.h"
#include "core/slm.h"
#include "gguf.h"

void slm_gguf_writer_init(slm_gguf_writer *w) {
    memset(w, 0, sizeof(*w));
    w->alignment = SLM_GGUF_DEFAULT_ALIGNMENT;
}

void slm_gguf_writer_free(slm_gguf_writer *w) {
    slm_kvs_free(&w->kv);
    slm_free(w->tensors);
    slm_strindex_free(&w->tix);
    memset(w, 0, sizeof(*w));
}

static const char *plan_name_at(const void *ctx, size_t i) { return ((const slm_gguf_writer *)ctx)->tensors[i].name; }

static size_t writer_alignment(const slm_gguf_writer *w) {
    const slm_gguf_val *a = slm_kvs_get(&w->kv, "general.alignment");
    if (a && a->type == SLM_GGUF_UINT32 && a->v.u32 && !(a->v.u32 & (a->v.u32 - 1))) return a->v.u32;
    return SLM_GGUF_DEFAULT_ALIGNMENT;
}

int slm_gguf_writer_add(slm_gguf_writer *w, const char *name, int type, int ndim, const int64_t *shape, slm_err *err) {
    SLM_ASSERT(!w->out); /* the plan is frozen once writing started */
    size_t nlen = strlen(name);
    if (nlen >= SLM_MAX_NAME)
        return slm_errf(err, SLM_E_ARG, "tensor name '%s' is %zu bytes (GGUF allows at most %d)", name, nlen, SLM_MAX_NAME - 1);
    size_t dup = slm_strindex_find(&w->tix, name, plan_name_at, w);
    if (dup != SLM_STRINDEX_NONE) return slm_errf(err, SLM_E_ARG, "duplicate tensor name '%s'", name);
    const slm_dtype_traits *tr = slm_dtype_get(type);
    SLM_ASSERT(tr && ndim >= 1 && ndim <= SLM_MAX_DIMS);
    int64_t nelem;
    SLM_TRY(slm_shape_nelem(shape, ndim, &nelem, err));
    int64_t ncols = shape[ndim - 1];
    if (ncols % tr->blck_size)
        return slm_errf(err, SLM_E_ARG, "tensor '%s': row length %lld is not a multiple of %s's block size %lld", name,
                        (long long)ncols, tr->name, (long long)tr->blck_size);
    size_t nbytes;
    if (!slm_mul_ok(slm_dtype_row_size(type, ncols), (size_t)(ncols ? nelem / ncols : 0), &nbytes))
        return slm_errf(err, SLM_E_ARG, "tensor '%s': size overflows", name);
    if (w->n_tensors == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 64;
        void *p = w->tensors;
        SLM_TRY(slm_realloc(&p, nc * sizeof(slm_gguf_tinfo), err, "tensor plan"));
        w->tensors = p;
        w->cap = nc;
    }
    w->alignment = writer_alignment(w);
    slm_gguf_tinfo *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof(*t));
    memcpy(t->name, name, nlen + 1);
    SLM_TRY(slm_strindex_add(&w->tix, t->name, w->n_tensors, plan_name_at, w, &dup, err));
    w->n_tensors++;
    t->type = type;
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof(int64_t));
    t->nbytes = nbytes;
    t->offset = w->data_size;
    w->data_size += slm_pad(nbytes, w->alignment);
    return SLM_OK;
}

/* ---- serialisation: one function per item, used for both the dry run and the real write */

typedef struct sink {
    slm_afile *f; /* NULL: count only */
    uint64_t n;
    slm_err *err;
    int rc;
} sink;

static void put(sink *s, const void *p, size_t n) {
    if (s->rc) return;
    s->n += n;
    if (s->f) s->rc = slm_afile_write(s->f, p, n, s->err);
}
static void put_u32(sink *s, uint32_t v) { uint8_t b[4]; slm_st_u32(b, v); put(s, b, 4); }
static void put_u64(sink *s, uint64_t v) { uint8_t b[8]; slm_st_u64(b, v); put(s, b, 8); }
static void put_str(sink *s, const char *p, uint64_t len) { put_u64(s, len); put(s, p, (size_t)len); }

static void put_val(sink *s, const slm_gguf_val *v) {
    switch (v->type) {
    case SLM_GGUF_STRING: put_str(s, v->v.str.s, v->v.str.len); return;
    case SLM_GGUF_ARRAY:
        put_u32(s, (uint32_t)v->v.arr.type);
        put_u64(s, v->v.arr.n);
        if (v->v.arr.type == SLM_GGUF_STRING) {
            const slm_gguf_str *a = v->v.arr.data;
            for (uint64_t i = 0; i < v->v.arr.n; i++) put_str(s, a[i].s, a[i].len);
        } else if (v->v.arr.type == SLM_GGUF_ARRAY) {
            const slm_gguf_val *a = v->v.arr.data;
            for (uint64_t i = 0; i < v->v.arr.n; i++) put_val(s, &a[i]);
        } else {
            put(s, v->v.arr.data, (size_t)v->v.arr.n * slm_gguf_scalar_size(v->v.arr.type));
        }
        return;
    default: put(s, &v->v, slm_gguf_scalar_size(v->type)); return;
    }
}

static void put_meta(sink *s, const slm_gguf_writer *w, size_t alignment) {
    put_u32(s, SLM_GGUF_MAGIC);
    put_u32(s, SLM_GGUF_VERSION);
    put_u64(s, w->n_tensors);
    put_u64(s, w->kv.n);
    for (size_t i = 0; i < w->kv.n; i++) {
        const slm_kv *kv = &w->kv.items[i];
        put_str(s, kv->key, strlen(kv->key));
        put_u32(s, (uint32_t)kv->val.type);
        put_val(s, &kv->val);
    }
    for (size_t i = 0; i < w->n_tensors; i++) {
        const slm_gguf_tinfo *t = &w->tensors[i];
        put_str(s, t->name, strlen(t->name));
        put_u32(s, (uint32_t)t->ndim);
        for (int d = t->ndim - 1; d >= 0; d--) put_u64(s, (uint64_t)t->shape[d]); /* row-major -> ne[] */
        put_u32(s, (uint32_t)t->type);
        put_u64(s, t->offset);
    }
    static const uint8_t zeros[256];
    if (w->n_tensors) {
        size_t padn = (size_t)(slm_pad(s->n, alignment) - s->n);
        while (padn) {
            size_t k = padn < sizeof zeros ? padn : sizeof zeros;
            put(s, zeros, k);
            padn -= k;
        }
    }
}

uint64_t slm_gguf_writer_meta_size(const slm_gguf_writer *w) {
    sink s = {NULL, 0, NULL, 0};
    put_meta(&s, w, writer_alignment(w));
    return s.n;
}

uint64_t slm_gguf_writer_file_size(const slm_gguf_writer *w) {
    uint64_t n = slm_gguf_writer_meta_size(w);
    if (w->n_tensors) n += w->data_size;
    return n;
}

int slm_gguf_writer_begin(slm_gguf_writer *w, slm_afile *out, slm_err *err) {
    SLM_ASSERT(!w->out && out->written == 0);
    /* alignment changes after tensors were planned would invalidate their offsets */
    SLM_ASSERT(writer_alignment(w) == w->alignment || w->n_tensors == 0);
    w->alignment = writer_alignment(w);
    sink s = {out, 0, err, 0};
    put_meta(&s, w, w->alignment);
    if (s.rc) return s.rc;
    w->out = out;
    w->data_start = out->written;
    w->next = 0;
    return SLM_OK;
}

int slm_gguf_writer_put_part(slm_gguf_writer *w, const void *data, size_t nbytes, slm_err *err) {
    SLM_ASSERT(w->out && w->next < w->n_tensors);
    const slm_gguf_tinfo *t = &w->tensors[w->next];
    uint64_t done = w->out->written - w->data_start - t->offset; /* bytes of this tensor so far */
    SLM_ASSERT(w->out->written - w->data_start >= t->offset && done + nbytes <= t->nbytes);
    SLM_TRY(slm_afile_write(w->out, data, nbytes, err));
    if (done + nbytes == t->nbytes) {
        SLM_TRY(slm_afile_pad(w->out, w->alignment, err));
        w->next++;
    }
    return SLM_OK;
}

uint8_t *slm_gguf_writer_space(slm_gguf_writer *w, size_t *room) {
    SLM_ASSERT(w->out && w->next < w->n_tensors);
    const slm_gguf_tinfo *t = &w->tensors[w->next];
    uint64_t done = w->out->written - w->data_start - t->offset;
    SLM_ASSERT(done < t->nbytes);
    uint8_t *p = slm_afile_space(w->out, room);
    if (*room > t->nbytes - done) *room = (size_t)(t->nbytes - done);
    return p;
}

int slm_gguf_writer_advance(slm_gguf_writer *w, size_t nbytes, slm_err *err) {
    SLM_ASSERT(w->out && w->next < w->n_tensors);
    const slm_gguf_tinfo *t = &w->tensors[w->next];
    uint64_t done = w->out->written - w->data_start - t->offset;
    SLM_ASSERT(done + nbytes <= t->nbytes);
    SLM_TRY(slm_afile_advance(w->out, nbytes, err));
    if (done + nbytes == t->nbytes) {
        SLM_TRY(slm_afile_pad(w->out, w->alignment, err));
        w->next++;
    }
    return SLM_OK;
}

int slm_gguf_writer_put(slm_gguf_writer *w, const void *data, size_t nbytes, slm_err *err) {
    SLM_ASSERT(w->out && w->next < w->n_tensors && nbytes == w->tensors[w->next].nbytes);
    SLM_ASSERT(w->out->written - w->data_start == w->tensors[w->next].offset);
    if (nbytes == 0) { /* an empty tensor still advances the plan */
        SLM_TRY(slm_afile_pad(w->out, w->alignment, err));
        w->next++;
        return SLM_OK;
    }
    return slm_gguf_writer_put_part(w, data, nbytes, err);
}

int slm_gguf_writer_end(slm_gguf_writer *w, slm_err *err) {
    SLM_ASSERT(w->out);
    if (w->next != w->n_tensors)
        return slm_errf(err, SLM_E_ARG, "GGUF writer: %zu of %zu tensors written", w->next, w->n_tensors);
    return SLM_OK;
}
