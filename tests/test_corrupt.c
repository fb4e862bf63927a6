/* test_corrupt.c - replays fixtures/corrupt/MANIFEST through the validating readers: every
 * malformed file is refused with the expected code and a one-line message naming the file
 * and the fault; the two valid controls open. Runs under ASan in check-asan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "formats/gguf.h"
#include "formats/model_src.h"
#include "formats/safetensors.h"
#include "tests/testutil.h"

static int code_of(const char *name) {
    static const struct { const char *n; int c; } k[] = {
        {"OK", SLM_OK}, {"IO", SLM_E_IO}, {"FORMAT", SLM_E_FORMAT}, {"UNSUPPORTED", SLM_E_UNSUPPORTED}, {"DATA", SLM_E_DATA},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (!strcmp(k[i].n, name)) return k[i].c;
    fail_msg("MANIFEST: unknown code %s", name);
    return -1;
}

static void test_manifest(void **st) {
    (void)st;
    size_t n;
    char *m = read_whole_file("fixtures/corrupt/MANIFEST", &n);
    int cases = 0, failures = 0;
    for (char *line = strtok(m, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') continue;
        char *f[4] = {0};
        f[0] = line;
        for (int i = 1; i < 4; i++) {
            char *tab = f[i - 1] ? strchr(f[i - 1], '\t') : NULL;
            if (tab) { *tab = 0; f[i] = tab + 1; }
        }
        assert_non_null(f[2]);
        const char *msg = f[3] ? f[3] : "";
        char path[512];
        snprintf(path, sizeof path, "fixtures/corrupt/%s", f[0]);
        int want = code_of(f[2]), got;
        slm_err e = {0};
        if (!strcmp(f[1], "st")) {
            slm_st_file sf;
            got = slm_st_open(&sf, path, &e);
            if (!got) slm_st_close(&sf);
        } else if (!strcmp(f[1], "gguf")) {
            slm_gguf g;
            got = slm_gguf_open(&g, path, &e);
            if (!got) slm_gguf_close(&g);
        } else {
            slm_src s;
            got = slm_src_open(&s, path, &e);
            if (!got) slm_src_close(&s);
        }
        cases++;
        int ok = got == want && (want == SLM_OK || (strstr(e.msg, msg) && strstr(e.msg, f[0]) && !strchr(e.msg, '\n')));
        if (!ok) {
            failures++;
            print_error("%s: want code %d with '%s', got %d '%s'\n", f[0], want, msg, got, e.msg);
        }
    }
    free(m);
    assert_true(cases >= 45);
    assert_int_equal(failures, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_manifest)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
