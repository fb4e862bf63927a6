/* gen_iq_golden.c - writes fixtures/golden_iq/: ggml's own blocks and dequantized floats for the
 * lattice quants IQ3_XXS IQ3_S IQ2_XXS IQ2_XS IQ2_S IQ1_S IQ1_M, for tests/test_iq.c. Not part of
 * the normal build. Everything written is what libggml-base computes; nothing comes from slm.
 *
 * Inputs (shared by all types, inputs/<case>.input.f32 and .imatrix.f32): synthetic rows of
 * several distributions (seeded xorshift64*, below) and real weights, the first rows of a 2-D
 * tensor of ../shared/fixtures/models/tinystories-3M/model.safetensors (read by a tiny
 * safetensors reader). Per type and case: ggml_quantize_chunk(type, x, dst, 0, nrows, n_per_row,
 * imatrix) -> <TYPE>/<case>.blocks-imatrix.bin, its to_float -> .dequant-imatrix.f32, and where
 * ggml accepts no imatrix (!ggml_quantize_requires_imatrix) the same with NULL -> .blocks.bin,
 * .dequant.f32. Checked while writing: two calls give the same bytes, and row-by-row calls give
 * the bytes of one call on all rows.
 * Build and run (repo root):
 *   cc -O2 -std=c11 -D_DEFAULT_SOURCE -I/tmp/llcpp/include tools/gen_iq_golden.c -L/tmp/llcpp/lib \
 *     -lggml-base -Wl,-rpath,/tmp/llcpp/lib -lm -o /tmp/gen_iq_golden
 *   /tmp/gen_iq_golden ../shared/fixtures/models/tinystories-3M/model.safetensors fixtures/golden_iq
 */
#include <ggml.h>

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SEED 20250101u
#define REAL_TENSOR "model.layers.1.mlp.down_proj.weight"

static void die(const char *fmt, const char *arg) {
    fprintf(stderr, "gen_iq_golden: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    exit(1);
}

/* ---------------------------------------------------------------- seeded random numbers */

static uint64_t g_rng;

static uint64_t rng_u64(void) {
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 0x2545f4914f6cdd1dull;
}

static double rng_uniform(void) { return (double)(rng_u64() >> 11) * 0x1p-53; }

static double rng_normal(void) {
    double u1 = rng_uniform(), u2 = rng_uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ------------------------------------------------------------------ tiny safetensors */

/* The first n floats of an F32 tensor; checks the header entry's dtype and size. */
static void read_real(const char *path, const char *name, float *out, size_t n, char *shape_out, size_t shape_cap) {
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot open %s", path);
    uint64_t hlen;
    if (fread(&hlen, 8, 1, f) != 1 || hlen > 100000000) die("%s: bad header length", path);
    char *h = malloc(hlen + 1);
    if (!h || fread(h, 1, hlen, f) != hlen) die("%s: short header", path);
    h[hlen] = 0;
    char key[256];
    snprintf(key, sizeof key, "\"%s\"", name);
    const char *e = strstr(h, key);
    if (!e) die("tensor %s not found", name);
    const char *dt = strstr(e, "\"dtype\""), *sh = strstr(e, "\"shape\""), *off = strstr(e, "\"data_offsets\"");
    if (!dt || !sh || !off || !strstr(dt, "\"F32\"") || strstr(dt, "\"F32\"") > sh) die("%s: not an F32 entry", name);
    const char *lb = strchr(sh, '['), *rb = strchr(sh, ']');
    snprintf(shape_out, shape_cap, "%.*s", (int)(rb - lb + 1), lb);
    unsigned long long b0, b1;
    if (sscanf(strchr(off, '['), "[%llu,%llu]", &b0, &b1) != 2 || b1 - b0 < n * 4) die("%s: bad data_offsets", name);
    if (fseek(f, (long)(8 + hlen + b0), SEEK_SET) || fread(out, 4, n, f) != n) die("%s: short data", name);
    free(h);
    fclose(f);
}

/* ---------------------------------------------------------------------------- cases */

typedef struct gcase {
    const char *name;
    int nrows, n_per_row;
    const char *params; /* how the input was drawn, in words */
} gcase;

static const gcase k_cases[] = {
    {"gaussian_4x256", 4, 256, "N(0,1) times a per-row scale 10^U(-2,1)"},
    {"real_2x768", 2, 768, "tinystories-3M " REAL_TENSOR ", first 2 rows"},
    {"heavy_2x512", 2, 512, "N(0,1)/(0.05+|N(0,1)|) (heavy tails), per-row scale, plus one value of 30-60x per row"},
    {"uniform_4x256", 4, 256, "U(-1,1); U(0,1); U(-0.2,1); U(-1,0.1)"},
    {"special_8x256", 8, 256,
     "all zero (+0/-0); one constant; zero and non-zero 32-blocks alternating; ~1e-9; one value per 32; "
     "80% zeros; +-1 with equal magnitudes; ~1e4"},
};
#define N_CASES ((int)(sizeof k_cases / sizeof k_cases[0]))

static void fill_case(int c, float *x, const char *model, char *shape, size_t shape_cap) {
    const gcase *g = &k_cases[c];
    const int n = g->n_per_row;
    shape[0] = 0;
    for (int r = 0; r < g->nrows; r++) {
        float *xr = x + (size_t)r * n;
        const double s = pow(10.0, 3.0 * rng_uniform() - 2.0);
        for (int j = 0; j < n; j++) {
            double v = 0;
            switch (c) {
            case 0: v = s * rng_normal(); break;
            case 2: v = s * rng_normal() / (0.05 + fabs(rng_normal())); break;
            case 3: {
                const double u = rng_uniform();
                v = r == 0 ? 2 * u - 1 : r == 1 ? u : r == 2 ? 1.2 * u - 0.2 : 1.1 * u - 1;
                break;
            }
            case 4:
                switch (r) {
                case 0: v = j % 3 == 0 ? -0.0 : 0.0; break;
                case 1: v = 0.37; break;
                case 2: v = (j / 32) % 2 ? 0.0 : rng_normal(); break;
                case 3: v = 1e-9 * rng_normal(); break;
                case 4: v = j % 32 == 5 ? 1 + rng_uniform() : 0.0; break;
                case 5: v = rng_uniform() < 0.8 ? 0.0 : rng_normal(); break;
                case 6: v = (rng_u64() & 1) ? 1.0 : -1.0; break;
                default: v = 1e4 * rng_normal(); break;
                }
                break;
            default: break;
            }
            xr[j] = (float)v;
        }
        if (c == 2) xr[rng_u64() % (uint64_t)n] = (float)(s * (30 + 30 * rng_uniform()));
    }
    if (c == 1) read_real(model, REAL_TENSOR, x, (size_t)g->nrows * n, shape, shape_cap);
}

/* Importance weights: mean of 16 squared synthetic activations whose per-column scale spans
 * 10^-2..10^1 (so the weights span about six decades); the special case also has exact zeros
 * (columns no activation reached). */
static void fill_imatrix(int c, float *w, int n) {
    for (int j = 0; j < n; j++) {
        const double s = pow(10.0, 3.0 * rng_uniform() - 2.0);
        double acc = 0;
        for (int t = 0; t < 16; t++) {
            const double a = s * rng_normal();
            acc += a * a;
        }
        w[j] = (float)(acc / 16);
        if (c == 4 && j % 29 == 3) w[j] = 0.0f;
    }
}

/* ------------------------------------------------------------------------------ output */

static void write_file(const char *dir, const char *rel, const void *p, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f)) die("cannot write %s", path);
}

