/* rope_freqs.h - the per-pair RoPE frequency divisors of Llama 3's rope scaling, as llama.cpp's
 * converter computes them (conversion/llama.py: LlamaModel.generate_extra_tensors; docs/families.md 1).
 * Must not: allocate, fail or print.
 */
#ifndef SLM_ROPE_FREQS_H
#define SLM_ROPE_FREQS_H

#include "model/config.h"

/* out[i], i < D/2: the divisor of rotary pair i's frequency theta^(-2i/D), in float32 step by
   step as torch computes it (1; factor; or 1 / ((1 - s) / factor + s) in between). */
void slm_rope_llama3_freqs(const slm_rope_llama3 *p, float theta, int D, float *out);

#endif
