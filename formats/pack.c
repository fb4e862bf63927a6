/* pack.c - packed GGUF: the validating reader, on-demand tensor decompression, unpacking and the
 * deterministic writer (format: pack.h).
 * Must not: print, or decompress anything before the index and the GGUF header are checked.
 */
#include "pack.h"

#include <string.h>
#include <zstd.h>

#include "core/le.h"
#include "core/mem.h"
#include "core/slm.h"

/* zstd's largest expansion: an RLE block of 128 KiB (ZSTD_BLOCKSIZE_MAX) takes 4 bytes. A
   frame whose recorded size is larger than this many times its bytes is not a real frame
   (and would make a reader allocate what the file cannot back). */
#define MAX_RATIO 32768u

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Drops pages of a file map we are done with; images in memory (no path) are left alone:
   MADV_DONTNEED would zero anonymous memory. */
static void drop_pages(const slm_map *m, size_t off, size_t len) {
    if (m->path) slm_map_advise_dontneed(m, off, len);
}

int slm_pack_sniff(const uint8_t *data, size_t size) {
    return size >= 16 && slm_le_u32(data) == SLM_PACK_SKIPPABLE && !memcmp(data + 8, SLM_PACK_MAGIC, 8);
}

/* "tensor 'name'" or "the GGUF header" for frame k, into buf. */
static const char *frame_name(const slm_pack *p, size_t k, char *buf, size_t cap) {
    if (k == 0) snprintf(buf, cap, "the GGUF header (frame 0)");
    else if (k - 1 < p->gguf.n_tensors) snprintf(buf, cap, "tensor '%s' (frame %zu)", p->gguf.tensors[k - 1].name, k);
    else snprintf(buf, cap, "frame %zu", k);
    return buf;
}

/* ---------------------------------------------------------------------------------------------
 * reading: header, index, frames, the GGUF header */

static int read_header(slm_pack *p, slm_err *err) {
    const uint8_t *d = p->map.data;
    const size_t size = p->map.size;
    if (!slm_pack_sniff(d, size)) {
        if (size >= 4 && slm_le_u32(d) == SLM_GGUF_MAGIC) return slm_errf(err, SLM_E_FORMAT, "a GGUF file, not a packed one");
        if (size < 16) return slm_errf(err, SLM_E_FORMAT, "not a packed GGUF (%zu bytes)", size);
        return slm_errf(err, SLM_E_FORMAT, "not a packed GGUF (bad magic %02x %02x %02x %02x)", d[0], d[1], d[2], d[3]);
    }
    if (slm_le_u32(d + 4) != SLM_PACK_HEADER_BYTES - 8)
        return slm_errf(err, SLM_E_FORMAT, "pack header of %u bytes (version 1 has %d)", slm_le_u32(d + 4), SLM_PACK_HEADER_BYTES - 8);
    if (size < SLM_PACK_HEADER_BYTES) return slm_errf(err, SLM_E_FORMAT, "truncated: %zu bytes, the pack header alone has 32", size);
    p->version = slm_le_u32(d + 16);
    if (p->version != SLM_PACK_VERSION)
        return slm_errf(err, SLM_E_FORMAT, "unsupported pack version %u (slm reads %d)", p->version, SLM_PACK_VERSION);
    p->level = slm_le_u32(d + 20);
    if (p->level < 1 || p->level > 22) return slm_errf(err, SLM_E_FORMAT, "pack header: zstd level %u is not in 1..22", p->level);
    p->gguf_size = slm_le_u64(d + 24);
    return SLM_OK;
}

