/* layer_common.c - the pieces every layer kernel uses: the CPU switch, the panel layout of
 * weight matrices, and the scalar exp (layer_simd.h has its 8-lane twin).
 * Must not: allocate, fail or print.
 */
#include "model/layer_simd.h"

#include "core/cpu.h"

int slm_layers_simd(void) {
#if SLM_HAVE_AVX2_KERNELS
    return slm_cpu_has_avx512vnni() ? SLM_SIMD_AVX512 : slm_cpu_has_avx2_fma();
#else
    return 0;
#endif
}

/* ---------------------------------------------------------------------------------------------
 * panels: W (OC, C) as ceil(OC/16) blocks of (C, 16) */

void slm_panel_pack_rows(float *wp, const float *w, int64_t o0, int64_t n, int64_t C) {
    for (int64_t r = 0; r < n; r++)
        for (int64_t c = 0; c < C; c++) wp[slm_panel_index(o0 + r, c, C)] = w[r * C + c];
}

void slm_panel_unpack_rows(float *w, const float *wp, int64_t o0, int64_t n, int64_t C) {
    for (int64_t r = 0; r < n; r++)
        for (int64_t c = 0; c < C; c++) w[r * C + c] = wp[slm_panel_index(o0 + r, c, C)];
}

float slm_expf(float x) {
    if (!(x >= EXP_LO)) return x != x ? x : 0.0f; /* NaN stays NaN, -inf and tiny -> 0 */
    if (x > EXP_HI) return INFINITY;
    float n = rintf(x * LOG2E);
    float r = fmaf(n, -LN2_HI, x);
    r = fmaf(n, -LN2_LO, r);
    float p = EXP_P0;
    p = fmaf(p, r, EXP_P1);
    p = fmaf(p, r, EXP_P2);
    p = fmaf(p, r, EXP_P3);
    p = fmaf(p, r, EXP_P4);
    p = fmaf(p, r, EXP_P5);
    float y = fmaf(p, r * r, r);
    y = y + 1.0f;
    int32_t e = ((int32_t)n + 127) << 23;
    float s;
    memcpy(&s, &e, sizeof s);
    return y * s;
}
