/* fuzz_gguf.c - libFuzzer target: the GGUF reader on bytes from memory (slm_gguf_parse).
 * On success: every key and tensor is found at its own index (hash indexes), tensor data lies
 * inside the image, every value deep-copies equal, the metadata stays within its cap, and the
 * tokenizer keys (when present) go through slm_vocab_from_kvs and the tokenizer.
 */
#include "tests/fuzz/fuzz.h"

#include "formats/gguf.h"
#include "formats/tok_import.h"
#include "tests/fuzz/fuzz_vocab.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    slm_gguf g;
    slm_err e = {0};
    int rc = slm_gguf_parse(&g, data, size, &e);
    if (rc) {
        fuzz_check_refusal(rc, &e);
        return 0;
    }
    SLM_ASSERT(g.meta_bytes <= SLM_MAX(SLM_GGUF_META_FLOOR, 2 * size));
    for (size_t i = 0; i < g.kv.n; i++) {
        SLM_ASSERT(slm_kvs_get(&g.kv, g.kv.items[i].key) == &g.kv.items[i].val);
        slm_gguf_val copy;
        if (slm_gguf_val_copy(&copy, &g.kv.items[i].val, &e) == SLM_OK) {
            SLM_ASSERT(slm_gguf_val_equal(&copy, &g.kv.items[i].val));
            slm_gguf_val_free(&copy);
        }
        int64_t i64;
        float f;
        const char *s;
        (void)slm_kvs_get_i64(&g.kv, g.kv.items[i].key, &i64, &e);
        (void)slm_kvs_get_f32(&g.kv, g.kv.items[i].key, &f, &e);
        (void)slm_kvs_get_str(&g.kv, g.kv.items[i].key, &s, &e);
    }
    for (size_t i = 0; i < g.n_tensors; i++) {
        SLM_ASSERT(slm_gguf_find(&g, g.tensors[i].name) == (int)i);
        slm_tensor t;
        slm_gguf_view(&g, i, &t);
        const uint8_t *td = t.data;
        SLM_ASSERT(td >= data && t.nbytes <= size && (size_t)(td - data) <= size - t.nbytes);
    }
    if (slm_kvs_get(&g.kv, "tokenizer.ggml.model")) {
        slm_vocab v;
        rc = slm_vocab_from_kvs(&v, &g.kv, &e);
        if (rc) fuzz_check_refusal(rc, &e);
        else fuzz_vocab(&v);
        slm_vocab_free(&v);
    }
    slm_gguf_close(&g);
    return 0;
}