/* The index at the end: where it starts, its entries; frames contiguous from the header to it. */
static int read_index(slm_pack *p, slm_err *err) {
    const uint8_t *d = p->map.data;
    const size_t size = p->map.size;
    const size_t min = SLM_PACK_HEADER_BYTES + 8 + SLM_PACK_FOOTER_BYTES;
    if (size < min + SLM_PACK_ENTRY_BYTES || memcmp(d + size - 8, SLM_PACK_INDEX_MAGIC, 8))
        return slm_errf(err, SLM_E_FORMAT, "no index at the end of the file (truncated, or not a finished pack)");
    uint64_t n = slm_le_u64(d + size - 16);
    if (n == 0 || n > (size - min) / SLM_PACK_ENTRY_BYTES)
        return slm_errf(err, SLM_E_FORMAT, "index of %llu frames does not fit in a %zu-byte file", (unsigned long long)n, size);
    const size_t body = (size_t)n * SLM_PACK_ENTRY_BYTES;
    const size_t at = size - SLM_PACK_FOOTER_BYTES - body - 8;
    if (slm_le_u32(d + at) != SLM_PACK_SKIPPABLE || (uint64_t)slm_le_u32(d + at + 4) != (uint64_t)body + SLM_PACK_FOOTER_BYTES)
        return slm_errf(err, SLM_E_FORMAT, "index frame at byte %zu is damaged (bad magic or size)", at);
    p->index_offset = at;
    SLM_TRY(slm_calloc((void **)&p->frames, (size_t)n, sizeof(slm_pack_frame), err, "pack index"));
    p->n_frames = (size_t)n;
    uint64_t expect = SLM_PACK_HEADER_BYTES, total = 0;
    for (size_t k = 0; k < p->n_frames; k++) {
        slm_pack_frame *f = &p->frames[k];
        const uint8_t *e = d + at + 8 + k * SLM_PACK_ENTRY_BYTES;
        f->offset = slm_le_u64(e);
        f->csize = slm_le_u64(e + 8);
        f->rsize = slm_le_u64(e + 16);
        if (f->offset != expect)
            return slm_errf(err, SLM_E_FORMAT, "index: frame %zu at byte %llu, expected %llu (frames follow each other)", k,
                            (unsigned long long)f->offset, (unsigned long long)expect);
        if (f->csize > at - expect)
            return slm_errf(err, SLM_E_FORMAT, "index: frame %zu of %llu bytes runs past the index at byte %zu", k,
                            (unsigned long long)f->csize, at);
        if (f->rsize / MAX_RATIO > f->csize)
            return slm_errf(err, SLM_E_FORMAT, "index: frame %zu cannot decompress %llu bytes to %llu", k,
                            (unsigned long long)f->csize, (unsigned long long)f->rsize);
        expect += f->csize;
        total += f->rsize; /* < 2^64: each rsize <= 32768 x a size_t */
    }
    if (expect != at)
        return slm_errf(err, SLM_E_FORMAT, "index: the frames end at byte %llu, the index starts at %zu", (unsigned long long)expect, at);
    if (total != p->gguf_size)
        return slm_errf(err, SLM_E_FORMAT, "index: the frames decompress to %llu bytes, the header says the GGUF has %llu",
                        (unsigned long long)total, (unsigned long long)p->gguf_size);
    return SLM_OK;
}

/* Frame k is one complete zstd frame of exactly its bytes, recording its decompressed size. */
static int check_frame(const slm_pack *p, size_t k, slm_err *err) {
    const slm_pack_frame *f = &p->frames[k];
    const uint8_t *src = p->map.data + f->offset;
    char nm[96];
    if (f->csize < 4 || slm_le_u32(src) != ZSTD_MAGICNUMBER)
        return slm_errf(err, SLM_E_FORMAT, "%s is not a zstd frame", frame_name(p, k, nm, sizeof nm));
    unsigned long long content = ZSTD_getFrameContentSize(src, (size_t)f->csize);
    if (content == ZSTD_CONTENTSIZE_ERROR)
        return slm_errf(err, SLM_E_FORMAT, "%s: damaged zstd frame header", frame_name(p, k, nm, sizeof nm));
    if (content == ZSTD_CONTENTSIZE_UNKNOWN || content != f->rsize)
        return slm_errf(err, SLM_E_FORMAT, "%s: the zstd frame records %s%llu bytes, the index says %llu", frame_name(p, k, nm, sizeof nm),
                        content == ZSTD_CONTENTSIZE_UNKNOWN ? "no size, not " : "", content == ZSTD_CONTENTSIZE_UNKNOWN ? 0ULL : content,
                        (unsigned long long)f->rsize);
    size_t whole = ZSTD_findFrameCompressedSize(src, (size_t)f->csize);
    if (ZSTD_isError(whole) || whole != f->csize)
        return slm_errf(err, SLM_E_FORMAT, "%s: %s (the index says %llu bytes)", frame_name(p, k, nm, sizeof nm),
                        ZSTD_isError(whole) ? "truncated zstd frame" : "the zstd frame is shorter than its index entry",
                        (unsigned long long)f->csize);
    return SLM_OK;
}

