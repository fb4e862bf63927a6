/* rng.h - seeded, portable 64-bit PRNG (splitmix64 seeding + xorshift64*).
 * Used for synthetic data, test inputs and (later) calibration sampling; seeds are explicit.
 */
#ifndef SLM_RNG_H
#define SLM_RNG_H

#include <math.h>
#include <stdint.h>

typedef struct slm_rng { uint64_t s; } slm_rng;

static inline uint64_t slm_splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static inline void slm_rng_seed(slm_rng *r, uint64_t seed) { r->s = slm_splitmix64(&seed) | 1; }
static inline uint64_t slm_rng_u64(slm_rng *r) {
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545f4914f6cdd1dull;
}
/* Uniform in [0, 1). */
static inline double slm_rng_uniform(slm_rng *r) { return (double)(slm_rng_u64(r) >> 11) * 0x1p-53; }
/* Standard normal (Box-Muller). */
static inline double slm_rng_normal(slm_rng *r) {
    double u1 = slm_rng_uniform(r), u2 = slm_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

#endif
