/* export_stream.c - blocks of chunks on the pool; see export_stream.h. */
#include "export/export_stream.h"

#include <string.h>

#include "core/dtype.h"
#include "core/mem.h"
#include "core/slm.h"
#include "core/thread.h"
#include "quantize/qtypes.h"
#include "quantize/quants.h"

#define BLOCK_ELEMS ((size_t)512 * 1024) /* 2 MiB of f32 rows a block: bounds the mapped input in RSS */
#define FAULT_AROUND ((size_t)64 << 10) /* Linux maps up to this much around a read fault */
#define CHUNK_MAX_ELEMS(cols) ((size_t)32 * 512 + (cols)) /* slm_qchunk_rows' chunks hold less */

int slm_stream_init(slm_stream *s, size_t max_cols, size_t slab_elems, slm_err *err) {
    memset(s, 0, sizeof *s);
    s->nth = slm_threads_get();
    s->block_elems = SLM_MAX(BLOCK_ELEMS, CHUNK_MAX_ELEMS(max_cols));
    s->scratch_elems = CHUNK_MAX_ELEMS(max_cols) + max_cols;
    s->cs_cap = slab_elems / (32 * 512) + 2; /* chunks hold >= 32 * 512 values or one row */
    SLM_TRY(slm_alloc((void **)&s->rows, s->block_elems * sizeof(float), err, "f32 rows"));
    SLM_TRY(slm_alloc((void **)&s->out, CHUNK_MAX_ELEMS(max_cols) * sizeof(float), err, "output rows"));
    SLM_TRY(slm_alloc((void **)&s->scratch, (size_t)s->nth * s->scratch_elems * sizeof(float), err, "quantization scratch"));
    SLM_TRY(slm_calloc((void **)&s->cs, s->cs_cap, sizeof(*s->cs), err, "quantization statistics"));
    s->pool = slm_pool_create(s->nth); /* after the allocations: a failed one leaves no thread */
    return SLM_OK;
}

void slm_stream_free(slm_stream *s) {
    slm_pool_free(s->pool);
    slm_free(s->rows);
    slm_free(s->out);
    slm_free(s->scratch);
    slm_free(s->cs);
    memset(s, 0, sizeof *s);
}

/* One block: chunks c0 .. c0+n of the slab. Rows come as f32 (rows, chunk-relative to the
   block) or as stored bytes converted by the worker (raw). */
typedef struct block_job {
    slm_stream *s;
    int type, src_type;
    int64_t ncols, nr, rpc;    /* the block's rows, rows per chunk */
    const float *rows;          /* f32 rows of the block, or NULL */
    const uint8_t *raw;         /* stored rows of the block, or NULL */
    size_t raw_rowb, out_rowb;
    const float *w;
    slm_qchunk *cs;             /* the block's first chunk */
    uint8_t *out;               /* the block's output */
} block_job;

static void block_task(void *ctx, int64_t k, int thread) {
    const block_job *j = ctx;
    const int64_t r = k * j->rpc, n = SLM_MIN(j->rpc, j->nr - r);
    float *scratch = j->s->scratch + (size_t)thread * j->s->scratch_elems;
    const float *x;
    float *y = scratch; /* one dequantized row for the statistics */
    if (j->rows) {
        x = j->rows + r * j->ncols;
    } else { /* the chunk converted here, in cache for the quantizer right after */
        float *conv = scratch + j->ncols;
        slm_dequantize_rows(j->src_type, j->raw + (size_t)r * j->raw_rowb, conv, n, j->ncols);
        x = conv;
    }
    slm_quantize_chunk_stats(j->type, x, n, j->ncols, j->w, j->out + (size_t)r * j->out_rowb, y, &j->cs[k]);
}

