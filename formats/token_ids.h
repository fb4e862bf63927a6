/* token_ids.h - files of token ids: what `slm eval --tokens-in/--dump-tokens` and llama.cpp's
 * perplexity driver (llppl --tokens-in/--dump-tokens) exchange so both score the same ids.
 *
 * Owns: reading little-endian int32 ids (a file with a NUL byte) or whitespace-separated
 * decimal ids, and writing one decimal id per line (through an output set, core/afile.h).
 * Must not: check ids against a vocabulary (the caller knows it).
 */
#ifndef SLM_TOKEN_IDS_H
#define SLM_TOKEN_IDS_H

#include <stdint.h>

#include "core/afile.h"
#include "core/err.h"

/* *ids (slm_alloc'd; slm_free it) and their count. */
int slm_ids_read(const char *path, int32_t **ids, int64_t *n_ids, slm_err *err);
/* One id per line into the output set (committed by the caller). */
int slm_ids_write(slm_outset *os, const char *path, const int32_t *ids, int64_t n, slm_err *err);

#endif
