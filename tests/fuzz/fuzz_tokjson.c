/* fuzz_tokjson.c - libFuzzer target: tokenizer.json import (slm_vocab_from_tokenizer_json) on
 * bytes from memory; an imported vocab goes through GGUF keys and back and the tokenizer
 * (fuzz_vocab.h).
 */
#include "tests/fuzz/fuzz.h"

#include "formats/tok_import.h"
#include "tests/fuzz/fuzz_vocab.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    slm_vocab v;
    slm_err e = {0};
    int rc = slm_vocab_from_tokenizer_json(&v, (const char *)data, size, &e);
    if (rc) fuzz_check_refusal(rc, &e);
    else fuzz_vocab(&v);
    slm_vocab_free(&v);
    return 0;
}
