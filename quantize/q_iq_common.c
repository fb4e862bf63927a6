/* q_iq_common.c - the lattices of ggml's iq1/iq2/iq3 grids and the search steps the lattice
 * quantizers share (see q_iq_common.h).
 *
 * Owns: the level view, key map and neighbour lists of each grid, built once on first use under
 * pthread_once into static storage (no allocation, no failure path, nothing mutable outside this
 * file); ggml's sign step, nearest-neighbour step and trial-scale search for iq2_xxs, iq2_xs, iq2_s,
 * iq3_xxs and iq3_s, and the AVX2 neighbour scan (end of file) that iq1 shares. Neighbour lists hold
 * what iq2xs_init_impl / iq3xs_init_impl compute (the points at the nwant smallest distances, by
 * distance then index; stored as keys), for the keys the quantizers can produce only (levels <= 2
 * in the 2-bit fields: 3^8 keys instead of ggml's 43692), in about 70 ms for the largest grid
 * where ggml's init takes seconds.
 * Must not: reorder float expressions, allocate, print, or know about block layouts.
 */
#define SLM_QUANTS_AVX2_HELPERS
#include "quantize/q_iq_common.h"

#include <float.h>
#include <pthread.h>
#include <string.h>

#include "core/slm.h"
#include "quantize/quants.h"

#define MAX_DIM 8
#define MAX_LEVELS 8
#define MAX_GRID 2048
#define KEYS_2BIT 43691 /* largest key with levels <= 2 in 8 2-bit fields is 0xAAAA */
#define KEYS_3BIT 4096  /* 4 3-bit fields */

/* Words of neighbour storage per grid (a count + the list, per off-grid key). Measured; the build
 * asserts them, so a changed grid cannot overflow silently. */
#define NB_IQ2_XXS 119462
#define NB_IQ2_XS 187770
#define NB_IQ2_S 50253
#define NB_IQ1_S 332234
#define NB_IQ3_XXS 22825
#define NB_IQ3_S 28317

typedef struct lattice_def {
    const void *grid; /* uint64_t (dim 8) or uint32_t (dim 4) entries */
    int dim, bits, grid_size, nwant, max_level, n_keys, nb_words;
} lattice_def;

/* ggml's nwant: 2 for iq2_xxs/iq2_xs/iq3_xxs, 1 for iq2_s, 3 for iq1_s/iq1_m and iq3_s. */
static const lattice_def k_defs[SLM_IQ_GRID_COUNT] = {
    [SLM_IQ_GRID_IQ2_XXS] = {slm_iq2xxs_grid, 8, 2, 256, 2, 2, KEYS_2BIT, NB_IQ2_XXS},
    [SLM_IQ_GRID_IQ2_XS] = {slm_iq2xs_grid, 8, 2, 512, 2, 2, KEYS_2BIT, NB_IQ2_XS},
    [SLM_IQ_GRID_IQ2_S] = {slm_iq2s_grid, 8, 2, 1024, 1, 2, KEYS_2BIT, NB_IQ2_S},
    [SLM_IQ_GRID_IQ1_S] = {slm_iq1s_grid, 8, 2, 2048, 3, 2, KEYS_2BIT, NB_IQ1_S},
    [SLM_IQ_GRID_IQ3_XXS] = {slm_iq3xxs_grid, 4, 3, 256, 2, 7, KEYS_3BIT, NB_IQ3_XXS},
    [SLM_IQ_GRID_IQ3_S] = {slm_iq3s_grid, 4, 3, 512, 3, 7, KEYS_3BIT, NB_IQ3_S},
};

