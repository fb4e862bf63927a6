/* imatrix_calib.c - slm_calib <-> slm_imatrix (see imatrix_calib.h).
 * Must not: print; trust an imatrix read from a file (every width and type is checked).
 */
#include "formats/imatrix_calib.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/dtype.h"
#include "core/mem.h"
#include "core/slm.h"
#include "model/catalog.h"

/* The matmul weights of a block, in block order (a config has a subset: phi3 its fused qkv). */
static const int k_roles[] = {SLM_ROLE_ATTN_QKV, SLM_ROLE_ATTN_Q,  SLM_ROLE_ATTN_K,  SLM_ROLE_ATTN_V,
                              SLM_ROLE_ATTN_OUT, SLM_ROLE_FFN_GATE, SLM_ROLE_FFN_UP, SLM_ROLE_FFN_DOWN};
#define N_ROLES ((int)SLM_ARRAY_LEN(k_roles))

static slm_calib_input *input_at(const slm_calib *c, int l, int role) {
    return &c->in[l * SLM_CALIB_KINDS + slm_calib_kind_of_role(role)];
}

/* ---- slm_calib -> imatrix ------------------------------------------------------------------- */

/* An F32 extra from doubles (or floats when f is set). */
static int add_f32(slm_imatrix *im, const char *name, int ndim, const int64_t *shape, const double *d, const float *f,
                   int64_t n, slm_err *err) {
    float *v = NULL;
    SLM_TRY(slm_alloc((void **)&v, (size_t)n * sizeof(float), err, name));
    for (int64_t i = 0; i < n; i++) v[i] = f ? f[i] : (float)d[i];
    int rc = slm_imatrix_add_extra(im, name, SLM_DTYPE_F32, ndim, shape, v, (size_t)n * sizeof(float), err);
    slm_free(v);
    return rc;
}

/* Entry (and with extras its sums of |x|, and the Gram matrix when `first`) of one weight. */
static int add_weight(slm_imatrix *im, const slm_calib_input *in, const char *wname, int first, int extras, slm_err *err) {
    char name[SLM_MAX_NAME + 16];
    SLM_TRY(slm_imatrix_add(im, wname, in->n, 1, in->sum2, &in->count, err));
    if (!extras) return SLM_OK;
    if (in->abs_sum) {
        snprintf(name, sizeof name, "%s.in_abs_sum", wname);
        SLM_TRY(add_f32(im, name, 1, &in->n, in->abs_sum, NULL, in->n, err));
    }
    if (in->gram && first) {
        const int64_t shape[2] = {in->n, in->n};
        snprintf(name, sizeof name, "%s.gram", wname);
        SLM_TRY(add_f32(im, name, 2, shape, in->gram, NULL, in->n * in->n, err));
    }
    return SLM_OK;
}

/* blk.N.cos_sim, blk.N.ffn_channel_abs, blk.N.attn_head_abs. */
static int add_block_extras(slm_imatrix *im, const slm_calib *c, int l, slm_err *err) {
    char name[SLM_MAX_NAME];
    const int64_t one = 1;
    if (c->cos_count[l] > 0) {
        double cs = slm_calib_cos_sim(c, l);
        snprintf(name, sizeof name, "blk.%d.cos_sim", l);
        SLM_TRY(add_f32(im, name, 1, &one, &cs, NULL, 1, err));
    }
    const int kinds[2] = {SLM_CALIB_FFN_DOWN, SLM_CALIB_ATTN_OUT};
    for (int i = 0; i < 2; i++) {
        const slm_calib_input *in = &c->in[l * SLM_CALIB_KINDS + kinds[i]];
        if (in->n == 0 || !in->abs_sum || in->count == 0) continue;
        const int64_t n = kinds[i] == SLM_CALIB_FFN_DOWN ? in->n : in->n / c->cfg.head_dim;
        float *v = NULL;
        SLM_TRY(slm_alloc((void **)&v, (size_t)n * sizeof(float), err, "pruning scores"));
        int rc = kinds[i] == SLM_CALIB_FFN_DOWN ? slm_calib_ffn_channel_abs(c, l, v, err) : slm_calib_attn_head_abs(c, l, v, err);
        snprintf(name, sizeof name, "blk.%d.%s", l, kinds[i] == SLM_CALIB_FFN_DOWN ? "ffn_channel_abs" : "attn_head_abs");
        if (!rc) rc = add_f32(im, name, 1, &n, NULL, v, n, err);
        slm_free(v);
        SLM_TRY(rc);
    }
    return SLM_OK;
}

