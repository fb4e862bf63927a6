/* utf8.h - UTF-8 validity for bytes that come from files: one strict decoder (no overlong
 * forms, no surrogates, nothing above U+10FFFF), a validity check, and a copy with every
 * invalid byte replaced by U+FFFD (JSON output must be valid UTF-8; cJSON passes bytes
 * through as they are).
 * Must not: print; decide how text is shown (cli/msg.c escapes control characters).
 */
#ifndef SLM_UTF8_H
#define SLM_UTF8_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define SLM_UTF8_REPLACEMENT "\xef\xbf\xbd" /* U+FFFD */

/* Length (1-4) of the code point encoded at s[0..n) and the code point in *cp, or 0 when
   those bytes do not start a valid encoding (then one byte is invalid). */
size_t slm_utf8_strict_len(const uint8_t *s, size_t n, uint32_t *cp);
/* 1 when s[0..n) is valid UTF-8. */
int slm_utf8_valid(const char *s, size_t n);
/* A NUL-terminated copy of s[0..n) with each invalid byte replaced by U+FFFD (slm_alloc'd,
   the caller frees it with slm_free); NULL and SLM_E_NOMEM in err when out of memory. */
char *slm_utf8_fix(const char *s, size_t n, slm_err *err);

#endif
