/* model_src.h - one view of a model to read from: a Hugging Face folder, a GGUF file or a
 * packed GGUF (formats/pack.h).
 *
 * Owns: opening each kind, the hyperparameters (slm_model_config), the vocabulary, and the
 * tensor list in GGUF naming and layout (HF names mapped, llama q/k rows permuted on read).
 * Every tensor's name, shape and dtype is checked against the config when the source opens,
 * so bad input fails before any output is written.
 * Memory: folders and GGUF files are read from their maps on demand. A packed file's tensor is
 * decompressed when first read and kept until the reader is done with it (advise, release), or
 * until the source closes when its stored rows were borrowed (read_raw without scratch, the
 * transformer's mapped build): at most the model's size, as a GGUF's mapped pages.
 * Must not: print, or write files.
 */
#ifndef SLM_MODEL_SRC_H
#define SLM_MODEL_SRC_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/mapfile.h"
#include "core/tensor.h"
#include "formats/gguf.h"
#include "formats/pack.h"
#include "formats/safetensors.h"
#include "model/config.h"
#include "model/vocab.h"

enum { SLM_SRC_HF = 1, SLM_SRC_GGUF = 2, SLM_SRC_PACK = 3 };

typedef struct slm_src_tensor {
    char name[SLM_MAX_NAME];     /* GGUF name */
    char src_name[128];          /* name in the source file (HF name), for messages */
    const char *file;            /* path of the file holding it, for messages */
    int dtype;                   /* slm_dtype of the stored data */
    int ndim;
    int64_t shape[SLM_MAX_DIMS]; /* row-major, GGUF layout */
    const uint8_t *data;         /* borrowed from the mapped file; NULL in a packed file */
    size_t nbytes;
    const slm_map *map;          /* NULL in a packed file */
    int permute_heads;           /* > 0: llama q/k row permutation with this many heads */
    int pinned;                  /* packed file: its rows were lent out, keep them until close */
} slm_src_tensor;

typedef struct slm_src {
    int kind;
    char name[128];              /* general.name: folder name or the GGUF's general.name */
    slm_model_config cfg;
    slm_vocab vocab;             /* kind SLM_VOCAB_NONE when the source has none */
    int file_type;               /* GGUF source: general.file_type, else -1 */
    slm_src_tensor *tensors;     /* GGUF order: token_embd, blk.0 ..., output_norm, output */
    size_t n_tensors;
    slm_strindex ix;             /* GGUF name -> index: O(1) slm_src_find */
    size_t total_bytes;          /* sum of tensor data bytes as stored */
    slm_st_model st;
    slm_gguf gguf;               /* SLM_SRC_GGUF */
    slm_pack pack;               /* SLM_SRC_PACK (its GGUF header: pack.gguf) */
    float *shifted;              /* HF Gemma: the norms with llama.cpp's + 1, F32 (map NULL) */
    float *generated;            /* HF Phi-3: the rope factor tensors from config.json, F32 (map NULL) */
    slm_kvs sampling;            /* HF: general.sampling.* from generation_config.json (formats/gen_config.h) */
} slm_src;

/* path: a folder (config.json + safetensors + tokenizer), a GGUF file or a packed GGUF (told
   apart by their first bytes). */
int slm_src_open(slm_src *s, const char *path, slm_err *err);
void slm_src_close(slm_src *s);
int slm_src_find(const slm_src *s, const char *gguf_name); /* index or -1 */
int64_t slm_src_nrows(const slm_src_tensor *t);
int64_t slm_src_ncols(const slm_src_tensor *t);
/* Rows [r0, r0+n) of tensor i as f32 in GGUF layout. Quantized GGUF sources are dequantized. */
int slm_src_read_rows(const slm_src *s, size_t i, int64_t r0, int64_t n, float *dst, slm_err *err);
/* Rows [r0, r0+n) as stored (no conversion), permutation applied; dst holds n row-sized rows. */
int slm_src_copy_rows(const slm_src *s, size_t i, int64_t r0, int64_t n, void *dst, slm_err *err);
/* The GGUF header of a GGUF or packed source (NULL for a folder). */
const slm_gguf *slm_src_gguf(const slm_src *s);
/* Drops tensor i's pages from the process (bounded RSS when streaming big models). */
void slm_src_release(const slm_src *s, size_t i);
/* Maps rows [r0, r0+n) in bulk before they are read (fewer page faults). */
void slm_src_prefetch_rows(const slm_src *s, size_t i, int64_t r0, int64_t n);
/* The same for rows [r0, r0+n) only (unpermuted tensors). */
void slm_src_release_rows(const slm_src *s, size_t i, int64_t r0, int64_t n);
/* The source as an slm_tensor_src (core/tensor.h): what the export pipeline and the
   transformer's loader read. Valid while s is open. */
void slm_src_tensors(const slm_src *s, slm_tensor_src *out);
/* The metadata an output GGUF of this source starts from: a GGUF source's own KVs, in order;
   for a folder, slm_src_gguf_meta. */
int slm_src_output_meta(const slm_src *s, slm_kvs *kv, slm_err *err);
/* Output GGUF metadata: general.*, <arch>.* hyperparameters and tokenizer.* (no file_type). */
int slm_src_gguf_meta(const slm_src *s, slm_kvs *kv, slm_err *err);
/* The same for any config (a model held in memory): general.name = name, tokenizer.* from
   vocab when it is not NULL or SLM_VOCAB_NONE. */
int slm_model_gguf_meta(const slm_model_config *c, const char *name, const slm_vocab *vocab, slm_kvs *kv, slm_err *err);

#endif
