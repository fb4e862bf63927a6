/* export_stream.h - the streaming quantizer of export.c: a slab of rows cut into blocks of
 * whole chunks, each block checked, quantized and measured in one pass on a thread pool while
 * the afile's writer thread writes the block before; the block's input pages released behind.
 *
 * Owns: the block loop, per-thread scratch, converting stored F16/BF16/block rows to f32 one
 * chunk at a time on the workers (rows borrowed from the source's map).
 * Must not: print; change bytes or statistics: the chunks are slm_quantize_tensor's, reduced in
 * the same order, so the report's numbers equal those of one slm_quantize_tensor per slab.
 */
#ifndef SLM_EXPORT_STREAM_H
#define SLM_EXPORT_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/pool.h"
#include "export/export.h"
#include "quantize/quantize.h"

typedef struct slm_stream {
    slm_pool *pool;
    int nth;
    size_t block_elems;  /* values per block (at least one chunk) */
    float *rows;         /* the block's stored rows when the source cannot lend them */
    uint8_t *out;        /* one chunk's output (<= 4 bytes a value), for a chunk across the end of
                            the output buffer; the others are quantized straight into it */
    float *scratch;      /* per thread: one chunk converted + one row dequantized */
    size_t scratch_elems;
    slm_qchunk *cs;      /* per chunk of a slab */
    size_t cs_cap;
} slm_stream;

/* Scratch for tensors of up to max_cols values a row and slabs of up to slab_elems values. */
int slm_stream_init(slm_stream *s, size_t max_cols, size_t slab_elems, slm_err *err);
void slm_stream_free(slm_stream *s);
/* Rows r0 .. r0+nr (one slab) of output tensor i quantized with importance weights w (or
   NULL) and written to x's writer; st = the slab's statistics. Errors as the export's: a NaN/Inf names the
   file, tensor, r0 and the index relative to r0. */
int slm_stream_slab(slm_stream *s, slm_export *x, size_t i, const float *w, int64_t r0, int64_t nr, slm_qstats *st,
                    slm_err *err);

#endif
