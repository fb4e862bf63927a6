/* strindex.h - an open-addressing hash index from NUL-terminated names to positions in the
 * caller's array: O(1) duplicate checks and lookups for parsers whose entry counts come from
 * files (GGUF keys and tensors, safetensors entries, model tensor lists).
 *
 * Owns: the slot table only. The names stay in the caller's array; the index reads them
 * back through key(ctx, pos) when hashes collide, so the array may move (realloc) between
 * calls. Names compare as C strings (strcmp), as every reader did before the index.
 * Must not: own or copy names; know what the positions mean.
 */
#ifndef SLM_STRINDEX_H
#define SLM_STRINDEX_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define SLM_STRINDEX_NONE ((size_t)-1)

/* The name at position pos of the caller's array. */
typedef const char *(*slm_strindex_key)(const void *ctx, size_t pos);

typedef struct slm_strindex {
    uint64_t *slots; /* (hash high 32 bits << 32) | (pos + 1); 0 = empty */
    size_t cap;      /* power of two, or 0 */
    size_t n;
    uint64_t key[2]; /* SipHash key, random per index */
} slm_strindex;

/* Bytes the index takes for n names (for memory caps): at most 4 slots of 8 bytes each. */
#define SLM_STRINDEX_BYTES_PER_NAME 32

/* Adds name -> pos unless the name is present; *dup is then its position, else
   SLM_STRINDEX_NONE. Grows the table (SLM_E_NOMEM on failure). pos < 2^32 - 1. */
int slm_strindex_add(slm_strindex *ix, const char *name, size_t pos, slm_strindex_key key, const void *ctx, size_t *dup,
                     slm_err *err);
/* Sizes the table for n names, so the next adds up to n names allocate nothing. */
int slm_strindex_reserve(slm_strindex *ix, size_t n, slm_err *err);
/* Position of name, or SLM_STRINDEX_NONE. */
size_t slm_strindex_find(const slm_strindex *ix, const char *name, slm_strindex_key key, const void *ctx);
/* Empties the index (keeps the table). */
void slm_strindex_clear(slm_strindex *ix);
/* Safe on a zeroed or freed index. */
void slm_strindex_free(slm_strindex *ix);

#endif
