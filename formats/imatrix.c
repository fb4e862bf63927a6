/* imatrix.c - importance matrices: the two file formats llama-imatrix writes (GGUF, legacy
 * .dat), byte-exact writers of both, and llama-quantize's turn of sums and counts into the
 * per-column weights it hands to ggml_quantize_chunk (llama.cpp v0.5.0; see imatrix.h).
 * Must not: print, trust a number read from a file, or hold a file map after loading
 * (everything is copied: entries are small, and weights must outlive the file).
 */
#include "imatrix.h"

#include <math.h>
#include <string.h>

#include "core/afile.h"
#include "core/dtype.h"
#include "quantize/qtypes.h"
#include "core/le.h"
#include "core/mapfile.h"
#include "core/mem.h"
#include "core/slm.h"

static const char SFX_SUM2[] = ".in_sum2";
static const char SFX_COUNTS[] = ".counts";
#define LEGACY_MIN_ENTRY 17 /* int32 len, >= 1 name byte, int32 ncall, int32 nval, >= 1 float */

/* ---- entries ------------------------------------------------------------------------- */

static void entry_free(slm_imatrix_entry *e) {
    slm_free(e->in_sum2);
    slm_free(e->counts);
    slm_free(e->weights);
    memset(e, 0, sizeof(*e));
}

void slm_imatrix_free(slm_imatrix *im) {
    for (size_t i = 0; i < im->n_entries; i++) entry_free(&im->entries[i]);
    slm_free(im->entries);
    for (size_t i = 0; i < im->n_datasets; i++) slm_free(im->datasets[i]);
    slm_free(im->datasets);
    slm_kvs_free(&im->extra_kv);
    for (size_t i = 0; i < im->n_extras; i++) slm_free(im->extras[i].data);
    slm_free(im->extras);
    memset(im, 0, sizeof(*im));
}

static int has_suffix(const char *s, const char *sfx) {
    size_t n = strlen(s), k = strlen(sfx);
    return n >= k && !memcmp(s + n - k, sfx, k);
}

/* Allocates the arrays of a zeroed entry for n_mat x ncols values. */
static int entry_alloc(slm_imatrix_entry *e, const char *name, int64_t ncols, int64_t n_mat, int code, slm_err *err) {
    size_t nlen = strlen(name), nval, nbytes;
    if (nlen == 0 || nlen >= SLM_MAX_NAME)
        return slm_errf(err, code, "entry name '%.63s' is %zu bytes (must be 1..%d)", name, nlen, SLM_MAX_NAME - 1);
    if (ncols < 1 || n_mat < 1 || !slm_mul_ok((size_t)ncols, (size_t)n_mat, &nval) || !slm_mul_ok(nval, sizeof(float), &nbytes))
        return slm_errf(err, code, "entry '%s': %lld x %lld values", name, (long long)n_mat, (long long)ncols);
    memcpy(e->name, name, nlen + 1);
    e->ncols = ncols;
    e->n_mat = n_mat;
    SLM_TRY(slm_alloc((void **)&e->in_sum2, nbytes, err, "imatrix sums"));
    SLM_TRY(slm_alloc((void **)&e->weights, nbytes, err, "imatrix weights"));
    return slm_calloc((void **)&e->counts, (size_t)n_mat, sizeof(int64_t), err, "imatrix counts");
}

/* Sums of squares are finite and >= 0; counts >= 0. SLM_E_DATA names the first bad value. */
static int entry_check_values(const slm_imatrix_entry *e, slm_err *err) {
    for (int64_t m = 0; m < e->n_mat; m++) {
        if (e->counts[m] < 0)
            return slm_errf(err, SLM_E_DATA, "entry '%s': counts[%lld] = %lld (must be >= 0)", e->name, (long long)m,
                            (long long)e->counts[m]);
        for (int64_t i = 0; i < e->ncols; i++) {
            float v = e->in_sum2[m * e->ncols + i];
            if (isfinite(v) && v >= 0) continue;
            if (e->n_mat == 1)
                return slm_errf(err, SLM_E_DATA, "entry '%s': in_sum2[%lld] is %g (must be finite and >= 0)", e->name,
                                (long long)i, v);
            return slm_errf(err, SLM_E_DATA, "entry '%s': in_sum2[%lld][%lld] is %g (must be finite and >= 0)", e->name,
                            (long long)m, (long long)i, v);
        }
    }
    return SLM_OK;
}

/* llama-quantize's load_imatrix (tools/quantize/quantize.cpp), float for float:
 *   GGUF:   count = (float) lround(counts_f32[m]); w = count > 0 ? sum / count : 1
 *   legacy: w = ncall > 0 ? sum / ncall : sum      (float / int64_t: ncall becomes float)
 * Counts are whole numbers here (the reader refuses others), so lround is the identity. */
static void entry_weights(slm_imatrix_entry *e, int format) {
    for (int64_t m = 0; m < e->n_mat; m++) {
        const float *s = e->in_sum2 + m * e->ncols;
        float *w = e->weights + m * e->ncols;
        if (format == SLM_IMATRIX_LEGACY) {
            const int64_t ncall = e->counts[0];
            for (int64_t i = 0; i < e->ncols; i++) w[i] = ncall > 0 ? s[i] / (float)ncall : s[i];
        } else {
            const float count = (float)e->counts[m];
            for (int64_t i = 0; i < e->ncols; i++) w[i] = count > 0.0f ? s[i] / count : 1.0f;
        }
    }
}

