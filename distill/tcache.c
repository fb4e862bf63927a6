/* tcache.c - the teacher cache: build (teacher forward, top-k, zstd per window), open, check, read. */
#include "tcache.h"

#include <string.h>
#include <zstd.h>

#include "core/le.h"
#include "core/mem.h"
#include "core/sha256.h"
#include "core/slm.h"
#include "core/thread.h"
#include "distill/loss.h"

#define MAGIC "SLMTCCH1"
#define END_MAGIC "SLMTCEND"
#define VERSION 1
#define LEVEL 3

_Static_assert(sizeof(slm_tcache_head) == 128, "the header is 128 bytes on disk");

size_t slm_tcache_window_bytes(int ctx, int k) { return (size_t)ctx * ((size_t)k * 8 + 16); }

void slm_tcache_ids_sha(const int32_t *ids, int64_t n, int ctx, int32_t bos, uint8_t out[32]) {
    slm_sha256 s;
    int32_t p[2] = {ctx, bos};
    slm_sha256_init(&s);
    slm_sha256_update(&s, p, sizeof p);
    slm_sha256_update(&s, ids, (size_t)n * sizeof *ids);
    slm_sha256_final(&s, out);
}

/* Window record of B windows' logits (B, ctx, V) into rec (one window each), in parallel. */
static void records(const float *logits, int B, int ctx, int V, int k, float temperature, uint8_t *rec) {
    const size_t wb = slm_tcache_window_bytes(ctx, k);
#pragma omp parallel for schedule(static) num_threads(slm_threads_get())
    for (int64_t t = 0; t < (int64_t)B * ctx; t++) {
        uint8_t *r = rec + (size_t)(t / ctx) * wb;
        const int64_t p = t % ctx;
        int32_t *ids = (int32_t *)(void *)r;
        float *vals = (float *)(void *)(r + (size_t)ctx * k * 4);
        double *lse = (double *)(void *)(r + (size_t)ctx * k * 8), *tail = lse + ctx;
        slm_distill_topk(logits + (size_t)t * V, V, k, temperature, ids + p * k, vals + p * k, &lse[p], &tail[p]);
    }
}

static int put_frame(slm_afile *f, ZSTD_CCtx *cc, const uint8_t *rec, size_t n, uint8_t *dst, size_t cap, uint64_t *off,
                     slm_err *err) {
    size_t z = ZSTD_compressCCtx(cc, dst, cap, rec, n, LEVEL);
    if (ZSTD_isError(z)) return slm_errf(err, SLM_E_IO, "teacher cache: zstd: %s", ZSTD_getErrorName(z));
    SLM_TRY(slm_afile_write(f, dst, z, err));
    *off += z;
    return SLM_OK;
}

