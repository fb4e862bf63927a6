/* thread.h - thread count control; the only place that includes omp.h.
 *
 * Owns: --threads / OMP_NUM_THREADS / all cores resolution.
 * Must not: spawn threads itself; kernels use `#pragma omp parallel for` and are correct
 * without -fopenmp.
 */
#ifndef SLM_THREAD_H
#define SLM_THREAD_H

/* n > 0 sets the count; n == 0 restores the default (OMP_NUM_THREADS, else all cores). */
void slm_threads_set(int n);
int slm_threads_get(void);
/* Index of the calling thread inside a parallel region (0 outside). */
int slm_thread_id(void);

#endif
