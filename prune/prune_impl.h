/* prune_impl.h - what prune.c and prune_select.c share (not a public header). */
#ifndef SLM_PRUNE_IMPL_H
#define SLM_PRUNE_IMPL_H

#include "prune/prune.h"

/* Kept FFN channels / kv head groups of each input layer (ascending indices, keep_n of them;
   keep_idx[l] allocated here) and kept blocks (keep[l] 0/1). */
int slm_prune_choose_ffn(slm_prune *p, int32_t **keep_idx, int *keep_n, slm_err *err);
int slm_prune_choose_heads(slm_prune *p, int32_t **keep_idx, int *keep_n, slm_err *err);
int slm_prune_choose_layers(slm_prune *p, int *keep, slm_err *err);

#endif
