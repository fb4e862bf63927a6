/* test_cli_output.c - bytes from files reach the terminal and JSON safely: runs the slm binary
 * ($SLM, set by make check) on crafted GGUF files whose names and strings hold terminal
 * escapes, newlines and invalid UTF-8, and checks the exact stdout/stderr bytes: no raw
 * control character, no forged second error line, JSON that parses and is valid UTF-8 and
 * still carries the escape characters as JSON escapes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "core/le.h"
#include "core/utf8.h"
#include "formats/gguf.h"
#include "tests/testutil.h"

#define TITLE "\x1b]0;pwned\x07"     /* OSC 0: sets the terminal title */
#define FORGED "evil\nslm: error: forged" /* a key that would print a second error line */
#define BADKEY "bad\xff\xfeutf8"
#define BADVAL "x\xc0\xafy"           /* overlong '/' */
#define CLEAR_NAME "t\x1b[2Jx"        /* CSI 2J: clears the screen */

typedef struct img { uint8_t p[4096]; size_t n; } img;

static void put(img *b, const void *d, size_t n) {
    assert_true(b->n + n <= sizeof b->p);
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void u32(img *b, uint32_t v) { uint8_t x[4]; slm_st_u32(x, v); put(b, x, 4); }
static void u64(img *b, uint64_t v) { uint8_t x[8]; slm_st_u64(x, v); put(b, x, 8); }
static void str(img *b, const char *s) { u64(b, strlen(s)); put(b, s, strlen(s)); }

/* bad_bool: the FORGED key gets bool value 2 (a refusal whose message names the key). */
static const char *hostile_gguf(const char *name, int bad_bool) {
    img b = {{0}, 0};
    put(&b, "GGUF", 4);
    u32(&b, 3);
    u64(&b, 1); /* tensors */
    u64(&b, 3); /* keys */
    str(&b, "general.name"), u32(&b, SLM_GGUF_STRING), str(&b, TITLE);
    str(&b, FORGED), u32(&b, SLM_GGUF_BOOL), put(&b, bad_bool ? "\x02" : "\x01", 1);
    str(&b, BADKEY), u32(&b, SLM_GGUF_STRING), str(&b, BADVAL);
    str(&b, CLEAR_NAME), u32(&b, 1), u64(&b, 1), u32(&b, 0), u64(&b, 0); /* F32 [1] at 0 */
    while (b.n % 32) put(&b, "", 1);
    put(&b, "\0\0\x80\x3f", 4); /* 1.0f */
    while (b.n % 32) put(&b, "", 1);
    const char *path = tmp_path(name);
    write_whole_file(path, b.p, b.n);
    return path;
}

/* Runs $SLM args; stdout and stderr into *out / *err (NUL-terminated); returns the status. */
static int run(const char *args, char **out, size_t *n_out, char **err, size_t *n_err) {
    const char *slm = getenv("SLM");
    if (!slm) fail_msg("SLM is not set (make check sets it to the slm binary)");
    const char *o = tmp_path("stdout"), *e = tmp_path("stderr");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s > '%s' 2> '%s'", slm, args, o, e);
    int st = system(cmd);
    assert_true(WIFEXITED(st));
    *out = read_whole_file(o, n_out);
    *err = read_whole_file(e, n_err);
    return WEXITSTATUS(st);
}

static size_t count(const char *s, size_t n, char c) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += s[i] == c;
    return k;
}

static void test_inspect_text_is_terminal_safe(void **st) {
    (void)st;
    const char *f = hostile_gguf("hostile.gguf", 0);
    char args[4200], *out, *err;
    size_t no, ne;
    snprintf(args, sizeof args, "inspect '%s'", f);
    assert_int_equal(run(args, &out, &no, &err, &ne), 0);
    assert_int_equal(ne, 0);
    assert_int_equal(count(out, no, '\x1b'), 0);
    assert_int_equal(count(out, no, '\x07'), 0);
    assert_int_equal(count(out, no, '\n'), 6); /* summary, 3 keys, table head, 1 tensor */
    assert_true(slm_utf8_valid(out, no));
    assert_non_null(strstr(out, "\"\\x1b]0;pwned\\x07\""));
    assert_non_null(strstr(out, "  evil\\x0aslm: error: forged "));
    assert_non_null(strstr(out, "  bad" SLM_UTF8_REPLACEMENT SLM_UTF8_REPLACEMENT "utf8 "));
    assert_non_null(strstr(out, "\"x" SLM_UTF8_REPLACEMENT SLM_UTF8_REPLACEMENT "y\""));
    assert_non_null(strstr(out, "  t\\x1b[2Jx "));
    free(out);
    free(err);
}

static void test_inspect_json_is_valid_utf8(void **st) {
    (void)st;
    const char *f = hostile_gguf("hostile.gguf", 0);
    char args[4200], *out, *err;
    size_t no, ne;
    snprintf(args, sizeof args, "inspect '%s' --json", f);
    assert_int_equal(run(args, &out, &no, &err, &ne), 0);
    assert_int_equal(ne, 0);
    assert_int_equal(count(out, no, '\x1b'), 0);
    assert_true(slm_utf8_valid(out, no));
    cJSON *j = cJSON_ParseWithLength(out, no);
    assert_non_null(j);
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(j, "metadata");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(md, "general.name");
    assert_true(cJSON_IsString(name));
    assert_string_equal(name->valuestring, TITLE); /* escaped as \u001b, not lost */
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(md, FORGED)));
    const cJSON *bad = cJSON_GetObjectItemCaseSensitive(md, "bad" SLM_UTF8_REPLACEMENT SLM_UTF8_REPLACEMENT "utf8");
    assert_true(cJSON_IsString(bad));
    assert_string_equal(bad->valuestring, "x" SLM_UTF8_REPLACEMENT SLM_UTF8_REPLACEMENT "y");
    const cJSON *t0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "tensors"), 0);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(t0, "name")->valuestring, CLEAR_NAME);
    cJSON_Delete(j);
    free(out);
    free(err);
}

/* A library message embeds the key: still one "slm: error:" line, the newline escaped. */
static void test_error_is_one_line(void **st) {
    (void)st;
    const char *f = hostile_gguf("bad_bool.gguf", 1);
    char args[4200], *out, *err, want[4400];
    size_t no, ne;
    snprintf(args, sizeof args, "inspect '%s'", f);
    assert_int_equal(run(args, &out, &no, &err, &ne), 1);
    snprintf(want, sizeof want, "slm: error: %s: key 'evil\\x0aslm: error: forged': bool value 2\n", f);
    assert_string_equal(err, want);
    assert_int_equal(no, 0);
    free(out);
    free(err);
    /* a file name with an escape in a usage error */
    assert_int_equal(run("inspect a b$(printf '\\033')c", &out, &no, &err, &ne), 2);
    assert_string_equal(err, "slm inspect: unexpected argument 'b\\x1bc'\nTry 'slm inspect --help'.\n");
    free(out);
    free(err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inspect_text_is_terminal_safe),
        cmocka_unit_test(test_inspect_json_is_valid_utf8),
        cmocka_unit_test(test_error_is_one_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
