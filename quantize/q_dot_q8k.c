/* q_dot_q8k.c - the AVX2 tiles of every weight type multiplied with Q8_K activations: Q2_K Q3_K
 * Q4_K Q5_K Q6_K IQ4_XS IQ2_XXS IQ2_XS IQ2_S IQ3_XXS IQ3_S IQ1_S IQ1_M. The scalar references and
 * the orders they define are q_dot_kquants.c and q_dot_iq.c; these tiles give their bits.
 *
 * Owns: one decoder per type that unpacks a weight super-block into 8 chunks of 32 bytes (the
 * unsigned operand of _mm256_maddubs_epi16, a sign source for the activations where the weights
 * are signed, and the i16 sub-block scales for _mm256_madd_epi16), with ggml's instructions; the
 * micro-kernel that multiplies a decoded block with an activation super-block (ggml's lanes,
 * exact int32), and the per-type float steps of the file headers named above.
 * Must not: allocate, print, or reorder a float operation.
 *
 * Tile: 2 weight rows x 4 activation rows (AVX2), 4 x 4 (AVX-512, 32 registers). Each weight
 * chunk is unpacked into registers once per tile and reused by its activation rows; the int32
 * lane sums of every (row, column) pair stay in registers through a super-block, then one float
 * step per super-block for the whole tile (tile_step; pair_step for the kinds with extra terms).
 */
#include "core/dtype.h"
#include "core/slm.h"
#include "quantize/q_dot_impl.h"
#include "quantize/q_iq_common.h"

#if SLM_X86_KERNELS

enum { K_Q2_K, K_Q3_K, K_Q4_K, K_Q5_K, K_Q6_K, K_IQ4_XS, K_IQ2_XXS, K_IQ2_XS, K_IQ2_S, K_IQ3_XXS, K_IQ3_S, K_IQ1_S, K_IQ1_M };

static const int8_t kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/* Weights whose maddubs operand is |w| and whose sign goes onto the activations. */
static inline int is_signed(int kind) { return kind != K_Q2_K && kind != K_Q4_K && kind != K_Q5_K && kind != K_Q6_K; }

static inline size_t block_bytes(int kind) {
    static const size_t k_bytes[] = {sizeof(slm_block_q2_K),    sizeof(slm_block_q3_K),   sizeof(slm_block_q4_K),
                                     sizeof(slm_block_q5_K),    sizeof(slm_block_q6_K),   sizeof(slm_block_iq4_xs),
                                     sizeof(slm_block_iq2_xxs), sizeof(slm_block_iq2_xs), sizeof(slm_block_iq2_s),
                                     sizeof(slm_block_iq3_xxs), sizeof(slm_block_iq3_s),  sizeof(slm_block_iq1_s),
                                     sizeof(slm_block_iq1_m)};
    return k_bytes[kind];
}

/* What every chunk of one weight super-block needs, decoded once per (row, super-block). */
typedef struct khead {
    const uint8_t *p;  /* the block */
    float d, dmin;
    __m256i s0, s1;    /* scale sources: Q2_K/Q3_K the i16 scales 0-7 / 8-15 in both lanes; Q4_K/Q5_K the
                          8 i16 scales in both lanes (s0); Q6_K the 16 int8 scales (low lane of s0) */
    __m256i aux;       /* Q2_K: the 16 mins as i16; Q6_K: the 16 scales as i16 */
    __m256i hbits;     /* Q3_K: hmask; Q5_K: qh */
    __m128i mins;      /* Q4_K, Q5_K: the 8 mins as i16 */
    int32_t dsign[8];  /* IQ1_S: +-(2s + 1) per sub-block, the factor of its bsums in the delta term */
    uint16_t sc16[4];  /* IQ1_M: the packed scales */
    int32_t sc32[8];   /* Q4_K, Q5_K: scale k as two i16 (a dword to broadcast from memory) */
} khead;

/* Chunk k of a super-block: values 32k .. 32k+31. */
typedef struct kchunk {
    __m256i q;   /* maddubs' unsigned operand: the quants, |w| (signed kinds) or the grid bytes */
    __m256i sg;  /* signed kinds: sign source for the activations (w itself, or +-1 bytes) */
    __m256i sc;  /* i16 scale of each pair of values */
    __m256i dsg; /* IQ1_M: +-1 bytes, the sign of each value's delta */
} kchunk;

/* ggml's scale shuffles (get_scale_shuffle_q3k, _k4, get_scale_shuffle) as computed masks. */
SLM_DOT_INLINE __m256i shuffle_q3k(int i) { /* i16 2i in the low lane, 2i + 1 in the high lane */
    const __m128i lo = _mm_set1_epi16((short)(4 * i | (4 * i + 1) << 8));
    const __m128i hi = _mm_set1_epi16((short)((4 * i + 2) | (4 * i + 3) << 8));
    return _mm256_insertf128_si256(_mm256_castsi128_si256(lo), hi, 1);
}
SLM_DOT_INLINE __m256i shuffle_k4(int i) { return _mm256_set1_epi16((short)(2 * i | (2 * i + 1) << 8)); }
SLM_DOT_INLINE __m128i shuffle_q6(int i) { /* byte 2i eight times, then byte 2i + 1 eight times */
    return _mm_set_epi64x((long long)(0x0101010101010101ULL * (uint64_t)(2 * i + 1)),
                          (long long)(0x0101010101010101ULL * (uint64_t)(2 * i)));
}

/* +-1 bytes from 4 sign bytes: byte j of group t is -1 where bit j of byte t is set. */
SLM_DOT_INLINE __m256i signs_x32(uint32_t s4) {
    const __m256i mask1 = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    const __m256i mask2 = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    const __m256i v = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)s4), mask1), mask2);
    return _mm256_or_si256(_mm256_cmpeq_epi8(v, mask2), _mm256_set1_epi8(1));
}

/* 4 sign bytes from 4 7-bit indices into ksigns_iq2xs (bits 0-27 of ss). */
SLM_DOT_INLINE uint32_t ksigns4(uint32_t ss) {
    return slm_ksigns_iq2xs[ss & 127] | (uint32_t)slm_ksigns_iq2xs[(ss >> 7) & 127] << 8 |
           (uint32_t)slm_ksigns_iq2xs[(ss >> 14) & 127] << 16 | (uint32_t)slm_ksigns_iq2xs[(ss >> 21) & 127] << 24;
}

/* i16 scales: values 0..15 of the chunk get lo, 16..31 get hi. */
SLM_DOT_INLINE __m256i scale_pair(int lo, int hi) {
    return _mm256_insertf128_si256(_mm256_castsi128_si256(_mm_set1_epi16((short)lo)), _mm_set1_epi16((short)hi), 1);
}

/* set1_epi32(*p) as a broadcast load (a load-port uop; compilers otherwise keep the dwords in a
 * register and extract them with shuffles, the uops the maddubs need). */
SLM_DOT_INLINE __m256i bcast32_mem(const int32_t *p) {
    __m256i v;
    __asm__("vpbroadcastd %1, %0" : "=v"(v) : "m"(*p));
    return v;
}
SLM_DOT_INLINE __m256i load32(const uint8_t *p) { return _mm256_loadu_si256((const __m256i *)(const void *)p); }

SLM_DOT_INLINE kchunk signed_chunk(__m256i w, __m256i sc) {
    kchunk x;
    x.q = _mm256_sign_epi8(w, w);
    x.sg = w;
    x.sc = sc;
    x.dsg = w;
    return x;
}
SLM_DOT_INLINE kchunk grid_chunk(__m256i grid, __m256i signs, __m256i sc) {
    kchunk x;
    x.q = grid;
    x.sg = signs;
    x.sc = sc;
    x.dsg = signs;
    return x;
}
SLM_DOT_INLINE kchunk unsigned_chunk(__m256i q, __m256i sc) {
    kchunk x;
    x.q = q;
    x.sg = x.dsg = q;
    x.sc = sc;
    return x;
}

/* ------------------------------------------------------- k-quants and iq4_xs (ggml's unpacking) */

/* q4_K / q5_K: scales (low lane) and mins (high lane) of the packed 6-bit fields, as i16: ggml's
 * utmp unpacking (kmask1..3) byte for byte, in two shuffles of the 12 bytes. packed + 16 is still
 * inside the block (the quants follow). Bytes out: sc0-3 = p0-3 & 63, sc4-7 = (p8-11 & 15) |
 * (p0-3 >> 6) << 4, m0-3 = p4-7 & 63, m4-7 = (p8-11 >> 4) | (p4-7 >> 6) << 4. */
