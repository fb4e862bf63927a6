/* unicode.c - code point flags, UTF-8 decoding/encoding and the GPT-2 byte mapping.
 *
 * Owns: lookups into the generated tables of model/unicode_data.c (binary search over
 * category ranges, with an ASCII fast path) and llama.cpp-compatible UTF-8 handling.
 * Must not: allocate, print, or know about vocabularies.
 */
#include "model/unicode.h"

#include "core/slm.h"
#include "model/unicode_data.h"

static unsigned is_whitespace(uint32_t cp) {
    size_t lo = 0, hi = slm_unicode_n_whitespace;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (slm_unicode_whitespace[mid] < cp) lo = mid + 1;
        else hi = mid;
    }
    return lo < slm_unicode_n_whitespace && slm_unicode_whitespace[lo] == cp;
}

static unsigned category_of(uint32_t cp) {
    /* last range whose start is <= cp */
    size_t lo = 0, hi = slm_unicode_n_ranges;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if ((slm_unicode_ranges[mid] >> 8) <= cp) lo = mid;
        else hi = mid;
    }
    return slm_unicode_ranges[lo] & 0xFF;
}

unsigned slm_unicode_flags(uint32_t cp) {
    if (cp < 128) {
        /* ASCII without the tables: same answers, and most text is ASCII */
        unsigned f;
        if (cp >= '0' && cp <= '9') f = SLM_UCAT_NUMBER;
        else if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') f = SLM_UCAT_LETTER;
        else if (cp < 0x20 || cp == 0x7F) f = SLM_UCAT_CONTROL;
        else if (cp == ' ') f = SLM_UCAT_SEPARATOR;
        else if (cp == '$' || cp == '+' || cp == '<' || cp == '=' || cp == '>' || cp == '^' ||
                 cp == '`' || cp == '|' || cp == '~') f = SLM_UCAT_SYMBOL;
        else f = SLM_UCAT_PUNCTUATION;
        if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) f |= SLM_UCAT_WHITESPACE;
        return f;
    }
    if (cp > 0x10FFFF) return SLM_UCAT_UNDEFINED;
    unsigned f = category_of(cp);
    if (is_whitespace(cp)) f |= SLM_UCAT_WHITESPACE;
    return f;
}

uint32_t slm_unicode_lower_ascii(uint32_t cp) {
    if (cp >= 'A' && cp <= 'Z') return cp + 32;
    for (size_t i = 0; i < slm_unicode_n_lower_to_ascii; i++)
        if (slm_unicode_lower_to_ascii[i][0] == cp) return slm_unicode_lower_to_ascii[i][1];
    return cp;
}

uint32_t slm_utf8_decode(const unsigned char *s, size_t n, size_t *adv) {
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;
    *adv = 1;
    if (c < 0x80) return c;
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
    else return SLM_UNICODE_REPLACEMENT; /* continuation byte or 0xF8..0xFF */
    if (len > n) return SLM_UNICODE_REPLACEMENT;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return SLM_UNICODE_REPLACEMENT;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp > 0x10FFFF) return SLM_UNICODE_REPLACEMENT;
    *adv = len;
    return cp;
}

size_t slm_utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | ((cp >> 18) & 0x07));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* bytes_to_unicode(): printable Latin-1 bytes ('!'..'~', 0xA1..0xAC, 0xAE..0xFF) stand for
   themselves; the other 68 bytes map, in byte order, to U+0100, U+0101, ... */
static int byte_is_printable(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
}

/* The non-printable bytes are 0x00..0x20 (33), 0x7F..0xA0 (34) and 0xAD: closed forms. */
uint32_t slm_byte_to_cp(unsigned char b) {
    if (byte_is_printable(b)) return b;
    return 256 + (b <= 0x20 ? b : b <= 0xA0 ? 33u + (b - 0x7Fu) : 67u);
}

int slm_cp_to_byte(uint32_t cp) {
    if (cp < 256) return byte_is_printable(cp) ? (int)cp : -1;
    if (cp >= 256 + 68) return -1;
    uint32_t n = cp - 256;
    return n < 33 ? (int)n : n < 67 ? (int)(0x7F + n - 33) : 0xAD;
}
