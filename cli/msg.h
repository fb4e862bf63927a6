/* msg.h - the only place slm talks to people: errors, warnings, summaries, progress.
 *
 * Owns: verbosity (0 quiet, 1 default, 2 verbose, 3 debug), "slm: error: ..." lines, a
 * TTY-aware rate-limited progress line on stderr, and whether summaries are shown (on a
 * terminal, or with -v; pipelines stay quiet).
 * Must not: be used below cli/.
 */
#ifndef SLM_MSG_H
#define SLM_MSG_H

#include <stdio.h>

typedef struct msg_state {
    int verbosity;   /* 0..3 */
    int progress;    /* progress line enabled */
    int tty;         /* stderr is a terminal */
    const char *cmd; /* "slm quantize" for usage messages */
} msg_state;

extern msg_state g_msg; /* CLI-only global display state (zstd's DISPLAYLEVEL idea) */

void msg_init(const char *cmd);
void msg_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Summaries: shown on a terminal at the default level, or with -v. */
int msg_show_summary(void);
/* "what: 37%" on one \r line, at most ~5 times a second; done clears the line. */
void msg_progress(const char *what, double frac);
void msg_progress_done(void);
/* Bad usage: "<cmd>: <message>" + "Try '<cmd> --help'." on stderr; returns 2. */
int msg_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Text from files made safe for a terminal or a one-line message: control characters become
   escapes (\x1b, \x0a, \u009b; line separators and bidi overrides \u2028, \u202e ...) and
   invalid UTF-8 becomes U+FFFD, so a name in a file can neither drive the terminal (retitle,
   clear, move the cursor) nor forge a second "slm:" line. msg_error, msg_warn and
   msg_usage_error pass their whole message through it.
   msg_safe: into buf (cap >= 16 bytes, always NUL-terminated, cut at a character boundary
   with "..." when it does not fit); returns buf. */
const char *msg_safe(char *buf, size_t cap, const char *s);
/* The same for n bytes written to f. MSG_TEXT keeps \n and \t and leaves bytes >= 0x80 as
   they are (generated text, whose UTF-8 characters may be split across pieces). */
enum { MSG_LINE = 0, MSG_TEXT = 1 };
void msg_put_safe(FILE *f, const char *s, size_t n, int mode);

#endif