SLM_DOT_INLINE __m256i scales_mins_k4(const uint8_t *packed) {
    const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)packed);
    const __m128i a = _mm_shuffle_epi8(v, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
    const __m128i b = _mm_shuffle_epi8(v, _mm_setr_epi8(0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 6, 7, 4, 5, 6, 7));
    const __m128i lo = _mm_and_si128(a, _mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0));
    const __m128i a4 = _mm_and_si128(_mm_srli_epi16(a, 4), _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 15, 15, 15));
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 2),
                                     _mm_setr_epi8(0, 0, 0, 0, 48, 48, 48, 48, 0, 0, 0, 0, 48, 48, 48, 48));
    return _mm256_cvtepu8_epi16(_mm_or_si128(_mm_or_si128(lo, a4), hi));
}

SLM_DOT_INLINE void head_k(const int kind, khead *h, const uint8_t *p) {
    h->p = p;
    switch (kind) {
    case K_Q2_K: {
        const __m128i m4 = _mm_set1_epi8(0xf), mas = _mm_loadu_si128((const __m128i *)(const void *)p);
        h->d = slm_f16_x86(slm_le_u16(p + 80));
        h->dmin = slm_f16_x86(slm_le_u16(p + 82));
        h->aux = _mm256_cvtepi8_epi16(_mm_and_si128(_mm_srli_epi16(mas, 4), m4));
        const __m256i all = _mm256_cvtepi8_epi16(_mm_and_si128(mas, m4));
        const __m128i l = _mm256_castsi256_si128(all), hi = _mm256_extracti128_si256(all, 1);
        h->s0 = _mm256_set_m128i(l, l);
        h->s1 = _mm256_set_m128i(hi, hi);
        break;
    }
    case K_Q3_K: {
        const uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
        h->d = slm_f16_x86(slm_le_u16(p + 108));
        uint32_t aux[3];
        memcpy(aux, p + 96, 12);
        __m128i s128 = _mm_set_epi32((int)(((aux[1] >> 4) & kmask2) | (((aux[2] >> 6) & kmask1) << 4)),
                                     (int)(((aux[0] >> 4) & kmask2) | (((aux[2] >> 4) & kmask1) << 4)),
                                     (int)((aux[1] & kmask2) | (((aux[2] >> 2) & kmask1) << 4)),
                                     (int)((aux[0] & kmask2) | (((aux[2] >> 0) & kmask1) << 4)));
        s128 = _mm_sub_epi8(s128, _mm_set1_epi8(32));
        const __m256i all = _mm256_cvtepi8_epi16(s128);
        const __m128i l = _mm256_castsi256_si128(all), hi = _mm256_extracti128_si256(all, 1);
        h->s0 = _mm256_set_m128i(l, l);
        h->s1 = _mm256_set_m128i(hi, hi);
        h->hbits = load32(p);
        break;
    }
    case K_Q4_K:
    case K_Q5_K: {
        h->d = slm_f16_x86(slm_le_u16(p));
        h->dmin = slm_f16_x86(slm_le_u16(p + 2));
        const __m256i mas = scales_mins_k4(p + 4);
        h->mins = _mm256_extracti128_si256(mas, 1);
        const __m128i sc = _mm256_castsi256_si128(mas);
        _mm_storeu_si128((__m128i *)(void *)h->sc32, _mm_unpacklo_epi16(sc, sc));
        _mm_storeu_si128((__m128i *)(void *)(h->sc32 + 4), _mm_unpackhi_epi16(sc, sc));
        if (kind == K_Q5_K) h->hbits = load32(p + 16);
        break;
    }
    case K_Q6_K: {
        h->d = slm_f16_x86(slm_le_u16(p + 208));
        const __m128i scales = _mm_loadu_si128((const __m128i *)(const void *)(p + 192));
        h->s0 = _mm256_castsi128_si256(scales);
        h->aux = _mm256_cvtepi8_epi16(scales);
        break;
    }
    default: /* K_IQ4_XS */
        h->d = slm_f16_x86(slm_le_u16(p));
    }
}

SLM_DOT_INLINE kchunk chunk_k(const int kind, const khead *h, const int k) {
    const uint8_t *p = h->p;
    switch (kind) {
    case K_Q2_K: {
        const int j = k / 4, s = k % 4;
        const __m256i bits = load32(p + 16 + 32 * j);
        return unsigned_chunk(_mm256_and_si256(_mm256_srli_epi16(bits, 2 * s), _mm256_set1_epi8(3)),
                              _mm256_shuffle_epi8(j ? h->s1 : h->s0, shuffle_q3k(s)));
    }
    case K_Q3_K: {
        const int j = k / 4, s = k % 4, bit = k;
        const __m256i bits = load32(p + 32 + 32 * j);
        const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * s), _mm256_set1_epi8(3));
        const __m256i hi = _mm256_slli_epi16(
            _mm256_srli_epi16(_mm256_andnot_si256(h->hbits, _mm256_slli_epi16(_mm256_set1_epi8(1), bit)), bit), 2);
        return signed_chunk(_mm256_sub_epi8(lo, hi), _mm256_shuffle_epi8(j ? h->s1 : h->s0, shuffle_q3k(s)));
    }
    case K_Q4_K: {
        const __m256i bits = load32(p + 16 + 32 * (k / 2)), m4 = _mm256_set1_epi8(0xf);
        const __m256i q = k % 2 ? _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4) : _mm256_and_si256(bits, m4);
        return unsigned_chunk(q, bcast32_mem(&h->sc32[k]));
    }
    case K_Q5_K: {
        const __m256i bits = load32(p + 48 + 32 * (k / 2)), m4 = _mm256_set1_epi8(0xf);
        const __m256i lo = k % 2 ? _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4) : _mm256_and_si256(bits, m4);
        const __m256i hi = _mm256_slli_epi16(
            _mm256_srli_epi16(_mm256_and_si256(h->hbits, _mm256_slli_epi16(_mm256_set1_epi8(1), k)), k), 4);
        return unsigned_chunk(_mm256_add_epi8(lo, hi), bcast32_mem(&h->sc32[k]));
    }
    case K_Q6_K: {
        const int j = k / 4, s = k % 4;
        const __m256i m15 = _mm256_set1_epi8(15);
        const __m256i b = load32(p + 64 * j + 32 * (s % 2)), bh = load32(p + 128 + 32 * j);
        const __m256i lo = s < 2 ? _mm256_and_si256(b, m15) : _mm256_and_si256(_mm256_srli_epi16(b, 4), m15);
        __m256i hi;
        if (s == 0) hi = _mm256_slli_epi16(_mm256_and_si256(bh, _mm256_set1_epi8(3)), 4);
        else if (s == 1) hi = _mm256_slli_epi16(_mm256_and_si256(bh, _mm256_set1_epi8(12)), 2);
        else if (s == 2) hi = _mm256_and_si256(bh, _mm256_set1_epi8(48));
        else hi = _mm256_srli_epi16(_mm256_and_si256(bh, _mm256_set1_epi8(-64)), 2);
        return unsigned_chunk(_mm256_or_si256(lo, hi),
                              _mm256_cvtepi8_epi16(_mm_shuffle_epi8(_mm256_castsi256_si128(h->s0), shuffle_q6(k))));
    }
    default: { /* K_IQ4_XS */
        const __m128i values = _mm_loadu_si128((const __m128i *)(const void *)kvalues_iq4nl), m4 = _mm_set1_epi8(0xf);
        const __m128i bits = _mm_loadu_si128((const __m128i *)(const void *)(p + 8 + 16 * k));
        const __m256i w = _mm256_set_m128i(_mm_shuffle_epi8(values, _mm_and_si128(_mm_srli_epi16(bits, 4), m4)),
                                           _mm_shuffle_epi8(values, _mm_and_si128(bits, m4)));
        const unsigned sh = slm_le_u16(p + 2);
        const int ls = (((p[4 + k / 2] >> 4 * (k % 2)) & 0xf) | (((sh >> 2 * k) & 3) << 4)) - 32;
        return signed_chunk(w, _mm256_set1_epi16((short)ls));
    }
    }
}

/* ----------------------------------------------------------------- lattice quants (iq2, iq3, iq1) */

SLM_DOT_INLINE void head_iq(const int kind, khead *h, const uint8_t *p) {
    h->p = p;
    if (kind == K_IQ1_M) {
        #pragma GCC unroll 8
        for (int j = 0; j < 4; j++) h->sc16[j] = slm_le_u16(p + 48 + 2 * j);
        const uint16_t *sc = h->sc16;
        h->d = slm_f16_x86((uint16_t)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000)));
        return;
    }
    h->d = slm_f16_x86(slm_le_u16(p));
    if (kind == K_IQ1_S)
        #pragma GCC unroll 8
        for (int k = 0; k < 8; k++) {
            const unsigned qh = slm_le_u16(p + 34 + 2 * k);
            const int ls = 2 * ((qh >> 12) & 7) + 1;
            h->dsign[k] = qh & 0x8000 ? -ls : ls;
        }
}