int slm_tcache_write(slm_afile *f, slm_model *teacher, const int32_t *ids, int64_t n_ids, int ctx, int batch, int32_t bos, int k,
                     float temperature, const uint8_t teacher_sha[32], void (*progress)(void *ud, int64_t done, int64_t n),
                     void *ud, slm_err *err) {
    const int V = teacher->cfg.n_vocab;
    const int64_t nw = n_ids > 0 ? (n_ids - 1) / ctx : 0;
    if (k < 1 || k > V || nw < 1 || batch < 1 || batch > teacher->max_batch || ctx > teacher->max_ctx)
        return slm_errf(err, SLM_E_ARG, "teacher cache: top-%d of %d, %lld windows of %d, batch %d", k, V, (long long)nw, ctx, batch);
    slm_tcache_head h = {.version = VERSION, .k = (uint32_t)k, .n_vocab = (uint32_t)V, .ctx = (uint32_t)ctx, .bos = bos,
                         .temperature = temperature, .n_windows = (uint64_t)nw, .n_ids = (uint64_t)n_ids};
    memcpy(h.magic, MAGIC, 8);
    memcpy(h.teacher_sha, teacher_sha, 32);
    slm_tcache_ids_sha(ids, n_ids, ctx, bos, h.ids_sha);
    const size_t wb = slm_tcache_window_bytes(ctx, k), cap = ZSTD_compressBound(wb);
    float *logits = NULL;
    int32_t *tok = NULL;
    uint8_t *rec = NULL, *dst = NULL;
    uint64_t *offs = NULL, off = sizeof h;
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    int rc = cc ? SLM_OK : slm_errf(err, SLM_E_NOMEM, "teacher cache: out of memory");
    if (!rc) rc = slm_alloc((void **)&logits, (size_t)batch * ctx * V * sizeof(float), err, "teacher logits");
    if (!rc) rc = slm_alloc((void **)&tok, (size_t)batch * ctx * sizeof(int32_t), err, "windows");
    if (!rc) rc = slm_alloc((void **)&rec, (size_t)batch * wb, err, "teacher cache records");
    if (!rc) rc = slm_alloc((void **)&dst, cap, err, "teacher cache frame");
    if (!rc) rc = slm_alloc((void **)&offs, (size_t)(nw + 1) * sizeof *offs, err, "teacher cache index");
    if (!rc) rc = slm_afile_write(f, &h, sizeof h, err);
    for (int64_t w0 = 0; !rc && w0 < nw; w0 += batch) {
        const int B = (int)(nw - w0 < batch ? nw - w0 : batch);
        for (int b = 0; b < B; b++) {
            memcpy(tok + (size_t)b * ctx, ids + (w0 + b) * ctx, (size_t)ctx * sizeof(int32_t));
            if (bos >= 0) tok[(size_t)b * ctx] = bos;
        }
        rc = slm_model_forward_batch(teacher, tok, B, ctx, 0, 0, logits, err);
        if (!rc) records(logits, B, ctx, V, k, temperature, rec);
        for (int b = 0; !rc && b < B; b++) offs[w0 + b] = off, rc = put_frame(f, cc, rec + (size_t)b * wb, wb, dst, cap, &off, err);
        if (!rc && progress) progress(ud, w0 + B, nw);
    }
    if (!rc) offs[nw] = off, rc = slm_afile_write(f, offs, (size_t)(nw + 1) * sizeof *offs, err);
    if (!rc) rc = slm_afile_write(f, &off, sizeof off, err);
    if (!rc) rc = slm_afile_write(f, END_MAGIC, 8, err);
    ZSTD_freeCCtx(cc);
    slm_free(logits), slm_free(tok), slm_free(rec), slm_free(dst), slm_free(offs);
    return rc;
}

int slm_tcache_open(slm_tcache *c, const char *path, slm_err *err) {
    memset(c, 0, sizeof *c);
    c->path = path;
    SLM_TRY(slm_map_open(&c->map, path, err));
    const uint8_t *d = c->map.data;
    const size_t n = c->map.size;
    slm_tcache_head *h = &c->h;
    if (n < sizeof *h + 24 || memcmp(d, MAGIC, 8) || memcmp(d + n - 8, END_MAGIC, 8))
        return slm_tcache_close(c), slm_errf(err, SLM_E_FORMAT, "%s: not an slm teacher cache (or truncated)", path);
    memcpy(h, d, sizeof *h);
    const uint64_t ix = slm_le_u64(d + n - 16), nw = h->n_windows;
    if (h->version != VERSION || h->k < 1 || h->k > h->n_vocab || h->ctx < 2 || h->ctx > (1u << 20) || nw < 1 ||
        nw > (n / 8) || ix < sizeof *h || ix > n - 16 || (n - 16 - ix) / 8 != nw + 1 || (n - 16 - ix) % 8)
        return slm_tcache_close(c), slm_errf(err, SLM_E_FORMAT, "%s: damaged teacher cache header or index", path);
    c->index = d + ix;
    for (uint64_t w = 0; w <= nw; w++) {
        uint64_t o = slm_le_u64(c->index + 8 * w);
        if (o < sizeof *h || o > ix || (w && o < slm_le_u64(c->index + 8 * (w - 1))))
            return slm_tcache_close(c), slm_errf(err, SLM_E_FORMAT, "%s: damaged teacher cache index (window %llu)", path,
                                                 (unsigned long long)w);
    }
    c->buf_size = slm_tcache_window_bytes((int)h->ctx, (int)h->k);
    c->dctx = ZSTD_createDCtx();
    if (!c->dctx || slm_alloc(&c->buf, c->buf_size, err, "teacher cache window"))
        return slm_tcache_close(c), c->dctx ? err->code : slm_errf(err, SLM_E_NOMEM, "%s: out of memory", path);
    return SLM_OK;
}