/* Static storage of every lattice. */
static uint8_t g_level_iq2xxs[256 * 8], g_level_iq2xs[512 * 8], g_level_iq2s[1024 * 8], g_level_iq1s[2048 * 8];
static uint8_t g_level_iq3xxs[256 * 4], g_level_iq3s[512 * 4];
static int32_t g_map_iq2xxs[KEYS_2BIT], g_map_iq2xs[KEYS_2BIT], g_map_iq2s[KEYS_2BIT], g_map_iq1s[KEYS_2BIT];
static int32_t g_map_iq3xxs[KEYS_3BIT], g_map_iq3s[KEYS_3BIT];
#define NB_PAD 8 /* spare words after the lists: the AVX2 scan loads 8 keys at a time */
static uint16_t g_nb_iq2xxs[NB_IQ2_XXS + NB_PAD], g_nb_iq2xs[NB_IQ2_XS + NB_PAD], g_nb_iq2s[NB_IQ2_S + NB_PAD];
static uint16_t g_nb_iq1s[NB_IQ1_S + NB_PAD], g_nb_iq3xxs[NB_IQ3_XXS + NB_PAD], g_nb_iq3s[NB_IQ3_S + NB_PAD];

static struct {
    uint8_t *level;
    int32_t *map;
    uint16_t *nb;
} const k_store[SLM_IQ_GRID_COUNT] = {
    [SLM_IQ_GRID_IQ2_XXS] = {g_level_iq2xxs, g_map_iq2xxs, g_nb_iq2xxs},
    [SLM_IQ_GRID_IQ2_XS] = {g_level_iq2xs, g_map_iq2xs, g_nb_iq2xs},
    [SLM_IQ_GRID_IQ2_S] = {g_level_iq2s, g_map_iq2s, g_nb_iq2s},
    [SLM_IQ_GRID_IQ1_S] = {g_level_iq1s, g_map_iq1s, g_nb_iq1s},
    [SLM_IQ_GRID_IQ3_XXS] = {g_level_iq3xxs, g_map_iq3xxs, g_nb_iq3xxs},
    [SLM_IQ_GRID_IQ3_S] = {g_level_iq3s, g_map_iq3s, g_nb_iq3s},
};

static slm_iq_lattice g_lattice[SLM_IQ_GRID_COUNT];

/* Coordinate i of grid point g as a signed byte. */
static int coord(const lattice_def *d, int g, int i) {
    const uint64_t v = d->dim == 8 ? ((const uint64_t *)d->grid)[g] : ((const uint32_t *)d->grid)[g];
    return (int8_t)(uint8_t)(v >> 8 * i);
}

/* level[g][i] = rank of the coordinate among the grid's distinct values. */
static void build_levels(const lattice_def *d, uint8_t *level) {
    int values[16], n_values = 0;
    for (int g = 0; g < d->grid_size; ++g) {
        for (int i = 0; i < d->dim; ++i) {
            const int c = coord(d, g, i);
            int k = 0;
            while (k < n_values && values[k] < c) k++;
            if (k < n_values && values[k] == c) continue;
            SLM_ASSERT(n_values <= d->max_level);
            memmove(values + k + 1, values + k, (size_t)(n_values - k) * sizeof values[0]);
            values[k] = c;
            n_values++;
        }
    }
    SLM_ASSERT(n_values == d->max_level + 1);
    for (int g = 0; g < d->grid_size; ++g) {
        for (int i = 0; i < d->dim; ++i) {
            int k = 0;
            while (values[k] != coord(d, g, i)) k++;
            level[g * d->dim + i] = (uint8_t)k;
        }
    }
}

/* Levels of a key, or 0 when a field exceeds max_level (a key the quantizers never form). */
static int key_levels(const lattice_def *d, int u, int *l) {
    for (int i = 0; i < d->dim; ++i) {
        l[i] = (u >> d->bits * i) & ((1 << d->bits) - 1);
        if (l[i] > d->max_level) return 0;
    }
    return 1;
}

/* Appends the neighbour list of key levels l at nb[*pos]: count, then the keys of the points whose
 * squared level distance is among the nwant smallest distinct ones, by distance then index (ggml
 * sorts (d2, index) pairs with its distance 4x ours: same order). */
