/* sha256.c - SHA-256 (sha256.h), the plain FIPS 180-4 rounds. */
#include "core/sha256.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/mapfile.h"
#include "core/mem.h"

static const uint32_t k_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
    0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
    0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
    0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t ror(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void block(uint32_t h[8], const uint8_t *p) {
    uint32_t w[64], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 16; i++) w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = k + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + k_k[i] + w[i];
        uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += k;
}

void slm_sha256_init(slm_sha256 *s) {
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, h0, sizeof h0);
    s->n = 0;
    s->fill = 0;
}

void slm_sha256_update(slm_sha256 *s, const void *data, size_t n) {
    const uint8_t *p = data;
    s->n += n;
    if (s->fill) {
        size_t take = 64 - s->fill < n ? 64 - s->fill : n;
        memcpy(s->buf + s->fill, p, take);
        s->fill += take, p += take, n -= take;
        if (s->fill < 64) return;
        block(s->h, s->buf);
        s->fill = 0;
    }
    for (; n >= 64; p += 64, n -= 64) block(s->h, p);
    memcpy(s->buf, p, n);
    s->fill = n;
}

void slm_sha256_final(slm_sha256 *s, uint8_t digest[32]) {
    uint64_t bits = s->n * 8;
    uint8_t pad[72] = {0x80}, len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)(bits >> (56 - 8 * i));
    slm_sha256_update(s, pad, (s->fill < 56 ? 56 : 120) - s->fill);
    slm_sha256_update(s, len, 8);
    for (int i = 0; i < 32; i++) digest[i] = (uint8_t)(s->h[i / 4] >> (24 - 8 * (i % 4)));
}

void slm_sha256_hex(slm_sha256 *s, char hex[65]) {
    uint8_t d[32];
    slm_sha256_final(s, d);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

static int hash_file(const char *path, char hex[65], slm_err *err) {
    slm_map m;
    slm_sha256 s;
    SLM_TRY(slm_map_open(&m, path, err));
    slm_sha256_init(&s);
    const size_t step = (size_t)16 << 20;
    for (size_t at = 0; at < m.size; at += step) {
        size_t n = m.size - at < step ? m.size - at : step;
        slm_sha256_update(&s, m.data + at, n);
        slm_map_advise_dontneed(&m, at, n);
    }
    slm_sha256_hex(&s, hex);
    slm_map_close(&m);
    return SLM_OK;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int hash_dir(const char *dir, char hex[65], slm_err *err) {
    DIR *d = opendir(dir);
    if (!d) return slm_errf(err, SLM_E_IO, "%s: cannot read the folder", dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = SLM_OK;
    for (struct dirent *e; !rc && (e = readdir(d));) {
        char p[4096];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (e->d_name[0] == '.' || stat(p, &st) || !S_ISREG(st.st_mode)) continue;
        if (n == cap) rc = slm_realloc((void **)&names, (cap = cap ? 2 * cap : 16) * sizeof *names, err, "file names");
        if (!rc && !(names[n] = strdup(e->d_name))) rc = slm_errf(err, SLM_E_NOMEM, "file names: out of memory");
        if (!rc) n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, by_name);
    slm_sha256 s;
    slm_sha256_init(&s);
    for (size_t i = 0; !rc && i < n; i++) {
        char p[4096], h[65];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        rc = hash_file(p, h, err);
        slm_sha256_update(&s, h, 64);
        slm_sha256_update(&s, "  ", 2);
        slm_sha256_update(&s, names[i], strlen(names[i]));
        slm_sha256_update(&s, "\n", 1);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    slm_free(names);
    if (!rc) slm_sha256_hex(&s, hex);
    return rc;
}

int slm_sha256_path(const char *path, char hex[65], slm_err *err) {
    struct stat st;
    if (stat(path, &st)) return slm_errf(err, SLM_E_IO, "%s: cannot stat", path);
    return S_ISDIR(st.st_mode) ? hash_dir(path, hex, err) : hash_file(path, hex, err);
}
