/* mem.c - checked allocation with a fail-after hook for error-path tests.
 * The hook is the only mutable global below cli/ besides the signal list; it is a test seam.
 */
#include "mem.h"

#include "slm.h"

#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static long g_fail_after = -1; /* test seam: < 0 disabled */

void slm_mem_fail_after(long k) { g_fail_after = k; }

static int should_fail(void) {
    if (g_fail_after < 0) return 0;
    if (g_fail_after == 0) return 1;
    g_fail_after--;
    return 0;
}

const char *slm_fmt_bytes(char *buf, size_t bufsize, double n) {
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (n >= 1024.0 && u < 4) { n /= 1024.0; u++; }
    if (u == 0) snprintf(buf, bufsize, "%.0f B", n);
    else snprintf(buf, bufsize, "%.*f %s", n < 10 ? 2 : 1, n, units[u]);
    return buf;
}

static int oom(slm_err *err, size_t nbytes, const char *what) {
    char b[32];
    return slm_errf(err, SLM_E_NOMEM, "allocating %s for %s: out of memory",
                    slm_fmt_bytes(b, sizeof b, (double)nbytes), what ? what : "buffer");
}

int slm_alloc(void **out, size_t nbytes, slm_err *err, const char *what) {
    *out = NULL;
    void *p = should_fail() ? NULL : malloc(nbytes ? nbytes : 1);
    if (!p) return oom(err, nbytes, what);
    *out = p;
    return SLM_OK;
}

int slm_alloc_aligned(void **out, size_t align, size_t nbytes, slm_err *err, const char *what) {
    *out = NULL;
    void *p = NULL;
    if (should_fail() || posix_memalign(&p, align, nbytes ? nbytes : 1) != 0) return oom(err, nbytes, what);
    *out = p;
    return SLM_OK;
}

int slm_calloc(void **out, size_t n, size_t size, slm_err *err, const char *what) {
    size_t nbytes;
    *out = NULL;
    if (!slm_mul_ok(n, size, &nbytes)) return oom(err, SIZE_MAX, what);
    void *p = should_fail() ? NULL : calloc(n ? n : 1, size ? size : 1);
    if (!p) return oom(err, nbytes, what);
    *out = p;
    return SLM_OK;
}

int slm_realloc(void **ptr, size_t nbytes, slm_err *err, const char *what) {
    void *p = should_fail() ? NULL : realloc(*ptr, nbytes ? nbytes : 1);
    if (!p) return oom(err, nbytes, what);
    *ptr = p;
    return SLM_OK;
}

void slm_free(void *p) { free(p); }

char *slm_strdup(const char *s, slm_err *err) {
    size_t n = strlen(s) + 1;
    char *p;
    if (slm_alloc((void **)&p, n, err, "string")) return NULL;
    memcpy(p, s, n);
    return p;
}
