/* quant_kernels.c - single-thread MB/s of slm's quantizers vs ggml's (ggml_quantize_chunk) on a
 * 4096x4096 gaussian matrix, Q8_0 Q4_0 Q4_K Q5_K Q6_K with and without imatrix; exits 1 if any
 * byte differs. Not part of `make check`, never linked into libslm. Build and run (repo root):
 *   make build/libslm.a && cc -O2 -std=c11 -D_DEFAULT_SOURCE -I. -I/tmp/llcpp/include \
 *     bench/quant_kernels.c build/libslm.a -L/tmp/llcpp/lib -lggml-base \
 *     -Wl,-rpath,/tmp/llcpp/lib -fopenmp -lm -o build/bench_quant_kernels
 *   ./build/bench_quant_kernels [reps=3] [rows=4096] [all|scalar|all,scalar]
 * "all": every block type; "scalar": slm's scalar reference path instead of the AVX2 kernels;
 * "iq": the lattice types IQ3_XXS IQ3_S IQ2_XXS IQ2_XS IQ2_S IQ1_S IQ1_M instead (slow searches in
 * both: use fewer rows, e.g. `3 64 iq`; IQ2_XXS, IQ2_XS, IQ1_S run with the imatrix only, as in
 * ggml). Both sides build their tables before the timing; their one-time cost is printed apart.
 * /tmp/llcpp comes from: sh ../shared/tools/llamacpp/setup.sh /tmp/llcpp
 */
#include <ggml.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/dtype.h"
#include "quantize/qtypes.h"
#include "core/rng.h"
#include "quantize/quants.h"

#define N_PER_ROW 4096

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double seconds_ggml(int type, const float *x, void *dst, int64_t nrow, const float *im) {
    const double t0 = now_s();
    ggml_quantize_chunk((enum ggml_type)type, x, dst, 0, nrow, N_PER_ROW, im);
    return now_s() - t0;
}

static double seconds_slm(int type, slm_quant_kernel kernel, const float *x, void *dst, int64_t nrow, const float *im) {
    const double t0 = now_s();
    slm_quantize_chunk_kernel(type, kernel, x, dst, nrow, N_PER_ROW, im);
    return now_s() - t0;
}

/* Best wall time of each over reps runs, alternating ggml and slm so that a busy neighbour or a
 * clock change hits both alike. The first runs also leave both outputs in a and b. */
static void best_times(int type, slm_quant_kernel kernel, const float *x, void *a, void *b, int64_t nrow,
                       const float *im, int reps, double *t_ggml, double *t_slm) {
    *t_ggml = *t_slm = 1e30;
    for (int r = 0; r < reps; r++) {
        const double tg = seconds_ggml(type, x, a, nrow, im);
        const double ts = seconds_slm(type, kernel, x, b, nrow, im);
        if (tg < *t_ggml) *t_ggml = tg;
        if (ts < *t_slm) *t_slm = ts;
    }
}

