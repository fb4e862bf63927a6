/* sha256.h - SHA-256 (FIPS 180-4) of bytes, files and model folders, for the manifest slm
 * records (report and slm.* GGUF keys) so that pipelines redo a model when its inputs change.
 *
 * Owns: the hash, a file's hash (streamed through a map, pages released as it goes), a
 * folder's hash (sorted names of its regular non-hidden files with their hashes).
 * Must not: print; follow anything but regular files in a folder.
 */
#ifndef SLM_SHA256_H
#define SLM_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct slm_sha256 {
    uint32_t h[8];
    uint64_t n;       /* bytes hashed */
    uint8_t buf[64];
    size_t fill;
} slm_sha256;

void slm_sha256_init(slm_sha256 *s);
void slm_sha256_update(slm_sha256 *s, const void *data, size_t n);
/* The 32-byte digest (ends the computation). */
void slm_sha256_final(slm_sha256 *s, uint8_t digest[32]);
/* 64 lowercase hex digits and a NUL into hex. */
void slm_sha256_hex(slm_sha256 *s, char hex[65]);

/* The hash of a file's bytes; for a folder, the hash of the text "<sha256>  <name>\n" over its
   regular files whose names do not start with '.', sorted by name (sha256sum's format). */
int slm_sha256_path(const char *path, char hex[65], slm_err *err);

#endif
