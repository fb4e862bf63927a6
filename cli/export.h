/* export.h - the GGUF export pipeline shared by `slm convert` and `slm quantize`:
 * source -> plan (recipe types, sizes, offsets) -> stream tensors (read rows, convert or
 * quantize in parallel, measure the error, write) -> atomic commit. Fills an slm_report.
 */
#ifndef SLM_EXPORT_H
#define SLM_EXPORT_H

#include <stdio.h>

#include "core/err.h"
#include "formats/gguf.h"
#include "formats/model_src.h"
#include "formats/report.h"
#include "quantize/recipe.h"

typedef struct export_job {
    const slm_src *src;
    slm_recipe_opts recipe;
    int allow_requantize;
    /* filled by export_plan */
    size_t n;
    size_t *order;      /* src tensor index of output tensor i */
    int *types;         /* output type of tensor i */
    int *fell_back;
    slm_gguf_writer w;
    slm_report rep;     /* tensors[] in output order */
} export_job;

/* Plans everything (types, KVs, sizes, offsets) without writing. */
int export_plan(export_job *j, slm_err *err);
/* Writes the planned file atomically; fills the per-tensor statistics. */
int export_write(export_job *j, const char *out_path, slm_err *err);
void export_free(export_job *j);
/* One-screen table (tensor, type, shape, bpw, rel. RMSE) and totals. */
void export_print_summary(const export_job *j, FILE *f, int per_tensor);

#endif
