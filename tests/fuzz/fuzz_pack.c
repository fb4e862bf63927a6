/* fuzz_pack.c - libFuzzer target: the packed-GGUF reader on bytes from memory (slm_pack_parse).
 * On success: the index covers the image from the header to the index, the frames' sizes add
 * up to the GGUF's, the GGUF header parsed from frame 0 has one frame per tensor, and every
 * tensor of at most 16 MiB decompresses (or is refused with a message), twice the same, and
 * its release leaves nothing cached.
 */
#include "tests/fuzz/fuzz.h"

#include "formats/pack.h"

#define MAX_TENSOR ((uint64_t)16 << 20) /* larger declared sizes are valid but cost the fuzzer time */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    slm_pack p;
    slm_err e = {0};
    int rc = slm_pack_parse(&p, data, size, &e);
    if (rc) {
        fuzz_check_refusal(rc, &e);
        return 0;
    }
    SLM_ASSERT(p.n_frames == p.gguf.n_tensors + 1 && p.gguf.header_only);
    uint64_t sum = 0, end = SLM_PACK_HEADER_BYTES;
    for (size_t k = 0; k < p.n_frames; k++) {
        SLM_ASSERT(p.frames[k].offset == end);
        end += p.frames[k].csize;
        sum += p.frames[k].rsize;
    }
    SLM_ASSERT(end == p.index_offset && p.index_offset < size && sum == p.gguf_size);
    for (size_t i = 0; i < p.gguf.n_tensors; i++) {
        if (p.frames[i + 1].rsize > MAX_TENSOR) continue;
        const uint8_t *a, *b;
        rc = slm_pack_tensor(&p, i, &a, &e);
        if (rc) {
            fuzz_check_refusal(rc, &e);
            SLM_ASSERT(p.cache[i] == NULL);
            continue;
        }
        SLM_ASSERT(slm_pack_tensor(&p, i, &b, &e) == SLM_OK && a == b);
        SLM_ASSERT(slm_pack_cached_bytes(&p) == p.frames[i + 1].rsize);
        if (p.frames[i + 1].rsize) { /* the whole frame is readable (ASan checks the last byte) */
            volatile uint8_t last = a[p.frames[i + 1].rsize - 1];
            (void)last;
        }
        slm_pack_release(&p, i);
        SLM_ASSERT(p.cache[i] == NULL);
    }
    SLM_ASSERT(slm_pack_cached_bytes(&p) == 0);
    slm_pack_close(&p);
    return 0;
}
