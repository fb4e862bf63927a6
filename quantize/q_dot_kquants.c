/* q_dot_kquants.c - scalar references of the k-quant dot products with Q8_K activations: Q2_K Q3_K
 * Q4_K Q5_K Q6_K IQ4_XS x Q8_K, in the order of ggml's AVX2 kernels (arch/x86/quants.c). The
 * AVX2 tiles of every Q8_K type are q_dot_q8k.c.
 *
 * Owns: one function per type that builds ggml's int32 lanes value by value (q_dot_impl.h) and
 * accumulates them exactly as ggml does.
 * Must not: allocate, print, or reorder a float operation of the orders below.
 *
 * Per super-block of 256 (d = a.d * f16(w.d), dmin = -a.d * f16(w.dmin); lane as q_dot_impl.h,
 * the integer weight of value v being its sub-block scale times its quant; bs = a.bsums):
 *   Q2_K:  acc = fma(dmin, mins lanes, acc), then acc = fma(d, lanes, acc), mins lane m =
 *          min[2m] bs[2m] + min[2m+1] bs[2m+1]; result hsum(acc)
 *   Q3_K:  acc = fma(d, lanes, acc), quants q - 4 (high bit clear) or q; result hsum(acc)
 *   Q4_K:  acc = fma(d, lanes, acc); acc_m (4 lanes) = fma(dmin, m, acc_m) with m lane k = min[2k]
 *          (bs[4k] + bs[4k+1]) + min[2k+1] (bs[4k+2] + bs[4k+3]); result hsum(acc) +
 *          ((acc_m0 + acc_m2) + (acc_m1 + acc_m3))
 *   Q5_K:  acc as Q4_K; summs = fma(dmin, sum of the 4 mins lanes (int), summs) (one float chain,
 *          ggml's `summs += dmin * sum` contracted); result hsum(acc) + summs
 *   Q6_K:  lanes of the unsigned quants (0..63) minus 32 (bs[2m] sc[2m] + bs[2m+1] sc[2m+1]) in
 *          lane m; acc = fma(d, lanes, acc); result hsum(acc)
 *   IQ4_XS: d = f16(w.d) * a.d, weights kvalues_iq4nl[q] times (6-bit scale - 32); hsum(acc)
 */
#include "core/dtype.h"
#include "core/slm.h"
#include "quantize/q_dot_impl.h"

static const int8_t kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/* lane[m] = sum over the 256 values v with SLM_LANE(v) == m of q[v] * y[v]. */
static void lanes_256(int32_t lane[8], const int *q, const int8_t *y) {
    for (int m = 0; m < 8; m++) lane[m] = 0;
    for (int v = 0; v < SLM_QK_K; v++) lane[SLM_LANE(v)] += q[v] * y[v];
}

/* The 8 6-bit scales and mins of q4_K / q5_K (ggml's get_scale_min_k4). */
static void scales_mins_k4(const uint8_t *q, int sc[8], int mn[8]) {
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            sc[j] = q[j] & 63;
            mn[j] = q[j + 4] & 63;
        } else {
            sc[j] = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
            mn[j] = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        }
    }
}

void slm_vec_dot_q2_K_q8_K_ref(int64_t n, float *restrict s, const void *restrict vw, const void *restrict va) {
    const slm_block_q2_K *x = vw;
    const slm_block_q8_K *y = va;
    float acc[8] = {0};
    for (int64_t i = 0; i < n / SLM_QK_K; i++) {
        int q[SLM_QK_K];
        int32_t lane[8], mins[8];
        for (int j = 0; j < 2; j++)
            for (int sh = 0; sh < 4; sh++)
                for (int b = 0; b < 32; b++) {
                    const int v = 128 * j + 32 * sh + b;
                    q[v] = (x[i].scales[v / 16] & 15) * ((x[i].qs[32 * j + b] >> 2 * sh) & 3);
                }
        lanes_256(lane, q, y[i].qs);
        for (int m = 0; m < 8; m++)
            mins[m] = (x[i].scales[2 * m] >> 4) * y[i].bsums[2 * m] + (x[i].scales[2 * m + 1] >> 4) * y[i].bsums[2 * m + 1];
        const float d = y[i].d * slm_f16(x[i].d), dmin = -y[i].d * slm_f16(x[i].dmin);
        slm_lanes_fma(acc, dmin, mins);
        slm_lanes_fma(acc, d, lane);
    }
    *s = slm_hsum8(acc);
}

