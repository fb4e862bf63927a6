/* export.c - the pipeline convert and quantize share; it reads top to bottom:
 *   1. order the tensors as llama.cpp does; 2. pick each tensor's type (recipe);
 *   3. refuse what cannot be done (requantize, calibration, types); 4. plan the GGUF
 *   (KVs, tensor infos, offsets); 5. stream each tensor through convert/quantize into the
 *   atomic output, slab by slab, releasing the input pages behind us.
 */
#include "export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/afile.h"
#include "core/dtype.h"
#include "quantize/qtypes.h"
#include "core/mem.h"
#include "core/slm.h"
#include "core/thread.h"
#include "msg.h"
#include "quantize/quantize.h"
#include "quantize/quants.h"

#define SLAB_BYTES ((size_t)16 << 20) /* f32 rows converted at a time: bounds memory per tensor */

typedef struct named { const char *name; size_t idx; } named;

static int cmp_order(const void *a, const void *b) {
    return slm_recipe_order(((const named *)a)->name, ((const named *)b)->name);
}

/* The type a tensor is "in" for the recipe: as stored for GGUF sources; for HF folders,
   1-D tensors are F32 in the output whatever the checkpoint stores (llama.cpp's converter). */
static int cur_type(const slm_src *s, const slm_src_tensor *t) {
    if (s->kind == SLM_SRC_HF && t->ndim < 2) return SLM_DTYPE_F32;
    return t->dtype;
}

int export_plan(export_job *j, slm_err *err) {
    const slm_src *s = j->src;
    const size_t n = s->n_tensors;
    int rc;
    j->n = n;
    slm_gguf_writer_init(&j->w);
    if ((rc = slm_calloc((void **)&j->order, n, sizeof(size_t), err, "plan")) ||
        (rc = slm_calloc((void **)&j->types, n, sizeof(int), err, "plan")) ||
        (rc = slm_calloc((void **)&j->fell_back, n, sizeof(int), err, "plan")) ||
        (rc = slm_calloc((void **)&j->rep.tensors, n, sizeof(slm_report_tensor), err, "report")))
        return rc;
    /* 1. llama.cpp's order: non-block tensors, then blocks by number, names sorted within */
    named *nm;
    if ((rc = slm_calloc((void **)&nm, n, sizeof(*nm), err, "plan"))) return rc;
    for (size_t i = 0; i < n; i++) nm[i] = (named){s->tensors[i].name, i};
    qsort(nm, n, sizeof(*nm), cmp_order);
    for (size_t i = 0; i < n; i++) j->order[i] = nm[i].idx;
    slm_free(nm);

    /* 2. types */
    slm_recipe_tensor *rt;
    if ((rc = slm_calloc((void **)&rt, n, sizeof(*rt), err, "plan"))) return rc;
    for (size_t i = 0; i < n; i++) {
        const slm_src_tensor *t = &s->tensors[j->order[i]];
        rt[i] = (slm_recipe_tensor){t->name, t->ndim, t->shape, cur_type(s, t)};
    }
    rc = slm_recipe_plan(&j->recipe, &s->cfg, rt, n, j->types, j->fell_back, err);
    slm_free(rt);
    if (rc) return rc;

    /* 3. what we refuse */
    if (j->recipe.ftype->needs_imatrix && !j->recipe.has_imatrix)
        return slm_errf(err, SLM_E_ARG, "%s needs an importance matrix from calibration data, which this version of slm "
                        "cannot compute yet; use Q2_K instead", j->recipe.ftype->name);
    for (size_t i = 0; i < n; i++) {
        const slm_src_tensor *t = &s->tensors[j->order[i]];
        if (!slm_dtype_can_write(j->types[i]) && j->types[i] != t->dtype)
            return slm_errf(err, SLM_E_UNSUPPORTED, "tensor '%s': slm cannot write type %s", t->name, slm_dtype_name(j->types[i]));
        /* dequantizing to F32/F16/BF16 is fine; quantizing quantized data again compounds the error */
        if (slm_dtype_get(t->dtype)->is_quantized && slm_dtype_get(j->types[i])->is_quantized && j->types[i] != t->dtype &&
            !j->allow_requantize)
            return slm_errf(err, SLM_E_ARG, "%s: tensor '%s' is already quantized (%s); re-quantizing compounds the error "
                            "(pass --allow-requantize to do it anyway)", t->file, t->name, slm_dtype_name(t->dtype));
    }

    /* 4. metadata and tensor plan */
    if (s->kind == SLM_SRC_GGUF) {
        for (size_t k = 0; k < s->gguf.kv.n; k++)
            if ((rc = slm_kvs_set_val(&j->w.kv, s->gguf.kv.items[k].key, &s->gguf.kv.items[k].val, err))) return rc;
    } else if ((rc = slm_src_gguf_meta(s, &j->w.kv, err))) {
        return rc;
    }
    /* as ggml's gguf_set_val_*: an existing key is removed and appended again */
    slm_kvs_remove(&j->w.kv, "general.quantization_version");
    slm_kvs_remove(&j->w.kv, "general.file_type");
    if ((rc = slm_kvs_set_u32(&j->w.kv, "general.quantization_version", 2, err)) ||
        (rc = slm_kvs_set_u32(&j->w.kv, "general.file_type", (uint32_t)j->recipe.ftype->ftype, err)))
        return rc;
    slm_report *r = &j->rep;
    r->n_tensors = n;
    for (size_t i = 0; i < n; i++) {
        const slm_src_tensor *t = &s->tensors[j->order[i]];
        if ((rc = slm_gguf_writer_add(&j->w, t->name, j->types[i], t->ndim, t->shape, err))) return rc;
        slm_report_tensor *rt_ = &r->tensors[i];
        snprintf(rt_->name, sizeof rt_->name, "%s", t->name);
        snprintf(rt_->type, sizeof rt_->type, "%s", slm_dtype_name(j->types[i]));
        snprintf(rt_->src_type, sizeof rt_->src_type, "%s", slm_dtype_name(t->dtype));
        rt_->ndim = t->ndim;
        memcpy(rt_->shape, t->shape, sizeof rt_->shape);
        rt_->n_params = slm_src_nrows(t) * slm_src_ncols(t);
        rt_->bytes = j->w.tensors[i].nbytes;
        rt_->src_bytes = t->nbytes;
        rt_->bpw = rt_->n_params ? 8.0 * (double)rt_->bytes / (double)rt_->n_params : 0;
        rt_->fell_back = j->fell_back[i];
        r->n_fallback += j->fell_back[i];
        r->n_params += rt_->n_params;
    }
    r->src_bytes = s->total_bytes;
    r->out_bytes = slm_gguf_writer_file_size(&j->w);
    r->bpw = r->n_params ? 8.0 * (double)(r->out_bytes - slm_gguf_writer_meta_size(&j->w)) / (double)r->n_params : 0;
    snprintf(r->ftype, sizeof r->ftype, "%s", j->recipe.ftype->name);
    snprintf(r->model_name, sizeof r->model_name, "%s", s->name);
    return SLM_OK;
}

