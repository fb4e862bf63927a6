/* mapfile.h - read-only memory map of an input file.
 *
 * Owns: open + fstat + mmap(PROT_READ, MAP_PRIVATE) and the matching unmap/close.
 * Must not: write into the map; callers convert from it into their own buffers.
 */
#ifndef SLM_MAPFILE_H
#define SLM_MAPFILE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct slm_map {
    const uint8_t *data; /* NULL for an empty file */
    size_t size;
    char *path;          /* owned copy, for messages */
} slm_map;

/* Maps path; errors name the file ("x.safetensors: No such file or directory"). */
int slm_map_open(slm_map *m, const char *path, slm_err *err);
/* Safe on a zeroed or already closed map. */
void slm_map_close(slm_map *m);
/* [off, off+len) will be read now (pages mapped in bulk where the kernel can) / is no longer
   needed (pages dropped from the process). Advice only: failures are ignored. */
void slm_map_advise_populate(const slm_map *m, size_t off, size_t len);
void slm_map_advise_dontneed(const slm_map *m, size_t off, size_t len);

#endif