/* Decompresses frame k (rsize bytes) into dst whole, checking size and checksum. */
static int decompress_frame(const slm_pack *p, size_t k, uint8_t *dst, slm_err *err) {
    const slm_pack_frame *f = &p->frames[k];
    char nm[96];
    size_t got = ZSTD_decompressDCtx(p->dctx, dst, (size_t)f->rsize, p->map.data + f->offset, (size_t)f->csize);
    if (ZSTD_isError(got))
        return slm_errf(err, SLM_E_FORMAT, "%s: corrupt compressed data (zstd: %s)", frame_name(p, k, nm, sizeof nm),
                        ZSTD_getErrorName(got));
    if (got != f->rsize)
        return slm_errf(err, SLM_E_FORMAT, "%s: decompressed to %zu bytes, expected %llu", frame_name(p, k, nm, sizeof nm), got,
                        (unsigned long long)f->rsize);
    return SLM_OK;
}

/* Frame 0 -> the GGUF header, and every tensor's span against its frame. */
static int read_gguf_header(slm_pack *p, slm_err *err) {
    const slm_pack_frame *f0 = &p->frames[0];
    if (f0->rsize > SLM_PACK_HEAD_MAX) {
        char a[32], b[32];
        return slm_errf(err, SLM_E_UNSUPPORTED, "the GGUF header takes %s, more than the %s slm reads",
                        slm_fmt_bytes(a, sizeof a, (double)f0->rsize), slm_fmt_bytes(b, sizeof b, (double)SLM_PACK_HEAD_MAX));
    }
    SLM_TRY(slm_alloc((void **)&p->head, (size_t)f0->rsize + 1, err, "the GGUF header"));
    SLM_TRY(decompress_frame(p, 0, p->head, err));
    int rc = slm_gguf_parse_header(&p->gguf, p->head, (size_t)f0->rsize, (size_t)p->gguf_size, err);
    if (rc) return slm_err_prefix(err, "GGUF header");
    const slm_gguf *g = &p->gguf;
    if (p->n_frames != g->n_tensors + 1)
        return slm_errf(err, SLM_E_FORMAT, "index of %zu frames for a GGUF of %zu tensors (one frame each, plus the header)",
                        p->n_frames, g->n_tensors);
    for (size_t i = 0; i < g->n_tensors; i++) {
        uint64_t start = g->data_offset + g->tensors[i].offset;
        uint64_t end = i + 1 < g->n_tensors ? g->data_offset + g->tensors[i + 1].offset : p->gguf_size;
        if (p->frames[i + 1].rsize != end - start)
            return slm_errf(err, SLM_E_FORMAT, "tensor '%s' (frame %zu): %llu bytes, its span in the GGUF is %llu", g->tensors[i].name,
                            i + 1, (unsigned long long)p->frames[i + 1].rsize, (unsigned long long)(end - start));
    }
    return SLM_OK;
}

