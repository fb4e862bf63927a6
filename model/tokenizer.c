/* tokenizer.c - llama.cpp's SPM and BPE tokenizers, token pieces and detokenization in C.
 *
 * Owns: the lookup tables of slm_tokenizer and the algorithms of llama.cpp v0.5.0
 * (src/llama-vocab.cpp, src/unicode.cpp), re-written: user-defined token partitioning, SPM
 * bigram merging by score with byte fallback, BPE pre-tokenizer splitters (GPT-2, Llama 3,
 * Qwen2, digits), byte-level encoding and merging by rank, token_to_piece and detokenize.
 * Must not: print, read files, or change the borrowed vocab. Output must equal llama.cpp's,
 * id for id; every deviation is listed where it happens.
 */
#include "model/tokenizer.h"

#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "core/slm.h"
#include "model/unicode.h"

/* llama_token_attr bits that matter here */
enum {
    ATTR_UNKNOWN = 1 << 0,
    ATTR_UNUSED = 1 << 1,
    ATTR_NORMAL = 1 << 2,
    ATTR_CONTROL = 1 << 3,
    ATTR_USER_DEFINED = 1 << 4,
    ATTR_BYTE = 1 << 5,
};

enum { SPLIT_NONE, SPLIT_GPT2, SPLIT_DIGITS_GPT2, SPLIT_LLAMA3, SPLIT_QWEN2 };

/* tokenizer.ggml.pre -> behaviour (llama_vocab::impl::load and llm_tokenizer_bpe) */
static const struct {
    const char *name;
    int split, ignore_merges, add_bos, clean_spaces;
} k_pre[] = {
    {"gpt-2", SPLIT_GPT2, 0, 0, 1},
    {"phi-2", SPLIT_GPT2, 0, 0, 1},
    {"mpt", SPLIT_GPT2, 0, 0, 1},
    {"olmo", SPLIT_GPT2, 0, 0, 1},
    {"starcoder", SPLIT_DIGITS_GPT2, 0, 0, 1},
    {"refact", SPLIT_DIGITS_GPT2, 0, 0, 1},
    {"smollm", SPLIT_DIGITS_GPT2, 0, 0, 0},
    {"codeshell", SPLIT_DIGITS_GPT2, 0, 0, 1},
    {"llama-bpe", SPLIT_LLAMA3, 1, 1, 1},
    {"llama3", SPLIT_LLAMA3, 1, 1, 1},
    {"llama-v3", SPLIT_LLAMA3, 1, 1, 1},
    {"falcon3", SPLIT_LLAMA3, 1, 1, 1},
    {"dbrx", SPLIT_LLAMA3, 0, 0, 1},
    {"smaug-bpe", SPLIT_LLAMA3, 0, 0, 1},
    {"qwen2", SPLIT_QWEN2, 0, 0, 0},
    {"deepseek-r1-qwen", SPLIT_QWEN2, 0, 0, 0},
    {"stablelm2", SPLIT_QWEN2, 0, 0, 1},
    {"megrez", SPLIT_QWEN2, 0, 0, 1},
};

/* Texts llama.cpp turns into control tokens whatever their type says (the end-of-generation
   list, plus the FIM texts it auto-detects; it marks only the first FIM text of each kind it
   meets, in hash order, when no FIM id is stored: here all of them are marked). */
static const char *const k_control_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
    "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
    "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>", "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
    "[e~[",
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>", "<PRE>",
    "\xe2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>",
    "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81hole\xef\xbd\x9c>", "<SUF>",
    "\xe2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>",
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>", "<MID>",
    "\xe2\x96\x81<MID>", "<|code_middle|>", "<|middle|>",
    "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]",
    "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", "<|file_sep|>",
};

/* ---- hashing ----------------------------------------------------------------------------- */

static uint64_t fnv(uint64_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}
#define FNV0 1469598103934665603ull

static uint64_t hash_pair(const char *a, size_t na, const char *b, size_t nb) {
    return fnv(fnv(FNV0, a, na) * 31 + na, b, nb);
}

static int alloc_slots(int32_t **slots, size_t *mask, size_t n, slm_err *err, const char *what) {
    size_t cap = 16;
    while (cap < 2 * n + 1) cap *= 2;
    SLM_TRY(slm_alloc((void **)slots, cap * sizeof(int32_t), err, what));
    memset(*slots, 0xFF, cap * sizeof(int32_t));
    *mask = cap - 1;
    return SLM_OK;
}

/* The slot of text s[0..n): the one holding its id, else the empty one where it would go. */
static size_t tok_slot(const slm_tokenizer *t, const char *s, size_t n) {
    size_t i = (size_t)fnv(FNV0, s, n) & t->tok_mask;
    for (int32_t id; (id = t->tok_slots[i]) >= 0; i = (i + 1) & t->tok_mask)
        if (t->len[id] == n && memcmp(t->text[id], s, n) == 0) break;
    return i;
}

/* text_to_token: id of the token whose text is s[0..n), or -1 */
static int32_t lookup(const slm_tokenizer *t, const char *s, size_t n) { return t->tok_slots[tok_slot(t, s, n)]; }

/* find_bpe_rank(left, right) */
static int32_t merge_rank(const slm_tokenizer *t, const char *a, size_t na, const char *b, size_t nb) {
    size_t i = (size_t)hash_pair(a, na, b, nb) & t->merge_mask;
    for (int32_t r; (r = t->merge_slots[i]) >= 0; i = (i + 1) & t->merge_mask) {
        const char *m = t->v->merges[r];
        uint32_t sp = t->merge_split[r];
        if (sp == na && memcmp(m, a, na) == 0 && strlen(m + na + 1) == nb && memcmp(m + na + 1, b, nb) == 0) return r;
    }
    return -1;
}

/* ---- build ------------------------------------------------------------------------------- */

