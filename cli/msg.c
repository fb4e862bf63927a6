/* msg.c - stderr output for people; stdout is reserved for requested data. */
#include "msg.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

void msg_error(const char *fmt, ...) {
    clear_progress();
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "slm: error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

void msg_warn(const char *fmt, ...) {
    if (g_msg.verbosity < 1) return;
    clear_progress();
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "slm: warning: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
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
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", g_msg.cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry '%s --help'.\n", g_msg.cmd);
    va_end(ap);
    return 2;
}
