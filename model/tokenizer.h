/* tokenizer.h - text <-> token ids exactly as llama.cpp (v0.5.0) does for SPM and BPE vocabs.
 *
 * Owns: slm_tokenizer, the lookup tables built over an slm_vocab (token text -> id, merge
 * ranks, byte fallbacks, token attributes), llama_tokenize with parse_special = false, and
 * token_to_piece / detokenize with special = false.
 * Must not: read files, print, or change the vocab it borrows.
 *
 * BPE pre-tokenizers (tokenizer.ggml.pre) handled: the GPT-2 regex ("gpt-2", "phi-2", "mpt",
 * "olmo"), digits then GPT-2 ("starcoder", "refact", "smollm", "codeshell"), the Llama 3 regex
 * ("llama-bpe", "llama3", "llama-v3", "falcon3", "dbrx", "smaug-bpe") and the Qwen2 regex
 * ("qwen2", "deepseek-r1-qwen", "stablelm2", "megrez"). Others give SLM_E_UNSUPPORTED.
 */
#ifndef SLM_TOKENIZER_H
#define SLM_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "model/vocab.h"

/* Caller-allocated (slm_tokenizer t = {0};), filled by slm_tokenizer_build. It borrows the
   vocab: v and its strings must stay alive and unchanged until slm_tokenizer_free. The fields
   are private to model/tokenizer.c. */
typedef struct slm_tokenizer slm_tokenizer;
struct slm_tokenizer {
    const slm_vocab *v;
    int kind;                      /* slm_vocab_kind */
    int split;                     /* BPE pre-tokenizer (tokenizer.c's SPLIT_*) */
    int ignore_merges;             /* BPE: a word that is a token is not merged (Llama 3) */
    int clean_spaces;              /* detokenize: " ," -> "," etc. */
    int add_bos, add_eos, add_space_prefix;
    int32_t bos_id, eos_id;        /* -1 when the vocab has none */
    int32_t n_tokens;
    const char **text;             /* token texts; "[EMPTY_<id>]" for empty ones, as llama.cpp */
    uint32_t *len;
    char *empty_names;             /* storage of those names */
    uint8_t *attr;                 /* llama.cpp token attributes (tokenizer.c's ATTR_*) */
    int32_t *tok_slots;            /* open addressing: text -> last id with that text */
    size_t tok_mask;
    int32_t *merge_slots;          /* open addressing: (left, right) -> first rank */
    size_t merge_mask;
    uint32_t *merge_split;         /* per rank: byte length of the left part */
    int32_t byte_tok[256];         /* SPM: <0xXX> (else the 1-byte token); BPE: the 1-byte token */
    uint8_t barrier[256];          /* SPM: 1 when no token of 2+ bytes contains this byte */
    int32_t *user_ids;             /* user-defined tokens split out of the text first, longest first */
    size_t n_user;
};

/* Builds the tables (a few ms for 150k tokens). SLM_E_UNSUPPORTED for an unknown BPE pre. */
int slm_tokenizer_build(slm_tokenizer *t, const slm_vocab *v, slm_err *err);
/* Safe on a zeroed or already freed tokenizer. */
void slm_tokenizer_free(slm_tokenizer *t);

/* The BOS id llama.cpp prepends with add_special (-1 when the vocab adds none), and the EOS id
   (-1 when the vocab has none). */
int32_t slm_tokenizer_bos(const slm_tokenizer *t);
int32_t slm_tokenizer_eos(const slm_tokenizer *t);

/* llama_tokenize(text, add_special, parse_special = false): add_special adds BOS/EOS as the
   vocab says (add_bos/add_eos, else llama.cpp's defaults). *ids is allocated with slm_alloc;
   the caller frees it with slm_free (also when *n_ids is 0). */
int slm_tokenize(const slm_tokenizer *t, const char *text, size_t len, int add_special, int32_t **ids, size_t *n_ids,
                 slm_err *err);

/* The bytes of token id as llama_token_to_piece(special = false, lstrip = 0) renders them
   (SPM: U+2581 -> ' ', <0xXX> -> that byte; BPE: byte-level decoding; control and unknown
   tokens -> nothing). Writes at most cap bytes (no NUL) and returns the full length, so a
   return value > cap means the piece was cut. Ids out of range give 0. */
size_t slm_token_piece(const slm_tokenizer *t, int32_t id, char *buf, size_t cap);

/* llama_detokenize(remove_special, unparse_special = false): the first piece loses one leading
   space when the vocab adds a space prefix (unless a removed BOS came first), BPE vocabs get
   llama.cpp's clean-up of spaces before punctuation. *text is NUL-terminated, slm_alloc'd,
   freed by the caller with slm_free. SLM_E_ARG for an id out of range. */
int slm_detokenize(const slm_tokenizer *t, const int32_t *ids, size_t n_ids, int remove_special, char **text,
                   size_t *len, slm_err *err);

#endif
