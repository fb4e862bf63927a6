/* q_dot_iq.c - scalar references of the lattice-quant dot products with Q8_K activations: IQ2_XXS
 * IQ2_XS IQ2_S IQ3_XXS IQ3_S IQ1_S IQ1_M x Q8_K, in the order of ggml's AVX2 kernels
 * (arch/x86/quants.c). The AVX2 tiles are q_dot_q8k.c.
 *
 * Owns: one function per type that builds ggml's int32 lanes value by value (q_dot_impl.h): the
 * integer weight of a value is grid coordinate x sign x the odd sub-block scale 2s + 1 (ggml's
 * kernels fold the formats' 0.5 + s into it and multiply the sum by 1/8 or 1/4 at the end).
 * Must not: allocate, print, or reorder a float operation of the orders below.
 *
 * Per super-block (d = f16(w.d) * a.d; IQ1_S, IQ1_M: a.d * f16(w.d), the same product):
 *   IQ2_XXS IQ2_XS IQ2_S: acc = fma(d, lanes, acc); result 0.125f * hsum(acc)
 *   IQ3_XXS: the same, 0.25f * hsum(acc); IQ3_S: hsum(acc)
 *   IQ1_S:  acc = fma(d, lanes, acc); the delta term as one int per super-block, sum over the 8
 *           sub-blocks of (bs[2k] + bs[2k+1]) * (+-1) * (2s + 1), into a float chain
 *           acc1 = fma(d, that, acc1) (ggml's `accum1 += d * sumi1`, contracted); result
 *           hsum(acc) + IQ1S_DELTA * acc1, the product rounded first (as ggml's build does)
 *   IQ1_M:  acc = fma(d, lanes, acc) and acc2 = fma(d, delta lanes, acc2) (lanes of +-a times the
 *           scale); result fma(hsum(acc2), IQ1M_DELTA, hsum(acc)) (contracted in ggml's build)
 * (The contractions are what llama.cpp v0.5.0's libggml-cpu-haswell.so executes: checked by
 * disassembly and bit for bit by bench/dot_kernels.c.)
 */
#include "core/dtype.h"
#include "core/slm.h"
#include "quantize/q_dot_impl.h"
#include "quantize/q_iq_common.h"

static int grid_coord_u8(uint64_t point, int j) { return (uint8_t)(point >> 8 * j); }
static int grid_coord_i8(uint64_t point, int j) { return (int8_t)(uint8_t)(point >> 8 * j); }
static int sign_of(unsigned signs, int j) { return signs >> j & 1 ? -1 : 1; }

static void lanes_256(int32_t lane[8], const int *q, const int8_t *y) {
    for (int m = 0; m < 8; m++) lane[m] = 0;
    for (int v = 0; v < SLM_QK_K; v++) lane[SLM_LANE(v)] += q[v] * y[v];
}

/* 8 values of a grid point with their sign bits and a scale, to q. */
static void group8(int *q, uint64_t point, unsigned signs, int scale) {
    for (int j = 0; j < 8; j++) q[j] = scale * grid_coord_u8(point, j) * sign_of(signs, j);
}

/* Accumulates one super-block's lanes and returns nothing; the result is formed by the caller. */
static void accumulate(float acc[8], float d, const int *q, const int8_t *y) {
    int32_t lane[8];
    lanes_256(lane, q, y);
    slm_lanes_fma(acc, d, lane);
}

void slm_vec_dot_iq2_xxs_q8_K_ref(int64_t n, float *restrict s, const void *restrict vw, const void *restrict va) {
    const slm_block_iq2_xxs *x = vw;
    const slm_block_q8_K *y = va;
    float acc[8] = {0};
    for (int64_t i = 0; i < n / SLM_QK_K; i++) {
        const uint8_t *qs = (const uint8_t *)x[i].qs;
        int q[SLM_QK_K];
        for (int ib = 0; ib < 8; ib++) {
            const uint32_t grid = slm_le_u32(qs + 8 * ib), ss = slm_le_u32(qs + 8 * ib + 4);
            for (int l = 0; l < 4; l++)
                group8(q + 32 * ib + 8 * l, slm_iq2xxs_grid[(grid >> 8 * l) & 255], slm_ksigns_iq2xs[(ss >> 7 * l) & 127],
                       2 * (int)(ss >> 28) + 1);
        }
        accumulate(acc, slm_f16(x[i].d) * y[i].d, q, y[i].qs);
    }
    *s = 0.125f * slm_hsum8(acc);
}

