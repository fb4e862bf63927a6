/* safetensors.h - validating safetensors reader (single files and sharded checkpoints) and a
 * planned streaming writer.
 *
 * File layout: u64 LE header length N | N bytes of JSON object {"name": {"dtype": "F32",
 * "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}} | data.
 * Offsets are relative to the data start; together they must tile the data exactly (no gaps,
 * no overlap, nothing left over). Shapes are row-major, outermost first.
 * Owns: slm_st_file (one mapped file), slm_st_model (a folder: one file or an index + shards),
 * slm_st_writer. Must not: print, or trust anything read from the file.
 */
#ifndef SLM_SAFETENSORS_H
#define SLM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/afile.h"
#include "core/err.h"
#include "core/mapfile.h"
#include "core/strindex.h"
#include "core/tensor.h"

#define SLM_ST_MAX_HEADER (100u * 1000u * 1000u) /* the reference implementation's cap */

typedef struct slm_st_entry {
    char *name;                   /* owned */
    int dtype;                    /* slm_dtype: F32, F16 or BF16 */
    int ndim;
    int64_t shape[SLM_MAX_DIMS];
    uint64_t begin, end;          /* data offsets, relative to the data start */
} slm_st_entry;

typedef struct slm_st_file {
    slm_map map;
    size_t data_start;            /* 8 + header length */
    slm_st_entry *entries;        /* in header order */
    size_t n;
    slm_strindex ix;              /* name -> entry: O(1) slm_st_find */
} slm_st_file;

/* Maps and validates a file; errors are prefixed with its path. */
int slm_st_open(slm_st_file *f, const char *path, slm_err *err);
/* Validates an in-memory image (tests, fuzzing); data must outlive f. */
int slm_st_parse(slm_st_file *f, const uint8_t *data, size_t size, slm_err *err);
void slm_st_close(slm_st_file *f);
int slm_st_find(const slm_st_file *f, const char *name); /* index or -1 */
/* View of entry i; borrows the file map. */
void slm_st_view(const slm_st_file *f, size_t i, slm_tensor *t);

/* A checkpoint folder: model.safetensors, or model.safetensors.index.json + shards. */
typedef struct slm_st_ref {
    const char *name;  /* borrowed from the shard's entry */
    int shard;
    int entry;
} slm_st_ref;

typedef struct slm_st_model {
    slm_st_file *shards;
    char **shard_names;  /* file names as in the index (or "model.safetensors") */
    int n_shards;
    slm_st_ref *tensors; /* every tensor, shard order then header order */
    size_t n_tensors;
    slm_strindex ix;     /* name -> index into tensors */
    slm_strindex shard_ix; /* shard file name -> shard */
} slm_st_model;

/* Opens dir/model.safetensors or dir/model.safetensors.index.json and its shards (or, when
   dir is a file, that one safetensors file); validates
   every header before returning (a missing shard, or a tensor the index names that is not in
   its shard, is an error naming both). */
int slm_st_model_open(slm_st_model *m, const char *dir, slm_err *err);
void slm_st_model_close(slm_st_model *m);
int slm_st_model_find(const slm_st_model *m, const char *name); /* index into tensors or -1 */
void slm_st_model_view(const slm_st_model *m, size_t i, slm_tensor *t);
const slm_map *slm_st_model_map(const slm_st_model *m, size_t i); /* the file tensor i lives in */

/* ---- writer ---- */

typedef struct slm_st_writer {
    slm_st_entry *entries;  /* the plan */
    size_t n, cap;
    slm_strindex ix;        /* names of the plan (duplicates) */
    uint64_t data_size;
    char **meta_keys, **meta_vals; /* __metadata__ (string -> string) */
    size_t n_meta;
    slm_afile *out;
    size_t next;
    uint64_t written;       /* data bytes written */
} slm_st_writer;

void slm_st_writer_init(slm_st_writer *w);
int slm_st_writer_meta(slm_st_writer *w, const char *key, const char *val, slm_err *err);
int slm_st_writer_add(slm_st_writer *w, const char *name, int dtype, int ndim, const int64_t *shape, slm_err *err);
/* Header JSON (padded with spaces to a multiple of 8, as the reference writer does). */
int slm_st_writer_begin(slm_st_writer *w, slm_afile *out, slm_err *err);
int slm_st_writer_put(slm_st_writer *w, const void *data, size_t nbytes, slm_err *err);
int slm_st_writer_end(slm_st_writer *w, slm_err *err);
void slm_st_writer_free(slm_st_writer *w);

/* The safetensors dtype string of an slm dtype ("F32", "F16", "BF16"), NULL if none. */
const char *slm_st_dtype_name(int dtype);

#endif
