/* layer_rope.c - rotary position embedding, in place over the q and k heads (NORM pairs or NEOX
 * halves), and its backward (the inverse rotation, in place over the gradient).
 * Must not: allocate, fail or print.
 */
#include "model/layer_simd.h"

/* ---------------------------------------------------------------------------------------------
 * rope */

void slm_rope_forward(float *x, int ld, const float *cs, int T, int pos0, int n_heads, int D, int neox) {
    int half = D / 2;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        const float *cst = cs + (size_t)(pos0 + t) * D; /* (D/2) pairs (cos, sin) */
        for (int h = 0; h < n_heads; h++) {
            float *v = x + (size_t)t * ld + (size_t)h * D;
            for (int i = 0; i < half; i++) {
                int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
                float c = cst[2 * i], s = cst[2 * i + 1];
                float a = v[i0], b = v[i1];
                v[i0] = a * c - b * s;
                v[i1] = a * s + b * c;
            }
        }
    }
}

/* forward: y0 = a c - b s, y1 = a s + b c (a rotation by the angle); backward: the rotation by
   minus the angle, da = dy0 c + dy1 s, db = dy1 c - dy0 s. */
void slm_rope_backward(float *dx, int ld, const float *cs, int T, int pos0, int n_heads, int D, int neox) {
    int half = D / 2;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        const float *cst = cs + (size_t)(pos0 + t) * D;
        for (int h = 0; h < n_heads; h++) {
            float *v = dx + (size_t)t * ld + (size_t)h * D;
            for (int i = 0; i < half; i++) {
                int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
                float c = cst[2 * i], s = cst[2 * i + 1];
                float dy0 = v[i0], dy1 = v[i1];
                v[i0] = dy0 * c + dy1 * s;
                v[i1] = dy1 * c - dy0 * s;
            }
        }
    }
}
