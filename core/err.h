/* err.h - the error type every fallible library function fills.
 *
 * Owns: slm_err (a code and a one-line message), the stable SLM_E_* codes, message helpers.
 * Must not: print or exit. cli/ turns a code into an exit status and prints the message once.
 */
#ifndef SLM_ERR_H
#define SLM_ERR_H

/* Stable values: never renumber, never reuse. */
enum {
    SLM_OK = 0,
    SLM_E_IO = 1,          /* open/read/write/mmap failed (message carries strerror) */
    SLM_E_FORMAT = 2,      /* malformed input file */
    SLM_E_UNSUPPORTED = 3, /* well-formed but not handled (dtype, architecture, type) */
    SLM_E_NOMEM = 4,       /* allocation failed */
    SLM_E_ARG = 5,         /* bad option value or API argument from the user */
    SLM_E_INTERRUPTED = 6, /* SIGINT/SIGTERM seen */
    SLM_E_DATA = 7,        /* numeric trouble in the data: NaN/Inf weights, empty text */
};

typedef struct slm_err {
    int code;
    char msg[512];
} slm_err;

/* Sets code and message (printf-style); returns code, so `return slm_errf(...)` works. */
int slm_errf(slm_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prepends "context: " to the message, keeps the code; returns the code. */
int slm_err_prefix(slm_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *slm_strerror(int code);

/* Only where there is nothing to release; never hides a goto. */
#define SLM_TRY(expr)                 \
    do {                              \
        int rc_ = (expr);             \
        if (rc_) return rc_;          \
    } while (0)

#endif
