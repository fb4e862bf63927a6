/* adir.c - output folders committed as a whole: temp folder, rename or exchange, cleanup. */
#define _GNU_SOURCE /* renameat2, RENAME_EXCHANGE / RENAME_NOREPLACE */
#include "adir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem.h"
#include "signals.h"
#include "slm.h"

#define TMP_TAG ".slm-" /* as core/afile.c: ".<name>.slm-<pid>-<random>" */

static int io_err(const char *path, slm_err *err, const char *op) {
    return slm_errf(err, SLM_E_IO, "%s: %s: %s", path, op, strerror(errno));
}

/* parent folder and last component of path (trailing slashes ignored) */
static void split(const char *path, char *dir, char *base) {
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", path);
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/') p[--n] = 0;
    char *s = strrchr(p, '/');
    if (!s) snprintf(dir, PATH_MAX, "."), snprintf(base, PATH_MAX, "%s", p);
    else if (s == p) snprintf(dir, PATH_MAX, "/"), snprintf(base, PATH_MAX, "%s", s + 1);
    else *s = 0, snprintf(dir, PATH_MAX, "%s", p), snprintf(base, PATH_MAX, "%s", s + 1);
}

/* 1: a folder of regular files only (what slm may remove), 0: anything else in it, -1: unreadable */
static int is_flat(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int ok = 1;
    for (struct dirent *e; ok && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[PATH_MAX * 2];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        ok = lstat(p, &st) == 0 && S_ISREG(st.st_mode);
    }
    closedir(d);
    return ok;
}

/* Removes a flat folder (its regular files, then itself). Best effort. */
static void remove_flat(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        for (struct dirent *e; (e = readdir(d));) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char p[PATH_MAX * 2];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* Temp folders ".<base>.slm-<pid>-*" of processes that no longer exist. */
static void remove_stale(const char *dir, const char *base) {
    char prefix[PATH_MAX];
    size_t np = (size_t)snprintf(prefix, sizeof prefix, ".%s" TMP_TAG, base);
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, prefix, np)) continue;
        char *end, p[PATH_MAX * 2];
        long pid = strtol(e->d_name + np, &end, 10);
        if (pid <= 0 || *end != '-' || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode) && is_flat(p) == 1) remove_flat(p);
    }
    closedir(d);
}

/* What is at path: 0 nothing, 1 a folder slm may replace, -1 error filled. */
static int existing_dir(const char *path, int force, slm_err *err) {
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) return 0;
        if (errno == ENOTDIR) return slm_errf(err, SLM_E_IO, "%s: cannot be created: a parent is not a folder", path), -1;
        return io_err(path, err, "stat"), -1;
    }
    if (!S_ISDIR(st.st_mode)) return slm_errf(err, SLM_E_ARG, "%s: exists and is not a folder", path), -1;
    if (!force) return slm_errf(err, SLM_E_ARG, "%s: already exists (use -f to replace the folder)", path), -1;
    if (is_flat(path) != 1)
        return slm_errf(err, SLM_E_ARG, "%s: not a model folder (it holds subfolders or special files): refusing to replace it", path),
               -1;
    return 1;
}

static int fsync_dir(const char *dir, slm_err *err) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return io_err(dir, err, "open");
    int rc = fsync(fd) != 0 && errno != EINVAL ? io_err(dir, err, "fsync") : SLM_OK;
    close(fd);
    return rc;
}

int slm_adir_open(slm_adir *d, const char *path, int flags, slm_err *err) {
    memset(d, 0, sizeof *d);
    d->slot = -1;
    d->flags = flags;
    if (existing_dir(path, flags & SLM_AFILE_REPLACE, err) < 0) return err->code;
    char dir[PATH_MAX], base[PATH_MAX];
    split(path, dir, base);
    remove_stale(dir, base);
    size_t n = strlen(dir) + strlen(base) + 64;
    SLM_TRY(slm_alloc((void **)&d->path, strlen(path) + 1, err, "folder path"));
    memcpy(d->path, path, strlen(path) + 1);
    if (slm_alloc((void **)&d->tmp, n, err, "folder path")) return slm_adir_abort(d), err->code;
    snprintf(d->tmp, n, "%s/.%s" TMP_TAG "%ld-XXXXXX", dir, base, (long)getpid());
    if (!mkdtemp(d->tmp)) {
        int rc = slm_errf(err, SLM_E_IO, "%s: cannot create a folder in '%s': %s", path, dir, strerror(errno));
        slm_free(d->tmp), d->tmp = NULL;
        slm_adir_abort(d);
        return rc;
    }
    d->slot = slm_signals_track(d->tmp);
    return SLM_OK;
}

int slm_adir_open_file(slm_adir *d, const char *name, slm_afile *f, slm_err *err) {
    char p[PATH_MAX * 2];
    if (!d->tmp || strchr(name, '/') || !name[0]) return slm_errf(err, SLM_E_ARG, "%s: bad file name '%s'", d->path, name);
    if (d->n_files == SLM_ADIR_MAX_FILES) return slm_errf(err, SLM_E_ARG, "%s: too many files", d->path);
    snprintf(p, sizeof p, "%s/%s", d->tmp, name);
    return slm_afile_open_flags(f, p, 0, err);
}

