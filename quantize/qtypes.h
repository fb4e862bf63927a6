/* qtypes.h - the one table of element types (ggml's type_traits): what every GGUF type id is
 * and what slm can do with it.
 *
 * Owns: name, elements per block, bytes per block (pinned to sizeof(block) by static_assert in
 * q_types.c), to_float (ggml's dequantizer), from_float_ref (quantize_row_<t>_ref), quantize
 * (quantize_<t>: what ggml_quantize_chunk runs, importance weights optional or required),
 * from_float + vec_dot_type (the activation type llama.cpp's CPU backend multiplies a weight of
 * this type with, and how it rounds activations to it), vec_dot (that product, ggml's numbers),
 * and the lookups by id and name.
 * Must not: know about files, tensors or models. The ids themselves are core/dtype.h's enum
 * (ggml's wire values).
 */
#ifndef SLM_QTYPES_H
#define SLM_QTYPES_H

#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"

typedef void (*slm_to_float_fn)(const void *restrict x, float *restrict y, int64_t k);
typedef void (*slm_from_float_fn)(const float *restrict x, void *restrict y, int64_t k);
/* ggml's vec_dot (nrc = 1): *s = dot(weight row w, activation row a) of n values, a in the weight's
   vec_dot_type (quants.h: slm_vec_dot_<t>_<vt>; many rows at once: slm_dot_rows). */
typedef void (*slm_vec_dot_fn)(int64_t n, float *restrict s, const void *restrict w, const void *restrict a);

/* Which code a quantizer runs: only the scalar reference (what every fast path is tested
 * against) or the fastest bit-exact kernel this CPU supports (the default everywhere). */
typedef enum slm_quant_kernel { SLM_KERNEL_REF = 0, SLM_KERNEL_AUTO = 1 } slm_quant_kernel;

/* ggml's quantize_<t>(src, dst, nrow, n_per_row, imatrix): imatrix NULL or n_per_row
 * importance weights shared by every row; returns the bytes written. */
typedef size_t (*slm_quantize_fn)(const float *restrict src, void *restrict dst, int64_t nrow, int64_t n_per_row,
                                  const float *imatrix, slm_quant_kernel kernel);

typedef struct slm_dtype_traits {
    const char *name;                 /* ggml's name, upper case: "Q4_K", "F16" */
    int64_t blck_size;                /* elements per block (1 for plain types); 0 = id not in use */
    size_t type_size;                 /* bytes per block */
    int is_quantized;
    slm_to_float_fn to_float;         /* NULL: slm cannot read this type */
    slm_from_float_fn from_float_ref; /* quantize_row_<t>_ref, or NULL */
    slm_quantize_fn quantize;         /* NULL: slm cannot write this type (as a weight) */
    int needs_imatrix;                /* quantize requires importance weights (ggml asserts) */
    int vec_dot_type;                 /* type activations are rounded to before a dot product with
                                         this weight in llama.cpp's CPU backend; -1: none known */
    slm_from_float_fn from_float;     /* the CPU backend's quantizer when this type is a vec_dot
                                         type (its bytes may differ from _ref's), else NULL */
    slm_vec_dot_fn vec_dot;           /* this weight times a vec_dot_type row, ggml's numbers; NULL:
                                         none (dequantize instead) */
} slm_dtype_traits;

/* Traits of a type id; NULL when the id is out of range or not in use (removed ids). */
const slm_dtype_traits *slm_dtype_get(int type);
const char *slm_dtype_name(int type); /* "?" for unknown ids */
/* Case-insensitive lookup by name ("q4_k", "BF16"); returns -1 when unknown. */
int slm_dtype_from_name(const char *name);
/* Bytes of a row of n elements; 0 if n is not a multiple of the block size or overflows. */
size_t slm_dtype_row_size(int type, int64_t n);
/* slm can write / read rows of this type (the table's quantize / to_float). */
int slm_dtype_can_write(int type);
int slm_dtype_can_read(int type);
/* ggml quantizes this type only with importance weights (ggml_quantize_requires_imatrix):
   IQ2_XXS, IQ2_XS, IQ1_S. */
int slm_dtype_needs_imatrix(int type);
/* The types slm can write, space-separated, most bits per weight first (for --help); returns buf. */
const char *slm_dtype_list_writable(char *buf, size_t cap);

#endif