static void add_neighbours(const lattice_def *d, const uint8_t *level, const int *l, uint16_t *nb, int *pos) {
    static_assert(8 * 2 <= 16 && 4 * 3 <= 16, "keys (8 x 2 or 4 x 3 bits) are stored as uint16_t");
    int dist[MAX_GRID];
    int want[3], n_want = 0; /* the nwant smallest distinct distances, ascending */
    for (int g = 0; g < d->grid_size; ++g) {
        int d2 = 0;
        for (int i = 0; i < d->dim; ++i) {
            const int t = level[g * d->dim + i] - l[i];
            d2 += t * t;
        }
        dist[g] = d2;
        int k = 0;
        while (k < n_want && want[k] < d2) k++;
        if (k < n_want && want[k] == d2) continue;
        if (k >= d->nwant) continue;
        if (n_want == d->nwant) n_want--;
        memmove(want + k + 1, want + k, (size_t)(n_want - k) * sizeof want[0]);
        want[k] = d2;
        n_want++;
    }
    const int start = (*pos)++;
    int count = 0;
    for (int k = 0; k < n_want; ++k) {
        for (int g = 0; g < d->grid_size; ++g) {
            if (dist[g] != want[k]) continue;
            SLM_ASSERT(*pos < d->nb_words);
            int key = 0;
            for (int i = 0; i < d->dim; ++i) key |= level[g * d->dim + i] << d->bits * i;
            nb[(*pos)++] = (uint16_t)key;
            count++;
        }
    }
    nb[start] = (uint16_t)count;
}

static void build(slm_iq_grid id) {
    const lattice_def *d = &k_defs[id];
    uint8_t *level = k_store[id].level;
    int32_t *map = k_store[id].map;
    uint16_t *nb = k_store[id].nb;
    build_levels(d, level);
    for (int u = 0; u < d->n_keys; ++u) map[u] = SLM_IQ_NO_KEY;
    for (int g = 0; g < d->grid_size; ++g) {
        int u = 0;
        for (int i = 0; i < d->dim; ++i) u |= level[g * d->dim + i] << d->bits * i;
        SLM_ASSERT(u < d->n_keys && map[u] == SLM_IQ_NO_KEY);
        map[u] = g;
    }
    int pos = 0;
    for (int u = 0; u < d->n_keys; ++u) {
        int l[MAX_DIM];
        if (map[u] != SLM_IQ_NO_KEY || !key_levels(d, u, l)) continue;
        map[u] = -1 - pos;
        add_neighbours(d, level, l, nb, &pos);
    }
    SLM_ASSERT(pos == d->nb_words); /* the storage constants above are exact */
    g_lattice[id] = (slm_iq_lattice){d->dim, d->bits, d->grid_size, d->max_level + 1, d->n_keys, level, map, nb};
}

static pthread_once_t g_once[SLM_IQ_GRID_COUNT] = {PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT,
                                                   PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT};
static void build_iq2_xxs(void) { build(SLM_IQ_GRID_IQ2_XXS); }
static void build_iq2_xs(void) { build(SLM_IQ_GRID_IQ2_XS); }
static void build_iq2_s(void) { build(SLM_IQ_GRID_IQ2_S); }
static void build_iq1_s(void) { build(SLM_IQ_GRID_IQ1_S); }
static void build_iq3_xxs(void) { build(SLM_IQ_GRID_IQ3_XXS); }
static void build_iq3_s(void) { build(SLM_IQ_GRID_IQ3_S); }
static void (*const k_build[SLM_IQ_GRID_COUNT])(void) = {build_iq2_xxs, build_iq2_xs, build_iq2_s,
                                                         build_iq1_s,   build_iq3_xxs, build_iq3_s};

const slm_iq_lattice *slm_iq_lattice_get(slm_iq_grid grid) {
    SLM_ASSERT(grid >= 0 && grid < SLM_IQ_GRID_COUNT);
    SLM_ASSERT(pthread_once(&g_once[grid], k_build[grid]) == 0);
    return &g_lattice[grid];
}

int slm_iq_grid_index(const slm_iq_lattice *lat, const int8_t *L) {
    const int u = slm_iq_key(lat, L);
    SLM_ASSERT(u < lat->n_keys && lat->map[u] >= 0); /* ggml: "found point not on grid", abort */
    return lat->map[u];
}