static int build_texts(slm_tokenizer *t, slm_err *err) {
    const slm_vocab *v = t->v;
    size_t n_empty = 0;
    SLM_TRY(slm_calloc((void **)&t->text, (size_t)v->n_tokens, sizeof(char *), err, "token texts"));
    SLM_TRY(slm_calloc((void **)&t->len, (size_t)v->n_tokens, sizeof(uint32_t), err, "token lengths"));
    for (int32_t i = 0; i < v->n_tokens; i++) {
        if (!v->tokens[i]) return slm_errf(err, SLM_E_ARG, "vocab: token %d is NULL", i);
        size_t n = strlen(v->tokens[i]);
        if (n > UINT32_MAX / 2) return slm_errf(err, SLM_E_ARG, "vocab: token %d too long", i);
        n_empty += n == 0;
        t->text[i] = v->tokens[i];
        t->len[i] = (uint32_t)n;
    }
    if (n_empty) {
        /* llama.cpp: an empty token becomes "[EMPTY_<id>]" */
        SLM_TRY(slm_alloc((void **)&t->empty_names, n_empty * 24, err, "empty token names"));
        char *p = t->empty_names;
        for (int32_t i = 0; i < v->n_tokens; i++) {
            if (t->len[i]) continue;
            int k = snprintf(p, 24, "[EMPTY_%d]", i);
            t->text[i] = p;
            t->len[i] = (uint32_t)k;
            p += 24;
        }
    }
    SLM_TRY(alloc_slots(&t->tok_slots, &t->tok_mask, (size_t)v->n_tokens, err, "token hash"));
    for (int32_t i = 0; i < v->n_tokens; i++)
        t->tok_slots[tok_slot(t, t->text[i], t->len[i])] = i; /* a later duplicate wins, as token_to_id[word] = i */
    return SLM_OK;
}

static int build_attrs(slm_tokenizer *t, slm_err *err) {
    const slm_vocab *v = t->v;
    SLM_TRY(slm_alloc((void **)&t->attr, (size_t)v->n_tokens, err, "token attributes"));
    for (int32_t i = 0; i < v->n_tokens; i++) {
        uint8_t a = 0;
        switch (v->types ? v->types[i] : SLM_TOKEN_NORMAL) {
        case SLM_TOKEN_NORMAL: a = ATTR_NORMAL; break;
        case SLM_TOKEN_UNKNOWN: a = ATTR_UNKNOWN; break;
        case SLM_TOKEN_CONTROL: a = ATTR_CONTROL; break;
        case SLM_TOKEN_USER_DEFINED: a = ATTR_USER_DEFINED; break;
        case SLM_TOKEN_UNUSED: a = ATTR_UNUSED; break;
        case SLM_TOKEN_BYTE: a = ATTR_BYTE; break;
        default: a = 0; break; /* LLAMA_TOKEN_ATTR_UNDEFINED */
        }
        t->attr[i] = a;
    }
    for (size_t k = 0; k < SLM_ARRAY_LEN(k_control_texts); k++) { /* token_to_id's id of that text */
        int32_t id = lookup(t, k_control_texts[k], strlen(k_control_texts[k]));
        if (id >= 0) t->attr[id] |= ATTR_CONTROL;
    }
    /* user-defined tokens are split out of the text even with parse_special = false */
    size_t n_user = 0;
    for (int32_t i = 0; i < v->n_tokens; i++)
        n_user += (t->attr[i] & ATTR_USER_DEFINED) && !(t->attr[i] & (ATTR_CONTROL | ATTR_UNKNOWN));
    if (n_user) {
        SLM_TRY(slm_alloc((void **)&t->user_ids, n_user * sizeof(int32_t), err, "user-defined tokens"));
        for (int32_t i = 0; i < v->n_tokens; i++)
            if ((t->attr[i] & ATTR_USER_DEFINED) && !(t->attr[i] & (ATTR_CONTROL | ATTR_UNKNOWN))) t->user_ids[t->n_user++] = i;
        /* longest text first (insertion sort is enough for the few there are; ties keep id
           order, where llama.cpp's std::sort leaves them unspecified) */
        for (size_t i = 1; i < t->n_user; i++) {
            int32_t id = t->user_ids[i];
            size_t j = i;
            while (j > 0 && t->len[t->user_ids[j - 1]] < t->len[id]) {
                t->user_ids[j] = t->user_ids[j - 1];
                j--;
            }
            t->user_ids[j] = id;
        }
    }
    return SLM_OK;
}

static int build_merges(slm_tokenizer *t, slm_err *err) {
    const slm_vocab *v = t->v;
    if (v->n_merges <= 0 || !v->merges) return slm_errf(err, SLM_E_FORMAT, "vocab: BPE without merges");
    SLM_TRY(slm_alloc((void **)&t->merge_split, (size_t)v->n_merges * sizeof(uint32_t), err, "merge splits"));
    SLM_TRY(alloc_slots(&t->merge_slots, &t->merge_mask, (size_t)v->n_merges, err, "merge hash"));
    for (int32_t r = 0; r < v->n_merges; r++) {
        const char *m = v->merges[r];
        /* word.find(' ', 1): a merge without such a space is ("", "") and never matches */
        const char *sp = m[0] ? strchr(m + 1, ' ') : NULL;
        if (!sp) {
            t->merge_split[r] = UINT32_MAX;
            continue;
        }
        size_t na = (size_t)(sp - m), nb = strlen(sp + 1);
        t->merge_split[r] = (uint32_t)na;
        size_t s = (size_t)hash_pair(m, na, sp + 1, nb) & t->merge_mask;
        int dup = 0;
        for (int32_t q; (q = t->merge_slots[s]) >= 0; s = (s + 1) & t->merge_mask)
            if (t->merge_split[q] == na && strcmp(v->merges[q], m) == 0) {
                dup = 1; /* bpe_ranks.emplace keeps the first rank */
                break;
            }
        if (!dup) t->merge_slots[s] = r;
    }
    return SLM_OK;
}

