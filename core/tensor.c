/* tensor.c - shape arithmetic for tensor views; all products checked for overflow. */
#include "tensor.h"

#include <stdio.h>

#include "slm.h"

int slm_shape_nelem(const int64_t *shape, int ndim, int64_t *out, slm_err *err) {
    int64_t n = 1;
    *out = 0;
    if (ndim < 0 || ndim > SLM_MAX_DIMS) return slm_errf(err, SLM_E_FORMAT, "%d dimensions (at most %d)", ndim, SLM_MAX_DIMS);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return slm_errf(err, SLM_E_FORMAT, "negative dimension %lld", (long long)shape[i]);
        if (!slm_mul_i64_ok(n, shape[i], &n)) return slm_errf(err, SLM_E_FORMAT, "element count overflows");
    }
    *out = n;
    return SLM_OK;
}

const char *slm_shape_str(char *buf, size_t bufsize, const int64_t *shape, int ndim) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, bufsize - o, "[");
    for (int i = 0; i < ndim && o < bufsize; i++)
        o += (size_t)snprintf(buf + o, bufsize - o, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (o < bufsize) snprintf(buf + o, bufsize - o, "]");
    return buf;
}

int64_t slm_tensor_info_ncols(const slm_tensor_info *t) { return t->ndim ? t->shape[t->ndim - 1] : 1; }

int64_t slm_tensor_info_nrows(const slm_tensor_info *t) {
    int64_t n = 1;
    for (int d = 0; d + 1 < t->ndim; d++) n *= t->shape[d];
    return n;
}

slm_tensor_info slm_tensor_src_info(const slm_tensor_src *src, size_t i) {
    slm_tensor_info t;
    src->info(src->ud, i, &t);
    return t;
}

void slm_tensor_src_advise(const slm_tensor_src *src, size_t i, int64_t r0, int64_t n, int need) {
    if (src->advise) src->advise(src->ud, i, r0, n, need);
}