SLM_DOT_INLINE kchunk chunk_iq(const int kind, const khead *h, const int k) {
    const uint8_t *p = h->p;
    switch (kind) {
    case K_IQ2_XXS: {
        const uint32_t g = slm_le_u32(p + 2 + 8 * k), ss = slm_le_u32(p + 6 + 8 * k);
        return grid_chunk(_mm256_set_epi64x((long long)slm_iq2xxs_grid[g >> 24], (long long)slm_iq2xxs_grid[(g >> 16) & 255],
                                            (long long)slm_iq2xxs_grid[(g >> 8) & 255], (long long)slm_iq2xxs_grid[g & 255]),
                          signs_x32(ksigns4(ss)), _mm256_set1_epi16((short)(2 * (ss >> 28) + 1)));
    }
    case K_IQ2_XS: {
        uint16_t v[4];
        #pragma GCC unroll 8
        for (int t = 0; t < 4; t++) v[t] = slm_le_u16(p + 2 + 8 * k + 2 * t);
        const uint8_t s = p[66 + k];
        return grid_chunk(_mm256_set_epi64x((long long)slm_iq2xs_grid[v[3] & 511], (long long)slm_iq2xs_grid[v[2] & 511],
                                            (long long)slm_iq2xs_grid[v[1] & 511], (long long)slm_iq2xs_grid[v[0] & 511]),
                          signs_x32(slm_ksigns_iq2xs[v[0] >> 9] | (uint32_t)slm_ksigns_iq2xs[v[1] >> 9] << 8 |
                                    (uint32_t)slm_ksigns_iq2xs[v[2] >> 9] << 16 | (uint32_t)slm_ksigns_iq2xs[v[3] >> 9] << 24),
                          scale_pair(2 * (s & 15) + 1, 2 * (s >> 4) + 1));
    }
    case K_IQ2_S: {
        const uint8_t *qs = p + 2, qh = p[66 + k], s = p[74 + k];
        int idx[4];
        #pragma GCC unroll 8
        for (int t = 0; t < 4; t++) idx[t] = qs[4 * k + t] | ((qh >> 2 * t) & 3) << 8;
        return grid_chunk(_mm256_set_epi64x((long long)slm_iq2s_grid[idx[3]], (long long)slm_iq2s_grid[idx[2]],
                                            (long long)slm_iq2s_grid[idx[1]], (long long)slm_iq2s_grid[idx[0]]),
                          signs_x32(slm_le_u32(qs + 32 + 4 * k)), scale_pair(2 * (s & 15) + 1, 2 * (s >> 4) + 1));
    }
    case K_IQ3_XXS: {
        const uint8_t *g = p + 2 + 8 * k;
        const uint32_t ss = slm_le_u32(p + 2 + 64 + 4 * k);
        return grid_chunk(_mm256_set_epi32((int)slm_iq3xxs_grid[g[7]], (int)slm_iq3xxs_grid[g[6]], (int)slm_iq3xxs_grid[g[5]],
                                           (int)slm_iq3xxs_grid[g[4]], (int)slm_iq3xxs_grid[g[3]], (int)slm_iq3xxs_grid[g[2]],
                                           (int)slm_iq3xxs_grid[g[1]], (int)slm_iq3xxs_grid[g[0]]),
                          signs_x32(ksigns4(ss)), _mm256_set1_epi16((short)(2 * (ss >> 28) + 1)));
    }
    case K_IQ3_S: {
        const uint8_t *qs = p + 2 + 8 * k;
        const int qh = p[66 + k];
        uint32_t g[8];
        #pragma GCC unroll 8
        for (int t = 0; t < 8; t++) g[t] = slm_iq3s_grid[qs[t] | ((qh << (8 - t)) & 256)];
        return grid_chunk(_mm256_set_epi32((int)g[7], (int)g[6], (int)g[5], (int)g[4], (int)g[3], (int)g[2], (int)g[1], (int)g[0]),
                          signs_x32(slm_le_u32(p + 74 + 4 * k)),
                          _mm256_set1_epi16((short)(2 * ((p[106 + k / 2] >> 4 * (k % 2)) & 15) + 1)));
    }
    case K_IQ1_S: {
        const uint8_t *qs = p + 2 + 4 * k;
        const unsigned qh = slm_le_u16(p + 34 + 2 * k);
        uint64_t g[4];
        #pragma GCC unroll 8
        for (int t = 0; t < 4; t++) g[t] = slm_iq1s_grid[qs[t] | ((qh >> 3 * t) & 7) << 8];
        return signed_chunk(_mm256_set_epi64x((long long)g[3], (long long)g[2], (long long)g[1], (long long)g[0]),
                            _mm256_set1_epi16((short)(2 * ((qh >> 12) & 7) + 1)));
    }
    default: { /* K_IQ1_M */
        const uint8_t *qs = p + 4 * k, *qh = p + 32 + 2 * k;
        uint64_t g[4], ds[4];
        #pragma GCC unroll 8
        for (int t = 0; t < 4; t++) {
            const unsigned hb = qh[t / 2] >> 4 * (t % 2);
            g[t] = slm_iq1s_grid[qs[t] | (hb & 7) << 8];
            ds[t] = hb & 8 ? 0xffffffffffffffffULL : 0x0101010101010101ULL;
        }
        const int s = h->sc16[k / 2] >> 6 * (k % 2);
        kchunk x = signed_chunk(_mm256_set_epi64x((long long)g[3], (long long)g[2], (long long)g[1], (long long)g[0]),
                                scale_pair(2 * (s & 7) + 1, 2 * ((s >> 3) & 7) + 1));
        x.dsg = _mm256_set_epi64x((long long)ds[3], (long long)ds[2], (long long)ds[1], (long long)ds[0]);
        return x;
    }
    }
}

static inline int is_iq(int kind) { return kind >= K_IQ2_XXS; }

/* ------------------------------------------------------------------------------ the tile */

/* The float state of one (weight row, activation row) pair. */
typedef struct pair_acc {
    __m256 acc, acc2; /* acc2: IQ1_M's delta lanes */
    __m128 acc_m;     /* Q4_K's mins */
    float summs;      /* Q5_K's mins, IQ1_S's delta chain */
} pair_acc;

/* One super-block of one pair after its int32 lanes (sumi; sumi2: IQ1_M's delta lanes): the
 * float steps of q_dot_kquants.c / q_dot_iq.c. ya is the activation block (d, qs, bsums). */
/* Q4_K / Q5_K: the activation block's 16 bsums added in pairs (one per 32 values), per column. */
SLM_DOT_INLINE __m128i q8_pair_sums(const int kind, const uint8_t *ya) {
    if (kind != K_Q4_K && kind != K_Q5_K) return _mm_setzero_si128();
    const __m256i b = load32(ya + 4 + SLM_QK_K);
    return _mm_hadd_epi16(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
}

SLM_DOT_INLINE void pair_step(const int kind, pair_acc *s, const khead *x, const uint8_t *ya, __m128i q8s, __m256i sumi,
                              __m256i sumi2) {
    const float yd = slm_le_f32(ya);
    const uint8_t *bs = ya + 4 + SLM_QK_K;
    switch (kind) {
    case K_Q2_K: {
        const __m256i prod = _mm256_madd_epi16(x->aux, load32(bs));
        s->acc = _mm256_fmadd_ps(_mm256_set1_ps(-yd * x->dmin), _mm256_cvtepi32_ps(prod), s->acc);
        s->acc = _mm256_fmadd_ps(_mm256_set1_ps(yd * x->d), _mm256_cvtepi32_ps(sumi), s->acc);
        break;
    }
    case K_Q4_K:
    case K_Q5_K: {
        const __m128i prod = _mm_madd_epi16(x->mins, q8s);
        const float dmin = -yd * x->dmin;
        if (kind == K_Q4_K) {
            s->acc_m = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(prod), s->acc_m);
        } else {
            const __m128i h = _mm_hadd_epi32(_mm_hadd_epi32(prod, _mm_setzero_si128()), _mm_setzero_si128());
            s->summs = fmaf(dmin, (float)_mm_cvtsi128_si32(h), s->summs);
        }
        s->acc = _mm256_fmadd_ps(_mm256_set1_ps(yd * x->d), _mm256_cvtepi32_ps(sumi), s->acc);
        break;
    }
    case K_Q6_K:
        sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(_mm256_madd_epi16(load32(bs), x->aux), 5));
        s->acc = _mm256_fmadd_ps(_mm256_set1_ps(yd * x->d), _mm256_cvtepi32_ps(sumi), s->acc);
        break;
    case K_IQ1_S: {
        const float d = yd * x->d;
        int32_t delta = 0;
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++)
            delta += ((int16_t)slm_le_u16(bs + 4 * k) + (int16_t)slm_le_u16(bs + 4 * k + 2)) * x->dsign[k];
        s->acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), s->acc);
        s->summs = fmaf(d, (float)delta, s->summs);
        break;
    }
    case K_IQ1_M: {
        const __m256 d = _mm256_set1_ps(yd * x->d);
        s->acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), s->acc);
        s->acc2 = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi2), s->acc2);
        break;
    }
    default: /* Q3_K: a.d * w.d; IQ4_XS, IQ2_*, IQ3_*: w.d * a.d (the same product) */
        s->acc = _mm256_fmadd_ps(_mm256_set1_ps(yd * x->d), _mm256_cvtepi32_ps(sumi), s->acc);
    }
}

