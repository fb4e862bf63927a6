/* gen_iq_grids.c - writes quantize/q_iq_grids.c: the lattice grids of ggml's iq1/iq2/iq3 formats
 * and the even-parity sign table, recovered from ggml itself. Not part of the normal build.
 *
 * Nothing here knows a table entry: every entry is read back from ggml's own dequantizer
 * (ggml_get_type_traits(type)->to_float of libggml-base) applied to crafted blocks whose scale
 * makes the block's multiplier exactly 1 and whose signs are all positive, so that each output
 * float is a grid coordinate (iq1_s: coordinate + IQ1S_DELTA). The sign table comes from iq2_xxs
 * blocks on a grid point with no zero coordinate, one block group per 7-bit sign index.
 * Build and run from the repo root:
 *   cc -O2 -std=c11 -I/tmp/llcpp/include tools/gen_iq_grids.c -L/tmp/llcpp/lib -lggml-base \
 *     -Wl,-rpath,/tmp/llcpp/lib -o /tmp/gen_iq_grids && /tmp/gen_iq_grids > quantize/q_iq_grids.c
 */
#include <ggml.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QK_K 256

static void die(const char *msg, long a) {
    fprintf(stderr, "gen_iq_grids: %s (%ld)\n", msg, a);
    exit(1);
}

static void put_f16(uint8_t *p, float v) {
    ggml_fp16_t h = ggml_fp32_to_fp16(v);
    memcpy(p, &h, 2);
}

/* ggml's to_float of one super-block (QK_K values). */
static void dequant(enum ggml_type type, const uint8_t *block, float *y) {
    const struct ggml_type_traits *tr = ggml_get_type_traits(type);
    if (!tr || !tr->to_float || tr->blck_size != QK_K) die("no to_float for type", type);
    tr->to_float(block, y, QK_K);
}

/* A float that must be an integer in [lo, hi] (a grid coordinate). */
static int coord(float v, int lo, int hi) {
    if (v != floorf(v) || v < lo || v > hi) die("dequantized value is not a grid coordinate", (long)(v * 1000));
    return (int)v;
}

/* 8 coordinates of 0..255 (iq2) or -1..1 (iq1_s) as the little-endian bytes of a u64. */
static uint64_t pack8(const int *c) {
    uint64_t v = 0;
    for (int j = 0; j < 8; j++) v |= (uint64_t)(uint8_t)c[j] << 8 * j;
    return v;
}

static uint32_t pack4(const int *c) {
    uint32_t v = 0;
    for (int j = 0; j < 4; j++) v |= (uint32_t)(uint8_t)c[j] << 8 * j;
    return v;
}

/* iq2_xxs: d = 8, 4-bit scale 0 -> multiplier 8 * 0.5 * 0.25 = 1. Group g of the block (8 values)
 * uses grid byte g%4 of sub-block g/4 and sign index signs[g]. */
static void iq2xxs_block(uint8_t *b, const int *grid_idx, const int *signs) {
    memset(b, 0, 66);
    put_f16(b, 8.0f);
    for (int ib = 0; ib < 8; ib++) {
        uint32_t aux[2] = {0, 0};
        for (int l = 0; l < 4; l++) {
            aux[0] |= (uint32_t)grid_idx[4 * ib + l] << 8 * l;
            aux[1] |= (uint32_t)signs[4 * ib + l] << 7 * l;
        }
        memcpy(b + 2 + 8 * ib, aux, 8);
    }
}

static void gen_iq2xxs(uint64_t *grid) {
    uint8_t b[66];
    float y[QK_K];
    int idx[32], zero[32] = {0};
    for (int blk = 0; blk < 256 / 32; blk++) {
        for (int g = 0; g < 32; g++) idx[g] = 32 * blk + g;
        iq2xxs_block(b, idx, zero);
        dequant(GGML_TYPE_IQ2_XXS, b, y);
        for (int g = 0; g < 32; g++) {
            int c[8];
            for (int j = 0; j < 8; j++) c[j] = coord(y[8 * g + j], 0, 255);
            grid[idx[g]] = pack8(c);
        }
    }
}