/* Index of the first entry with name >= key (entries are sorted by strcmp). */
static size_t lower_bound(const slm_imatrix *im, const char *key) {
    size_t lo = 0, hi = im->n_entries;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(im->entries[mid].name, key) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Validates *e, computes its weights and moves it into im at its sorted place (im owns it
   afterwards; on failure e is freed). */
static int entry_insert(slm_imatrix *im, slm_imatrix_entry *e, slm_err *err) {
    int rc = entry_check_values(e, err);
    size_t at = lower_bound(im, e->name);
    if (!rc && at < im->n_entries && !strcmp(im->entries[at].name, e->name))
        rc = slm_errf(err, SLM_E_FORMAT, "duplicate entry '%s'", e->name);
    if (!rc && im->n_entries == im->cap) {
        size_t nc = im->cap ? im->cap * 2 : 64;
        void *p = im->entries;
        rc = slm_realloc(&p, nc * sizeof(slm_imatrix_entry), err, "imatrix entries");
        if (!rc) {
            im->entries = p;
            im->cap = nc;
        }
    }
    if (rc) {
        entry_free(e);
        return rc;
    }
    entry_weights(e, im->format);
    memmove(&im->entries[at + 1], &im->entries[at], (im->n_entries - at) * sizeof(slm_imatrix_entry));
    im->entries[at] = *e;
    im->n_entries++;
    memset(e, 0, sizeof(*e));
    return SLM_OK;
}

int slm_imatrix_add(slm_imatrix *im, const char *name, int64_t ncols, int64_t n_mat, const float *in_sum2,
                    const int64_t *counts, slm_err *err) {
    if (im->format == SLM_IMATRIX_LEGACY && n_mat != 1)
        return slm_errf(err, SLM_E_ARG, "entry '%s': legacy imatrix data has one matrix per entry, not %lld", name,
                        (long long)n_mat);
    if (slm_imatrix_find(im, name)) return slm_errf(err, SLM_E_ARG, "duplicate entry '%s'", name);
    slm_imatrix_entry e;
    memset(&e, 0, sizeof e);
    int rc = entry_alloc(&e, name, ncols, n_mat, SLM_E_ARG, err);
    if (rc) {
        entry_free(&e);
        return rc;
    }
    memcpy(e.in_sum2, in_sum2, (size_t)(ncols * n_mat) * sizeof(float));
    if (counts) memcpy(e.counts, counts, (size_t)n_mat * sizeof(int64_t));
    return entry_insert(im, &e, err);
}

int slm_imatrix_add_dataset(slm_imatrix *im, const char *dataset, slm_err *err) {
    void *p = im->datasets;
    SLM_TRY(slm_realloc(&p, (im->n_datasets + 1) * sizeof(char *), err, "imatrix datasets"));
    im->datasets = p;
    char *s = slm_strdup(dataset, err);
    if (!s) return err->code;
    im->datasets[im->n_datasets++] = s;
    return SLM_OK;
}

int slm_imatrix_add_extra(slm_imatrix *im, const char *name, int dtype, int ndim, const int64_t *shape, const void *data,
                          size_t nbytes, slm_err *err) {
    size_t nlen = strlen(name);
    if (nlen == 0 || nlen >= SLM_MAX_NAME)
        return slm_errf(err, SLM_E_ARG, "extra tensor name '%.63s' is %zu bytes (must be 1..%d)", name, nlen, SLM_MAX_NAME - 1);
    if (has_suffix(name, SFX_SUM2) || has_suffix(name, SFX_COUNTS))
        return slm_errf(err, SLM_E_ARG, "extra tensor '%s': names ending in .in_sum2 or .counts are imatrix entries", name);
    const slm_dtype_traits *tr = slm_dtype_get(dtype);
    if (!tr || ndim < 1 || ndim > SLM_MAX_DIMS) return slm_errf(err, SLM_E_ARG, "extra tensor '%s': bad type or rank", name);
    int64_t nelem;
    SLM_TRY(slm_shape_nelem(shape, ndim, &nelem, err));
    int64_t ncols = shape[ndim - 1];
    size_t want;
    if (ncols % tr->blck_size || !slm_mul_ok(slm_dtype_row_size(dtype, ncols), (size_t)(ncols ? nelem / ncols : 0), &want) ||
        want != nbytes)
        return slm_errf(err, SLM_E_ARG, "extra tensor '%s': %zu bytes do not match its type and shape", name, nbytes);
    for (size_t i = 0; i < im->n_extras; i++)
        if (!strcmp(im->extras[i].name, name)) return slm_errf(err, SLM_E_FORMAT, "duplicate extra tensor '%s'", name);
    void *p = im->extras;
    SLM_TRY(slm_realloc(&p, (im->n_extras + 1) * sizeof(slm_imatrix_extra), err, "imatrix extra tensors"));
    im->extras = p;
    slm_imatrix_extra *x = &im->extras[im->n_extras];
    memset(x, 0, sizeof(*x));
    SLM_TRY(slm_alloc(&x->data, nbytes, err, name));
    if (nbytes) memcpy(x->data, data, nbytes);
    memcpy(x->name, name, nlen + 1);
    x->dtype = dtype;
    x->ndim = ndim;
    memcpy(x->shape, shape, (size_t)ndim * sizeof(int64_t));
    x->nbytes = nbytes;
    im->n_extras++;
    return SLM_OK;
}

/* ---- GGUF reader ------------------------------------------------------------------------
 * llama-imatrix (save_imatrix): general.type = "imatrix", imatrix.datasets = [string],
 * imatrix.chunk_count = u32, imatrix.chunk_size = u32; per entry in name order the F32
 * tensors "<name>.in_sum2" ne = [ncols, n_mat] and "<name>.counts" ne = [1, n_mat]. */

static int read_gguf_key(slm_imatrix *im, const slm_kv *kv, int *have, slm_err *err) {
    const slm_gguf_val *v = &kv->val;
    if (!strcmp(kv->key, "general.type")) {
        if (v->type != SLM_GGUF_STRING) return slm_errf(err, SLM_E_FORMAT, "general.type has type %s", slm_gguf_type_name(v->type));
        if (strcmp(v->v.str.s, "imatrix"))
            return slm_errf(err, SLM_E_FORMAT, "general.type is '%.64s', not 'imatrix' (a model GGUF?)", v->v.str.s);
        return SLM_OK;
    }
    if (!strcmp(kv->key, "imatrix.datasets")) {
        if (v->type != SLM_GGUF_ARRAY || v->v.arr.type != SLM_GGUF_STRING)
            return slm_errf(err, SLM_E_FORMAT, "key 'imatrix.datasets' has type %s (must be an array of strings)",
                            v->type == SLM_GGUF_ARRAY ? "array of non-strings" : slm_gguf_type_name(v->type));
        const slm_gguf_str *s = v->v.arr.data;
        for (uint64_t i = 0; i < v->v.arr.n; i++) {
            if (strlen(s[i].s) != s[i].len)
                return slm_errf(err, SLM_E_FORMAT, "imatrix.datasets[%llu] contains a NUL byte", (unsigned long long)i);
            SLM_TRY(slm_imatrix_add_dataset(im, s[i].s, err));
        }
        *have |= 1;
        return SLM_OK;
    }
    int is_count = !strcmp(kv->key, "imatrix.chunk_count"), is_size = !strcmp(kv->key, "imatrix.chunk_size");
    if (is_count || is_size) {
        if (v->type != SLM_GGUF_UINT32) /* llama.cpp reads both with gguf_get_val_u32 */
            return slm_errf(err, SLM_E_FORMAT, "key '%s' has type %s (must be u32)", kv->key, slm_gguf_type_name(v->type));
        if (is_count) im->chunk_count = v->v.u32;
        else im->chunk_size = v->v.u32;
        *have |= is_count ? 2 : 4;
        return SLM_OK;
    }
    return slm_kvs_set_val(&im->extra_kv, kv->key, v, err);
}

static int read_gguf_keys(slm_imatrix *im, const slm_kvs *kvs, slm_err *err) {
    static const char *const need[3] = {"imatrix.datasets", "imatrix.chunk_count", "imatrix.chunk_size"};
    int have = 0;
    for (size_t i = 0; i < kvs->n; i++) SLM_TRY(read_gguf_key(im, &kvs->items[i], &have, err));
    for (int k = 0; k < 3; k++)
        if (!(have & (1 << k)))
            return slm_errf(err, SLM_E_FORMAT, "missing key '%s' (llama-quantize refuses an imatrix without it)", need[k]);
    return SLM_OK;
}

/* The entry of tensor s = "<base>.in_sum2" and its partner "<base>.counts". */
static int read_gguf_entry(slm_imatrix *im, const slm_gguf *g, size_t si, slm_err *err) {
    const slm_gguf_tinfo *s = &g->tensors[si];
    char base[SLM_MAX_NAME], cname[SLM_MAX_NAME + 8], sh[64];
    size_t blen = strlen(s->name) - (sizeof SFX_SUM2 - 1);
    if (blen == 0) return slm_errf(err, SLM_E_FORMAT, "tensor '%s': empty entry name", s->name);
    memcpy(base, s->name, blen);
    base[blen] = 0;
    snprintf(cname, sizeof cname, "%s%s", base, SFX_COUNTS);
    int ci = slm_gguf_find(g, cname);
    if (ci < 0) return slm_errf(err, SLM_E_FORMAT, "entry '%s': tensor '%s' has no '%s'", base, s->name, cname);
    const slm_gguf_tinfo *c = &g->tensors[ci];
    if (s->type != SLM_DTYPE_F32 || c->type != SLM_DTYPE_F32)
        return slm_errf(err, SLM_E_FORMAT, "entry '%s': in_sum2 is %s and counts %s (both must be F32)", base,
                        slm_dtype_name(s->type), slm_dtype_name(c->type));
    if (s->ndim > 2)
        return slm_errf(err, SLM_E_FORMAT, "entry '%s': in_sum2 has shape %s (expected [n_cols] or [n_expert, n_cols])", base,
                        slm_shape_str(sh, sizeof sh, s->shape, s->ndim));
    int64_t ncols = s->shape[s->ndim - 1], n_mat = s->ndim == 2 ? s->shape[0] : 1, nc;
    SLM_TRY(slm_shape_nelem(c->shape, c->ndim, &nc, err));
    if (ncols < 1 || n_mat < 1) return slm_errf(err, SLM_E_FORMAT, "entry '%s': in_sum2 is empty", base);
    if (nc != n_mat)
        return slm_errf(err, SLM_E_FORMAT, "entry '%s': counts has shape %s, %lld values for %lld matrices", base,
                        slm_shape_str(sh, sizeof sh, c->shape, c->ndim), (long long)nc, (long long)n_mat);
    slm_imatrix_entry e;
    memset(&e, 0, sizeof e);
    int rc = entry_alloc(&e, base, ncols, n_mat, SLM_E_FORMAT, err);
    if (rc) {
        entry_free(&e);
        return rc;
    }
    const uint8_t *data = g->map.data + g->data_offset;
    memcpy(e.in_sum2, data + s->offset, s->nbytes); /* F32, little-endian host, maybe unaligned */
    for (int64_t m = 0; m < n_mat; m++) {
        float f = slm_le_f32(data + c->offset + 4 * (size_t)m);
        if (!(isfinite(f) && f >= 0 && f == floorf(f) && f < 0x1p63f)) { /* llama.cpp: lround(f) */
            entry_free(&e);
            return slm_errf(err, SLM_E_DATA, "entry '%s': counts[%lld] is %g (must be a whole number >= 0)", base, (long long)m, f);
        }
        e.counts[m] = (int64_t)f;
    }
    return entry_insert(im, &e, err);
}

static int load_gguf(slm_imatrix *im, const slm_gguf *g, slm_err *err) {
    im->format = SLM_IMATRIX_GGUF;
    if (g->n_tensors) { /* ggml reads the data section with the last tensor's padding, or fails */
        const slm_gguf_tinfo *t = &g->tensors[g->n_tensors - 1];
        uint64_t end = g->data_offset + t->offset + slm_pad(t->nbytes, g->alignment);
        if (end > g->map.size)
            return slm_errf(err, SLM_E_FORMAT, "file ends %llu bytes short of the last tensor's padding (llama.cpp refuses it)",
                            (unsigned long long)(end - g->map.size));
    }
    SLM_TRY(read_gguf_keys(im, &g->kv, err));
    for (size_t i = 0; i < g->n_tensors; i++) {
        const slm_gguf_tinfo *t = &g->tensors[i];
        if (has_suffix(t->name, SFX_SUM2)) {
            SLM_TRY(read_gguf_entry(im, g, i, err));
        } else if (has_suffix(t->name, SFX_COUNTS)) {
            char sname[SLM_MAX_NAME + 8];
            size_t blen = strlen(t->name) - (sizeof SFX_COUNTS - 1);
            snprintf(sname, sizeof sname, "%.*s%s", (int)blen, t->name, SFX_SUM2);
            if (slm_gguf_find(g, sname) < 0)
                return slm_errf(err, SLM_E_FORMAT, "entry '%.*s': tensor '%s' has no '%s'", (int)blen, t->name, t->name, sname);
        } else {
            slm_tensor v;
            slm_gguf_view(g, i, &v);
            SLM_TRY(slm_imatrix_add_extra(im, t->name, t->type, t->ndim, t->shape, v.data, v.nbytes, err));
        }
    }
    if (im->n_entries == 0) return slm_errf(err, SLM_E_FORMAT, "no imatrix entries (no '<tensor>.in_sum2' tensors)");
    return SLM_OK;
}

/* ---- legacy .dat reader -----------------------------------------------------------------
 * llama-imatrix --output-format dat (save_imatrix_legacy), all little-endian:
 *   int32 n_entries; n_entries x { int32 len, name[len], int32 ncall, int32 nval, f32[nval] }
 *   then optionally int32 last_call, int32 len, dataset name[len].
 * llama.cpp reads the trailer leniently (a partial one is ignored); here every byte must fit. */

typedef struct cursor {
    const uint8_t *p;
    size_t size, off;
} cursor;

static int rd_i32(cursor *c, int32_t *v, const char *what, slm_err *err) {
    if (c->size - c->off < 4)
        return slm_errf(err, SLM_E_FORMAT, "truncated at byte %zu reading %s (file has %zu bytes)", c->off, what, c->size);
    *v = (int32_t)slm_le_u32(c->p + c->off);
    c->off += 4;
    return SLM_OK;
}

static int read_legacy_entry(slm_imatrix *im, cursor *c, int32_t i, slm_err *err) {
    char what[96], name[SLM_MAX_NAME];
    int32_t len = 0, ncall = 0, nval = 0;
    snprintf(what, sizeof what, "the name length of entry %d", i);
    SLM_TRY(rd_i32(c, &len, what, err));
    if (len < 1 || len >= SLM_MAX_NAME)
        return slm_errf(err, SLM_E_FORMAT, "entry %d: name length %d (must be 1..%d)", i, len, SLM_MAX_NAME - 1);
    if (c->size - c->off < (size_t)len)
        return slm_errf(err, SLM_E_FORMAT, "entry %d: name of %d bytes past end of file", i, len);
    memcpy(name, c->p + c->off, (size_t)len);
    name[len] = 0;
    c->off += (size_t)len;
    if (memchr(name, 0, (size_t)len)) return slm_errf(err, SLM_E_FORMAT, "entry %d: name contains a NUL byte", i);
    snprintf(what, sizeof what, "ncall and nval of entry '%s'", name);
    SLM_TRY(rd_i32(c, &ncall, what, err));
    SLM_TRY(rd_i32(c, &nval, what, err));
    if (ncall < 0) return slm_errf(err, SLM_E_FORMAT, "entry '%s': ncall %d is negative", name, ncall);
    if (nval < 1) return slm_errf(err, SLM_E_FORMAT, "entry '%s': nval %d (must be >= 1)", name, nval);
    if ((c->size - c->off) / 4 < (size_t)nval)
        return slm_errf(err, SLM_E_FORMAT, "entry '%s': %d values past end of file", name, nval);
    slm_imatrix_entry e;
    memset(&e, 0, sizeof e);
    int rc = entry_alloc(&e, name, nval, 1, SLM_E_FORMAT, err);
    if (rc) {
        entry_free(&e);
        return rc;
    }
    memcpy(e.in_sum2, c->p + c->off, (size_t)nval * 4);
    c->off += (size_t)nval * 4;
    e.counts[0] = ncall;
    return entry_insert(im, &e, err);
}

static int read_legacy_trailer(slm_imatrix *im, cursor *c, slm_err *err) {
    int32_t last_call = 0, len = 0;
    if (c->off == c->size) return SLM_OK; /* files from before the trailer existed */
    SLM_TRY(rd_i32(c, &last_call, "the chunk count after the last entry", err));
    if (last_call < 0) return slm_errf(err, SLM_E_FORMAT, "chunk count %d is negative", last_call);
    im->chunk_count = (uint32_t)last_call;
    if (c->off == c->size) return SLM_OK; /* llama.cpp accepts a trailer without the name */
    SLM_TRY(rd_i32(c, &len, "the dataset name length", err));
    if (len < 0 || (size_t)len > c->size - c->off)
        return slm_errf(err, SLM_E_FORMAT, "dataset name length %d past end of file", len);
    const char *s = (const char *)c->p + c->off;
    if (memchr(s, 0, (size_t)len)) return slm_errf(err, SLM_E_FORMAT, "dataset name contains a NUL byte");
    c->off += (size_t)len;
    if (c->off != c->size) return slm_errf(err, SLM_E_FORMAT, "%zu bytes after the dataset name", c->size - c->off);
    if (len == 0) return SLM_OK;
    char *name;
    SLM_TRY(slm_alloc((void **)&name, (size_t)len + 1, err, "dataset name"));
    memcpy(name, s, (size_t)len);
    name[len] = 0;
    int rc = slm_imatrix_add_dataset(im, name, err);
    slm_free(name);
    return rc;
}

static int load_legacy(slm_imatrix *im, const uint8_t *p, size_t size, slm_err *err) {
    cursor c = {p, size, 0};
    int32_t n = 0;
    im->format = SLM_IMATRIX_LEGACY;
    if (size < 4) return slm_errf(err, SLM_E_FORMAT, "%zu bytes: too short for an imatrix", size);
    SLM_TRY(rd_i32(&c, &n, "the entry count", err));
    if (n < 1) return slm_errf(err, SLM_E_FORMAT, "legacy imatrix with %d entries (need at least 1)", n);
    if ((size_t)n > (size - 4) / LEGACY_MIN_ENTRY)
        return slm_errf(err, SLM_E_FORMAT, "legacy imatrix: %d entries cannot fit in %zu bytes", n, size);
    for (int32_t i = 0; i < n; i++) SLM_TRY(read_legacy_entry(im, &c, i, err));
    return read_legacy_trailer(im, &c, err);
}

int slm_imatrix_parse(slm_imatrix *im, const uint8_t *data, size_t size, slm_err *err) {
    int rc;
    memset(im, 0, sizeof(*im));
    if (size >= 4 && slm_le_u32(data) == SLM_GGUF_MAGIC) {
        slm_gguf g;
        rc = slm_gguf_parse(&g, data, size, err); /* g borrows data */
        if (!rc) {
            rc = load_gguf(im, &g, err);
            slm_gguf_close(&g);
        }
    } else {
        rc = load_legacy(im, data, size, err);
    }
    if (rc) slm_imatrix_free(im);
    return rc;
}

int slm_imatrix_load(slm_imatrix *im, const char *path, slm_err *err) {
    slm_map m;
    memset(im, 0, sizeof(*im));
    SLM_TRY(slm_map_open(&m, path, err));
    int rc = slm_imatrix_parse(im, m.data, m.size, err);
    slm_map_close(&m);
    if (rc) slm_err_prefix(err, "%s", path);
    return rc;
}

/* ---- GGUF writer ------------------------------------------------------------------------ */

static int is_reserved_key(const char *k) {
    return !strcmp(k, "general.type") || !strcmp(k, "imatrix.datasets") || !strcmp(k, "imatrix.chunk_count") ||
           !strcmp(k, "imatrix.chunk_size");
}

/* Keys and tensor plan. ggml writes ggml_n_dims() dimensions (trailing 1s dropped), so a
   single matrix is in_sum2 [ncols], counts [1]; experts give [n_mat, ncols] and [n_mat, 1]. */
static int plan_gguf(const slm_imatrix *im, slm_gguf_writer *w, slm_err *err) {
    SLM_TRY(slm_kvs_set_str(&w->kv, "general.type", "imatrix", err));
    SLM_TRY(slm_kvs_set_arr_str(&w->kv, "imatrix.datasets", (const char *const *)im->datasets, im->n_datasets, err));
    SLM_TRY(slm_kvs_set_u32(&w->kv, "imatrix.chunk_count", im->chunk_count, err));
    SLM_TRY(slm_kvs_set_u32(&w->kv, "imatrix.chunk_size", im->chunk_size, err));
    for (size_t i = 0; i < im->extra_kv.n; i++) {
        const slm_kv *kv = &im->extra_kv.items[i];
        if (is_reserved_key(kv->key)) return slm_errf(err, SLM_E_ARG, "extra_kv holds the reserved key '%s'", kv->key);
        SLM_TRY(slm_kvs_set_val(&w->kv, kv->key, &kv->val, err));
    }
    for (size_t i = 0; i < im->n_entries; i++) {
        const slm_imatrix_entry *e = &im->entries[i];
        char name[SLM_MAX_NAME + 8];
        int nd = e->n_mat > 1 ? 2 : 1;
        int64_t s_shape[2] = {e->n_mat, e->ncols}, c_shape[2] = {e->n_mat, 1};
        snprintf(name, sizeof name, "%s%s", e->name, SFX_SUM2);
        SLM_TRY(slm_gguf_writer_add(w, name, SLM_DTYPE_F32, nd, nd == 2 ? s_shape : s_shape + 1, err));
        snprintf(name, sizeof name, "%s%s", e->name, SFX_COUNTS);
        SLM_TRY(slm_gguf_writer_add(w, name, SLM_DTYPE_F32, nd, nd == 2 ? c_shape : c_shape + 1, err));
    }
    for (size_t i = 0; i < im->n_extras; i++) {
        const slm_imatrix_extra *x = &im->extras[i];
        SLM_TRY(slm_gguf_writer_add(w, x->name, x->dtype, x->ndim, x->shape, err));
    }
    return SLM_OK;
}

static int put_gguf_data(const slm_imatrix *im, slm_gguf_writer *w, slm_err *err) {
    for (size_t i = 0; i < im->n_entries; i++) {
        const slm_imatrix_entry *e = &im->entries[i];
        SLM_TRY(slm_gguf_writer_put(w, e->in_sum2, (size_t)(e->ncols * e->n_mat) * sizeof(float), err));
        for (int64_t m = 0; m < e->n_mat; m++) {
            /* llama-imatrix stores (float) of its int64 count. A legacy ncall of 0 (weights =
               the sums as they are) becomes 1, the GGUF count with the same weights. */
            float c = (float)e->counts[m];
            if (im->format == SLM_IMATRIX_LEGACY && e->counts[m] == 0) c = 1.0f;
            uint8_t b[4];
            slm_st_f32(b, c);
            SLM_TRY(slm_gguf_writer_put_part(w, b, 4, err));
        }
    }
    for (size_t i = 0; i < im->n_extras; i++) SLM_TRY(slm_gguf_writer_put(w, im->extras[i].data, im->extras[i].nbytes, err));
    return slm_gguf_writer_end(w, err);
}

int slm_imatrix_write(const slm_imatrix *im, slm_afile *f, slm_err *err) {
    if (im->n_entries == 0) return slm_errf(err, SLM_E_ARG, "an imatrix needs at least one entry");
    slm_gguf_writer w;
    slm_gguf_writer_init(&w);
    int rc = plan_gguf(im, &w, err);
    if (!rc) rc = slm_gguf_writer_begin(&w, f, err);
    if (!rc) rc = put_gguf_data(im, &w, err);
    slm_gguf_writer_free(&w);
    return rc;
}

int slm_imatrix_save(const slm_imatrix *im, const char *path, slm_err *err) {
    if (im->n_entries == 0) return slm_errf(err, SLM_E_ARG, "%s: an imatrix needs at least one entry", path);
    slm_gguf_writer w;
    slm_afile f;
    memset(&f, 0, sizeof f);
    f.fd = f.slot = -1; /* an early slm_afile_abort must not untrack signal slot 0 */
    slm_gguf_writer_init(&w);
    int rc = plan_gguf(im, &w, err);
    if (!rc) rc = slm_afile_open(&f, path, err);
    if (!rc) rc = slm_gguf_writer_begin(&w, &f, err);
    if (!rc) rc = put_gguf_data(im, &w, err);
    if (!rc) rc = slm_afile_commit(&f, err);
    else slm_afile_abort(&f);
    slm_gguf_writer_free(&w);
    if (rc && !strstr(err->msg, path)) slm_err_prefix(err, "%s", path);
    return rc;
}

/* ---- legacy .dat writer ------------------------------------------------------------------ */

static int put_i32(slm_afile *f, int32_t v, slm_err *err) {
    uint8_t b[4];
    slm_st_u32(b, (uint32_t)v);
    return slm_afile_write(f, b, 4, err);
}

/* ncall of an entry as save_imatrix_legacy computes it; 0 when the entry is skipped (no data). */
static int legacy_ncall(const slm_imatrix *im, const slm_imatrix_entry *e, int32_t *ncall, slm_err *err) {
    if (im->format == SLM_IMATRIX_LEGACY) {
        *ncall = (int32_t)e->counts[0]; /* read from an int32 */
        return SLM_OK;
    }
    int64_t max = 0;
    for (int64_t m = 0; m < e->n_mat; m++) max = SLM_MAX(max, e->counts[m]);
    int64_t n = max > INT64_MAX - im->chunk_size ? -1 : (max + (im->chunk_size - 1)) / im->chunk_size; /* ceil */
    if (n < 0 || n > INT32_MAX || e->ncols * e->n_mat > INT32_MAX)
        return slm_errf(err, SLM_E_ARG, "entry '%s' is too large for the legacy format", e->name);
    *ncall = (int32_t)n;
    return SLM_OK;
}

static int put_legacy_entry(const slm_imatrix *im, const slm_imatrix_entry *e, int32_t ncall, slm_afile *f, slm_err *err) {
    const int32_t len = (int32_t)strlen(e->name), nval = (int32_t)(e->ncols * e->n_mat);
    SLM_TRY(put_i32(f, len, err));
    SLM_TRY(slm_afile_write(f, e->name, (size_t)len, err));
    SLM_TRY(put_i32(f, ncall, err));
    SLM_TRY(put_i32(f, nval, err));
    for (int32_t i = 0; i < nval; i++) {
        float v = e->in_sum2[i];
        if (im->format != SLM_IMATRIX_LEGACY) {
            float count = (float)e->counts[i / e->ncols], value = v;
            if (count == 0.0f) value = count = 1.0f; /* "store 1 for partial data" */
            v = (value / count) * (float)ncall;
        }
        uint8_t b[4];
        slm_st_f32(b, v);
        SLM_TRY(slm_afile_write(f, b, 4, err));
    }
    return SLM_OK;
}

static int put_legacy(const slm_imatrix *im, slm_afile *f, slm_err *err) {
    int32_t n = 0, ncall;
    for (size_t i = 0; i < im->n_entries; i++) {
        SLM_TRY(legacy_ncall(im, &im->entries[i], &ncall, err));
        n += im->format == SLM_IMATRIX_LEGACY || ncall > 0; /* entries without any data are skipped */
    }
    SLM_TRY(put_i32(f, n, err));
    for (size_t i = 0; i < im->n_entries; i++) {
        SLM_TRY(legacy_ncall(im, &im->entries[i], &ncall, err));
        if (im->format == SLM_IMATRIX_LEGACY || ncall > 0) SLM_TRY(put_legacy_entry(im, &im->entries[i], ncall, f, err));
    }
    SLM_TRY(put_i32(f, (int32_t)im->chunk_count, err));
    const char *ds = im->n_datasets ? im->datasets[im->n_datasets - 1] : ""; /* llama-imatrix: the last one */
    SLM_TRY(put_i32(f, (int32_t)strlen(ds), err));
    return slm_afile_write(f, ds, strlen(ds), err);
}

int slm_imatrix_save_legacy(const slm_imatrix *im, const char *path, slm_err *err) {
    if (im->n_entries == 0 || im->n_entries > INT32_MAX)
        return slm_errf(err, SLM_E_ARG, "%s: %zu entries do not make a legacy imatrix", path, im->n_entries);
    if (im->format != SLM_IMATRIX_LEGACY && im->chunk_size == 0)
        return slm_errf(err, SLM_E_ARG, "%s: the legacy format needs imatrix.chunk_size > 0 to turn counts into ncall", path);
    if (im->chunk_count > INT32_MAX)
        return slm_errf(err, SLM_E_ARG, "%s: chunk count %u does not fit the legacy format", path, im->chunk_count);
    for (size_t i = 0; i < im->n_datasets; i++)
        if (strlen(im->datasets[i]) > INT32_MAX) return slm_errf(err, SLM_E_ARG, "%s: dataset name too long", path);
    slm_afile f;
    memset(&f, 0, sizeof f);
    f.fd = f.slot = -1; /* an early slm_afile_abort must not untrack signal slot 0 */
    int rc = slm_afile_open(&f, path, err);
    if (!rc) rc = put_legacy(im, &f, err);
    if (!rc) rc = slm_afile_commit(&f, err);
    else slm_afile_abort(&f);
    if (rc && !strstr(err->msg, path)) slm_err_prefix(err, "%s", path);
    return rc;
}

/* ---- lookups ----------------------------------------------------------------------------- */

const slm_imatrix_entry *slm_imatrix_find(const slm_imatrix *im, const char *name) {
    size_t at = lower_bound(im, name);
    return at < im->n_entries && !strcmp(im->entries[at].name, name) ? &im->entries[at] : NULL;
}

const float *slm_imatrix_weights(const slm_imatrix *im, const char *name, int64_t ncols) {
    const slm_imatrix_entry *e = slm_imatrix_find(im, name);
    return e && e->ncols == ncols ? e->weights : NULL;
}

/* llama-quant.cpp's tensor_name_match_token_embd: size mismatches of these are ignored. */
static int is_token_embd(const char *name) {
    return !strcmp(name, "token_embd.weight") || !strcmp(name, "per_layer_token_embd.weight");
}

int slm_imatrix_lookup(const slm_imatrix *im, const char *name, int64_t ncols, int64_t n_expert, const float **w,
                       slm_err *err) {
    *w = NULL;
    const slm_imatrix_entry *e = slm_imatrix_find(im, name);
    if (!e) return SLM_OK;
    int64_t want, have = e->ncols * e->n_mat; /* no overflow: the entry's floats are allocated */
    if (slm_mul_i64_ok(ncols, n_expert, &want) && want == have) {
        *w = e->weights;
        return SLM_OK;
    }
    if (is_token_embd(name)) return SLM_OK;
    return slm_errf(err, SLM_E_ARG, "imatrix size %lld is different from tensor size %lld for %s", (long long)have,
                    (long long)(ncols * n_expert), name);
}

/* ---- checks against a model ------------------------------------------------------------ */

static const slm_tensor *find_tensor(const slm_tensor *t, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (t[i].name && !strcmp(t[i].name, name)) return &t[i];
    return NULL;
}

static int check_entry_shape(const slm_imatrix_entry *e, const slm_tensor *t, slm_err *err) {
    char sh[64];
    slm_shape_str(sh, sizeof sh, t->shape, t->ndim);
    if (t->ndim < 2 || t->ndim > 3)
        return slm_errf(err, SLM_E_ARG, "imatrix entry '%s': the model's tensor has shape %s, not a matrix (imatrix from another model?)",
                        e->name, sh);
    int64_t ncols = t->shape[t->ndim - 1], n_expert = t->ndim == 3 ? t->shape[0] : 1;
    int64_t have = e->ncols * e->n_mat;
    int same = have == ncols * n_expert && (e->n_mat == 1 || e->n_mat == n_expert);
    if (same || is_token_embd(e->name)) return SLM_OK; /* llama-quantize skips a token_embd of another size */
    return slm_errf(err, SLM_E_ARG,
                    "imatrix entry '%s' has %lld x %lld values but the model's tensor %s has %lld x %lld (imatrix from another model?)",
                    e->name, (long long)e->n_mat, (long long)e->ncols, sh, (long long)n_expert, (long long)ncols);
}

static int check_entry_finite(const slm_imatrix_entry *e, slm_err *err) {
    int64_t n = e->ncols * e->n_mat;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(e->in_sum2[i]) || e->in_sum2[i] < 0)
            return slm_errf(err, SLM_E_DATA, "imatrix entry '%s': in_sum2[%lld] is %g (non-finite or negative statistics)", e->name,
                            (long long)i, e->in_sum2[i]);
        if (!isfinite(e->weights[i])) /* llama_model_quantize: "imatrix contains non-finite value" */
            return slm_errf(err, SLM_E_DATA, "imatrix entry '%s': weight[%lld] is %g (non-finite statistics)", e->name, (long long)i,
                            e->weights[i]);
    }
    return SLM_OK;
}