static void build_bytes(slm_tokenizer *t) {
    for (int b = 0; b < 256; b++) {
        char s[8];
        int32_t id = -1;
        if (t->kind == SLM_VOCAB_SPM) {
            snprintf(s, sizeof s, "<0x%02X>", b);
            id = lookup(t, s, 6);
        }
        if (id < 0) {
            s[0] = (char)b;
            id = lookup(t, s, 1);
        }
        t->byte_tok[b] = id;
    }
    /* a byte that no multi-byte token contains is never inside a merge: SPM can work on the
       stretches between such bytes one at a time (same result, far smaller queues) */
    memset(t->barrier, 1, sizeof t->barrier);
    for (int32_t i = 0; i < t->n_tokens; i++)
        if (t->len[i] >= 2)
            for (uint32_t k = 0; k < t->len[i]; k++) t->barrier[(unsigned char)t->text[i][k]] = 0;
}

static int build(slm_tokenizer *t, const slm_vocab *v, slm_err *err) {
    t->v = v;
    t->kind = v->kind;
    t->n_tokens = v->n_tokens;
    if (v->n_tokens <= 0 || !v->tokens) return slm_errf(err, SLM_E_ARG, "vocab: no tokens");
    int default_bos;
    if (v->kind == SLM_VOCAB_SPM) {
        t->add_space_prefix = v->add_space_prefix >= 0 ? v->add_space_prefix : 1;
        default_bos = 1;
        t->bos_id = 1;
        t->eos_id = 2;
    } else if (v->kind == SLM_VOCAB_BPE) {
        size_t i;
        for (i = 0; i < SLM_ARRAY_LEN(k_pre); i++)
            if (strcmp(v->pre, k_pre[i].name) == 0) break;
        if (i == SLM_ARRAY_LEN(k_pre))
            return slm_errf(err, SLM_E_UNSUPPORTED, "tokenizer: pre-tokenizer '%s' is not implemented", v->pre[0] ? v->pre : "(none)");
        t->split = k_pre[i].split;
        t->ignore_merges = k_pre[i].ignore_merges;
        t->clean_spaces = k_pre[i].clean_spaces;
        default_bos = k_pre[i].add_bos;
        t->add_space_prefix = v->add_space_prefix >= 0 ? v->add_space_prefix : 0;
        t->bos_id = t->eos_id = 11; /* llama.cpp's BPE defaults */
    } else {
        return slm_errf(err, SLM_E_UNSUPPORTED, "tokenizer: vocab kind %d is not supported", v->kind);
    }
    /* stored ids replace the defaults when in range; defaults out of range are disabled */
    if (t->bos_id >= v->n_tokens) t->bos_id = -1;
    if (t->eos_id >= v->n_tokens) t->eos_id = -1;
    if (v->bos_id >= 0 && v->bos_id < v->n_tokens) t->bos_id = v->bos_id;
    if (v->eos_id >= 0 && v->eos_id < v->n_tokens) t->eos_id = v->eos_id;
    t->add_bos = v->add_bos >= 0 ? v->add_bos : default_bos;
    t->add_eos = v->add_eos >= 0 ? v->add_eos : 0;
    SLM_TRY(build_texts(t, err));
    SLM_TRY(build_attrs(t, err));
    if (v->kind == SLM_VOCAB_BPE) SLM_TRY(build_merges(t, err));
    build_bytes(t);
    return SLM_OK;
}

int slm_tokenizer_build(slm_tokenizer *t, const slm_vocab *v, slm_err *err) {
    memset(t, 0, sizeof(*t));
    int rc = build(t, v, err);
    if (rc) slm_tokenizer_free(t);
    return rc;
}

void slm_tokenizer_free(slm_tokenizer *t) {
    if (!t) return;
    slm_free(t->text);
    slm_free(t->len);
    slm_free(t->empty_names);
    slm_free(t->attr);
    slm_free(t->tok_slots);
    slm_free(t->merge_slots);
    slm_free(t->merge_split);
    slm_free(t->user_ids);
    memset(t, 0, sizeof(*t));
}

/* ---- growable buffers of one tokenize call --------------------------------------------- */

typedef struct ids_vec {
    int32_t *p;
    size_t n, cap;
} ids_vec;

static int push_id(ids_vec *o, int32_t id, slm_err *err) {
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 64;
        SLM_TRY(slm_realloc((void **)&o->p, cap * sizeof(int32_t), err, "token ids"));
        o->cap = cap;
    }
    o->p[o->n++] = id;
    return SLM_OK;
}

static int reserve(void **p, size_t *cap, size_t n, size_t elem, slm_err *err, const char *what) {
    if (n <= *cap) return SLM_OK;
    size_t c = *cap ? *cap : 64;
    while (c < n) c *= 2;
    SLM_TRY(slm_realloc(p, c * elem, err, what));
    *cap = c;
    return SLM_OK;
}

typedef struct symbol {
    uint32_t off, n; /* bytes of the working text */
    int32_t prev, next;
} symbol;

/* A candidate merge of symbols left and left's next. Keys order the min-heap: for BPE the
   rank, for SPM the score reversed; ties go to the leftmost pair, as both llama.cpp queues. */
typedef struct bigram {
    uint64_t key; /* (primary << 32) | left */
    int32_t right;
    uint32_t size;
} bigram;

typedef struct work {
    ids_vec out;
    symbol *sym;
    size_t n_sym, cap_sym;
    bigram *heap;
    size_t n_heap, cap_heap;
    char *buf; /* SPM text / BPE byte-encoded word */
    size_t n_buf, cap_buf;
    uint32_t *cpts; /* BPE: code points of a fragment */
    uint16_t *flags;
    size_t cap_cpts, cap_flags;
    char enc[256][2]; /* BPE: the UTF-8 of the character standing for each byte */
    uint8_t enc_len[256];
    uint32_t *words; /* BPE: word lengths in code points */
    size_t n_words, cap_words;
    uint32_t *words2;
    size_t n_words2, cap_words2;
} work;