int slm_stream_slab(slm_stream *s, slm_export *x, size_t i, const float *w, int64_t r0, int64_t nr, slm_qstats *st,
                    slm_err *err) {
    const slm_tensor_src *src = x->src;
    const size_t si = x->order[i];
    const slm_tensor_info t = slm_tensor_src_info(src, si);
    const int type = x->types[i];
    const int64_t ncols = slm_tensor_info_ncols(&t);
    int rc;
    if ((rc = slm_quantize_check(type, ncols, w, err))) return slm_err_prefix(err, "tensor '%s'", t.name), rc;
    const size_t out_rowb = slm_dtype_row_size(type, ncols), raw_rowb = slm_dtype_row_size(t.dtype, ncols);
    const int64_t rpc = slm_qchunk_rows(ncols), nchunk = (nr + rpc - 1) / rpc;
    SLM_ASSERT((size_t)nchunk <= s->cs_cap);
    const int64_t cpb = SLM_MAX(1, (int64_t)(s->block_elems / (size_t)(rpc * ncols)));
    const slm_dtype_traits *tr = slm_dtype_get(t.dtype);
    const size_t chunk_out = (size_t)rpc * out_rowb;
    for (int64_t c0 = 0, nc; c0 < nchunk; c0 += nc) {
        /* the chunks that fit whole into the output buffer are quantized straight into it; a
           chunk across its end goes through s->out (one chunk) and is copied */
        size_t room;
        uint8_t *dst = slm_gguf_writer_space(&x->w, &room);
        const int64_t left = nr - c0 * rpc;
        nc = SLM_MIN(cpb, nchunk - c0);
        if ((size_t)SLM_MIN(nc * rpc, left) * out_rowb > room) nc = (int64_t)(room / chunk_out);
        const int bounce = nc == 0;
        if (bounce) nc = 1, dst = s->out;
        const int64_t br0 = r0 + c0 * rpc, bn = SLM_MIN(nc * rpc, left);
        block_job j = {s, type, t.dtype, ncols, bn, rpc, NULL, NULL, raw_rowb, out_rowb, w, s->cs + c0, dst};
        slm_tensor_src_advise(src, si, br0, bn, 1);
        /* the stored rows, lent by the source (its map) or copied into s->rows: F32 quantized
           where they lie, other types converted by the workers one chunk at a time */
        const uint8_t *raw = src->read_raw(src->ud, si, br0, bn, s->rows, err);
        if (!raw) return err->code ? err->code : SLM_E_IO;
        if (tr->is_quantized && ((uintptr_t)raw & 1)) { /* blocks hold 16-bit fields */
            memmove(s->rows, raw, (size_t)bn * raw_rowb);
            raw = (const uint8_t *)s->rows;
        }
        if (t.dtype == SLM_DTYPE_F32 && ((uintptr_t)raw & 3) == 0) j.rows = (const float *)raw;
        else j.raw = raw;
        slm_pool_run(s->pool, nc, block_task, &j);
        for (int64_t c = c0; c < c0 + nc; c++) /* the slab's first NaN/Inf, as slm_quantize_tensor */
            if (s->cs[c].first_bad >= 0) {
                rc = slm_qchunk_reduce(s->cs, c + 1, nr, ncols, st, err);
                slm_err e2 = *err; /* made tensor-relative */
                return slm_errf(err, rc, "%s: tensor '%s' (rows from %lld): %s", t.file, t.src_name, (long long)r0, e2.msg);
            }
        if (bounce) SLM_TRY(slm_gguf_writer_put_part(&x->w, s->out, (size_t)bn * out_rowb, err));
        else SLM_TRY(slm_gguf_writer_advance(&x->w, (size_t)bn * out_rowb, err));
        /* the block's input pages leave RSS, and those the kernel mapped around the start of the
           block (fault-around: up to 64 KiB before it, in the block before) */
        const int64_t back = SLM_MIN(br0, (int64_t)((FAULT_AROUND + raw_rowb - 1) / raw_rowb));
        slm_tensor_src_advise(src, si, br0 - back, bn + back, 0);
    }
    return slm_qchunk_reduce(s->cs, nchunk, nr, ncols, st, err); /* no NaN/Inf: the statistics */
}