/* The 16 6-bit scales of q3_K, minus 32. */
static void scales_q3_K(const uint8_t *packed, int sc[16]) {
    uint32_t aux[4];
    memcpy(aux, packed, 12);
    const uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f, tmp = aux[2];
    aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
    aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
    aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
    aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
    int8_t b[16];
    memcpy(b, aux, 16);
    for (int j = 0; j < 16; j++) sc[j] = b[j] - 32;
}

void slm_vec_dot_q3_K_q8_K_ref(int64_t n, float *restrict s, const void *restrict vw, const void *restrict va) {
    const slm_block_q3_K *x = vw;
    const slm_block_q8_K *y = va;
    float acc[8] = {0};
    for (int64_t i = 0; i < n / SLM_QK_K; i++) {
        int sc[16], q[SLM_QK_K];
        int32_t lane[8];
        scales_q3_K(x[i].scales, sc);
        for (int j = 0; j < 2; j++)
            for (int sh = 0; sh < 4; sh++)
                for (int b = 0; b < 32; b++) {
                    const int v = 128 * j + 32 * sh + b;
                    const int high = (x[i].hmask[b] >> (4 * j + sh)) & 1;
                    q[v] = sc[v / 16] * (((x[i].qs[32 * j + b] >> 2 * sh) & 3) - (high ? 0 : 4));
                }
        lanes_256(lane, q, y[i].qs);
        slm_lanes_fma(acc, y[i].d * slm_f16(x[i].d), lane);
    }
    *s = slm_hsum8(acc);
}

/* The 4 mins lanes of q4_K / q5_K (see the file header). */
static void mins_lanes_k4(int32_t m4[4], const int mn[8], const int16_t *bs) {
    for (int k = 0; k < 4; k++)
        m4[k] = mn[2 * k] * (bs[4 * k] + bs[4 * k + 1]) + mn[2 * k + 1] * (bs[4 * k + 2] + bs[4 * k + 3]);
}

void slm_vec_dot_q4_K_q8_K_ref(int64_t n, float *restrict s, const void *restrict vw, const void *restrict va) {
    const slm_block_q4_K *x = vw;
    const slm_block_q8_K *y = va;
    float acc[8] = {0}, acc_m[4] = {0};
    for (int64_t i = 0; i < n / SLM_QK_K; i++) {
        int sc[8], mn[8], q[SLM_QK_K];
        int32_t lane[8], m4[4];
        scales_mins_k4(x[i].scales, sc, mn);
        for (int j = 0; j < 4; j++)
            for (int b = 0; b < 32; b++) {
                q[64 * j + b] = sc[2 * j] * (x[i].qs[32 * j + b] & 15);
                q[64 * j + 32 + b] = sc[2 * j + 1] * (x[i].qs[32 * j + b] >> 4);
            }
        lanes_256(lane, q, y[i].qs);
        mins_lanes_k4(m4, mn, y[i].bsums);
        const float d = y[i].d * slm_f16(x[i].d), dmin = -y[i].d * slm_f16(x[i].dmin);
        for (int k = 0; k < 4; k++) acc_m[k] = fmaf(dmin, (float)m4[k], acc_m[k]);
        slm_lanes_fma(acc, d, lane);
    }
    *s = slm_hsum8(acc) + ((acc_m[0] + acc_m[2]) + (acc_m[1] + acc_m[3]));
}

