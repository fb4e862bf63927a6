/* afile.c - unnamed temp (O_TMPFILE) or named temp + fsync + link/rename; output sets; the
 * output-path rules. Removal on failure, and of named temps on signals (core/signals.c).
 */
#define _GNU_SOURCE /* O_TMPFILE, linkat's AT_SYMLINK_FOLLOW */
#include "afile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem.h"
#include "signals.h"
#include "slm.h"

#define AFILE_BUF (2u << 20) /* per buffer; two of them */
#define AFILE_ALIGN 4096     /* buffers' address, size and file offsets: what O_DIRECT asks */
#define TMP_TAG ".slm-" /* named temps: ".<name>.slm-<pid>-<random>" */

static int io_err(const char *path, slm_err *err, const char *op) {
    return slm_errf(err, SLM_E_IO, "%s: %s: %s", path ? path : "?", op, strerror(errno));
}

/* dirname / basename of path into caller buffers (PATH_MAX). */
static void split_path(const char *path, char *dir, char *base) {
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    snprintf(dir, PATH_MAX, "%s", dirname(tmp));
    const char *b = strrchr(path, '/');
    snprintf(base, PATH_MAX, "%s", b ? b + 1 : path);
}

/* Removes ".<base>.slm-<pid>-*" temps of processes that no longer exist (killed before they
   could clean up: only named temps can be left behind). Best effort. */
static void remove_stale_temps(const char *dir, const char *base) {
    char prefix[PATH_MAX];
    size_t np = (size_t)snprintf(prefix, sizeof prefix, ".%s" TMP_TAG, base);
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, prefix, np)) continue;
        char *end;
        long pid = strtol(e->d_name + np, &end, 10);
        if (pid <= 0 || *end != '-' || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive, or not ours to judge */
        char p[PATH_MAX * 2];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
}

/* What exists at path: 0 nothing, 1 a regular file (or a symlink), -1 error filled. */
static int existing(const char *path, int flags, slm_err *err) {
    struct stat ls, st;
    if (lstat(path, &ls) != 0) {
        if (errno == ENOENT) return 0;
        if (errno == ENOTDIR) return slm_errf(err, SLM_E_IO, "%s: cannot be created: a parent is not a folder", path), -1;
        return io_err(path, err, "stat"), -1;
    }
    int link = S_ISLNK(ls.st_mode);
    if (link && stat(path, &st) != 0) st.st_mode = S_IFREG; /* dangling: replacing it needs -f */
    else if (!link) st = ls;
    if (S_ISDIR(st.st_mode)) return slm_errf(err, SLM_E_ARG, "%s: is a folder", path), -1;
    if (!S_ISREG(st.st_mode))
        return slm_errf(err, SLM_E_ARG, "%s: not a regular file (a FIFO, device or socket): slm replaces only files", path), -1;
    if (!(flags & SLM_AFILE_REPLACE)) return slm_errf(err, SLM_E_ARG, "%s: already exists (use -f to overwrite)", path), -1;
    return 1;
}

static int open_named(slm_afile *f, const char *dir, const char *base, slm_err *err) {
    size_t tlen = strlen(dir) + strlen(base) + 64;
    SLM_TRY(slm_alloc((void **)&f->tmp_path, tlen, err, "temp path"));
    snprintf(f->tmp_path, tlen, "%s/.%s" TMP_TAG "%ld-XXXXXX", dir, base, (long)getpid());
    f->fd = mkstemp(f->tmp_path);
    if (f->fd < 0) return slm_errf(err, SLM_E_IO, "%s: cannot create a file in '%s': %s", f->path, dir, strerror(errno));
    f->slot = slm_signals_track(f->tmp_path);
    return SLM_OK;
}

int slm_afile_open_flags(slm_afile *f, const char *path, int flags, slm_err *err) {
    memset(f, 0, sizeof(*f));
    f->fd = -1;
    f->slot = -1;
    f->flags = flags;
    char dir[PATH_MAX], base[PATH_MAX];
    size_t plen = strlen(path);
    if (plen == 0) return slm_errf(err, SLM_E_ARG, "empty output path");
    if (plen >= PATH_MAX) return slm_errf(err, SLM_E_ARG, "%.64s...: output path too long", path);
    if (existing(path, flags, err) < 0) return err->code;
    int rc = slm_alloc((void **)&f->path, plen + 1, err, "output path");
    if (!rc) rc = slm_alloc_aligned((void **)&f->buf, AFILE_ALIGN, AFILE_BUF, err, "output buffer");
    if (!rc) rc = slm_alloc_aligned((void **)&f->spare, AFILE_ALIGN, AFILE_BUF, err, "output buffer");
    if (rc) goto fail;
    memcpy(f->path, path, plen + 1);
    split_path(path, dir, base);
    remove_stale_temps(dir, base);
#ifdef O_TMPFILE
    /* unnamed: a kill -9 leaves nothing; linking it into place needs /proc/self/fd */
    if (access("/proc/self/fd", X_OK) == 0) f->fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
#endif
    if (f->fd < 0) {
        if (errno == EACCES || errno == EROFS || errno == ENOENT || errno == ENOTDIR) {
            rc = slm_errf(err, SLM_E_IO, "%s: cannot create a file in '%s': %s", path, dir, strerror(errno));
            goto fail;
        }
        if ((rc = open_named(f, dir, base, err))) goto fail;
    }
    return SLM_OK;
fail:
    slm_afile_abort(f);
    return rc;
}

