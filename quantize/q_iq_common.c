/* q_iq_common.c - the lattices of ggml's iq1/iq2/iq3 grids and the search steps the lattice
 * quantizers share (see q_iq_common.h).
 *
 * Owns: the level view, key map and neighbour lists of each grid, built once on first use under
 * pthread_once into static storage (no allocation, no failure path, nothing mutable outside this
 * file); ggml's sign step, nearest-neighbour step and trial-scale search for iq2_xxs, iq2_xs, iq2_s,
 * iq3_xxs and iq3_s. Neighbour lists hold what iq2xs_init_impl / iq3xs_init_impl compute (the
 * points at the nwant smallest distances, by distance then index), for the keys the quantizers
 * can produce only (levels <= 2 in the 2-bit fields: 3^8 keys instead of ggml's 43692).
 * Must not: reorder float expressions, allocate, print, or know about block layouts.
 */
#include "quantize/q_iq_common.h"

#include <float.h>
#include <pthread.h>
#include <string.h>

#include "core/slm.h"
#include "quantize/quants.h"

#define MAX_DIM 8
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
static uint16_t g_nb_iq2xxs[NB_IQ2_XXS], g_nb_iq2xs[NB_IQ2_XS], g_nb_iq2s[NB_IQ2_S], g_nb_iq1s[NB_IQ1_S];
static uint16_t g_nb_iq3xxs[NB_IQ3_XXS], g_nb_iq3s[NB_IQ3_S];

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

/* Appends the neighbour list of key levels l at nb[*pos]: count, then the points whose squared
 * level distance is among the nwant smallest distinct ones, by distance then index (ggml sorts
 * (d2, index) pairs with its distance 4x ours: same order). */
static void add_neighbours(const lattice_def *d, const uint8_t *level, const int *l, uint16_t *nb, int *pos) {
    static_assert(MAX_GRID <= 65536, "grid indices are stored as uint16_t");
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
            nb[(*pos)++] = (uint16_t)g;
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
    g_lattice[id] = (slm_iq_lattice){d->dim, d->bits, d->grid_size, d->n_keys, level, map, nb};
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

int slm_iq_best_neighbour(const slm_iq_lattice *lat, int32_t m, const float *restrict xval, const float *restrict w,
                          float scale, int8_t *restrict L) {
    SLM_ASSERT(m < 0 && m != SLM_IQ_NO_KEY);
    const uint16_t *nb = lat->neighbours + (-1 - m);
    const int dim = lat->dim, n = nb[0];
    float best_d2 = FLT_MAX;
    int best = -1;
    for (int j = 1; j <= n; ++j) {
        const uint8_t *lv = lat->level + nb[j] * dim;
        float d2 = 0;
        for (int i = 0; i < dim; ++i) {
            const float q = (float)(2 * lv[i] + 1);
            const float diff = scale * q - xval[i];
            d2 += w[i] * diff * diff;
        }
        if (d2 < best_d2) {
            best_d2 = d2;
            best = nb[j];
        }
    }
    /* ggml asserts here when every distance is NaN or >= FLT_MAX (values near the float range);
     * there is no ggml output to match then, so take the first (nearest) neighbour. */
    if (best < 0) best = nb[1];
    const uint8_t *lv = lat->level + best * dim;
    for (int i = 0; i < dim; ++i) L[i] = (int8_t)lv[i];
    return best;
}

/* Rounds one group to levels at inverse scale id; off the grid, takes the nearest neighbour at
 * `scale`. Returns 1 when the rounded key was on the grid. */
static int round_group(const slm_iq_lattice *lat, int kmaxq, float id, float scale, const float *restrict xval,
                       const float *restrict waux, int8_t *restrict L) {
    int u = 0;
    for (int i = 0; i < lat->dim; ++i) {
        const int l = slm_nearest_int(0.5f * (id * xval[i] - 1));
        L[i] = (int8_t)SLM_MAX(0, SLM_MIN(kmaxq - 1, l));
        u |= L[i] << lat->bits * i;
    }
    const int32_t m = lat->map[u];
    if (m >= 0) return 1;
    slm_iq_best_neighbour(lat, m, xval, waux, scale, L);
    return 0;
}

/* sum w x q and sum w q q with q = 2l + 1, in ggml's order. */
static void fit_sums(int n, const float *restrict weight, const float *restrict xval, const int8_t *restrict L,
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

float slm_iq_search_scale(const slm_iq_search *p, const float *restrict xval, const float *restrict weight,
                          const float *restrict waux, float scale, float denom, int8_t *restrict L) {
    const slm_iq_lattice *lat = p->lat;
    const int dim = lat->dim, n_groups = p->n / dim;
    int8_t Laux[32];
    uint8_t on_grid[8], on_grid_aux[8];
    SLM_ASSERT(p->n <= 32 && n_groups <= 8);
    memset(on_grid, p->refit != SLM_IQ_REFIT_ALL_IF_OFF_GRID, sizeof on_grid);

    float best = 0;
    for (int is = -p->n_trials; is <= p->n_trials; ++is) {
        const float id = ((float)(2 * p->kmaxq - 1) + (float)is * p->step) / denom;
        const float this_scale = 1 / id;
        for (int k = 0; k < n_groups; ++k) {
            on_grid_aux[k] =
                (uint8_t)round_group(lat, p->kmaxq, id, this_scale, xval + dim * k, waux + dim * k, Laux + dim * k);
        }
        float sumqx, sumq2;
        fit_sums(p->n, weight, xval, Laux, &sumqx, &sumq2);
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            scale = sumqx / sumq2;
            best = scale * sumqx;
            memcpy(L, Laux, (size_t)p->n);
            memcpy(on_grid, on_grid_aux, (size_t)n_groups);
        }
    }

    int n_off_grid = 0;
    for (int k = 0; k < n_groups; ++k) n_off_grid += !on_grid[k];
    if (scale > 0 && (p->refit == SLM_IQ_REFIT_ALWAYS_ALL || n_off_grid > 0)) {
        const float id = 1 / scale;
        for (int k = 0; k < n_groups; ++k) {
            if (p->refit == SLM_IQ_REFIT_OFF_GRID && on_grid[k]) continue;
            round_group(lat, p->kmaxq, id, scale, xval + dim * k, waux + dim * k, L + dim * k);
        }
        float sumqx, sumq2;
        fit_sums(p->n, weight, xval, L, &sumqx, &sumq2);
        if (sumq2 > 0) scale = sumqx / sumq2;
    }
    return scale;
}

int slm_iq_scale_code(float id, float s, int max) {
    const int l = slm_nearest_int(0.5f * (id * s - 1));
    return SLM_MAX(0, SLM_MIN(max, l));
}
