/* fuzz_vocab.h - what the tokenizer targets do with a vocabulary that imported: GGUF keys and
 * back (the same tokens, types and merges), then the tokenizer built over it on a few texts,
 * detokenized again, and every token's piece.
 */
#ifndef SLM_FUZZ_VOCAB_H
#define SLM_FUZZ_VOCAB_H

#include "formats/gguf.h"
#include "formats/tok_import.h"
#include "model/tokenizer.h"
#include "core/mem.h"
#include "tests/fuzz/fuzz.h"

static inline void fuzz_vocab_roundtrip(const slm_vocab *v) {
    slm_kvs kv = {0};
    slm_err e = {0};
    if (slm_vocab_to_kvs(v, &kv, &e) == SLM_OK) {
        slm_vocab back;
        int rc = slm_vocab_from_kvs(&back, &kv, &e);
        SLM_ASSERT(rc == SLM_OK);
        SLM_ASSERT(back.kind == v->kind && back.n_tokens == v->n_tokens && back.n_merges == v->n_merges);
        for (int32_t i = 0; i < v->n_tokens; i++) SLM_ASSERT(!strcmp(back.tokens[i], v->tokens[i]) && back.types[i] == v->types[i]);
        for (int32_t i = 0; i < v->n_merges; i++) SLM_ASSERT(!strcmp(back.merges[i], v->merges[i]));
        slm_vocab_free(&back);
    }
    slm_kvs_free(&kv);
}

static inline void fuzz_vocab(const slm_vocab *v) {
    static const char *const texts[] = {
        "Hello world! It's 2024.", "  \n\t x  y\r\n", "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80",
        "\x80\xff\xc3 broken \xe2\x82", "<s></s><unk>[PAD0] <|endoftext|>", "",
    };
    fuzz_vocab_roundtrip(v);
    slm_tokenizer t = {0};
    slm_err e = {0};
    int rc = slm_tokenizer_build(&t, v, &e);
    if (rc) {
        fuzz_check_refusal(rc, &e);
        slm_tokenizer_free(&t);
        return;
    }
    for (size_t k = 0; k < SLM_ARRAY_LEN(texts); k++) {
        int32_t *ids = NULL;
        size_t n = 0;
        rc = slm_tokenize(&t, texts[k], strlen(texts[k]), (int)(k & 1), &ids, &n, &e);
        if (rc) fuzz_check_refusal(rc, &e);
        for (size_t i = 0; !rc && i < n; i++) SLM_ASSERT(ids[i] >= 0 && ids[i] < v->n_tokens);
        char *text = NULL;
        size_t len = 0;
        if (!rc && slm_detokenize(&t, ids, n, 1, &text, &len, &e) == SLM_OK) SLM_ASSERT(strlen(text) <= len);
        slm_free(text);
        slm_free(ids);
    }
    char piece[64];
    for (int32_t id = 0; id < v->n_tokens && id < 4096; id++) (void)slm_token_piece(&t, id, piece, sizeof piece);
    slm_tokenizer_free(&t);
}

#endif