int slm_afile_open(slm_afile *f, const char *path, slm_err *err) {
    return slm_afile_open_flags(f, path, SLM_AFILE_REPLACE, err);
}

/* ---- the background writer: one full buffer at a time, in order */

struct slm_afile_writer {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int fd;
    const uint8_t *data; /* the buffer being written, or NULL */
    size_t len;
    int stop;
    int err_no; /* first write error, 0 if none */
    int direct; /* fd has O_DIRECT: full buffers go to the disk without a copy into the page cache */
};

static int write_all(int fd, const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* A buffer at the next offset: with O_DIRECT when the file has it (full buffers: aligned in
   memory, size and offset), else, and for the last partial buffer or where the file system
   refuses (EINVAL), through the page cache. Durability is the commit's fsync either way. */
static int writer_put(struct slm_afile_writer *w, const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t k = write(w->fd, p, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            if (errno == EINVAL && w->direct) {
                int fl = fcntl(w->fd, F_GETFL);
                if (fl < 0 || fcntl(w->fd, F_SETFL, fl & ~O_DIRECT) != 0) return errno;
                w->direct = 0;
                continue;
            }
            return errno;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static void *writer_main(void *arg) {
    struct slm_afile_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->data && !w->stop) pthread_cond_wait(&w->cv, &w->mu);
        if (!w->data) break;
        const uint8_t *d = w->data;
        size_t n = w->len;
        pthread_mutex_unlock(&w->mu);
        int e = w->err_no ? 0 : writer_put(w, d, n); /* after an error, drain without writing */
        pthread_mutex_lock(&w->mu);
        if (e && !w->err_no) w->err_no = e;
        w->data = NULL;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Waits until the writer is idle; its first error, 0 if none. */
static int writer_wait(struct slm_afile_writer *w) {
    pthread_mutex_lock(&w->mu);
    while (w->data) pthread_cond_wait(&w->cv, &w->mu);
    int e = w->err_no;
    pthread_mutex_unlock(&w->mu);
    return e;
}

static void writer_stop(slm_afile *f) {
    struct slm_afile_writer *w = f->wr;
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->th, NULL);
    if (w->direct) { /* later writes (none today) go through the page cache */
        int fl = fcntl(w->fd, F_GETFL);
        if (fl >= 0) fcntl(w->fd, F_SETFL, fl & ~O_DIRECT);
    }
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
    f->wr = NULL;
}

/* Starts the writer; without one (no thread available) writes stay synchronous. */
static void writer_start(slm_afile *f) {
    struct slm_afile_writer *w = calloc(1, sizeof *w);
    if (!w) return;
    w->fd = f->fd;
    /* from here on whole buffers are written (offset f->written - AFILE_BUF, a multiple of AFILE_BUF) */
    int fl = fcntl(f->fd, F_GETFL);
    SLM_ASSERT(f->written % AFILE_BUF == 0);
    w->direct = fl >= 0 && fcntl(f->fd, F_SETFL, fl | O_DIRECT) == 0; /* refused by tmpfs and others: buffered */
    if (pthread_mutex_init(&w->mu, NULL) || pthread_cond_init(&w->cv, NULL) || pthread_create(&w->th, NULL, writer_main, w)) {
        if (w->direct) fcntl(f->fd, F_SETFL, fl);
        free(w);
        return;
    }
    f->wr = w;
}

/* Hands the full buffer to the writer (waiting for the previous one) and fills the spare. */
static int flush_buf(slm_afile *f, slm_err *err) {
    if (slm_signals_pending()) return slm_errf(err, SLM_E_INTERRUPTED, "%s: interrupted", f->path);
    if (!f->buf_len) return SLM_OK;
    if (!f->wr && f->buf_len == AFILE_BUF) writer_start(f); /* outputs of one buffer or less stay synchronous */
    int e;
    if (!f->wr) {
        if ((e = write_all(f->fd, f->buf, f->buf_len))) return errno = e, io_err(f->path, err, "write");
        f->buf_len = 0;
        return SLM_OK;
    }
    if ((e = writer_wait(f->wr))) return errno = e, io_err(f->path, err, "write");
    pthread_mutex_lock(&f->wr->mu);
    f->wr->data = f->buf;
    f->wr->len = f->buf_len;
    pthread_cond_broadcast(&f->wr->cv);
    pthread_mutex_unlock(&f->wr->mu);
    uint8_t *t = f->buf;
    f->buf = f->spare;
    f->spare = t;
    f->buf_len = 0;
    return SLM_OK;
}

/* Everything handed over is on its way to the kernel: the last buffer flushed, the writer idle. */
static int drain(slm_afile *f, slm_err *err) {
    SLM_TRY(flush_buf(f, err));
    int e = f->wr ? writer_wait(f->wr) : 0;
    writer_stop(f);
    if (e) return errno = e, io_err(f->path, err, "write");
    return SLM_OK;
}

int slm_afile_write(slm_afile *f, const void *data, size_t n, slm_err *err) {
    SLM_ASSERT(f->fd >= 0);
    const uint8_t *p = data;
    while (n > 0) {
        size_t room = AFILE_BUF - f->buf_len;
        size_t k = n < room ? n : room;
        memcpy(f->buf + f->buf_len, p, k);
        f->buf_len += k;
        f->written += k;
        p += k;
        n -= k;
        if (f->buf_len == AFILE_BUF) SLM_TRY(flush_buf(f, err));
    }
    return SLM_OK;
}

uint8_t *slm_afile_space(slm_afile *f, size_t *room) {
    SLM_ASSERT(f->fd >= 0 && f->buf_len < AFILE_BUF); /* a full buffer is always flushed */
    *room = AFILE_BUF - f->buf_len;
    return f->buf + f->buf_len;
}

int slm_afile_advance(slm_afile *f, size_t n, slm_err *err) {
    SLM_ASSERT(f->fd >= 0 && n <= AFILE_BUF - f->buf_len);
    f->buf_len += n;
    f->written += n;
    if (f->buf_len == AFILE_BUF) SLM_TRY(flush_buf(f, err));
    return SLM_OK;
}

int slm_afile_write_zeros(slm_afile *f, size_t n, slm_err *err) {
    static const uint8_t zeros[4096];
    while (n > 0) {
        size_t k = n < sizeof zeros ? n : sizeof zeros;
        SLM_TRY(slm_afile_write(f, zeros, k, err));
        n -= k;
    }
    return SLM_OK;
}

int slm_afile_pad(slm_afile *f, size_t align, slm_err *err) {
    return slm_afile_write_zeros(f, (size_t)(slm_pad(f->written, align) - f->written), err);
}

static void fsync_dir(const char *path) {
    char dir[PATH_MAX], base[PATH_MAX];
    split_path(path, dir, base);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd); /* best effort: some file systems refuse fsync on folders */
        close(dfd);
    }
}