void slm_tcache_close(slm_tcache *c) {
    if (c->dctx) ZSTD_freeDCtx(c->dctx);
    slm_free(c->buf);
    slm_map_close(&c->map);
    memset(c, 0, sizeof *c);
}

int slm_tcache_check(const slm_tcache *c, const uint8_t teacher_sha[32], const int32_t *ids, int64_t n_ids, int ctx, int32_t bos,
                     float temperature, int n_vocab, slm_err *err) {
    const slm_tcache_head *h = &c->h;
    uint8_t s[32];
    if ((int)h->n_vocab != n_vocab || memcmp(h->teacher_sha, teacher_sha, 32))
        return slm_errf(err, SLM_E_ARG, "%s: made from another teacher (remove it or give another --teacher-cache)", c->path);
    if ((int)h->ctx != ctx || h->bos != bos)
        return slm_errf(err, SLM_E_ARG, "%s: made with --ctx %u (not %d)%s", c->path, h->ctx, ctx, h->bos != bos ? " and another BOS" : "");
    if (h->temperature != temperature)
        return slm_errf(err, SLM_E_ARG, "%s: made at --temperature %g (not %g)", c->path, (double)h->temperature, (double)temperature);
    slm_tcache_ids_sha(ids, n_ids, ctx, bos, s);
    if (h->n_ids != (uint64_t)n_ids || memcmp(h->ids_sha, s, 32))
        return slm_errf(err, SLM_E_ARG, "%s: made from another --text", c->path);
    return SLM_OK;
}

int slm_tcache_window(slm_tcache *c, int64_t w, const int32_t **ids, const float **vals, const double **lse, const double **tail,
                      slm_err *err) {
    if (w < 0 || (uint64_t)w >= c->h.n_windows) return slm_errf(err, SLM_E_ARG, "%s: no window %lld", c->path, (long long)w);
    const uint64_t a = slm_le_u64(c->index + 8 * w), b = slm_le_u64(c->index + 8 * (w + 1));
    size_t got = ZSTD_decompressDCtx(c->dctx, c->buf, c->buf_size, (const uint8_t *)c->map.data + a, (size_t)(b - a));
    if (ZSTD_isError(got) || got != c->buf_size)
        return slm_errf(err, SLM_E_FORMAT, "%s: window %lld is damaged (%s)", c->path, (long long)w,
                        ZSTD_isError(got) ? ZSTD_getErrorName(got) : "wrong size");
    const int ctx = (int)c->h.ctx, k = (int)c->h.k;
    uint8_t *r = c->buf;
    *ids = (const int32_t *)(void *)r;
    *vals = (const float *)(void *)(r + (size_t)ctx * k * 4);
    *lse = (const double *)(void *)(r + (size_t)ctx * k * 8);
    *tail = *lse + ctx;
    for (int64_t i = 0; i < (int64_t)ctx * k; i++)
        if ((*ids)[i] < 0 || (uint32_t)(*ids)[i] >= c->h.n_vocab)
            return slm_errf(err, SLM_E_FORMAT, "%s: window %lld holds a token id outside the vocabulary", c->path, (long long)w);
    return SLM_OK;
}
