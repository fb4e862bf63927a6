/* unicode_data.h - declarations of the generated tables in model/unicode_data.c.
 *
 * Owns: nothing but the extern declarations; model/unicode.c is the only user.
 * Must not: be included outside model/unicode*.c.
 */
#ifndef SLM_UNICODE_DATA_H
#define SLM_UNICODE_DATA_H

#include <stddef.h>
#include <stdint.h>

extern const char slm_unicode_version[];
extern const size_t slm_unicode_n_ranges;
extern const uint32_t slm_unicode_ranges[];         /* (first << 8) | category flag, ascending */
extern const size_t slm_unicode_n_whitespace;
extern const uint32_t slm_unicode_whitespace[];     /* ascending */
extern const size_t slm_unicode_n_lower_to_ascii;
extern const uint32_t slm_unicode_lower_to_ascii[][2]; /* {code point > 127, ASCII lower case} */

#endif