/* Sign byte of each 7-bit index: bit j set when value j comes out negative. */
static void gen_ksigns(const uint64_t *iq2xxs_grid, uint8_t *ksigns) {
    int g0 = -1; /* a grid point with no zero coordinate, so every sign is visible */
    for (int g = 0; g < 256 && g0 < 0; g++) {
        int ok = 1;
        for (int j = 0; j < 8; j++) ok &= ((iq2xxs_grid[g] >> 8 * j) & 0xff) != 0;
        if (ok) g0 = g;
    }
    if (g0 < 0) die("no iq2_xxs grid point without zero coordinates", 0);
    uint8_t b[66];
    float y[QK_K];
    int idx[32], s[32];
    for (int g = 0; g < 32; g++) idx[g] = g0;
    for (int blk = 0; blk < 128 / 32; blk++) {
        for (int g = 0; g < 32; g++) s[g] = 32 * blk + g;
        iq2xxs_block(b, idx, s);
        dequant(GGML_TYPE_IQ2_XXS, b, y);
        for (int g = 0; g < 32; g++) {
            uint8_t m = 0;
            for (int j = 0; j < 8; j++) {
                const float mag = (float)((iq2xxs_grid[g0] >> 8 * j) & 0xff);
                if (y[8 * g + j] == -mag) {
                    m |= (uint8_t)(1u << j);
                } else if (y[8 * g + j] != mag) {
                    die("iq2_xxs sign test: unexpected value", s[g]);
                }
            }
            ksigns[s[g]] = m;
        }
    }
}

/* iq2_xs: qs[32] u16 = grid index | sign index << 9, scales 0, d = 8 -> multiplier 1. */
static void gen_iq2xs(uint64_t *grid) {
    uint8_t b[74];
    float y[QK_K];
    for (int blk = 0; blk < 512 / 32; blk++) {
        memset(b, 0, sizeof b);
        put_f16(b, 8.0f);
        for (int g = 0; g < 32; g++) {
            const uint16_t q = (uint16_t)(32 * blk + g);
            memcpy(b + 2 + 2 * g, &q, 2);
        }
        dequant(GGML_TYPE_IQ2_XS, b, y);
        for (int g = 0; g < 32; g++) {
            int c[8];
            for (int j = 0; j < 8; j++) c[j] = coord(y[8 * g + j], 0, 255);
            grid[32 * blk + g] = pack8(c);
        }
    }
}

/* iq2_s: d, qs[32] grid low bytes, qs[32..64) signs, qh[8] (2 high bits per group), scales[8]. */
static void gen_iq2s(uint64_t *grid) {
    uint8_t b[82];
    float y[QK_K];
    for (int blk = 0; blk < 1024 / 32; blk++) {
        memset(b, 0, sizeof b);
        put_f16(b, 8.0f);
        for (int g = 0; g < 32; g++) {
            const int idx = 32 * blk + g;
            b[2 + g] = (uint8_t)(idx & 0xff);
            b[2 + 64 + g / 4] |= (uint8_t)((idx >> 8) << 2 * (g % 4));
        }
        dequant(GGML_TYPE_IQ2_S, b, y);
        for (int g = 0; g < 32; g++) {
            int c[8];
            for (int j = 0; j < 8; j++) c[j] = coord(y[8 * g + j], 0, 255);
            grid[32 * blk + g] = pack8(c);
        }
    }
}

/* iq3_xxs: d = 4, scale 0 -> 4 * 0.5 * 0.5 = 1; qs[64] grid bytes, value 4p+j from qs[p]. */
static void gen_iq3xxs(uint32_t *grid) {
    uint8_t b[98];
    float y[QK_K];
    for (int blk = 0; blk < 256 / 64; blk++) {
        memset(b, 0, sizeof b);
        put_f16(b, 4.0f);
        for (int p = 0; p < 64; p++) b[2 + p] = (uint8_t)(64 * blk + p);
        dequant(GGML_TYPE_IQ3_XXS, b, y);
        for (int p = 0; p < 64; p++) {
            int c[4];
            for (int j = 0; j < 4; j++) c[j] = coord(y[4 * p + j], 0, 255);
            grid[64 * blk + p] = pack4(c);
        }
    }
}

/* iq3_s: d = 1, scales 0 -> 1 * (1 + 2*0) = 1; index of qs[p] = qs[p] | bit p%8 of qh[p/8] << 8. */
static void gen_iq3s(uint32_t *grid) {
    uint8_t b[110];
    float y[QK_K];
    for (int blk = 0; blk < 512 / 64; blk++) {
        memset(b, 0, sizeof b);
        put_f16(b, 1.0f);
        for (int p = 0; p < 64; p++) {
            const int idx = 64 * blk + p;
            b[2 + p] = (uint8_t)(idx & 0xff);
            b[2 + 64 + p / 8] |= (uint8_t)((idx >> 8) << (p % 8));
        }
        dequant(GGML_TYPE_IQ3_S, b, y);
        for (int p = 0; p < 64; p++) {
            int c[4];
            for (int j = 0; j < 4; j++) c[j] = coord(y[4 * p + j], 0, 255);
            grid[64 * blk + p] = pack4(c);
        }
    }
}