static void work_free(work *w) {
    slm_free(w->sym);
    slm_free(w->heap);
    slm_free(w->buf);
    slm_free(w->cpts);
    slm_free(w->flags);
    slm_free(w->words);
    slm_free(w->words2);
}

static int heap_push(work *w, bigram b, slm_err *err) {
    SLM_TRY(reserve((void **)&w->heap, &w->cap_heap, w->n_heap + 1, sizeof(bigram), err, "merge queue"));
    size_t i = w->n_heap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (w->heap[p].key <= b.key) break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = b;
    return SLM_OK;
}

static bigram heap_pop(work *w) {
    bigram top = w->heap[0], last = w->heap[--w->n_heap];
    size_t i = 0, n = w->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && w->heap[c + 1].key < w->heap[c].key) c++;
        if (last.key <= w->heap[c].key) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = last;
    return top;
}

/* Splits w->buf[0..n_buf) into UTF-8 symbols by lead byte (unicode_len_utf8, no checks). */
static int make_symbols(work *w, slm_err *err) {
    w->n_sym = 0;
    for (size_t off = 0; off < w->n_buf;) {
        size_t n = SLM_MIN(slm_utf8_len((unsigned char)w->buf[off]), w->n_buf - off);
        SLM_TRY(reserve((void **)&w->sym, &w->cap_sym, w->n_sym + 1, sizeof(symbol), err, "symbols"));
        symbol *s = &w->sym[w->n_sym];
        s->off = (uint32_t)off;
        s->n = (uint32_t)n;
        s->prev = (int32_t)w->n_sym - 1;
        off += n;
        s->next = off == w->n_buf ? -1 : (int32_t)w->n_sym + 1;
        w->n_sym++;
    }
    return SLM_OK;
}

/* Merges the pair popped from the heap: right symbol into left, unlinking right. */
static void merge_pair(work *w, int32_t left, int32_t right) {
    symbol *l = &w->sym[left], *r = &w->sym[right];
    l->n += r->n;
    r->n = 0;
    l->next = r->next;
    if (r->next >= 0) w->sym[r->next].prev = left;
}

/* ---- SPM (llm_tokenizer_spm_session) --------------------------------------------------- */

