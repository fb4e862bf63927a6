/* testutil.h - helpers shared by the cmocka test binaries.
 *
 * Owns: fixture paths (fail the test when a fixture is missing: no silent skips), file
 * reading, a per-process temp folder, tensor comparison that prints the first mismatch.
 * Include after <stdarg.h> <stddef.h> <stdint.h> <setjmp.h> <cmocka.h>.
 */
#ifndef SLM_TESTUTIL_H
#define SLM_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"
#include "model/config.h"

/* $SLM_FIXTURES/rel (default ../shared/fixtures); fails the current test if it does not exist. */
const char *fixture_path(const char *rel);
/* $SLM_GOLDEN/rel (default ../shared/golden); same rule. */
const char *golden_path(const char *rel);
/* Whole file into a malloc'd buffer (NUL-terminated); fails the test on error. */
void *read_whole_file(const char *path, size_t *n);
void write_whole_file(const char *path, const void *data, size_t n);
/* A fresh folder for this test process (removed at exit); returns dir/name in a static ring. */
const char *tmp_path(const char *name);
/* Fails with the first mismatch index and max abs error when |a-b| > atol + rtol*|b|. */
void expect_tensor_near(const char *what, const float *a, const float *b, int64_t n, double atol, double rtol);
/* Fails with the first differing byte when a != b. */
void expect_bytes_equal(const char *what, const void *a, const void *b, size_t n);
int file_exists(const char *path);

/* A model made of a function: every catalogue tensor of cfg (model/catalog.h) as a tensor
   source whose rows come from read(ud, gguf_name, nrows, ncols, r0, n, dst). dtype is what
   info reports (F32 unless set). For synthetic models and filtered real ones. */
typedef int (*test_rows_fn)(void *ud, const char *name, int64_t nrows, int64_t ncols, int64_t r0, int64_t n, float *dst,
                            slm_err *err);
typedef struct test_fn_src {
    slm_model_config cfg;
    int n;
    int role[4096], layer[4096];
    test_rows_fn read;
    void *ud;
    int dtype;
} test_fn_src;
/* f must outlive the source; fills *out. */
void test_fn_src_init(test_fn_src *f, const slm_model_config *cfg, test_rows_fn read, void *ud, slm_tensor_src *out);
/* The reference transformer of a model folder or GGUF file in the fixtures (fails the test on error). */
struct slm_model;
struct slm_src;
/* The export pipeline on a model folder or GGUF file, as `slm convert` / `slm quantize` run it:
   `in` -> `out` with recipe ftype ("F32", "Q8_0", ... or NULL: the checkpoint's own type).
   Fails the test on error. */
void test_export_file(const char *in, const char *out, const char *ftype);
int test_model_build_src(const struct slm_src *s, struct slm_model *m, int ctx, int flags, slm_err *err);

#endif