/* ------------------------------------------------------------------------------ signs */

uint8_t slm_iq_signs_even(const float *restrict x, const float *restrict weight, float *restrict xval) {
    int nflip = 0;
    uint8_t s = 0;
    for (int i = 0; i < 8; ++i) {
        if (x[i] >= 0) {
            xval[i] = x[i];
        } else {
            xval[i] = -x[i];
            ++nflip;
            s |= (uint8_t)(1u << i);
        }
    }
    if (nflip % 2) {
        int imin = 0;
        float min = weight[0] * x[0] * x[0];
        for (int i = 1; i < 8; ++i) {
            const float ax = weight[i] * x[i] * x[i];
            if (ax < min) {
                min = ax;
                imin = i;
            }
        }
        xval[imin] = -xval[imin];
        s ^= (uint8_t)(1u << imin);
    }
    return s & 127;
}

uint8_t slm_iq_signs_all(const float *restrict x, float *restrict xval) {
    uint8_t s = 0;
    for (int i = 0; i < 8; ++i) {
        if (x[i] >= 0) {
            xval[i] = x[i];
        } else {
            xval[i] = -x[i];
            s |= (uint8_t)(1u << i);
        }
    }
    return s;
}

/* ---------------------------------------------------------------------------- search */

#if SLM_X86_KERNELS
typedef struct lane_scan {
    const float *term;  /* [dim][SLM_IQ_TERM_STRIDE] precomputed terms, or NULL: the formula below */
    const float *xval, *w;
    float scale;        /* formula: w[i] * (scale * (2 level + 1) - xval[i])^2 */
} lane_scan;
static int nearest_key_avx2(const uint16_t *keys, int n, int dim, int bits, int n_levels, const lane_scan *sc);
#endif

/* The scalar search steps below are written once for a lattice shape (dim coordinates of `bits`
 * bits, levels < kmaxq, n values per sub-block) and inlined with the two shapes as constants: 8 x 2
 * bits (iq2, iq1) and 4 x 3 bits (iq3), so that the short loops unroll as ggml's do. */
#if defined(__GNUC__)
#define SHAPED static inline __attribute__((always_inline))
#else
#define SHAPED static inline
#endif

/* Scalar scan of a neighbour list (count, keys) with precomputed terms. */
SHAPED int scan_terms(const uint16_t *restrict nb, const float *restrict term, const int dim, const int bits) {
    float best_d2 = FLT_MAX;
    int best = -1;
    for (int j = 1; j <= nb[0]; ++j) {
        float d2 = 0;
        for (int i = 0; i < dim; ++i) d2 += term[SLM_IQ_TERM_STRIDE * i + ((nb[j] >> bits * i) & ((1 << bits) - 1))];
        if (d2 < best_d2) {
            best_d2 = d2;
            best = nb[j];
        }
    }
    return best;
}

/* ggml's loop as written: d2 = sum w * (scale * (2l + 1) - xval)^2. */
SHAPED int scan_direct(const uint16_t *restrict nb, const float *restrict xval, const float *restrict w, float scale,
                       const int dim, const int bits) {
    float best_d2 = FLT_MAX;
    int best = -1;
    for (int j = 1; j <= nb[0]; ++j) {
        float d2 = 0;
        for (int i = 0; i < dim; ++i) {
            const float q = (float)(2 * ((nb[j] >> bits * i) & ((1 << bits) - 1)) + 1);
            const float diff = scale * q - xval[i];
            d2 += w[i] * diff * diff;
        }
        if (d2 < best_d2) {
            best_d2 = d2;
            best = nb[j];
        }
    }
    return best;
}

