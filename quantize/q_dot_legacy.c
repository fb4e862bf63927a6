/* q_dot_legacy.c - dot products of the 32-value block types with Q8_0 / Q8_1 activations:
 * Q4_0 Q5_0 Q8_0 IQ4_NL x Q8_0, Q4_1 Q5_1 x Q8_1, in the order of ggml's AVX2 kernels
 * (ggml_vec_dot_<t>_<vt>, arch/x86/quants.c).
 *
 * Owns: the scalar references (the lanes of q_dot_impl.h built value by value) and the AVX2 tiles.
 * Must not: allocate, print, or reorder a float operation of the orders below.
 *
 * Per block b: lane[m] = sum of w*a over the block's values 4m .. 4m+3 (w the integer weight:
 * q - 8, q - 16, q, kvalues_iq4nl[q]; Q4_1/Q5_1 the unsigned q), d = f16(w.d) * f16(a.d), and
 *   Q4_0 Q5_0 Q8_0: acc = fma(d, lane, acc); result hsum(acc)
 *   Q4_1 Q5_1:      acc = fma(d, lane, acc), summs = fma(f16(w.m), f16(a.s), summs) (one float
 *                   chain; ggml's `summs += m * s` is contracted by the compiler);
 *                   result hsum(acc) + summs
 *   IQ4_NL:         even blocks into acc, odd blocks into acc2 (pairs of blocks), result
 *                   hsum(acc + acc2), then a last odd block b: r = fma(d, sum of its lanes, r).
 * The tiles unpack each weight block once for the NC activation rows of the tile (4 x 3: 12
 * accumulators in registers; IQ4_NL runs its even and odd chains as two passes over the rows).
 */
#include "core/dtype.h"
#include "core/slm.h"
#include "quantize/q_dot_impl.h"

/* The 16 levels of iq4_nl / iq4_xs (ggml-common.h kvalues_iq4nl). */
static const int8_t kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/* ============================================================================ references */

/* Lanes of a block whose 32 integer weights are in q, with activations y. */
static void lanes_32(int32_t lane[8], const int *q, const int8_t *y) {
    for (int m = 0; m < 8; m++) lane[m] = 0;
    for (int v = 0; v < 32; v++) lane[SLM_LANE(v)] += q[v] * y[v];
}

/* Low nibbles are values 0..15, high nibbles values 16..31 (ggml's bytes_from_nibbles_32). */
static void nibbles_32(int q[32], const uint8_t *qs) {
    for (int j = 0; j < 16; j++) q[j] = qs[j] & 15, q[j + 16] = qs[j] >> 4;
}

/* 5th bits: bit v of the little-endian u32 qh. */
static void add_high_bits_32(int q[32], const uint8_t *qh) {
    const uint32_t h = slm_le_u32(qh);
    for (int v = 0; v < 32; v++) q[v] |= (int)((h >> v) & 1) << 4;
}

void slm_vec_dot_q4_0_q8_0_ref(int64_t n, float *restrict s, const void *restrict vw, const void *restrict va) {
    const slm_block_q4_0 *x = vw;
    const slm_block_q8_0 *y = va;
    float acc[8] = {0};
    for (int64_t ib = 0; ib < n / SLM_QK8_0; ib++) {
        int q[32];
        int32_t lane[8];
        nibbles_32(q, x[ib].qs);
        for (int v = 0; v < 32; v++) q[v] -= 8;
        lanes_32(lane, q, y[ib].qs);
        slm_lanes_fma(acc, slm_f16(x[ib].d) * slm_f16(y[ib].d), lane);
    }
    *s = slm_hsum8(acc);
}

void slm_vec_dot_q5_0_q8_0_ref(int64_t n, float *restrict s, const void *restrict vw, const void *restrict va) {
    const slm_block_q5_0 *x = vw;
    const slm_block_q8_0 *y = va;
    float acc[8] = {0};
    for (int64_t ib = 0; ib < n / SLM_QK8_0; ib++) {
        int q[32];
        int32_t lane[8];
        nibbles_32(q, x[ib].qs);
        add_high_bits_32(q, x[ib].qh);
        for (int v = 0; v < 32; v++) q[v] -= 16;
        lanes_32(lane, q, y[ib].qs);
        slm_lanes_fma(acc, slm_f16(x[ib].d) * slm_f16(y[ib].d), lane);
    }
    *s = slm_hsum8(acc);
}

