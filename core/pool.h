/* pool.h - a small pool of worker threads that sleep while idle (no spinning).
 *
 * Owns: n - 1 pthreads plus the caller, each run handing out task indices 0 .. n_tasks-1 in
 * order from one atomic counter; a run returns when every task is done. Results must not
 * depend on which thread ran a task (tasks write their own slots; the caller reduces them in
 * index order), so output is identical for any thread count.
 * Why not OpenMP here: libgomp's idle threads spin between parallel regions, and the
 * streaming passes (export/) alternate short parallel regions with serial work and a writer
 * thread on machines with 2 cores, where spinning takes the core the writer needs.
 * Must not: print, or call anything fallible inside a task (tasks report through their slots).
 */
#ifndef SLM_POOL_H
#define SLM_POOL_H

#include <stdint.h>

typedef struct slm_pool slm_pool;

/* fn(ctx, task, thread): thread is 0 (the caller) .. slm_pool_threads - 1, for per-thread
   scratch. */
typedef void (*slm_pool_fn)(void *ctx, int64_t task, int thread);

/* A pool of n_threads (the caller counts as one). Never fails: without memory or threads it
   runs everything on the caller (slm_pool_threads tells). NULL is such a pool. */
slm_pool *slm_pool_create(int n_threads);
int slm_pool_threads(const slm_pool *p);
/* Runs fn for every task in [0, n_tasks) and returns when all are done. */
void slm_pool_run(slm_pool *p, int64_t n_tasks, slm_pool_fn fn, void *ctx);
/* Joins the threads; safe on NULL. */
void slm_pool_free(slm_pool *p);

#endif
