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
#include "model/calib.h"
#include "model/config.h"
#include "quantize/method.h"
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
    const slm_calib *calib;        /* calibration statistics (E[x^2], E|x|, Gram matrices) for
                                      awq / gptq, or NULL; made for this model (cfg) */
    int method;                    /* slm_qmethod: rtn / imatrix need no calib, the rest do */
    slm_qmethod_params mp;         /* the method's parameters (slm_qmethod_params_default) */
    const int *force_types;        /* per output tensor (llama.cpp order): this type instead of the
                                      recipe's, or -1 (slm_export_target's choice) */
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
    const float **imatrix; /* importance weights of tensor i, or NULL (AWQ: rescaled, in awq_w) */
    const slm_calib_input **calin; /* calibration statistics of tensor i's input, or NULL */
    /* AWQ's folded scales, per output tensor (NULL: none): columns multiplied by col_mul[i],
       rows (2-D) or elements (1-D: norms, biases) divided by row_div[i]; awq_w[i] owns the
       importance weights rescaled by 1/col_mul^2. Filled by the pre-pass of slm_export_write. */
    float **col_mul, **row_div, **awq_w;
    float *clip;        /* AWQ's clipping ratio of tensor i (rows clamped to +-clip max|row| after
                           scaling); 0 or 1: none */
    int awq_clipped;              /* tensors clipped (--awq-clip) */
    int awq_groups;               /* groups folded (alpha > 0), the sum of their alphas, and the
                                     scored output errors before and after (sampled rows) */
    double awq_alpha_sum, awq_err_base, awq_err, awq_seconds;
    slm_gguf_writer w;
    slm_report rep;     /* tensors[] in output order: types, sizes; errors after the write */
} slm_export;

/* Plans everything (types, KVs, sizes, offsets) without writing; fills the report's sizes. */
int slm_export_plan(slm_export *x, const slm_tensor_src *src, const slm_export_opts *o, slm_err *err);
/* Writes the planned GGUF into f (opened by the caller, who commits or aborts it); fills the
   per-tensor error statistics. */
int slm_export_write(slm_export *x, slm_afile *f, slm_err *err);
/* AWQ's pre-pass (export_awq.c; slm_export_write runs it for the awq methods): searches every
   foldable group's scales and fills col_mul / row_div / awq_w. */
int slm_export_awq_prepass(slm_export *x, slm_err *err);
/* export_target.c: on a planned job, types for a file of at most target bytes (--target-size):
   candidates Q2_K..Q6_K, Q8_0 for every tensor the plan quantizes; predicted error = the
   importance-weighted squared error of actually quantizing it, relative to the tensor's weighted
   energy (unweighted without an imatrix); types[i] = -1 for the others. *size = the predicted file size (exact; re-plan with force_types). */
int slm_export_target(const slm_export *x, uint64_t target, int *types, uint64_t *size, slm_err *err);
/* Safe on a zeroed or freed job. */
void slm_export_free(slm_export *x);

#endif
