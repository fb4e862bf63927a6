/* layer_phi3.c - Phi-3's rotary table: NEOX pairs whose angles are divided by the longrope
 * frequency factors, with cos and sin scaled by the attention factor (docs/families.md 4c).
 * Computed as ggml's rope cache is (ggml-cpu/ops.cpp: ggml_rope_cache_init, rope_yarn with
 * ext_factor 0 and freq_scale 1): theta_0 = pos, theta_{i+1} = theta_i * powf(base, -2/D) in
 * float, cos(theta_i / ff[i]) * attn_factor.
 * Must not: allocate, print.
 */
#include "model/layers.h"

#include <math.h>

void slm_phi3_rope_table(float *cs, int n_pos, const slm_model_config *c) {
    const slm_phi3 *p = &c->phi3;
    const int D = c->head_dim;
    /* llama.cpp: long factors when the context per sequence exceeds the original one */
    const float *ff = !p->n_factors ? NULL : n_pos > p->orig_ctx ? p->long_factor : p->short_factor;
    const float mscale = p->n_factors ? p->attn_factor : 1.0f;
    const float theta_scale = powf(c->rope_theta, -2.0f / (float)D);
    for (int pos = 0; pos < n_pos; pos++) {
        float theta = (float)pos;
        for (int i = 0; i < D / 2; i++) {
            const float t = theta / (ff ? ff[i] : 1.0f);
            cs[((size_t)pos * (D / 2) + i) * 2] = cosf(t) * mscale;
            cs[((size_t)pos * (D / 2) + i) * 2 + 1] = sinf(t) * mscale;
            theta *= theta_scale;
        }
    }
}
