/* afile.c - temp file + fsync + rename. Removal on failure and on signals (core/signals.c). */
#include "afile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem.h"
#include "signals.h"
#include "slm.h"

#define AFILE_BUF (1u << 20)

static int io_err(slm_afile *f, slm_err *err, const char *op) {
    return slm_errf(err, SLM_E_IO, "%s: %s: %s", f->path ? f->path : "?", op, strerror(errno));
}

int slm_afile_open(slm_afile *f, const char *path, slm_err *err) {
    memset(f, 0, sizeof(*f));
    f->fd = -1;
    f->slot = -1;
    int rc = SLM_OK;
    char *dcopy = NULL;
    size_t plen = strlen(path);
    if (plen == 0) return slm_errf(err, SLM_E_ARG, "empty output path");
    if ((rc = slm_alloc((void **)&f->path, plen + 1, err, "output path"))) return rc;
    memcpy(f->path, path, plen + 1);
    if ((rc = slm_alloc((void **)&dcopy, plen + 1, err, "output path"))) goto fail;
    memcpy(dcopy, path, plen + 1);
    const char *dir = dirname(dcopy);
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    size_t tlen = strlen(dir) + strlen(base) + 32;
    if ((rc = slm_alloc((void **)&f->tmp_path, tlen, err, "temp path"))) goto fail;
    snprintf(f->tmp_path, tlen, "%s/.%s.slm-XXXXXX", dir, base);
    if ((rc = slm_alloc((void **)&f->buf, AFILE_BUF, err, "output buffer"))) goto fail;
    f->fd = mkstemp(f->tmp_path);
    if (f->fd < 0) {
        rc = slm_errf(err, SLM_E_IO, "%s: cannot create a temp file in '%s': %s", path, dir, strerror(errno));
        goto fail;
    }
    f->slot = slm_signals_track(f->tmp_path);
    slm_free(dcopy);
    return SLM_OK;
fail:
    slm_free(dcopy);
    slm_afile_abort(f);
    return rc;
}

static int flush_buf(slm_afile *f, slm_err *err) {
    size_t off = 0;
    while (off < f->buf_len) {
        if (slm_signals_pending()) return slm_errf(err, SLM_E_INTERRUPTED, "%s: interrupted", f->path);
        ssize_t w = write(f->fd, f->buf + off, f->buf_len - off);
        if (w < 0) {
            if (errno == EINTR) continue;
            return io_err(f, err, "write");
        }
        off += (size_t)w;
    }
    f->buf_len = 0;
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
    char *copy = strdup(path);
    if (!copy) return;
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd); /* best effort: some file systems refuse fsync on folders */
        close(dfd);
    }
    free(copy);
}

int slm_afile_commit(slm_afile *f, slm_err *err) {
    int rc = flush_buf(f, err);
    if (!rc && fsync(f->fd) != 0) rc = io_err(f, err, "fsync");
    if (!rc) {
        mode_t um = umask(0);
        umask(um);
        if (fchmod(f->fd, 0666 & ~um) != 0) rc = io_err(f, err, "chmod");
    }
    if (!rc && close(f->fd) != 0) {
        f->fd = -1;
        rc = io_err(f, err, "close");
    }
    if (!rc) f->fd = -1;
    if (!rc && slm_signals_pending()) rc = slm_errf(err, SLM_E_INTERRUPTED, "%s: interrupted", f->path);
    if (!rc && rename(f->tmp_path, f->path) != 0) rc = io_err(f, err, "rename");
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
    if (f->tmp_path) { /* open (not committed): close and remove the temp file */
        if (f->fd >= 0) close(f->fd);
        unlink(f->tmp_path);
    }
    f->fd = -1;
    if (f->slot >= 0) slm_signals_untrack(f->slot);
    f->slot = -1;
    slm_free(f->tmp_path);
    slm_free(f->path);
    slm_free(f->buf);
    f->tmp_path = f->path = NULL;
    f->buf = NULL;
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
