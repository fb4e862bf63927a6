/* export.c - the GGUF export pipeline; it reads top to bottom:
 *   1. order the tensors as llama.cpp does; 2. pick each tensor's type (recipe);
 *   3. refuse what cannot be done (requantize, calibration, types); 4. plan the GGUF
 *   (KVs, tensor infos, offsets) and the report's sizes; 5. stream each tensor through
 *   convert/quantize into the open output, slab by slab, releasing the input pages behind us.
 */
#include "export/export.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "core/dtype.h"
#include "core/mem.h"
#include "core/slm.h"
#include "export/export_stream.h"
#include "quantize/awq.h"
#include "quantize/gptq.h"
#include "quantize/qtypes.h"
#include "quantize/quantize.h"
#include "quantize/quants.h"

#define SLAB_BYTES ((size_t)16 << 20) /* f32 rows converted at a time: bounds memory per tensor */
#define COPY_BYTES ((size_t)2 << 20)  /* stored rows copied at a time: bounds the mapped input in RSS */

typedef struct named { char name[SLM_MAX_NAME]; size_t idx; } named;

static int cmp_order(const void *a, const void *b) {
    return slm_recipe_order(((const named *)a)->name, ((const named *)b)->name);
}

/* The type a tensor is "in" for the recipe: as stored, or F32 for 1-D tensors when the output
   widens them (llama.cpp's HF converter writes norms as F32 whatever the checkpoint stores). */
static int cur_type(const slm_export_opts *o, const slm_tensor_info *t) {
    if (o->widen_1d && t->ndim < 2) return SLM_DTYPE_F32;
    return t->dtype;
}

/* 1. llama.cpp's order: non-block tensors, then blocks by number, names sorted within */
static int plan_order(slm_export *x, slm_err *err) {
    const size_t n = x->n;
    named *nm;
    SLM_TRY(slm_calloc((void **)&nm, n ? n : 1, sizeof(*nm), err, "plan"));
    for (size_t i = 0; i < n; i++) {
        slm_tensor_info t = slm_tensor_src_info(x->src, i);
        memcpy(nm[i].name, t.name, sizeof nm[i].name);
        nm[i].idx = i;
    }
    qsort(nm, n, sizeof(*nm), cmp_order);
    for (size_t i = 0; i < n; i++) x->order[i] = nm[i].idx;
    slm_free(nm);
    return SLM_OK;
}

/* 2. types, and the fallbacks the recipe had to take */
static int plan_types(slm_export *x, int *fell_back, slm_err *err) {
    const size_t n = x->n;
    slm_recipe_tensor *rt;
    slm_tensor_info *ti;
    int rc;
    if ((rc = slm_calloc((void **)&rt, n ? n : 1, sizeof(*rt), err, "plan"))) return rc;
    if ((rc = slm_calloc((void **)&ti, n ? n : 1, sizeof(*ti), err, "plan"))) goto done;
    for (size_t i = 0; i < n; i++) {
        ti[i] = slm_tensor_src_info(x->src, x->order[i]);
        rt[i] = (slm_recipe_tensor){ti[i].name, ti[i].ndim, ti[i].shape, cur_type(&x->o, &ti[i])};
    }
    rc = slm_recipe_plan(&x->o.recipe, x->o.cfg, rt, n, x->types, fell_back, err);
    for (size_t i = 0; !rc && x->o.force_types && i < n; i++)
        if (x->o.force_types[i] >= 0) x->types[i] = x->o.force_types[i], fell_back[i] = 0;
done:
    slm_free(ti);
    slm_free(rt);
    return rc;
}