void slm_vec_dot_q8_0_q8_0_ref(int64_t n, float *restrict s, const void *restrict vw, const void *restrict va) {
    const slm_block_q8_0 *x = vw;
    const slm_block_q8_0 *y = va;
    float acc[8] = {0};
    for (int64_t ib = 0; ib < n / SLM_QK8_0; ib++) {
        int q[32];
        int32_t lane[8];
        for (int v = 0; v < 32; v++) q[v] = x[ib].qs[v];
        lanes_32(lane, q, y[ib].qs);
        slm_lanes_fma(acc, slm_f16(x[ib].d) * slm_f16(y[ib].d), lane);
    }
    *s = slm_hsum8(acc);
}

void slm_vec_dot_q4_1_q8_1_ref(int64_t n, float *restrict s, const void *restrict vw, const void *restrict va) {
    const slm_block_q4_1 *x = vw;
    const slm_block_q8_1 *y = va;
    float acc[8] = {0}, summs = 0;
    for (int64_t ib = 0; ib < n / SLM_QK8_1; ib++) {
        int q[32];
        int32_t lane[8];
        nibbles_32(q, x[ib].qs);
        lanes_32(lane, q, y[ib].qs);
        summs = fmaf(slm_f16(x[ib].m), slm_f16(y[ib].s), summs);
        slm_lanes_fma(acc, slm_f16(x[ib].d) * slm_f16(y[ib].d), lane);
    }
    *s = slm_hsum8(acc) + summs;
}

void slm_vec_dot_q5_1_q8_1_ref(int64_t n, float *restrict s, const void *restrict vw, const void *restrict va) {
    const slm_block_q5_1 *x = vw;
    const slm_block_q8_1 *y = va;
    float acc[8] = {0}, summs = 0;
    for (int64_t ib = 0; ib < n / SLM_QK8_1; ib++) {
        int q[32];
        int32_t lane[8];
        nibbles_32(q, x[ib].qs);
        add_high_bits_32(q, x[ib].qh);
        lanes_32(lane, q, y[ib].qs);
        summs = fmaf(slm_f16(x[ib].m), slm_f16(y[ib].s), summs);
        slm_lanes_fma(acc, slm_f16(x[ib].d) * slm_f16(y[ib].d), lane);
    }
    *s = slm_hsum8(acc) + summs;
}

void slm_vec_dot_iq4_nl_q8_0_ref(int64_t n, float *restrict s, const void *restrict vw, const void *restrict va) {
    const slm_block_iq4_nl *x = vw;
    const slm_block_q8_0 *y = va;
    const int64_t nb = n / SLM_QK4_NL;
    float acc[2][8] = {{0}};
    int64_t ib = 0;
    for (; ib < nb; ib++) {
        int q[32];
        int32_t lane[8];
        nibbles_32(q, x[ib].qs);
        for (int v = 0; v < 32; v++) q[v] = kvalues_iq4nl[q[v]];
        lanes_32(lane, q, y[ib].qs);
        if (ib == nb - 1 && nb % 2) { /* the last block of an odd count: ggml's scalar tail */
            float v[8];
            for (int m = 0; m < 8; m++) v[m] = acc[0][m] + acc[1][m];
            int32_t sum = 0;
            for (int m = 0; m < 8; m++) sum += lane[m];
            *s = fmaf(slm_f16(y[ib].d) * slm_f16(x[ib].d), (float)sum, slm_hsum8(v));
            return;
        }
        slm_lanes_fma(acc[ib % 2], slm_f16(y[ib].d) * slm_f16(x[ib].d), lane);
    }
    float v[8];
    for (int m = 0; m < 8; m++) v[m] = acc[0][m] + acc[1][m];
    *s = slm_hsum8(v);
}

