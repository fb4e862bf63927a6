/* dot_kernels.c - single-thread GFLOP/s (2 n rows cols / s) of slm's dot-product tile
 * (slm_dot_rows) against ggml's CPU vec_dot (ggml_get_type_traits_cpu(type)->vec_dot, called per
 * (row, column) pair in ggml_compute_forward_mul_mat's 16 x 16 blocks), and whether every output
 * is the same float bit for bit. Also checks that slm's activation quantizer (the type table's
 * from_float) writes ggml's from_float bytes. Not part of `make check`, never linked into libslm.
 *
 * ggml's CPU kernels come from one of llama.cpp's prebuilt CPU variants, loaded with dlopen: by
 * default libggml-cpu-haswell.so (AVX2 + FMA + F16C, the code slm's order follows); pass another
 * (libggml-cpu-zen4.so: AVX-512, what llama.cpp picks on this machine) as the 4th argument.
 * Build and run (repo root):
 *   make build/libslm.a && cc -O2 -std=c11 -D_DEFAULT_SOURCE -I. -I/tmp/llcpp/include \
 *     bench/dot_kernels.c build/libslm.a -L/tmp/llcpp/lib -lggml-base -Wl,-rpath,/tmp/llcpp/lib \
 *     -ldl -fopenmp -lm -o build/bench_dot_kernels
 *   ./build/bench_dot_kernels [reps=5] [main|all] [cols=64] [ggml-cpu library]
 * "main": Q4_K Q8_0 Q4_0 Q6_K IQ4_XS F16 at n = 2048 and 5632 (the 1B-scale row lengths);
 * "all": every type slm has a dot product for, n = 2048 (bit-exactness first, speed second).
 * cols activation rows (tokens) per call; 1 gives the decode case (one token, a matrix-vector
 * product). /tmp/llcpp comes from: sh ../shared/tools/llamacpp/setup.sh /tmp/llcpp
 */
#include <ggml-cpu.h>
#include <ggml.h>

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/dtype.h"
#include "core/rng.h"
#include "quantize/qtypes.h"
#include "quantize/quants.h"

#define ROWS 256 /* weight rows (output channels) per measurement */
#define RB 64    /* weight rows per slm_dot_rows call (what a thread of the caller would take) */

typedef const struct ggml_type_traits_cpu *(*traits_fn)(enum ggml_type);

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ggml_compute_forward_mul_mat_one_chunk's loop: blocks of 16 activation x 16 weight rows, one
 * vec_dot per pair. out[c * ROWS + r]. */
static double time_ggml(const struct ggml_type_traits_cpu *tc, int64_t n, int cols, float *out, const uint8_t *w,
                        size_t wb, const uint8_t *a, size_t ab) {
    const double t0 = now_s();
    for (int c0 = 0; c0 < cols; c0 += 16)
        for (int r0 = 0; r0 < ROWS; r0 += 16)
            for (int c = c0; c < c0 + 16 && c < cols; c++)
                for (int r = r0; r < r0 + 16; r++)
                    tc->vec_dot((int)n, out + (size_t)c * ROWS + r, 0, w + (size_t)r * wb, 0, a + (size_t)c * ab, 0, 1);
    return now_s() - t0;
}

static double time_slm(int type, int64_t n, int cols, float *out, const uint8_t *w, size_t wb, const uint8_t *a,
                       size_t ab) {
    const double t0 = now_s();
    for (int r0 = 0; r0 < ROWS; r0 += RB)
        slm_dot_rows(type, n, RB, cols, out + r0, ROWS, w + (size_t)r0 * wb, wb, a, ab);
    return now_s() - t0;
}

