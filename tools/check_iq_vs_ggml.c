/* check_iq_vs_ggml.c - slm's lattice quants (IQ2_XXS IQ2_XS IQ2_S IQ3_XXS IQ3_S IQ1_S IQ1_M) against
 * ggml itself, far beyond the committed golden cases. Not part of the normal build or `make check`.
 *
 *  1. dequantization: every grid index in every group slot of crafted blocks (the generated tables),
 *     then random blocks (random bytes: all sign indices and scales; the fp16 scale kept finite but
 *     for IQ1_M), slm_dequantize_rows vs ggml's to_float, as bits;
 *  2. quantization: random rows of several distributions (and a few with zero sub-blocks, equal
 *     values, tiny values), with a random importance vector and, where ggml accepts it, without:
 *     slm_quantize_chunk_kernel (scalar and auto) vs ggml_quantize_chunk, byte for byte.
 * Build and run (repo root; slm's library first: make build/libslm.a):
 *   cc -O2 -std=c11 -D_DEFAULT_SOURCE -I. -I/tmp/llcpp/include tools/check_iq_vs_ggml.c build/libslm.a \
 *     -L/tmp/llcpp/lib -lggml-base -Wl,-rpath,/tmp/llcpp/lib -fopenmp -lm -o build/check_iq_vs_ggml
 *   ./build/check_iq_vs_ggml [rows_per_distribution=64] [seed=1]
 * Exit status 1 on the first type with a difference (the first differing block is printed).
 */
#include <ggml.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/rng.h"
#include "quantize/quants.h"

#define QK_K 256

static const int k_types[] = {SLM_DTYPE_IQ2_XXS, SLM_DTYPE_IQ2_XS, SLM_DTYPE_IQ2_S, SLM_DTYPE_IQ3_XXS,
                              SLM_DTYPE_IQ3_S,   SLM_DTYPE_IQ1_S,  SLM_DTYPE_IQ1_M};

static int report(const char *what, int type, const void *a, const void *b, size_t n, size_t bb) {
    if (!memcmp(a, b, n)) return 0;
    size_t i = 0;
    while (!memcmp((const char *)a + i * bb, (const char *)b + i * bb, bb)) i++;
    printf("FAIL %s %s: block %zu differs\n  ggml:", slm_dtype_name(type), what, i);
    for (size_t j = 0; j < bb; j++) printf("%02x", ((const uint8_t *)a)[i * bb + j]);
    printf("\n  slm: ");
    for (size_t j = 0; j < bb; j++) printf("%02x", ((const uint8_t *)b)[i * bb + j]);
    printf("\n");
    return 1;
}

/* Dequantizes nblk blocks with both and compares the floats as bits. */
static int check_dequant(int type, const uint8_t *blocks, int nblk, const char *what) {
    const size_t n = (size_t)nblk * QK_K;
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
    ggml_get_type_traits((enum ggml_type)type)->to_float(blocks, a, (int64_t)n);
    slm_dequantize_rows(type, blocks, b, 1, (int64_t)n);
    const int bad = report(what, type, a, b, n * sizeof(float), QK_K * sizeof(float));
    free(a);
    free(b);
    return bad;
}

/* Position of the fp16 scale in a block, or -1 for iq1_m (spread over its scales). */
static int d_offset(int type) { return type == SLM_DTYPE_IQ1_M ? -1 : 0; }

/* Grid points and group slots of a type: 8-value groups (32 per block) or 4-value groups (iq3: 64). */
static int grid_size(int type) {
    switch (type) {
    case SLM_DTYPE_IQ2_XXS: case SLM_DTYPE_IQ3_XXS: return 256;
    case SLM_DTYPE_IQ2_XS: case SLM_DTYPE_IQ3_S: return 512;
    case SLM_DTYPE_IQ2_S: return 1024;
    default: return 2048;
    }
}

static int n_slots(int type) { return type == SLM_DTYPE_IQ3_XXS || type == SLM_DTYPE_IQ3_S ? 64 : 32; }

