/* q_iq_common.h - internals shared by the lattice quantizers q_iq1.c, q_iq2.c, q_iq3.c; not an API
 * (nothing outside quantize/ includes it).
 *
 * Owns: the declarations of the generated grid tables (q_iq_grids.c), the lattice view of a grid
 * with the key -> grid point map and neighbour lists that ggml builds in iq2xs_init_impl /
 * iq3xs_init_impl (built here on first use, q_iq_common.c), and the pieces of ggml's search that
 * iq2_xxs, iq2_xs, iq2_s, iq3_xxs and iq3_s share: sign extraction, the nearest neighbour on the
 * grid, and the trial-scale search. Every float expression keeps ggml's order (no FMA).
 */
#ifndef SLM_Q_IQ_COMMON_H
#define SLM_Q_IQ_COMMON_H

#include <stdint.h>

/* Generated from ggml's dequantizers (tools/gen_iq_grids.c). Coordinate j of point g is byte j
 * of entry g (little-endian); iq1s coordinates are int8 -1, 0, 1. */
extern const uint8_t slm_ksigns_iq2xs[128]; /* 7-bit sign index -> 8 sign bits, even parity */
extern const uint64_t slm_iq2xxs_grid[256];
extern const uint64_t slm_iq2xs_grid[512];
extern const uint64_t slm_iq2s_grid[1024];
extern const uint32_t slm_iq3xxs_grid[256];
extern const uint32_t slm_iq3s_grid[512];
extern const uint64_t slm_iq1s_grid[2048];

/* The grids ggml quantizes to; IQ1_S and IQ1_M share one (ggml's iq2_data index 2). */
typedef enum slm_iq_grid {
    SLM_IQ_GRID_IQ2_XXS,
    SLM_IQ_GRID_IQ2_XS,
    SLM_IQ_GRID_IQ2_S,
    SLM_IQ_GRID_IQ1_S,
    SLM_IQ_GRID_IQ3_XXS,
    SLM_IQ_GRID_IQ3_S,
    SLM_IQ_GRID_COUNT
} slm_iq_grid;

/* A grid as the quantizers see it. Coordinate values are replaced by their level l (rank of the
 * value among the grid's distinct values: 0..2 for iq2/iq1, 0..7 for iq3), ggml's "2l + 1"
 * positions. A key packs the levels of one group, `bits` bits per coordinate, coordinate 0 lowest.
 * map[key] >= 0: the key is grid point map[key]; map[key] < 0: it is not on the grid, and its
 * neighbour list starts at neighbours[-1 - map[key]]: a count, then the grid points at the
 * `nwant` smallest distances from it (ggml's nwant), by distance then index, each given by its key.
 * Keys with a level the quantizers never produce (3 in a 2-bit field) map to SLM_IQ_NO_KEY. */
typedef struct slm_iq_lattice {
    int dim;                  /* coordinates per point: 8 (iq2, iq1) or 4 (iq3) */
    int bits;                 /* bits per coordinate in a key: 2 or 3 */
    int grid_size;            /* points */
    int n_levels;             /* distinct coordinate values: 3 or 8 */
    int n_keys;               /* valid keys are < n_keys */
    const uint8_t *level;     /* [grid_size][dim] */
    const int32_t *map;       /* [n_keys] */
    const uint16_t *neighbours; /* lists: count, then the neighbours' keys */
} slm_iq_lattice;

#define SLM_IQ_NO_KEY INT32_MIN

/* The lattice of a grid, built on the first call (thread-safe: pthread_once; later calls are a
 * load). Never fails: its memory is static. */
const slm_iq_lattice *slm_iq_lattice_get(slm_iq_grid grid);

/* Level of coordinate i in a key. */
static inline int slm_iq_key_level(const slm_iq_lattice *lat, int key, int i) {
    return (key >> lat->bits * i) & ((1 << lat->bits) - 1);
}