SLM_DOT_INLINE float pair_result(const int kind, const pair_acc *s) {
    const float h = slm_hsum8_x8(s->acc);
    switch (kind) {
    case K_Q4_K: {
        __m128 m = _mm_add_ps(s->acc_m, _mm_movehl_ps(s->acc_m, s->acc_m));
        m = _mm_add_ss(m, _mm_movehdup_ps(m));
        return h + _mm_cvtss_f32(m);
    }
    case K_Q5_K: return h + s->summs;
    case K_IQ2_XXS:
    case K_IQ2_XS:
    case K_IQ2_S: return 0.125f * h;
    case K_IQ3_XXS: return 0.25f * h;
    case K_IQ1_S: {
        const float delta = SLM_IQ1S_DELTA * s->summs; /* rounded first, as ggml's build */
        return h + delta;
    }
    case K_IQ1_M: return fmaf(slm_hsum8_x8(s->acc2), SLM_IQ1S_DELTA, h);
    default: return h;
    }
}

/* Kinds whose float step is acc = fma(yd * d, lanes, acc) alone (Q6_K after its lane fix-up, Q4_K
 * plus its mins): tile_step does their super-block step for the whole tile. */
static inline int plain_step(int kind) {
    return kind == K_Q3_K || kind == K_Q4_K || kind == K_Q6_K || kind == K_IQ4_XS || kind == K_IQ2_XXS ||
           kind == K_IQ2_XS || kind == K_IQ2_S || kind == K_IQ3_XXS || kind == K_IQ3_S;
}

/* pair_step for a whole R x C tile of a plain_step kind, with the same floats: the scale product
 * yd * d is a vector multiply of the column's and the row's broadcasts (the same IEEE product
 * as the scalar one, broadcast), and Q4_K's mins run two columns per register (C even):
 * [-yd0 x4 | -yd1 x4] * dmin, madd(mins, [q8s0 | q8s1]), lane for lane the 128-bit steps of
 * pair_step ((-yd) * dmin equals -(yd * dmin)). */
SLM_DOT_INLINE void tile_step(const int kind, const int R, const int C, pair_acc s[SLM_TILE_MAX_R][SLM_TILE_MAX_C],
                              __m256 acc_m2[SLM_TILE_MAX_R][SLM_TILE_MAX_C / 2], const khead *h,
                              const uint8_t *const *ya, __m256i sumi[SLM_TILE_MAX_R][SLM_TILE_MAX_C]) {
    __m256 dv[SLM_TILE_MAX_R], yv[SLM_TILE_MAX_C];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) dv[r] = _mm256_set1_ps(h[r].d);
#pragma GCC unroll 4
    for (int c = 0; c < C; c++) yv[c] = _mm256_set1_ps(slm_le_f32(ya[c]));
    if (kind == K_Q6_K)
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) {
            const __m256i bs = load32(ya[c] + 4 + SLM_QK_K);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++)
                sumi[r][c] = _mm256_sub_epi32(sumi[r][c], _mm256_slli_epi32(_mm256_madd_epi16(bs, h[r].aux), 5));
        }
#pragma GCC unroll 4
    for (int c = 0; c < C; c++)
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
            s[r][c].acc = _mm256_fmadd_ps(_mm256_mul_ps(yv[c], dv[r]), _mm256_cvtepi32_ps(sumi[r][c]), s[r][c].acc);
    if (kind != K_Q4_K) return;
    if (C % 2) {
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) {
            const __m128i q8s = q8_pair_sums(kind, ya[c]);
            const float yd = slm_le_f32(ya[c]);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                const __m128i prod = _mm_madd_epi16(h[r].mins, q8s);
                s[r][c].acc_m = _mm_fmadd_ps(_mm_set1_ps(-yd * h[r].dmin), _mm_cvtepi32_ps(prod), s[r][c].acc_m);
            }
        }
        return;
    }
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256i q8s2[SLM_TILE_MAX_C / 2];
    __m256 yn2[SLM_TILE_MAX_C / 2];
#pragma GCC unroll 4
    for (int c = 0; c < C / 2; c++) {
        const __m256i b0 = load32(ya[2 * c] + 4 + SLM_QK_K), b1 = load32(ya[2 * c + 1] + 4 + SLM_QK_K);
        q8s2[c] = _mm256_hadd_epi16(_mm256_permute2x128_si256(b0, b1, 0x20), _mm256_permute2x128_si256(b0, b1, 0x31));
        yn2[c] = _mm256_xor_ps(_mm256_blend_ps(yv[2 * c], yv[2 * c + 1], 0xf0), sign);
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        const __m256i mins2 = _mm256_set_m128i(h[r].mins, h[r].mins);
        const __m256 dm = _mm256_set1_ps(h[r].dmin);
#pragma GCC unroll 4
        for (int c = 0; c < C / 2; c++)
            acc_m2[r][c] = _mm256_fmadd_ps(_mm256_mul_ps(yn2[c], dm), _mm256_cvtepi32_ps(_mm256_madd_epi16(mins2, q8s2[c])),
                                           acc_m2[r][c]);
    }
}

/* An R x C tile: per super-block, chunk by chunk, each weight row's chunk is unpacked into
 * registers once and multiplied with the C activation rows' chunk (loaded once for the R rows);
 * the R x C int32 lane sums stay in registers, the float state goes through the stack once per
 * super-block. */
/* sumi += madd(sc, p): vpdpwssd on the AVX-512 VNNI path (EVEX; the same wrapping int32 sums). */
#define DPWSSD(acc, sc, p) __asm__("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(sc), "v"(p))

SLM_DOT_INLINE void q8k_micro(const int kind, const int R, const int C, const int vnni, int64_t n, float *restrict out,
                              size_t ld, const uint8_t *restrict w, size_t wb, const uint8_t *restrict a, size_t ab) {
    const size_t xb = block_bytes(kind);
    pair_acc s[SLM_TILE_MAX_R][SLM_TILE_MAX_C];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            s[r][c].acc = s[r][c].acc2 = _mm256_setzero_ps();
            s[r][c].acc_m = _mm_setzero_ps();
            s[r][c].summs = 0;
        }
    __m256 acc_m2[SLM_TILE_MAX_R][SLM_TILE_MAX_C / 2]; /* Q4_K's mins, two columns per register (C even) */
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C / 2; c++) acc_m2[r][c] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / SLM_QK_K; i++) {
        khead h[SLM_TILE_MAX_R];
        const uint8_t *ya[SLM_TILE_MAX_C];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const uint8_t *p = w + (size_t)r * wb + (size_t)i * xb;
            if (is_iq(kind)) head_iq(kind, &h[r], p);
            else head_k(kind, &h[r], p);
        }
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) ya[c] = a + (size_t)c * ab + (size_t)i * sizeof(slm_block_q8_K);
        __m256i sumi[SLM_TILE_MAX_R][SLM_TILE_MAX_C], sumi2[SLM_TILE_MAX_R][SLM_TILE_MAX_C];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