/* One type and length: returns 1 if an output or an activation byte differs from ggml's. */
static int bench_one(traits_fn traits, int type, int64_t n, int cols, int reps, slm_rng *rng) {
    const slm_dtype_traits *tr = slm_dtype_get(type);
    const int at = tr->vec_dot_type;
    const struct ggml_type_traits_cpu *tc = traits((enum ggml_type)type), *tca = traits((enum ggml_type)at);
    const size_t wb = slm_dtype_row_size(type, n), ab = slm_dtype_row_size(at, n);
    float *x = malloc(sizeof(float) * (size_t)n * (ROWS > cols ? ROWS : cols)), *im = malloc(sizeof(float) * (size_t)n);
    uint8_t *w = malloc(wb * ROWS), *a = malloc(ab * (size_t)cols), *a2 = malloc(ab * (size_t)cols);
    float *o1 = malloc(sizeof(float) * ROWS * (size_t)cols), *o2 = malloc(sizeof(float) * ROWS * (size_t)cols);
    if (!x || !im || !w || !a || !a2 || !o1 || !o2) exit(1);
    for (int64_t i = 0; i < n * ROWS; i++) x[i] = (float)slm_rng_normal(rng);
    for (int64_t j = 0; j < n; j++) im[j] = (float)exp(slm_rng_normal(rng));
    slm_quantize_chunk(type, x, w, ROWS, n, slm_dtype_needs_imatrix(type) ? im : NULL);
    for (int64_t i = 0; i < n * cols; i++) x[i] = (float)(slm_rng_normal(rng) * (slm_rng_uniform(rng) < 0.01 ? 10 : 1));
    for (int c = 0; c < cols; c++) {
        tr = slm_dtype_get(at);
        tr->from_float(x + (size_t)c * n, a + (size_t)c * ab, n);
        tca->from_float(x + (size_t)c * n, a2 + (size_t)c * ab, n);
    }
    const int act_same = !memcmp(a, a2, ab * (size_t)cols);

    double tg = 1e30, ts = 1e30; /* best of reps, alternating so a busy neighbour hits both */
    for (int r = 0; r < reps; r++) {
        const double g = time_ggml(tc, n, cols, o1, w, wb, a, ab), s = time_slm(type, n, cols, o2, w, wb, a, ab);
        if (g < tg) tg = g;
        if (s < ts) ts = s;
    }
    size_t ndiff = 0;
    double maxrel = 0;
    for (size_t i = 0; i < (size_t)ROWS * cols; i++)
        if (memcmp(&o1[i], &o2[i], sizeof(float))) {
            ndiff++;
            const double rel = fabs((double)o1[i] - o2[i]) / fmax(fabs((double)o1[i]), 1e-30);
            if (rel > maxrel) maxrel = rel;
        }
    const double flop = 2.0 * (double)n * ROWS * cols;
    int tile_r, tile_c;
    slm_dot_tile_shape(type, &tile_r, &tile_c);
    char bits[64];
    if (ndiff) snprintf(bits, sizeof bits, "%zu differ, max rel %.2g", ndiff, maxrel);
    else snprintf(bits, sizeof bits, "bit-exact");
    printf("%-8s %5lld %4d %dx%d %9.2f %9.2f %6.2fx  %s%s\n", slm_dtype_name(type), (long long)n, cols, tile_r, tile_c,
           flop / tg * 1e-9, flop / ts * 1e-9, tg / ts, bits, act_same ? "" : "  ACTIVATION BYTES DIFFER");
    fflush(stdout);
    free(x), free(im), free(w), free(a), free(a2), free(o1), free(o2);
    return ndiff > 0 || !act_same;
}

int main(int argc, char **argv) {
    const int reps = argc > 1 && atoi(argv[1]) > 0 ? atoi(argv[1]) : 5;
    const int all = argc > 2 && !strcmp(argv[2], "all");
    const int cols = argc > 3 && atoi(argv[3]) > 0 ? atoi(argv[3]) : 64;
    const char *lib = argc > 4 ? argv[4] : "/tmp/llcpp/lib/libggml-cpu-haswell.so";
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "bench: %s\n", dlerror());
        return 2;
    }
    traits_fn traits = (traits_fn)dlsym(h, "ggml_get_type_traits_cpu");
    void (*cpu_init)(void) = (void (*)(void))dlsym(h, "ggml_cpu_init");
    if (!traits || !cpu_init) {
        fprintf(stderr, "bench: %s exports no ggml_get_type_traits_cpu / ggml_cpu_init\n", lib);
        return 2;
    }
    cpu_init();
    static const int main_types[] = {SLM_DTYPE_Q4_K, SLM_DTYPE_Q8_0, SLM_DTYPE_Q4_0, SLM_DTYPE_Q6_K, SLM_DTYPE_IQ4_XS,
                                     SLM_DTYPE_F16};
    static const int64_t main_n[] = {2048, 5632}, all_n[] = {2048};
    int types[SLM_DTYPE_COUNT], n_types = 0;
    if (all) {
        for (int t = 0; t < SLM_DTYPE_COUNT; t++)
            if (slm_dtype_get(t) && slm_dtype_get(t)->vec_dot) types[n_types++] = t;
    } else {
        for (size_t i = 0; i < sizeof main_types / sizeof main_types[0]; i++) types[n_types++] = main_types[i];
    }
    const int64_t *ns = all ? all_n : main_n;
    const int n_ns = all ? 1 : 2;
    printf("ggml: %s; %d weight rows x %d activation rows, 1 thread, best of %d; ratio = ggml time / slm time\n", lib,
           ROWS, cols, reps);
    printf("%-8s %5s %4s %3s %9s %9s %7s  %s\n", "type", "n", "cols", "tile", "ggml GF/s", "slm GF/s", "ratio",
           "slm vs ggml outputs");
    slm_rng rng;
    slm_rng_seed(&rng, 7);
    int bad = 0;
    for (int i = 0; i < n_types; i++)
        for (int j = 0; j < n_ns; j++) bad |= bench_one(traits, types[i], ns[j], cols, reps, &rng);
    if (bad) fprintf(stderr, "bench: slm and ggml differ (see above)\n");
    return bad;
}
