/* mem.h - sized, named allocations that fail with a message instead of crashing.
 *
 * Owns: slm_alloc/slm_calloc/slm_realloc/slm_free, human-readable byte counts, and the
 * test-only fail-after counter that lets `make check` drive every out-of-memory path.
 * Must not: abort on failure; the caller gets SLM_E_NOMEM and a message naming `what`.
 */
#ifndef SLM_MEM_H
#define SLM_MEM_H

#include <stddef.h>

#include "err.h"

/* Returns 0 and sets *out, or fills err with "allocating 1.2 GiB for <what>: out of memory". */
int slm_alloc(void **out, size_t nbytes, slm_err *err, const char *what);
/* The same at an address that is a multiple of align (a power of two >= sizeof(void *)); freed
   with slm_free. */
int slm_alloc_aligned(void **out, size_t align, size_t nbytes, slm_err *err, const char *what);
int slm_calloc(void **out, size_t n, size_t size, slm_err *err, const char *what);
int slm_realloc(void **ptr, size_t nbytes, slm_err *err, const char *what);
void slm_free(void *p);
char *slm_strdup(const char *s, slm_err *err);

/* Formats a byte count as "512 B", "3.2 KiB", "1.20 GiB" into buf (>= 32 bytes). */
const char *slm_fmt_bytes(char *buf, size_t bufsize, double nbytes);

/* Test hook: after k more successful allocations, every allocation fails (k < 0: never). */
void slm_mem_fail_after(long k);

#endif
