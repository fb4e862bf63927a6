/* rope_freqs.c - Llama 3 rope scaling: the divisors llama.cpp stores as rope_freqs.weight.
 *
 * torch's recipe, each operation rounded to float32 (the build has -ffp-contract=off):
 *   freq_i = 1 / base^(f32(2i) / f32(D)),  wavelen_i = f32(2 pi) / freq_i
 *   wavelen < old_ctx / high_freq_factor   -> 1
 *   wavelen > old_ctx / low_freq_factor    -> factor
 *   else s = (old_ctx / wavelen - low) / (high - low), 1 / ((1 - s) / factor + s)
 * The two wavelength bounds are Python floats (double); torch compares a float32 tensor with
 * them after rounding them to float32.
 */
#include "formats/rope_freqs.h"

#include <math.h>

void slm_rope_llama3_freqs(const slm_rope_llama3 *p, float theta, int D, float *out) {
    const double low_wl = (double)p->orig_ctx / p->low_freq_factor, high_wl = (double)p->orig_ctx / p->high_freq_factor;
    const float two_pi = (float)(2.0 * M_PI);
    const float span = (float)((double)p->high_freq_factor - (double)p->low_freq_factor);
    for (int i = 0; i < D / 2; i++) {
        const float e = (float)(2 * i) / (float)D;
        const float freq = 1.0f / powf(theta, e);
        const float wavelen = two_pi / freq;
        if (wavelen < (float)high_wl) {
            out[i] = 1.0f;
        } else if (wavelen > (float)low_wl) {
            out[i] = p->factor;
        } else {
            const float s = ((float)p->orig_ctx / wavelen - p->low_freq_factor) / span;
            out[i] = 1.0f / ((1.0f - s) / p->factor + s);
        }
    }
}