#pragma GCC unroll 4
            for (int c = 0; c < C; c++) sumi[r][c] = sumi2[r][c] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) {
            kchunk x[SLM_TILE_MAX_R];
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) x[r] = is_iq(kind) ? chunk_iq(kind, &h[r], k) : chunk_k(kind, &h[r], k);
#pragma GCC unroll 4
            for (int c = 0; c < C; c++) {
                const __m256i y = load32(ya[c] + 4 + 32 * k);
#pragma GCC unroll 4
                for (int r = 0; r < R; r++) {
                    const __m256i ys = is_signed(kind) ? _mm256_sign_epi8(y, x[r].sg) : y;
                    const __m256i p16 = _mm256_maddubs_epi16(x[r].q, ys);
                    if (vnni) { /* the asm statement pins the sum already */
                        DPWSSD(sumi[r][c], x[r].sc, p16);
                    } else {
                        sumi[r][c] = _mm256_add_epi32(sumi[r][c], _mm256_madd_epi16(x[r].sc, p16));
                        SLM_KEEP_IN_REGISTER(sumi[r][c]);
                    }
                    if (kind == K_IQ1_M) {
                        const __m256i d = _mm256_maddubs_epi16(_mm256_set1_epi8(1), _mm256_sign_epi8(y, x[r].dsg));
                        sumi2[r][c] = _mm256_add_epi32(sumi2[r][c], _mm256_madd_epi16(x[r].sc, d));
                    }
                }
            }
        }
        if (plain_step(kind)) {
            tile_step(kind, R, C, s, acc_m2, h, ya, sumi);
            continue;
        }
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) {
            const __m128i q8s = q8_pair_sums(kind, ya[c]);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) pair_step(kind, &s[r][c], &h[r], ya[c], q8s, sumi[r][c], sumi2[r][c]);
        }
    }
    if (kind == K_Q4_K && C % 2 == 0)
        for (int r = 0; r < R; r++)
            for (int c = 0; c < C; c++)
                s[r][c].acc_m = c % 2 ? _mm256_extractf128_ps(acc_m2[r][c / 2], 1) : _mm256_castps256_ps128(acc_m2[r][c / 2]);
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) out[(size_t)c * ld + r] = pair_result(kind, &s[r][c]);
}

/* The tile of each kind: R weight rows x C activation rows, sized so that the R x C lane sums,
 * the R unpacked chunks (2 or 3 registers each) and one activation chunk fit in 16 registers. */
#define TILE_R 2
#define TILE_C 4
#define TILE_R_IQ1_M 1 /* its delta lanes double the lane sums */
#define TILE_C_IQ1_M 3
static inline int tile_rows(int kind) { return kind == K_IQ1_M ? TILE_R_IQ1_M : TILE_R; }
static inline int tile_cols(int kind) { return kind == K_IQ1_M ? TILE_C_IQ1_M : TILE_C; }

/* The four tile shapes of a type, each with constant bounds. */
SLM_DOT_INLINE void q8k_shapes_of(const int kind, const int NR, const int NC, const int vnni, int R, int C, int64_t n,
                                  float *restrict out, size_t ld, const uint8_t *restrict w, size_t wb,
                                  const uint8_t *restrict a, size_t ab) {
    if (R == NR && C == NC) q8k_micro(kind, NR, NC, vnni, n, out, ld, w, wb, a, ab);
    else if (R == NR) q8k_micro(kind, NR, 1, vnni, n, out, ld, w, wb, a, ab);
    else if (C == NC) q8k_micro(kind, 1, NC, vnni, n, out, ld, w, wb, a, ab);
    else q8k_micro(kind, 1, 1, vnni, n, out, ld, w, wb, a, ab);
}
SLM_DOT_INLINE void q8k_shapes(const int kind, int R, int C, int64_t n, float *restrict out, size_t ld,
                               const uint8_t *restrict w, size_t wb, const uint8_t *restrict a, size_t ab) {
    q8k_shapes_of(kind, tile_rows(kind), tile_cols(kind), 0, R, C, n, out, ld, w, wb, a, ab);
}

static SLM_DOT_AVX2 void micro_q2_K(int R, int C, int64_t n, float *restrict out, size_t ld, const uint8_t *restrict w,
                                    size_t wb, const uint8_t *restrict a, size_t ab) {
    q8k_shapes(K_Q2_K, R, C, n, out, ld, w, wb, a, ab);
}
static void tile_q2_K(int64_t n, int nr, int nc, float *restrict out, size_t ld_out, const void *restrict w,
                           size_t w_row_bytes, const void *restrict a, size_t a_row_bytes) {
    slm_tile_drive(tile_rows(K_Q2_K), tile_cols(K_Q2_K), micro_q2_K, n, nr, nc, out, ld_out, w, w_row_bytes, a, a_row_bytes);
}
const slm_dot_avx2 slm_dot_avx2_q2_K = {tile_q2_K, TILE_R, TILE_C};

static SLM_DOT_AVX2 void micro_q3_K(int R, int C, int64_t n, float *restrict out, size_t ld, const uint8_t *restrict w,
                                    size_t wb, const uint8_t *restrict a, size_t ab) {
    q8k_shapes(K_Q3_K, R, C, n, out, ld, w, wb, a, ab);
}
static void tile_q3_K(int64_t n, int nr, int nc, float *restrict out, size_t ld_out, const void *restrict w,
                           size_t w_row_bytes, const void *restrict a, size_t a_row_bytes) {
    slm_tile_drive(tile_rows(K_Q3_K), tile_cols(K_Q3_K), micro_q3_K, n, nr, nc, out, ld_out, w, w_row_bytes, a, a_row_bytes);
}
const slm_dot_avx2 slm_dot_avx2_q3_K = {tile_q3_K, TILE_R, TILE_C};

static SLM_DOT_AVX2 void micro_q4_K(int R, int C, int64_t n, float *restrict out, size_t ld, const uint8_t *restrict w,
                                    size_t wb, const uint8_t *restrict a, size_t ab) {
    q8k_shapes(K_Q4_K, R, C, n, out, ld, w, wb, a, ab);
}
static void tile_q4_K(int64_t n, int nr, int nc, float *restrict out, size_t ld_out, const void *restrict w,
                           size_t w_row_bytes, const void *restrict a, size_t a_row_bytes) {
    slm_tile_drive(tile_rows(K_Q4_K), tile_cols(K_Q4_K), micro_q4_K, n, nr, nc, out, ld_out, w, w_row_bytes, a, a_row_bytes);
}
const slm_dot_avx2 slm_dot_avx2_q4_K = {tile_q4_K, TILE_R, TILE_C};

static SLM_DOT_AVX2 void micro_q5_K(int R, int C, int64_t n, float *restrict out, size_t ld, const uint8_t *restrict w,
                                    size_t wb, const uint8_t *restrict a, size_t ab) {
    q8k_shapes(K_Q5_K, R, C, n, out, ld, w, wb, a, ab);
}
static void tile_q5_K(int64_t n, int nr, int nc, float *restrict out, size_t ld_out, const void *restrict w,
                           size_t w_row_bytes, const void *restrict a, size_t a_row_bytes) {
    slm_tile_drive(tile_rows(K_Q5_K), tile_cols(K_Q5_K), micro_q5_K, n, nr, nc, out, ld_out, w, w_row_bytes, a, a_row_bytes);
}
const slm_dot_avx2 slm_dot_avx2_q5_K = {tile_q5_K, TILE_R, TILE_C};

static SLM_DOT_AVX2 void micro_q6_K(int R, int C, int64_t n, float *restrict out, size_t ld, const uint8_t *restrict w,
                                    size_t wb, const uint8_t *restrict a, size_t ab) {
    q8k_shapes(K_Q6_K, R, C, n, out, ld, w, wb, a, ab);
}
static void tile_q6_K(int64_t n, int nr, int nc, float *restrict out, size_t ld_out, const void *restrict w,
                           size_t w_row_bytes, const void *restrict a, size_t a_row_bytes) {
    slm_tile_drive(tile_rows(K_Q6_K), tile_cols(K_Q6_K), micro_q6_K, n, nr, nc, out, ld_out, w, w_row_bytes, a, a_row_bytes);
}
const slm_dot_avx2 slm_dot_avx2_q6_K = {tile_q6_K, TILE_R, TILE_C};

static SLM_DOT_AVX2 void micro_iq4_xs(int R, int C, int64_t n, float *restrict out, size_t ld, const uint8_t *restrict w,
                                    size_t wb, const uint8_t *restrict a, size_t ab) {
    q8k_shapes(K_IQ4_XS, R, C, n, out, ld, w, wb, a, ab);
}
static void tile_iq4_xs(int64_t n, int nr, int nc, float *restrict out, size_t ld_out, const void *restrict w,
                           size_t w_row_bytes, const void *restrict a, size_t a_row_bytes) {
    slm_tile_drive(tile_rows(K_IQ4_XS), tile_cols(K_IQ4_XS), micro_iq4_xs, n, nr, nc, out, ld_out, w, w_row_bytes, a, a_row_bytes);
}
const slm_dot_avx2 slm_dot_avx2_iq4_xs = {tile_iq4_xs, TILE_R, TILE_C};