/* Writes grid index g into group slot s of block b (the other bits of the block stay). */
static void put_index(int type, uint8_t *b, int s, int g) {
    uint16_t u;
    switch (type) {
    case SLM_DTYPE_IQ2_XXS: b[2 + 8 * (s / 4) + s % 4] = (uint8_t)g; break;
    case SLM_DTYPE_IQ2_XS:
        memcpy(&u, b + 2 + 2 * s, 2);
        u = (uint16_t)((u & ~511u) | (unsigned)g);
        memcpy(b + 2 + 2 * s, &u, 2);
        break;
    case SLM_DTYPE_IQ2_S:
        b[2 + s] = (uint8_t)g;
        b[2 + 64 + s / 4] = (uint8_t)((b[2 + 64 + s / 4] & ~(3u << 2 * (s % 4))) | (unsigned)(g >> 8) << 2 * (s % 4));
        break;
    case SLM_DTYPE_IQ3_XXS: b[2 + s] = (uint8_t)g; break;
    case SLM_DTYPE_IQ3_S:
        b[2 + s] = (uint8_t)g;
        b[2 + 64 + s / 8] = (uint8_t)((b[2 + 64 + s / 8] & ~(1u << s % 8)) | (unsigned)(g >> 8) << s % 8);
        break;
    case SLM_DTYPE_IQ1_S:
        b[2 + s] = (uint8_t)g;
        memcpy(&u, b + 2 + 32 + 2 * (s / 4), 2);
        u = (uint16_t)((u & ~(7u << 3 * (s % 4))) | (unsigned)(g >> 8) << 3 * (s % 4));
        memcpy(b + 2 + 32 + 2 * (s / 4), &u, 2);
        break;
    default: /* IQ1_M */
        b[s] = (uint8_t)g;
        b[32 + s / 2] = (uint8_t)((b[32 + s / 2] & ~(7u << 4 * (s % 2))) | (unsigned)(g >> 8) << 4 * (s % 2));
        break;
    }
}

/* Every grid index in every group slot (random signs, scales and fp16 d around it): the tables of
 * q_iq_grids.c give ggml's dequantization for all of them. */
static int dequant_all_indices(int type, slm_rng *r) {
    const size_t bb = slm_dtype_get(type)->type_size;
    const int ng = grid_size(type), ns = n_slots(type);
    uint8_t *blk = calloc((size_t)ng, bb);
    for (int g = 0; g < ng; g++) {
        uint8_t *b = blk + (size_t)g * bb;
        for (size_t j = 0; j < bb; j++) b[j] = (uint8_t)slm_rng_u64(r);
        if (d_offset(type) >= 0) {
            const uint16_t d = slm_f32_to_f16((float)(0.5 + slm_rng_uniform(r)));
            memcpy(b + d_offset(type), &d, 2);
        }
        for (int s = 0; s < ns; s++) put_index(type, b, s, (g + s) % ng);
    }
    const int bad = check_dequant(type, blk, ng, "dequantize (every grid index in every slot)");
    free(blk);
    return bad;
}

static int dequant_cases(int type, slm_rng *r) {
    const size_t bb = slm_dtype_get(type)->type_size;
    enum { NBLK = 4096 };
    uint8_t *blk = calloc(NBLK, bb);
    int bad = 0;
    /* every byte value in every position, block by block: covers every low grid byte, sign byte
     * and scale nibble; then random bytes for the high bits and their combinations */
    for (int v = 0; v < 256; v++) {
        for (size_t j = 0; j < bb; j++) blk[v * bb + j] = (uint8_t)(v + 37 * j);
    }
    for (int i = 256; i < NBLK; i++) {
        for (size_t j = 0; j < bb; j++) blk[i * bb + j] = (uint8_t)slm_rng_u64(r);
    }
    for (int i = 0; i < NBLK; i++) {
        if (d_offset(type) < 0) continue;
        const uint16_t d = slm_f32_to_f16((float)(slm_rng_normal(r) * pow(10.0, 4.0 * slm_rng_uniform(r) - 3.0)));
        memcpy(blk + i * bb + d_offset(type), &d, 2);
    }
    bad |= check_dequant(type, blk, NBLK, "dequantize (crafted and random blocks)");
    free(blk);
    return bad;
}

