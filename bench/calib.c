/* calib.c - calibration (model/calib.c) timed and compared with a llama-imatrix file
 * (bench/calib.sh runs it beside llama-imatrix). Not a product tool: `slm calibrate` is.
 *
 *   bench_calib MODEL TEXT [--bytes N] [-c CTX] [-t THREADS] [--chunks N] [--numerics ggml|f32]
 *               [--gram] [--process-output] [--ref IMATRIX] [-o OUT [--extras]] [--forward-only]
 *
 * TEXT (its first N bytes) is tokenized with BOS, as llama-imatrix does. Prints
 * "calib: chunks= tokens= seconds= tok_per_s=" (the slm_calib_run call alone), with --ref one line
 * per entry and "agree: entries= counts_equal= max_rel= rms_rel=", with --forward-only the same
 * forwards without statistics ("forward: seconds= tok_per_s=").
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mapfile.h"
#include "core/mem.h"
#include "core/slm.h"
#include "core/thread.h"
#include "formats/imatrix_calib.h"
#include "formats/model_src.h"
#include "model/tokenizer.h"
#include "model/transformer.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int die(const slm_err *err) {
    fprintf(stderr, "bench_calib: %s\n", err->msg);
    return 1;
}

/* Every entry of ref against ours: counts, and sums relative per column. */
static void compare(const slm_imatrix *got, const slm_imatrix *ref) {
    double worst = 0, worst_rms = 0;
    int counts_equal = 1;
    for (size_t i = 0; i < ref->n_entries; i++) {
        const slm_imatrix_entry *e = &ref->entries[i], *f = slm_imatrix_find(got, e->name);
        if (!f || f->ncols != e->ncols) {
            printf("entry %s: missing or of another width\n", e->name);
            counts_equal = 0;
            continue;
        }
        double mx = 0, s2 = 0;
        for (int64_t j = 0; j < e->ncols; j++) {
            double d = fabs((double)f->in_sum2[j] - e->in_sum2[j]) / fabs((double)e->in_sum2[j]);
            s2 += d * d;
            mx = SLM_MAX(mx, d);
        }
        worst = SLM_MAX(worst, mx);
        worst_rms = SLM_MAX(worst_rms, sqrt(s2 / (double)e->ncols));
        counts_equal &= f->counts[0] == e->counts[0];
        printf("entry %-28s count %lld vs %lld  max_rel %.3g  rms_rel %.3g\n", e->name, (long long)f->counts[0],
               (long long)e->counts[0], mx, sqrt(s2 / (double)e->ncols));
    }
    printf("agree: entries=%zu/%zu counts_equal=%d chunk_count=%u/%u chunk_size=%u/%u max_rel=%.3g rms_rel=%.3g\n",
           got->n_entries, ref->n_entries, counts_equal, got->chunk_count, ref->chunk_count, got->chunk_size,
           ref->chunk_size, worst, worst_rms);
}