/* link (fails if the path exists: no check-then-write race) or rename (replace) from a named temp */
static int place_named(slm_afile *f, const char *tmp, slm_err *err) {
    if (f->flags & SLM_AFILE_REPLACE) return rename(tmp, f->path) == 0 ? SLM_OK : io_err(f->path, err, "rename");
    if (link(tmp, f->path) != 0)
        return errno == EEXIST ? slm_errf(err, SLM_E_IO, "%s: already exists (another process wrote it meanwhile)", f->path)
                               : io_err(f->path, err, "link");
    unlink(tmp);
    return SLM_OK;
}

/* the unnamed file: linked into place directly, or (replace) under a temp name then renamed */
static int place_unnamed(slm_afile *f, slm_err *err) {
    char proc[64], tmp[PATH_MAX + 96], dir[PATH_MAX], base[PATH_MAX];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", f->fd);
    if (!(f->flags & SLM_AFILE_REPLACE)) {
        if (linkat(AT_FDCWD, proc, AT_FDCWD, f->path, AT_SYMLINK_FOLLOW) == 0) return SLM_OK;
        return errno == EEXIST ? slm_errf(err, SLM_E_IO, "%s: already exists (another process wrote it meanwhile)", f->path)
                               : io_err(f->path, err, "link");
    }
    split_path(f->path, dir, base);
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(tmp, sizeof tmp, "%s/.%s" TMP_TAG "%ld-%d", dir, base, (long)getpid(), attempt);
        if (linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) == 0) break;
        if (errno != EEXIST) return io_err(f->path, err, "link");
    }
    int slot = slm_signals_track(tmp);
    int rc = rename(tmp, f->path) == 0 ? SLM_OK : io_err(f->path, err, "rename");
    if (rc) unlink(tmp);
    slm_signals_untrack(slot);
    return rc;
}

