/* export_hf.h - a model as a Hugging Face folder (config.json, model.safetensors, the tokenizer
 * files): what prune and distill write for PyTorch / transformers users, and what `slm convert`
 * reads back.
 *
 * Owns: GGUF -> HF tensor names and layout (the inverse of llama.cpp's q/k row permutation),
 * the weights' dtype, streaming tensor by tensor in bounded slabs, the files copied from the
 * source folder (tokenizer and generation config).
 * Must not: print, or commit the folder (the caller owns the slm_adir: core/adir.h).
 */
#ifndef SLM_EXPORT_HF_H
#define SLM_EXPORT_HF_H

#include "core/adir.h"
#include "core/err.h"
#include "core/tensor.h"
#include "export/export.h"
#include "model/config.h"

typedef struct slm_export_hf_opts {
    const slm_tensor_src *src;   /* the model's tensors in GGUF names and layout */
    const slm_model_config *cfg; /* its hyperparameters: one width for every layer */
    const char *base_dir;        /* the HF folder the model comes from, or NULL: its config.json is
                                    the base of the new one, its tokenizer files are copied */
    int dtype;                   /* SLM_DTYPE_F32 / F16 / BF16: every tensor of model.safetensors */
    slm_export_progress_fn progress;
    void *progress_ud;
} slm_export_hf_opts;

/* The files the folder gets from base_dir when it has them. */
extern const char *const slm_export_hf_copied[];

/* Writes config.json, model.safetensors and the copied files into d (open). Tensors outside
   the catalogue, non-finite values (SLM_E_DATA) and per-layer widths are refused. */
int slm_export_hf(const slm_export_hf_opts *o, slm_adir *d, slm_err *err);

#endif