static void make_dir(const char *dir, const char *sub) {
    char path[4096];
    snprintf(path, sizeof path, "%s%s%s", dir, sub ? "/" : "", sub ? sub : "");
    if (mkdir(path, 0755) && errno != EEXIST) die("cannot create %s", path);
}

static const enum ggml_type k_types[] = {GGML_TYPE_IQ3_XXS, GGML_TYPE_IQ3_S, GGML_TYPE_IQ2_XXS, GGML_TYPE_IQ2_XS,
                                         GGML_TYPE_IQ2_S,   GGML_TYPE_IQ1_S, GGML_TYPE_IQ1_M};
#define N_TYPES ((int)(sizeof k_types / sizeof k_types[0]))

static void upper(char *dst, const char *src) {
    while ((*dst++ = (char)(*src >= 'a' && *src <= 'z' ? *src - 32 : *src))) src++;
}

/* Quantizes with ggml, checks repeatability and row independence; returns the row size. */
static size_t quantize(enum ggml_type t, const float *x, int nrows, int n, const float *w, uint8_t *q) {
    const size_t rb = ggml_row_size(t, n), nq = rb * (size_t)nrows;
    uint8_t *again = malloc(nq);
    if (ggml_quantize_chunk(t, x, q, 0, nrows, n, w) != nq) die("%s: unexpected size", ggml_type_name(t));
    ggml_quantize_chunk(t, x, again, 0, nrows, n, w);
    if (memcmp(q, again, nq)) die("%s: two calls differ", ggml_type_name(t));
    for (int r = 0; r < nrows; r++) ggml_quantize_chunk(t, x + (size_t)r * n, again + r * rb, 0, 1, n, w);
    if (memcmp(q, again, nq)) die("%s: row by row differs", ggml_type_name(t));
    free(again);
    return rb;
}