void slm_vec_dot_q5_K_q8_K_ref(int64_t n, float *restrict s, const void *restrict vw, const void *restrict va) {
    const slm_block_q5_K *x = vw;
    const slm_block_q8_K *y = va;
    float acc[8] = {0}, summs = 0;
    for (int64_t i = 0; i < n / SLM_QK_K; i++) {
        int sc[8], mn[8], q[SLM_QK_K];
        int32_t lane[8], m4[4];
        scales_mins_k4(x[i].scales, sc, mn);
        for (int j = 0; j < 4; j++)
            for (int b = 0; b < 32; b++) {
                const int h0 = (x[i].qh[b] >> (2 * j)) & 1, h1 = (x[i].qh[b] >> (2 * j + 1)) & 1;
                q[64 * j + b] = sc[2 * j] * ((x[i].qs[32 * j + b] & 15) | h0 << 4);
                q[64 * j + 32 + b] = sc[2 * j + 1] * ((x[i].qs[32 * j + b] >> 4) | h1 << 4);
            }
        lanes_256(lane, q, y[i].qs);
        mins_lanes_k4(m4, mn, y[i].bsums);
        const float d = y[i].d * slm_f16(x[i].d), dmin = -y[i].d * slm_f16(x[i].dmin);
        summs = fmaf(dmin, (float)(m4[0] + m4[1] + m4[2] + m4[3]), summs);
        slm_lanes_fma(acc, d, lane);
    }
    *s = slm_hsum8(acc) + summs;
}

void slm_vec_dot_q6_K_q8_K_ref(int64_t n, float *restrict s, const void *restrict vw, const void *restrict va) {
    const slm_block_q6_K *x = vw;
    const slm_block_q8_K *y = va;
    float acc[8] = {0};
    for (int64_t i = 0; i < n / SLM_QK_K; i++) {
        int q[SLM_QK_K];
        int32_t lane[8];
        const int8_t *sc = x[i].scales;
        for (int j = 0; j < 2; j++)
            for (int sh = 0; sh < 4; sh++)
                for (int b = 0; b < 32; b++) {
                    const int v = 128 * j + 32 * sh + b;
                    const uint8_t l = x[i].ql[64 * j + 32 * (sh & 1) + b];
                    const int lo = sh < 2 ? l & 15 : l >> 4, hi = (x[i].qh[32 * j + b] >> 2 * sh) & 3;
                    q[v] = sc[v / 16] * (lo | hi << 4);
                }
        lanes_256(lane, q, y[i].qs);
        for (int m = 0; m < 8; m++)
            lane[m] -= 32 * (y[i].bsums[2 * m] * sc[2 * m] + y[i].bsums[2 * m + 1] * sc[2 * m + 1]);
        slm_lanes_fma(acc, y[i].d * slm_f16(x[i].d), lane);
    }
    *s = slm_hsum8(acc);
}

void slm_vec_dot_iq4_xs_q8_K_ref(int64_t n, float *restrict s, const void *restrict vw, const void *restrict va) {
    const slm_block_iq4_xs *x = vw;
    const slm_block_q8_K *y = va;
    float acc[8] = {0};
    for (int64_t i = 0; i < n / SLM_QK_K; i++) {
        int q[SLM_QK_K];
        int32_t lane[8];
        for (int ib = 0; ib < 8; ib++) {
            const int ls = (((x[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) | (((x[i].scales_h >> 2 * ib) & 3) << 4)) - 32;
            for (int j = 0; j < 16; j++) {
                q[32 * ib + j] = ls * kvalues_iq4nl[x[i].qs[16 * ib + j] & 15];
                q[32 * ib + 16 + j] = ls * kvalues_iq4nl[x[i].qs[16 * ib + j] >> 4];
            }
        }
        lanes_256(lane, q, y[i].qs);
        slm_lanes_fma(acc, slm_f16(x[i].d) * y[i].d, lane);
    }
    *s = slm_hsum8(acc);
}
