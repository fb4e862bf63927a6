/* afile.h - atomic output files, alone or as a set committed together: the one output layer.
 *
 * Owns: writing through an unnamed temp file in the destination's folder (Linux O_TMPFILE:
 * nothing is left behind whatever kills the process; elsewhere a named ".<name>.slm-<pid>-*"
 * temp that later runs remove once its process is gone), buffered writes, then commit = flush
 * + fsync + link into place (no existing file: fails if one appeared meanwhile, so two runs
 * racing for one path cannot both win) or rename over it (replace, -f) + fsync(dir); abort =
 * nothing left. Full buffers are written by a background thread while the caller fills the
 * next one (writing overlaps computing; two buffers bound the memory; bytes and order are
 * the caller's). An output set commits several files (a model and its reports) only when all
 * were written, and on a failed commit removes the ones it had already put in place.
 * Also the output-path rules every command shares (slm_output_check).
 * Must not: print; decide about -f (the caller passes it).
 */
#ifndef SLM_AFILE_H
#define SLM_AFILE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum {
    SLM_AFILE_REPLACE = 1, /* an existing regular file at the path may be replaced (-f) */
};

typedef struct slm_afile {
    char *path;      /* final name */
    char *tmp_path;  /* named temp while open, or NULL (unnamed O_TMPFILE) */
    int fd;          /* -1 when closed */
    int flags;       /* SLM_AFILE_* */
    int slot;        /* signals registry slot of a named temp, -1 if none */
    uint8_t *buf;    /* the write buffer being filled */
    uint8_t *spare;  /* the other one, handed to the writer thread while buf fills */
    size_t buf_len;
    uint64_t written; /* bytes accepted so far (file offset of the next byte) */
    struct slm_afile_writer *wr; /* background writer (started at the first full buffer), or NULL */
} slm_afile;

/* Opens path for writing with flags. Refuses (SLM_E_ARG) an existing folder, FIFO, device or
   socket, and an existing file without SLM_AFILE_REPLACE. */
int slm_afile_open_flags(slm_afile *f, const char *path, int flags, slm_err *err);
/* The same with SLM_AFILE_REPLACE (library writers whose callers checked the path). */
int slm_afile_open(slm_afile *f, const char *path, slm_err *err);
int slm_afile_write(slm_afile *f, const void *data, size_t n, slm_err *err);
int slm_afile_write_zeros(slm_afile *f, size_t n, slm_err *err);
/* Writing without a copy: the free part of the current buffer (*room > 0 bytes) for the caller
   to fill, then slm_afile_advance(n <= room) hands the first n of them over. The pointer is
   valid until the next call that writes. */
uint8_t *slm_afile_space(slm_afile *f, size_t *room);
int slm_afile_advance(slm_afile *f, size_t n, slm_err *err);
/* Pads with zeros up to the next multiple of align. */
int slm_afile_pad(slm_afile *f, size_t align, slm_err *err);
/* Flushes, fsyncs and puts the file in place (link or rename), fsyncs the folder. The afile
   is closed after, either way. */
int slm_afile_commit(slm_afile *f, slm_err *err);
/* Removes the temp file. Safe on a zeroed, committed or aborted afile. */
void slm_afile_abort(slm_afile *f);

/* Convenience: write a whole buffer to path atomically (replacing). */
int slm_write_file_atomic(const char *path, const void *data, size_t n, slm_err *err);

/* ---- a set of outputs committed together */

#define SLM_OUTSET_MAX 16

typedef struct slm_outset {
    slm_afile files[SLM_OUTSET_MAX];
    int n;
    int flags;                        /* SLM_AFILE_* for every file */
    char *dirs[SLM_OUTSET_MAX];       /* folders created for the set (removed again on abort) */
    int n_dirs;
} slm_outset;

void slm_outset_init(slm_outset *s, int flags);
/* Opens one more output of the set; *f stays valid until commit/abort. */
int slm_outset_open(slm_outset *s, const char *path, slm_afile **f, slm_err *err);
/* Opens, writes and keeps (for the commit) a whole buffer. */
int slm_outset_write_file(slm_outset *s, const char *path, const void *data, size_t n, slm_err *err);
/* mkdir -p, remembering the folders it made so an abort removes them. */
int slm_outset_mkdir(slm_outset *s, const char *dir, slm_err *err);
/* Commits every file in order. On a failure the files this call already put in place are
   removed (those that replaced an old file cannot bring it back), the rest aborted. */
int slm_outset_commit(slm_outset *s, slm_err *err);
/* Nothing of the set is left (temps removed, created folders removed when empty). */
void slm_outset_abort(slm_outset *s);

/* ---- output paths: the rules every command applies before any work */

/* Refuses, with one line naming the path: "-" (slm writes files, atomically, not streams); an
   existing folder, FIFO, device or socket (also behind a symlink); an existing file or symlink
   without force; a path that is one of the inputs (same file) or a file inside an input folder
   (inputs[] may be files or folders); and the same file as another output of the command
   (outputs[0 .. i) are the ones checked before). */
int slm_output_check(const char *out, const char *const *inputs, size_t n_in, const char *const *outputs, size_t n_out,
                     int force, slm_err *err);

#endif