int main(int argc, char **argv) {
    if (argc != 3) die("usage: gen_iq_golden MODEL.safetensors OUT_DIR%s", "");
    const char *model = argv[1], *out = argv[2];
    g_rng = SEED | 1;
    make_dir(out, NULL);
    make_dir(out, "inputs");
    for (int t = 0; t < N_TYPES; t++) {
        char tn[32];
        upper(tn, ggml_type_name(k_types[t]));
        make_dir(out, tn);
    }

    char mpath[4096];
    snprintf(mpath, sizeof mpath, "%s/manifest.json", out);
    FILE *m = fopen(mpath, "w");
    if (!m) die("cannot write %s", mpath);
    fprintf(m, "{\n  \"format\": 1,\n  \"set\": \"slm-golden-iq-1\",\n  \"seed\": %u,\n", SEED);
    fprintf(m, "  \"library\": \"libggml-base.so, ggml %s (commit %s), llama.cpp v0.5.0\",\n", ggml_version(),
            ggml_commit());
    fprintf(m, "  \"quantize\": \"ggml_quantize_chunk(type, input, dst, 0, nrows, n_per_row, imatrix or NULL)\",\n");
    fprintf(m, "  \"dequantize\": \"ggml_get_type_traits(type)->to_float\",\n  \"cases\": [\n");

    int n_written = 0;
    for (int c = 0; c < N_CASES; c++) {
        const gcase *g = &k_cases[c];
        const size_t nv = (size_t)g->nrows * g->n_per_row;
        float *x = malloc(nv * sizeof(float)), *w = malloc((size_t)g->n_per_row * sizeof(float));
        float *y = malloc(nv * sizeof(float));
        uint8_t *q = malloc(nv * 2), *q0 = malloc(nv * 2);
        char shape[64], rel[256], rel_w[256];
        fill_case(c, x, model, shape, sizeof shape);
        fill_imatrix(c, w, g->n_per_row);
        snprintf(rel, sizeof rel, "inputs/%s.input.f32", g->name);
        write_file(out, rel, x, nv * sizeof(float));
        snprintf(rel_w, sizeof rel_w, "inputs/%s.imatrix.f32", g->name);
        write_file(out, rel_w, w, (size_t)g->n_per_row * sizeof(float));

        for (int t = 0; t < N_TYPES; t++) {
            const enum ggml_type type = k_types[t];
            const struct ggml_type_traits *tr = ggml_get_type_traits(type);
            const int plain = !ggml_quantize_requires_imatrix(type);
            char tn[32], f_bi[256], f_di[256], f_b[256] = "", f_d[256] = "";
            upper(tn, ggml_type_name(type));
            const size_t rb = quantize(type, x, g->nrows, g->n_per_row, w, q), nq = rb * (size_t)g->nrows;
            snprintf(f_bi, sizeof f_bi, "%s/%s.blocks-imatrix.bin", tn, g->name);
            snprintf(f_di, sizeof f_di, "%s/%s.dequant-imatrix.f32", tn, g->name);
            write_file(out, f_bi, q, nq);
            tr->to_float(q, y, (int64_t)nv);
            write_file(out, f_di, y, nv * sizeof(float));
            int differs = -1;
            if (plain) {
                quantize(type, x, g->nrows, g->n_per_row, NULL, q0);
                snprintf(f_b, sizeof f_b, "%s/%s.blocks.bin", tn, g->name);
                snprintf(f_d, sizeof f_d, "%s/%s.dequant.f32", tn, g->name);
                write_file(out, f_b, q0, nq);
                tr->to_float(q0, y, (int64_t)nv);
                write_file(out, f_d, y, nv * sizeof(float));
                differs = 0;
                for (size_t i = 0; i < nq / tr->type_size; i++)
                    differs += !!memcmp(q + i * tr->type_size, q0 + i * tr->type_size, tr->type_size);
            }
            fprintf(m, "%s    {\"id\": \"%s/%s\", \"type\": \"%s\", \"ggml_type\": %d, \"case\": \"%s\",\n", n_written ? ",\n" : "",
                    tn, g->name, tn, (int)type, g->name);
            fprintf(m, "     \"nrows\": %d, \"n_per_row\": %d, \"block_size\": %lld, \"bytes_per_block\": %zu, "
                       "\"bytes_per_row\": %zu,\n",
                    g->nrows, g->n_per_row, (long long)tr->blck_size, tr->type_size, rb);
            fprintf(m, "     \"params\": \"%s\",%s%s%s\n", g->params, shape[0] ? " \"source_shape\": " : "", shape,
                    shape[0] ? "," : "");
            fprintf(m, "     \"requires_imatrix\": %s,", plain ? "false" : "true");
            if (plain) fprintf(m, " \"blocks_differing_with_imatrix\": %d,", differs);
            fprintf(m, "\n     \"files\": {\"input\": \"%s\", \"weights\": \"%s\", \"blocks_imatrix\": \"%s\", "
                       "\"dequant_imatrix\": \"%s\"",
                    rel, rel_w, f_bi, f_di);
            if (plain) fprintf(m, ", \"blocks\": \"%s\", \"dequant\": \"%s\"", f_b, f_d);
            fprintf(m, "}}");
            n_written++;
        }
        free(x);
        free(w);
        free(y);
        free(q);
        free(q0);
    }
    fprintf(m, "\n  ],\n  \"n_cases\": %d\n}\n", n_written);
    if (fclose(m)) die("cannot write %s", mpath);
    fprintf(stderr, "gen_iq_golden: %d cases (%d inputs x %d types) in %s\n", n_written, N_CASES, N_TYPES, out);
    return 0;
}
