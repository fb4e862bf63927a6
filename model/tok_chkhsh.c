/* tok_chkhsh.c - tokenizer.ggml.pre the way llama.cpp's converter finds it for a byte-level BPE
 * tokenizer.json (conversion/base.py: get_vocab_base_pre): tokenize a fixed check text, hash the
 * printed id list, look the hash up in its table of known tokenizers.
 *
 * slm first picks the pre-tokenizer from tokenizer.json's structure (tok_import.c); that regex
 * tokenizes the check text here. When the hash is one llama.cpp knows, its name wins: models that
 * split alike but are told apart by their vocabularies (SmolLM's "smollm" vs StarCoder's
 * "starcoder": llama.cpp keeps clean_spaces off for the first) get llama.cpp's name. An unknown
 * hash keeps the structural name (llama.cpp's converter refuses those). The CLI applies it to every
 * folder it opens (cli/cliutil.c cli_src_open): formats/ cannot tokenize.
 * Must not: print.
 */
#include "model/tok_chkhsh.h"

#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "core/sha256.h"
#include "core/slm.h"
#include "model/tokenizer.h"

/* chktxt of get_vocab_base_pre, as UTF-8 ('?' escaped: no trigraphs) */
static const char k_chktxt[] =
    "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n\360\237\232\200 (normal) \360\237\230\266"
    "\342\200\215\360\237\214\253\357\270\217 (multiple emojis concatenated) \342\234\205 \360\237"
    "\246\231\360\237\246\231 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 \341\236"
    "\200\341\236\266\341\236\223\341\237\213\341\236\217\341\237\202\341\236\226\341\236\267\341"
    "\236\237\341\237\201\341\236\237\341\236\242\341\236\266\341\236\205\360\237\230\201 \077\346"
    "\210\221\346\203\263\345\234\250apple\345\267\245\344\275\2341314151\345\244\251\357\275\236"
    " ------======= \320\275\320\265\321\211\320\276 \320\275\320\260 \320\221\321\212\320\273\320"
    "\263\320\260\321\200\321\201\320\272\320\270 ''''''```````\042\042\042\042......!!!!!!\077"
    "\077\077\077\077\077 I've been 'told he's there, 'RE you sure\077 'M not sure I'll make it"
    ", 'D you like some tea\077 We'Ve a'lL";

/* Entries of get_vocab_base_pre's table whose pre-tokenizers slm implements (model/tokenizer.c). */
static const struct { const char *hash, *pre; } k_known[] = {
    {"3ce83efda5659b07b1ad37ca97ca5797ea4285d9b9ab0dc679e4a720c9da7454", "gpt-2"},     /* openai-community/gpt2 */
    {"0fe1cf6eda062318a1af7270f3331a85c539a01778ff948e24388e949c5282f4", "gpt-2"},     /* ruGPT3XL */
    {"35d91631860c815f952d711435f48d356ebac988362536bed955d43bfa436e34", "starcoder"}, /* bigcode/starcoder2-3b */
    {"855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249", "smollm"},    /* HuggingFaceTB/SmolLM-135M */
    {"0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5", "llama-bpe"}, /* meta-llama/Meta-Llama-3-8B */
    {"e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea", "qwen2"},     /* Qwen/Qwen1.5-7B */
    {"d4540891389ea895b53b399da6ac824becc30f2fba0e9ddbb98f92e55ca0e97c", "qwen2"},     /* Qwen/Qwen3-Embedding-0.6B */
};

int slm_vocab_chkhsh(const slm_vocab *v, char hex[65], slm_err *err) {
    slm_tokenizer t = {0};
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = slm_tokenizer_build(&t, v, err);
    /* tokenizer.encode(chktxt): special tokens added as the post-processor says (v->add_bos) */
    if (!rc) rc = slm_tokenize(&t, k_chktxt, sizeof k_chktxt - 1, v->add_bos == 1, &ids, &n, err);
    if (!rc) { /* sha256(str(list of ids)): Python prints "[1, 2, 3]" */
        slm_sha256 s;
        char num[16];
        slm_sha256_init(&s);
        slm_sha256_update(&s, "[", 1);
        for (size_t i = 0; i < n; i++) {
            int k = snprintf(num, sizeof num, i ? ", %d" : "%d", (int)ids[i]);
            slm_sha256_update(&s, num, (size_t)k);
        }
        slm_sha256_update(&s, "]", 1);
        slm_sha256_hex(&s, hex);
    }
    slm_free(ids);
    slm_tokenizer_free(&t);
    return rc;
}

const char *slm_pre_by_chkhsh(const char *hex) {
    for (size_t i = 0; i < SLM_ARRAY_LEN(k_known); i++)
        if (!strcmp(hex, k_known[i].hash)) return k_known[i].pre;
    return NULL;
}

void slm_vocab_pre_from_chkhsh(slm_vocab *v) {
    char hex[65];
    slm_err e = {0};
    const char *pre;
    if (v->kind != SLM_VOCAB_BPE || slm_vocab_chkhsh(v, hex, &e) || !(pre = slm_pre_by_chkhsh(hex))) return;
    snprintf(v->pre, sizeof v->pre, "%s", pre);
}
