/* gen_scale.c - writes large-but-valid headers for bench/parse_scale.sh: parse time must grow
 * linearly with the number of entries, and metadata memory must stay bounded by the file.
 *
 * usage: gen_scale gguf-kv N OUT.gguf        N u32 metadata keys "k.0000000" ...
 *        gen_scale gguf-tensors N OUT.gguf   N one-element F32 tensors "t.0000000" ...
 *        gen_scale st N OUT.safetensors      N one-element F32 entries "t.0000000" ...
 *        gen_scale gguf-strarr N OUT.gguf    one key "big": an array of N empty strings
 * Standalone (no libslm): the readers under test must not also write the input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/le.h"

static FILE *g_out;

static void put(const void *p, size_t n) {
    if (fwrite(p, 1, n, g_out) != n) {
        perror("gen_scale: write");
        exit(1);
    }
}
static void put_u32(uint32_t v) { uint8_t b[4]; slm_st_u32(b, v); put(b, 4); }
static void put_u64(uint64_t v) { uint8_t b[8]; slm_st_u64(b, v); put(b, 8); }
static void put_str(const char *s) { put_u64(strlen(s)); put(s, strlen(s)); }
static void put_zeros(size_t n) {
    static const uint8_t z[4096];
    for (; n > sizeof z; n -= sizeof z) put(z, sizeof z);
    put(z, n);
}

static void gguf_head(uint64_t n_tensors, uint64_t n_kv) {
    put_u32(0x46554747u); /* "GGUF" */
    put_u32(3);
    put_u64(n_tensors);
    put_u64(n_kv);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: gen_scale gguf-kv|gguf-tensors|st|gguf-strarr N OUT\n");
        return 2;
    }
    const char *mode = argv[1];
    unsigned long long n = strtoull(argv[2], NULL, 10);
    if (!(g_out = fopen(argv[3], "wb"))) {
        perror(argv[3]);
        return 1;
    }
    char name[32];
    if (!strcmp(mode, "gguf-kv")) {
        gguf_head(0, n);
        for (unsigned long long i = 0; i < n; i++) {
            snprintf(name, sizeof name, "k.%07llu", i);
            put_str(name);
            put_u32(4); /* u32 */
            put_u32((uint32_t)i);
        }
    } else if (!strcmp(mode, "gguf-tensors")) {
        gguf_head(n, 0);
        for (unsigned long long i = 0; i < n; i++) {
            snprintf(name, sizeof name, "t.%07llu", i);
            put_str(name);
            put_u32(1);        /* n_dims */
            put_u64(1);        /* ne[0] */
            put_u32(0);        /* F32 */
            put_u64(i * 32);   /* offset: 4 bytes padded to the default alignment */
        }
        long off = ftell(g_out);
        put_zeros((size_t)((32 - off % 32) % 32) + (size_t)n * 32);
    } else if (!strcmp(mode, "st")) {
        /* header first into memory: its length comes before it */
        size_t cap = (size_t)n * 80 + 16, len = 0;
        char *h = malloc(cap);
        if (!h) return 1;
        h[len++] = '{';
        for (unsigned long long i = 0; i < n; i++)
            len += (size_t)snprintf(h + len, cap - len, "%s\"t.%07llu\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[%llu,%llu]}",
                                    i ? "," : "", i, i * 4, i * 4 + 4);
        h[len++] = '}';
        put_u64(len);
        put(h, len);
        put_zeros((size_t)n * 4);
        free(h);
    } else if (!strcmp(mode, "gguf-strarr")) {
        gguf_head(0, 1);
        put_str("big");
        put_u32(9); /* array */
        put_u32(8); /* of strings */
        put_u64(n);
        put_zeros((size_t)n * 8); /* every length 0 */
    } else {
        fprintf(stderr, "gen_scale: unknown mode '%s'\n", mode);
        return 2;
    }
    if (fclose(g_out)) {
        perror(argv[3]);
        return 1;
    }
    return 0;
}