/* ============================================================================= AVX2 tiles */
#if SLM_X86_KERNELS

#define NR 4
#define NC 3

enum { K_Q4_0, K_Q4_1, K_Q5_0, K_Q5_1, K_Q8_0, K_IQ4_NL };

/* An unpacked weight block: its 32 integer values (signed types: also |x| for the sign trick),
 * scale and min. */
typedef struct wblock {
    __m256i q, aq;
    __m256 vd; /* d in every lane */
    float d, m;
} wblock;

SLM_DOT_INLINE __m256i nibbles_x32(const uint8_t *qs) {
    const __m128i t = _mm_loadu_si128((const __m128i *)(const void *)qs);
    const __m256i b = _mm256_insertf128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
    return _mm256_and_si256(b, _mm256_set1_epi8(0x0f));
}

/* ggml's bytes_from_bits_32: byte v = 0xff where bit v of the u32 at p is set. */
SLM_DOT_INLINE __m256i bits_x32(const uint8_t *p) {
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)slm_le_u32(p)), shuf);
    bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    return _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1));
}

SLM_DOT_INLINE wblock load_w(const int kind, const uint8_t *p) {
    wblock b;
    b.d = slm_f16_x86(slm_le_u16(p));
    b.m = 0;
    switch (kind) {
    case K_Q4_0:
        b.q = _mm256_sub_epi8(nibbles_x32(p + 2), _mm256_set1_epi8(8));
        break;
    case K_Q4_1:
        b.m = slm_f16_x86(slm_le_u16(p + 2));
        b.q = nibbles_x32(p + 4);
        break;
    case K_Q5_0: /* q - 16: the nibble with 0xf0 where the 5th bit is clear */
        b.q = _mm256_or_si256(nibbles_x32(p + 6), _mm256_andnot_si256(bits_x32(p + 2), _mm256_set1_epi8((char)0xf0)));
        break;
    case K_Q5_1:
        b.m = slm_f16_x86(slm_le_u16(p + 2));
        b.q = _mm256_or_si256(nibbles_x32(p + 8), _mm256_and_si256(bits_x32(p + 4), _mm256_set1_epi8(0x10)));
        break;
    case K_Q8_0:
        b.q = _mm256_loadu_si256((const __m256i *)(const void *)(p + 2));
        break;
    default: { /* K_IQ4_NL */
        const __m128i values = _mm_loadu_si128((const __m128i *)(const void *)kvalues_iq4nl);
        const __m128i t = _mm_loadu_si128((const __m128i *)(const void *)(p + 2)), m4 = _mm_set1_epi8(0x0f);
        b.q = _mm256_insertf128_si256(_mm256_castsi128_si256(_mm_shuffle_epi8(values, _mm_and_si128(t, m4))),
                                      _mm_shuffle_epi8(values, _mm_and_si128(_mm_srli_epi16(t, 4), m4)), 1);
    }
    }
    b.aq = _mm256_sign_epi8(b.q, b.q);
    b.vd = _mm256_set1_ps(b.d);
    return b;
}

/* Lanes of one weight block times one activation block. */
SLM_DOT_INLINE __m256 lanes_x8(const int kind, const wblock *w, __m256i y) {
    const __m256i l = kind == K_Q4_1 || kind == K_Q5_1 ? slm_mul_sum_us8_pairs(w->q, y) : slm_mul_sum_i8_pairs_ax(w->aq, w->q, y);
    return _mm256_cvtepi32_ps(l);
}

/* Bytes of a block of the weight type / of the activation type. */
static inline size_t w_block_bytes(int kind) {
    static const size_t k_bytes[] = {sizeof(slm_block_q4_0), sizeof(slm_block_q4_1), sizeof(slm_block_q5_0),
                                     sizeof(slm_block_q5_1), sizeof(slm_block_q8_0), sizeof(slm_block_iq4_nl)};
    return k_bytes[kind];
}
static inline int act_is_q8_1(int kind) { return kind == K_Q4_1 || kind == K_Q5_1; }

