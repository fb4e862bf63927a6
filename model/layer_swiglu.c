/* layer_swiglu.c - the gated MLP nonlinearity silu(gate) * up, scalar reference and AVX2, and
 * its backward.
 * Must not: allocate, fail or print; one `parallel for` over tokens.
 */
#include "model/layer_simd.h"

/* ---------------------------------------------------------------------------------------------
 * swiglu and residual */

/* silu(g) * u with sigmoid(g) = (g >= 0 ? 1 : e) / (1 + e), e = exp(-|g|): no overflow either side. */
static void swiglu_row_ref(float *o, const float *g, const float *u, int i0, int F) {
    for (int i = i0; i < F; i++) {
        float e = slm_expf(-fabsf(g[i]));
        float sig = (g[i] >= 0.0f ? 1.0f : e) / (1.0f + e);
        o[i] = (g[i] * sig) * u[i];
    }
}

#if SLM_HAVE_AVX2_KERNELS
static AVX2 void swiglu_row_avx2(float *o, const float *g, const float *u, int F) {
    const __m256 sign = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= F; i += 8) {
        __m256 gv = _mm256_loadu_ps(g + i);
        __m256 e = expf_avx2(_mm256_or_ps(gv, sign)); /* exp(-|g|) */
        __m256 num = _mm256_blendv_ps(e, one, _mm256_cmp_ps(gv, zero, _CMP_GE_OQ));
        __m256 sig = _mm256_div_ps(num, _mm256_add_ps(one, e));
        _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_mul_ps(gv, sig), _mm256_loadu_ps(u + i)));
    }
    swiglu_row_ref(o, g, u, i, F);
}
#endif

static void swiglu_forward_impl(float *out, const float *gate_up, int T, int F, int simd) {
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        const float *g = gate_up + (size_t)t * 2 * F;
        float *o = out + (size_t)t * F;
#if SLM_HAVE_AVX2_KERNELS
        if (simd) {
            swiglu_row_avx2(o, g, g + F, F);
            continue;
        }
#endif
        swiglu_row_ref(o, g, g + F, 0, F);
    }
    (void)simd;
}

void slm_swiglu_forward(float *out, const float *gate_up, int T, int F) {
    swiglu_forward_impl(out, gate_up, T, F, slm_layers_simd());
}

void slm_swiglu_forward_ref(float *out, const float *gate_up, int T, int F) { swiglu_forward_impl(out, gate_up, T, F, 0); }

/* forward: o = g sig(g) u; do/du = g sig(g), do/dg = u sig(g) (1 + g (1 - sig(g))). */
static void swiglu_bwd_row_ref(float *dg, float *du, const float *d, const float *g, const float *u, int i0, int F) {
    for (int i = i0; i < F; i++) {
        float e = slm_expf(-fabsf(g[i]));
        float sig = (g[i] >= 0.0f ? 1.0f : e) / (1.0f + e);
        du[i] += d[i] * (g[i] * sig);
        dg[i] += d[i] * u[i] * (sig * (1.0f + g[i] * (1.0f - sig)));
    }
}

#if SLM_HAVE_AVX2_KERNELS
static AVX2 void swiglu_bwd_row_avx2(float *dg, float *du, const float *d, const float *g, const float *u, int F) {
    const __m256 sign = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= F; i += 8) {
        __m256 gv = _mm256_loadu_ps(g + i), dv = _mm256_loadu_ps(d + i);
        __m256 e = expf_avx2(_mm256_or_ps(gv, sign)); /* exp(-|g|) */
        __m256 num = _mm256_blendv_ps(e, one, _mm256_cmp_ps(gv, zero, _CMP_GE_OQ));
        __m256 sig = _mm256_div_ps(num, _mm256_add_ps(one, e));
        __m256 dsil = _mm256_mul_ps(sig, _mm256_add_ps(one, _mm256_mul_ps(gv, _mm256_sub_ps(one, sig))));
        _mm256_storeu_ps(du + i, _mm256_add_ps(_mm256_loadu_ps(du + i), _mm256_mul_ps(dv, _mm256_mul_ps(gv, sig))));
        _mm256_storeu_ps(dg + i, _mm256_add_ps(_mm256_loadu_ps(dg + i),
                                               _mm256_mul_ps(_mm256_mul_ps(dv, _mm256_loadu_ps(u + i)), dsil)));
    }
    swiglu_bwd_row_ref(dg, du, d, g, u, i, F);
}
#endif

static void swiglu_backward_impl(float *dgate_up, const float *dout, const float *gate_up, int T, int F, int simd) {
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        const float *g = gate_up + (size_t)t * 2 * F, *d = dout + (size_t)t * F;
        float *dg = dgate_up + (size_t)t * 2 * F;
#if SLM_HAVE_AVX2_KERNELS
        if (simd) {
            swiglu_bwd_row_avx2(dg, dg + F, d, g, g + F, F);
            continue;
        }
#endif
        swiglu_bwd_row_ref(dg, dg + F, d, g, g + F, 0, F);
    }
    (void)simd;
}

void slm_swiglu_backward(float *dgate_up, const float *dout, const float *gate_up, int T, int F) {
    swiglu_backward_impl(dgate_up, dout, gate_up, T, F, slm_layers_simd());
}

void slm_swiglu_backward_ref(float *dgate_up, const float *dout, const float *gate_up, int T, int F) {
    swiglu_backward_impl(dgate_up, dout, gate_up, T, F, 0);
}