/* 3. what we refuse, and each tensor's importance weights (llama_model_quantize's decisions) */
static int plan_refusals(slm_export *x, slm_err *err) {
    const slm_ftype_desc *ft = x->o.recipe.ftype;
    const int m = x->o.method;
    if (!slm_qmethod_name(m)) return slm_errf(err, SLM_E_ARG, "unknown quantization method %d", m);
    if ((slm_qmethod_uses_awq(m) || slm_qmethod_uses_gptq(m)) && !x->o.calib)
        return slm_errf(err, SLM_E_ARG, "--method %s needs calibration statistics: give --calibration STATS.gguf (slm calibrate)",
                        slm_qmethod_name(m));
    if (ft->needs_imatrix && !x->o.imatrix)
        return slm_errf(err, SLM_E_ARG, "%s needs an importance matrix: give --imatrix FILE (made by 'slm calibrate' or "
                        "llama-imatrix)", ft->name);
    for (size_t i = 0; i < x->n; i++) {
        slm_tensor_info t = slm_tensor_src_info(x->src, x->order[i]);
        const int quantized = x->types[i] != t.dtype && slm_dtype_get(x->types[i])->is_quantized;
        if (x->o.imatrix && quantized && t.ndim >= 2)
            SLM_TRY(slm_imatrix_lookup(x->o.imatrix, t.name, slm_tensor_info_ncols(&t), 1, &x->imatrix[i], err));
        if (x->o.calib && quantized && t.ndim >= 2) x->calin[i] = slm_calib_find(x->o.calib, t.name);
        if (quantized && !x->imatrix[i] && slm_recipe_requires_imatrix(&x->o.recipe, t.name, x->types[i]))
            return slm_errf(err, SLM_E_ARG, "tensor '%s' (%s) needs importance weights: %s", t.name, slm_dtype_name(x->types[i]),
                            x->o.imatrix ? "the imatrix has no entry for it" : "give --imatrix FILE");
        if (!slm_dtype_can_write(x->types[i]) && x->types[i] != t.dtype)
            return slm_errf(err, SLM_E_UNSUPPORTED, "tensor '%s': slm cannot write type %s", t.name,
                            slm_dtype_name(x->types[i]));
        if (slm_dtype_needs_imatrix(x->types[i]) && quantized && !x->imatrix[i])
            return slm_errf(err, SLM_E_ARG, "tensor '%s': %s needs an importance matrix (calibration data)", t.name,
                            slm_dtype_name(x->types[i]));
        /* dequantizing to F32/F16/BF16 is fine; quantizing quantized data again compounds the error */
        if (slm_dtype_get(t.dtype)->is_quantized && slm_dtype_get(x->types[i])->is_quantized && x->types[i] != t.dtype &&
            !x->o.allow_requantize)
            return slm_errf(err, SLM_E_ARG, "%s: tensor '%s' is already quantized (%s); re-quantizing compounds the error "
                            "(pass --allow-requantize to do it anyway)", t.file, t.name, slm_dtype_name(t.dtype));
    }
    return SLM_OK;
}

/* 4. metadata, tensor infos and the report's sizes */
static int plan_file(slm_export *x, const int *fell_back, slm_err *err) {
    const slm_kvs *meta = x->o.meta;
    for (size_t k = 0; meta && k < meta->n; k++) SLM_TRY(slm_kvs_set_val(&x->w.kv, meta->items[k].key, &meta->items[k].val, err));
    /* as ggml's gguf_set_val_*: an existing key is removed and appended again */
    slm_kvs_remove(&x->w.kv, "general.quantization_version");
    slm_kvs_remove(&x->w.kv, "general.file_type");
    SLM_TRY(slm_kvs_set_u32(&x->w.kv, "general.quantization_version", 2, err));
    SLM_TRY(slm_kvs_set_u32(&x->w.kv, "general.file_type", (uint32_t)x->o.recipe.ftype->ftype, err));
    if (x->o.imatrix) SLM_TRY(slm_imatrix_quantize_kvs(x->o.imatrix, x->o.imatrix_file ? x->o.imatrix_file : "", &x->w.kv, err));
    slm_report *r = &x->rep;
    r->n_tensors = x->n;
    for (size_t i = 0; i < x->n; i++) {
        slm_tensor_info t = slm_tensor_src_info(x->src, x->order[i]);
        SLM_TRY(slm_gguf_writer_add(&x->w, t.name, x->types[i], t.ndim, t.shape, err));
        slm_report_tensor *rt = &r->tensors[i];
        snprintf(rt->name, sizeof rt->name, "%s", t.name);
        snprintf(rt->type, sizeof rt->type, "%s", slm_dtype_name(x->types[i]));
        snprintf(rt->src_type, sizeof rt->src_type, "%s", slm_dtype_name(t.dtype));
        rt->ndim = t.ndim;
        memcpy(rt->shape, t.shape, sizeof rt->shape);
        rt->n_params = slm_tensor_info_nrows(&t) * slm_tensor_info_ncols(&t);
        rt->bytes = x->w.tensors[i].nbytes;
        rt->src_bytes = t.nbytes;
        rt->bpw = rt->n_params ? 8.0 * (double)rt->bytes / (double)rt->n_params : 0;
        rt->fell_back = fell_back[i];
        rt->rmse = rt->rel_rmse = rt->max_abs_err = NAN; /* not computed until written (a dry run never is) */
        r->n_fallback += fell_back[i];
        r->n_params += rt->n_params;
        r->src_bytes += t.nbytes;
    }
    r->out_bytes = slm_gguf_writer_file_size(&x->w);
    r->bpw = r->n_params ? 8.0 * (double)(r->out_bytes - slm_gguf_writer_meta_size(&x->w)) / (double)r->n_params : 0;
    snprintf(r->ftype, sizeof r->ftype, "%s", x->o.recipe.ftype->name);
    snprintf(r->method, sizeof r->method, "%s", slm_qmethod_name(x->o.method));
    slm_qmethod_params_str(x->o.method, &x->o.mp, r->method_params, sizeof r->method_params);
    return SLM_OK;
}