/* The chains of blocks b0, b0 + step, ... < b1 for an R x C tile: acc[r][c] and summs[r][c]. */
SLM_DOT_INLINE void legacy_chain(const int kind, const int R, const int C, int64_t b0, int64_t b1, int step,
                                 __m256 acc[SLM_TILE_MAX_R][SLM_TILE_MAX_C], float summs[SLM_TILE_MAX_R][SLM_TILE_MAX_C],
                                 const uint8_t *restrict w, size_t wb, const uint8_t *restrict a, size_t ab) {
    const size_t xb = w_block_bytes(kind), yb = act_is_q8_1(kind) ? sizeof(slm_block_q8_1) : sizeof(slm_block_q8_0);
    const size_t yq = act_is_q8_1(kind) ? 4 : 2; /* offset of the activation quants */
    for (int64_t ib = b0; ib < b1; ib += step) {
        wblock x[SLM_TILE_MAX_R];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            x[r] = load_w(kind, w + (size_t)r * wb + (size_t)ib * xb);
            if (C == 1) slm_prefetch_ahead(w + (size_t)r * wb + (size_t)ib * xb, 1); /* one token: weights stream */
        }
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) {
            const uint8_t *yp = a + (size_t)c * ab + (size_t)ib * yb;
            const float dy = slm_f16_x86(slm_le_u16(yp));
            const __m256i y = _mm256_loadu_si256((const __m256i *)(const void *)(yp + yq));
            const __m256 vdy = _mm256_set1_ps(dy);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                const __m256 d = _mm256_mul_ps(x[r].vd, vdy); /* ggml: x.d * y.d (IQ4_NL: y.d * x.d) */
                acc[r][c] = _mm256_fmadd_ps(d, lanes_x8(kind, &x[r], y), acc[r][c]);
                if (act_is_q8_1(kind)) summs[r][c] = fmaf(x[r].m, slm_f16_x86(slm_le_u16(yp + 2)), summs[r][c]);
            }
        }
    }
}

SLM_DOT_INLINE void legacy_micro(const int kind, const int R, const int C, int64_t n, float *restrict out, size_t ld,
                                 const uint8_t *restrict w, size_t wb, const uint8_t *restrict a, size_t ab) {
    const int64_t nb = n / 32;
    __m256 acc[SLM_TILE_MAX_R][SLM_TILE_MAX_C];
    float summs[SLM_TILE_MAX_R][SLM_TILE_MAX_C];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) acc[r][c] = _mm256_setzero_ps(), summs[r][c] = 0;
    if (kind != K_IQ4_NL) {
        legacy_chain(kind, R, C, 0, nb, 1, acc, summs, w, wb, a, ab);
        for (int r = 0; r < R; r++)
            for (int c = 0; c < C; c++)
                out[(size_t)c * ld + r] = act_is_q8_1(kind) ? slm_hsum8_x8(acc[r][c]) + summs[r][c] : slm_hsum8_x8(acc[r][c]);
        return;
    }
    /* IQ4_NL: the even chain, kept, then the odd chain; pairs of blocks only */
    const int64_t np = nb & ~(int64_t)1;
    __m256 even[SLM_TILE_MAX_R][SLM_TILE_MAX_C];
    legacy_chain(kind, R, C, 0, np, 2, acc, summs, w, wb, a, ab);
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) even[r][c] = acc[r][c], acc[r][c] = _mm256_setzero_ps();
    legacy_chain(kind, R, C, 1, np, 2, acc, summs, w, wb, a, ab);
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            float v = slm_hsum8_x8(_mm256_add_ps(even[r][c], acc[r][c]));
            if (nb % 2) { /* ggml's scalar tail: one block, its lanes summed in int */
                const wblock x = load_w(kind, w + (size_t)r * wb + (size_t)(nb - 1) * sizeof(slm_block_iq4_nl));
                const uint8_t *yp = a + (size_t)c * ab + (size_t)(nb - 1) * sizeof(slm_block_q8_0);
                const __m256i y = _mm256_loadu_si256((const __m256i *)(const void *)(yp + 2));
                const __m256i l = slm_mul_sum_i8_pairs_ax(x.aq, x.q, y);
                __m128i h = _mm_add_epi32(_mm256_castsi256_si128(l), _mm256_extracti128_si256(l, 1));
                h = _mm_add_epi32(h, _mm_unpackhi_epi64(h, h));
                h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 1));
                v = fmaf(slm_f16_x86(slm_le_u16(yp)) * x.d, (float)_mm_cvtsi128_si32(h), v);
            }
            out[(size_t)c * ld + r] = v;
        }
}