int main(int argc, char **argv) {
    const char *model = NULL, *text = NULL, *ref = NULL, *out = NULL;
    long long bytes = -1, chunks = 0;
    int ctx = 512, threads = 0, numerics = SLM_NUMERICS_GGML, gram = 0, po = 0, extras = 0, fwd = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--bytes") && v) bytes = atoll(argv[++i]);
        else if (!strcmp(a, "-c") && v) ctx = atoi(argv[++i]);
        else if (!strcmp(a, "-t") && v) threads = atoi(argv[++i]);
        else if (!strcmp(a, "--chunks") && v) chunks = atoll(argv[++i]);
        else if (!strcmp(a, "--numerics") && v) numerics = !strcmp(argv[++i], "f32") ? SLM_NUMERICS_F32 : SLM_NUMERICS_GGML;
        else if (!strcmp(a, "--gram")) gram = 1;
        else if (!strcmp(a, "--process-output")) po = 1;
        else if (!strcmp(a, "--extras")) extras = 1;
        else if (!strcmp(a, "--forward-only")) fwd = 1;
        else if (!strcmp(a, "--ref") && v) ref = argv[++i];
        else if (!strcmp(a, "-o") && v) out = argv[++i];
        else if (a[0] != '-' && !model) model = a;
        else if (a[0] != '-' && !text) text = a;
        else {
            fprintf(stderr, "usage: see bench/calib.c\n");
            return 2;
        }
    }
    if (!model || !text) {
        fprintf(stderr, "usage: bench_calib MODEL TEXT [options] (see bench/calib.c)\n");
        return 2;
    }
    slm_threads_set(threads);
    slm_err err = {0};
    slm_src src;
    slm_tokenizer tok = {0};
    slm_map mp;
    int32_t *ids;
    size_t n_ids;
    if (slm_src_open(&src, model, &err) || slm_tokenizer_build(&tok, &src.vocab, &err) || slm_map_open(&mp, text, &err))
        return die(&err);
    size_t n = bytes >= 0 && (size_t)bytes < mp.size ? (size_t)bytes : mp.size;
    if (slm_tokenize(&tok, (const char *)mp.data, n, 1, &ids, &n_ids, &err)) return die(&err);
    slm_calib_opts o = {.ctx = ctx, .chunks = chunks, .bos_id = slm_tokenizer_bos(&tok), .gram = gram, .process_output = po};
    const int B = slm_calib_batch(&o, (int64_t)n_ids);
    size_t gram_bytes, bytes_all = slm_calib_bytes(&src.cfg, &o, B, &gram_bytes);
    slm_tensor_src ts;
    slm_src_tensors(&src, &ts);
    slm_model m = {0};
    if (slm_model_build_batch(&m, &src.cfg, &ts, B, ctx, 0, &err)) return die(&err);
    m.numerics = numerics;
    slm_calib c;
    double t0 = now();
    if (slm_calib_run(&c, &m, ids, (int64_t)n_ids, &o, &err)) return die(&err);
    double dt = now() - t0;
    long long toks = (long long)c.n_chunks * ctx;
    printf("calib: chunks=%lld tokens=%lld batch=%d threads=%d numerics=%s gram=%d bytes=%zu gram_bytes=%zu seconds=%.3f "
           "tok_per_s=%.0f\n", (long long)c.n_chunks, toks, B, slm_threads_get(), numerics ? "ggml" : "f32", gram, bytes_all,
           gram_bytes, dt, (double)toks / dt);
    if (fwd) { /* the same forwards, nothing observed */
        int32_t *t = malloc(sizeof(int32_t) * (size_t)B * ctx);
        t0 = now();
        for (int64_t i = 0; i < c.n_chunks; i += B) {
            int nb = (int)SLM_MIN((int64_t)B, c.n_chunks - i);
            memcpy(t, ids + i * ctx, sizeof(int32_t) * (size_t)nb * ctx);
            if (slm_model_forward_batch(&m, t, nb, ctx, 0, ctx, NULL, &err)) return die(&err);
        }
        dt = now() - t0;
        printf("forward: seconds=%.3f tok_per_s=%.0f\n", dt, (double)toks / dt);
        free(t);
    }
    slm_imatrix im;
    const char *slash = strrchr(text, '/');
    if (slm_imatrix_from_calib(&im, &c, slash ? slash + 1 : text, extras, &err)) return die(&err);
    if (out && slm_imatrix_save(&im, out, &err)) return die(&err);
    if (ref) {
        slm_imatrix r;
        if (slm_imatrix_load(&r, ref, &err)) return die(&err);
        compare(&im, &r);
        slm_imatrix_free(&r);
    }
    slm_imatrix_free(&im);
    slm_calib_free(&c);
    slm_model_free(&m);
    slm_free(ids);
    slm_map_close(&mp);
    slm_tokenizer_free(&tok);
    slm_src_close(&src);
    return 0;
}