int slm_imatrix_check_model(const slm_imatrix *im, const slm_tensor *tensors, size_t n_tensors, slm_err *err) {
    for (size_t i = 0; i < im->n_entries; i++) {
        const slm_imatrix_entry *e = &im->entries[i];
        const slm_tensor *t = find_tensor(tensors, n_tensors, e->name);
        if (!t)
            return slm_errf(err, SLM_E_ARG, "imatrix entry '%s' is not a tensor of the model (imatrix from another model?)", e->name);
        SLM_TRY(check_entry_shape(e, t, err));
        SLM_TRY(check_entry_finite(e, err));
    }
    return SLM_OK;
}

/* ---- metadata for the quantized file ------------------------------------------------------ */

/* tools/quantize/quantize.cpp: llama_model_kv_override values, strings strncpy'd into
   char[128] (so cut to 127 bytes), integers written by llama_model_quantize as u32. */
int slm_imatrix_quantize_kvs(const slm_imatrix *im, const char *file, slm_kvs *kv, slm_err *err) {
    char buf[128];
    snprintf(buf, sizeof buf, "%s", file);
    SLM_TRY(slm_kvs_set_str(kv, "quantize.imatrix.file", buf, err));
    if (im->n_datasets) {
        snprintf(buf, sizeof buf, "%s", im->datasets[0]);
        SLM_TRY(slm_kvs_set_str(kv, "quantize.imatrix.dataset", buf, err));
    }
    SLM_TRY(slm_kvs_set_u32(kv, "quantize.imatrix.entries_count", (uint32_t)im->n_entries, err));
    if (im->chunk_count > 0 && im->chunk_count <= INT32_MAX) /* llama-quantize holds it in an int */
        SLM_TRY(slm_kvs_set_u32(kv, "quantize.imatrix.chunks_count", im->chunk_count, err));
    return SLM_OK;
}
