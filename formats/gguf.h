/* gguf.h - GGUF v3: metadata key/value store, validating reader, planned streaming writer.
 *
 * File layout (all little-endian; strings are u64 length + bytes, no NUL):
 *   u32 magic "GGUF" | u32 version (3) | u64 n_tensors | u64 n_kv
 *   n_kv x { string key | u32 value_type | value }      (ARRAY = u32 elem_type, u64 n, elems)
 *   n_tensors x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
 *   zero padding to general.alignment (default 32) | tensor data, each tensor at its offset
 *   (relative to the data start; offsets are the running sum of sizes padded to alignment).
 * ne[] is ggml's order (ne[0] = row length); slm shapes are row-major outermost first, and the
 * reversal happens only in gguf_read.c / gguf_write.c.
 * Owns: slm_kvs (ordered KV list shared by reader and writer), slm_gguf (reader),
 * slm_gguf_writer. Must not: print, or trust any number read from a file.
 */
#ifndef SLM_GGUF_H
#define SLM_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "core/afile.h"
#include "core/err.h"
#include "core/mapfile.h"
#include "core/strindex.h"
#include "core/tensor.h"

#define SLM_GGUF_MAGIC 0x46554747u /* "GGUF" read as a little-endian u32 */
#define SLM_GGUF_VERSION 3
#define SLM_GGUF_DEFAULT_ALIGNMENT 32

/* Wire values of metadata types: never renumber. */
typedef enum slm_gguf_type {
    SLM_GGUF_UINT8 = 0,
    SLM_GGUF_INT8 = 1,
    SLM_GGUF_UINT16 = 2,
    SLM_GGUF_INT16 = 3,
    SLM_GGUF_UINT32 = 4,
    SLM_GGUF_INT32 = 5,
    SLM_GGUF_FLOAT32 = 6,
    SLM_GGUF_BOOL = 7,
    SLM_GGUF_STRING = 8,
    SLM_GGUF_ARRAY = 9,
    SLM_GGUF_UINT64 = 10,
    SLM_GGUF_INT64 = 11,
    SLM_GGUF_FLOAT64 = 12,
    SLM_GGUF_TYPE_COUNT = 13,
} slm_gguf_type;

typedef struct slm_gguf_str {
    uint64_t len;
    char *s; /* NUL-terminated copy (the bytes may also contain NULs); a STRING value owns it,
                the strings of an array live in the array's one allocation */
} slm_gguf_str;

typedef struct slm_gguf_val slm_gguf_val;
struct slm_gguf_val {
    int type; /* slm_gguf_type */
    union {
        uint8_t u8;
        int8_t i8;
        uint16_t u16;
        int16_t i16;
        uint32_t u32;
        int32_t i32;
        float f32;
        uint8_t b; /* 0 or 1 */
        uint64_t u64;
        int64_t i64;
        double f64;
        slm_gguf_str str;
        struct {
            int type;     /* element type */
            uint64_t n;
            void *data;   /* packed scalars (element size each), slm_gguf_val[n], or slm_gguf_str[n]
                             followed by the string bytes in the same block */
        } arr;
    } v;
};

typedef struct slm_kv {
    char *key;
    slm_gguf_val val;
} slm_kv;

typedef struct slm_kvs {
    slm_kv *items;
    size_t n, cap;
    slm_strindex ix; /* key -> position in items: O(1) get/set */
} slm_kvs;

const char *slm_gguf_type_name(int type);
size_t slm_gguf_scalar_size(int type); /* 0 for STRING/ARRAY/unknown */

/* Setters replace an existing key in place (order is first insertion) and deep-copy values. */
int slm_kvs_set_u32(slm_kvs *kv, const char *key, uint32_t v, slm_err *err);
int slm_kvs_set_i32(slm_kvs *kv, const char *key, int32_t v, slm_err *err);
int slm_kvs_set_u64(slm_kvs *kv, const char *key, uint64_t v, slm_err *err);
int slm_kvs_set_f32(slm_kvs *kv, const char *key, float v, slm_err *err);
int slm_kvs_set_bool(slm_kvs *kv, const char *key, int v, slm_err *err);
int slm_kvs_set_str(slm_kvs *kv, const char *key, const char *s, slm_err *err);
/* Array of scalars: data holds n packed elements of elem_type. */
int slm_kvs_set_arr(slm_kvs *kv, const char *key, int elem_type, const void *data, uint64_t n, slm_err *err);
/* Array of strings (NUL-terminated). */
int slm_kvs_set_arr_str(slm_kvs *kv, const char *key, const char *const *strs, uint64_t n, slm_err *err);
/* Any value, deep copy (used to carry KVs from one file to another). */
int slm_kvs_set_val(slm_kvs *kv, const char *key, const slm_gguf_val *v, slm_err *err);
int slm_kvs_remove(slm_kvs *kv, const char *key);
const slm_gguf_val *slm_kvs_get(const slm_kvs *kv, const char *key);
/* Typed getters: SLM_E_FORMAT with "key 'k': expected ..., found ..." on a type mismatch,
   SLM_E_FORMAT "missing key 'k'" when absent (use slm_kvs_get to test presence). Integer
   getters accept any integer type whose value fits. */
int slm_kvs_get_u32(const slm_kvs *kv, const char *key, uint32_t *out, slm_err *err);
int slm_kvs_get_i64(const slm_kvs *kv, const char *key, int64_t *out, slm_err *err);
int slm_kvs_get_f32(const slm_kvs *kv, const char *key, float *out, slm_err *err);
int slm_kvs_get_bool(const slm_kvs *kv, const char *key, int *out, slm_err *err);
int slm_kvs_get_str(const slm_kvs *kv, const char *key, const char **out, slm_err *err);
/* Array of a given element type; *data points into the store. */
int slm_kvs_get_arr(const slm_kvs *kv, const char *key, int elem_type, const void **data, uint64_t *n, slm_err *err);
void slm_kvs_free(slm_kvs *kv);
void slm_gguf_val_free(slm_gguf_val *v);
int slm_gguf_val_copy(slm_gguf_val *dst, const slm_gguf_val *src, slm_err *err);
/* 1 when two values have the same type and bytes (arrays element by element, nested too). */
int slm_gguf_val_equal(const slm_gguf_val *a, const slm_gguf_val *b);

