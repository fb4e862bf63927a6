/* gen_config.h - generation_config.json -> the general.sampling.* keys llama.cpp's converter
 * writes (gguf-py/gguf/metadata.py: Metadata.load, set_gguf_meta_model; docs/families.md 0.2).
 * Must not: print.
 */
#ifndef SLM_GEN_CONFIG_H
#define SLM_GEN_CONFIG_H

#include "core/err.h"
#include "formats/gguf.h"

/* Appends to kv, in the converter's order, the sampling keys of DIR/generation_config.json
   (nothing when the file is absent or not a JSON object, as the converter). */
int slm_hf_sampling_load(slm_kvs *kv, const char *dir, slm_err *err);

#endif