int slm_afile_commit(slm_afile *f, slm_err *err) {
    int rc = drain(f, err);
    if (!rc && fsync(f->fd) != 0) rc = io_err(f->path, err, "fsync");
    if (!rc) {
        mode_t um = umask(0);
        umask(um);
        if (fchmod(f->fd, 0666 & ~um) != 0) rc = io_err(f->path, err, "chmod");
    }
    if (!rc && slm_signals_pending()) rc = slm_errf(err, SLM_E_INTERRUPTED, "%s: interrupted", f->path);
    if (!rc) rc = f->tmp_path ? place_named(f, f->tmp_path, err) : place_unnamed(f, err);
    if (!rc && close(f->fd) != 0) rc = io_err(f->path, err, "close");
    f->fd = rc ? f->fd : -1;
    if (rc) {
        slm_afile_abort(f);
        return rc;
    }
    slm_signals_untrack(f->slot);
    f->slot = -1;
    fsync_dir(f->path);
    slm_free(f->tmp_path);
    f->tmp_path = NULL;
    slm_afile_abort(f); /* frees the rest */
    return SLM_OK;
}

void slm_afile_abort(slm_afile *f) {
    writer_stop(f); /* before the descriptor goes */
    if (f->fd >= 0) close(f->fd); /* an unnamed temp disappears with its last descriptor */
    if (f->tmp_path) unlink(f->tmp_path);
    f->fd = -1;
    if (f->slot >= 0) slm_signals_untrack(f->slot);
    f->slot = -1;
    slm_free(f->tmp_path);
    slm_free(f->path);
    slm_free(f->buf);
    slm_free(f->spare);
    f->tmp_path = f->path = NULL;
    f->buf = f->spare = NULL;
    f->buf_len = 0;
}

int slm_write_file_atomic(const char *path, const void *data, size_t n, slm_err *err) {
    slm_afile f;
    SLM_TRY(slm_afile_open(&f, path, err));
    int rc = slm_afile_write(&f, data, n, err);
    if (!rc) return slm_afile_commit(&f, err);
    slm_afile_abort(&f);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * output sets */

void slm_outset_init(slm_outset *s, int flags) {
    memset(s, 0, sizeof *s);
    s->flags = flags;
}

int slm_outset_open(slm_outset *s, const char *path, slm_afile **f, slm_err *err) {
    if (s->n == SLM_OUTSET_MAX) return slm_errf(err, SLM_E_ARG, "%s: more than %d outputs", path, SLM_OUTSET_MAX);
    SLM_TRY(slm_afile_open_flags(&s->files[s->n], path, s->flags, err));
    *f = &s->files[s->n++];
    return SLM_OK;
}

int slm_outset_write_file(slm_outset *s, const char *path, const void *data, size_t n, slm_err *err) {
    slm_afile *f = NULL;
    SLM_TRY(slm_outset_open(s, path, &f, err));
    return slm_afile_write(f, data, n, err);
}

int slm_outset_mkdir(slm_outset *s, const char *dir, slm_err *err) {
    char p[PATH_MAX];
    size_t n = strlen(dir);
    if (n == 0) return slm_errf(err, SLM_E_ARG, "empty folder name");
    if (n >= sizeof p) return slm_errf(err, SLM_E_ARG, "%.80s...: folder path too long", dir);
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if ((p[i] != '/' && p[i] != 0) || p[i - 1] == '/') continue;
        char c = p[i];
        struct stat st;
        p[i] = 0;
        if (stat(p, &st) != 0) {
            if (mkdir(p, 0777) != 0 && errno != EEXIST)
                return slm_errf(err, SLM_E_IO, "%s: cannot create the folder%s%s%s: %s", dir, c ? " '" : "", c ? p : "", c ? "'" : "",
                                strerror(errno));
            if (s->n_dirs < SLM_OUTSET_MAX && (s->dirs[s->n_dirs] = strdup(p))) s->n_dirs++;
        } else if (!S_ISDIR(st.st_mode)) {
            return slm_errf(err, SLM_E_IO, "%s: cannot create the folder: '%s' is not a folder", dir, p);
        }
        p[i] = c;
    }
    return SLM_OK;
}

