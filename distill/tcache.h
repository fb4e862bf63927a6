/* tcache.h - the teacher cache: a teacher's next-token distributions over a token stream,
 * computed once and kept as top-k logits + log-sum-exp + tail mass per token in a zstd file,
 * so many student runs (other students, learning rates, seeds) reuse one teacher pass.
 *
 * Owns: the file format, building it (the teacher's forward over every training window),
 * reading one window back, and the checks that a cache belongs to this teacher and text.
 * Must not: print. The loss over it is distill/loss.h's slm_distill_loss_topk.
 *
 * File (little-endian): a 128-byte header (magic "SLMTCCH1", version, k, n_vocab, ctx, bos,
 * temperature, n_windows, n_ids, SHA-256 of the teacher's identity and of the ids), then one
 * zstd frame per window (window w = ids[w ctx .. (w + 1) ctx), BOS first, as the trainer's
 * windows), each holding ctx x k ids (i32), ctx x k logits (f32), ctx log-sum-exps at the
 * temperature (f64) and ctx tail masses (f64); then the (n_windows + 1) frame offsets (u64),
 * the index's offset (u64) and "SLMTCEND". Written through core/afile.h (atomic).
 */
#ifndef SLM_DISTILL_TCACHE_H
#define SLM_DISTILL_TCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "core/afile.h"
#include "core/err.h"
#include "core/mapfile.h"
#include "model/transformer.h"

typedef struct slm_tcache_head {
    char magic[8];
    uint32_t version, k, n_vocab, ctx;
    int32_t bos;
    float temperature;
    uint64_t n_windows, n_ids;
    uint8_t teacher_sha[32], ids_sha[32];
    uint8_t reserved[16];
} slm_tcache_head;

typedef struct slm_tcache {
    slm_map map;
    slm_tcache_head h;
    const uint8_t *index;  /* (n_windows + 1) u64 frame offsets, in the map */
    void *buf;             /* one window, decompressed */
    size_t buf_size;
    void *dctx;            /* ZSTD_DCtx */
    const char *path;
} slm_tcache;

/* Bytes of one window's record. */
size_t slm_tcache_window_bytes(int ctx, int k);

/* SHA-256 of ids (n) with ctx and bos: what a cache's windows were made from. */
void slm_tcache_ids_sha(const int32_t *ids, int64_t n, int ctx, int32_t bos, uint8_t out[32]);

/* Writes the cache of teacher (built for batch windows of ctx) over ids into f: top-k at
   temperature; teacher_sha identifies the teacher (the caller's choice, e.g. a hash of its
   tensor table and norm weights). progress(ud, done, n) may be NULL. */
int slm_tcache_write(slm_afile *f, slm_model *teacher, const int32_t *ids, int64_t n_ids, int ctx, int batch, int32_t bos, int k,
                     float temperature, const uint8_t teacher_sha[32], void (*progress)(void *ud, int64_t done, int64_t n),
                     void *ud, slm_err *err);

/* Opens and validates a cache (header, index; frames are checked when read). */
int slm_tcache_open(slm_tcache *c, const char *path, slm_err *err);
void slm_tcache_close(slm_tcache *c);
/* SLM_E_ARG naming the file and the first difference when the cache was made for another
   teacher, text, ctx, BOS or temperature. */
int slm_tcache_check(const slm_tcache *c, const uint8_t teacher_sha[32], const int32_t *ids, int64_t n_ids, int ctx, int32_t bos,
                     float temperature, int n_vocab, slm_err *err);
/* Window w's arrays (valid until the next call): ids, vals (ctx, k), lse, tail (ctx). */
int slm_tcache_window(slm_tcache *c, int64_t w, const int32_t **ids, const float **vals, const double **lse, const double **tail,
                      slm_err *err);

#endif
