/* train_step.c - training throughput of the reference transformer: tokens/s of one step
 * (forward with kept activations, mean cross-entropy, backward, AdamW with clipping) on a model
 * folder or GGUF, B sequences of T tokens taken from a token-id file (next ids as targets),
 * with a per-phase breakdown. bench/train_step.sh runs it beside PyTorch
 * (bench/train_step_torch.py) and prints the ratio. Not part of `make check`.
 *
 *   train_step MODEL IDS.i32 [B=4] [T=256] [THREADS=2] [STEPS=5]
 * Prints one line "slm tokens/s X loss0 L" plus the phases.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/thread.h"
#include "distill/adamw.h"
#include "formats/model_src.h"
#include "model/train.h"
#include "model/transformer.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int32_t *read_ids(const char *path, long *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    int32_t *ids = malloc((size_t)sz);
    if (ids && fread(ids, 1, (size_t)sz, f) != (size_t)sz) {
        free(ids);
        ids = NULL;
    }
    fclose(f);
    *n = sz / 4;
    return ids;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: train_step MODEL IDS.i32 [B=4] [T=256] [THREADS=2] [STEPS=5]\n");
        return 2;
    }
    const int B = argc > 3 ? atoi(argv[3]) : 4, T = argc > 4 ? atoi(argv[4]) : 256;
    const int threads = argc > 5 ? atoi(argv[5]) : 2, steps = argc > 6 ? atoi(argv[6]) : 5;
    slm_threads_set(threads);
    long n_ids;
    int32_t *ids = read_ids(argv[2], &n_ids);
    if (!ids || n_ids < (long)B * (T + 1)) {
        fprintf(stderr, "train_step: %s: cannot read %d x %d ids\n", argv[2], B, T + 1);
        return 1;
    }
    slm_err err = {0};
    slm_src src;
    slm_tensor_src ts;
    slm_model m = {0};
    slm_train tr = {0};
    slm_adamw a = {0};
    slm_adamw_opts o;
    slm_adamw_defaults(&o);
    o.lr = 1e-4f, o.weight_decay = 0.1f, o.clip_norm = 1.0f;
    if (slm_src_open(&src, argv[1], &err)) goto fail;
    slm_src_tensors(&src, &ts);
    if (slm_model_build_batch(&m, &src.cfg, &ts, B, T, SLM_BUILD_KEEP_ACTS, &err) || slm_train_init(&tr, &m, &err) ||
        slm_adamw_init(&a, &o, tr.num_parameters, &err) || slm_adamw_mask_model(&a, &m, 0, NULL, &err))
        goto fail;
    int32_t *tok = malloc(sizeof(int32_t) * B * T), *tgt = malloc(sizeof(int32_t) * B * T);
    for (int b = 0; b < B; b++) { /* window b: ids [b (T+1), (b+1)(T+1)) */
        memcpy(tok + (size_t)b * T, ids + (size_t)b * (T + 1), sizeof(int32_t) * T);
        memcpy(tgt + (size_t)b * T, ids + (size_t)b * (T + 1) + 1, sizeof(int32_t) * T);
    }
    double ph[4] = {0}, loss0 = 0, loss = 0, total = 0;
    for (int s = -1; s < steps; s++) { /* step -1 warms up (allocates the gradients) */
        double t0 = now();
        if (slm_train_zero_grad(&tr, &err) || slm_train_forward(&tr, tok, B, T, &err)) goto fail;
        double t1 = now();
        if (slm_train_loss_xent(&tr, tgt, 1.0f, &loss, &err)) goto fail;
        double t2 = now();
        if (slm_train_backward(&tr, &err)) goto fail;
        double t3 = now();
        if (slm_adamw_step(&a, m.params_memory, tr.grads_memory, 1.0f, &err)) goto fail;
        double t4 = now();
        if (s < 0) {
            loss0 = loss;
            continue;
        }
        ph[0] += t1 - t0, ph[1] += t2 - t1, ph[2] += t3 - t2, ph[3] += t4 - t3, total += t4 - t0;
    }
    printf("slm tokens/s %.1f loss0 %.6f  (B %d x T %d, %d threads, %d steps: %.1f ms/step = forward %.1f + loss %.1f + "
           "backward %.1f + adamw %.1f; loss after %.6f)\n",
           (double)B * T * steps / total, loss0, B, T, threads, steps, 1e3 * total / steps, 1e3 * ph[0] / steps,
           1e3 * ph[1] / steps, 1e3 * ph[2] / steps, 1e3 * ph[3] / steps, loss);
    free(tok), free(tgt), free(ids);
    slm_adamw_free(&a);
    slm_train_free(&tr);
    slm_model_free(&m);
    slm_src_close(&src);
    return 0;
fail:
    fprintf(stderr, "train_step: %s\n", err.msg);
    return 1;
}