static int fill_imatrix(slm_imatrix *im, const slm_calib *c, const char *dataset, int extras, slm_err *err) {
    char wname[SLM_MAX_NAME];
    int64_t max_count = 0;
    im->format = SLM_IMATRIX_GGUF;
    if (dataset) SLM_TRY(slm_imatrix_add_dataset(im, dataset, err));
    for (int l = 0; l < c->n_layer; l++) {
        for (int r = 0; r < N_ROLES; r++) {
            const slm_calib_input *in = input_at(c, l, k_roles[r]);
            if (in->n == 0 || in->count == 0) continue; /* llama-imatrix has no entry without rows */
            if (!slm_catalog_present(&c->cfg, k_roles[r], l)) continue;
            int first = 1; /* the first of the model's matrices reading this input */
            for (int e = 0; e < r; e++)
                first &= !(slm_catalog_present(&c->cfg, k_roles[e], l) && slm_calib_kind_of_role(k_roles[e]) == slm_calib_kind_of_role(k_roles[r]));
            slm_catalog_gguf_name(k_roles[r], l, wname, sizeof wname);
            SLM_TRY(add_weight(im, in, wname, first, extras, err));
            max_count = SLM_MAX(max_count, in->count);
        }
        if (extras) SLM_TRY(add_block_extras(im, c, l, err));
    }
    if (c->out.n > 0 && c->out.count > 0) {
        SLM_TRY(add_weight(im, &c->out, "output.weight", 1, extras, err));
        max_count = SLM_MAX(max_count, c->out.count);
    }
    if (c->ctx < 1) return slm_errf(err, SLM_E_ARG, "calibration statistics without a chunk size");
    const int64_t chunks = max_count / c->ctx; /* llama-imatrix's m_last_chunk */
    if (chunks > UINT32_MAX) return slm_errf(err, SLM_E_ARG, "%lld chunks do not fit imatrix.chunk_count", (long long)chunks);
    im->chunk_count = (uint32_t)chunks;
    im->chunk_size = (uint32_t)c->ctx;
    return SLM_OK;
}

int slm_imatrix_from_calib(slm_imatrix *im, const slm_calib *c, const char *dataset, int extras, slm_err *err) {
    memset(im, 0, sizeof *im);
    int rc = fill_imatrix(im, c, dataset, extras, err);
    if (rc) slm_imatrix_free(im);
    return rc;
}

/* ---- imatrix -> slm_calib ------------------------------------------------------------------- */

/* The input an entry name feeds, or NULL. */
static slm_calib_input *input_of_name(slm_calib *c, const char *name) {
    int l, role = slm_catalog_parse_gguf(name, &l);
    if (role == SLM_ROLE_OUTPUT) return &c->out;
    if (role < 0 || slm_calib_kind_of_role(role) < 0 || l < 0 || l >= c->n_layer) return NULL;
    return input_at(c, l, role);
}

static const slm_imatrix_extra *find_extra(const slm_imatrix *im, const char *name) {
    for (size_t i = 0; i < im->n_extras; i++)
        if (!strcmp(im->extras[i].name, name)) return &im->extras[i];
    return NULL;
}

/* An F32 extra of exactly this shape, all finite, as doubles into *dst (allocated). NULL dst
   and SLM_OK when the file has no such tensor. */