int slm_pack_parse(slm_pack *p, const uint8_t *data, size_t size, slm_err *err) {
    memset(p, 0, sizeof(*p));
    p->map.data = data;
    p->map.size = size;
    int rc = read_header(p, err);
    if (!rc) rc = read_index(p, err);
    for (size_t k = 0; !rc && k < p->n_frames; k++) rc = check_frame(p, k, err);
    if (!rc && !(p->dctx = ZSTD_createDCtx())) rc = slm_errf(err, SLM_E_NOMEM, "zstd decompression context: out of memory");
    if (!rc) rc = read_gguf_header(p, err);
    if (!rc && p->gguf.n_tensors)
        rc = slm_calloc((void **)&p->cache, p->gguf.n_tensors, sizeof(uint8_t *), err, "tensor cache");
    if (rc) slm_pack_close(p);
    return rc;
}

int slm_pack_open(slm_pack *p, const char *path, slm_err *err) {
    slm_map m;
    memset(p, 0, sizeof(*p));
    SLM_TRY(slm_map_open(&m, path, err));
    int rc = slm_pack_parse(p, m.data, m.size, err);
    if (rc) {
        slm_err_prefix(err, "%s", path);
        slm_map_close(&m);
        memset(p, 0, sizeof(*p));
        return rc;
    }
    p->map = m;
    return SLM_OK;
}

void slm_pack_close(slm_pack *p) {
    for (size_t i = 0; p->cache && i < p->gguf.n_tensors; i++) slm_free(p->cache[i]);
    slm_free(p->cache);
    slm_gguf_close(&p->gguf);
    slm_free(p->head);
    slm_free(p->frames);
    ZSTD_freeDCtx(p->dctx);
    if (p->map.path) slm_map_close(&p->map); /* parse() images are not ours to unmap */
    memset(p, 0, sizeof(*p));
}

/* ---------------------------------------------------------------------------------------------
 * tensors on demand */

int slm_pack_tensor(const slm_pack *p, size_t i, const uint8_t **data, slm_err *err) {
    SLM_ASSERT(i < p->gguf.n_tensors);
    if (!p->cache[i]) {
        uint8_t *buf;
        char what[96];
        snprintf(what, sizeof what, "tensor '%s' (decompressed)", p->gguf.tensors[i].name);
        SLM_TRY(slm_alloc((void **)&buf, (size_t)p->frames[i + 1].rsize + 1, err, what));
        int rc = decompress_frame(p, i + 1, buf, err);
        if (rc) {
            slm_free(buf);
            return rc;
        }
        p->cache[i] = buf;
    }
    *data = p->cache[i];
    return SLM_OK;
}

void slm_pack_release(const slm_pack *p, size_t i) {
    SLM_ASSERT(i < p->gguf.n_tensors);
    slm_free(p->cache[i]);
    p->cache[i] = NULL;
}

uint64_t slm_pack_cached_bytes(const slm_pack *p) {
    uint64_t n = 0;
    for (size_t i = 0; i < p->gguf.n_tensors; i++)
        if (p->cache[i]) n += p->frames[i + 1].rsize;
    return n;
}

/* ---------------------------------------------------------------------------------------------
 * unpacking */

/* Frame k streamed into out through buf (cap bytes). */
static int unpack_frame(const slm_pack *p, size_t k, uint8_t *buf, size_t cap, slm_afile *out, slm_err *err) {
    const slm_pack_frame *f = &p->frames[k];
    char nm[96];
    ZSTD_inBuffer in = {p->map.data + f->offset, (size_t)f->csize, 0};
    uint64_t done = 0;
    ZSTD_DCtx_reset(p->dctx, ZSTD_reset_session_only);
    for (;;) {
        ZSTD_outBuffer o = {buf, cap, 0};
        size_t r = ZSTD_decompressStream(p->dctx, &o, &in);
        if (ZSTD_isError(r))
            return slm_errf(err, SLM_E_FORMAT, "%s: corrupt compressed data (zstd: %s)", frame_name(p, k, nm, sizeof nm),
                            ZSTD_getErrorName(r));
        if (o.pos > f->rsize - done)
            return slm_errf(err, SLM_E_FORMAT, "%s: decompresses to more than %llu bytes", frame_name(p, k, nm, sizeof nm),
                            (unsigned long long)f->rsize);
        done += o.pos;
        SLM_TRY(slm_afile_write(out, buf, o.pos, err));
        if (r == 0) break;                                   /* frame complete, checksum checked */
        if (in.pos == in.size && o.pos < cap)                /* wants input we do not have */
            return slm_errf(err, SLM_E_FORMAT, "%s: truncated zstd frame", frame_name(p, k, nm, sizeof nm));
    }
    if (done != f->rsize)
        return slm_errf(err, SLM_E_FORMAT, "%s: decompressed to %llu bytes, expected %llu", frame_name(p, k, nm, sizeof nm),
                        (unsigned long long)done, (unsigned long long)f->rsize);
    return SLM_OK;
}

