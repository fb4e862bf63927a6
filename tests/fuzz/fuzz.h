/* fuzz.h - what the libFuzzer targets share: the entry point's prototype and the checks every
 * target makes on a result. Each target takes bytes from memory, must never crash, leak or
 * hit undefined behaviour (the fuzz build runs ASan + UBSan), and checks with SLM_ASSERT what
 * a successful parse promises; a failed one must carry a code and a message.
 * Built two ways: by `make fuzz` with clang -fsanitize=fuzzer, and by `make check` with the
 * normal compiler into replay_<target> (tests/fuzz/replay.c feeds it the corpus).
 */
#ifndef SLM_FUZZ_H
#define SLM_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/err.h"
#include "core/slm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A refusal: the code it returned, in the error, with a one-line-sized message. */
static inline void fuzz_check_refusal(int rc, const slm_err *e) {
    SLM_ASSERT(rc > 0 && e->code == rc);
    SLM_ASSERT(e->msg[0] != 0 && strlen(e->msg) < sizeof e->msg);
}

#endif
