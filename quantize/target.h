/* target.h - per-tensor types for a file-size target (slm quantize --target-size/--target-bpw).
 *
 * Owns: the allocation: every tensor starts at its cheapest candidate, then the upgrade with the
 * largest predicted-error drop per added byte that still fits is taken, until none fits. Sizes are
 * exact: each tensor's bytes padded to the file's alignment plus the fixed bytes (header, KVs,
 * tensor infos, tensors that are not allocated). Deterministic (ties: lower index).
 * Must not: read tensors or know the file format beyond the alignment.
 */
#ifndef SLM_TARGET_H
#define SLM_TARGET_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define SLM_TARGET_MAX_CAND 8

typedef struct slm_target_tensor {
    int n_cand;                        /* candidates, cheapest first */
    int types[SLM_TARGET_MAX_CAND];
    uint64_t bytes[SLM_TARGET_MAX_CAND];
    double err[SLM_TARGET_MAX_CAND];   /* predicted error of each candidate */
} slm_target_tensor;

/* Chooses choice[i] (an index into t[i].types) so that fixed + sum pad(bytes) <= target with the
   least total predicted error the greedy finds; *size gets that sum. SLM_E_ARG when even the
   cheapest candidates exceed target. */
int slm_target_allocate(const slm_target_tensor *t, size_t n, uint64_t fixed, uint64_t align, uint64_t target, int *choice,
                        uint64_t *size, slm_err *err);

#endif