/* The four tile shapes of a type, each with constant bounds. */
SLM_DOT_INLINE void legacy_shapes(const int kind, int R, int C, int64_t n, float *restrict out, size_t ld,
                                  const uint8_t *restrict w, size_t wb, const uint8_t *restrict a, size_t ab) {
    if (R == NR && C == NC) legacy_micro(kind, NR, NC, n, out, ld, w, wb, a, ab);
    else if (R == NR) legacy_micro(kind, NR, 1, n, out, ld, w, wb, a, ab);
    else if (C == NC) legacy_micro(kind, 1, NC, n, out, ld, w, wb, a, ab);
    else legacy_micro(kind, 1, 1, n, out, ld, w, wb, a, ab);
}

static SLM_DOT_AVX2 void micro_q4_0(int R, int C, int64_t n, float *restrict out, size_t ld, const uint8_t *restrict w,
                                    size_t wb, const uint8_t *restrict a, size_t ab) {
    legacy_shapes(K_Q4_0, R, C, n, out, ld, w, wb, a, ab);
}
static SLM_DOT_AVX2 void micro_q4_1(int R, int C, int64_t n, float *restrict out, size_t ld, const uint8_t *restrict w,
                                    size_t wb, const uint8_t *restrict a, size_t ab) {
    legacy_shapes(K_Q4_1, R, C, n, out, ld, w, wb, a, ab);
}
static SLM_DOT_AVX2 void micro_q5_0(int R, int C, int64_t n, float *restrict out, size_t ld, const uint8_t *restrict w,
                                    size_t wb, const uint8_t *restrict a, size_t ab) {
    legacy_shapes(K_Q5_0, R, C, n, out, ld, w, wb, a, ab);
}
static SLM_DOT_AVX2 void micro_q5_1(int R, int C, int64_t n, float *restrict out, size_t ld, const uint8_t *restrict w,
                                    size_t wb, const uint8_t *restrict a, size_t ab) {
    legacy_shapes(K_Q5_1, R, C, n, out, ld, w, wb, a, ab);
}
static SLM_DOT_AVX2 void micro_q8_0(int R, int C, int64_t n, float *restrict out, size_t ld, const uint8_t *restrict w,
                                    size_t wb, const uint8_t *restrict a, size_t ab) {
    legacy_shapes(K_Q8_0, R, C, n, out, ld, w, wb, a, ab);
}
static SLM_DOT_AVX2 void micro_iq4_nl(int R, int C, int64_t n, float *restrict out, size_t ld, const uint8_t *restrict w,
                                    size_t wb, const uint8_t *restrict a, size_t ab) {
    legacy_shapes(K_IQ4_NL, R, C, n, out, ld, w, wb, a, ab);
}