int slm_iq_nearest_key(const slm_iq_lattice *lat, int32_t m, const float *restrict term, int avx2) {
    SLM_ASSERT(m < 0 && m != SLM_IQ_NO_KEY);
    const uint16_t *nb = lat->neighbours + (-1 - m);
#if SLM_X86_KERNELS
    if (avx2) {
        const lane_scan sc = {term, NULL, NULL, 0};
        return nearest_key_avx2(nb + 1, nb[0], lat->dim, lat->bits, lat->n_levels, &sc);
    }
#endif
    SLM_UNUSED(avx2);
    return lat->dim == 8 ? scan_terms(nb, term, 8, 2) : scan_terms(nb, term, 4, 3);
}

/* ggml's iq2_find_best_neighbour / iq3_find_best_neighbour: among the neighbours of an off-grid key
 * (map value m < 0), the point minimising sum w * (scale * (2l + 1) - xval)^2, the first on ties;
 * writes its levels to L and returns its index. */
SHAPED int best_neighbour_shaped(const slm_iq_lattice *lat, int32_t m, const float *restrict xval,
                                 const float *restrict w, float scale, int8_t *restrict L, int avx2, const int dim,
                                 const int bits, const int n_levels) {
    const uint16_t *nb = lat->neighbours + (-1 - m);
    const int n = nb[0];
    int best;
#if SLM_X86_KERNELS
    /* 8 lanes: the terms pay off once they are reused over enough steps (4 ops per coordinate and
     * step instead of 8, after 3 flops per coordinate and level) */
    if (avx2 && (n + 7) / 8 * 4 <= 3 * n_levels) {
        const lane_scan sc = {NULL, xval, w, scale};
        best = nearest_key_avx2(nb + 1, n, dim, bits, n_levels, &sc);
    } else
#endif
    if (avx2 || n > n_levels) {
        /* ggml's term w * diff * diff depends only on the coordinate and its level: form each once
         * (the same products), then add them per neighbour in ggml's order */
        float term[MAX_DIM * SLM_IQ_TERM_STRIDE];
        for (int i = 0; i < dim; ++i) {
            for (int l = 0; l < n_levels; ++l) {
                const float diff = scale * (float)(2 * l + 1) - xval[i];
                term[SLM_IQ_TERM_STRIDE * i + l] = w[i] * diff * diff;
            }
        }
        best = slm_iq_nearest_key(lat, m, term, avx2);
    } else {
        best = scan_direct(nb, xval, w, scale, dim, bits);
    }
    /* ggml asserts here when every distance is NaN or >= FLT_MAX (values near the float range);
     * there is no ggml output to match then, so take the first (nearest) neighbour. */
    if (best < 0) best = nb[1];
    for (int i = 0; i < dim; ++i) L[i] = (int8_t)((best >> bits * i) & ((1 << bits) - 1));
    return lat->map[best];
}

/* Rounds one group to levels at inverse scale id; off the grid, takes the nearest neighbour at
 * `scale`. Returns 1 when the rounded key was on the grid. */
SHAPED int round_group(const slm_iq_lattice *lat, float id, float scale, const float *restrict xval,
                       const float *restrict waux, int8_t *restrict L, int avx2, const int dim, const int bits,
                       const int kmaxq) {
    int u = 0;
    for (int i = 0; i < dim; ++i) {
        const int l = slm_nearest_int(0.5f * (id * xval[i] - 1));
        L[i] = (int8_t)SLM_MAX(0, SLM_MIN(kmaxq - 1, l));
        u |= L[i] << bits * i;
    }
    const int32_t m = lat->map[u];
    if (m >= 0) return 1;
    best_neighbour_shaped(lat, m, xval, waux, scale, L, avx2, dim, bits, kmaxq);
    return 0;
}

/* sum w x q and sum w q q with q = 2l + 1, in ggml's order. */
SHAPED void fit_sums(const int n, const float *restrict weight, const float *restrict xval, const int8_t *restrict L,
                     float *sumqx, float *sumq2) {
    float sx = 0, s2 = 0;
    for (int i = 0; i < n; ++i) {
        const float w = weight[i];
        const float q = (float)(2 * L[i] + 1);
        sx += w * xval[i] * q;
        s2 += w * q * q;
    }
    *sumqx = sx;
    *sumq2 = s2;
}

