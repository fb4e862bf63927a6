/* signals.c - async-signal-safe cleanup of temp files on SIGINT, SIGTERM, SIGHUP and SIGQUIT.
 *
 * The handler unlinks every tracked temp path (then removes the tracked folders, emptied), restores the default action and re-raises, so
 * the process exits with the conventional 128+signal status (130, 143, 129, 131) and no
 * partial output. SIGKILL cannot be caught: outputs are unnamed temp files (core/afile.c) that
 * vanish with the process, and the few named ones are removed by the next run.
 */
#include "signals.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#define SLOTS 16
#define PATH_CAP 4096

static char g_paths[SLOTS][PATH_CAP];
static volatile sig_atomic_t g_used[SLOTS];
static volatile sig_atomic_t g_pending;

static void on_signal(int sig) {
    g_pending = 1;
    for (int i = 0; i < SLOTS; i++)
        if (g_used[i]) unlink(g_paths[i]);
    for (int i = 0; i < SLOTS; i++) /* temp folders (core/adir.c), empty once their files are gone */
        if (g_used[i]) rmdir(g_paths[i]);
    signal(sig, SIG_DFL);
    raise(sig);
}

void slm_signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
}

int slm_signals_track(const char *path) {
    size_t n = strlen(path);
    if (n >= PATH_CAP) return -1;
    for (int i = 0; i < SLOTS; i++) {
        if (!g_used[i]) {
            memcpy(g_paths[i], path, n + 1);
            g_used[i] = 1; /* set after the copy: the handler never sees a half-written path */
            return i;
        }
    }
    return -1;
}

void slm_signals_untrack(int slot) {
    if (slot >= 0 && slot < SLOTS) g_used[slot] = 0;
}

int slm_signals_pending(void) { return g_pending != 0; }
