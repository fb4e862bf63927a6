/* mapfile.c - mmap'd read-only inputs. File size comes from fstat (never fseek/ftell).
 * Only regular files are mapped: the open is non-blocking (a FIFO or a device would block
 * in open() or read forever), then fstat refuses anything else. Nothing is read through the
 * descriptor, so O_NONBLOCK never needs clearing.
 */
#include "mapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem.h"

int slm_map_open(slm_map *m, const char *path, slm_err *err) {
    memset(m, 0, sizeof(*m));
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return slm_errf(err, SLM_E_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return slm_errf(err, SLM_E_IO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return slm_errf(err, SLM_E_IO, "%s: not a regular file", path);
    }
    m->size = (size_t)st.st_size;
    if (m->size > 0) {
        void *p = mmap(NULL, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return slm_errf(err, SLM_E_IO, "%s: mmap: %s", path, strerror(e));
        }
        m->data = p;
    }
    close(fd); /* the mapping stays valid without the descriptor */
    m->path = slm_strdup(path, err);
    if (!m->path) {
        slm_map_close(m);
        return SLM_E_NOMEM;
    }
    return SLM_OK;
}

void slm_map_close(slm_map *m) {
    if (m->data) munmap((void *)m->data, m->size);
    slm_free(m->path);
    memset(m, 0, sizeof(*m));
}

static void advise(const slm_map *m, size_t off, size_t len, int how) {
    if (!m->data || off >= m->size) return;
    long pg = sysconf(_SC_PAGESIZE);
    size_t start = off / (size_t)pg * (size_t)pg;
    size_t end = (off + len < m->size ? off + len : m->size);
    madvise((void *)(m->data + start), end - start, how);
}

void slm_map_advise_populate(const slm_map *m, size_t off, size_t len) {
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14: map the pages now, in bulk, instead of one fault each */
#endif
    advise(m, off, len, MADV_POPULATE_READ); /* fails harmlessly on older kernels */
}
void slm_map_advise_dontneed(const slm_map *m, size_t off, size_t len) { advise(m, off, len, MADV_DONTNEED); }