/* float -> uint32 whose order is the float's; -0 and +0 compare equal in llama.cpp */
static uint32_t float_order(float f) {
    uint32_t u;
    if (f == 0.0f) f = 0.0f;
    memcpy(&u, &f, sizeof u);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

static int spm_try_bigram(const slm_tokenizer *t, work *w, int32_t left, int32_t right, slm_err *err) {
    if (left < 0 || right < 0) return SLM_OK;
    const symbol *l = &w->sym[left];
    uint32_t size = l->n + w->sym[right].n;
    int32_t id = lookup(t, w->buf + l->off, size);
    if (id < 0) return SLM_OK;
    float score = t->v->scores ? t->v->scores[id] : 0.0f;
    bigram b = {((uint64_t)~float_order(score) << 32) | (uint32_t)left, right, size};
    return heap_push(w, b, err);
}

/* The merge loop over symbols [first, last): llama.cpp seeds every adjacent pair of the whole
   text at once; pairs never straddle a barrier symbol, so stretches are independent. */
static int spm_merge(const slm_tokenizer *t, work *w, size_t first, size_t last, slm_err *err) {
    w->n_heap = 0;
    for (size_t i = first + 1; i < last; i++) SLM_TRY(spm_try_bigram(t, w, (int32_t)i - 1, (int32_t)i, err));
    while (w->n_heap) {
        bigram b = heap_pop(w);
        int32_t left = (int32_t)(uint32_t)b.key;
        symbol *l = &w->sym[left], *r = &w->sym[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue; /* stale */
        merge_pair(w, left, b.right);
        SLM_TRY(spm_try_bigram(t, w, w->sym[left].prev, left, err));
        SLM_TRY(spm_try_bigram(t, w, left, w->sym[left].next, err));
    }
    return SLM_OK;
}

static int has_barrier(const slm_tokenizer *t, const char *s, uint32_t n) {
    for (uint32_t i = 0; i < n; i++)
        if (t->barrier[(unsigned char)s[i]]) return 1;
    return 0;
}

/* Tokenizes w->buf (already escaped) and appends the ids. */
static int spm_session(const slm_tokenizer *t, work *w, slm_err *err) {
    SLM_TRY(make_symbols(w, err));
    size_t first = 0;
    for (size_t i = 0; i < w->n_sym; i++) {
        if (!has_barrier(t, w->buf + w->sym[i].off, w->sym[i].n)) continue;
        SLM_TRY(spm_merge(t, w, first, i, err));
        first = i + 1;
    }
    SLM_TRY(spm_merge(t, w, first, w->n_sym, err));
    /* resegment: every merged symbol is a token; llama.cpp's rev_merge path is reached only
       for texts that are not tokens, which are never keys of rev_merge, so bytes it is */
    for (int32_t i = w->n_sym ? 0 : -1; i != -1; i = w->sym[i].next) {
        const symbol *s = &w->sym[i];
        int32_t id = lookup(t, w->buf + s->off, s->n);
        if (id >= 0) {
            SLM_TRY(push_id(&w->out, id, err));
            continue;
        }
        for (uint32_t j = 0; j < s->n; j++) {
            unsigned char c = (unsigned char)w->buf[s->off + j];
            if (t->byte_tok[c] < 0) return slm_errf(err, SLM_E_FORMAT, "tokenizer: vocab has no token for byte 0x%02X", c);
            SLM_TRY(push_id(&w->out, t->byte_tok[c], err));
        }
    }
    return SLM_OK;
}

static int spm_fragment(const slm_tokenizer *t, work *w, const char *text, size_t len, int prefix, slm_err *err) {
    size_t n_spaces = prefix;
    for (size_t i = 0; i < len; i++) n_spaces += text[i] == ' ';
    SLM_TRY(reserve((void **)&w->buf, &w->cap_buf, len + prefix + 2 * n_spaces + 1, 1, err, "text"));
    char *o = w->buf;
    if (prefix) {
        memcpy(o, "\xe2\x96\x81", 3);
        o += 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(o, "\xe2\x96\x81", 3);
            o += 3;
        } else {
            *o++ = text[i];
        }
    }
    w->n_buf = (size_t)(o - w->buf);
    return spm_session(t, w, err);
}

/* ---- BPE pre-tokenizers (unicode.cpp's custom splitters) ------------------------------- */

#define OUT_OF_RANGE 0xFFFFFFFFu

typedef struct splitter {
    const uint32_t *cpts;
    const uint16_t *flags;
    size_t ini, end, prev_end;
    work *w;
    int rc;
    slm_err *err;
} splitter;

static uint32_t sp_cpt(const splitter *s, size_t pos) {
    return pos >= s->ini && pos < s->end ? s->cpts[pos] : OUT_OF_RANGE;
}

static unsigned sp_flags(const splitter *s, size_t pos) {
    return pos >= s->ini && pos < s->end ? s->flags[pos] : 0;
}

/* _add_token(end): a word from the previous end to end; returns its length */
static size_t sp_add(splitter *s, size_t end) {
    size_t len = end - s->prev_end;
    if (len > 0 && !s->rc) {
        s->rc = reserve((void **)&s->w->words2, &s->w->cap_words2, s->w->n_words2 + 1, sizeof(uint32_t), s->err, "words");
        if (!s->rc) s->w->words2[s->w->n_words2++] = (uint32_t)len;
    }
    s->prev_end = end;
    return len;
}

#define IS_L(f) ((f) & SLM_UCAT_LETTER)
#define IS_N(f) ((f) & SLM_UCAT_NUMBER)
#define IS_WS(f) ((f) & SLM_UCAT_WHITESPACE)

/* 's|'t|'re|'ve|'m|'ll|'d, case-sensitive (GPT-2) or not; returns the length or 0 */
static size_t sp_contraction(const splitter *s, size_t pos, int fold) {
    if (sp_cpt(s, pos) != '\'' || pos + 1 >= s->end) return 0;
    uint32_t c1 = sp_cpt(s, pos + 1);
    if (fold) c1 = slm_unicode_lower_ascii(c1);
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
    if (pos + 2 < s->end) {
        uint32_t c2 = sp_cpt(s, pos + 2);
        if (fold) c2 = slm_unicode_lower_ascii(c2);
        if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
    }
    return 0;
}

/* The end of both regex splitters: \s+(?!\S) (all but the last space of a run that is followed by
   text), else \s+, else any single character. Returns the new position. */
static size_t sp_ws_tail(splitter *s, size_t pos, size_t nws) {
    if (nws > 1 && sp_cpt(s, pos + nws) != OUT_OF_RANGE) pos += nws - 1;
    else pos += nws ? nws : 1;
    sp_add(s, pos);
    return pos;
}

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static void split_gpt2(splitter *s) {
    for (size_t pos = s->ini; pos < s->end;) {
        uint32_t cpt = sp_cpt(s, pos);
        unsigned flags = sp_flags(s, pos);
        size_t c = sp_contraction(s, pos, 0);
        if (c) {
            pos += sp_add(s, pos + c);
            continue;
        }
        unsigned f2 = cpt == ' ' ? sp_flags(s, pos + 1) : flags;
        if (IS_L(f2)) {
            pos += cpt == ' ';
            while (IS_L(f2)) f2 = sp_flags(s, ++pos);
            sp_add(s, pos);
            continue;
        }
        if (IS_N(f2)) {
            pos += cpt == ' ';
            while (IS_N(f2)) f2 = sp_flags(s, ++pos);
            sp_add(s, pos);
            continue;
        }
        if (!(IS_WS(f2) || IS_L(f2) || IS_N(f2)) && f2) {
            pos += cpt == ' ';
            while (!(IS_WS(f2) || IS_L(f2) || IS_N(f2)) && f2) f2 = sp_flags(s, ++pos);
            sp_add(s, pos);
            continue;
        }
        size_t nws = 0;
        while (IS_WS(sp_flags(s, pos + nws))) nws++;
        pos = sp_ws_tail(s, pos, nws);
    }
}

/* Llama 3 (max_digits 3):  (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *                          ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * Qwen2 (max_digits 1): the same with \p{N} alone. */
static void split_llama3(splitter *s, size_t max_digits) {
    for (size_t pos = s->ini; pos < s->end;) {
        uint32_t cpt = sp_cpt(s, pos);
        unsigned flags = sp_flags(s, pos);
        size_t c = sp_contraction(s, pos, 1);
        if (c) {
            pos += sp_add(s, pos + c);
            continue;
        }
        if (!(cpt == '\r' || cpt == '\n' || IS_N(flags))) {
            if (IS_L(flags) || IS_L(sp_flags(s, pos + 1))) {
                pos++;
                while (IS_L(sp_flags(s, pos))) pos++;
                sp_add(s, pos);
                continue;
            }
        }
        if (IS_N(flags)) {
            size_t ini = pos;
            while (IS_N(sp_flags(s, pos))) {
                if (++pos - ini >= max_digits) {
                    sp_add(s, pos);
                    ini = pos;
                }
            }
            sp_add(s, pos);
            continue;
        }
        unsigned f2 = cpt == ' ' ? sp_flags(s, pos + 1) : flags;
        /* llama.cpp tests the first flags, not f2, for "is in range" here */
        if (!(IS_WS(f2) || IS_L(f2) || IS_N(f2)) && flags) {
            pos += cpt == ' ';
            while (!(IS_WS(f2) || IS_L(f2) || IS_N(f2)) && f2) f2 = sp_flags(s, ++pos);
            uint32_t c2 = sp_cpt(s, pos);
            while (c2 == '\r' || c2 == '\n') c2 = sp_cpt(s, ++pos);
            sp_add(s, pos);
            continue;
        }
        size_t nws = 0, last_rn = 0;
        while (IS_WS(sp_flags(s, pos + nws))) {
            uint32_t c2 = sp_cpt(s, pos + nws);
            if (c2 == '\r' || c2 == '\n') last_rn = pos + nws + 1;
            nws++;
        }
        if (last_rn > 0) { /* \s*[\r\n]+ */
            pos = last_rn;
            sp_add(s, pos);
            continue;
        }
        pos = sp_ws_tail(s, pos, nws);
    }
}

/* \p{N} as a std::regex split: every number code point alone, the runs between kept */
static void split_digits(splitter *s) {
    for (size_t pos = s->ini; pos < s->end; pos++) {
        if (IS_N(s->flags[pos])) {
            sp_add(s, pos);
            sp_add(s, pos + 1);
        }
    }
    sp_add(s, s->end);
}

/* Runs one splitter over each word of w->words (code point lengths), result in w->words. */
static int split_pass(work *w, int kind, slm_err *err) {
    splitter s = {w->cpts, w->flags, 0, 0, 0, w, SLM_OK, err};
    w->n_words2 = 0;
    size_t start = 0;
    for (size_t i = 0; i < w->n_words; i++) {
        s.ini = s.prev_end = start;
        s.end = start + w->words[i];
        start = s.end;
        switch (kind) {
        case SPLIT_GPT2: split_gpt2(&s); break;
        case SPLIT_LLAMA3: split_llama3(&s, 3); break;
        case SPLIT_QWEN2: split_llama3(&s, 1); break;
        default: split_digits(&s); break;
        }
        if (s.rc) return s.rc;
    }
    /* swap: the new words become the input of the next pass */
    uint32_t *tp = w->words;
    size_t tc = w->cap_words;
    w->words = w->words2;
    w->cap_words = w->cap_words2;
    w->n_words = w->n_words2;
    w->words2 = tp;
    w->cap_words2 = tc;
    return SLM_OK;
}

/* ---- BPE (llm_tokenizer_bpe_session) --------------------------------------------------- */

static int bpe_try_bigram(const slm_tokenizer *t, work *w, int32_t left, int32_t right, slm_err *err) {
    if (left < 0 || right < 0) return SLM_OK;
    const symbol *l = &w->sym[left], *r = &w->sym[right];
    int32_t rank = merge_rank(t, w->buf + l->off, l->n, w->buf + r->off, r->n);
    if (rank < 0) return SLM_OK;
    bigram b = {((uint64_t)(uint32_t)rank << 32) | (uint32_t)left, right, l->n + r->n};
    return heap_push(w, b, err);
}

/* Merges one byte-encoded word in w->buf and appends its ids. */
static int bpe_word(const slm_tokenizer *t, work *w, slm_err *err) {
    int32_t whole = t->ignore_merges ? lookup(t, w->buf, w->n_buf) : -1;
    if (whole >= 0) return push_id(&w->out, whole, err);
    SLM_TRY(make_symbols(w, err));
    w->n_heap = 0;
    for (size_t i = 1; i < w->n_sym; i++) SLM_TRY(bpe_try_bigram(t, w, (int32_t)i - 1, (int32_t)i, err));
    while (w->n_heap) {
        bigram b = heap_pop(w);
        int32_t left = (int32_t)(uint32_t)b.key;
        symbol *l = &w->sym[left], *r = &w->sym[b.right];
        /* outdated when either side changed since the pair was queued */
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue;
        merge_pair(w, left, b.right);
        SLM_TRY(bpe_try_bigram(t, w, w->sym[left].prev, left, err));
        SLM_TRY(bpe_try_bigram(t, w, left, w->sym[left].next, err));
    }
    for (int32_t i = w->n_sym ? 0 : -1; i != -1; i = w->sym[i].next) {
        const symbol *s = &w->sym[i];
        int32_t id = lookup(t, w->buf + s->off, s->n);
        if (id >= 0) {
            SLM_TRY(push_id(&w->out, id, err));
            continue;
        }
        /* each byte of the encoded text as a one-byte token, when there is one */
        for (uint32_t j = 0; j < s->n; j++) {
            int32_t b = t->byte_tok[(unsigned char)w->buf[s->off + j]];
            if (b >= 0) SLM_TRY(push_id(&w->out, b, err));
        }
    }
    return SLM_OK;
}

static int bpe_fragment(const slm_tokenizer *t, work *w, const char *text, size_t len, slm_err *err) {
    /* code points (invalid UTF-8 -> U+FFFD) and their flags */
    SLM_TRY(reserve((void **)&w->cpts, &w->cap_cpts, len, sizeof(uint32_t), err, "code points"));
    size_t n = 0;
    SLM_TRY(reserve((void **)&w->flags, &w->cap_flags, len, sizeof(uint16_t), err, "code point flags"));
    for (size_t off = 0; off < len;) {
        size_t adv;
        uint32_t cp = slm_utf8_decode((const unsigned char *)text + off, len - off, &adv);
        w->cpts[n] = cp;
        w->flags[n] = (uint16_t)slm_unicode_flags(cp);
        n++;
        off += adv;
    }
    /* pre-tokenize */
    SLM_TRY(reserve((void **)&w->words, &w->cap_words, 1, sizeof(uint32_t), err, "words"));
    w->words[0] = (uint32_t)n;
    w->n_words = 1;
    if (t->split == SPLIT_DIGITS_GPT2) {
        SLM_TRY(split_pass(w, SPLIT_DIGITS_GPT2, err));
        SLM_TRY(split_pass(w, SPLIT_GPT2, err));
    } else {
        SLM_TRY(split_pass(w, t->split, err));
    }
    /* each word: UTF-8 bytes -> GPT-2 byte characters -> merges */
    size_t start = 0;
    for (size_t i = 0; i < w->n_words; i++) {
        w->n_buf = 0;
        for (size_t k = start; k < start + w->words[i]; k++) {
            char u[4];
            size_t nu = slm_utf8_encode(w->cpts[k], u);
            SLM_TRY(reserve((void **)&w->buf, &w->cap_buf, w->n_buf + 2 * nu, 1, err, "word"));
            for (size_t j = 0; j < nu; j++) {
                unsigned char b = (unsigned char)u[j];
                memcpy(w->buf + w->n_buf, w->enc[b], w->enc_len[b]);
                w->n_buf += w->enc_len[b];
            }
        }
        start += w->words[i];
        SLM_TRY(bpe_word(t, w, err));
    }
    return SLM_OK;
}

/* ---- tokenize (llama_vocab::impl::tokenize) -------------------------------------------- */

typedef struct fragment {
    size_t off, len;
    int32_t id; /* >= 0: a token split out of the text; -1: raw text */
} fragment;

/* Finds needle in hay (no memmem in C11). */
static const char *find_bytes(const char *hay, size_t n, const char *needle, size_t m) {
    if (m == 0 || m > n) return NULL;
    for (const char *p = hay, *end = hay + n - m + 1; p < end; p++) {
        p = memchr(p, needle[0], (size_t)(end - p));
        if (!p) return NULL;
        if (memcmp(p, needle, m) == 0) return p;
    }
    return NULL;
}

/* tokenizer_st_partition(parse_special = false): each user-defined token, longest first,
   splits every raw fragment at each of its occurrences. */
static int partition(const slm_tokenizer *t, const char *text, size_t len, fragment **frags, size_t *n_frags, slm_err *err) {
    fragment *cur = NULL, *next = NULL;
    size_t n_cur = 0, cap_cur = 0, n_next, cap_next = 0;
    int rc = SLM_OK;
    if (len > 0) {
        rc = reserve((void **)&cur, &cap_cur, 1, sizeof(fragment), err, "text fragments");
        if (!rc) cur[n_cur++] = (fragment){0, len, -1};
    }
    for (size_t u = 0; !rc && u < t->n_user; u++) {
        int32_t id = t->user_ids[u];
        const char *tok = t->text[id];
        size_t m = t->len[id];
        n_next = 0;
        for (size_t f = 0; !rc && f < n_cur; f++) {
            fragment fr = cur[f];
            while (!rc) {
                const char *hit = fr.id < 0 ? find_bytes(text + fr.off, fr.len, tok, m) : NULL;
                rc = reserve((void **)&next, &cap_next, n_next + 3, sizeof(fragment), err, "text fragments");
                if (rc) break;
                if (!hit) {
                    next[n_next++] = fr;
                    break;
                }
                size_t at = (size_t)(hit - text);
                if (at > fr.off) next[n_next++] = (fragment){fr.off, at - fr.off, -1};
                next[n_next++] = (fragment){at, m, id};
                size_t end = fr.off + fr.len;
                if (at + m >= end) break;
                fr = (fragment){at + m, end - (at + m), -1};
            }
        }
        fragment *tp = cur;
        cur = next;
        next = tp;
        size_t tc = cap_cur;
        cap_cur = cap_next;
        cap_next = tc;
        n_cur = n_next;
    }
    slm_free(next);
    if (rc) {
        slm_free(cur);
        return rc;
    }
    *frags = cur;
    *n_frags = n_cur;
    return SLM_OK;
}

static int tokenize(const slm_tokenizer *t, work *w, const char *text, size_t len, int add_special, slm_err *err) {
    fragment *frags = NULL;
    size_t n_frags = 0;
    int add_bos = add_special && t->add_bos, add_eos = add_special && t->add_eos;
    if (add_bos && t->bos_id < 0) return slm_errf(err, SLM_E_FORMAT, "tokenizer: the vocab adds BOS but has no BOS token");
    if (add_eos && t->eos_id < 0) return slm_errf(err, SLM_E_FORMAT, "tokenizer: the vocab adds EOS but has no EOS token");
    SLM_TRY(partition(t, text, len, &frags, &n_frags, err));
    int rc = add_bos ? push_id(&w->out, t->bos_id, err) : SLM_OK;
    int prev_special = 1; /* SPM: a space prefix before the first text and after tokens */
    for (size_t f = 0; !rc && f < n_frags; f++) {
        const fragment *fr = &frags[f];
        if (fr->id >= 0) {
            rc = push_id(&w->out, fr->id, err);
            prev_special = 1;
        } else if (t->kind == SLM_VOCAB_SPM) {
            rc = spm_fragment(t, w, text + fr->off, fr->len, t->add_space_prefix && prev_special, err);
            prev_special = 0;
        } else {
            rc = bpe_fragment(t, w, text + fr->off, fr->len, err);
        }
    }
    if (!rc && add_eos) rc = push_id(&w->out, t->eos_id, err);
    slm_free(frags);
    return rc;
}

int slm_tokenize(const slm_tokenizer *t, const char *text, size_t len, int add_special, int32_t **ids, size_t *n_ids,
                 slm_err *err) {
    work w;
    memset(&w, 0, sizeof w);
    *ids = NULL;
    *n_ids = 0;
    /* symbols and offsets are 32-bit; an SPM text grows by 2 bytes per space */
    if (len > (size_t)INT32_MAX / 3) return slm_errf(err, SLM_E_ARG, "tokenizer: text of %zu bytes is too long", len);
    for (int b = 0; b < 256; b++) w.enc_len[b] = (uint8_t)slm_utf8_encode(slm_byte_to_cp((unsigned char)b), w.enc[b]);
    int rc = reserve((void **)&w.out.p, &w.out.cap, 1, sizeof(int32_t), err, "token ids");
    if (!rc) rc = tokenize(t, &w, text, len, add_special, err);
    work_free(&w);
    if (rc) {
        slm_free(w.out.p);
        return rc;
    }
    *ids = w.out.p;
    *n_ids = w.out.n;
    return SLM_OK;
}

/* ---- pieces (token_to_piece) and detokenize -------------------------------------------- */

typedef struct sink {
    char *buf;
    size_t cap, n;
} sink;

static void put(sink *s, const char *p, size_t n) {
    if (s->n < s->cap) memcpy(s->buf + s->n, p, SLM_MIN(n, s->cap - s->n));
    s->n += n;
}

static unsigned hex_val(char c) {
    return c >= '0' && c <= '9' ? (unsigned)(c - '0') : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10) :
           c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10) : 0;
}

