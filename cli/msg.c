/* msg.c - stderr output for people; stdout is reserved for requested data. Every message
 * goes through msg_safe's escaping: library messages embed names read from files. */
#include "msg.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/utf8.h"

msg_state g_msg = {1, 0, 0, "slm"};
static double g_last_progress;
static int g_progress_shown;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void msg_init(const char *cmd) {
    g_msg.tty = isatty(2);
    g_msg.progress = g_msg.tty;
    g_msg.cmd = cmd;
}

static void clear_progress(void) {
    if (g_progress_shown) {
        fprintf(stderr, "\r\033[K");
        g_progress_shown = 0;
    }
}

/* Code points shown as \uXXXX: C1 controls (0x9b is CSI to many terminals), line and
   paragraph separators, bidi embeddings/overrides/isolates (text that reads other than it is). */
static int escaped_cp(uint32_t cp) {
    return (cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 || (cp >= 0x202A && cp <= 0x202E) ||
           (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200E || cp == 0x200F || cp == 0x061C;
}

/* The safe form of the character at s[0..n) into out (>= 7 bytes); *used = bytes consumed. */
static size_t safe_char(const char *s, size_t n, int mode, char *out, size_t *used) {
    unsigned char c = (unsigned char)s[0];
    uint32_t cp;
    *used = 1;
    if (c < 0x20 || c == 0x7F) {
        if (mode == MSG_TEXT && (c == '\n' || c == '\t')) {
            out[0] = (char)c;
            return 1;
        }
        return (size_t)snprintf(out, 7, "\\x%02x", c);
    }
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (mode == MSG_TEXT) {
        out[0] = (char)c;
        return 1;
    }
    size_t k = slm_utf8_strict_len((const uint8_t *)s, n, &cp);
    if (!k) {
        memcpy(out, SLM_UTF8_REPLACEMENT, 3);
        return 3;
    }
    *used = k;
    if (escaped_cp(cp)) return (size_t)snprintf(out, 7, "\\u%04x", (unsigned)cp);
    memcpy(out, s, k);
    return k;
}

const char *msg_safe(char *buf, size_t cap, const char *s) {
    size_t n = strlen(s), o = 0;
    char ch[8];
    for (size_t i = 0, used; i < n; i += used) {
        size_t k = safe_char(s + i, n - i, MSG_LINE, ch, &used);
        if (o + k + 4 > cap && i + used < n) { /* room for "..." and the NUL */
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (o + k + 1 > cap) break;
        memcpy(buf + o, ch, k);
        o += k;
    }
    buf[o] = 0;
    return buf;
}

void msg_put_safe(FILE *f, const char *s, size_t n, int mode) {
    char ch[8];
    for (size_t i = 0, used; i < n; i += used) {
        size_t k = safe_char(s + i, n - i, mode, ch, &used);
        fwrite(ch, 1, k, f);
    }
}

/* "<prefix><message>\n" on stderr, the message escaped (msg_put_safe). */
static void vprint_safe(const char *prefix, const char *fmt, va_list ap) {
    char small[1024], *text = small;
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    if (n >= (int)sizeof small && (text = malloc((size_t)n + 1)))
        vsnprintf(text, (size_t)n + 1, fmt, ap2);
    else if (n >= (int)sizeof small) /* out of memory: the cut message */
        text = small, n = (int)sizeof small - 1;
    va_end(ap2);
    fputs(prefix, stderr);
    if (n > 0) msg_put_safe(stderr, text, (size_t)n, MSG_LINE);
    fputc('\n', stderr);
    if (text != small) free(text);
}

void msg_error(const char *fmt, ...) {
    clear_progress();
    va_list ap;
    va_start(ap, fmt);
    vprint_safe("slm: error: ", fmt, ap);
    va_end(ap);
}

void msg_warn(const char *fmt, ...) {
    if (g_msg.verbosity < 1) return;
    clear_progress();
    va_list ap;
    va_start(ap, fmt);
    vprint_safe("slm: warning: ", fmt, ap);
    va_end(ap);
}

int msg_show_summary(void) { return g_msg.verbosity >= 2 || (g_msg.verbosity >= 1 && g_msg.tty); }

void msg_progress(const char *what, double frac) {
    if (!g_msg.progress || g_msg.verbosity < 1) return;
    double t = now_s();
    if (g_progress_shown && t - g_last_progress < 0.2 && frac < 1.0) return;
    g_last_progress = t;
    fprintf(stderr, "\r\033[K%s: %3.0f%%", what, frac * 100.0);
    fflush(stderr);
    g_progress_shown = 1;
}

void msg_progress_done(void) { clear_progress(); }

int msg_usage_error(const char *fmt, ...) {
    char prefix[80];
    snprintf(prefix, sizeof prefix, "%s: ", g_msg.cmd);
    va_list ap;
    va_start(ap, fmt);
    vprint_safe(prefix, fmt, ap); /* arguments may be file names with any bytes */
    va_end(ap);
    fprintf(stderr, "Try '%s --help'.\n", g_msg.cmd);
    return 2;
}
