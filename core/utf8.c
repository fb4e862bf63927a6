/* utf8.c - the strict decoder (Unicode's well-formed byte sequences, table 3-7). */
#include "utf8.h"

#include <string.h>

#include "mem.h"

size_t slm_utf8_strict_len(const uint8_t *s, size_t n, uint32_t *cp) {
    if (n == 0) return 0;
    uint8_t c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) len = 2, v = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, v = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, v = c & 0x07, min = 0x10000;
    else return 0; /* continuation byte, C0/C1 (overlong 2-byte), F5..FF */
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = v << 6 | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0; /* overlong, too big, surrogate */
    *cp = v;
    return len;
}

int slm_utf8_valid(const char *s, size_t n) {
    const uint8_t *p = (const uint8_t *)s;
    uint32_t cp;
    for (size_t i = 0, k; i < n; i += k)
        if (!(k = slm_utf8_strict_len(p + i, n - i, &cp))) return 0;
    return 1;
}

char *slm_utf8_fix(const char *s, size_t n, slm_err *err) {
    const uint8_t *p = (const uint8_t *)s;
    size_t out = 0;
    uint32_t cp;
    for (size_t i = 0, k; i < n; i += k) {
        k = slm_utf8_strict_len(p + i, n - i, &cp);
        out += k ? k : 3;
        if (!k) k = 1;
    }
    char *r;
    if (slm_alloc((void **)&r, out + 1, err, "UTF-8 text")) return NULL;
    char *o = r;
    for (size_t i = 0, k; i < n; i += k) {
        k = slm_utf8_strict_len(p + i, n - i, &cp);
        if (k) {
            memcpy(o, s + i, k);
            o += k;
        } else {
            memcpy(o, SLM_UTF8_REPLACEMENT, 3);
            o += 3;
            k = 1;
        }
    }
    *o = 0;
    return r;
}