static SLM_DOT_AVX2 void micro_iq2_xxs(int R, int C, int64_t n, float *restrict out, size_t ld, const uint8_t *restrict w,
                                    size_t wb, const uint8_t *restrict a, size_t ab) {
    q8k_shapes(K_IQ2_XXS, R, C, n, out, ld, w, wb, a, ab);
}
static void tile_iq2_xxs(int64_t n, int nr, int nc, float *restrict out, size_t ld_out, const void *restrict w,
                           size_t w_row_bytes, const void *restrict a, size_t a_row_bytes) {
    slm_tile_drive(tile_rows(K_IQ2_XXS), tile_cols(K_IQ2_XXS), micro_iq2_xxs, n, nr, nc, out, ld_out, w, w_row_bytes, a, a_row_bytes);
}
const slm_dot_avx2 slm_dot_avx2_iq2_xxs = {tile_iq2_xxs, TILE_R, TILE_C};

static SLM_DOT_AVX2 void micro_iq2_xs(int R, int C, int64_t n, float *restrict out, size_t ld, const uint8_t *restrict w,
                                    size_t wb, const uint8_t *restrict a, size_t ab) {
    q8k_shapes(K_IQ2_XS, R, C, n, out, ld, w, wb, a, ab);
}
static void tile_iq2_xs(int64_t n, int nr, int nc, float *restrict out, size_t ld_out, const void *restrict w,
                           size_t w_row_bytes, const void *restrict a, size_t a_row_bytes) {
    slm_tile_drive(tile_rows(K_IQ2_XS), tile_cols(K_IQ2_XS), micro_iq2_xs, n, nr, nc, out, ld_out, w, w_row_bytes, a, a_row_bytes);
}
const slm_dot_avx2 slm_dot_avx2_iq2_xs = {tile_iq2_xs, TILE_R, TILE_C};

static SLM_DOT_AVX2 void micro_iq2_s(int R, int C, int64_t n, float *restrict out, size_t ld, const uint8_t *restrict w,
                                    size_t wb, const uint8_t *restrict a, size_t ab) {
    q8k_shapes(K_IQ2_S, R, C, n, out, ld, w, wb, a, ab);
}
static void tile_iq2_s(int64_t n, int nr, int nc, float *restrict out, size_t ld_out, const void *restrict w,
                           size_t w_row_bytes, const void *restrict a, size_t a_row_bytes) {
    slm_tile_drive(tile_rows(K_IQ2_S), tile_cols(K_IQ2_S), micro_iq2_s, n, nr, nc, out, ld_out, w, w_row_bytes, a, a_row_bytes);
}
const slm_dot_avx2 slm_dot_avx2_iq2_s = {tile_iq2_s, TILE_R, TILE_C};

static SLM_DOT_AVX2 void micro_iq3_xxs(int R, int C, int64_t n, float *restrict out, size_t ld, const uint8_t *restrict w,
                                    size_t wb, const uint8_t *restrict a, size_t ab) {
    q8k_shapes(K_IQ3_XXS, R, C, n, out, ld, w, wb, a, ab);
}
static void tile_iq3_xxs(int64_t n, int nr, int nc, float *restrict out, size_t ld_out, const void *restrict w,
                           size_t w_row_bytes, const void *restrict a, size_t a_row_bytes) {
    slm_tile_drive(tile_rows(K_IQ3_XXS), tile_cols(K_IQ3_XXS), micro_iq3_xxs, n, nr, nc, out, ld_out, w, w_row_bytes, a, a_row_bytes);
}
const slm_dot_avx2 slm_dot_avx2_iq3_xxs = {tile_iq3_xxs, TILE_R, TILE_C};

static SLM_DOT_AVX2 void micro_iq3_s(int R, int C, int64_t n, float *restrict out, size_t ld, const uint8_t *restrict w,
                                    size_t wb, const uint8_t *restrict a, size_t ab) {
    q8k_shapes(K_IQ3_S, R, C, n, out, ld, w, wb, a, ab);
}
static void tile_iq3_s(int64_t n, int nr, int nc, float *restrict out, size_t ld_out, const void *restrict w,
                           size_t w_row_bytes, const void *restrict a, size_t a_row_bytes) {
    slm_tile_drive(tile_rows(K_IQ3_S), tile_cols(K_IQ3_S), micro_iq3_s, n, nr, nc, out, ld_out, w, w_row_bytes, a, a_row_bytes);
}
const slm_dot_avx2 slm_dot_avx2_iq3_s = {tile_iq3_s, TILE_R, TILE_C};

static SLM_DOT_AVX2 void micro_iq1_s(int R, int C, int64_t n, float *restrict out, size_t ld, const uint8_t *restrict w,
                                    size_t wb, const uint8_t *restrict a, size_t ab) {
    q8k_shapes(K_IQ1_S, R, C, n, out, ld, w, wb, a, ab);
}
static void tile_iq1_s(int64_t n, int nr, int nc, float *restrict out, size_t ld_out, const void *restrict w,
                           size_t w_row_bytes, const void *restrict a, size_t a_row_bytes) {
    slm_tile_drive(tile_rows(K_IQ1_S), tile_cols(K_IQ1_S), micro_iq1_s, n, nr, nc, out, ld_out, w, w_row_bytes, a, a_row_bytes);
}
const slm_dot_avx2 slm_dot_avx2_iq1_s = {tile_iq1_s, TILE_R, TILE_C};

static SLM_DOT_AVX2 void micro_iq1_m(int R, int C, int64_t n, float *restrict out, size_t ld, const uint8_t *restrict w,
                                    size_t wb, const uint8_t *restrict a, size_t ab) {
    q8k_shapes(K_IQ1_M, R, C, n, out, ld, w, wb, a, ab);
}
static void tile_iq1_m(int64_t n, int nr, int nc, float *restrict out, size_t ld_out, const void *restrict w,
                           size_t w_row_bytes, const void *restrict a, size_t a_row_bytes) {
    slm_tile_drive(tile_rows(K_IQ1_M), tile_cols(K_IQ1_M), micro_iq1_m, n, nr, nc, out, ld_out, w, w_row_bytes, a, a_row_bytes);
}
const slm_dot_avx2 slm_dot_avx2_iq1_m = {tile_iq1_m, TILE_R_IQ1_M, TILE_C_IQ1_M};

/* ------------------------------------------------- AVX-512 VL/BW/VNNI: 4 x 4 tiles, 32 registers */

#define SLM_DOT_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")))
#define WIDE_R 4
#define WIDE_C 4
#define WIDE(t, KIND)                                                                                                      \
    static SLM_DOT_AVX512 void wmicro_##t(int R, int C, int64_t n, float *restrict out, size_t ld,                      \
                                          const uint8_t *restrict w, size_t wb, const uint8_t *restrict a, size_t ab) { \
        q8k_shapes_of(KIND, WIDE_R, WIDE_C, 1, R, C, n, out, ld, w, wb, a, ab);                                          \
    }                                                                                                                    \
    SLM_DOT_TILE_FN(wtile_##t, wmicro_##t, WIDE_R, WIDE_C) \
    static const slm_dot_avx2 wide_##t = {wtile_##t, WIDE_R, WIDE_C};
WIDE(q2_K, K_Q2_K)
WIDE(q3_K, K_Q3_K)
WIDE(iq4_xs, K_IQ4_XS)
WIDE(iq2_xxs, K_IQ2_XXS)
WIDE(iq2_xs, K_IQ2_XS)
WIDE(iq2_s, K_IQ2_S)
WIDE(iq3_xxs, K_IQ3_XXS)
WIDE(iq3_s, K_IQ3_S)
WIDE(iq1_s, K_IQ1_S)

/* Q4_K, Q5_K and Q6_K in 512-bit registers, 4 activation rows at a time. A zmm holds two chunks of a
 * super-block (values 64m .. 64m+63): the activation's are contiguous, and so are the weights'
 * bits (Q4_K: chunks 2m and 2m+1 are the low and high nibbles of the same 32 bytes; Q6_K: the low
 * bits of chunks 2m, 2m+1 are 64 contiguous bytes' low or high nibbles, their high bits two
 * fields of the same 32 bytes; Q5_K as Q4_K, plus bits 2m and 2m+1 of the same 32 qh bytes), so each maddubs / vpdpwssd does the work of two of the 256-bit
 * tile's. Once per super-block the two halves' int32 lanes are added (integer adds: ggml's
 * wrapping sums) for two pairs at once, and the float state of two pairs shares a zmm:
 * acc (r, c | c+1) = fma(yd * d, lanes, acc), lane for lane the 256-bit step (Q6_K's lanes
 * first lose 32 x the scaled bsums, as tile_step); Q4_K's mins four pairs per zmm, lane for
 * lane the 128-bit step of pair_step; Q5_K's one float chain per pair (summs), four pairs per
 * xmm. The result is pair_result's sum of the same lanes. One activation row (zmicro_c1) keeps
 * the 256-bit float state of each pair. */
#define ZINLINE static inline __attribute__((always_inline)) SLM_DOT_AVX512
#define ZDPWSSD(acc, sc, p) __asm__("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(sc), "v"(p))

/* One weight super-block: its scales as dwords (two equal i16 each, dword k: the scale of
 * Q4_K's chunk k / Q6_K's 16 values 16k ..), d and dmin, Q4_K's mins / Q6_K's scales as i16. */
typedef struct zhead {
    const uint8_t *p;
    __m512i sc32;
    __m256i aux; /* Q4_K: the 8 mins (low lane); Q6_K: the 16 scales */
    __m128 dd;   /* d, dmin */
} zhead;

ZINLINE void zhead_of(const int kind, zhead *h, const uint8_t *p) {
    h->p = p;
    if (kind == K_Q4_K || kind == K_Q5_K) {
        h->dd = _mm_cvtph_ps(_mm_cvtsi32_si128((int)slm_le_u32(p)));
        const __m256i mas = scales_mins_k4(p + 4);
        h->aux = _mm256_castsi128_si256(_mm256_extracti128_si256(mas, 1));
        const __m128i sc = _mm256_castsi256_si128(mas);
        h->sc32 = _mm512_castsi256_si512(_mm256_set_m128i(_mm_unpackhi_epi16(sc, sc), _mm_unpacklo_epi16(sc, sc)));
    } else {
        h->dd = _mm_cvtph_ps(_mm_cvtsi32_si128(slm_le_u16(p + 208)));
        h->aux = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(p + 192)));
        const __m512i u = _mm512_cvtepu16_epi32(h->aux);
        h->sc32 = _mm512_or_si512(u, _mm512_slli_epi32(u, 16));
    }
}

