/* token_ids.c - token id files (see token_ids.h). */
#include "formats/token_ids.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "core/afile.h"
#include "core/mapfile.h"
#include "core/mem.h"
#include "core/slm.h"

/* Little-endian int32 when the file has a NUL byte (ids below 2^24 always do), else text. */
int slm_ids_read(const char *path, int32_t **ids, int64_t *n_ids, slm_err *err) {
    slm_map mp = {0};
    *ids = NULL;
    *n_ids = 0;
    SLM_TRY(slm_map_open(&mp, path, err));
    int rc = SLM_OK;
    const char *d = (const char *)mp.data;
    if (mp.size && memchr(d, 0, mp.size)) {
        if (mp.size % 4) rc = slm_errf(err, SLM_E_FORMAT, "%s: %zu bytes is not a whole number of int32 ids", path, mp.size);
        if (!rc) rc = slm_alloc((void **)ids, mp.size, err, "token ids");
        if (!rc) {
            memcpy(*ids, d, mp.size); /* little-endian host (core/slm.h) */
            *n_ids = (int64_t)(mp.size / 4);
        }
    } else {
        size_t cap = mp.size / 2 + 1, n = 0; /* at most one id per two bytes */
        rc = slm_alloc((void **)ids, sizeof(int32_t) * cap, err, "token ids");
        for (size_t i = 0; !rc && i < mp.size;) {
            if (d[i] == ' ' || d[i] == '\n' || d[i] == '\t' || d[i] == '\r') {
                i++;
                continue;
            }
            size_t j = i;
            long v = 0;
            while (j < mp.size && d[j] >= '0' && d[j] <= '9' && v <= INT32_MAX) v = v * 10 + (d[j++] - '0');
            if (j == i || v > INT32_MAX || (j < mp.size && !strchr(" \n\t\r", d[j]))) {
                rc = slm_errf(err, SLM_E_FORMAT, "%s: byte %zu: expected a token id (a decimal number)", path, i);
                break;
            }
            (*ids)[n++] = (int32_t)v;
            i = j;
        }
        *n_ids = (int64_t)n;
    }
    slm_map_close(&mp);
    if (rc) {
        slm_free(*ids);
        *ids = NULL;
    }
    return rc;
}

int slm_ids_write(slm_outset *os, const char *path, const int32_t *ids, int64_t n, slm_err *err) {
    slm_afile *f = NULL;
    SLM_TRY(slm_outset_open(os, path, &f, err));
    char line[16];
    int rc = SLM_OK;
    for (int64_t i = 0; !rc && i < n; i++) rc = slm_afile_write(f, line, (size_t)snprintf(line, sizeof line, "%d\n", ids[i]), err);
    return rc;
}

