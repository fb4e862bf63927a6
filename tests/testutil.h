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

#endif
