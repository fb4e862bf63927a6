/* export_target.c - the measurements behind --target-size: each quantized tensor quantized to
 * every candidate type, its importance-weighted error, then quantize/target.h's allocation. */
#include <string.h>

#include "core/dtype.h"
#include "core/mem.h"
#include "core/slm.h"
#include "export/export.h"
#include "quantize/qtypes.h"
#include "quantize/quantize.h"
#include "quantize/target.h"

static const int k_cands[] = {SLM_DTYPE_Q2_K, SLM_DTYPE_Q3_K, SLM_DTYPE_Q4_K, SLM_DTYPE_Q5_K, SLM_DTYPE_Q6_K, SLM_DTYPE_Q8_0};

/* sum_j imp_j sum_i (w_ij - q(w)_ij)^2 (imp = 1 without importance weights) */
static int measure(int type, const float *w, int64_t nr, int64_t nc, const float *imp, void *q, float *deq, double *out,
                   slm_err *err) {
    SLM_TRY(slm_quantize_tensor(type, w, nr, nc, imp, q, NULL, err));
    slm_dtype_get(type)->to_float(q, deq, nr * nc);
    double e = 0, ref = 0;
    for (int64_t r = 0; r < nr; r++)
        for (int64_t j = 0; j < nc; j++) {
            const double d = (double)w[r * nc + j] - deq[r * nc + j], v = imp ? imp[j] : 1.0;
            e += v * d * d;
            ref += v * (double)w[r * nc + j] * w[r * nc + j];
        }
    *out = ref > 0 ? e / ref : e; /* relative: each tensor's output noise-to-signal */
    return SLM_OK;
}

static int candidates(const slm_export *x, size_t i, slm_target_tensor *tt, slm_err *err) {
    const slm_tensor_info t = slm_tensor_src_info(x->src, x->order[i]);
    const int64_t nr = slm_tensor_info_nrows(&t), nc = slm_tensor_info_ncols(&t);
    float *w = NULL, *deq = NULL;
    void *q = NULL;
    int rc;
    if ((rc = slm_alloc((void **)&w, sizeof(float) * (size_t)(nr * nc), err, "target")) ||
        (rc = slm_alloc((void **)&deq, sizeof(float) * (size_t)(nr * nc), err, "target")) ||
        (rc = slm_alloc(&q, slm_dtype_row_size(SLM_DTYPE_F32, nc) * (size_t)nr, err, "target")) ||
        (rc = x->src->read_f32(x->src->ud, x->order[i], 0, nr, w, err)))
        goto done;
    tt->n_cand = 0;
    for (size_t k = 0; k < SLM_ARRAY_LEN(k_cands); k++) {
        const size_t rowb = slm_dtype_row_size(k_cands[k], nc);
        if (!rowb) continue; /* row not a multiple of the block */
        const int c = tt->n_cand++;
        tt->types[c] = k_cands[k];
        tt->bytes[c] = rowb * (uint64_t)nr;
        if ((rc = measure(k_cands[k], w, nr, nc, x->imatrix[i], q, deq, &tt->err[c], err))) goto done;
    }
done:
    slm_free(q);
    slm_free(deq);
    slm_free(w);
    return rc;
}

int slm_export_target(const slm_export *x, uint64_t target, int *types, uint64_t *size, slm_err *err) {
    const size_t n1 = x->n ? x->n : 1;
    slm_target_tensor *tt = NULL;
    size_t *idx = NULL, m = 0;
    int *choice = NULL, rc;
    uint64_t fixed = slm_gguf_writer_file_size(&x->w);
    if ((rc = slm_calloc((void **)&tt, n1, sizeof(*tt), err, "target")) ||
        (rc = slm_calloc((void **)&idx, n1, sizeof(*idx), err, "target")) ||
        (rc = slm_calloc((void **)&choice, n1, sizeof(*choice), err, "target")))
        goto done;
    for (size_t i = 0; i < x->n; i++) {
        const slm_tensor_info t = slm_tensor_src_info(x->src, x->order[i]);
        types[i] = -1;
        if (t.ndim < 2 || !slm_dtype_get(x->types[i])->is_quantized || x->types[i] == t.dtype) continue;
        if ((rc = candidates(x, i, &tt[m], err))) goto done;
        if (!tt[m].n_cand) continue;
        fixed -= slm_pad(x->w.tensors[i].nbytes, x->w.alignment);
        idx[m++] = i;
    }
    if ((rc = slm_target_allocate(tt, m, fixed, x->w.alignment, target, choice, size, err))) goto done;
    for (size_t k = 0; k < m; k++) types[idx[k]] = tt[k].types[choice[k]];
done:
    slm_free(choice);
    slm_free(idx);
    slm_free(tt);
    return rc;
}