SHAPED float search_shaped(const slm_iq_search *p, const float *restrict xval, const float *restrict weight,
                           const float *restrict waux, float scale, float denom, int8_t *restrict L, const int dim,
                           const int bits, const int kmaxq, const int n) {
    const slm_iq_lattice *lat = p->lat;
    const int n_groups = n / dim;
    int8_t Laux[32];
    uint8_t on_grid[8], on_grid_aux[8];
    memset(on_grid, p->refit != SLM_IQ_REFIT_ALL_IF_OFF_GRID, sizeof on_grid);

    float best = 0;
    for (int is = -p->n_trials; is <= p->n_trials; ++is) {
        const float id = ((float)(2 * kmaxq - 1) + (float)is * p->step) / denom;
        const float this_scale = 1 / id;
        for (int k = 0; k < n_groups; ++k) {
            on_grid_aux[k] = (uint8_t)round_group(lat, id, this_scale, xval + dim * k, waux + dim * k, Laux + dim * k,
                                                  p->avx2, dim, bits, kmaxq);
        }
        float sumqx, sumq2;
        fit_sums(n, weight, xval, Laux, &sumqx, &sumq2);
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            scale = sumqx / sumq2;
            best = scale * sumqx;
            memcpy(L, Laux, (size_t)n);
            memcpy(on_grid, on_grid_aux, (size_t)n_groups);
        }
    }

    int n_off_grid = 0;
    for (int k = 0; k < n_groups; ++k) n_off_grid += !on_grid[k];
    if (scale > 0 && (p->refit == SLM_IQ_REFIT_ALWAYS_ALL || n_off_grid > 0)) {
        const float id = 1 / scale;
        for (int k = 0; k < n_groups; ++k) {
            if (p->refit == SLM_IQ_REFIT_OFF_GRID && on_grid[k]) continue;
            round_group(lat, id, scale, xval + dim * k, waux + dim * k, L + dim * k, p->avx2, dim, bits, kmaxq);
        }
        float sumqx, sumq2;
        fit_sums(n, weight, xval, L, &sumqx, &sumq2);
        if (sumq2 > 0) scale = sumqx / sumq2;
    }
    return scale;
}

float slm_iq_search_scale(const slm_iq_search *p, const float *restrict xval, const float *restrict weight,
                          const float *restrict waux, float scale, float denom, int8_t *restrict L) {
    const slm_iq_lattice *lat = p->lat;
    if (lat->dim == 8 && p->n == 32) {
        SLM_ASSERT(p->kmaxq == 3 && lat->bits == 2);
        return search_shaped(p, xval, weight, waux, scale, denom, L, 8, 2, 3, 32);
    }
    if (lat->dim == 8 && p->n == 16) {
        SLM_ASSERT(p->kmaxq == 3 && lat->bits == 2);
        return search_shaped(p, xval, weight, waux, scale, denom, L, 8, 2, 3, 16);
    }
    SLM_ASSERT(lat->dim == 4 && lat->bits == 3 && p->kmaxq == 8 && p->n == 32);
    return search_shaped(p, xval, weight, waux, scale, denom, L, 4, 3, 8, 32);
}

int slm_iq_scale_code(float id, float s, int max) {
    const int l = slm_nearest_int(0.5f * (id * s - 1));
    return SLM_MAX(0, SLM_MIN(max, l));
}

/* ============================ AVX2: 8 neighbours in the lanes
 *
 * Lane j adds the terms of neighbour j in coordinate order from 0 (the scalar sum, operation for
 * operation) and keeps its first strict minimum with its list position; the lanes' winners are then
 * reduced to the least sum, ties to the earliest position: the neighbour the scalar loop picks.
 */
