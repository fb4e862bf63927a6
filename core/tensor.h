/* tensor.h - slm_tensor, a borrowed view of one tensor's bytes.
 *
 * Owns: the view type and shape arithmetic with overflow checks.
 * Shapes are row-major, outermost first (HF/PyTorch order) everywhere in slm; only
 * formats/gguf_*.c reverses them into ggml's ne[] order.
 * Must not: own data. A view lives as long as the file map, arena or model it points into;
 * every function that returns one says which.
 */
#ifndef SLM_TENSOR_H
#define SLM_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define SLM_MAX_DIMS 4
#define SLM_MAX_NAME 64 /* GGUF/ggml tensor names: at most 63 bytes + NUL (GGML_MAX_NAME) */

typedef struct slm_tensor {
    const char *name;
    int dtype;                    /* slm_dtype */
    int ndim;                     /* 0..SLM_MAX_DIMS */
    int64_t shape[SLM_MAX_DIMS];  /* row-major, outermost first; shape[ndim-1] = row length */
    const void *data;             /* borrowed; may be unaligned */
    size_t nbytes;
} slm_tensor;

/* ---- a source of named tensors, read row by row
 *
 * A tensor of shape (d0, ..., dk) has d0 * ... * d(k-1) rows of dk values (1-D: one row).
 * Implemented by model folders and GGUF files (formats/model_src.c) and by models held in
 * memory (model/); read by the export pipeline (export/) and the transformer's loader (model/).
 * Rows come in GGUF layout (llama q/k rows in interleaved RoPE order). Calls with the same
 * arguments give the same data; a source is read from one thread at a time. */
typedef struct slm_tensor_info {
    char name[SLM_MAX_NAME];       /* GGUF name */
    char src_name[128];            /* as named where it is stored, for messages */
    const char *file;              /* what holds it, for messages; lives as long as the source */
    int dtype;                     /* slm_dtype as stored */
    int ndim;
    int64_t shape[SLM_MAX_DIMS];   /* row-major, GGUF layout */
    size_t nbytes;                 /* stored bytes */
} slm_tensor_info;

typedef struct slm_tensor_src {
    size_t n_tensors;
    const void *ud;
    void (*info)(const void *ud, size_t i, slm_tensor_info *out);
    int (*find)(const void *ud, const char *name); /* index of a GGUF name, or -1 */
    /* rows [r0, r0+n) of tensor i as f32 into dst (n, ncols) */
    int (*read_f32)(const void *ud, size_t i, int64_t r0, int64_t n, float *dst, slm_err *err);
    /* the same rows as stored (n rows of the tensor's dtype): a borrowed pointer (possibly
       unaligned) when they lie contiguous in the source, else copied into scratch and scratch
       returned; NULL (err filled) on failure. A probe with n = 0 and scratch NULL returns the
       address of the stored rows when the whole tensor lies contiguous, else NULL (no error):
       a mapped model borrows such rows for as long as the source is open. */
    const void *(*read_raw)(const void *ud, size_t i, int64_t r0, int64_t n, void *scratch, slm_err *err);
    /* optional hint: rows about to be read (need = 1) or done with (need = 0) */
    void (*advise)(const void *ud, size_t i, int64_t r0, int64_t n, int need);
} slm_tensor_src;

int64_t slm_tensor_info_nrows(const slm_tensor_info *t);
int64_t slm_tensor_info_ncols(const slm_tensor_info *t);
/* Tensor i's info; a by-value convenience over src->info. */
slm_tensor_info slm_tensor_src_info(const slm_tensor_src *src, size_t i);
/* The advise hint, when the source has one. */
void slm_tensor_src_advise(const slm_tensor_src *src, size_t i, int64_t r0, int64_t n, int need);

/* Element count; 0 and an error if the product overflows or a dim is negative. */
int slm_shape_nelem(const int64_t *shape, int ndim, int64_t *out, slm_err *err);
/* "[172, 64]" into buf; returns buf. */
const char *slm_shape_str(char *buf, size_t bufsize, const int64_t *shape, int ndim);

#endif