/* An imatrix made for another model (names or row lengths differ) is refused up front. */
static int check_imatrix(const slm_export *x, slm_err *err) {
    slm_tensor *ts;
    slm_tensor_info *ti;
    const size_t n1 = x->n ? x->n : 1;
    SLM_TRY(slm_calloc((void **)&ts, n1, sizeof(*ts), err, "tensor list"));
    int rc = slm_calloc((void **)&ti, n1, sizeof(*ti), err, "tensor list");
    for (size_t i = 0; !rc && i < x->n; i++) {
        ti[i] = slm_tensor_src_info(x->src, i);
        ts[i] = (slm_tensor){ti[i].name, ti[i].dtype, ti[i].ndim, {0}, NULL, ti[i].nbytes};
        memcpy(ts[i].shape, ti[i].shape, sizeof ts[i].shape);
    }
    if (!rc) rc = slm_imatrix_check_model(x->o.imatrix, ts, x->n, err);
    if (rc) slm_err_prefix(err, "%s", x->o.imatrix_file ? x->o.imatrix_file : "imatrix");
    slm_free(ti);
    slm_free(ts);
    return rc;
}

int slm_export_plan(slm_export *x, const slm_tensor_src *src, const slm_export_opts *o, slm_err *err) {
    memset(x, 0, sizeof *x);
    x->src = src;
    x->o = *o;
    x->o.recipe.has_imatrix = o->imatrix != NULL;
    x->n = src->n_tensors;
    slm_gguf_writer_init(&x->w);
    const size_t n1 = x->n ? x->n : 1;
    int *fell_back = NULL;
    int rc;
    if ((rc = slm_calloc((void **)&x->order, n1, sizeof(size_t), err, "plan")) ||
        (rc = slm_calloc((void **)&x->types, n1, sizeof(int), err, "plan")) ||
        (rc = slm_calloc((void **)&x->imatrix, n1, sizeof(float *), err, "plan")) ||
        (rc = slm_calloc((void **)&x->calin, n1, sizeof(*x->calin), err, "plan")) ||
        (rc = slm_calloc((void **)&x->col_mul, n1, sizeof(float *), err, "plan")) ||
        (rc = slm_calloc((void **)&x->row_div, n1, sizeof(float *), err, "plan")) ||
        (rc = slm_calloc((void **)&x->awq_w, n1, sizeof(float *), err, "plan")) ||
        (rc = slm_calloc((void **)&x->clip, n1, sizeof(float), err, "plan")) ||
        (rc = slm_calloc((void **)&fell_back, n1, sizeof(int), err, "plan")) ||
        (rc = slm_calloc((void **)&x->rep.tensors, n1, sizeof(slm_report_tensor), err, "report")))
        goto done;
    if (x->o.imatrix && (rc = check_imatrix(x, err))) goto done;
    if ((rc = plan_order(x, err)) || (rc = plan_types(x, fell_back, err)) || (rc = plan_refusals(x, err))) goto done;
    rc = plan_file(x, fell_back, err);
done:
    slm_free(fell_back);
    return rc;
}

