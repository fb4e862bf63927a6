/* afile.h - atomic output files.
 *
 * Owns: writing through a temp file in the destination's folder (mkstemp), buffered
 * little-endian-agnostic byte writes, then commit = flush + fsync + rename + fsync(dir), or
 * abort = unlink. While open, the temp path is registered with core/signals so SIGINT/SIGTERM
 * remove it. The final path holds either the old file or the complete new one, never a part.
 * Must not: decide about overwriting (cli/ refuses existing outputs without -f).
 */
#ifndef SLM_AFILE_H
#define SLM_AFILE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct slm_afile {
    char *path;      /* final name */
    char *tmp_path;  /* temp name while open */
    int fd;          /* -1 when closed */
    int slot;        /* signals registry slot, -1 if none */
    uint8_t *buf;    /* write buffer */
    size_t buf_len;
    uint64_t written; /* bytes accepted so far (file offset of the next byte) */
} slm_afile;

int slm_afile_open(slm_afile *f, const char *path, slm_err *err);
int slm_afile_write(slm_afile *f, const void *data, size_t n, slm_err *err);
int slm_afile_write_zeros(slm_afile *f, size_t n, slm_err *err);
/* Pads with zeros up to the next multiple of align. */
int slm_afile_pad(slm_afile *f, size_t align, slm_err *err);
/* Flushes, fsyncs, renames over path, fsyncs the folder. The afile is closed after, either way. */
int slm_afile_commit(slm_afile *f, slm_err *err);
/* Removes the temp file. Safe on a zeroed, committed or aborted afile. */
void slm_afile_abort(slm_afile *f);

/* Convenience: write a whole buffer to path atomically. */
int slm_write_file_atomic(const char *path, const void *data, size_t n, slm_err *err);

#endif