/* Values 64m .. 64m+63 of a super-block: the unsigned quants and the i16 scale of each pair. */
ZINLINE void zchunk_of(const int kind, const zhead *h, const int m, __m512i *q, __m512i *sc) {
    const uint8_t *p = h->p;
    const __m512i m4 = _mm512_set1_epi8(0xf);
    if (kind == K_Q4_K || kind == K_Q5_K) { /* nibbles; Q5_K: bit k of qh[b] is value b of chunk k's 5th bit */
        const __m512i bits = _mm512_broadcast_i64x4(load32(p + (kind == K_Q4_K ? 16 : 48) + 32 * m));
        *q = _mm512_and_si512(_mm512_mask_srli_epi16(bits, (__mmask32)0xffff0000u, bits, 4), m4);
        if (kind == K_Q5_K) {
            const __m512i qh = _mm512_broadcast_i64x4(load32(p + 16));
            const __m512i hb = _mm512_and_si512(qh, _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << 2 * m)),
                                                                       _mm256_set1_epi8((char)(1 << (2 * m + 1))), 1));
            const __m512i sh = _mm512_inserti64x4(_mm512_set1_epi16((short)(2 * m)), _mm256_set1_epi16((short)(2 * m + 1)), 1);
            *q = _mm512_or_si512(*q, _mm512_slli_epi16(_mm512_srlv_epi16(hb, sh), 4));
        }
        *sc = _mm512_permutexvar_epi32(_mm512_inserti64x4(_mm512_set1_epi32(2 * m), _mm256_set1_epi32(2 * m + 1), 1), h->sc32);
        return;
    }
    const int j = m / 2, t = m % 2;
    const __m512i b = _mm512_loadu_si512((const void *)(p + 64 * j));
    const __m512i bh = _mm512_broadcast_i64x4(load32(p + 128 + 32 * j));
    const __m512i lo = t ? _mm512_and_si512(_mm512_srli_epi16(b, 4), m4) : _mm512_and_si512(b, m4);
    __m512i hi;
    if (t == 0) /* chunk 4j: (bh & 3) << 4; chunk 4j + 1: (bh & 12) << 2 */
        hi = _mm512_sllv_epi16(_mm512_and_si512(bh, _mm512_inserti64x4(_mm512_set1_epi8(3), _mm256_set1_epi8(12), 1)),
                               _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1));
    else /* chunk 4j + 2: bh & 48; chunk 4j + 3: (bh & 192) >> 2 */
        hi = _mm512_srlv_epi16(_mm512_and_si512(bh, _mm512_inserti64x4(_mm512_set1_epi8(48), _mm256_set1_epi8(-64), 1)),
                               _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1));
    *q = _mm512_or_si512(lo, hi);
    *sc = _mm512_permutexvar_epi32(_mm512_set_epi32(4 * m + 3, 4 * m + 3, 4 * m + 3, 4 * m + 3, 4 * m + 2, 4 * m + 2, 4 * m + 2,
                                                    4 * m + 2, 4 * m + 1, 4 * m + 1, 4 * m + 1, 4 * m + 1, 4 * m, 4 * m, 4 * m, 4 * m),
                                   h->sc32);
}

ZINLINE void zmicro_c4(const int kind, const int R, int64_t n, float *restrict out, size_t ld, const uint8_t *restrict w,
                       size_t wb, const uint8_t *restrict a, size_t ab) {
    enum { C = 4 };
    const size_t xb = block_bytes(kind);
    __m512 acc[SLM_TILE_MAX_R][C / 2], accm[SLM_TILE_MAX_R];
    __m128 summs[SLM_TILE_MAX_R]; /* Q5_K: the chains of columns 0-3 */
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        acc[r][0] = acc[r][1] = accm[r] = _mm512_setzero_ps();
        summs[r] = _mm_setzero_ps();
    }
    for (int64_t i = 0; i < n / SLM_QK_K; i++) {
        zhead h[SLM_TILE_MAX_R];
        const uint8_t *ya[C];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) zhead_of(kind, &h[r], w + (size_t)r * wb + (size_t)i * xb);
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) ya[c] = a + (size_t)c * ab + (size_t)i * sizeof(slm_block_q8_K);
        __m512i sumi[SLM_TILE_MAX_R][C];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
#pragma GCC unroll 4
            for (int c = 0; c < C; c++) sumi[r][c] = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int m = 0; m < 4; m++) {
            __m512i q[SLM_TILE_MAX_R], sc[SLM_TILE_MAX_R];
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) zchunk_of(kind, &h[r], m, &q[r], &sc[r]);
#pragma GCC unroll 4
            for (int c = 0; c < C; c++) {
                const __m512i y = _mm512_loadu_si512((const void *)(ya[c] + 4 + 64 * m));
#pragma GCC unroll 4
                for (int r = 0; r < R; r++) ZDPWSSD(sumi[r][c], sc[r], _mm512_maddubs_epi16(q[r], y));
            }
        }
        /* yd of columns (c, c+1) as [yd_c x8 | yd_c+1 x8]; their bsums as [c | c+1] */
        __m512 yd2[C / 2];
        __m512i bs2[C / 2];
#pragma GCC unroll 2
        for (int c = 0; c < C / 2; c++) {
            yd2[c] = _mm512_mask_broadcastss_ps(_mm512_set1_ps(slm_le_f32(ya[2 * c])), (__mmask16)0xff00,
                                                _mm_set_ss(slm_le_f32(ya[2 * c + 1])));
            bs2[c] = _mm512_inserti64x4(_mm512_castsi256_si512(load32(ya[2 * c] + 4 + SLM_QK_K)), load32(ya[2 * c + 1] + 4 + SLM_QK_K), 1);
        }
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const __m512 d = _mm512_broadcastss_ps(h[r].dd);
#pragma GCC unroll 2
            for (int c = 0; c < C / 2; c++) {
                const __m512i A = sumi[r][2 * c], B = sumi[r][2 * c + 1];
                __m512i lanes = _mm512_add_epi32(_mm512_shuffle_i64x2(A, B, 0x44), _mm512_shuffle_i64x2(A, B, 0xee));
                if (kind == K_Q6_K)
                    lanes = _mm512_sub_epi32(
                        lanes, _mm512_slli_epi32(_mm512_madd_epi16(bs2[c], _mm512_broadcast_i64x4(h[r].aux)), 5));
                acc[r][c] = _mm512_fmadd_ps(_mm512_mul_ps(yd2[c], d), _mm512_cvtepi32_ps(lanes), acc[r][c]);
            }
        }
        if (kind == K_Q6_K) continue;
        /* Q4_K's and Q5_K's mins: -yd of the four columns as x4; the bsums added in pairs (_mm_hadd_epi16 of
           each column's 16), [c0 | c1 | c2 | c3] x 8 i16 */
        const __m512 yn4 = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(_mm512_shuffle_f32x4(yd2[0], yd2[1], 0x88)),
                                                                _mm512_castps_si512(_mm512_set1_ps(-0.0f))));
        __m256i q8s2[C / 2];
