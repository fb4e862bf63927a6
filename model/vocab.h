/* vocab.h - a tokenizer vocabulary as GGUF stores it (tokenizer.ggml.*).
 *
 * Owns: slm_vocab, the one in-memory form that formats/tok_import.c fills from a Hugging Face
 * folder or from GGUF metadata, that formats/ writes back as GGUF keys, and that
 * model/tokenizer.c encodes and decodes with.
 * Must not: read files (formats/ does) or know GGUF's byte layout.
 */
#ifndef SLM_VOCAB_H
#define SLM_VOCAB_H

#include <stdint.h>

/* tokenizer.ggml.model */
typedef enum slm_vocab_kind {
    SLM_VOCAB_NONE = 0,
    SLM_VOCAB_SPM = 1, /* "llama": SentencePiece BPE with scores and byte fallback */
    SLM_VOCAB_BPE = 2, /* "gpt2": byte-level BPE with merges and a pre-tokenizer */
} slm_vocab_kind;

/* tokenizer.ggml.token_type values (llama.cpp's llama_token_type); wire values */
enum {
    SLM_TOKEN_NORMAL = 1,
    SLM_TOKEN_UNKNOWN = 2,
    SLM_TOKEN_CONTROL = 3,
    SLM_TOKEN_USER_DEFINED = 4,
    SLM_TOKEN_UNUSED = 5,
    SLM_TOKEN_BYTE = 6,
};

typedef struct slm_vocab {
    int kind;              /* slm_vocab_kind */
    char pre[32];          /* tokenizer.ggml.pre: "default", "gpt-2", "llama-bpe", "qwen2", ... */
    int32_t n_tokens;
    char **tokens;         /* n_tokens NUL-terminated UTF-8 strings (SPM: with U+2581 for space) */
    float *scores;         /* n_tokens, or NULL */
    int32_t *types;        /* n_tokens SLM_TOKEN_* */
    int32_t n_merges;
    char **merges;         /* "a b" strings in rank order (BPE), or NULL */
    int32_t bos_id, eos_id, unk_id, pad_id, eot_id; /* -1 when absent */
    int32_t sep_id, mask_id, eom_id;                /* -1 when absent (written, not used) */
    char id_order[9];      /* the order of the *_token_id keys as the converter writes them:
                              'b'os 'e'os 'u'nk 's'ep 'p'ad 'm'ask eo't' eo'm' -> 'o'; "" means "beuspmto" */
    int add_bos, add_eos;  /* 0/1, or -1 when the source does not say */
    int add_sep;           /* 0/1, or -1 (tokenizer.ggml.add_sep_token; tokenization ignores it) */
    char add_order[4];     /* the order of the add_* keys as the converter writes them: 'b' 's' 'e'
                              of those >= 0, NUL-terminated; "" means b, s, e */
    int add_space_prefix;  /* SPM: 1 (default), 0, or -1 unknown */
    char *chat_template;   /* or NULL */
} slm_vocab;

#endif
