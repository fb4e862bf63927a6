/* thread.c - thread count: --threads N, else OMP_NUM_THREADS, else all cores. */
#include "thread.h"

#include <stdlib.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static int default_threads(void) {
    const char *e = getenv("OMP_NUM_THREADS");
    if (e && atoi(e) > 0) return atoi(e);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static int g_threads; /* 0: not set yet */

void slm_threads_set(int n) {
    g_threads = n > 0 ? n : default_threads();
#ifdef _OPENMP
    omp_set_num_threads(g_threads);
#endif
}

int slm_threads_get(void) {
    if (!g_threads) slm_threads_set(0);
#ifdef _OPENMP
    return g_threads;
#else
    return 1;
#endif
}

int slm_thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}