static int read_f32(const slm_imatrix *im, const char *name, int ndim, const int64_t *shape, double **dst, slm_err *err) {
    const slm_imatrix_extra *x = find_extra(im, name);
    if (!x) return SLM_OK;
    int ok = x->dtype == SLM_DTYPE_F32 && x->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = x->shape[d] == shape[d];
    if (!ok) return slm_errf(err, SLM_E_FORMAT, "extra tensor '%s': expected F32 of %lld x %lld values", name,
                             (long long)shape[0], (long long)(ndim == 2 ? shape[1] : 1));
    const int64_t n = ndim == 2 ? shape[0] * shape[1] : shape[0];
    const float *v = x->data;
    for (int64_t i = 0; i < n; i++) {
        float f;
        memcpy(&f, v + i, sizeof f);
        if (!isfinite(f))
            return slm_errf(err, SLM_E_DATA, "extra tensor '%s': value %lld is %g", name, (long long)i, f);
    }
    SLM_TRY(slm_alloc((void **)dst, (size_t)n * sizeof(double), err, name));
    for (int64_t i = 0; i < n; i++) {
        float f;
        memcpy(&f, v + i, sizeof f);
        (*dst)[i] = f;
    }
    return SLM_OK;
}

/* Sums and count of one input from the entry of weight `wname`, and the extras filed under it. */
static int read_input(slm_calib_input *in, const slm_imatrix *im, const slm_imatrix_entry *e, slm_err *err) {
    char name[SLM_MAX_NAME + 16];
    memcpy(in->sum2, e->in_sum2, (size_t)in->n * sizeof(float));
    in->count = e->counts[0];
    snprintf(name, sizeof name, "%s.in_abs_sum", e->name);
    SLM_TRY(read_f32(im, name, 1, &in->n, &in->abs_sum, err));
    const int64_t shape[2] = {in->n, in->n};
    snprintf(name, sizeof name, "%s.gram", e->name);
    return read_f32(im, name, 2, shape, &in->gram, err);
}

static int fill_calib(slm_calib *c, const slm_imatrix *im, slm_err *err) {
    /* every entry must be a matmul of this model, of its width */
    for (size_t i = 0; i < im->n_entries; i++) {
        const slm_imatrix_entry *e = &im->entries[i];
        const slm_calib_input *in = input_of_name(c, e->name);
        if (!in || in->n == 0 || e->ncols != in->n || e->n_mat != 1)
            return slm_errf(err, SLM_E_ARG, "entry '%s' (%lld x %lld values) is no matmul of this model: imatrix from "
                            "another model?", e->name, (long long)e->n_mat, (long long)e->ncols);
    }
    /* per input: the first weight that has an entry (q before k and v, gate before up) */
    for (size_t i = 0; i < im->n_entries; i++) {
        const slm_imatrix_entry *e = &im->entries[i];
        slm_calib_input *in = input_of_name(c, e->name);
        int l, role = slm_catalog_parse_gguf(e->name, &l);
        const int kind = role == SLM_ROLE_OUTPUT ? -1 : slm_calib_kind_of_role(role);
        int first = 1; /* no entry of an earlier role of the same kind */
        for (int r = 0; kind >= 0 && k_roles[r] != role; r++) {
            char nm[SLM_MAX_NAME];
            if (slm_calib_kind_of_role(k_roles[r]) == kind && slm_imatrix_find(im, slm_catalog_gguf_name(k_roles[r], l, nm, sizeof nm)))
                first = 0;
        }
        if (first) SLM_TRY(read_input(in, im, e, err));
    }
    for (int l = 0; l < c->n_layer; l++) {
        char name[SLM_MAX_NAME];
        const int64_t one = 1;
        double *cs = NULL;
        snprintf(name, sizeof name, "blk.%d.cos_sim", l);
        SLM_TRY(read_f32(im, name, 1, &one, &cs, err));
        if (cs) {
            c->cos_sum[l] = cs[0];
            c->cos_count[l] = 1;
            slm_free(cs);
        }
    }
    c->ctx = (int)SLM_MIN(im->chunk_size, (uint32_t)INT32_MAX);
    c->n_chunks = im->chunk_count;
    return SLM_OK;
}

int slm_calib_from_imatrix(slm_calib *c, const slm_imatrix *im, const slm_model_config *cfg, slm_err *err) {
    SLM_TRY(slm_calib_init(c, cfg, 0, 0, slm_imatrix_find(im, "output.weight") != NULL, err));
    int rc = fill_calib(c, im, err);
    if (rc) slm_calib_free(c);
    return rc;
}