/* Index of the first NaN/Inf among n values stored as dtype (f32 scratch for block types), or -1. */
static int64_t first_nonfinite_raw(int dtype, const void *bytes, int64_t nrow, int64_t ncols, float *f32) {
    const uint8_t *b = bytes;
    const int64_t n = nrow * ncols;
    switch (dtype) {
    case SLM_DTYPE_F32:
        for (int64_t i = 0; i < n; i++) {
            uint32_t u;
            memcpy(&u, b + 4 * i, 4);
            if ((u & 0x7f800000u) == 0x7f800000u) return i;
        }
        return -1;
    case SLM_DTYPE_F16:
        for (int64_t i = 0; i < n; i++)
            if (((b[2 * i] | b[2 * i + 1] << 8) & 0x7c00) == 0x7c00) return i;
        return -1;
    case SLM_DTYPE_BF16:
        for (int64_t i = 0; i < n; i++)
            if (((b[2 * i] | b[2 * i + 1] << 8) & 0x7f80) == 0x7f80) return i;
        return -1;
    }
    if ((uintptr_t)bytes & 1) return -1; /* the reader already refuses unaligned blocks */
    slm_dequantize_rows(dtype, bytes, f32, nrow, ncols);
    return slm_first_nonfinite(f32, n);
}

/* AWQ's folding on rows r0 .. r0+nr of tensor i: into f32 (a copy when rows lie elsewhere). */
static const float *fold_rows(const slm_export *x, size_t i, const float *rows, int64_t r0, int64_t nr, int64_t ncols, float *f32) {
    const float *cm = x->col_mul[i], *rd = x->row_div[i];
    const float clip = x->clip[i];
    if (!cm && !rd && !(clip > 0 && clip < 1)) return rows;
    if (rows != f32) memcpy(f32, rows, sizeof(float) * (size_t)(nr * ncols));
    const int one_d = slm_tensor_src_info(x->src, x->order[i]).ndim < 2;
    for (int64_t r = 0; r < nr; r++) {
        float *v = f32 + r * ncols;
        if (cm)
            for (int64_t j = 0; j < ncols; j++) v[j] *= cm[j];
        if (rd && one_d)
            for (int64_t j = 0; j < ncols; j++) v[j] /= rd[j];
        else if (rd)
            for (int64_t j = 0; j < ncols; j++) v[j] /= rd[r0 + r];
        slm_awq_clip_row(v, ncols, clip);
    }
    return f32;
}

/* GPTQ on rows of tensor i: the Hessian is the calibration's Gram matrix of its input, for
   AWQ-folded columns that of the scaled input x / s (G_jk / (s_j s_k)); the error statistics
   from the dequantized rows. */
static int gptq_rows(const slm_export *x, size_t i, const float *rows, int64_t nr, int64_t ncols, const float *w, void *dst,
                     slm_qstats *st, slm_err *err) {
    const slm_calib_input *in = x->calin[i];
    const float *cm = x->col_mul[i];
    const double *G = in->gram;
    double *Gs = NULL;
    float *deq = NULL;
    int rc;
    if (cm) {
        SLM_TRY(slm_alloc((void **)&Gs, sizeof(double) * (size_t)(ncols * ncols), err, "GPTQ Hessian"));
        for (int64_t a = 0; a < ncols; a++)
            for (int64_t b = 0; b < ncols; b++) Gs[a * ncols + b] = G[a * ncols + b] / ((double)cm[a] * (double)cm[b]);
        G = Gs;
    }
    const slm_gptq_opts go = {.damp = x->o.mp.gptq_damp, .batch = x->o.mp.gptq_block,
                              .order = x->o.mp.gptq_act_order ? SLM_GPTQ_ACT_BLOCKS : SLM_GPTQ_NATURAL};
    if (!(rc = slm_alloc((void **)&deq, sizeof(float) * (size_t)(nr * ncols), err, "GPTQ rows")) &&
        !(rc = slm_gptq_quantize(x->types[i], rows, nr, ncols, G, w, &go, dst, deq, err))) {
        *st = (slm_qstats){.n = nr * ncols};
        for (int64_t k = 0; k < nr * ncols; k++) {
            const double d = (double)rows[k] - deq[k];
            st->sum_sq_err += d * d;
            st->sum_sq_ref += (double)rows[k] * rows[k];
            if (fabs(d) > st->max_abs_err) st->max_abs_err = fabs(d);
        }
    }
    slm_free(Gs);
    slm_free(deq);
    return rc;
}

/* THE place where a tensor's rows are quantized, by method: rows r0 .. r0+nr of output tensor
   i (already folded by AWQ), into dst. */