int main(int argc, char **argv) {
    const int reps = argc > 1 && atoi(argv[1]) > 0 ? atoi(argv[1]) : 3;
    const int64_t nrow = argc > 2 ? atoll(argv[2]) : 4096;
    const int all = argc > 3 && strstr(argv[3], "all");
    const int iq = argc > 3 && strstr(argv[3], "iq");
    const slm_quant_kernel kernel = argc > 3 && strstr(argv[3], "scalar") ? SLM_KERNEL_REF : SLM_KERNEL_AUTO;
    static const int main_types[] = {SLM_DTYPE_Q8_0, SLM_DTYPE_Q4_0, SLM_DTYPE_Q4_K, SLM_DTYPE_Q5_K, SLM_DTYPE_Q6_K};
    static const int all_types[] = {SLM_DTYPE_Q8_0, SLM_DTYPE_Q4_0, SLM_DTYPE_Q4_1,   SLM_DTYPE_Q5_0,
                                    SLM_DTYPE_Q5_1, SLM_DTYPE_Q2_K, SLM_DTYPE_Q3_K,   SLM_DTYPE_Q4_K,
                                    SLM_DTYPE_Q5_K, SLM_DTYPE_Q6_K, SLM_DTYPE_IQ4_NL, SLM_DTYPE_IQ4_XS};
    static const int iq_types[] = {SLM_DTYPE_IQ3_XXS, SLM_DTYPE_IQ3_S, SLM_DTYPE_IQ2_XXS, SLM_DTYPE_IQ2_XS,
                                   SLM_DTYPE_IQ2_S,   SLM_DTYPE_IQ1_S, SLM_DTYPE_IQ1_M};
    const int *types = iq ? iq_types : all ? all_types : main_types;
    const size_t n_types = iq    ? sizeof iq_types / sizeof iq_types[0]
                           : all ? sizeof all_types / sizeof all_types[0]
                                 : sizeof main_types / sizeof main_types[0];
    const size_t n = (size_t)nrow * N_PER_ROW;
    float *x = malloc(n * sizeof(float));
    float *im = malloc(N_PER_ROW * sizeof(float));
    uint8_t *a = malloc(n * 2), *b = malloc(n * 2);
    if (!x || !im || !a || !b) return 1;

    slm_rng r;
    slm_rng_seed(&r, 42);
    for (int64_t i = 0; i < nrow; i++) {
        const double s = pow(10.0, 3.0 * slm_rng_uniform(&r) - 2.0);
        for (int64_t j = 0; j < N_PER_ROW; j++) x[i * N_PER_ROW + j] = (float)(s * slm_rng_normal(&r));
    }
    for (int j = 0; j < N_PER_ROW; j++) im[j] = (float)exp(1.5 * slm_rng_normal(&r));

    const double mb = (double)n * sizeof(float) / 1e6;
    int failed = 0;
    printf("%lld x %d gaussian f32 (%.0f MB), single thread, best of %d\n", (long long)nrow, N_PER_ROW, mb, reps);
    for (size_t t = 0; iq && t < n_types; t++) { /* one-time tables: ggml_quantize_init, slm's first call */
        double t0 = now_s();
        ggml_quantize_init((enum ggml_type)types[t]);
        const double init_ggml = now_s() - t0;
        t0 = now_s();
        slm_quantize_chunk_kernel(types[t], kernel, x, b, 1, N_PER_ROW, im);
        printf("%-8s one-time tables: ggml %.3f s, slm %.3f s (incl. one row)\n", slm_dtype_name(types[t]), init_ggml,
               now_s() - t0);
    }
    printf("%-8s %-8s %-5s %10s %10s %7s\n", "type", "imatrix", "slm", "ggml MB/s", "slm MB/s", "ratio");
    for (int with_im = 0; with_im < 2; with_im++) {
        for (size_t t = 0; t < n_types; t++) {
            const int type = types[t];
            const float *w = with_im ? im : NULL;
            if (!w && slm_dtype_needs_imatrix(type)) continue; /* ggml asserts, slm refuses */
            ggml_quantize_init((enum ggml_type)type); /* its tables are not part of the timing */
            double tg, ts;
            best_times(type, kernel, x, a, b, nrow, w, reps, &tg, &ts);
            const size_t nq = slm_dtype_row_size(type, N_PER_ROW) * (size_t)nrow;
            const int same = !memcmp(a, b, nq);
            failed |= !same;
            printf("%-8s %-8s %-5s %10.2f %10.2f %6.2fx%s\n", slm_dtype_name(type), with_im ? "yes" : "no",
                   kernel == SLM_KERNEL_REF ? "ref" : slm_quant_kernel_name(type), mb / tg, mb / ts, tg / ts,
                   same ? "" : "  BYTES DIFFER");
            fflush(stdout);
        }
    }
    free(x);
    free(im);
    free(a);
    free(b);
    if (failed) fprintf(stderr, "bench: slm and ggml bytes differ\n");
    return failed;
}