/* iq1_s: d = 1, 3-bit scale 0 -> multiplier 1, delta bit clear -> value = coordinate + 0.125
 * (exact); index = qs[4ib+l] | ((qh[ib] >> 3l) & 7) << 8. */
static void gen_iq1s(uint64_t *grid) {
    uint8_t b[50];
    float y[QK_K];
    for (int blk = 0; blk < 2048 / 32; blk++) {
        memset(b, 0, sizeof b);
        put_f16(b, 1.0f);
        for (int ib = 0; ib < 8; ib++) {
            uint16_t qh = 0;
            for (int l = 0; l < 4; l++) {
                const int idx = 32 * blk + 4 * ib + l;
                b[2 + 4 * ib + l] = (uint8_t)(idx & 0xff);
                qh |= (uint16_t)((idx >> 8) << 3 * l);
            }
            memcpy(b + 2 + 32 + 2 * ib, &qh, 2);
        }
        dequant(GGML_TYPE_IQ1_S, b, y);
        for (int g = 0; g < 32; g++) {
            int c[8];
            for (int j = 0; j < 8; j++) c[j] = coord(y[8 * g + j] - 0.125f, -1, 1);
            grid[32 * blk + g] = pack8(c);
        }
    }
}

static void emit_u64(const char *name, const uint64_t *v, int n) {
    printf("\nconst uint64_t %s[%d] = {\n", name, n);
    for (int i = 0; i < n; i++) printf("%s0x%016llx,%s", i % 4 ? " " : "    ", (unsigned long long)v[i], i % 4 == 3 ? "\n" : "");
    printf("};\n");
}

static void emit_u32(const char *name, const uint32_t *v, int n) {
    printf("\nconst uint32_t %s[%d] = {\n", name, n);
    for (int i = 0; i < n; i++) printf("%s0x%08x,%s", i % 8 ? " " : "    ", v[i], i % 8 == 7 ? "\n" : "");
    printf("};\n");
}

static void emit_u8(const char *name, const uint8_t *v, int n) {
    printf("\nconst uint8_t %s[%d] = {\n", name, n);
    for (int i = 0; i < n; i++) printf("%s0x%02x,%s", i % 16 ? " " : "    ", v[i], i % 16 == 15 ? "\n" : "");
    printf("};\n");
}

int main(void) {
    static uint64_t iq2xxs[256], iq2xs[512], iq2s[1024], iq1s[2048];
    static uint32_t iq3xxs[256], iq3s[512];
    static uint8_t ksigns[128];
    gen_iq2xxs(iq2xxs);
    gen_ksigns(iq2xxs, ksigns);
    gen_iq2xs(iq2xs);
    gen_iq2s(iq2s);
    gen_iq3xxs(iq3xxs);
    gen_iq3s(iq3s);
    gen_iq1s(iq1s);

    printf("/* q_iq_grids.c - GENERATED by tools/gen_iq_grids.c; do not edit.\n"
           " *\n"
           " * The lattice grids of ggml's iq1/iq2/iq3 block formats (grid point -> 8 or 4 coordinates, one\n"
           " * byte each, coordinate j in byte j; iq1s coordinates are int8 -1, 0, 1) and the 7-bit -> 8-bit\n"
           " * even-parity sign table. Every entry was read back from ggml %s's dequantizers\n"
           " * (libggml-base to_float on crafted blocks with multiplier 1 and positive signs).\n"
           " * Regenerate (repo root):\n"
           " *   cc -O2 -std=c11 -I/tmp/llcpp/include tools/gen_iq_grids.c -L/tmp/llcpp/lib -lggml-base \\\n"
           " *     -Wl,-rpath,/tmp/llcpp/lib -o /tmp/gen_iq_grids && /tmp/gen_iq_grids > quantize/q_iq_grids.c\n"
           " * tools/check_iq_vs_ggml.c checks slm's dequantizers on these tables against ggml's.\n"
           " */\n"
           "#include \"quantize/q_iq_common.h\"\n",
           ggml_version());
    emit_u8("slm_ksigns_iq2xs", ksigns, 128);
    emit_u64("slm_iq2xxs_grid", iq2xxs, 256);
    emit_u64("slm_iq2xs_grid", iq2xs, 512);
    emit_u64("slm_iq2s_grid", iq2s, 1024);
    emit_u32("slm_iq3xxs_grid", iq3xxs, 256);
    emit_u32("slm_iq3s_grid", iq3s, 512);
    emit_u64("slm_iq1s_grid", iq1s, 2048);
    return 0;
}