static void free_dirs(slm_outset *s, int remove) {
    for (int i = s->n_dirs - 1; i >= 0; i--) { /* deepest first */
        if (remove) rmdir(s->dirs[i]);          /* only when empty */
        free(s->dirs[i]);
    }
    s->n_dirs = 0;
}

int slm_outset_commit(slm_outset *s, slm_err *err) {
    int rc = SLM_OK, k = 0;
    int fresh[SLM_OUTSET_MAX]; /* file k did not exist before this commit */
    for (; k < s->n && !rc; k++) {
        struct stat st;
        fresh[k] = lstat(s->files[k].path, &st) != 0;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s", s->files[k].path);
        rc = slm_afile_commit(&s->files[k], err);
        if (rc) fresh[k] = 0;
        else if (!fresh[k]) continue;
        else s->files[k].path = strdup(path); /* remembered for an undo (freed below) */
    }
    for (int i = 0; i < k; i++) {
        if (rc && fresh[i] && s->files[i].path) unlink(s->files[i].path);
        if (fresh[i]) {
            free(s->files[i].path);
            s->files[i].path = NULL;
        }
    }
    for (int i = k; i < s->n; i++) slm_afile_abort(&s->files[i]);
    free_dirs(s, rc != SLM_OK);
    s->n = 0;
    return rc;
}

void slm_outset_abort(slm_outset *s) {
    for (int i = 0; i < s->n; i++) slm_afile_abort(&s->files[i]);
    s->n = 0;
    free_dirs(s, 1);
}

/* ---------------------------------------------------------------------------------------------
 * output paths */

/* "realpath(dirname)/basename" when the folder exists, else the path itself. */
static void norm_path(const char *path, char *out) {
    char dir[PATH_MAX], base[PATH_MAX], real[PATH_MAX];
    split_path(path, dir, base);
    if (realpath(dir, real)) snprintf(out, PATH_MAX, "%.*s/%.*s", PATH_MAX / 2, real, PATH_MAX / 2 - 2, base);
    else snprintf(out, PATH_MAX, "%s", path);
}

static int same_file(const char *a, const char *b) {
    struct stat x, y;
    if (stat(a, &x) == 0 && stat(b, &y) == 0) return x.st_dev == y.st_dev && x.st_ino == y.st_ino;
    char na[PATH_MAX], nb[PATH_MAX];
    norm_path(a, na);
    norm_path(b, nb);
    return !strcmp(na, nb);
}

/* Files a model folder is read from (HF layout): outputs must never replace them. */
static int is_model_file(const char *base) {
    static const char *const names[] = {"config.json", "tokenizer.json", "tokenizer.model", "tokenizer_config.json",
                                        "special_tokens_map.json", "generation_config.json", "added_tokens.json"};
    size_t n = strlen(base);
    for (size_t i = 0; i < SLM_ARRAY_LEN(names); i++)
        if (!strcmp(base, names[i])) return 1;
    return (n > 12 && !strcmp(base + n - 12, ".safetensors")) || (n > 11 && !strcmp(base + n - 11, ".index.json"));
}

/* out is inside folder dir (its parent folder is dir) */
static int in_folder(const char *out, const char *dir) {
    char odir[PATH_MAX], base[PATH_MAX], a[PATH_MAX], b[PATH_MAX];
    split_path(out, odir, base);
    return realpath(odir, a) && realpath(dir, b) && !strcmp(a, b) && is_model_file(base);
}

int slm_output_check(const char *out, const char *const *inputs, size_t n_in, const char *const *outputs, size_t n_out,
                     int force, slm_err *err) {
    if (!out[0]) return slm_errf(err, SLM_E_ARG, "empty output path");
    if (!strcmp(out, "-")) return slm_errf(err, SLM_E_ARG, "-: slm writes files (atomically), never a stream: give a path");
    for (size_t i = 0; i < n_in; i++) {
        struct stat st;
        if (!inputs[i] || stat(inputs[i], &st) != 0) continue;
        if (S_ISDIR(st.st_mode) ? in_folder(out, inputs[i]) : same_file(out, inputs[i]))
            return slm_errf(err, SLM_E_ARG, "%s: is %s %s of this command: refusing to overwrite it", out,
                            S_ISDIR(st.st_mode) ? "a file of the model folder" : "the input", inputs[i]);
    }
    for (size_t i = 0; i < n_out; i++)
        if (outputs[i] && same_file(out, outputs[i]))
            return slm_errf(err, SLM_E_ARG, "%s: given twice as an output (also as %s)", out, outputs[i]);
    return existing(out, force ? SLM_AFILE_REPLACE : 0, err) < 0 ? err->code : SLM_OK;
}
