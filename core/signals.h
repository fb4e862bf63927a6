/* signals.h - SIGINT/SIGTERM/SIGHUP/SIGQUIT: remove live temp files, then die by the same signal.
 *
 * Owns: the only mutable global list below cli/ (temp paths in static storage, so the
 * handler is async-signal-safe) and the "interrupted" flag long loops poll.
 * Must not: print. cli/ installs the handlers once; the library only tracks/untracks paths.
 */
#ifndef SLM_SIGNALS_H
#define SLM_SIGNALS_H

/* Installs the SIGINT/SIGTERM/SIGHUP/SIGQUIT handlers (idempotent). */
void slm_signals_install(void);
/* Tracks a temp path (copied); returns a slot, or -1 if the table is full (not tracked). */
int slm_signals_track(const char *path);
void slm_signals_untrack(int slot);
/* Nonzero once SIGINT/SIGTERM arrived (the handler normally ends the process first). */
int slm_signals_pending(void);

#endif
