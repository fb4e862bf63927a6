/* ecma_re.h - llama.cpp's regular expressions (C++ std::regex, ECMAScript grammar) as POSIX
 * extended regular expressions for regcomp, for tensor-name patterns (--tensor-type).
 *
 * Owns: the translation of the ECMAScript constructs people write into ERE that matches the
 * same names under search semantics (a match anywhere; REG_NOSUB): \d \w \s and their
 * negations (also inside [...]), (?:...) groups, lazy quantifiers (*? +? ?? {n,m}?: the same
 * names match), escaped characters (\. \- \/ \t \xHH ...); refusal, naming the construct, of
 * what ERE cannot say: lookahead/lookbehind (?= (?! (?<= (?<!, \b \B, backreferences, named
 * groups, \u, \c, \0, and unknown escapes (std::regex rejects those too).
 * Must not: compile or match (the caller runs regcomp/regexec); lowercase (llama-quantize
 * lowercases the pattern before compiling: the caller decides).
 */
#ifndef SLM_ECMA_RE_H
#define SLM_ECMA_RE_H

#include <stddef.h>

#include "err.h"

/* Translates the ECMAScript pattern src into ERE in out (cap bytes, NUL-terminated).
   SLM_E_ARG with a message naming the construct and its offset when it cannot be translated
   or the result does not fit. */
int slm_ere_from_ecma(const char *src, char *out, size_t cap, slm_err *err);

#endif
