/* export.h - the pipeline every command that writes a GGUF shares (convert, quantize, and
 * prune/distill for models held in memory): tensor source -> plan (recipe types, metadata,
 * sizes, offsets) -> stream tensors (read rows, convert or quantize in parallel, measure the
 * error, write) into an open atomic file. Fills an slm_report (report/report.h).
 *
 * Owns: llama.cpp's tensor order, the refusals (requantizing, types slm cannot write), the
 * general.quantization_version / general.file_type keys, the streaming loop with bounded
 * scratch (slabs of rows, input pages released behind), per-tensor error statistics.
 * Must not: print, open or commit files (the caller owns the slm_afile: it may write more
 * outputs and commit them together), or know where the tensors come from.
 *
 * Usage:
 *   slm_export x = {0};
 *   slm_export_plan(&x, &src, &opts, &err);      // types, KVs, exact output size
 *   slm_export_write(&x, &afile, &err);          // header + tensors into the open file
 *   ... x.rep ...; slm_export_free(&x);
 */
#ifndef SLM_EXPORT_H
#define SLM_EXPORT_H

#include <stddef.h>

#include "core/afile.h"
#include "core/err.h"
#include "core/tensor.h"
#include "formats/gguf.h"
#include "formats/imatrix.h"
#include "model/config.h"
#include "quantize/recipe.h"
#include "report/report.h"

/* Called before each tensor is written (from the calling thread): its name, and how many of
   n_tensors are done. */
typedef void (*slm_export_progress_fn)(void *ud, const char *tensor, size_t done, size_t n_tensors);

typedef struct slm_export_opts {
    const slm_model_config *cfg;   /* the model's hyperparameters (the recipe's counters) */
    const slm_kvs *meta;           /* metadata to write, in order; the plan replaces
                                      general.quantization_version and general.file_type */
    slm_recipe_opts recipe;        /* recipe.has_imatrix follows imatrix */
    const slm_imatrix *imatrix;    /* importance weights per tensor (llama-quantize's --imatrix), or NULL */
    const char *imatrix_file;      /* its path as given (quantize.imatrix.file) */
    int allow_requantize;          /* quantized input may be quantized to another type */
    int widen_1d;                  /* 1-D tensors are F32 in the output whatever their stored type
                                      (llama.cpp's HF converter); else they keep it (GGUF input) */
    slm_export_progress_fn progress;
    void *progress_ud;
} slm_export_opts;

typedef struct slm_export {
    const slm_tensor_src *src;
    slm_export_opts o;
    size_t n;
    size_t *order;      /* source index of output tensor i */
    int *types;         /* output type of tensor i */
    const float **imatrix; /* importance weights of tensor i, or NULL */
    slm_gguf_writer w;
    slm_report rep;     /* tensors[] in output order: types, sizes; errors after the write */
} slm_export;

/* Plans everything (types, KVs, sizes, offsets) without writing; fills the report's sizes. */
int slm_export_plan(slm_export *x, const slm_tensor_src *src, const slm_export_opts *o, slm_err *err);
/* Writes the planned GGUF into f (opened by the caller, who commits or aborts it); fills the
   per-tensor error statistics. */
int slm_export_write(slm_export *x, slm_afile *f, slm_err *err);
/* Safe on a zeroed or freed job. */
void slm_export_free(slm_export *x);

#endif
