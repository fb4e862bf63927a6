/* testutil.c - fixture paths, temp folders and comparisons for the cmocka tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_ring[8][4096];
static int g_ring_i;
static char g_tmpdir[4096];

static char *ring(void) { return g_ring[g_ring_i++ % 8]; }

int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static const char *base_path(const char *env, const char *dflt, const char *rel) {
    const char *root = getenv(env);
    char *out = ring();
    snprintf(out, 4096, "%s/%s", root && *root ? root : dflt, rel);
    if (!file_exists(out)) fail_msg("fixture missing: %s (set %s)", out, env);
    return out;
}

const char *fixture_path(const char *rel) { return base_path("SLM_FIXTURES", "../shared/fixtures", rel); }
const char *golden_path(const char *rel) { return base_path("SLM_GOLDEN", "../shared/golden", rel); }

void *read_whole_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)sz + 1);
    assert_non_null(buf);
    if (sz > 0 && fread(buf, 1, (size_t)sz, f) != (size_t)sz) fail_msg("short read on %s", path);
    fclose(f);
    buf[sz] = 0;
    if (n) *n = (size_t)sz;
    return buf;
}

void write_whole_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("cannot create %s", path);
    if (n && fwrite(data, 1, n, f) != n) fail_msg("short write on %s", path);
    fclose(f);
}

static void rm_tmpdir(void) {
    if (!g_tmpdir[0] || getenv("SLM_KEEP_TMP")) return;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", g_tmpdir);
}

const char *tmp_path(const char *name) {
    if (!g_tmpdir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(g_tmpdir, sizeof g_tmpdir, "%s/slm-test-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(g_tmpdir)) fail_msg("mkdtemp failed");
        atexit(rm_tmpdir);
    }
    char *out = ring();
    snprintf(out, 4096, "%s/%s", g_tmpdir, name);
    return out;
}

void expect_tensor_near(const char *what, const float *a, const float *b, int64_t n, double atol, double rtol) {
    int64_t bad = -1, nbad = 0;
    double maxabs = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > maxabs || isnan(d)) maxabs = isnan(d) ? INFINITY : d;
        if (!(d <= atol + rtol * fabs((double)b[i]))) {
            if (bad < 0) bad = i;
            nbad++;
        }
    }
    if (bad >= 0)
        fail_msg("%s: %lld of %lld values differ; first at %lld: got %.9g want %.9g; max abs diff %.3g",
                 what, (long long)nbad, (long long)n, (long long)bad, a[bad], b[bad], maxabs);
}

void expect_bytes_equal(const char *what, const void *a, const void *b, size_t n) {
    const uint8_t *x = a, *y = b;
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i]) fail_msg("%s: byte %zu differs: got 0x%02x want 0x%02x", what, i, x[i], y[i]);
}