static int quantize_rows(const slm_export *x, size_t i, const float *rows, int64_t r0, int64_t nr, int64_t ncols, void *dst,
                         slm_qstats *st, slm_err *err) {
    SLM_UNUSED(r0);
    const int type = x->types[i];
    const float *w = x->awq_w[i] ? x->awq_w[i] : x->imatrix[i];
    const slm_calib_input *in = x->calin[i];
    switch (x->o.method) {
    case SLM_QMETHOD_GPTQ:
    case SLM_QMETHOD_AWQ_GPTQ: /* tensors without a Gram matrix (token_embd, wide inputs): imatrix rounding */
        if (in && in->gram && in->n == ncols && in->count > 0 && slm_dtype_get(type)->is_quantized)
            return gptq_rows(x, i, rows, nr, ncols, w, dst, st, err);
        return slm_quantize_tensor(type, rows, nr, ncols, w, dst, st, err);
    default: /* rtn, imatrix, awq: ggml's quantizer (x->imatrix is NULL for rtn) */
        return slm_quantize_tensor(type, rows, nr, ncols, w, dst, st, err);
    }
}

/* 5. one tensor, slab by slab: same type and layout straight from the source's bytes, same type
   permuted through a copy, any other type converted or quantized from f32 rows. */
static int write_tensor(slm_export *x, size_t i, slm_stream *ss, float *f32, void *qbuf, size_t slab_elems, slm_err *err) {
    const slm_tensor_src *src = x->src;
    const size_t si = x->order[i];
    const slm_tensor_info t = slm_tensor_src_info(src, si);
    const int type = x->types[i];
    const int64_t nrow = slm_tensor_info_nrows(&t), ncols = slm_tensor_info_ncols(&t);
    const size_t out_rowb = slm_dtype_row_size(type, ncols);
    slm_report_tensor *rt = &x->rep.tensors[i];
    slm_qstats total = {0};
    int rc = SLM_OK;
    if (nrow == 0 || ncols == 0) return slm_gguf_writer_put(&x->w, NULL, 0, err);
    const int folded = x->col_mul[i] || x->row_div[i] || (x->clip[i] > 0 && x->clip[i] < 1);
    const slm_calib_input *in = x->calin[i];
    const int gptq = (x->o.method == SLM_QMETHOD_GPTQ || x->o.method == SLM_QMETHOD_AWQ_GPTQ) && in && in->gram &&
                     in->n == ncols && in->count > 0 && slm_dtype_get(type)->is_quantized;
    const int copy = type == t.dtype && !folded;
    /* the statistics are summed per slab of step rows (the report's numbers depend on it);
       copied rows need no statistics and go in smaller steps */
    int64_t step = (int64_t)SLM_MAX(1, slab_elems / (size_t)ncols);
    if (copy) step = SLM_MIN(step, (int64_t)SLM_MAX(1, COPY_BYTES / SLM_MAX(1, slm_dtype_row_size(t.dtype, ncols))));
    for (int64_t r0 = 0; r0 < nrow && !rc; r0 += step) {
        int64_t nr = SLM_MIN(step, nrow - r0);
        const void *bytes = qbuf;
        if (!copy && !folded && !gptq) { /* the streaming quantizer: blocks on the pool, written as they finish */
            slm_qstats st;
            const float *w = x->awq_w[i] ? x->awq_w[i] : x->imatrix[i];
            if ((rc = slm_stream_slab(ss, x, i, w, r0, nr, &st, err))) break;
            total.n += st.n;
            total.sum_sq_err += st.sum_sq_err;
            total.sum_sq_ref += st.sum_sq_ref;
            if (st.max_abs_err > total.max_abs_err) total.max_abs_err = st.max_abs_err;
            continue;
        }
        slm_tensor_src_advise(src, si, r0, nr, 1);
        if (copy) { /* same type: the stored bytes, never a NaN or Inf */
            if (!(bytes = src->read_raw(src->ud, si, r0, nr, qbuf, err))) rc = err->code ? err->code : SLM_E_IO;
            int64_t bad = rc ? -1 : first_nonfinite_raw(type, bytes, nr, ncols, f32);
            if (bad >= 0)
                rc = slm_errf(err, SLM_E_DATA, "%s: tensor '%s': NaN or Inf at row %lld, column %lld", t.file, t.src_name,
                              (long long)(r0 + bad / ncols), (long long)(bad % ncols));
        } else {
            slm_qstats st;
            const float *rows = f32;
            /* F32 rows lying contiguous and aligned in the source: quantized where they are */
            const void *raw = t.dtype == SLM_DTYPE_F32 ? src->read_raw(src->ud, si, 0, 0, NULL, err) : NULL;
            if (raw && ((uintptr_t)raw & 3) == 0) rows = (const float *)raw + (size_t)r0 * (size_t)ncols;
            else if ((rc = src->read_f32(src->ud, si, r0, nr, f32, err))) break;
            rows = fold_rows(x, i, rows, r0, nr, ncols, f32);
            if ((rc = quantize_rows(x, i, rows, r0, nr, ncols, qbuf, &st, err))) {
                if (rc == SLM_E_DATA) { /* make the index tensor-relative */
                    slm_err e2 = *err;
                    rc = slm_errf(err, SLM_E_DATA, "%s: tensor '%s' (rows from %lld): %s", t.file, t.src_name,
                                  (long long)r0, e2.msg);
                } else {
                    slm_err_prefix(err, "tensor '%s'", t.name);
                }
                break;
            }
            total.n += st.n;
            total.sum_sq_err += st.sum_sq_err;
            total.sum_sq_ref += st.sum_sq_ref;
            if (st.max_abs_err > total.max_abs_err) total.max_abs_err = st.max_abs_err;
        }
        if (!rc) rc = slm_gguf_writer_put_part(&x->w, bytes, (size_t)nr * out_rowb, err);
        slm_tensor_src_advise(src, si, r0, nr, 0); /* keep RSS to about one slab */
    }
    slm_tensor_src_advise(src, si, 0, nrow, 0);
    rt->rmse = slm_qstats_rmse(&total);
    rt->rel_rmse = slm_qstats_rel_rmse(&total);
    rt->max_abs_err = total.max_abs_err;
    return rc;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int slm_export_write(slm_export *x, slm_afile *f, slm_err *err) {
    float *f32 = NULL;
    void *qbuf = NULL;
    slm_stream ss = {0};
    int rc;
    /* scratch: one slab of f32 rows and its output; no type takes more than 4 bytes a value */
    size_t max_cols = 1, max_elems = 1;
    for (size_t i = 0; i < x->n; i++) {
        slm_tensor_info t = slm_tensor_src_info(x->src, x->order[i]);
        max_cols = SLM_MAX(max_cols, (size_t)slm_tensor_info_ncols(&t));
        max_elems = SLM_MAX(max_elems, (size_t)(slm_tensor_info_ncols(&t) * slm_tensor_info_nrows(&t)));
    }
    size_t slab_elems = SLM_MIN(max_elems, SLM_MAX(SLAB_BYTES / sizeof(float), max_cols));
    if ((rc = slm_alloc((void **)&f32, slab_elems * sizeof(float), err, "f32 rows"))) return rc;
    if ((rc = slm_alloc(&qbuf, slab_elems * sizeof(float), err, "output rows"))) goto done;
    if ((rc = slm_stream_init(&ss, max_cols, slab_elems, err))) goto done;
    if (slm_qmethod_uses_awq(x->o.method)) {
        double t0 = now_s();
        if ((rc = slm_export_awq_prepass(x, err))) goto done;
        x->awq_seconds = now_s() - t0;
    }
    if ((rc = slm_gguf_writer_begin(&x->w, f, err))) goto done;
    for (size_t i = 0; i < x->n; i++) {
        if (x->o.progress) x->o.progress(x->o.progress_ud, x->rep.tensors[i].name, i, x->n);
        if ((rc = write_tensor(x, i, &ss, f32, qbuf, slab_elems, err))) goto done;
    }
    if (x->o.progress) x->o.progress(x->o.progress_ud, "", x->n, x->n);
    rc = slm_gguf_writer_end(&x->w, err);
done:
    slm_stream_free(&ss);
    slm_free(f32);
    slm_free(qbuf);
    return rc;
}

void slm_export_free(slm_export *x) {
    for (size_t i = 0; i < x->n; i++) { /* any of them may be missing after a failed plan */
        if (x->col_mul) slm_free(x->col_mul[i]);
        if (x->row_div) slm_free(x->row_div[i]);
        if (x->awq_w) slm_free(x->awq_w[i]);
    }
    slm_free(x->col_mul);
    slm_free(x->row_div);
    slm_free(x->awq_w);
    slm_free(x->clip);
    slm_free(x->calin);
    slm_free(x->order);
    slm_free(x->types);
    slm_free(x->imatrix);
    slm_gguf_writer_free(&x->w);
    slm_report_free(&x->rep);
    memset(x, 0, sizeof(*x));
}
