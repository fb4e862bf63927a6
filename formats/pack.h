/* pack.h - packed GGUF (".gguf.zst"): a GGUF compressed with zstd so that any one tensor can
 * be read without the others, and unpacked to the original file byte for byte.
 *
 * Container format, version 1 (all integers little-endian):
 *
 *   header   a zstd skippable frame (zstd -d skips it), 32 bytes:
 *              u32 0x184D2A50 (skippable magic) | u32 24 (content bytes)
 *              u8[8] "SLMZGGUF" | u32 version (1) | u32 zstd level used (1..22, informative)
 *              u64 size of the original GGUF in bytes
 *   frame 0  a zstd frame: the GGUF's bytes [0, D): header, metadata, tensor infos and the
 *            padding up to the data section (D = its data offset; the whole file when it
 *            has no tensors)
 *   frame k  a zstd frame per tensor, k = 1 .. n_tensors in the GGUF's tensor order: the bytes
 *            from tensor k-1's data up to the next tensor's (its padding included; the last
 *            one runs to the end of the file, so trailing bytes are kept too)
 *   index    a zstd skippable frame at the end, 8 + 24 n + 16 bytes:
 *              u32 0x184D2A50 | u32 24 n + 16
 *              n x { u64 offset of the frame in the container | u64 compressed size
 *                    | u64 decompressed size }            (n = n_tensors + 1 frames)
 *              u64 n | u8[8] "SLMZINDX"
 *
 * Every zstd frame records its decompressed size and a content checksum (XXH64), and is
 * independent (no dictionary, no reference to another frame). So the file is a valid zstd
 * stream whose decompression (`zstd -d x.gguf.zst`) is the original GGUF; a reader finds the
 * index from the last 16 bytes, decompresses frame 0 and parses the GGUF header from it, and
 * decompresses the frame of a tensor when that tensor is needed.
 * Reading validates everything before use: magics, version, the index (frames contiguous from
 * byte 32 to the index, decompressed sizes summing to the GGUF's size and equal to the spans
 * the GGUF header implies, each frame exactly one zstd frame of that content size, no frame
 * decompressing to more than zstd can encode in its bytes), the GGUF header (gguf.h's reader),
 * and at decompression each frame's size and checksum.
 * Writing is deterministic: the same GGUF and level give the same bytes for any thread count
 * (zstd's multi-threaded mode, used with at least one worker, does not depend on the number of
 * workers).
 *
 * Owns: the container's reader (validating, tensors decompressed on demand and kept until
 * released or closed), writer and unpacking.
 * Must not: print; trust any number read from a file; hold more than the tensors asked for.
 */
#ifndef SLM_PACK_H
#define SLM_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "core/afile.h"
#include "core/err.h"
#include "core/mapfile.h"
#include "formats/gguf.h"

#define SLM_PACK_VERSION 1
#define SLM_PACK_SKIPPABLE 0x184D2A50u /* zstd skippable frame magic (any of 0x184D2A50..5F) */
#define SLM_PACK_MAGIC "SLMZGGUF"
#define SLM_PACK_INDEX_MAGIC "SLMZINDX"
#define SLM_PACK_HEADER_BYTES 32
#define SLM_PACK_FOOTER_BYTES 16 /* u64 n_frames + index magic */
#define SLM_PACK_ENTRY_BYTES 24
/* The default zstd level: see the README (bench/pack.sh measures the levels). */
#define SLM_PACK_DEFAULT_LEVEL 3
#define SLM_PACK_MAX_LEVEL 19
/* The GGUF header (frame 0) is decompressed into memory whole: at most this many bytes
   (real headers, tokenizers included, take a few MB). */
#define SLM_PACK_HEAD_MAX ((size_t)256 << 20)

typedef struct slm_pack_frame {
    uint64_t offset; /* in the container */
    uint64_t csize;  /* compressed bytes */
    uint64_t rsize;  /* decompressed bytes */
} slm_pack_frame;

typedef struct slm_pack {
    slm_map map;             /* the container (not owned after slm_pack_parse) */
    uint32_t version, level;
    uint64_t gguf_size;      /* bytes of the original GGUF */
    slm_pack_frame *frames;  /* n_frames = gguf.n_tensors + 1; frame 0 is the GGUF header */
    size_t n_frames;
    uint64_t index_offset;   /* where the index frame starts */
    uint8_t *head;           /* frame 0 decompressed: what gguf is parsed from */
    slm_gguf gguf;           /* header only (slm_gguf_parse_header): names, types, shapes, KVs */
    uint8_t **cache;         /* per tensor: its decompressed frame, or NULL (see slm_pack_tensor) */
    void *dctx;              /* ZSTD_DCtx */
} slm_pack;

/* 1 when data starts like a packed GGUF (the header's two magics); no other check. */
int slm_pack_sniff(const uint8_t *data, size_t size);
/* Maps and validates path (everything but the tensor frames' contents, which are checked when
   decompressed). Errors are prefixed with the path. */
int slm_pack_open(slm_pack *p, const char *path, slm_err *err);
/* The same on an image in memory (fuzzing, tests); data must outlive p. */
int slm_pack_parse(slm_pack *p, const uint8_t *data, size_t size, slm_err *err);
/* Frees the cached tensors, unmaps. Safe on a zeroed or closed pack. */
void slm_pack_close(slm_pack *p);

/* Tensor i's data (gguf.tensors[i].nbytes bytes, 16-byte aligned): its frame is decompressed
   and checked on the first call and kept by p (the cache is not part of p's const-ness: a
   pack is read from one thread at a time) until slm_pack_release(i) or slm_pack_close. */
int slm_pack_tensor(const slm_pack *p, size_t i, const uint8_t **data, slm_err *err);
/* Drops tensor i's decompressed copy (pointers to it become invalid). */
void slm_pack_release(const slm_pack *p, size_t i);
/* Bytes held by decompressed tensors now. */
uint64_t slm_pack_cached_bytes(const slm_pack *p);

/* Progress: bytes of the GGUF done so far, of total. */
typedef void (*slm_pack_progress_fn)(void *ud, uint64_t done, uint64_t total);

/* Writes the original GGUF into out, frame by frame (streamed: memory stays at zstd's window),
   checking every frame's size and checksum. */
int slm_pack_unpack(const slm_pack *p, slm_afile *out, slm_pack_progress_fn progress, void *ud, slm_err *err);

typedef struct slm_pack_opts {
    int level;                     /* zstd level 1 .. SLM_PACK_MAX_LEVEL */
    int threads;                   /* zstd workers (>= 1); the bytes do not depend on it */
    slm_pack_progress_fn progress; /* or NULL */
    void *progress_ud;
} slm_pack_opts;

typedef struct slm_pack_stats {
    uint64_t gguf_bytes, packed_bytes;
    uint64_t head_csize;           /* frame 0, compressed */
} slm_pack_stats;

/* Packs the GGUF g (opened with slm_gguf_open: its map is the file) into out. Reads the map
   tensor by tensor and releases its pages after each. */
int slm_pack_write(const slm_gguf *g, const slm_pack_opts *o, slm_afile *out, slm_pack_stats *st, slm_err *err);

#endif