void slm_vec_dot_iq2_xs_q8_K_ref(int64_t n, float *restrict s, const void *restrict vw, const void *restrict va) {
    const slm_block_iq2_xs *x = vw;
    const slm_block_q8_K *y = va;
    float acc[8] = {0};
    for (int64_t i = 0; i < n / SLM_QK_K; i++) {
        int q[SLM_QK_K];
        for (int g = 0; g < 32; g++) { /* groups of 8; the scale changes every 16 values */
            const uint16_t v = x[i].qs[g];
            const int ls = (x[i].scales[g / 4] >> 4 * ((g / 2) % 2)) & 15;
            group8(q + 8 * g, slm_iq2xs_grid[v & 511], slm_ksigns_iq2xs[v >> 9], 2 * ls + 1);
        }
        accumulate(acc, slm_f16(x[i].d) * y[i].d, q, y[i].qs);
    }
    *s = 0.125f * slm_hsum8(acc);
}

void slm_vec_dot_iq2_s_q8_K_ref(int64_t n, float *restrict s, const void *restrict vw, const void *restrict va) {
    const slm_block_iq2_s *x = vw;
    const slm_block_q8_K *y = va;
    float acc[8] = {0};
    for (int64_t i = 0; i < n / SLM_QK_K; i++) {
        int q[SLM_QK_K];
        for (int g = 0; g < 32; g++) {
            const int idx = x[i].qs[g] | ((x[i].qh[g / 4] >> 2 * (g % 4)) & 3) << 8;
            const int ls = (x[i].scales[g / 4] >> 4 * ((g / 2) % 2)) & 15;
            group8(q + 8 * g, slm_iq2s_grid[idx], x[i].qs[32 + g], 2 * ls + 1);
        }
        accumulate(acc, slm_f16(x[i].d) * y[i].d, q, y[i].qs);
    }
    *s = 0.125f * slm_hsum8(acc);
}

void slm_vec_dot_iq3_xxs_q8_K_ref(int64_t n, float *restrict s, const void *restrict vw, const void *restrict va) {
    const slm_block_iq3_xxs *x = vw;
    const slm_block_q8_K *y = va;
    float acc[8] = {0};
    for (int64_t i = 0; i < n / SLM_QK_K; i++) {
        int q[SLM_QK_K];
        for (int ib = 0; ib < 8; ib++) {
            const uint32_t ss = slm_le_u32(x[i].qs + SLM_QK_K / 4 + 4 * ib);
            const int ls = 2 * (int)(ss >> 28) + 1;
            for (int l = 0; l < 4; l++) { /* 8 values: two grid points of 4, one sign byte */
                const uint64_t p = slm_iq3xxs_grid[x[i].qs[8 * ib + 2 * l]] |
                                   (uint64_t)slm_iq3xxs_grid[x[i].qs[8 * ib + 2 * l + 1]] << 32;
                group8(q + 32 * ib + 8 * l, p, slm_ksigns_iq2xs[(ss >> 7 * l) & 127], ls);
            }
        }
        accumulate(acc, slm_f16(x[i].d) * y[i].d, q, y[i].qs);
    }
    *s = 0.25f * slm_hsum8(acc);
}