#pragma GCC unroll 2
        for (int c = 0; c < C / 2; c++) {
            const __m512i b = bs2[c];
            const __m256i b0 = _mm512_castsi512_si256(b), b1 = _mm512_extracti64x4_epi64(b, 1);
            q8s2[c] = _mm256_hadd_epi16(_mm256_permute2x128_si256(b0, b1, 0x20), _mm256_permute2x128_si256(b0, b1, 0x31));
        }
        const __m512i q8s4 = _mm512_inserti64x4(_mm512_castsi256_si512(q8s2[0]), q8s2[1], 1);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const __m512 dmin = _mm512_broadcastss_ps(_mm_movehdup_ps(h[r].dd));
            const __m512i prod = _mm512_madd_epi16(_mm512_broadcast_i32x4(_mm256_castsi256_si128(h[r].aux)), q8s4);
            if (kind == K_Q4_K) {
                accm[r] = _mm512_fmadd_ps(_mm512_mul_ps(yn4, dmin), _mm512_cvtepi32_ps(prod), accm[r]);
            } else { /* each column's 4 lanes summed (integers), one fma per column */
                __m512i t = _mm512_add_epi32(prod, _mm512_shuffle_epi32(prod, _MM_PERM_BADC));
                t = _mm512_add_epi32(t, _mm512_shuffle_epi32(t, _MM_PERM_CDAB));
                const __m128i sum4 = _mm512_castsi512_si128(
                    _mm512_permutexvar_epi32(_mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 8, 4, 0), t));
                summs[r] = _mm_fmadd_ps(_mm512_castps512_ps128(_mm512_mul_ps(
                                            _mm512_permutexvar_ps(_mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 8, 4, 0), yn4), dmin)),
                                        _mm_cvtepi32_ps(sum4), summs[r]);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        __m128 m[C];
        m[0] = _mm512_castps512_ps128(accm[r]);
        m[1] = _mm512_extractf32x4_ps(accm[r], 1);
        m[2] = _mm512_extractf32x4_ps(accm[r], 2);
        m[3] = _mm512_extractf32x4_ps(accm[r], 3);
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) {
            const __m256 h8 = c % 2 ? _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[r][c / 2]), 1))
                                    : _mm512_castps512_ps256(acc[r][c / 2]);
            float v = slm_hsum8_x8(h8);
            if (kind == K_Q5_K) {
                float sm[4];
                _mm_storeu_ps(sm, summs[r]);
                v += sm[c];
            } else if (kind == K_Q4_K) {
                __m128 mm = _mm_add_ps(m[c], _mm_movehl_ps(m[c], m[c]));
                mm = _mm_add_ss(mm, _mm_movehdup_ps(mm));
                v += _mm_cvtss_f32(mm);
            }
            out[(size_t)c * ld + r] = v;
        }
    }
}

/* One activation row (decoding a token): the same 512-bit chunk pairs, per weight row the float
 * state of pair_step (tile_step's odd-C path) with the halves' lanes added first. */
ZINLINE void zmicro_c1(const int kind, const int R, int64_t n, float *restrict out, const uint8_t *restrict w, size_t wb,
                       const uint8_t *restrict a) {
    const size_t xb = block_bytes(kind);
    __m256 acc[SLM_TILE_MAX_R];
    __m128 accm[SLM_TILE_MAX_R];
    float summs[SLM_TILE_MAX_R];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps(), accm[r] = _mm_setzero_ps(), summs[r] = 0;
    for (int64_t i = 0; i < n / SLM_QK_K; i++) {
        zhead h[SLM_TILE_MAX_R];
        const uint8_t *ya = a + (size_t)i * sizeof(slm_block_q8_K);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            zhead_of(kind, &h[r], w + (size_t)r * wb + (size_t)i * xb);
            slm_prefetch_ahead(w + (size_t)r * wb + (size_t)i * xb, xb);
        }
        __m512i sumi[SLM_TILE_MAX_R];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) sumi[r] = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int m = 0; m < 4; m++) {
            const __m512i y = _mm512_loadu_si512((const void *)(ya + 4 + 64 * m));
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                __m512i q, sc;
                zchunk_of(kind, &h[r], m, &q, &sc);
                ZDPWSSD(sumi[r], sc, _mm512_maddubs_epi16(q, y));
            }
        }
        const float yd = slm_le_f32(ya);
        const __m256i bs = load32(ya + 4 + SLM_QK_K);
        const __m128i q8s = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m256i lanes = _mm256_add_epi32(_mm512_castsi512_si256(sumi[r]), _mm512_extracti64x4_epi64(sumi[r], 1));
            if (kind == K_Q6_K) lanes = _mm256_sub_epi32(lanes, _mm256_slli_epi32(_mm256_madd_epi16(bs, h[r].aux), 5));
            const float d = _mm_cvtss_f32(h[r].dd);
            acc[r] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(yd), _mm256_set1_ps(d)), _mm256_cvtepi32_ps(lanes), acc[r]);
            if (kind == K_Q6_K) continue;
            const float dmin = -yd * _mm_cvtss_f32(_mm_movehdup_ps(h[r].dd));
            const __m128i prod = _mm_madd_epi16(_mm256_castsi256_si128(h[r].aux), q8s);
            if (kind == K_Q4_K) {
                accm[r] = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(prod), accm[r]);
            } else {
                const __m128i t = _mm_hadd_epi32(_mm_hadd_epi32(prod, _mm_setzero_si128()), _mm_setzero_si128());
                summs[r] = fmaf(dmin, (float)_mm_cvtsi128_si32(t), summs[r]);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        float v = slm_hsum8_x8(acc[r]);
        if (kind == K_Q4_K) {
            __m128 mm = _mm_add_ps(accm[r], _mm_movehl_ps(accm[r], accm[r]));
            mm = _mm_add_ss(mm, _mm_movehdup_ps(mm));
            v += _mm_cvtss_f32(mm);
        } else if (kind == K_Q5_K) {
            v += summs[r];
        }
        out[r] = v;
    }
}

#define ZWIDE(t, KIND)                                                                                                   \
    static SLM_DOT_AVX512 void zmicro_##t(int R, int C, int64_t n, float *restrict out, size_t ld,                      \
                                          const uint8_t *restrict w, size_t wb, const uint8_t *restrict a, size_t ab) { \
        if (C == WIDE_C && R == WIDE_R) zmicro_c4(KIND, WIDE_R, n, out, ld, w, wb, a, ab);                               \
        else if (C == WIDE_C) zmicro_c4(KIND, 1, n, out, ld, w, wb, a, ab);                                              \
        else if (R == WIDE_R) zmicro_c1(KIND, WIDE_R, n, out, w, wb, a);                                                 \
        else zmicro_c1(KIND, 1, n, out, w, wb, a);                                                                       \
    }                                                                                                                    \
    SLM_DOT_TILE_FN(ztile_##t, zmicro_##t, WIDE_R, WIDE_C) \
    static const slm_dot_avx2 wide_##t = {ztile_##t, WIDE_R, WIDE_C};
ZWIDE(q4_K, K_Q4_K)
ZWIDE(q5_K, K_Q5_K)
ZWIDE(q6_K, K_Q6_K)

const slm_dot_avx2 *const slm_dot_avx512[SLM_DTYPE_COUNT] = {
    [SLM_DTYPE_F32] = &slm_dot_avx512_f32,     [SLM_DTYPE_F16] = &slm_dot_avx512_f16,     [SLM_DTYPE_BF16] = &slm_dot_avx512_bf16,
    [SLM_DTYPE_Q4_0] = &slm_dot_avx512_q4_0,   [SLM_DTYPE_Q4_1] = &slm_dot_avx512_q4_1,   [SLM_DTYPE_Q5_0] = &slm_dot_avx512_q5_0,
    [SLM_DTYPE_Q5_1] = &slm_dot_avx512_q5_1,   [SLM_DTYPE_Q8_0] = &slm_dot_avx512_q8_0,
    [SLM_DTYPE_Q2_K] = &wide_q2_K,       [SLM_DTYPE_Q3_K] = &wide_q3_K,       [SLM_DTYPE_Q4_K] = &wide_q4_K,
    [SLM_DTYPE_Q5_K] = &wide_q5_K,       [SLM_DTYPE_Q6_K] = &wide_q6_K,       [SLM_DTYPE_IQ4_XS] = &wide_iq4_xs,
    [SLM_DTYPE_IQ2_XXS] = &wide_iq2_xxs, [SLM_DTYPE_IQ2_XS] = &wide_iq2_xs,   [SLM_DTYPE_IQ2_S] = &wide_iq2_s,
    [SLM_DTYPE_IQ3_XXS] = &wide_iq3_xxs, [SLM_DTYPE_IQ3_S] = &wide_iq3_s,     [SLM_DTYPE_IQ1_S] = &wide_iq1_s,
};

#endif /* SLM_X86_KERNELS */
