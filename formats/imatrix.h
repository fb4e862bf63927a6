/* imatrix.h - importance matrices (llama-imatrix's files) and the per-column weights
 * llama-quantize derives from them.
 *
 * Owns: slm_imatrix (per tensor: sums of squared input activations and how many rows were
 * summed), the readers for llama-imatrix's GGUF format and the legacy .dat format, a writer of
 * each that reproduces llama-imatrix's bytes, the weights llama-quantize passes to
 * ggml_quantize_chunk, the check against a model's tensor list, and the quantize.imatrix.* keys.
 * Must not: print, exit, or know how the statistics are collected (model/ does that).
 * Reference: llama.cpp v0.5.0 tools/imatrix/imatrix.cpp, common/imatrix-loader.cpp,
 * tools/quantize/quantize.cpp (load_imatrix) and src/llama-quant.cpp.
 */
#ifndef SLM_IMATRIX_H
#define SLM_IMATRIX_H

#include <stddef.h>
#include <stdint.h>

#include "core/afile.h"
#include "core/err.h"
#include "core/tensor.h"
#include "formats/gguf.h"

/* How the data was read; decides the weight formula (see slm_imatrix_entry.weights). */
enum { SLM_IMATRIX_GGUF = 0, SLM_IMATRIX_LEGACY = 1 };

/* One matrix (2-D tensor) or one expert stack (3-D tensor) of the model. */
typedef struct slm_imatrix_entry {
    char name[SLM_MAX_NAME]; /* GGUF tensor name, e.g. "blk.0.ffn_down.weight" */
    int64_t ncols;           /* values per matrix (GGUF: in_sum2 ne[0]; legacy: nval) */
    int64_t n_mat;           /* matrices: experts of a 3-D tensor, else 1 (legacy: always 1) */
    float *in_sum2;          /* [n_mat][ncols] sum over rows x of x[i]^2 (legacy: the stored
                                values, (sum/count)*ncall) */
    int64_t *counts;         /* [n_mat] rows summed per matrix (GGUF "counts", stored as f32;
                                legacy: ncall, the number of chunks) */
    float *weights;          /* [n_mat][ncols] what llama-quantize passes to ggml:
                                GGUF: in_sum2 / (float)counts[m], or 1 where counts[m] == 0;
                                legacy: in_sum2 / (float)ncall, or in_sum2 where ncall == 0 */
} slm_imatrix_entry;

/* Any other tensor of an imatrix GGUF (slm's future extras: E|x|, Gram matrices, channel
   means), kept as stored and written back after the entries. llama.cpp ignores them. */
typedef struct slm_imatrix_extra {
    char name[SLM_MAX_NAME]; /* must not end in ".in_sum2" or ".counts" (llama.cpp would pair it) */
    int dtype;               /* slm_dtype */
    int ndim;
    int64_t shape[SLM_MAX_DIMS]; /* row-major, outermost first */
    void *data;              /* owned copy */
    size_t nbytes;
} slm_imatrix_extra;

typedef struct slm_imatrix {
    int format;                /* SLM_IMATRIX_GGUF or SLM_IMATRIX_LEGACY */
    slm_imatrix_entry *entries; /* sorted by name (strcmp), as llama-imatrix stores them */
    size_t n_entries, cap;
    char **datasets;           /* imatrix.datasets (legacy: the trailer's one name, if any) */
    size_t n_datasets;
    uint32_t chunk_count;      /* imatrix.chunk_count (legacy: the trailer's last_call, else 0) */
    uint32_t chunk_size;       /* imatrix.chunk_size, tokens per chunk (legacy: 0, not stored) */
    slm_kvs extra_kv;          /* other metadata keys, in file order, written after the four
                                  llama-imatrix keys (name new ones "slm.imatrix.*") */
    slm_imatrix_extra *extras; /* other tensors, in file order */
    size_t n_extras;
} slm_imatrix;

/* Reads a GGUF imatrix ("GGUF" magic) or a legacy .dat file (anything else) into a zeroed im.
   Everything is validated: keys and their types, in_sum2/counts pairs, F32, shapes, finite
   non-negative sums, whole non-negative counts, no duplicates, no bytes past the end. Errors
   name the file and the entry: "x.gguf: entry 'blk.0.attn_q.weight': in_sum2[0][3] is nan". */
int slm_imatrix_load(slm_imatrix *im, const char *path, slm_err *err);
/* The same from memory (tests, fuzzing); messages carry no file name. im copies what it keeps. */
int slm_imatrix_parse(slm_imatrix *im, const uint8_t *data, size_t size, slm_err *err);
/* Safe on a zeroed or freed struct. */
void slm_imatrix_free(slm_imatrix *im);

/* Writes im as llama-imatrix writes a GGUF imatrix (same keys in the same order, tensors
   "<name>.in_sum2" [n_mat, ncols] and "<name>.counts" [n_mat, 1] per entry in name order,
   F32, alignment 32), then extra_kv and extras. Atomic (afile). */