static void tile_q4_0(int64_t n, int nr, int nc, float *restrict out, size_t ld_out, const void *restrict w,
                            size_t w_row_bytes, const void *restrict a, size_t a_row_bytes) {
    slm_tile_drive(NR, NC, micro_q4_0, n, nr, nc, out, ld_out, w, w_row_bytes, a, a_row_bytes);
}
const slm_dot_avx2 slm_dot_avx2_q4_0 = {tile_q4_0, NR, NC};
static void tile_q4_1(int64_t n, int nr, int nc, float *restrict out, size_t ld_out, const void *restrict w,
                            size_t w_row_bytes, const void *restrict a, size_t a_row_bytes) {
    slm_tile_drive(NR, NC, micro_q4_1, n, nr, nc, out, ld_out, w, w_row_bytes, a, a_row_bytes);
}
const slm_dot_avx2 slm_dot_avx2_q4_1 = {tile_q4_1, NR, NC};
static void tile_q5_0(int64_t n, int nr, int nc, float *restrict out, size_t ld_out, const void *restrict w,
                            size_t w_row_bytes, const void *restrict a, size_t a_row_bytes) {
    slm_tile_drive(NR, NC, micro_q5_0, n, nr, nc, out, ld_out, w, w_row_bytes, a, a_row_bytes);
}
const slm_dot_avx2 slm_dot_avx2_q5_0 = {tile_q5_0, NR, NC};
static void tile_q5_1(int64_t n, int nr, int nc, float *restrict out, size_t ld_out, const void *restrict w,
                            size_t w_row_bytes, const void *restrict a, size_t a_row_bytes) {
    slm_tile_drive(NR, NC, micro_q5_1, n, nr, nc, out, ld_out, w, w_row_bytes, a, a_row_bytes);
}
const slm_dot_avx2 slm_dot_avx2_q5_1 = {tile_q5_1, NR, NC};
static void tile_q8_0(int64_t n, int nr, int nc, float *restrict out, size_t ld_out, const void *restrict w,
                            size_t w_row_bytes, const void *restrict a, size_t a_row_bytes) {
    slm_tile_drive(NR, NC, micro_q8_0, n, nr, nc, out, ld_out, w, w_row_bytes, a, a_row_bytes);
}
const slm_dot_avx2 slm_dot_avx2_q8_0 = {tile_q8_0, NR, NC};
static void tile_iq4_nl(int64_t n, int nr, int nc, float *restrict out, size_t ld_out, const void *restrict w,
                              size_t w_row_bytes, const void *restrict a, size_t a_row_bytes) {
    slm_tile_drive(NR, NC, micro_iq4_nl, n, nr, nc, out, ld_out, w, w_row_bytes, a, a_row_bytes);
}
const slm_dot_avx2 slm_dot_avx2_iq4_nl = {tile_iq4_nl, NR, NC};

/* ------------------------------------------------- AVX-512: two pairs' chains per register */

/* Where AVX-512 runs (q_dot_impl.h): a zmm holds the 8-lane chains of the pairs (r, c) and
 * (r, c + 1): the weight block in both halves, the activation blocks of columns c and c + 1 side
 * by side, the scale products [d_r dy_c x8 | d_r dy_c+1 x8]; every lane is the 256-bit tile's
 * lane (the sign trick as a masked negation: vpsignb has no 512-bit form, and a zero weight
 * makes the product 0 either way). 4 x 4 tiles; IQ4_NL (its even and odd chains) keeps the
 * 256-bit tile. */
#define SLM_DOT_AVX512L __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw")))
#define ZINLINE static inline __attribute__((always_inline)) SLM_DOT_AVX512L
#define ZR 4
#define ZC 4

ZINLINE void zlegacy_micro(const int kind, const int R, const int C, int64_t n, float *restrict out, size_t ld,
                           const uint8_t *restrict w, size_t wb, const uint8_t *restrict a, size_t ab) {
    enum { CP = ZC / 2 };
    const size_t xb = w_block_bytes(kind), yb = act_is_q8_1(kind) ? sizeof(slm_block_q8_1) : sizeof(slm_block_q8_0);
    const size_t yq = act_is_q8_1(kind) ? 4 : 2;
    const int cp_n = C / 2;
    __m512 acc[SLM_TILE_MAX_R][CP];
    __m128 summs[SLM_TILE_MAX_R];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        for (int c = 0; c < CP; c++) acc[r][c] = _mm512_setzero_ps();
        summs[r] = _mm_setzero_ps();
    }
    const __m512i ones = _mm512_set1_epi16(1);
    for (int64_t ib = 0; ib < n / 32; ib++) {
        __m512i q[SLM_TILE_MAX_R], aq[SLM_TILE_MAX_R];
        __mmask64 neg[SLM_TILE_MAX_R];
        __m512 vd[SLM_TILE_MAX_R];
        float m[SLM_TILE_MAX_R];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const uint8_t *p = w + (size_t)r * wb + (size_t)ib * xb;
            if (kind == K_Q8_0) {
                q[r] = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(const void *)(p + 2)));
                vd[r] = _mm512_set1_ps(slm_f16_x86(slm_le_u16(p)));
                m[r] = 0;
            } else {
                const wblock x = load_w(kind, p);
                q[r] = _mm512_broadcast_i64x4(x.q);
                vd[r] = _mm512_set1_ps(x.d);
                m[r] = x.m;
            }
            if (!act_is_q8_1(kind)) {
                aq[r] = _mm512_abs_epi8(q[r]);
                neg[r] = _mm512_movepi8_mask(q[r]);
            }
        }
        float sv[ZC];