/* token_to_byte: strtol of text[3..5) in base 16 */
static void put_byte_token(sink *s, const char *text, size_t n) {
    unsigned v = 0;
    for (size_t i = 3; i < 5 && i < n; i++) {
        char c = text[i];
        int ok = (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
        if (!ok) break;
        v = v * 16 + hex_val(c);
    }
    char b = (char)v;
    put(s, &b, 1);
}

/* llama_decode_text: each code point back to the byte it stands for */
static void put_byte_decoded(sink *s, const char *text, size_t n) {
    for (size_t off = 0; off < n;) {
        size_t adv;
        uint32_t cp = slm_utf8_decode((const unsigned char *)text + off, n - off, &adv);
        int b = slm_cp_to_byte(cp);
        off += adv;
        if (b >= 0) {
            char c = (char)b;
            put(s, &c, 1);
            continue;
        }
        char u[4], hex[8];
        size_t nu = slm_utf8_encode(cp, u);
        put(s, "[UNK_BYTE_0x", 12);
        for (size_t i = 0; i < nu; i++) {
            snprintf(hex, sizeof hex, "%02x", (unsigned char)u[i]);
            put(s, hex, 2);
        }
        put(s, text, n);
        put(s, "]", 1);
    }
}

static void put_piece(const slm_tokenizer *t, int32_t id, sink *s) {
    if (id < 0 || id >= t->n_tokens) return;
    uint8_t a = t->attr[id];
    const char *text = t->text[id];
    size_t n = t->len[id];
    if (a & (ATTR_UNKNOWN | ATTR_CONTROL)) return;
    if (a & ATTR_USER_DEFINED) {
        put(s, text, n);
    } else if (a & ATTR_NORMAL) {
        if (t->kind == SLM_VOCAB_BPE) {
            put_byte_decoded(s, text, n);
            return;
        }
        for (size_t i = 0; i < n;) { /* U+2581 -> ' ' */
            if (i + 3 <= n && memcmp(text + i, "\xe2\x96\x81", 3) == 0) {
                put(s, " ", 1);
                i += 3;
            } else {
                put(s, text + i, 1);
                i++;
            }
        }
    } else if (a & ATTR_BYTE) {
        put_byte_token(s, text, n);
    }
}

size_t slm_token_piece(const slm_tokenizer *t, int32_t id, char *buf, size_t cap) {
    sink s = {buf, buf ? cap : 0, 0};
    put_piece(t, id, &s);
    return s.n;
}

/* llama.cpp's clean_spaces passes on the whole text; returns the new length */
static size_t clean_spaces(char *text, size_t total) {
    size_t i, n;
    /* " ?", " !", " .", " ," lose the space */
    for (n = total ? 1 : 0, i = 1; i < total; i++) {
        char x = text[i];
        if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) n--;
        text[n++] = x;
    }
    /* " ' " -> "'" */
    total = n;
    for (n = total ? 1 : 0, i = 1; i < total; i++) {
        char x = text[i];
        if (x == '\'' && i + 1 < total && text[i - 1] == ' ' && text[i + 1] == ' ') {
            n--;
            text[++i] = 0;
        }
        text[n++] = x;
    }
    /* " 's", " 'm", " 're", " 've" lose the space */
    total = n;
    for (n = total ? 1 : 0, i = 1; i < total; i++) {
        char x = text[i];
        if (text[i - 1] == ' ' && x == '\'' && i + 1 < total) {
            char x1 = text[i + 1];
            if (x1 == 's' || x1 == 'm') n--;
            else if (i + 2 < total && ((x1 == 'r' && text[i + 2] == 'e') || (x1 == 'v' && text[i + 2] == 'e'))) n--;
        }
        text[n++] = x;
    }
    return n;
}