int slm_pack_unpack(const slm_pack *p, slm_afile *out, slm_pack_progress_fn progress, void *ud, slm_err *err) {
    const size_t cap = ZSTD_DStreamOutSize();
    uint8_t *buf;
    SLM_TRY(slm_alloc((void **)&buf, cap, err, "decompression buffer"));
    int rc = SLM_OK;
    uint64_t done = 0;
    for (size_t k = 0; !rc && k < p->n_frames; k++) {
        rc = unpack_frame(p, k, buf, cap, out, err);
        drop_pages(&p->map, (size_t)p->frames[k].offset, (size_t)p->frames[k].csize);
        done += p->frames[k].rsize;
        if (!rc && progress) progress(ud, done, p->gguf_size);
    }
    slm_free(buf);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * writing */

/* zstd's parameters: the level, sizes and checksums in every frame, workers. With one worker
   or more, zstd's output does not depend on how many; a libzstd built without threads
   refuses workers and compresses in the caller's thread. */
static int make_cctx(ZSTD_CCtx **out, const slm_pack_opts *o, slm_err *err) {
    ZSTD_CCtx *c = ZSTD_createCCtx();
    if (!c) return slm_errf(err, SLM_E_NOMEM, "zstd compression context: out of memory");
    size_t r = ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, o->level);
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 1);
    if (ZSTD_isError(r)) {
        ZSTD_freeCCtx(c);
        return slm_errf(err, SLM_E_ARG, "zstd level %d: %s", o->level, ZSTD_getErrorName(r));
    }
    (void)ZSTD_CCtx_setParameter(c, ZSTD_c_nbWorkers, SLM_MAX(o->threads, 1));
    *out = c;
    return SLM_OK;
}

/* src[0 .. n) as one frame into out through buf; its compressed size into *csize. */
static int compress_frame(ZSTD_CCtx *c, const uint8_t *src, size_t n, uint8_t *buf, size_t cap, slm_afile *out, uint64_t *csize,
                          slm_err *err) {
    ZSTD_CCtx_reset(c, ZSTD_reset_session_only);
    size_t r = ZSTD_CCtx_setPledgedSrcSize(c, n);
    if (ZSTD_isError(r)) return slm_errf(err, SLM_E_IO, "zstd: %s", ZSTD_getErrorName(r));
    ZSTD_inBuffer in = {src, n, 0};
    *csize = 0;
    do {
        ZSTD_outBuffer o = {buf, cap, 0};
        r = ZSTD_compressStream2(c, &o, &in, ZSTD_e_end);
        if (ZSTD_isError(r)) return slm_errf(err, SLM_E_NOMEM, "zstd compression: %s", ZSTD_getErrorName(r));
        SLM_TRY(slm_afile_write(out, buf, o.pos, err));
        *csize += o.pos;
    } while (r != 0);
    return SLM_OK;
}

static int write_header(slm_afile *out, int level, uint64_t gguf_size, slm_err *err) {
    uint8_t h[SLM_PACK_HEADER_BYTES];
    put_u32(h, SLM_PACK_SKIPPABLE);
    put_u32(h + 4, SLM_PACK_HEADER_BYTES - 8);
    memcpy(h + 8, SLM_PACK_MAGIC, 8);
    put_u32(h + 16, SLM_PACK_VERSION);
    put_u32(h + 20, (uint32_t)level);
    put_u64(h + 24, gguf_size);
    return slm_afile_write(out, h, sizeof h, err);
}

