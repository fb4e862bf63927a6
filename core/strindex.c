/* strindex.c - open addressing with linear probing over 64-bit slots.
 *
 * A slot holds the top 32 bits of the name's hash and pos + 1: the table position is the
 * top log2(cap) bits of the hash, so growing rehashes from the slots alone, and a probe
 * compares names only when 32 hash bits agree. The load stays at most 1/2.
 * Names come from files, so the hash is SipHash-1-3 under a random per-index key: crafted
 * names cannot all land in one probe chain (hash flooding would make the parsers quadratic
 * again). The key changes timing only, never a result.
 */
#include "strindex.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "le.h"
#include "mem.h"

#define MIN_CAP 16
#define MAX_NAMES ((size_t)1 << 31) /* cap <= 2^32: the table index fits the 32 stored bits */

static uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

static void sipround(uint64_t v[4]) {
    v[0] += v[1]; v[1] = rotl(v[1], 13); v[1] ^= v[0]; v[0] = rotl(v[0], 32);
    v[2] += v[3]; v[3] = rotl(v[3], 16); v[3] ^= v[2];
    v[0] += v[3]; v[3] = rotl(v[3], 21); v[3] ^= v[0];
    v[2] += v[1]; v[1] = rotl(v[1], 17); v[1] ^= v[2]; v[2] = rotl(v[2], 32);
}

/* SipHash-1-3 (Aumasson & Bernstein; one compression round, three finalization rounds). */
static uint64_t siphash13(const uint64_t k[2], const uint8_t *m, size_t len) {
    uint64_t v[4] = {0x736f6d6570736575ull ^ k[0], 0x646f72616e646f6dull ^ k[1], 0x6c7967656e657261ull ^ k[0],
                     0x7465646279746573ull ^ k[1]};
    size_t full = len - len % 8;
    for (size_t i = 0; i < full; i += 8) {
        uint64_t x = slm_le_u64(m + i);
        v[3] ^= x;
        sipround(v);
        v[0] ^= x;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t i = 0; i < len % 8; i++) b |= (uint64_t)m[full + i] << (8 * i);
    v[3] ^= b;
    sipround(v);
    v[0] ^= b;
    v[2] ^= 0xff;
    sipround(v);
    sipround(v);
    sipround(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

static uint32_t hash_hi(const slm_strindex *ix, const char *name) {
    return (uint32_t)(siphash13(ix->key, (const uint8_t *)name, strlen(name)) >> 32);
}

static size_t home(uint32_t h, size_t cap) {
    int bits = __builtin_ctzll((unsigned long long)cap); /* cap is a power of two in [16, 2^32] */
    return (size_t)(h >> (32 - bits));
}

static void seed(slm_strindex *ix) {
    if (getrandom(ix->key, sizeof ix->key, GRND_NONBLOCK) == (ssize_t)sizeof ix->key) return;
    struct timespec ts; /* no entropy yet (early boot): anything that differs between runs */
    clock_gettime(CLOCK_REALTIME, &ts);
    ix->key[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)ix;
    ix->key[1] = (uint64_t)ts.tv_sec * 0xc2b2ae3d27d4eb4full ^ (uint64_t)(uintptr_t)&ts;
}

static void place(uint64_t *slots, size_t cap, uint64_t slot) {
    size_t i = home((uint32_t)(slot >> 32), cap);
    while (slots[i]) i = (i + 1) & (cap - 1);
    slots[i] = slot;
}

static int grow(slm_strindex *ix, slm_err *err) {
    size_t cap = ix->cap ? ix->cap * 2 : MIN_CAP;
    uint64_t *slots;
    SLM_TRY(slm_calloc((void **)&slots, cap, sizeof(uint64_t), err, "name index"));
    if (!ix->cap) seed(ix);
    for (size_t i = 0; i < ix->cap; i++)
        if (ix->slots[i]) place(slots, cap, ix->slots[i]);
    slm_free(ix->slots);
    ix->slots = slots;
    ix->cap = cap;
    return SLM_OK;
}

/* Slot index holding name, or of the empty slot where it would go (*found says which). */
static size_t probe(const slm_strindex *ix, const char *name, uint32_t h, slm_strindex_key key, const void *ctx, int *found) {
    size_t i = home(h, ix->cap);
    for (; ix->slots[i]; i = (i + 1) & (ix->cap - 1)) {
        uint64_t s = ix->slots[i];
        if ((uint32_t)(s >> 32) == h && !strcmp(key(ctx, (size_t)(uint32_t)s - 1), name)) {
            *found = 1;
            return i;
        }
    }
    *found = 0;
    return i;
}

int slm_strindex_reserve(slm_strindex *ix, size_t n, slm_err *err) {
    if (n >= MAX_NAMES - 1) return slm_errf(err, SLM_E_NOMEM, "more than 2^31 names in one index");
    while (2 * (n + 1) > ix->cap) SLM_TRY(grow(ix, err));
    return SLM_OK;
}

int slm_strindex_add(slm_strindex *ix, const char *name, size_t pos, slm_strindex_key key, const void *ctx, size_t *dup,
                     slm_err *err) {
    *dup = SLM_STRINDEX_NONE;
    if (ix->n >= MAX_NAMES - 1 || pos >= UINT32_MAX - 1) return slm_errf(err, SLM_E_NOMEM, "more than 2^31 names in one index");
    if (2 * (ix->n + 1) > ix->cap) SLM_TRY(grow(ix, err));
    uint32_t h = hash_hi(ix, name);
    int found;
    size_t i = probe(ix, name, h, key, ctx, &found);
    if (found) {
        *dup = (size_t)(uint32_t)ix->slots[i] - 1;
        return SLM_OK;
    }
    ix->slots[i] = (uint64_t)h << 32 | (uint64_t)(pos + 1);
    ix->n++;
    return SLM_OK;
}

size_t slm_strindex_find(const slm_strindex *ix, const char *name, slm_strindex_key key, const void *ctx) {
    if (!ix->n) return SLM_STRINDEX_NONE;
    int found;
    size_t i = probe(ix, name, hash_hi(ix, name), key, ctx, &found);
    return found ? (size_t)(uint32_t)ix->slots[i] - 1 : SLM_STRINDEX_NONE;
}

void slm_strindex_clear(slm_strindex *ix) {
    if (ix->slots) memset(ix->slots, 0, ix->cap * sizeof(uint64_t));
    ix->n = 0;
}

void slm_strindex_free(slm_strindex *ix) {
    slm_free(ix->slots);
    memset(ix, 0, sizeof(*ix));
}
