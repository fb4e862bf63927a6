/* pool.c - worker threads woken by a condition variable for each run; tasks taken from an
 * atomic counter; the caller works too and waits for the last task. */
#include "pool.h"

#include <pthread.h>
#include <stdlib.h>

struct slm_pool {
    int n;               /* threads including the caller */
    int started;         /* pthreads running (n - 1 unless creation failed) */
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t go;   /* a new run (gen changed) or stop */
    pthread_cond_t done; /* a worker left the run */
    uint64_t gen;        /* run counter */
    int stop;
    struct run *cur;     /* the run workers may join, NULL between runs */
};

/* One run, on the caller's stack: a worker that wakes after it ended finds cur NULL. */
typedef struct run {
    slm_pool_fn fn;
    void *ctx;
    int64_t n_tasks;
    int64_t next;        /* atomic: the next task index */
    int active;          /* workers inside it (under mu) */
} run;

typedef struct worker_arg { slm_pool *p; int id; } worker_arg;

static void work(run *r, int id) {
    for (;;) {
        int64_t k = __atomic_fetch_add(&r->next, 1, __ATOMIC_RELAXED);
        if (k >= r->n_tasks) return;
        r->fn(r->ctx, k, id);
    }
}

static void *worker_main(void *arg) {
    worker_arg wa = *(worker_arg *)arg;
    free(arg);
    slm_pool *p = wa.p;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->gen == seen && !p->stop) pthread_cond_wait(&p->go, &p->mu);
        if (p->stop) break;
        seen = p->gen;
        run *r = p->cur;
        if (!r) continue; /* woke after the run ended */
        r->active++;
        pthread_mutex_unlock(&p->mu);
        work(r, wa.id);
        pthread_mutex_lock(&p->mu);
        if (--r->active == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

slm_pool *slm_pool_create(int n_threads) {
    slm_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = 1;
    if (n_threads <= 1) return p;
    p->th = calloc((size_t)n_threads - 1, sizeof *p->th);
    if (!p->th || pthread_mutex_init(&p->mu, NULL)) {
        free(p->th);
        p->th = NULL;
        return p;
    }
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    for (int i = 0; i < n_threads - 1; i++) {
        worker_arg *a = malloc(sizeof *a);
        if (!a) break;
        *a = (worker_arg){p, i + 1};
        if (pthread_create(&p->th[i], NULL, worker_main, a)) {
            free(a);
            break;
        }
        p->started++;
    }
    p->n = 1 + p->started;
    return p;
}

int slm_pool_threads(const slm_pool *p) { return p ? p->n : 1; }

void slm_pool_run(slm_pool *p, int64_t n_tasks, slm_pool_fn fn, void *ctx) {
    if (n_tasks <= 0) return;
    if (!p || p->started == 0 || n_tasks == 1) {
        for (int64_t k = 0; k < n_tasks; k++) fn(ctx, k, 0);
        return;
    }
    run r = {fn, ctx, n_tasks, 0, 0};
    pthread_mutex_lock(&p->mu);
    p->cur = &r;
    p->gen++;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    work(&r, 0);
    pthread_mutex_lock(&p->mu);
    p->cur = NULL; /* no worker joins any more; wait for those inside */
    while (r.active > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void slm_pool_free(slm_pool *p) {
    if (!p) return;
    if (p->th) {
        pthread_mutex_lock(&p->mu);
        p->stop = 1;
        pthread_cond_broadcast(&p->go);
        pthread_mutex_unlock(&p->mu);
        for (int i = 0; i < p->started; i++) pthread_join(p->th[i], NULL);
        pthread_cond_destroy(&p->go);
        pthread_cond_destroy(&p->done);
        pthread_mutex_destroy(&p->mu);
        free(p->th);
    }
    free(p);
}