static int write_index(slm_afile *out, const slm_pack_frame *fr, size_t n, slm_err *err) {
    uint8_t b[SLM_PACK_ENTRY_BYTES];
    put_u32(b, SLM_PACK_SKIPPABLE);
    put_u32(b + 4, (uint32_t)(n * SLM_PACK_ENTRY_BYTES + SLM_PACK_FOOTER_BYTES));
    SLM_TRY(slm_afile_write(out, b, 8, err));
    for (size_t k = 0; k < n; k++) {
        put_u64(b, fr[k].offset);
        put_u64(b + 8, fr[k].csize);
        put_u64(b + 16, fr[k].rsize);
        SLM_TRY(slm_afile_write(out, b, SLM_PACK_ENTRY_BYTES, err));
    }
    put_u64(b, (uint64_t)n);
    memcpy(b + 8, SLM_PACK_INDEX_MAGIC, 8);
    return slm_afile_write(out, b, SLM_PACK_FOOTER_BYTES, err);
}

/* The GGUF's bytes [start, end) of frame k: the header, then each tensor up to the next one. */
static void frame_span(const slm_gguf *g, size_t k, size_t *start, size_t *end) {
    const size_t d = g->n_tensors ? g->data_offset : g->map.size;
    if (k == 0) {
        *start = 0;
        *end = d;
        return;
    }
    *start = d + g->tensors[k - 1].offset;
    *end = k < g->n_tensors ? d + g->tensors[k].offset : g->map.size;
}

int slm_pack_write(const slm_gguf *g, const slm_pack_opts *o, slm_afile *out, slm_pack_stats *st, slm_err *err) {
    const size_t n = g->n_tensors + 1;
    SLM_ASSERT(!g->header_only && g->map.data);
    if (o->level < 1 || o->level > SLM_PACK_MAX_LEVEL)
        return slm_errf(err, SLM_E_ARG, "zstd level %d is not in 1..%d", o->level, SLM_PACK_MAX_LEVEL);
    if (n > (UINT32_MAX - SLM_PACK_FOOTER_BYTES) / SLM_PACK_ENTRY_BYTES)
        return slm_errf(err, SLM_E_UNSUPPORTED, "%zu tensors: more than a pack index holds", g->n_tensors);
    memset(st, 0, sizeof *st);
    slm_pack_frame *fr = NULL;
    uint8_t *buf = NULL;
    ZSTD_CCtx *c = NULL;
    const size_t cap = ZSTD_CStreamOutSize();
    int rc = slm_calloc((void **)&fr, n, sizeof *fr, err, "pack index");
    if (!rc) rc = slm_alloc((void **)&buf, cap, err, "compression buffer");
    if (!rc) rc = make_cctx(&c, o, err);
    if (!rc) rc = write_header(out, o->level, g->map.size, err);
    uint64_t pos = SLM_PACK_HEADER_BYTES;
    for (size_t k = 0; !rc && k < n; k++) {
        size_t start, end;
        frame_span(g, k, &start, &end);
        fr[k].offset = pos;
        fr[k].rsize = end - start;
        rc = compress_frame(c, g->map.data + start, end - start, buf, cap, out, &fr[k].csize, err);
        if (rc && k) slm_err_prefix(err, "tensor '%s'", g->tensors[k - 1].name);
        pos += fr[k].csize;
        drop_pages(&g->map, start, end - start); /* bounded RSS on big files */
        if (!rc && o->progress) o->progress(o->progress_ud, end, g->map.size);
    }
    if (!rc) rc = write_index(out, fr, n, err);
    if (!rc) {
        st->gguf_bytes = g->map.size;
        st->packed_bytes = pos + 8 + (uint64_t)n * SLM_PACK_ENTRY_BYTES + SLM_PACK_FOOTER_BYTES;
        st->head_csize = fr[0].csize;
    }
    ZSTD_freeCCtx(c);
    slm_free(buf);
    slm_free(fr);
    return rc;
}