int slm_imatrix_save(const slm_imatrix *im, const char *path, slm_err *err);
/* The same GGUF into f, opened by the caller (who commits or aborts it: an output set). */
int slm_imatrix_write(const slm_imatrix *im, slm_afile *f, slm_err *err);
/* Writes the legacy .dat as `llama-imatrix --output-format dat` does: per entry with data
   ncall = ceil(max count / chunk_size), values (sum/count)*ncall (1*ncall for matrices
   without data), then chunk_count and the last dataset name. Needs chunk_size > 0, except
   for data read from a .dat, which is written back unchanged. Atomic (afile). */
int slm_imatrix_save_legacy(const slm_imatrix *im, const char *path, slm_err *err);

/* What llama-quantize (v0.5.0) does with an imatrix, for callers wiring --imatrix:
 * - names are GGUF tensor names, looked up exactly; no remapping, except with its
 *   --prune-layers, where a renumbered blk.N takes the entry of its original block
 *   (remap_imatrix): pass the original name then;
 * - only tensors it quantizes use weights (never 1-D ones); llama-imatrix stores no entry for
 *   token_embd (a row lookup) nor, by default, output.weight;
 * - no entry: quantized without weights, or refused for types that need one (IQ1/IQ2/Q2_K_S...);
 * - an entry of another size: ignored for token_embd / per_layer_token_embd, error otherwise;
 * - --include-weights / --exclude-weights drop entries whose name contains a substring before
 *   anything else (entries_count counts what is left); slm has no such option yet;
 * - any non-finite weight in any entry stops it ("imatrix contains non-finite value").
 */

/* Entry by exact name, or NULL. */
const slm_imatrix_entry *slm_imatrix_find(const slm_imatrix *im, const char *name);
/* The importance vector for a tensor with rows of ncols values: entry->weights when the entry
   exists and has ncols values per matrix (n_mat matrices of ncols, expert e at e*ncols), else
   NULL. Borrowed from im. For llama-quantize's exact decision use slm_imatrix_lookup. */
const float *slm_imatrix_weights(const slm_imatrix *im, const char *name, int64_t ncols);
/* llama_model_quantize's decision for a tensor of n_expert x rows x ncols (n_expert 1 for
   2-D): *w = NULL when there is no entry ("did not find weights"); the weights when the entry
   has ncols * n_expert values; NULL as well for token_embd.weight / per_layer_token_embd.weight
   of another size (llama.cpp ignores those); any other size mismatch is SLM_E_ARG. */
int slm_imatrix_lookup(const slm_imatrix *im, const char *name, int64_t ncols, int64_t n_expert, const float **w,
                       slm_err *err);

/* Checks that im was made for this model: every entry names a tensor of the list (only name,
   ndim and shape are read) with the same number of values per row (and the same number of
   experts for 3-D tensors), and every sum and weight is finite. SLM_E_ARG "imatrix from
   another model?" on a name or size difference, SLM_E_DATA on non-finite statistics. Tensors
   without an entry are fine (norms, token_embd, output.weight usually have none); a token_embd
   entry of another size passes too, as llama-quantize ignores it. Stricter than llama-quantize,
   which ignores entries that name no tensor. */
int slm_imatrix_check_model(const slm_imatrix *im, const slm_tensor *tensors, size_t n_tensors, slm_err *err);

/* The keys llama-quantize adds to a quantized GGUF, in its order (set in kv, replacing):
   quantize.imatrix.file (string: file as given on the command line, cut to 127 bytes),
   quantize.imatrix.dataset (string: first dataset, cut to 127 bytes; only if there is one),
   quantize.imatrix.entries_count (u32: entries), quantize.imatrix.chunks_count (u32: chunk
   count; only if 0 < chunk_count <= INT32_MAX). llama_model_quantize sets them after the
   input's keys, general.quantization_version and general.file_type. */
int slm_imatrix_quantize_kvs(const slm_imatrix *im, const char *file, slm_kvs *kv, slm_err *err);

/* Building in memory (slm's own calibration). Adds an entry (copies; counts may be NULL for
   all-zero), validates as the reader does and computes its weights with im->format's formula. */
int slm_imatrix_add(slm_imatrix *im, const char *name, int64_t ncols, int64_t n_mat, const float *in_sum2,
                    const int64_t *counts, slm_err *err);
int slm_imatrix_add_dataset(slm_imatrix *im, const char *dataset, slm_err *err);
/* Adds an extra tensor (copies nbytes of data; nbytes must match dtype and shape). */
int slm_imatrix_add_extra(slm_imatrix *im, const char *name, int dtype, int ndim, const int64_t *shape, const void *data,
                          size_t nbytes, slm_err *err);

#endif