#if SLM_X86_KERNELS
static SLM_AVX2 int nearest_key_avx2(const uint16_t *keys, int n, int dim, int bits, int n_levels, const lane_scan *sc) {
    const __m256i mask = _mm256_set1_epi32((1 << bits) - 1), eight = _mm256_set1_epi32(8);
    const __m128i shift = _mm_cvtsi32_si128(bits);
    const __m256 qv = _mm256_setr_ps(1, 3, 5, 7, 9, 11, 13, 15); /* (float)(2 l + 1) */
    const __m256 scale = _mm256_set1_ps(sc->scale);
    __m256 t[MAX_DIM], xv[MAX_DIM], wv[MAX_DIM];
    for (int i = 0; i < dim; ++i) {
        if (sc->term) {
            /* only the n_levels terms the caller formed (keys hold no other level) */
            const __m256i have = _mm256_cmpgt_epi32(_mm256_set1_epi32(n_levels), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            t[i] = _mm256_maskload_ps(sc->term + SLM_IQ_TERM_STRIDE * i, have);
        } else {
            xv[i] = _mm256_set1_ps(sc->xval[i]);
            wv[i] = _mm256_set1_ps(sc->w[i]);
        }
    }
    __m256 best = _mm256_set1_ps(FLT_MAX);
    __m256i best_pos = _mm256_set1_epi32(-1), pos = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i count = _mm256_set1_epi32(n);
    for (int j = 0; j < n; j += 8) {
        /* past the list end this reads the next list (storage has NB_PAD spare words); those
         * lanes are masked out below */
        __m256i k = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(keys + j)));
        __m256 d2 = _mm256_setzero_ps();
        for (int i = 0; i < dim; ++i) {
            const __m256i l = _mm256_and_si256(k, mask);
            if (sc->term) {
                d2 = _mm256_add_ps(d2, _mm256_permutevar8x32_ps(t[i], l));
            } else { /* d2 += w * diff * diff, diff = scale * q - xval */
                const __m256 diff = _mm256_sub_ps(_mm256_mul_ps(scale, _mm256_permutevar8x32_ps(qv, l)), xv[i]);
                d2 = _mm256_add_ps(d2, _mm256_mul_ps(_mm256_mul_ps(wv[i], diff), diff));
            }
            k = _mm256_srl_epi32(k, shift);
        }
        const __m256 lt = _mm256_and_ps(_mm256_cmp_ps(d2, best, _CMP_LT_OQ),
                                        _mm256_castsi256_ps(_mm256_cmpgt_epi32(count, pos)));
        best = _mm256_blendv_ps(best, d2, lt);
        best_pos = _mm256_castps_si256(
            _mm256_blendv_ps(_mm256_castsi256_ps(best_pos), _mm256_castsi256_ps(pos), lt));
        pos = _mm256_add_epi32(pos, eight);
    }
    /* least lane minimum (no NaN there: only strict < moved it), then the earliest position with it */
    __m256 m = _mm256_min_ps(best, _mm256_permute2f128_ps(best, best, 1));
    m = _mm256_min_ps(m, _mm256_shuffle_ps(m, m, _MM_SHUFFLE(1, 0, 3, 2)));
    m = _mm256_min_ps(m, _mm256_shuffle_ps(m, m, _MM_SHUFFLE(2, 3, 0, 1)));
    const __m256 at_min = _mm256_and_ps(_mm256_cmp_ps(best, m, _CMP_EQ_OQ),
                                        _mm256_castsi256_ps(_mm256_cmpgt_epi32(best_pos, _mm256_set1_epi32(-1))));
    __m256i cand = _mm256_castps_si256(
        _mm256_blendv_ps(_mm256_castsi256_ps(_mm256_set1_epi32(INT32_MAX)), _mm256_castsi256_ps(best_pos), at_min));
    cand = _mm256_min_epi32(cand, _mm256_permute2x128_si256(cand, cand, 1));
    cand = _mm256_min_epi32(cand, _mm256_shuffle_epi32(cand, _MM_SHUFFLE(1, 0, 3, 2)));
    cand = _mm256_min_epi32(cand, _mm256_shuffle_epi32(cand, _MM_SHUFFLE(2, 3, 0, 1)));
    const int p = _mm256_cvtsi256_si32(cand);
    return p == INT32_MAX ? -1 : keys[p];
}
#endif /* SLM_X86_KERNELS */