/* Converts/quantizes one tensor slab by slab into the writer. */
static int write_tensor(export_job *j, size_t i, float *f32, void *qbuf, size_t slab_rows_cap, slm_err *err) {
    const slm_src *s = j->src;
    const size_t si = j->order[i];
    const slm_src_tensor *t = &s->tensors[si];
    const int type = j->types[i];
    const int64_t nrow = slm_src_nrows(t), ncols = slm_src_ncols(t);
    const size_t out_rowb = slm_dtype_row_size(type, ncols);
    slm_report_tensor *rt = &j->rep.tensors[i];
    slm_qstats total = {0};
    int rc = SLM_OK;
    if (nrow == 0 || ncols == 0) return slm_gguf_writer_put(&j->w, NULL, 0, err);
    int64_t step = (int64_t)SLM_MAX(1, slab_rows_cap / (size_t)ncols);
    for (int64_t r0 = 0; r0 < nrow && !rc; r0 += step) {
        int64_t nr = SLM_MIN(step, nrow - r0);
        const void *bytes = qbuf;
        if (!t->permute_heads) slm_src_prefetch_rows(s, si, r0, nr);
        if (type == t->dtype && !t->permute_heads) { /* same type, same layout: straight from the map */
            bytes = t->data + (size_t)r0 * out_rowb;
        } else if (type == t->dtype) { /* same type: the stored bytes, rows permuted */
            slm_src_copy_rows(s, si, r0, nr, qbuf);
        } else {
            slm_qstats st;
            if ((rc = slm_src_read_rows(s, si, r0, nr, f32, err))) break;
            if ((rc = slm_quantize_tensor(type, f32, nr, ncols, NULL, qbuf, &st, err))) {
                if (rc == SLM_E_DATA) { /* make the index tensor-relative */
                    slm_err e2 = *err;
                    rc = slm_errf(err, SLM_E_DATA, "%s: tensor '%s' (rows from %lld): %s", t->file, t->src_name, (long long)r0, e2.msg);
                } else {
                    slm_err_prefix(err, "tensor '%s'", t->name);
                }
                break;
            }
            total.n += st.n;
            total.sum_sq_err += st.sum_sq_err;
            total.sum_sq_ref += st.sum_sq_ref;
            if (st.max_abs_err > total.max_abs_err) total.max_abs_err = st.max_abs_err;
        }
        if (!rc) rc = slm_gguf_writer_put_part(&j->w, bytes, (size_t)nr * out_rowb, err);
        if (!t->permute_heads) slm_src_release_rows(s, si, r0, nr); /* keep RSS to about one slab */
    }
    slm_src_release(s, si);
    rt->rmse = slm_qstats_rmse(&total);
    rt->rel_rmse = slm_qstats_rel_rmse(&total);
    rt->max_abs_err = total.max_abs_err;
    return rc;
}

