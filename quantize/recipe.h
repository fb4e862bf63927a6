/* recipe.h - llama.cpp's file types (Q4_K_M, ...) and the per-tensor type each one picks.
 *
 * Owns: the ftype table (llama_ftype wire values, never renumbered), the per-tensor rules of
 * llama.cpp's llama_tensor_get_type (which tensors get more bits, which stay as they are),
 * overrides (--tensor-type REGEX=TYPE, --output-tensor-type, --token-embedding-type, --pure)
 * and the fallback for rows that are not a multiple of the type's block size.
 * Must not: touch tensor data.
 */
#ifndef SLM_RECIPE_H
#define SLM_RECIPE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "model/config.h"

typedef struct slm_ftype_desc {
    const char *name;   /* "Q4_K_M" */
    int ftype;          /* llama_ftype value written as general.file_type */
    int base_type;      /* slm_dtype most tensors get */
    int needs_imatrix;  /* cannot be made without importance weights */
    int supported;      /* slm can write every type this recipe may pick */
    const char *about;  /* one line for --help */
} slm_ftype_desc;

/* Case-insensitive; NULL when unknown. */
const slm_ftype_desc *slm_ftype_find(const char *name);
const slm_ftype_desc *slm_ftype_by_id(int ftype);
/* Table access for listings: returns NULL past the end. */
const slm_ftype_desc *slm_ftype_at(size_t i);

typedef struct slm_tt_override {
    const char *pattern; /* llama.cpp's regex (ECMAScript, translated by core/ecma_re.h), searched in
                            the GGUF tensor name as std::regex_search does */
    int type;
} slm_tt_override;

typedef struct slm_recipe_opts {
    const slm_ftype_desc *ftype;
    int output_type;           /* -1: recipe decides */
    int token_embd_type;       /* -1: recipe decides */
    int pure;                  /* every quantizable tensor gets the base type */
    int has_imatrix;
    const slm_tt_override *overrides;
    size_t n_overrides;
    size_t *override_hits;     /* optional [n_overrides]: quantizable tensors each pattern matched */
} slm_recipe_opts;

typedef struct slm_recipe_tensor {
    const char *name;
    int ndim;
    const int64_t *shape;      /* row-major; shape[ndim-1] is the row length */
    int cur_type;              /* type in the source */
} slm_recipe_tensor;

/* Plans every tensor's output type, in the given order (which must be llama.cpp's processing
   order for the layer counters to match: see slm_recipe_order). fell_back[i] is set when the
   chosen type had to fall back because of the row length. */
int slm_recipe_plan(const slm_recipe_opts *o, const slm_model_config *c, const slm_recipe_tensor *t, size_t n,
                    int *out_types, int *fell_back, slm_err *err);
/* llama.cpp's tensor_requires_imatrix: a tensor of this name quantized to type needs an
   importance matrix (IQ1/IQ2/IQ3_XXS, and Q2_K in a Q2_K_S file; never token_embd or output). */
int slm_recipe_requires_imatrix(const slm_recipe_opts *o, const char *name, int type);
/* llama.cpp's tensor order (llama_model_loader's weight_name_comparer): tensors outside
   blocks first, then by block number; by name within each. For qsort. */
int slm_recipe_order(const char *a, const char *b);

#endif