/* Row r of distribution dist: n values. */
static void fill_row(int dist, float *x, int n, slm_rng *r) {
    const double s = pow(10.0, 4.0 * slm_rng_uniform(r) - 3.0);
    for (int j = 0; j < n; j++) {
        double v;
        switch (dist) {
        case 0: v = slm_rng_normal(r); break;                                           /* gaussian */
        case 1: v = 2 * slm_rng_uniform(r) - 1; break;                                  /* uniform */
        case 2: v = slm_rng_normal(r) / (0.05 + fabs(slm_rng_normal(r))); break;         /* heavy tail */
        case 3: v = slm_rng_uniform(r) < 0.7 ? 0 : slm_rng_normal(r); break;            /* sparse */
        case 4: v = (j / 32) % 3 == 0 ? 0 : slm_rng_normal(r); break;                   /* zero sub-blocks */
        case 5: v = (j / 16) % 2 ? 1.0 : -0.5; break;                                   /* equal values */
        case 6: v = 1e-9 * slm_rng_normal(r); break;                                    /* tiny */
        default: v = slm_rng_uniform(r); break;                                         /* non-negative */
        }
        x[j] = (float)(s * v);
    }
}

static int quant_cases(int type, int rows_per_dist, slm_rng *r) {
    const int n_per_row = 512, n_dist = 8, nrow = rows_per_dist * n_dist;
    const size_t rb = slm_dtype_row_size(type, n_per_row), nq = rb * (size_t)nrow;
    float *x = malloc((size_t)nrow * n_per_row * sizeof(float)), *w = malloc(n_per_row * sizeof(float));
    uint8_t *a = malloc(nq), *b = malloc(nq);
    for (int i = 0; i < nrow; i++) fill_row(i % n_dist, x + (size_t)i * n_per_row, n_per_row, r);
    int bad = 0;
    for (int trial = 0; trial < 2 && !bad; trial++) {
        for (int j = 0; j < n_per_row; j++) w[j] = (float)exp(3.0 * slm_rng_normal(r)); /* several decades */
        for (int with_w = 1; with_w >= 0 && !bad; with_w--) {
            if (!with_w && ggml_quantize_requires_imatrix((enum ggml_type)type)) continue;
            const float *im = with_w ? w : NULL;
            ggml_quantize_chunk((enum ggml_type)type, x, a, 0, nrow, n_per_row, im);
            slm_quantize_chunk_kernel(type, SLM_KERNEL_REF, x, b, nrow, n_per_row, im);
            bad |= report(with_w ? "quantize (imatrix, scalar)" : "quantize (no imatrix, scalar)", type, a, b, nq,
                          slm_dtype_get(type)->type_size);
            slm_quantize_chunk(type, x, b, nrow, n_per_row, im);
            bad |= report(with_w ? "quantize (imatrix, auto)" : "quantize (no imatrix, auto)", type, a, b, nq,
                          slm_dtype_get(type)->type_size);
        }
    }
    free(x);
    free(w);
    free(a);
    free(b);
    return bad;
}

int main(int argc, char **argv) {
    const int rows = argc > 1 ? atoi(argv[1]) : 64;
    slm_rng r;
    slm_rng_seed(&r, argc > 2 ? strtoull(argv[2], NULL, 10) : 1);
    int failed = 0;
    for (size_t t = 0; t < sizeof k_types / sizeof k_types[0]; t++) {
        const int type = k_types[t];
        int bad = dequant_all_indices(type, &r);
        bad |= dequant_cases(type, &r);
        bad |= quant_cases(type, rows, &r);
        printf("%-8s %s\n", slm_dtype_name(type), bad ? "DIFFERS" : "ok");
        fflush(stdout);
        failed |= bad;
    }
    return failed;
}
