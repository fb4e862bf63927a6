/* err.c - one-line error messages with context prepended on the way up.
 * Must not print: messages are returned to the caller (cli/ prints them).
 */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int slm_errf(slm_err *err, int code, const char *fmt, ...) {
    if (!err) return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    err->code = code;
    return code;
}

int slm_err_prefix(slm_err *err, const char *fmt, ...) {
    if (!err) return SLM_E_ARG;
    char head[512], old[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof(head), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    snprintf(err->msg, sizeof(err->msg), "%s: %s", head, old);
    return err->code;
}

const char *slm_strerror(int code) {
    switch (code) {
    case SLM_OK: return "ok";
    case SLM_E_IO: return "I/O error";
    case SLM_E_FORMAT: return "malformed input";
    case SLM_E_UNSUPPORTED: return "unsupported";
    case SLM_E_NOMEM: return "out of memory";
    case SLM_E_ARG: return "bad argument";
    case SLM_E_INTERRUPTED: return "interrupted";
    case SLM_E_DATA: return "bad data";
    }
    return "unknown error";
}