/* ---- reader ---------------------------------------------------------------------------- */

typedef struct slm_gguf_tinfo {
    char name[SLM_MAX_NAME];
    int type;                    /* slm_dtype (= ggml type id) */
    int ndim;
    int64_t shape[SLM_MAX_DIMS]; /* row-major, outermost first */
    uint64_t offset;             /* relative to data_offset */
    size_t nbytes;
} slm_gguf_tinfo;

/* Metadata memory cap of the reader. Keys, values, tensor infos and their indexes may take at
   most max(SLM_GGUF_META_FLOOR, 2 x the header bytes read so far): every real tokenizer or
   model header fits the floor many times over (a 256k-token vocab with 500k merges takes
   ~30 MB), and past it the in-memory form is at most twice its bytes in the file for any
   string array whose strings average one byte or more (16-byte header + NUL vs an 8-byte
   length). What exceeds the cap (arrays of millions of empty strings, millions of tiny
   keys or tensors) is refused with "key 'k': metadata would need ..." instead of taking
   ten times the file in RAM. */
#define SLM_GGUF_META_FLOOR ((size_t)64 << 20)

typedef struct slm_gguf {
    slm_map map;
    uint32_t version;
    slm_kvs kv;
    slm_gguf_tinfo *tensors;
    size_t n_tensors;
    slm_strindex tix;   /* tensor name -> index: O(1) slm_gguf_find */
    size_t meta_bytes;  /* memory the metadata takes, as charged against the cap */
    size_t alignment;
    size_t data_offset; /* file offset of the data section */
    int header_only;    /* parsed by slm_gguf_parse_header: the data is elsewhere (no views) */
} slm_gguf;

/* Maps and validates path (ggml's checks and more, and the metadata memory cap above).
   Errors are prefixed with the path. */
int slm_gguf_open(slm_gguf *g, const char *path, slm_err *err);
/* Validates an in-memory image (fuzzing, tests); g->map is not owned: data must outlive g. */
int slm_gguf_parse(slm_gguf *g, const uint8_t *data, size_t size, slm_err *err);
/* Validates the header of a GGUF whose data is not in memory (a packed file, formats/pack.h):
   head holds the file's first head_size bytes, which must be exactly the header (up to the
   data section, or the whole file when it has no tensors); tensor data is checked to lie
   inside a file of file_size bytes. g borrows head; slm_gguf_view must not be used. */
int slm_gguf_parse_header(slm_gguf *g, const uint8_t *head, size_t head_size, size_t file_size, slm_err *err);
void slm_gguf_close(slm_gguf *g);
int slm_gguf_find(const slm_gguf *g, const char *name); /* index or -1 */
/* View of tensor i; borrows the file map (valid until slm_gguf_close). */
void slm_gguf_view(const slm_gguf *g, size_t i, slm_tensor *t);

/* ---- writer ---------------------------------------------------------------------------- */

typedef struct slm_gguf_writer {
    slm_kvs kv;                 /* caller fills before begin */
    slm_gguf_tinfo *tensors;    /* the plan: names, types, shapes, sizes, offsets */
    size_t n_tensors, cap;
    slm_strindex tix;           /* tensor name -> index (duplicate names) */
    size_t alignment;           /* from general.alignment at begin; default 32 */
    uint64_t data_size;         /* padded size of the data section so far */
    slm_afile *out;             /* set by begin */
    uint64_t data_start;        /* file offset of the data section */
    size_t next;                /* next tensor to be written */
} slm_gguf_writer;

void slm_gguf_writer_init(slm_gguf_writer *w);
/* Adds a tensor to the plan; checks the name (< 64 bytes, unique) and that the row length
   fits the type's block size. Offsets are final once added. */
int slm_gguf_writer_add(slm_gguf_writer *w, const char *name, int type, int ndim, const int64_t *shape, slm_err *err);
/* Bytes of header + KVs + tensor infos + padding (dry run), and of the whole file. */
uint64_t slm_gguf_writer_meta_size(const slm_gguf_writer *w);
uint64_t slm_gguf_writer_file_size(const slm_gguf_writer *w);
/* Writes header, KVs, tensor infos and padding to out. */
int slm_gguf_writer_begin(slm_gguf_writer *w, slm_afile *out, slm_err *err);
/* Writes the data of the next planned tensor (nbytes must equal the plan), then padding. */
int slm_gguf_writer_put(slm_gguf_writer *w, const void *data, size_t nbytes, slm_err *err);
/* Appends bytes to the current tensor; pads and moves to the next one when it is complete. */
int slm_gguf_writer_put_part(slm_gguf_writer *w, const void *data, size_t nbytes, slm_err *err);
/* The same without a copy: space for the current tensor's next bytes in the output's buffer
   (*room > 0: at most what the tensor still lacks), filled by the caller, then advance(n <= room). */
uint8_t *slm_gguf_writer_space(slm_gguf_writer *w, size_t *room);
int slm_gguf_writer_advance(slm_gguf_writer *w, size_t nbytes, slm_err *err);
/* Checks every planned tensor was written. */
int slm_gguf_writer_end(slm_gguf_writer *w, slm_err *err);
void slm_gguf_writer_free(slm_gguf_writer *w);

#endif
