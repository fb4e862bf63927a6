/* gguf_impl.h - internals shared by gguf_kv.c and gguf_read.c. Not part of the public API.
 *
 * The reader moves parsed keys and values into the store (no deep copy: the file's metadata
 * is held once) and builds string arrays in the store's one-block layout itself.
 */
#ifndef SLM_GGUF_IMPL_H
#define SLM_GGUF_IMPL_H

#include "gguf.h"

/* Appends or replaces key -> *v, taking ownership of key (slm_alloc'd) and *v; on failure
   both are freed. */
int slm_kvs_put_owned(slm_kvs *kv, char *key, slm_gguf_val *v, slm_err *err);
/* Makes *v an array of n strings in one block of n headers + nbytes of string bytes (the
   sum of len + 1 over the strings); headers zeroed. Returns the bytes area in *bytes. */
int slm_gguf_str_array_alloc(slm_gguf_val *v, uint64_t n, size_t nbytes, char **bytes, slm_err *err);

#endif