#pragma GCC unroll 2
        for (int c = 0; c < cp_n; c++) {
            const uint8_t *y0 = a + (size_t)(2 * c) * ab + (size_t)ib * yb, *y1 = y0 + ab;
            const __m512i y = _mm512_inserti64x4(
                _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(const void *)(y0 + yq))),
                _mm256_loadu_si256((const __m256i *)(const void *)(y1 + yq)), 1);
            const __m512 vdy = _mm512_mask_broadcastss_ps(_mm512_set1_ps(slm_f16_x86(slm_le_u16(y0))), (__mmask16)0xff00,
                                                          _mm_set_ss(slm_f16_x86(slm_le_u16(y1))));
            if (act_is_q8_1(kind)) {
                sv[2 * c] = slm_f16_x86(slm_le_u16(y0 + 2));
                sv[2 * c + 1] = slm_f16_x86(slm_le_u16(y1 + 2));
            }
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                __m512i p16;
                if (act_is_q8_1(kind)) p16 = _mm512_maddubs_epi16(q[r], y);
                else p16 = _mm512_maddubs_epi16(aq[r], _mm512_mask_sub_epi8(y, neg[r], _mm512_setzero_si512(), y));
                const __m512 l = _mm512_cvtepi32_ps(_mm512_madd_epi16(ones, p16));
                acc[r][c] = _mm512_fmadd_ps(_mm512_mul_ps(vd[r], vdy), l, acc[r][c]);
            }
        }
        if (act_is_q8_1(kind)) {
            const __m128 s4 = _mm_loadu_ps(sv);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) summs[r] = _mm_fmadd_ps(_mm_set1_ps(m[r]), s4, summs[r]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        float sm[4];
        _mm_storeu_ps(sm, summs[r]);
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) {
            const __m512 v = acc[r][c / 2];
            const __m256 h8 = c % 2 ? _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)) : _mm512_castps512_ps256(v);
            out[(size_t)c * ld + r] = act_is_q8_1(kind) ? slm_hsum8_x8(h8) + sm[c] : slm_hsum8_x8(h8);
        }
    }
}

#define ZLEGACY(t, KIND)                                                                                                 \
    static SLM_DOT_AVX512L void zmicro_##t(int R, int C, int64_t n, float *restrict out, size_t ld,                     \
                                           const uint8_t *restrict w, size_t wb, const uint8_t *restrict a, size_t ab) { \
        if (C == ZC && R == ZR) zlegacy_micro(KIND, ZR, ZC, n, out, ld, w, wb, a, ab);                                   \
        else if (C == ZC) zlegacy_micro(KIND, 1, ZC, n, out, ld, w, wb, a, ab);                                          \
        else if (R == ZR) legacy_micro(KIND, ZR, 1, n, out, ld, w, wb, a, ab);                                           \
        else legacy_micro(KIND, 1, 1, n, out, ld, w, wb, a, ab);                                                         \
    }                                                                                                                    \
    SLM_DOT_TILE_FN(ztile_##t, zmicro_##t, ZR, ZC) \
    const slm_dot_avx2 slm_dot_avx512_##t = {ztile_##t, ZR, ZC};
ZLEGACY(q4_0, K_Q4_0)
ZLEGACY(q4_1, K_Q4_1)
ZLEGACY(q5_0, K_Q5_0)
ZLEGACY(q5_1, K_Q5_1)
ZLEGACY(q8_0, K_Q8_0)

#endif /* SLM_X86_KERNELS */