void slm_vec_dot_iq3_s_q8_K_ref(int64_t n, float *restrict s, const void *restrict vw, const void *restrict va) {
    const slm_block_iq3_s *x = vw;
    const slm_block_q8_K *y = va;
    float acc[8] = {0};
    for (int64_t i = 0; i < n / SLM_QK_K; i++) {
        int q[SLM_QK_K];
        for (int ib = 0; ib < 8; ib++) {
            const int ls = 2 * ((x[i].scales[ib / 2] >> 4 * (ib % 2)) & 15) + 1, qh = x[i].qh[ib];
            for (int l = 0; l < 4; l++) {
                const int t = 2 * l; /* groups t, t + 1 of 4 values; index bit 8 from qh bit t */
                const uint64_t p = slm_iq3s_grid[x[i].qs[8 * ib + t] | ((qh << (8 - t)) & 256)] |
                                   (uint64_t)slm_iq3s_grid[x[i].qs[8 * ib + t + 1] | ((qh << (7 - t)) & 256)] << 32;
                group8(q + 32 * ib + 8 * l, p, x[i].signs[4 * ib + l], ls);
            }
        }
        accumulate(acc, slm_f16(x[i].d) * y[i].d, q, y[i].qs);
    }
    *s = slm_hsum8(acc);
}

void slm_vec_dot_iq1_s_q8_K_ref(int64_t n, float *restrict s, const void *restrict vw, const void *restrict va) {
    const slm_block_iq1_s *x = vw;
    const slm_block_q8_K *y = va;
    float acc[8] = {0}, acc1 = 0;
    for (int64_t i = 0; i < n / SLM_QK_K; i++) {
        int q[SLM_QK_K];
        int32_t delta = 0;
        for (int ib = 0; ib < 8; ib++) {
            const uint16_t qh = x[i].qh[ib];
            const int ls = 2 * ((qh >> 12) & 7) + 1;
            for (int l = 0; l < 4; l++) {
                const uint64_t p = slm_iq1s_grid[x[i].qs[4 * ib + l] | (((qh >> 3 * l) & 7) << 8)];
                for (int j = 0; j < 8; j++) q[32 * ib + 8 * l + j] = ls * grid_coord_i8(p, j);
            }
            delta += (y[i].bsums[2 * ib] + y[i].bsums[2 * ib + 1]) * (qh & 0x8000 ? -1 : 1) * ls;
        }
        const float d = y[i].d * slm_f16(x[i].d);
        accumulate(acc, d, q, y[i].qs);
        acc1 = fmaf(d, (float)delta, acc1);
    }
    const float delta_part = SLM_IQ1S_DELTA * acc1; /* rounded before the sum, as ggml's build */
    *s = slm_hsum8(acc) + delta_part;
}

/* The fp16 super-block scale of iq1_m, spread over the top nibbles of the four u16 scales. */
static uint16_t iq1_m_d16(const uint8_t *scales, uint16_t sc[4]) {
    for (int j = 0; j < 4; j++) sc[j] = slm_le_u16(scales + 2 * j);
    return (uint16_t)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
}

void slm_vec_dot_iq1_m_q8_K_ref(int64_t n, float *restrict s, const void *restrict vw, const void *restrict va) {
    const slm_block_iq1_m *x = vw;
    const slm_block_q8_K *y = va;
    float acc[8] = {0}, acc2[8] = {0};
    for (int64_t i = 0; i < n / SLM_QK_K; i++) {
        uint16_t sc[4];
        const uint16_t d16 = iq1_m_d16(x[i].scales, sc);
        int q[SLM_QK_K], dq[SLM_QK_K];
        for (int ib = 0; ib < 8; ib++)
            for (int l = 0; l < 4; l++) { /* group l of sub-block ib: nibble l % 2 of qh[2 ib + l / 2] */
                const int ls = 2 * ((sc[ib / 2] >> (6 * (ib % 2) + 3 * (l / 2))) & 7) + 1;
                const unsigned h = x[i].qh[2 * ib + l / 2] >> 4 * (l % 2);
                const uint64_t p = slm_iq1s_grid[x[i].qs[4 * ib + l] | ((h & 7) << 8)];
                for (int j = 0; j < 8; j++) {
                    q[32 * ib + 8 * l + j] = ls * grid_coord_i8(p, j);
                    dq[32 * ib + 8 * l + j] = h & 8 ? -ls : ls;
                }
            }
        const float d = y[i].d * slm_f16(d16);
        accumulate(acc, d, q, y[i].qs);
        accumulate(acc2, d, dq, y[i].qs);
    }
    *s = fmaf(slm_hsum8(acc2), SLM_IQ1S_DELTA, slm_hsum8(acc)) /* IQ1M_DELTA = IQ1S_DELTA */;
}
