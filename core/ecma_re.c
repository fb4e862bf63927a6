/* ecma_re.c - ECMAScript regular expressions (llama.cpp's std::regex) to POSIX ERE. */
#include "ecma_re.h"

#include <string.h>

typedef struct wbuf {
    char *p;
    size_t n, cap;
    int full;
} wbuf;

static void put(wbuf *b, const char *s) {
    size_t k = strlen(s);
    if (b->n + k >= b->cap) { b->full = 1; return; }
    memcpy(b->p + b->n, s, k);
    b->n += k;
    b->p[b->n] = 0;
}

static void putc1(wbuf *b, char c) {
    char s[2] = {c, 0};
    put(b, s);
}

/* A literal character outside brackets. */
static void put_lit(wbuf *b, char c) {
    if (c && strchr(".[()*+?{|^$\\", c)) putc1(b, '\\');
    putc1(b, c);
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int refuse(slm_err *err, const char *src, size_t at, const char *what) {
    return slm_errf(err, SLM_E_ARG, "'%s': %s (at offset %zu) is not supported: patterns are llama.cpp's ECMAScript regexes translated to POSIX ERE", src, what, at);
}

/* The character an escape \c stands for (control escapes, \xHH, identity escapes of
   punctuation), or -1 with *what set. *len = bytes consumed after the backslash. */
static int escaped_char(const char *s, size_t *len, const char **what) {
    static const char ctl[] = "t\tn\nr\rf\fv\v";
    *len = 1;
    for (size_t k = 0; ctl[k]; k += 2)
        if (s[0] == ctl[k]) return ctl[k + 1];
    if (s[0] == 'x') {
        int h = hexval(s[1]), l = h < 0 ? -1 : hexval(s[2]);
        if (l < 0 || (h == 0 && l == 0)) return *what = "\\x needs two hex digits (not 00)", -1;
        *len = 3;
        return h * 16 + l;
    }
    if (s[0] == 'b' || s[0] == 'B') return *what = "\\b/\\B (word boundary)", -1;
    if (s[0] >= '0' && s[0] <= '9') return *what = "a backreference or \\0", -1;
    if (s[0] == 'u' || s[0] == 'c' || s[0] == 'k') return *what = "\\u, \\c or \\k", -1;
    if (!s[0]) return *what = "a trailing backslash", -1;
    if ((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')) return *what = "an unknown escape", -1;
    return (unsigned char)s[0];
}

/* One [...] class from s (just past '['); returns bytes consumed or 0 with err set. */
static size_t bracket(const char *src, const char *s, wbuf *b, slm_err *err) {
    char body[512];
    wbuf bb = {body, 0, sizeof body, 0};
    int neg = 0, rb = 0, dash = 0, caret = 0;
    size_t i = 0;
    body[0] = 0;
    if (s[i] == '^') neg = 1, i++;
    if (s[i] == ']') return refuse(err, src, (size_t)(s - src) + i, "an empty class []"), 0;
    for (;;) {
        char c = s[i];
        size_t at = (size_t)(s - src) + i;
        if (!c) return slm_errf(err, SLM_E_ARG, "'%s': unterminated [", src), 0;
        if (c == ']') { i++; break; }
        if (c == '[' && (s[i + 1] == ':' || s[i + 1] == '.' || s[i + 1] == '=')) {
            const char *e = strstr(s + i + 2, (char[]){s[i + 1], ']', 0});
            if (!e) return slm_errf(err, SLM_E_ARG, "'%s': unterminated [%c", src, s[i + 1]), 0;
            for (; s + i < e + 2; i++) putc1(&bb, s[i]);
            continue;
        }
        if (c == '\\') {
            char e = s[i + 1];
            if (e == 'D' || e == 'W' || e == 'S') return refuse(err, src, at, "a negated class (\\D \\W \\S) inside [...]"), 0;
            if (e == 'd' || e == 'w' || e == 's') { /* a class is no range end: a '-' next to it is literal */
                if (bb.n > 1 && body[bb.n - 1] == '-') body[--bb.n] = 0, dash = 1;
                put(&bb, e == 'd' ? "0-9" : e == 'w' ? "A-Za-z0-9_" : " \t\n\r\f\v");
                i += 2;
                if (s[i] == '-' && s[i + 1] != ']') dash = 1, i++;
                continue;
            }
            size_t len;
            const char *what = NULL;
            int ch = e == 'b' ? '\b' : escaped_char(s + i + 1, &len, &what);
            if (e == 'b') len = 1;
            if (ch < 0) return refuse(err, src, at, what), 0;
            i += 1 + len;
            if (ch == ']' || ch == '-' || ch == '^') {
                if (s[i] == '-' && s[i + 1] != ']') return refuse(err, src, at, "a range from an escaped ] - or ^"), 0;
                rb |= ch == ']', dash |= ch == '-', caret |= ch == '^';
            } else {
                putc1(&bb, (char)ch);
            }
            continue;
        }
        if (c == '-' && (bb.n == 0 || s[i + 1] == ']')) dash = 1;
        else if (c == '^') caret = 1;
        else putc1(&bb, c);
        i++;
    }
    if (bb.full) return slm_errf(err, SLM_E_ARG, "'%s': class too long", src), 0;
    if (caret && !neg && !rb && !bb.n && !dash) { put(b, "\\^"); return i; }
    putc1(b, '[');
    if (neg) putc1(b, '^');
    if (rb) putc1(b, ']');
    if (caret && !neg && !rb && !bb.n) { /* only ^ and -: "[-^]" ("[^-]" would negate) */
        put(b, "-^]");
        return i;
    }
    put(b, body);
    if (caret) putc1(b, '^');
    if (dash) putc1(b, '-');
    putc1(b, ']');
    return i;
}

/* {n}, {n,}, {n,m}: bytes of the braces, or 0 when s is not one. */
static size_t braces(const char *s) {
    size_t i = 1, d = 0;
    while (s[i] >= '0' && s[i] <= '9') i++, d++;
    if (!d) return 0;
    if (s[i] == ',') {
        i++;
        while (s[i] >= '0' && s[i] <= '9') i++;
    }
    return s[i] == '}' ? i + 1 : 0;
}

/* "(" and what follows it: (?:...) becomes a plain group, the rest of (?...) is refused. */
static int group(const char *src, const char *s, size_t *len, wbuf *b, slm_err *err) {
    size_t at = (size_t)(s - src);
    *len = 1;
    if (s[1] != '?') return put(b, "("), SLM_OK;
    if (s[2] == ':') return *len = 3, put(b, "("), SLM_OK;
    if (s[2] == '=' || s[2] == '!') return refuse(err, src, at, "lookahead (?= or (?!");
    if (s[2] == '<' && (s[3] == '=' || s[3] == '!')) return refuse(err, src, at, "lookbehind (?<= or (?<!");
    if (s[2] == '<') return refuse(err, src, at, "a named group (?<name>");
    return refuse(err, src, at, "an unknown (? group");
}

int slm_ere_from_ecma(const char *src, char *out, size_t cap, slm_err *err) {
    wbuf b = {out, 0, cap, 0};
    int quant = 0; /* the last thing written was a quantifier: a '?' after it makes it lazy */
    if (cap) out[0] = 0;
    for (size_t i = 0; src[i];) {
        const char *s = src + i;
        int was_quant = quant;
        quant = 0;
        if (s[0] == '?' && was_quant) { i++; continue; } /* lazy: the same names match */
        if (s[0] == '*' || s[0] == '+' || s[0] == '?') { putc1(&b, s[0]); quant = 1; i++; continue; }
        if (s[0] == '{') {
            size_t n = braces(s);
            if (!n) return refuse(err, src, i, "a { that is not {n}, {n,} or {n,m}");
            for (size_t k = 0; k < n; k++) putc1(&b, s[k]);
            quant = 1;
            i += n;
            continue;
        }
        if (s[0] == '[') {
            size_t n = bracket(src, s + 1, &b, err);
            if (!n) return err->code;
            i += 1 + n;
            continue;
        }
        if (s[0] == '(') {
            size_t n;
            if (group(src, s, &n, &b, err)) return err->code;
            i += n;
            continue;
        }
        if (s[0] == '\\') {
            static const char *const cls[] = {"d[0-9]", "D[^0-9]", "w[A-Za-z0-9_]", "W[^A-Za-z0-9_]",
                                              "s[ \t\n\r\f\v]", "S[^ \t\n\r\f\v]"};
            int done = 0;
            for (size_t k = 0; k < sizeof cls / sizeof cls[0] && !done; k++)
                if (s[1] == cls[k][0]) put(&b, cls[k] + 1), done = 1;
            if (done) { i += 2; continue; }
            size_t len;
            const char *what = NULL;
            int ch = escaped_char(s + 1, &len, &what);
            if (ch < 0) return refuse(err, src, i, what);
            put_lit(&b, (char)ch);
            i += 1 + len;
            continue;
        }
        putc1(&b, s[0]);
        i++;
    }
    if (b.full) return slm_errf(err, SLM_E_ARG, "'%s': pattern too long", src);
    return SLM_OK;
}