int slm_adir_commit_file(slm_adir *d, slm_afile *f, slm_err *err) {
    char *p = NULL;
    size_t n = strlen(f->path) + 1;
    if (slm_alloc((void **)&p, n, err, "file path")) return slm_afile_abort(f), err->code;
    memcpy(p, f->path, n);
    int rc = slm_afile_commit(f, err);
    if (rc) return slm_free(p), rc;
    d->file_slot[d->n_files] = slm_signals_track(p);
    d->files[d->n_files++] = p;
    return SLM_OK;
}

int slm_adir_write_file(slm_adir *d, const char *name, const void *data, size_t n, slm_err *err) {
    slm_afile f;
    SLM_TRY(slm_adir_open_file(d, name, &f, err));
    int rc = slm_afile_write(&f, data, n, err);
    if (rc) return slm_afile_abort(&f), rc;
    return slm_adir_commit_file(d, &f, err);
}

int slm_adir_copy_file(slm_adir *d, const char *name, const char *src, slm_err *err) {
    int fd = open(src, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return io_err(src, err, "open");
    slm_afile f;
    int rc = slm_adir_open_file(d, name, &f, err);
    char buf[1 << 16];
    for (ssize_t r; !rc && (r = read(fd, buf, sizeof buf)) != 0;)
        rc = r < 0 ? (errno == EINTR ? SLM_OK : io_err(src, err, "read")) : slm_afile_write(&f, buf, (size_t)r, err);
    close(fd);
    if (rc) return slm_afile_abort(&f), rc;
    return slm_adir_commit_file(d, &f, err);
}

static void forget(slm_adir *d) {
    for (int i = 0; i < d->n_files; i++) slm_signals_untrack(d->file_slot[i]), slm_free(d->files[i]);
    d->n_files = 0;
    if (d->slot >= 0) slm_signals_untrack(d->slot);
    d->slot = -1;
}

int slm_adir_commit(slm_adir *d, slm_err *err) {
    char dir[PATH_MAX], base[PATH_MAX];
    if (!d->tmp) return slm_errf(err, SLM_E_ARG, "%s: folder not open", d->path ? d->path : "?");
    if (slm_signals_pending()) return slm_adir_abort(d), slm_errf(err, SLM_E_INTERRUPTED, "%s: interrupted", d->path);
    const mode_t um = umask(0); /* mkdtemp made it 0700: give it a folder's usual mode */
    umask(um);
    if (chmod(d->tmp, 0777 & ~um) != 0) return slm_adir_abort(d), io_err(d->path, err, "chmod");
    int rc = fsync_dir(d->tmp, err), ex = rc ? -1 : existing_dir(d->path, d->flags & SLM_AFILE_REPLACE, err);
    if (ex < 0) return slm_adir_abort(d), err->code;
    if (renameat2(AT_FDCWD, d->tmp, AT_FDCWD, d->path, ex ? RENAME_EXCHANGE : RENAME_NOREPLACE) != 0) {
        /* filesystems without renameat2's flags: a plain rename (replaces only an empty folder) */
        if (errno != EINVAL && errno != ENOSYS) return rc = io_err(d->path, err, "rename"), slm_adir_abort(d), rc;
        if (ex) { /* move the old folder aside first */
            char old[PATH_MAX * 2];
            snprintf(old, sizeof old, "%s.old", d->tmp);
            if (rename(d->path, old) != 0) return rc = io_err(d->path, err, "rename"), slm_adir_abort(d), rc;
            if (rename(d->tmp, d->path) != 0) {
                rc = io_err(d->path, err, "rename");
                if (rename(old, d->path) != 0) { /* keep the old files under their temp name */ }
                return slm_adir_abort(d), rc;
            }
            remove_flat(old);
        } else if (rename(d->tmp, d->path) != 0) return rc = io_err(d->path, err, "rename"), slm_adir_abort(d), rc;
    } else if (ex) remove_flat(d->tmp); /* the exchanged old folder */
    forget(d);
    slm_free(d->tmp), d->tmp = NULL;
    split(d->path, dir, base);
    rc = fsync_dir(dir, err);
    slm_free(d->path), d->path = NULL;
    return rc;
}

void slm_adir_abort(slm_adir *d) {
    for (int i = 0; i < d->n_files; i++) unlink(d->files[i]);
    if (d->tmp) remove_flat(d->tmp); /* also files written but not committed */
    forget(d);
    slm_free(d->tmp), d->tmp = NULL;
    slm_free(d->path), d->path = NULL;
}

void slm_adir_remove(const char *path) {
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && is_flat(path) == 1) remove_flat(path);
}

/* out is an input, lies inside an input folder, or holds an input */
static int overlaps(const char *out, const char *in) {
    char a[PATH_MAX], b[PATH_MAX];
    if (!realpath(out, a) || !realpath(in, b)) return 0;
    size_t na = strlen(a), nb = strlen(b);
    return !strncmp(a, b, na < nb ? na : nb) && (na == nb || (na < nb ? b[na] : a[nb]) == '/');
}

int slm_output_dir_check(const char *out, const char *const *inputs, size_t n_in, int force, slm_err *err) {
    if (!out[0]) return slm_errf(err, SLM_E_ARG, "empty output path");
    if (!strcmp(out, "-")) return slm_errf(err, SLM_E_ARG, "-: slm writes a folder here, never a stream: give a path");
    for (size_t i = 0; i < n_in; i++)
        if (inputs[i] && overlaps(out, inputs[i]))
            return slm_errf(err, SLM_E_ARG, "%s: is or holds the input %s of this command: refusing to replace it", out, inputs[i]);
    return existing_dir(out, force, err) < 0 ? err->code : SLM_OK;
}
