/* adir.h - an output folder committed as a whole (a Hugging Face model folder): built in a
 * hidden temp folder beside its destination, then put in place by one rename.
 *
 * Owns: the temp folder ".<name>.slm-<pid>-<random>" (files written into it with core/afile.h,
 * so each is complete and fsynced), the commit (fsync the folder, rename it into place; an
 * existing folder is replaced only with SLM_AFILE_REPLACE, by an atomic exchange, and only when
 * it looks like a model folder: regular files, no subfolders), removal on failure and on
 * signals (core/signals.c), and removal of temp folders left by killed processes.
 * Must not: print. Folders are flat: no subfolders inside.
 *
 * Usage:
 *   slm_adir d;
 *   slm_adir_open(&d, "out/model", flags, &err);
 *   slm_adir_write_file(&d, "config.json", json, len, &err);   // or slm_adir_open_file + afile
 *   slm_adir_commit(&d, &err);   (or slm_adir_abort(&d): nothing is left)
 */
#ifndef SLM_ADIR_H
#define SLM_ADIR_H

#include <stddef.h>

#include "afile.h"
#include "err.h"

#define SLM_ADIR_MAX_FILES 14

typedef struct slm_adir {
    char *path;  /* final folder */
    char *tmp;   /* the temp folder while open, NULL after commit/abort */
    int flags;   /* SLM_AFILE_REPLACE */
    int slot;    /* signals registry slot of the temp folder */
    int n_files, file_slot[SLM_ADIR_MAX_FILES];
    char *files[SLM_ADIR_MAX_FILES]; /* committed into tmp (full paths), removed by abort */
} slm_adir;

/* Checks the destination (nothing there, or with SLM_AFILE_REPLACE a replaceable folder) and
   makes the temp folder beside it. */
int slm_adir_open(slm_adir *d, const char *path, int flags, slm_err *err);
/* Opens file name (no '/') of the folder for writing; commit it with slm_adir_commit_file. */
int slm_adir_open_file(slm_adir *d, const char *name, slm_afile *f, slm_err *err);
/* Commits f (opened by slm_adir_open_file) into the temp folder. */
int slm_adir_commit_file(slm_adir *d, slm_afile *f, slm_err *err);
/* Opens, writes and commits a whole buffer as file name. */
int slm_adir_write_file(slm_adir *d, const char *name, const void *data, size_t n, slm_err *err);
/* Copies file src (a regular file) into the folder as name. */
int slm_adir_copy_file(slm_adir *d, const char *name, const char *src, slm_err *err);
/* Fsyncs the temp folder and puts it at path (replacing the old folder when allowed, whose
   files are then removed); fsyncs the parent. On failure nothing new is left and an existing
   folder is untouched. */
int slm_adir_commit(slm_adir *d, slm_err *err);
/* Removes the temp folder and its files. Safe on a zeroed, committed or aborted folder. */
void slm_adir_abort(slm_adir *d);

/* Removes a committed folder slm wrote (regular files only; a folder holding anything else is
   left alone). For "no model without its report" after a later step failed. */
void slm_adir_remove(const char *path);

/* The rules of slm_output_check (core/afile.h) for an output folder: refuses "-", an existing
   file, an existing folder without force or one that is not a model folder (subfolders or
   special files: slm never removes those), and a folder that is one of the inputs or holds one. */
int slm_output_dir_check(const char *out, const char *const *inputs, size_t n_in, int force, slm_err *err);

#endif
