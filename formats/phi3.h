/* phi3.h - Phi-3 / Phi-3.5 hyperparameters and GGUF keys as llama.cpp's converter and loader
 * see them (docs/families.md 4).
 *
 * Owns: reading config.json's Phi-3 keys (longrope factors, original context, sliding window,
 * the _name_or_path name components), writing the phi3.* keys in convert_hf_to_gguf.py's
 * order, reading them back from a GGUF.
 * Must not: print, or read tensor data.
 */
#ifndef SLM_PHI3_H
#define SLM_PHI3_H

#include <cjson/cJSON.h>

#include "core/err.h"
#include "formats/gguf.h"
#include "formats/tok_import.h"
#include "model/config.h"

/* config.json (after the common keys are read into c). */
int slm_phi3_config(slm_model_config *c, const cJSON *root, const char *what, slm_err *err);
/* GGUF metadata (after the common keys); the factor values come with the weights. */
int slm_phi3_gguf_config(const slm_kvs *kv, const slm_gguf *g, slm_model_config *c, slm_err *err);
/* The GGUF keys of Phi3MiniModel in llama.cpp's order, then the vocabulary's. */
int slm_phi3_meta(const slm_model_config *c, const char *name, const slm_vocab *vocab, slm_kvs *kv, slm_err *err);

#endif
