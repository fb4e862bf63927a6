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

/* Element count; 0 and an error if the product overflows or a dim is negative. */
int slm_shape_nelem(const int64_t *shape, int ndim, int64_t *out, slm_err *err);
/* "[172, 64]" into buf; returns buf. */
const char *slm_shape_str(char *buf, size_t bufsize, const int64_t *shape, int ndim);

#endif