/* Key of dim levels. */
static inline int slm_iq_key(const slm_iq_lattice *lat, const int8_t *L) {
    int u = 0;
    for (int i = 0; i < lat->dim; ++i) u |= L[i] << lat->bits * i;
    return u;
}

/* The grid point of a group whose levels L are known to be on the grid (ggml aborts otherwise:
 * "found point not on grid"; the searches below never produce such an L). */
int slm_iq_grid_index(const slm_iq_lattice *lat, const int8_t *L);

/* The "sign" step of ggml's iq2_xxs/iq2_xs/iq3_xxs: xval[i] = x[i] (x[i] >= 0) or -x[i]; bit i of the
 * result marks the negated ones. With an odd number of them, the value of least weight*x*x has its
 * bit toggled and its xval negated, so the pattern has even parity and 7 bits carry it. 8 values. */
uint8_t slm_iq_signs_even(const float *restrict x, const float *restrict weight, float *restrict xval);
/* The same with all 8 bits (iq2_s, iq3_s): no parity fix. */
uint8_t slm_iq_signs_all(const float *restrict x, float *restrict xval);

/* The neighbour of an off-grid key (map value m < 0) with the least sum over coordinates i of
 * term[SLM_IQ_TERM_STRIDE * i + level_i], summed from 0 in coordinate order, the first in list order
 * on ties: ggml's neighbour searches, whose distance adds one term per coordinate that depends only
 * on the coordinate and its level. term rows hold the lat->n_levels levels (the rest is never read).
 * Returns its key, or -1 when every sum is NaN or >= FLT_MAX.
 * avx2 (only when slm_quant_use_avx2 said so): 8 neighbours per step, the same sums and choice. */
#define SLM_IQ_TERM_STRIDE 8
int slm_iq_nearest_key(const slm_iq_lattice *lat, int32_t m, const float *restrict term, int avx2);

/* Which groups ggml re-rounds at the fitted scale after the trial scales. */
typedef enum slm_iq_refit {
    SLM_IQ_REFIT_ALWAYS_ALL,      /* iq2_xxs: always (scale > 0), every group */
    SLM_IQ_REFIT_OFF_GRID,        /* iq2_xs, iq2_s, iq3_xxs: when the best trial had groups off the grid, those */
    SLM_IQ_REFIT_ALL_IF_OFF_GRID, /* iq3_s: the same condition, every group; no trial counts as off the grid */
} slm_iq_refit;

typedef struct slm_iq_search {
    const slm_iq_lattice *lat;
    int n;                        /* values in a sub-block: 16 or 32 (n / dim groups) */
    int kmaxq;                    /* levels per coordinate: 3 (iq2) or 8 (iq3) */
    int n_trials;                 /* trial inverse scales (2 kmaxq - 1 + is * step) / denom, |is| <= n_trials */
    float step;
    slm_iq_refit refit;
    int avx2;                     /* neighbour searches 8 at a time (slm_quant_use_avx2) */
} slm_iq_search;

/* The scale search of ggml's iq2/iq3 quantize_row_*_impl for one sub-block, after the signs: for
 * each trial scale round every group to levels (neighbour search when off the grid), keep the
 * least-squares scale of the best trial (sumqx^2 / sumq2, weights `weight`), then re-round at it
 * as `refit` says and fit once more. xval >= 0 (but one negated value per odd-sign group), waux =
 * sqrt(weight) for the neighbour search, `scale` the start value (returned if no trial wins). L gets
 * the levels (n values, on the grid). Returns the scale, which may be negative (the caller flips). */
float slm_iq_search_scale(const slm_iq_search *p, const float *restrict xval, const float *restrict weight,
                          const float *restrict waux, float scale, float denom, int8_t *restrict L);

/* ggml's sub-block scale code nearest_int(0.5 * (id * s - 1)) clamped to [0, max]. */
int slm_iq_scale_code(float id, float s, int max);

#endif