int export_write(export_job *j, const char *out_path, slm_err *err) {
    slm_afile f;
    float *f32 = NULL;
    void *qbuf = NULL;
    int rc;
    /* scratch: one slab of f32 rows and its output; no type takes more than 4 bytes a value */
    size_t max_cols = 1, max_elems = 1;
    for (size_t i = 0; i < j->n; i++) {
        const slm_src_tensor *t = &j->src->tensors[j->order[i]];
        max_cols = SLM_MAX(max_cols, (size_t)slm_src_ncols(t));
        max_elems = SLM_MAX(max_elems, (size_t)(slm_src_ncols(t) * slm_src_nrows(t)));
    }
    size_t slab_elems = SLM_MIN(max_elems, SLM_MAX(SLAB_BYTES / sizeof(float), max_cols));
    if ((rc = slm_alloc((void **)&f32, slab_elems * sizeof(float), err, "f32 rows"))) return rc;
    if ((rc = slm_alloc(&qbuf, slab_elems * sizeof(float), err, "output rows"))) goto done;
    if ((rc = slm_afile_open(&f, out_path, err))) goto done;
    if ((rc = slm_gguf_writer_begin(&j->w, &f, err))) goto fail;
    for (size_t i = 0; i < j->n; i++) {
        msg_progress(j->rep.tensors[i].name, (double)i / (double)j->n);
        if ((rc = write_tensor(j, i, f32, qbuf, slab_elems, err))) goto fail;
    }
    msg_progress_done();
    if ((rc = slm_gguf_writer_end(&j->w, err))) goto fail;
    rc = slm_afile_commit(&f, err);
    goto done;
fail:
    msg_progress_done();
    slm_afile_abort(&f);
done:
    slm_free(f32);
    slm_free(qbuf);
    return rc;
}

void export_free(export_job *j) {
    slm_free(j->order);
    slm_free(j->types);
    slm_free(j->fell_back);
    slm_gguf_writer_free(&j->w);
    slm_report_free(&j->rep);
    memset(j, 0, sizeof(*j));
}

void export_print_summary(const export_job *j, FILE *f, int per_tensor) {
    const slm_report *r = &j->rep;
    char b1[32], b2[32];
    if (per_tensor) {
        fprintf(f, "%-28s %-7s %-7s %-14s %6s %10s %10s\n", "tensor", "from", "type", "shape", "bpw", "rel.RMSE", "max|err|");
        for (size_t i = 0; i < r->n_tensors; i++) {
            const slm_report_tensor *t = &r->tensors[i];
            char sh[48];
            slm_shape_str(sh, sizeof sh, t->shape, t->ndim);
            fprintf(f, "%-28s %-7s %-7s %-14s %6.2f %10.3g %10.3g%s\n", t->name, t->src_type, t->type, sh, t->bpw, t->rel_rmse,
                    t->max_abs_err, t->fell_back ? "  (fell back)" : "");
        }
    }
    fprintf(f, "%s: %s -> %s, %s (%.2f bpw, %.2fx smaller), %zu tensors",
            r->ftype, slm_fmt_bytes(b1, sizeof b1, (double)r->src_bytes), r->output[0] ? r->output : "(dry run)",
            slm_fmt_bytes(b2, sizeof b2, (double)r->out_bytes), r->bpw, r->out_bytes ? (double)r->src_bytes / (double)r->out_bytes : 0,
            r->n_tensors);
    if (r->seconds > 0) fprintf(f, " in %.2f s", r->seconds);
    fprintf(f, "\n");
    if (r->n_fallback)
        fprintf(f, "%d of %zu tensors fell back to another type (row length not a multiple of the block size)\n", r->n_fallback,
                r->n_tensors);
}