int slm_detokenize(const slm_tokenizer *t, const int32_t *ids, size_t n_ids, int remove_special, char **text,
                   size_t *len, slm_err *err) {
    int remove_space = t->add_space_prefix;
    *text = NULL;
    *len = 0;
    for (size_t i = 0; i < n_ids; i++)
        if (ids[i] < 0 || ids[i] >= t->n_tokens) return slm_errf(err, SLM_E_ARG, "detokenize: token id %d out of range [0, %d)", ids[i], t->n_tokens);
    if (remove_special && t->add_bos && n_ids > 0 && ids[0] == t->bos_id) {
        remove_space = 0;
        ids++;
        n_ids--;
    }
    if (remove_special && t->add_eos && n_ids > 0 && ids[n_ids - 1] == t->eos_id) n_ids--;
    /* two passes: measure, then write */
    size_t total = 0;
    for (size_t i = 0; i < n_ids; i++) total += slm_token_piece(t, ids[i], NULL, 0);
    SLM_TRY(slm_alloc((void **)text, total + 1, err, "detokenized text"));
    sink s = {*text, total, 0};
    for (size_t i = 0; i < n_ids; i++) {
        size_t start = s.n;
        put_piece(t, ids[i], &s);
        if (remove_space && s.n > start && s.buf[start] == ' ') { /* lstrip one space */
            memmove(s.buf + start, s.buf + start + 1, s.n - start - 1);
            s.n--;
        }
        remove_space = 0;
    }
    total = t->clean_spaces ? clean_spaces(*text, s.n) : s.n;
    (*text)[total] = 0;
    *len = total;
    return SLM_OK;
}

int32_t slm_tokenizer_bos(const slm_tokenizer *t) { return t->add_bos ? t->bos_id : -1; }
int32_t slm_tokenizer_eos(const slm_tokenizer *t) { return t->eos_id; }
