/* tok_import.c - slm_vocab from a Hugging Face folder or GGUF metadata, and back to GGUF keys.
 *
 * Owns: the SentencePiece ModelProto decoder (tokenizer.model), the tokenizer.json readers
 * (byte-level BPE: vocab, merges, added tokens, pre-tokenizer recognition; byte_fallback BPE as
 * gguf-py's LlamaHfVocab reads it), gguf-py's SpecialVocab rules (special ids,
 * add_bos/add_sep/add_eos, chat template) and the tokenizer.ggml.* key mapping. Mirrors
 * llama.cpp's convert_hf_to_gguf.py (_create_vocab_sentencepiece, get_vocab_base,
 * LlamaModel.set_vocab, _set_vocab_llama_hf) at release v0.5.0.
 * Must not: print, guess a pre-tokenizer name, or trust any count, id or type read from a file.
 */
#include "formats/tok_import.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/le.h"
#include "core/mapfile.h"
#include "core/mem.h"
#include "core/slm.h"
#include "core/strindex.h"

/* A vocabulary larger than this is not a tokenizer but a corrupt or hostile number. */
#define MAX_VOCAB (1 << 26)
#define U2581 "\xe2\x96\x81" /* SentencePiece's visible space */

/* ---- vocab lifetime ---------------------------------------------------------------------- */

static void vocab_init(slm_vocab *v) {
    memset(v, 0, sizeof(*v));
    v->bos_id = v->eos_id = v->unk_id = v->pad_id = v->eot_id = v->sep_id = v->mask_id = v->eom_id = -1;
    v->add_bos = v->add_eos = v->add_sep = v->add_space_prefix = -1;
}

void slm_vocab_free(slm_vocab *v) {
    if (!v) return;
    if (v->tokens)
        for (int32_t i = 0; i < v->n_tokens; i++) slm_free(v->tokens[i]);
    if (v->merges)
        for (int32_t i = 0; i < v->n_merges; i++) slm_free(v->merges[i]);
    slm_free(v->tokens);
    slm_free(v->scores);
    slm_free(v->types);
    slm_free(v->merges);
    slm_free(v->chat_template);
    vocab_init(v);
}

/* Allocates n tokens (all NULL), scores (if want_scores) and types. */
static int vocab_alloc(slm_vocab *v, int32_t n, int want_scores, slm_err *err) {
    SLM_TRY(slm_calloc((void **)&v->tokens, (size_t)n, sizeof(char *), err, "token strings"));
    v->n_tokens = n;
    SLM_TRY(slm_calloc((void **)&v->types, (size_t)n, sizeof(int32_t), err, "token types"));
    if (want_scores) SLM_TRY(slm_calloc((void **)&v->scores, (size_t)n, sizeof(float), err, "token scores"));
    return SLM_OK;
}

static int dup_bytes(char **out, const char *s, size_t n, slm_err *err) {
    SLM_TRY(slm_alloc((void **)out, n + 1, err, "token string"));
    memcpy(*out, s, n);
    (*out)[n] = 0;
    return SLM_OK;
}

static int dup_str(char **out, const char *s, slm_err *err) {
    *out = slm_strdup(s, err);
    return *out ? SLM_OK : SLM_E_NOMEM;
}

/* Copy of s with every occurrence of `from` replaced by `to`. */
static int dup_replace(char **out, const char *s, const char *from, const char *to, slm_err *err) {
    size_t lf = strlen(from), lt = strlen(to), n = 0;
    for (const char *p = s; (p = strstr(p, from)); p += lf) n++;
    size_t len = strlen(s) - n * lf + n * lt;
    SLM_TRY(slm_alloc((void **)out, len + 1, err, "token string"));
    char *o = *out;
    for (const char *p = s; *p;) {
        if (strncmp(p, from, lf) == 0) {
            memcpy(o, to, lt);
            o += lt;
            p += lf;
        } else {
            *o++ = *p++;
        }
    }
    *o = 0;
    return SLM_OK;
}

/* ---- string -> int map (duplicate keys, token lookups) ------------------------------------ */

/* Keys from files: the slots are core/strindex's (SipHash under a random key, so crafted
   strings cannot all collide); keys and values sit in insertion order. */
typedef struct smap {
    const char **keys; /* borrowed */
    int32_t *vals;
    size_t n, cap;
    slm_strindex ix;
} smap;

static const char *smap_key_at(const void *ctx, size_t i) { return ((const smap *)ctx)->keys[i]; }

static void smap_free(smap *m) {
    slm_free(m->keys);
    slm_free(m->vals);
    slm_strindex_free(&m->ix);
    memset(m, 0, sizeof(*m));
}

/* Room for n keys: smap_put never allocates (or fails) for the first n. */
static int smap_init(smap *m, size_t n, slm_err *err) {
    memset(m, 0, sizeof(*m));
    int rc = slm_calloc((void **)&m->keys, n ? n : 1, sizeof(char *), err, "string map");
    if (!rc) rc = slm_calloc((void **)&m->vals, n ? n : 1, sizeof(int32_t), err, "string map");
    if (!rc) rc = slm_strindex_reserve(&m->ix, n, err);
    if (rc) {
        smap_free(m);
        return rc;
    }
    m->cap = n;
    return SLM_OK;
}

/* Inserts key -> val unless present; returns 1 when it was already there. */
static int smap_put(smap *m, const char *key, int32_t val) {
    size_t dup;
    SLM_ASSERT(m->n < m->cap);
    int rc = slm_strindex_add(&m->ix, key, m->n, smap_key_at, m, &dup, NULL);
    SLM_ASSERT(rc == SLM_OK); /* reserved by smap_init */
    if (dup != SLM_STRINDEX_NONE) return 1;
    m->keys[m->n] = key;
    m->vals[m->n++] = val;
    return 0;
}

static const int32_t *smap_get(const smap *m, const char *key) {
    size_t i = slm_strindex_find(&m->ix, key, smap_key_at, m);
    return i == SLM_STRINDEX_NONE ? NULL : &m->vals[i];
}

/* ---- JSON helpers ---------------------------------------------------------------------- */

/* Rejects an object with a repeated key anywhere in the tree (cJSON keeps both copies). */
static int json_check_dups(const cJSON *j, const char *file, slm_err *err) {
    if (!cJSON_IsObject(j) && !cJSON_IsArray(j)) return SLM_OK;
    if (cJSON_IsObject(j)) {
        size_t n = 0;
        for (const cJSON *c = j->child; c; c = c->next) n++;
        smap m;
        SLM_TRY(smap_init(&m, n, err));
        for (const cJSON *c = j->child; c; c = c->next) {
            if (c->string && smap_put(&m, c->string, 0)) {
                int rc = slm_errf(err, SLM_E_FORMAT, "%s: duplicate key '%.200s'", file, c->string);
                smap_free(&m);
                return rc;
            }
        }
        smap_free(&m);
    }
    for (const cJSON *c = j->child; c; c = c->next) SLM_TRY(json_check_dups(c, file, err));
    return SLM_OK;
}

static int join_path(char *out, size_t cap, const char *dir, const char *name, slm_err *err) {
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) return slm_errf(err, SLM_E_ARG, "%s/%s: path too long", dir, name);
    return SLM_OK;
}

/* Something is there: a file, or a FIFO or folder that slm_map_open then refuses by name
   (treating those as absent would silently pick another tokenizer file). */
static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Maps dir/name into *m (*present = 1); an absent file is an error only when required.
   dir NULL: a lone file given from memory, so every other file is absent. */
static int read_file(const char *dir, const char *name, int required, slm_map *m, int *present, slm_err *err) {
    char path[4096];
    *present = 0;
    if (!dir) {
        if (required) return slm_errf(err, SLM_E_IO, "%s: %s", name, strerror(ENOENT));
        return SLM_OK;
    }
    SLM_TRY(join_path(path, sizeof path, dir, name, err));
    if (!exists(path)) {
        if (required) return slm_errf(err, SLM_E_IO, "%s: %s", path, strerror(ENOENT));
        return SLM_OK;
    }
    SLM_TRY(slm_map_open(m, path, err));
    *present = 1;
    return SLM_OK;
}

/* Parses the size bytes of file `name` into *out: no repeated keys anywhere. */
static int json_parse_bytes(const char *name, const char *data, size_t size, cJSON **out, slm_err *err) {
    *out = NULL;
    if (size == 0) return slm_errf(err, SLM_E_FORMAT, "%s: empty file", name);
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(data, size, &end, 0);
    size_t off = end ? (size_t)(end - data) : 0;
    if (!j) return slm_errf(err, SLM_E_FORMAT, "%s: invalid JSON near byte %zu", name, off);
    int rc = json_check_dups(j, name, err);
    if (rc) {
        cJSON_Delete(j);
        return rc;
    }
    *out = j;
    return SLM_OK;
}

/* Parses dir/name into *out (NULL when the file is absent and optional). */
static int json_load(const char *dir, const char *name, cJSON **out, slm_err *err) {
    slm_map m = {0};
    int present;
    *out = NULL;
    SLM_TRY(read_file(dir, name, 0, &m, &present, err));
    if (!present) return SLM_OK;
    int rc = json_parse_bytes(name, (const char *)m.data, m.size, out, err);
    slm_map_close(&m);
    return rc;
}

static const cJSON *jget(const cJSON *obj, const char *key) {
    return cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
}

static const char *jstr(const cJSON *obj, const char *key) {
    const cJSON *s = jget(obj, key);
    return cJSON_IsString(s) ? s->valuestring : NULL;
}

/* An integral JSON number with |x| <= 2^53 (valueint saturates, so use valuedouble). */
static int jint(const cJSON *n, int64_t *out) {
    if (!cJSON_IsNumber(n)) return 0;
    double d = n->valuedouble;
    if (!(fabs(d) <= 9007199254740992.0) || d != floor(d)) return 0;
    *out = (int64_t)d;
    return 1;
}

/* Python truthiness of a JSON value (None, False, 0, "", [] and {} are false). */
static int jtruthy(const cJSON *j) {
    if (!j || cJSON_IsNull(j) || cJSON_IsFalse(j)) return 0;
    if (cJSON_IsNumber(j)) return j->valuedouble != 0;
    if (cJSON_IsString(j)) return j->valuestring[0] != 0;
    if (cJSON_IsArray(j) || cJSON_IsObject(j)) return j->child != NULL;
    return 1;
}

/* ---- protobuf (just enough for sentencepiece's ModelProto) ------------------------------- */

typedef struct pb {
    const uint8_t *p, *end, *base;
} pb;

static int pb_varint(pb *b, uint64_t *out) {
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (b->p >= b->end) return 0;
        uint8_t c = *b->p++;
        x |= (uint64_t)(c & 0x7F) << shift;
        if (!(c & 0x80)) {
            *out = x;
            return 1;
        }
    }
    return 0;
}

/* Reads a length-delimited field into a sub-reader. */
static int pb_len(pb *b, pb *sub) {
    uint64_t n;
    if (!pb_varint(b, &n) || n > (uint64_t)(b->end - b->p)) return 0;
    sub->base = b->base;
    sub->p = b->p;
    sub->end = b->p + n;
    b->p += n;
    return 1;
}

static int pb_skip(pb *b, int wt) {
    uint64_t x;
    pb sub;
    switch (wt) {
    case 0: return pb_varint(b, &x);
    case 1: if (b->end - b->p < 8) return 0; b->p += 8; return 1;
    case 2: return pb_len(b, &sub);
    case 5: if (b->end - b->p < 4) return 0; b->p += 4; return 1;
    default: return 0; /* groups (3, 4) are not used by sentencepiece */
    }
}

static int pb_key(pb *b, uint64_t *field, int *wt) {
    uint64_t k;
    if (!pb_varint(b, &k)) return 0;
    *field = k >> 3;
    *wt = (int)(k & 7);
    return *field != 0;
}

typedef struct spm_model {
    int32_t n;
    size_t cap;
    char **piece;
    float *score;
    int32_t *type;
    int add_dummy_prefix;
} spm_model;

static void spm_model_free(spm_model *m) {
    for (int32_t i = 0; i < m->n; i++) slm_free(m->piece[i]);
    slm_free(m->piece);
    slm_free(m->score);
    slm_free(m->type);
    memset(m, 0, sizeof(*m));
}

static int pb_bad(const pb *b, slm_err *err) {
    return slm_errf(err, SLM_E_FORMAT, "tokenizer.model: truncated or malformed protobuf at byte %zu",
                    (size_t)(b->p - b->base));
}

/* message SentencePiece { string piece = 1; float score = 2; Type type = 3 [default NORMAL]; } */
static int spm_parse_piece(pb *b, spm_model *m, slm_err *err) {
    if ((size_t)m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 1024;
        if (m->n >= MAX_VOCAB) return slm_errf(err, SLM_E_FORMAT, "tokenizer.model: more than %d pieces", MAX_VOCAB);
        SLM_TRY(slm_realloc((void **)&m->piece, cap * sizeof(char *), err, "sentencepiece pieces"));
        SLM_TRY(slm_realloc((void **)&m->score, cap * sizeof(float), err, "sentencepiece scores"));
        SLM_TRY(slm_realloc((void **)&m->type, cap * sizeof(int32_t), err, "sentencepiece types"));
        m->cap = cap;
    }
    int32_t i = m->n;
    const uint8_t *text = NULL;
    size_t text_len = 0;
    float score = 0.0f;
    uint64_t type = SLM_TOKEN_NORMAL, field;
    int wt;
    while (b->p < b->end) {
        if (!pb_key(b, &field, &wt)) return pb_bad(b, err);
        if (field == 1 && wt == 2) {
            pb s;
            if (!pb_len(b, &s)) return pb_bad(b, err);
            text = s.p;
            text_len = (size_t)(s.end - s.p);
        } else if (field == 2 && wt == 5) {
            if (b->end - b->p < 4) return pb_bad(b, err);
            score = slm_le_f32(b->p);
            b->p += 4;
        } else if (field == 3 && wt == 0) {
            if (!pb_varint(b, &type)) return pb_bad(b, err);
        } else if (!pb_skip(b, wt)) {
            return pb_bad(b, err);
        }
    }
    if (!text || text_len == 0) return slm_errf(err, SLM_E_FORMAT, "tokenizer.model: piece %d is empty", i);
    if (memchr(text, 0, text_len)) return slm_errf(err, SLM_E_FORMAT, "tokenizer.model: piece %d contains a NUL byte", i);
    if (type < SLM_TOKEN_NORMAL || type > SLM_TOKEN_BYTE)
        return slm_errf(err, SLM_E_FORMAT, "tokenizer.model: piece %d has unknown type %llu", i, (unsigned long long)type);
    SLM_TRY(dup_bytes(&m->piece[i], (const char *)text, text_len, err));
    m->score[i] = score;
    m->type[i] = (int32_t)type;
    m->n++;
    return SLM_OK;
}

/* message NormalizerSpec { ... bool add_dummy_prefix = 3 [default = true]; ... } */
static int spm_parse_normalizer(pb *b, spm_model *m, slm_err *err) {
    uint64_t field, x;
    int wt;
    while (b->p < b->end) {
        if (!pb_key(b, &field, &wt)) return pb_bad(b, err);
        if (field == 3 && wt == 0) {
            if (!pb_varint(b, &x)) return pb_bad(b, err);
            m->add_dummy_prefix = x != 0;
        } else if (!pb_skip(b, wt)) {
            return pb_bad(b, err);
        }
    }
    return SLM_OK;
}

/* message ModelProto { repeated SentencePiece pieces = 1; TrainerSpec trainer_spec = 2;
                        NormalizerSpec normalizer_spec = 3; ... } */
static int spm_parse(const uint8_t *data, size_t size, spm_model *m, slm_err *err) {
    if (!size) return slm_errf(err, SLM_E_FORMAT, "tokenizer.model: no pieces"); /* an empty file maps to NULL */
    pb b = {data, data + size, data};
    m->add_dummy_prefix = 1;
    uint64_t field;
    int wt;
    while (b.p < b.end) {
        if (!pb_key(&b, &field, &wt)) return pb_bad(&b, err);
        if (wt == 2 && (field == 1 || field == 3)) {
            pb sub;
            if (!pb_len(&b, &sub)) return pb_bad(&b, err);
            SLM_TRY(field == 1 ? spm_parse_piece(&sub, m, err) : spm_parse_normalizer(&sub, m, err));
        } else if (!pb_skip(&b, wt)) {
            return pb_bad(&b, err);
        }
    }
    if (m->n == 0) return slm_errf(err, SLM_E_FORMAT, "tokenizer.model: no pieces");
    return SLM_OK;
}

/* ---- SpecialVocab (gguf-py/gguf/vocab.py) ------------------------------------------------ */

enum { ST_BOS, ST_EOS, ST_UNK, ST_SEP, ST_PAD, ST_CLS, ST_MASK, ST_EOT, ST_EOM, ST_N };
static const char *const k_st_name[ST_N] = {"bos", "eos", "unk", "sep", "pad", "cls", "mask", "eot", "eom"};

/* A tokenizer_config.json `<typ>_token` value as Python sees it: kind 0 falsy, 1 a non-empty
   string s, 2 something else truthy (a dict, whose content is s when it is a string). */
typedef struct st_entry {
    int kind;
    const char *s;
} st_entry;

typedef struct special_vocab {
    int n_types;        /* ST_MASK+1, then +eot, +eom as TemplateProcessing adds them */
    int type[ST_N];     /* the order of special_token_types */
    int64_t id[ST_N];   /* -1 unset */
    int add[ST_N];      /* -1 unset */
    int add_order[ST_N], n_add; /* the order add[] entries were first set (a Python dict's) */
    int id_order[ST_N], n_id;   /* the same for id[] */
    st_entry tc[ST_N];  /* tokenizer_config entries, possibly rewritten */
    int have_tc;
} special_vocab;

static st_entry st_read(const cJSON *tc, int t) {
    char key[32];
    snprintf(key, sizeof key, "%s_token", k_st_name[t]);
    const cJSON *e = jget(tc, key);
    st_entry r = {0, NULL};
    if (cJSON_IsString(e)) {
        r.kind = e->valuestring[0] ? 1 : 0;
        r.s = e->valuestring;
    } else if (jtruthy(e)) {
        r.kind = 2;
        r.s = jstr(e, "content");
    }
    return r;
}

static int st_eq(st_entry a, const char *s) { return a.kind == 1 && s && strcmp(a.s, s) == 0; }

static int sv_has_type(const special_vocab *sv, int t) {
    for (int i = 0; i < sv->n_types; i++)
        if (sv->type[i] == t) return 1;
    return 0;
}

static void sv_add(special_vocab *sv, int t, int val) {
    if (sv->add[t] < 0) sv->add_order[sv->n_add++] = t;
    sv->add[t] = val;
}

/* _set_special_token: ints only, negative is an error, first setter wins, range-checked
   against n_vocab when known. */
static int sv_set(special_vocab *sv, int t, const cJSON *tid, int64_t n_vocab, const char *file, slm_err *err) {
    int64_t id;
    if (!jint(tid, &id)) return SLM_OK;
    if (id < 0) return slm_errf(err, SLM_E_FORMAT, "%s: invalid value for special token type %s: %lld", file, k_st_name[t], (long long)id);
    if (n_vocab >= 0 && id >= n_vocab) return SLM_OK;
    if (sv->id[t] < 0) {
        sv->id[t] = id;
        sv->id_order[sv->n_id++] = t;
    }
    return SLM_OK;
}

static const char *template_special_id(const cJSON *item) {
    return jstr(jget(item, "SpecialToken"), "id");
}

static const char *template_seq_id(const cJSON *item) {
    return jstr(jget(item, "Sequence"), "id");
}

/* TemplateProcessing's pair, "A [sep] [eos] B": sets add_sep (first, last: the single
   template's leading and trailing special tokens, or NULL). */
static void sv_template_pair(special_vocab *sv, const cJSON *pair, const char *first, const char *last) {
    int n = cJSON_IsArray(pair) ? cJSON_GetArraySize(pair) : 0;
    if (n == 0) return;
    const char *p0 = template_special_id(cJSON_GetArrayItem(pair, 0)), *pn = template_special_id(cJSON_GetArrayItem(pair, n - 1));
    int start = first && p0 && !strcmp(p0, first) ? 1 : 0;
    int stop = last && pn && !strcmp(pn, last) ? n - 1 : n;
    if (stop - start < 3) return; /* A and B with something between them */
    const char *a = template_seq_id(cJSON_GetArrayItem(pair, start)), *b = template_seq_id(cJSON_GetArrayItem(pair, stop - 1));
    if (!a || strcmp(a, "A") || !b || strcmp(b, "B")) return;
    int add_sep = 0;
    const char *e = template_special_id(cJSON_GetArrayItem(pair, start + 1));
    if (e && *e && (st_eq(sv->tc[ST_SEP], e) || st_eq(sv->tc[ST_EOS], e)) && !last) add_sep = 1;
    if (stop - start == 4) {
        e = template_special_id(cJSON_GetArrayItem(pair, start + 2));
        if (e && *e && (st_eq(sv->tc[ST_SEP], e) || st_eq(sv->tc[ST_EOS], e))) add_sep = 1;
    }
    sv_add(sv, ST_SEP, add_sep);
    if (add_sep && !sv->tc[ST_SEP].kind && sv->have_tc) sv->tc[ST_SEP] = sv->tc[ST_EOS];
}

/* The BOS/EOS part of SpecialVocab's "crude parsing" of post_processor. */
static void sv_post_processor(special_vocab *sv, const cJSON *tok) {
    const cJSON *pp = jget(tok, "post_processor");
    if (!cJSON_IsObject(pp)) return;
    const cJSON *list = jget(pp, "processors");
    const cJSON *one = pp;
    const cJSON *it = cJSON_IsArray(list) ? list->child : one;
    for (; it; it = cJSON_IsArray(list) ? it->next : NULL) {
        const char *type = jstr(it, "type");
        if (type && strcmp(type, "RobertaProcessing") == 0) {
            sv_add(sv, ST_BOS, 1);
            sv_add(sv, ST_EOS, 1);
            sv_add(sv, ST_SEP, 1);
            continue;
        }
        if (!type || strcmp(type, "TemplateProcessing") != 0) continue;
        const cJSON *single = jget(it, "single");
        if (!cJSON_IsArray(single) || cJSON_GetArraySize(single) <= 1) {
            sv_template_pair(sv, jget(it, "pair"), NULL, NULL);
            continue;
        }
        const char *first = template_special_id(cJSON_GetArrayItem(single, 0));
        if (first && !*first) first = NULL;
        if (first && *first) {
            if (!sv->have_tc) {
                sv->tc[ST_BOS] = (st_entry){1, first};
            } else if (!st_eq(sv->tc[ST_BOS], first) && !st_eq(sv->tc[ST_CLS], first)) {
                if (!sv->tc[ST_BOS].kind) sv->tc[ST_BOS] = (st_entry){1, first};
                if (!sv->tc[ST_CLS].kind) sv->tc[ST_CLS] = (st_entry){1, first};
            }
            sv_add(sv, ST_BOS, st_eq(sv->tc[ST_BOS], first) || st_eq(sv->tc[ST_CLS], first));
        }
        const char *last = template_special_id(cJSON_GetArrayItem(single, cJSON_GetArraySize(single) - 1));
        if (last && !*last) last = NULL;
        if (last && *last) {
            if (!sv->have_tc) {
                sv->tc[ST_EOS] = (st_entry){1, last};
            } else if (!st_eq(sv->tc[ST_EOS], last)) {
                if (!sv_has_type(sv, ST_EOT)) {
                    sv->type[sv->n_types++] = ST_EOT;
                    sv->tc[ST_EOT] = sv->tc[ST_EOS];
                } else if (!sv_has_type(sv, ST_EOM)) {
                    sv->type[sv->n_types++] = ST_EOM;
                    sv->tc[ST_EOM] = sv->tc[ST_EOS];
                }
                sv->tc[ST_EOS] = (st_entry){1, last};
            }
            sv_add(sv, ST_EOS, st_eq(sv->tc[ST_EOS], last));
        }
        sv_template_pair(sv, jget(it, "pair"), first, last);
    }
}

/* SpecialVocab(path, n_vocab)._load(): tokenizer.json (may be NULL), tokenizer_config.json,
   config.json. Fills the ids and add flags of v. */
static int special_vocab_load(slm_vocab *v, const cJSON *tok, const cJSON *tcfg, const cJSON *cfg, int64_t n_vocab, slm_err *err) {
    special_vocab sv;
    memset(&sv, 0, sizeof sv);
    sv.n_types = ST_MASK + 1;
    for (int t = 0; t < ST_N; t++) {
        sv.type[t] = t;
        sv.id[t] = -1;
        sv.add[t] = -1;
    }
    sv.have_tc = cJSON_IsObject(tcfg) && tcfg->child;
    for (int t = 0; t < ST_N; t++) sv.tc[t] = st_read(tcfg, t);
    if (tok) {
        /* a missing bos/eos falls back to cls/sep */
        if (!sv.tc[ST_BOS].kind && sv.tc[ST_CLS].kind && sv.have_tc) sv.tc[ST_BOS] = sv.tc[ST_CLS];
        if (!sv.tc[ST_EOS].kind && sv.tc[ST_SEP].kind && sv.have_tc) sv.tc[ST_EOS] = sv.tc[ST_SEP];
        sv_post_processor(&sv, tok);
    }
    const cJSON *added = jget(tok, "added_tokens");
    if (sv.have_tc) {
        for (int k = 0; k < sv.n_types; k++) {
            int t = sv.type[k];
            char key[32];
            snprintf(key, sizeof key, "add_%s_token", k_st_name[t]);
            const cJSON *a = jget(tcfg, key);
            if (cJSON_IsBool(a)) sv_add(&sv, t, cJSON_IsTrue(a));
            const char *content = sv.tc[t].s; /* a string (even ""), or a dict's content */
            if (!content) continue;
            /* the first added token with that content */
            const cJSON *tid = NULL;
            if (cJSON_IsArray(added)) {
                for (const cJSON *at = added->child; at; at = at->next) {
                    const char *c = jstr(at, "content");
                    if (c && strcmp(c, content) == 0) {
                        tid = jget(at, "id");
                        break;
                    }
                }
            }
            SLM_TRY(sv_set(&sv, t, tid, n_vocab, "tokenizer_config.json", err));
        }
    }
    if (cfg) {
        const cJSON *text_cfg = jget(cfg, "text_config");
        for (int k = 0; k < sv.n_types; k++) {
            int t = sv.type[k];
            char key[32];
            snprintf(key, sizeof key, "%s_token_id", k_st_name[t]);
            const cJSON *tid = jget(cfg, key);
            if ((!tid || cJSON_IsNull(tid)) && text_cfg) tid = jget(text_cfg, key);
            SLM_TRY(sv_set(&sv, t, tid, n_vocab, "config.json", err));
        }
    }
    for (int t = 0; t < ST_N; t++)
        if (sv.id[t] > INT32_MAX) return slm_errf(err, SLM_E_FORMAT, "special token id out of range");
    v->bos_id = (int32_t)sv.id[ST_BOS];
    v->eos_id = (int32_t)sv.id[ST_EOS];
    v->unk_id = (int32_t)sv.id[ST_UNK];
    v->pad_id = (int32_t)sv.id[ST_PAD];
    v->eot_id = (int32_t)sv.id[ST_EOT];
    v->sep_id = (int32_t)sv.id[ST_SEP];
    v->mask_id = (int32_t)sv.id[ST_MASK];
    v->eom_id = (int32_t)sv.id[ST_EOM];
    int n_ids = 0; /* cls has no GGUF key: add_to_gguf skips it */
    for (int i = 0; i < sv.n_id; i++) {
        static const char letter[ST_N] = {'b', 'e', 'u', 's', 'p', 0, 'm', 't', 'o'};
        if (letter[sv.id_order[i]]) v->id_order[n_ids++] = letter[sv.id_order[i]];
    }
    v->id_order[n_ids] = 0;
    v->add_bos = sv.add[ST_BOS];
    v->add_eos = sv.add[ST_EOS];
    v->add_sep = sv.add[ST_SEP];
    int k = 0;
    for (int i = 0; i < sv.n_add; i++) {
        int t = sv.add_order[i];
        if (t == ST_BOS || t == ST_SEP || t == ST_EOS) v->add_order[k++] = t == ST_BOS ? 'b' : t == ST_SEP ? 's' : 'e';
    }
    v->add_order[k] = 0;
    return SLM_OK;
}

/* chat_template: tokenizer_config.json's, else chat_template.jinja, else chat_template.json's
   (only when tokenizer_config.json exists, as SpecialVocab). A list of named templates keeps
   the one named "default". */
static int load_chat_template(slm_vocab *v, const char *dir, const cJSON *tcfg, slm_err *err) {
    if (!(cJSON_IsObject(tcfg) && tcfg->child)) return SLM_OK;
    const cJSON *ct = jget(tcfg, "chat_template");
    cJSON *alt_json = NULL;
    int rc = SLM_OK;
    if (!ct) {
        slm_map m = {0};
        int present;
        SLM_TRY(read_file(dir, "chat_template.jinja", 0, &m, &present, err));
        if (present) {
            if (m.size && memchr(m.data, 0, m.size)) rc = slm_errf(err, SLM_E_FORMAT, "chat_template.jinja: contains a NUL byte");
            else rc = dup_bytes(&v->chat_template, m.size ? (const char *)m.data : "", m.size, err);
            slm_map_close(&m);
            return rc;
        }
        SLM_TRY(json_load(dir, "chat_template.json", &alt_json, err));
        ct = jget(alt_json, "chat_template");
    }
    if (cJSON_IsString(ct)) {
        v->chat_template = slm_strdup(ct->valuestring, err);
        if (!v->chat_template) rc = err->code;
    } else if (cJSON_IsArray(ct)) {
        for (const cJSON *it = ct->child; it; it = it->next) {
            const char *name = jstr(it, "name"), *tmpl = jstr(it, "template");
            if (name && tmpl && strcmp(name, "default") == 0) {
                v->chat_template = slm_strdup(tmpl, err);
                if (!v->chat_template) rc = err->code;
                break;
            }
        }
    }
    cJSON_Delete(alt_json);
    return rc;
}

/* ---- SentencePiece folder (_create_vocab_sentencepiece) ---------------------------------- */

static int starts_with(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

static int ends_with(const char *s, const char *p) {
    size_t n = strlen(s), m = strlen(p);
    return n >= m && strcmp(s + n - m, p) == 0;
}

/* convert_hf_to_gguf.py's does_token_look_special() (Python's startswith/endswith may overlap) */
static int looks_special(const char *s) {
    if (!strcmp(s, "<pad>") || !strcmp(s, "<mask>") || !strcmp(s, "<2mass>") || !strcmp(s, "[@BOS@]")) return 1;
    if (starts_with(s, "<|") && ends_with(s, "|>")) return 1;
    if (starts_with(s, "<\xef\xbd\x9c") && ends_with(s, "\xef\xbd\x9c>")) return 1; /* <｜ ... ｜> */
    return starts_with(s, "<unused") && ends_with(s, ">");
}

/* config.json's vocab_size, or fallback when absent/zero (find_hparam(...) or default). */
static int config_vocab_size(const cJSON *cfg, int64_t fallback, int64_t *out, slm_err *err) {
    const cJSON *n = jget(cfg, "vocab_size");
    int64_t x;
    *out = fallback;
    if (!n || cJSON_IsNull(n)) return SLM_OK;
    if (!jint(n, &x) || x < 0 || x > MAX_VOCAB)
        return slm_errf(err, SLM_E_FORMAT, "config.json: vocab_size is not an integer in [0, %d]", MAX_VOCAB);
    if (x > 0) *out = x;
    return SLM_OK;
}

static void set_token(slm_vocab *v, int32_t i, char *s, float score, int32_t type) {
    slm_free(v->tokens[i]);
    v->tokens[i] = s;
    if (v->scores) v->scores[i] = score;
    v->types[i] = type;
}

/* Token id from a JSON key (added_tokens_decoder) or value (added_tokens.json). */
static int parse_id_str(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || end == s || *end) return 0;
    *out = x;
    return 1;
}

static int spm_apply_added(slm_vocab *v, const char *dir, const cJSON *tcfg, slm_err *err) {
    cJSON *added = NULL;
    SLM_TRY(json_load(dir, "added_tokens.json", &added, err));
    int rc = SLM_OK;
    if (added) {
        if (!cJSON_IsObject(added)) rc = slm_errf(err, SLM_E_FORMAT, "added_tokens.json: not an object");
        for (const cJSON *it = rc ? NULL : added->child; it; it = it->next) {
            int64_t id;
            char *s;
            if (!jint(it, &id) || id < 0) {
                rc = slm_errf(err, SLM_E_FORMAT, "added_tokens.json: id of '%.100s' is not a non-negative integer", it->string);
                break;
            }
            if (id >= v->n_tokens) continue; /* "ignore token: id is out of range" */
            if ((rc = dup_str(&s, it->string, err))) break;
            set_token(v, (int32_t)id, s, -1000.0f, SLM_TOKEN_USER_DEFINED);
        }
        cJSON_Delete(added);
        if (rc) return rc;
    }
    const cJSON *dec = jget(tcfg, "added_tokens_decoder");
    if (!dec || cJSON_IsNull(dec)) return SLM_OK;
    if (!cJSON_IsObject(dec)) return slm_errf(err, SLM_E_FORMAT, "tokenizer_config.json: added_tokens_decoder is not an object");
    for (const cJSON *it = dec->child; it; it = it->next) {
        int64_t id;
        const char *content = jstr(it, "content");
        char *s;
        if (!parse_id_str(it->string, &id) || id < 0)
            return slm_errf(err, SLM_E_FORMAT, "tokenizer_config.json: added_tokens_decoder key '%.100s' is not a token id", it->string);
        if (!content)
            return slm_errf(err, SLM_E_FORMAT, "tokenizer_config.json: added_tokens_decoder['%s'].content is not a string", it->string);
        if (id >= v->n_tokens) continue;
        int32_t type;
        if (jtruthy(jget(it, "special")) || looks_special(content)) {
            type = SLM_TOKEN_CONTROL;
            SLM_TRY(dup_str(&s, content, err));
        } else {
            type = SLM_TOKEN_USER_DEFINED; /* "pre-normalize user-defined spaces" */
            SLM_TRY(dup_replace(&s, content, U2581, " ", err));
        }
        set_token(v, (int32_t)id, s, -1000.0f, type);
    }
    return SLM_OK;
}

/* tokenizer.model's bytes (size of them at data) -> v; dir (or NULL) holds the other files. */
static int spm_import_bytes(slm_vocab *v, const uint8_t *data, size_t size, const char *dir, const cJSON *tcfg, const cJSON *cfg,
                            slm_err *err) {
    spm_model sp;
    memset(&sp, 0, sizeof sp);
    int rc = spm_parse(data, size, &sp, err);
    int64_t n = 0;
    if (!rc) rc = config_vocab_size(cfg, sp.n, &n, err);
    if (!rc) rc = vocab_alloc(v, (int32_t)n, 1, err);
    for (int32_t i = 0; !rc && i < v->n_tokens; i++) {
        char pad[32];
        if (i < sp.n) {
            /* IsUnknown / IsControl / IsUnused / IsByte, everything else NORMAL (user-defined
               pieces of the model included, as the converter does) */
            int32_t t = sp.type[i];
            v->tokens[i] = sp.piece[i];
            sp.piece[i] = NULL;
            v->scores[i] = sp.score[i];
            v->types[i] = (t == SLM_TOKEN_UNKNOWN || t == SLM_TOKEN_CONTROL || t == SLM_TOKEN_UNUSED || t == SLM_TOKEN_BYTE) ? t : SLM_TOKEN_NORMAL;
        } else {
            snprintf(pad, sizeof pad, "[PAD%d]", i);
            rc = dup_str(&v->tokens[i], pad, err);
            v->scores[i] = -10000.0f;
            v->types[i] = SLM_TOKEN_UNUSED;
        }
    }
    spm_model_free(&sp);
    if (!rc) rc = spm_apply_added(v, dir, tcfg, err);
    if (rc) return rc;
    v->kind = SLM_VOCAB_SPM;
    snprintf(v->pre, sizeof v->pre, "default");
    return SLM_OK;
}

static int spm_import(slm_vocab *v, const char *dir, const cJSON *tcfg, const cJSON *cfg, slm_err *err) {
    slm_map m = {0};
    int present;
    SLM_TRY(read_file(dir, "tokenizer.model", 1, &m, &present, err));
    int rc = spm_import_bytes(v, m.data, m.size, dir, tcfg, cfg, err);
    slm_map_close(&m);
    return rc;
}

/* ---- tokenizer.json (get_vocab_base + get_vocab_base_pre) -------------------------------- */

/* Split regexes as they appear in tokenizer.json, and the tokenizer.ggml.pre llama.cpp's
   converter assigns to them (from llama-vocab.cpp's "original regex from tokenizer.json"). */
static const struct {
    const char *regex;
    const char *pre;
} k_split_pre[] = {
    {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     "llama-bpe"},
    {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     "qwen2"},
    {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     "qwen35"},
    {"[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     "tekken"},
    {"[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     "gpt-4o"},
};

static int jbool_is(const cJSON *obj, const char *key, int dflt) {
    const cJSON *b = jget(obj, key);
    return cJSON_IsBool(b) ? cJSON_IsTrue(b) : dflt;
}

static int type_is(const cJSON *obj, const char *type) {
    const char *t = jstr(obj, "type");
    return t && strcmp(t, type) == 0;
}

/* ByteLevel with add_prefix_space false (HF's default is true) and the given use_regex. */
static int is_byte_level(const cJSON *p, int use_regex) {
    return type_is(p, "ByteLevel") && !jbool_is(p, "add_prefix_space", 1) && jbool_is(p, "use_regex", 1) == use_regex;
}

/* Human-readable structure for messages: Sequence[Split(regex '...'), ByteLevel]. */
static void describe(const cJSON *p, char *out, size_t cap) {
    size_t n = strlen(out);
    if (n + 1 >= cap) return;
    const char *t = jstr(p, "type");
    if (!p || cJSON_IsNull(p)) {
        snprintf(out + n, cap - n, "null");
    } else if (!t) {
        snprintf(out + n, cap - n, "?");
    } else if (strcmp(t, "Sequence") == 0) {
        const cJSON *list = jget(p, "pretokenizers");
        if (!list) list = jget(p, "normalizers");
        snprintf(out + n, cap - n, "Sequence[");
        for (const cJSON *c = cJSON_IsArray(list) ? list->child : NULL; c; c = c->next) {
            describe(c, out, cap);
            if (c->next) {
                n = strlen(out);
                snprintf(out + n, cap - n, ", ");
            }
        }
        n = strlen(out);
        snprintf(out + n, cap - n, "]");
    } else if (strcmp(t, "Split") == 0) {
        const cJSON *pat = jget(p, "pattern");
        const char *re = jstr(pat, "Regex"), *str = jstr(pat, "String");
        const char *beh = jstr(p, "behavior");
        int other = beh && strcmp(beh, "Isolated") != 0;
        snprintf(out + n, cap - n, "Split(%s '%.160s'%s%s%s)", re ? "regex" : "string", re ? re : str ? str : "?",
                 other ? ", behavior " : "", other ? beh : "", jbool_is(p, "invert", 0) ? ", invert" : "");
    } else if (strcmp(t, "ByteLevel") == 0) {
        int apfx = jbool_is(p, "add_prefix_space", 1), rx = jbool_is(p, "use_regex", 1);
        snprintf(out + n, cap - n, "ByteLevel%s%s", apfx ? "(add_prefix_space)" : "", rx ? "(use_regex)" : "");
    } else {
        snprintf(out + n, cap - n, "%s", t);
    }
}

/* Chooses tokenizer.ggml.pre from the normalizer and pre_tokenizer of tokenizer.json. */
static int detect_pre(const cJSON *tok, char *pre, size_t cap, slm_err *err) {
    const cJSON *norm = jget(tok, "normalizer");
    const cJSON *pt = jget(tok, "pre_tokenizer");
    const char *name = NULL;
    /* llama.cpp applies no normalizer for these; NFC (Qwen2, GPT-NeoX) leaves the converter's
       hash of its check text unchanged, so it is accepted */
    int norm_ok = !norm || cJSON_IsNull(norm) || (type_is(norm, "NFC") && !jget(norm, "normalizers"));
    if (is_byte_level(pt, 1)) {
        name = "gpt-2";
    } else if (type_is(pt, "Sequence") && cJSON_GetArraySize(jget(pt, "pretokenizers")) == 2) {
        const cJSON *a = cJSON_GetArrayItem(jget(pt, "pretokenizers"), 0);
        const cJSON *b = cJSON_GetArrayItem(jget(pt, "pretokenizers"), 1);
        const char *re = jstr(jget(a, "pattern"), "Regex");
        const char *beh = jstr(a, "behavior");
        if (type_is(a, "Split") && re && beh && strcmp(beh, "Isolated") == 0 && !jbool_is(a, "invert", 0) && is_byte_level(b, 0)) {
            for (size_t i = 0; i < SLM_ARRAY_LEN(k_split_pre); i++)
                if (strcmp(re, k_split_pre[i].regex) == 0) name = k_split_pre[i].pre;
        } else if (type_is(a, "Digits") && jbool_is(a, "individual_digits", 0) && is_byte_level(b, 1)) {
            name = "starcoder"; /* \p{N} then GPT-2's regex */
        }
    }
    if (name && norm_ok) {
        snprintf(pre, cap, "%s", name);
        return SLM_OK;
    }
    char desc[400] = "";
    describe(pt, desc, sizeof desc);
    if (name) {
        char nd[120] = "";
        describe(norm, nd, sizeof nd);
        return slm_errf(err, SLM_E_UNSUPPORTED, "tokenizer.json: unknown normalizer %s with pre-tokenizer %s: cannot choose tokenizer.ggml.pre", nd, desc);
    }
    return slm_errf(err, SLM_E_UNSUPPORTED, "tokenizer.json: unknown pre-tokenizer %s: cannot choose tokenizer.ggml.pre", desc);
}

/* Appends one merge "a b" (taking ownership of s). */
static int push_merge(slm_vocab *v, size_t *cap, char *s, slm_err *err) {
    if ((size_t)v->n_merges == *cap) {
        size_t nc = *cap ? *cap * 2 : 1024;
        if (v->n_merges >= MAX_VOCAB) {
            slm_free(s);
            return slm_errf(err, SLM_E_FORMAT, "more than %d merges", MAX_VOCAB);
        }
        int rc = slm_realloc((void **)&v->merges, nc * sizeof(char *), err, "merges");
        if (rc) {
            slm_free(s);
            return rc;
        }
        *cap = nc;
    }
    v->merges[v->n_merges++] = s;
    return SLM_OK;
}

/* str.split()'s separators within a line (ASCII only) */
static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

/* model.merges as "a b" strings or [a, b] pairs (spaces inside a pair encoded as U+0120, as
   SpecialVocab does); else merges.txt. */
static int load_merges(slm_vocab *v, const char *dir, const cJSON *model, slm_err *err) {
    const cJSON *merges = jget(model, "merges");
    size_t cap = 0;
    if (merges && !cJSON_IsNull(merges) && !cJSON_IsArray(merges))
        return slm_errf(err, SLM_E_FORMAT, "tokenizer.json: model.merges is not an array");
    int i = 0;
    for (const cJSON *m = merges ? merges->child : NULL; m; m = m->next, i++) {
        char *s;
        if (cJSON_IsString(m)) {
            SLM_TRY(dup_str(&s, m->valuestring, err));
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) && cJSON_IsString(m->child->next)) {
            char *a, *b;
            SLM_TRY(dup_replace(&a, m->child->valuestring, " ", "\xc4\xa0", err));
            int rc = dup_replace(&b, m->child->next->valuestring, " ", "\xc4\xa0", err);
            if (!rc) rc = slm_alloc((void **)&s, strlen(a) + strlen(b) + 2, err, "merge");
            if (!rc) sprintf(s, "%s %s", a, b);
            slm_free(a);
            slm_free(b);
            if (rc) return rc;
        } else {
            return slm_errf(err, SLM_E_FORMAT, "tokenizer.json: model.merges[%d] is neither a string nor a pair of strings", i);
        }
        SLM_TRY(push_merge(v, &cap, s, err));
    }
    if (v->n_merges > 0) return SLM_OK;

    slm_map mf = {0};
    int present;
    SLM_TRY(read_file(dir, "merges.txt", 0, &mf, &present, err));
    if (!present) return slm_errf(err, SLM_E_FORMAT, "tokenizer.json: no merges (and no merges.txt)");
    const char *p = (const char *)mf.data, *end = p + mf.size;
    int rc = SLM_OK, line_no = 0;
    while (p < end && !rc) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *a = p, *ae, *b, *be, *x;
        p = nl ? nl + 1 : end;
        while (a < le && is_blank(*a)) a++;
        if (a == le) continue;
        if (line_no++ == 0 && *a == '#') continue;
        for (ae = a; ae < le && !is_blank(*ae); ae++) {}
        for (b = ae; b < le && is_blank(*b); b++) {}
        for (be = b; be < le && !is_blank(*be); be++) {}
        for (x = be; x < le && is_blank(*x); x++) {}
        if (b == le || x != le) continue; /* not exactly two fields: SpecialVocab skips it */
        if (memchr(a, 0, (size_t)(be - a))) {
            rc = slm_errf(err, SLM_E_FORMAT, "merges.txt: line %d contains a NUL byte", line_no);
            break;
        }
        char *s;
        rc = slm_alloc((void **)&s, (size_t)(ae - a) + (size_t)(be - b) + 2, err, "merge");
        if (rc) break;
        memcpy(s, a, (size_t)(ae - a));
        s[ae - a] = ' ';
        memcpy(s + (ae - a) + 1, b, (size_t)(be - b));
        s[(ae - a) + 1 + (be - b)] = 0;
        rc = push_merge(v, &cap, s, err);
    }
    slm_map_close(&mf);
    if (!rc && v->n_merges == 0) rc = slm_errf(err, SLM_E_FORMAT, "merges.txt: no merges");
    return rc;
}

typedef struct added_tok {
    int64_t id;
    const char *content;
    int special;
} added_tok;

static int bpe_import(slm_vocab *v, const char *dir, const cJSON *tok, const cJSON *cfg, slm_err *err) {
    const cJSON *model = jget(tok, "model");
    if (!cJSON_IsObject(model)) return slm_errf(err, SLM_E_FORMAT, "tokenizer.json: model is missing or not an object");
    const char *mtype = jstr(model, "type");
    if (!mtype || strcmp(mtype, "BPE") != 0)
        return slm_errf(err, SLM_E_UNSUPPORTED, "tokenizer.json: model.type '%.40s' is not supported (byte-level BPE only)", mtype ? mtype : "?");
    const cJSON *vocab = jget(model, "vocab");
    if (!cJSON_IsObject(vocab)) return slm_errf(err, SLM_E_FORMAT, "tokenizer.json: model.vocab is not an object");
    if (jbool_is(model, "byte_fallback", 0))
        return slm_errf(err, SLM_E_UNSUPPORTED, "tokenizer.json: BPE with byte_fallback and a decoder other than Sequence is not supported; a tokenizer.model is needed");
    SLM_TRY(detect_pre(tok, v->pre, sizeof v->pre, err));

    /* added_tokens: id, content, special */
    const cJSON *added = jget(tok, "added_tokens");
    if (added && !cJSON_IsNull(added) && !cJSON_IsArray(added)) return slm_errf(err, SLM_E_FORMAT, "tokenizer.json: added_tokens is not an array");
    int n_added = added ? cJSON_GetArraySize(added) : 0, n_vocab_json = cJSON_GetArraySize(vocab);
    added_tok *at = NULL;
    const char **by_id = NULL;
    smap strs = {0}, added_by_str = {0};
    int rc = slm_calloc((void **)&at, (size_t)n_added + 1, sizeof(added_tok), err, "added tokens");
    int i = 0;
    for (const cJSON *a = (rc || !added) ? NULL : added->child; a; a = a->next, i++) {
        at[i].content = jstr(a, "content");
        at[i].special = jtruthy(jget(a, "special"));
        if (!at[i].content || !jint(jget(a, "id"), &at[i].id) || at[i].id < 0 || at[i].id >= MAX_VOCAB) {
            rc = slm_errf(err, SLM_E_FORMAT, "tokenizer.json: added_tokens[%d] needs a string content and an id in [0, %d)", i, MAX_VOCAB);
            break;
        }
    }
    /* tokenizer.vocab: model.vocab plus the added tokens; distinct strings, max id */
    int64_t max_id = -1, n_distinct = 0;
    if (!rc) rc = smap_init(&strs, (size_t)n_vocab_json + (size_t)n_added, err);
    if (!rc) rc = smap_init(&added_by_str, (size_t)n_added, err);
    for (const cJSON *e = rc ? NULL : vocab->child; e; e = e->next) {
        int64_t id;
        if (!jint(e, &id) || id < 0 || id >= MAX_VOCAB) {
            rc = slm_errf(err, SLM_E_FORMAT, "tokenizer.json: model.vocab['%.100s'] is not a token id in [0, %d)", e->string, MAX_VOCAB);
            break;
        }
        n_distinct += !smap_put(&strs, e->string, (int32_t)id);
        max_id = SLM_MAX(max_id, id);
    }
    for (i = 0; !rc && i < n_added; i++) {
        n_distinct += !smap_put(&strs, at[i].content, (int32_t)at[i].id);
        smap_put(&added_by_str, at[i].content, i);
        max_id = SLM_MAX(max_id, at[i].id);
    }
    int64_t n = 0;
    if (!rc) rc = config_vocab_size(cfg, n_distinct, &n, err);
    if (!rc && max_id >= n)
        rc = slm_errf(err, SLM_E_FORMAT, "tokenizer.json: token id %lld is not below the vocab size %lld", (long long)max_id, (long long)n);
    if (!rc && n == 0) rc = slm_errf(err, SLM_E_FORMAT, "tokenizer.json: empty vocab");
    /* id -> string: the model vocab, then added tokens on top */
    if (!rc) rc = slm_calloc((void **)&by_id, (size_t)n, sizeof(char *), err, "reverse vocab");
    for (const cJSON *e = rc ? NULL : vocab->child; e; e = e->next) by_id[(int64_t)e->valuedouble] = e->string;
    for (i = 0; !rc && i < n_added; i++) by_id[at[i].id] = at[i].content;
    if (!rc) rc = vocab_alloc(v, (int32_t)n, 0, err);
    for (int64_t id = 0; !rc && id < n; id++) {
        const char *s = by_id[id];
        const int32_t *ai = s ? smap_get(&added_by_str, s) : NULL;
        if (!s) {
            char pad[32];
            snprintf(pad, sizeof pad, "[PAD%lld]", (long long)id);
            rc = dup_str(&v->tokens[id], pad, err);
            v->types[id] = SLM_TOKEN_UNUSED;
        } else if (ai && (at[*ai].special || looks_special(s))) {
            rc = dup_str(&v->tokens[id], s, err);
            v->types[id] = SLM_TOKEN_CONTROL;
        } else if (ai) {
            rc = dup_replace(&v->tokens[id], s, U2581, " ", err);
            v->types[id] = SLM_TOKEN_USER_DEFINED;
        } else {
            rc = dup_str(&v->tokens[id], s, err);
            v->types[id] = SLM_TOKEN_NORMAL;
        }
    }
    slm_free(by_id);
    slm_free(at);
    smap_free(&strs);
    smap_free(&added_by_str);
    if (!rc) rc = load_merges(v, dir, model, err);
    if (!rc) v->kind = SLM_VOCAB_BPE;
    return rc;
}

/* ---- tokenizer.json with byte_fallback (LlamaHfVocab) ------------------------------------ */

/* What llama.cpp's LlamaModel.set_vocab does when tokenizer.model is missing: gguf-py's
   LlamaHfVocab over transformers' LlamaTokenizerFast (v4 semantics). Every token scores
   -1000; <0xHH> is BYTE, a special token's id CONTROL, the rest NORMAL; tokens added beyond
   model.vocab follow in id order, CONTROL when special, else USER_DEFINED (text kept as is).
   Cases where the result would hang on details of transformers/tokenizers that differ between
   versions (ids that do not line up, special tokens that are in no vocabulary) are refused. */

/* Python's re.fullmatch(br"<0x[0-9A-Fa-f]{2}>") */
static int is_byte_token(const char *s) {
    return strlen(s) == 6 && starts_with(s, "<0x") && isxdigit((unsigned char)s[3]) && isxdigit((unsigned char)s[4]) && s[5] == '>';
}

/* A special token attribute (bos_token, ...): a string or {"content": ...}; NULL when unset,
   null, empty or not given. *given says whether the key was there at all. */
static const char *special_attr(const cJSON *obj, const char *key, int *given) {
    const cJSON *e = jget(obj, key);
    *given = e != NULL;
    const char *s = cJSON_IsString(e) ? e->valuestring : jstr(e, "content");
    return s && *s ? s : NULL;
}

/* transformers' all_special_tokens for the tokenizer AutoTokenizer picks: bos, eos, unk, sep,
   pad, cls, mask from tokenizer_config.json (special_tokens_map.json's values override them
   when tokenizer_config.json has no added_tokens_decoder; LlamaTokenizerFast's defaults <s>,
   </s>, <unk> fill keys given nowhere), then additional_special_tokens. */
#define MAX_SPECIALS 1024
static int hf_special_tokens(const char *dir, const cJSON *tcfg, const cJSON *cfg, const char **out, int *n_out, cJSON **stmap,
                             slm_err *err) {
    static const char *const keys[] = {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"};
    static const char *const llama_default[] = {"<s>", "</s>", "<unk>", NULL, NULL, NULL, NULL};
    const char *cls = jstr(tcfg, "tokenizer_class"), *mtype = jstr(cfg, "model_type");
    int llama;
    if (cls) {
        llama = !strcmp(cls, "LlamaTokenizer") || !strcmp(cls, "LlamaTokenizerFast");
        if (!llama && strcmp(cls, "PreTrainedTokenizerFast"))
            return slm_errf(err, SLM_E_UNSUPPORTED,
                            "tokenizer_config.json: tokenizer_class '%.60s' with a byte_fallback tokenizer.json is not supported "
                            "(LlamaTokenizer, LlamaTokenizerFast, PreTrainedTokenizerFast)", cls);
    } else if (mtype && (!strcmp(mtype, "llama") || !strcmp(mtype, "mistral"))) {
        llama = 1;
    } else if (!tcfg && !cfg) {
        llama = 1; /* a lone tokenizer.json (tests, fuzzing): as LlamaModel's folder would read it */
    } else {
        return slm_errf(err, SLM_E_UNSUPPORTED, "tokenizer_config.json: no tokenizer_class (and config.json's model_type is not llama or mistral)");
    }
    if (!jget(tcfg, "added_tokens_decoder")) SLM_TRY(json_load(dir, "special_tokens_map.json", stmap, err));
    int n = 0;
    for (size_t k = 0; k < SLM_ARRAY_LEN(keys); k++) {
        int given, given_map;
        const char *s = special_attr(tcfg, keys[k], &given);
        const char *m = special_attr(*stmap, keys[k], &given_map);
        if (given_map) s = m, given = 1;
        if (!given && llama) s = llama_default[k];
        if (s) out[n++] = s;
    }
    const cJSON *lists[2] = {jget(tcfg, "additional_special_tokens"), jget(*stmap, "additional_special_tokens")};
    for (int l = 0; l < 2; l++) {
        if (!lists[l] || cJSON_IsNull(lists[l])) continue;
        if (!cJSON_IsArray(lists[l]))
            return slm_errf(err, SLM_E_FORMAT, "%s: additional_special_tokens is not a list", l ? "special_tokens_map.json" : "tokenizer_config.json");
        for (const cJSON *e = lists[l]->child; e; e = e->next) {
            const char *s = cJSON_IsString(e) ? e->valuestring : jstr(e, "content");
            if (!s || !*s) continue;
            if (n == MAX_SPECIALS) return slm_errf(err, SLM_E_FORMAT, "tokenizer_config.json: more than %d special tokens", MAX_SPECIALS);
            out[n++] = s;
        }
    }
    *n_out = n;
    return SLM_OK;
}

static int llama_hf_import(slm_vocab *v, const char *dir, const cJSON *tok, const cJSON *tcfg, const cJSON *cfg, slm_err *err) {
    const cJSON *vocab = jget(jget(tok, "model"), "vocab");
    if (!cJSON_IsObject(vocab)) return slm_errf(err, SLM_E_FORMAT, "tokenizer.json: model.vocab is not an object");
    int n_base = cJSON_GetArraySize(vocab);
    if (n_base <= 0 || n_base >= MAX_VOCAB) return slm_errf(err, SLM_E_FORMAT, "tokenizer.json: model.vocab has %d entries", n_base);
    const cJSON *added = jget(tok, "added_tokens");
    if (added && !cJSON_IsNull(added) && !cJSON_IsArray(added)) return slm_errf(err, SLM_E_FORMAT, "tokenizer.json: added_tokens is not an array");
    int n_added = cJSON_IsArray(added) ? cJSON_GetArraySize(added) : 0;
    if (n_added >= MAX_VOCAB - n_base) return slm_errf(err, SLM_E_FORMAT, "tokenizer.json: too many added tokens");

    const char **by_id = NULL, *specials[MAX_SPECIALS];
    int n_specials = 0, n = n_base;
    smap strs = {0};
    cJSON *stmap = NULL;
    int rc = slm_calloc((void **)&by_id, (size_t)n_base + (size_t)n_added, sizeof(char *), err, "reverse vocab");
    if (!rc) rc = smap_init(&strs, (size_t)n_base + (size_t)n_added, err);
    /* model.vocab: every id in [0, n_base) exactly once (LlamaHfVocab walks range(vocab_size)) */
    for (const cJSON *e = rc ? NULL : vocab->child; e; e = e->next) {
        int64_t id;
        if (!jint(e, &id) || id < 0 || id >= n_base || by_id[id]) {
            rc = slm_errf(err, SLM_E_FORMAT, "tokenizer.json: model.vocab['%.100s'] is not a distinct id below the vocab size %d", e->string, n_base);
            break;
        }
        by_id[id] = e->string;
        smap_put(&strs, e->string, (int32_t)id);
    }
    /* added tokens: one already in model.vocab keeps its id; new ones take n_base, n_base+1, ...
       in file order (what tokenizers assigns when it loads them) */
    int i = 0;
    for (const cJSON *a = (rc || !n_added) ? NULL : added->child; a; a = a->next, i++) {
        const char *content = jstr(a, "content");
        int64_t id;
        if (!content || !*content || !jint(jget(a, "id"), &id)) {
            rc = slm_errf(err, SLM_E_FORMAT, "tokenizer.json: added_tokens[%d] needs a non-empty string content and an integer id", i);
            break;
        }
        const int32_t *have = smap_get(&strs, content);
        if (have && *have < n_base && *have == id) continue;
        if (have || id != n) {
            rc = slm_errf(err, SLM_E_UNSUPPORTED, "tokenizer.json: added_tokens[%d] '%.100s' has id %lld, expected %d%s", i, content, (long long)id,
                          have ? *have : n, have ? " (its id elsewhere in the file)" : " (the next id after the vocab and the tokens added before it)");
            break;
        }
        by_id[n] = content;
        smap_put(&strs, content, n++);
    }
    if (!rc) rc = hf_special_tokens(dir, tcfg, cfg, specials, &n_specials, &stmap, err);
    for (int k = 0; !rc && k < n_specials; k++)
        if (!smap_get(&strs, specials[k]))
            rc = slm_errf(err, SLM_E_UNSUPPORTED, "tokenizer_config.json: special token '%.100s' is neither in model.vocab nor in added_tokens", specials[k]);
    if (!rc) rc = vocab_alloc(v, n, 1, err);
    for (int32_t id = 0; !rc && id < n; id++) {
        rc = dup_str(&v->tokens[id], by_id[id], err);
        v->scores[id] = -1000.0f;
        v->types[id] = id >= n_base ? SLM_TOKEN_USER_DEFINED : is_byte_token(by_id[id]) ? SLM_TOKEN_BYTE : SLM_TOKEN_NORMAL;
    }
    for (int k = 0; !rc && k < n_specials; k++) { /* a byte token stays BYTE */
        int32_t id = *smap_get(&strs, specials[k]);
        if (v->types[id] != SLM_TOKEN_BYTE) v->types[id] = SLM_TOKEN_CONTROL;
    }
    slm_free(by_id);
    smap_free(&strs);
    cJSON_Delete(stmap);
    if (rc) return rc;
    v->kind = SLM_VOCAB_SPM;
    snprintf(v->pre, sizeof v->pre, "default");
    return SLM_OK;
}

/* LlamaHfVocab's test: model.type BPE with a truthy byte_fallback and a Sequence decoder. */
static int is_llama_hf(const cJSON *tok) {
    const cJSON *model = jget(tok, "model");
    return type_is(model, "BPE") && jtruthy(jget(model, "byte_fallback")) && type_is(jget(tok, "decoder"), "Sequence");
}

/* config.json's architectures[0] is one llama.cpp's LlamaModel converts (its set_vocab falls
   back to LlamaHfVocab); no config.json counts as Llama. */
static int llama_arch(const cJSON *cfg) {
    if (!cfg) return 1;
    const cJSON *a = jget(cfg, "architectures");
    const char *s = cJSON_IsArray(a) && cJSON_IsString(a->child) ? a->child->valuestring : NULL;
    return s && (!strcmp(s, "LlamaForCausalLM") || !strcmp(s, "MistralForCausalLM"));
}

/* ---- the folder ------------------------------------------------------------------------ */

static int hf_dir(slm_vocab *v, const char *dir, cJSON **cfg, cJSON **tcfg, cJSON **tok, slm_err *err) {
    char path[4096];
    SLM_TRY(json_load(dir, "config.json", cfg, err));
    SLM_TRY(json_load(dir, "tokenizer_config.json", tcfg, err));
    if (*tcfg && !cJSON_IsObject(*tcfg)) return slm_errf(err, SLM_E_FORMAT, "tokenizer_config.json: not an object");
    if (*cfg && !cJSON_IsObject(*cfg)) return slm_errf(err, SLM_E_FORMAT, "config.json: not an object");
    SLM_TRY(json_load(dir, "tokenizer.json", tok, err));
    if (*tok && !cJSON_IsObject(*tok)) return slm_errf(err, SLM_E_FORMAT, "tokenizer.json: not an object");

    SLM_TRY(join_path(path, sizeof path, dir, "tokenizer.model", err));
    if (exists(path)) {
        SLM_TRY(spm_import(v, dir, *tcfg, *cfg, err));
        SLM_TRY(special_vocab_load(v, *tok, *tcfg, *cfg, v->n_tokens, err));
    } else if (*tok && is_llama_hf(*tok)) {
        if (!llama_arch(*cfg)) {
            const cJSON *a = jget(*cfg, "architectures");
            const char *arch = cJSON_IsArray(a) && cJSON_IsString(a->child) ? a->child->valuestring : "this architecture";
            return slm_errf(err, SLM_E_UNSUPPORTED,
                            "tokenizer.json: BPE with byte_fallback (SentencePiece-style) needs a tokenizer.model for %.60s "
                            "(slm reads it from tokenizer.json, as llama.cpp's LlamaHfVocab, only for LlamaForCausalLM and MistralForCausalLM)",
                            arch);
        }
        SLM_TRY(llama_hf_import(v, dir, *tok, *tcfg, *cfg, err));
        SLM_TRY(special_vocab_load(v, *tok, *tcfg, *cfg, v->n_tokens, err));
    } else if (*tok) {
        SLM_TRY(bpe_import(v, dir, *tok, *cfg, err));
        SLM_TRY(special_vocab_load(v, *tok, *tcfg, *cfg, -1, err));
    } else {
        return slm_errf(err, SLM_E_UNSUPPORTED, "%s: no tokenizer.model or tokenizer.json", dir);
    }
    /* LlamaModel.set_vocab: add_prefix_space from tokenizer_config.json, when given */
    const cJSON *apfx = jget(*tcfg, "add_prefix_space");
    if (cJSON_IsBool(apfx)) v->add_space_prefix = cJSON_IsTrue(apfx);
    return load_chat_template(v, dir, *tcfg, err);
}

int slm_vocab_from_hf_dir(slm_vocab *v, const char *dir, slm_err *err) {
    cJSON *cfg = NULL, *tcfg = NULL, *tok = NULL;
    vocab_init(v);
    int rc = hf_dir(v, dir, &cfg, &tcfg, &tok, err);
    cJSON_Delete(cfg);
    cJSON_Delete(tcfg);
    cJSON_Delete(tok);
    if (rc) slm_vocab_free(v);
    return rc;
}

int slm_vocab_from_tokenizer_json(slm_vocab *v, const char *json, size_t len, slm_err *err) {
    cJSON *tok = NULL;
    vocab_init(v);
    int rc = json_parse_bytes("tokenizer.json", json, len, &tok, err);
    if (!rc && !cJSON_IsObject(tok)) rc = slm_errf(err, SLM_E_FORMAT, "tokenizer.json: not an object");
    int llama_hf = !rc && is_llama_hf(tok);
    if (!rc) rc = llama_hf ? llama_hf_import(v, NULL, tok, NULL, NULL, err) : bpe_import(v, NULL, tok, NULL, err);
    if (!rc) rc = special_vocab_load(v, tok, NULL, NULL, llama_hf ? v->n_tokens : -1, err);
    cJSON_Delete(tok);
    if (rc) slm_vocab_free(v);
    return rc;
}

int slm_vocab_from_tokenizer_model(slm_vocab *v, const uint8_t *data, size_t size, slm_err *err) {
    vocab_init(v);
    int rc = spm_import_bytes(v, data, size, NULL, NULL, NULL, err);
    if (!rc) rc = special_vocab_load(v, NULL, NULL, NULL, v->n_tokens, err);
    if (rc) slm_vocab_free(v);
    return rc;
}

/* ---- GGUF metadata --------------------------------------------------------------------- */

#define K_MODEL "tokenizer.ggml.model"
#define K_PRE "tokenizer.ggml.pre"
#define K_TOKENS "tokenizer.ggml.tokens"
#define K_SCORES "tokenizer.ggml.scores"
#define K_TYPES "tokenizer.ggml.token_type"
#define K_MERGES "tokenizer.ggml.merges"
#define K_BOS "tokenizer.ggml.bos_token_id"
#define K_EOS "tokenizer.ggml.eos_token_id"
#define K_UNK "tokenizer.ggml.unknown_token_id"
#define K_PAD "tokenizer.ggml.padding_token_id"
#define K_EOT "tokenizer.ggml.eot_token_id"
#define K_SEP "tokenizer.ggml.seperator_token_id" /* sic, gguf-py's spelling */
#define K_MASK "tokenizer.ggml.mask_token_id"
#define K_EOM "tokenizer.ggml.eom_token_id"
#define K_ADD_BOS "tokenizer.ggml.add_bos_token"
#define K_ADD_EOS "tokenizer.ggml.add_eos_token"
#define K_ADD_SEP "tokenizer.ggml.add_sep_token"
#define K_ADD_PREFIX "tokenizer.ggml.add_space_prefix"
#define K_CHAT "tokenizer.chat_template"

/* Copies a GGUF string array (no embedded NULs) into *out[n]. */
static int copy_str_arr(const slm_kvs *kv, const char *key, char ***out, int32_t *n_out, slm_err *err) {
    const void *data;
    uint64_t n;
    SLM_TRY(slm_kvs_get_arr(kv, key, SLM_GGUF_STRING, &data, &n, err));
    if (n > MAX_VOCAB) return slm_errf(err, SLM_E_FORMAT, "key '%s': %llu entries is too many", key, (unsigned long long)n);
    const slm_gguf_str *s = data;
    SLM_TRY(slm_calloc((void **)out, n ? n : 1, sizeof(char *), err, key));
    *n_out = (int32_t)n;
    for (uint64_t i = 0; i < n; i++) {
        if (strlen(s[i].s) != s[i].len) return slm_errf(err, SLM_E_FORMAT, "key '%s': entry %llu contains a NUL byte", key, (unsigned long long)i);
        SLM_TRY(dup_bytes(&(*out)[i], s[i].s, s[i].len, err));
    }
    return SLM_OK;
}

static int get_opt_id(const slm_kvs *kv, const char *key, int32_t *out, slm_err *err) {
    uint32_t x;
    *out = -1;
    if (!slm_kvs_get(kv, key)) return SLM_OK;
    SLM_TRY(slm_kvs_get_u32(kv, key, &x, err));
    if (x > INT32_MAX) return slm_errf(err, SLM_E_FORMAT, "key '%s': id %u out of range", key, x);
    *out = (int32_t)x;
    return SLM_OK;
}

static int get_opt_bool(const slm_kvs *kv, const char *key, int *out, slm_err *err) {
    *out = -1;
    if (!slm_kvs_get(kv, key)) return SLM_OK;
    return slm_kvs_get_bool(kv, key, out, err);
}

static int from_kvs(slm_vocab *v, const slm_kvs *kv, slm_err *err) {
    const char *model, *pre = "";
    SLM_TRY(slm_kvs_get_str(kv, K_MODEL, &model, err));
    if (strcmp(model, "llama") == 0) v->kind = SLM_VOCAB_SPM;
    else if (strcmp(model, "gpt2") == 0) v->kind = SLM_VOCAB_BPE;
    else return slm_errf(err, SLM_E_UNSUPPORTED, "key '%s': tokenizer '%.40s' is not supported (llama, gpt2)", K_MODEL, model);
    if (slm_kvs_get(kv, K_PRE)) SLM_TRY(slm_kvs_get_str(kv, K_PRE, &pre, err));
    if (strlen(pre) >= sizeof v->pre) return slm_errf(err, SLM_E_FORMAT, "key '%s': '%.40s...' is too long", K_PRE, pre);
    snprintf(v->pre, sizeof v->pre, "%s", pre);

    SLM_TRY(copy_str_arr(kv, K_TOKENS, &v->tokens, &v->n_tokens, err));
    int32_t n = v->n_tokens;
    if (n == 0) return slm_errf(err, SLM_E_FORMAT, "key '%s': empty", K_TOKENS);
    const slm_gguf_val *sv = slm_kvs_get(kv, K_SCORES);
    if (sv) {
        const void *data;
        uint64_t ns;
        int et = sv->type == SLM_GGUF_ARRAY && sv->v.arr.type == SLM_GGUF_INT32 ? SLM_GGUF_INT32 : SLM_GGUF_FLOAT32;
        SLM_TRY(slm_kvs_get_arr(kv, K_SCORES, et, &data, &ns, err));
        if (ns < (uint64_t)n) return slm_errf(err, SLM_E_FORMAT, "key '%s': %llu scores for %d tokens", K_SCORES, (unsigned long long)ns, n);
        SLM_TRY(slm_alloc((void **)&v->scores, (size_t)n * sizeof(float), err, "token scores"));
        for (int32_t i = 0; i < n; i++) {
            if (et == SLM_GGUF_INT32) v->scores[i] = (float)((const int32_t *)data)[i];
            else memcpy(&v->scores[i], (const float *)data + i, sizeof(float));
        }
    }
    SLM_TRY(slm_alloc((void **)&v->types, (size_t)n * sizeof(int32_t), err, "token types"));
    if (slm_kvs_get(kv, K_TYPES)) {
        const void *data;
        uint64_t nt;
        SLM_TRY(slm_kvs_get_arr(kv, K_TYPES, SLM_GGUF_INT32, &data, &nt, err));
        if (nt < (uint64_t)n) return slm_errf(err, SLM_E_FORMAT, "key '%s': %llu types for %d tokens", K_TYPES, (unsigned long long)nt, n);
        memcpy(v->types, data, (size_t)n * sizeof(int32_t));
    } else {
        for (int32_t i = 0; i < n; i++) v->types[i] = SLM_TOKEN_NORMAL;
    }
    if (v->kind == SLM_VOCAB_BPE) SLM_TRY(copy_str_arr(kv, K_MERGES, &v->merges, &v->n_merges, err));
    SLM_TRY(get_opt_id(kv, K_BOS, &v->bos_id, err));
    SLM_TRY(get_opt_id(kv, K_EOS, &v->eos_id, err));
    SLM_TRY(get_opt_id(kv, K_UNK, &v->unk_id, err));
    SLM_TRY(get_opt_id(kv, K_PAD, &v->pad_id, err));
    SLM_TRY(get_opt_id(kv, K_EOT, &v->eot_id, err));
    SLM_TRY(get_opt_id(kv, K_SEP, &v->sep_id, err));
    SLM_TRY(get_opt_id(kv, K_MASK, &v->mask_id, err));
    SLM_TRY(get_opt_id(kv, K_EOM, &v->eom_id, err));
    SLM_TRY(get_opt_bool(kv, K_ADD_BOS, &v->add_bos, err));
    SLM_TRY(get_opt_bool(kv, K_ADD_EOS, &v->add_eos, err));
    SLM_TRY(get_opt_bool(kv, K_ADD_SEP, &v->add_sep, err));
    int k = 0, n_ids = 0; /* the order the file has them in */
    static const struct {
        const char *key;
        char letter;
    } id_keys[] = {{K_BOS, 'b'}, {K_EOS, 'e'}, {K_UNK, 'u'}, {K_SEP, 's'}, {K_PAD, 'p'}, {K_MASK, 'm'}, {K_EOT, 't'}, {K_EOM, 'o'}};
    for (size_t i = 0; i < kv->n; i++) {
        const char *key = kv->items[i].key;
        if (!strcmp(key, K_ADD_BOS) && k < 3) v->add_order[k++] = 'b';
        else if (!strcmp(key, K_ADD_SEP) && k < 3) v->add_order[k++] = 's';
        else if (!strcmp(key, K_ADD_EOS) && k < 3) v->add_order[k++] = 'e';
        for (size_t j = 0; j < SLM_ARRAY_LEN(id_keys); j++)
            if (!strcmp(key, id_keys[j].key) && n_ids < 8) v->id_order[n_ids++] = id_keys[j].letter;
    }
    v->add_order[k] = 0;
    v->id_order[n_ids] = 0;
    SLM_TRY(get_opt_bool(kv, K_ADD_PREFIX, &v->add_space_prefix, err));
    if (slm_kvs_get(kv, K_CHAT)) {
        const char *ct;
        SLM_TRY(slm_kvs_get_str(kv, K_CHAT, &ct, err));
        v->chat_template = slm_strdup(ct, err);
        if (!v->chat_template) return err->code;
    }
    return SLM_OK;
}

int slm_vocab_from_kvs(slm_vocab *v, const slm_kvs *kv, slm_err *err) {
    vocab_init(v);
    int rc = from_kvs(v, kv, err);
    if (rc) slm_vocab_free(v);
    return rc;
}

int slm_vocab_to_kvs(const slm_vocab *v, slm_kvs *kv, slm_err *err) {
    if (v->kind != SLM_VOCAB_SPM && v->kind != SLM_VOCAB_BPE) return slm_errf(err, SLM_E_ARG, "vocab: no tokenizer kind");
    if (v->n_tokens <= 0 || !v->tokens || !v->types) return slm_errf(err, SLM_E_ARG, "vocab: no tokens");
    if (v->add_space_prefix >= 0) SLM_TRY(slm_kvs_set_bool(kv, K_ADD_PREFIX, v->add_space_prefix, err));
    SLM_TRY(slm_kvs_set_str(kv, K_MODEL, v->kind == SLM_VOCAB_SPM ? "llama" : "gpt2", err));
    if (v->pre[0]) SLM_TRY(slm_kvs_set_str(kv, K_PRE, v->pre, err));
    SLM_TRY(slm_kvs_set_arr_str(kv, K_TOKENS, (const char *const *)v->tokens, (uint64_t)v->n_tokens, err));
    if (v->kind == SLM_VOCAB_SPM && v->scores) SLM_TRY(slm_kvs_set_arr(kv, K_SCORES, SLM_GGUF_FLOAT32, v->scores, (uint64_t)v->n_tokens, err));
    SLM_TRY(slm_kvs_set_arr(kv, K_TYPES, SLM_GGUF_INT32, v->types, (uint64_t)v->n_tokens, err));
    if (v->kind == SLM_VOCAB_BPE) {
        if (v->n_merges <= 0 || !v->merges) return slm_errf(err, SLM_E_ARG, "vocab: BPE without merges");
        SLM_TRY(slm_kvs_set_arr_str(kv, K_MERGES, (const char *const *)v->merges, (uint64_t)v->n_merges, err));
    }
    const struct {
        char letter;
        const char *key;
        int32_t id;
    } ids[] = {{'b', K_BOS, v->bos_id}, {'e', K_EOS, v->eos_id}, {'u', K_UNK, v->unk_id}, {'s', K_SEP, v->sep_id},
               {'p', K_PAD, v->pad_id}, {'m', K_MASK, v->mask_id}, {'t', K_EOT, v->eot_id}, {'o', K_EOM, v->eom_id}};
    char order[16]; /* id_order, then any id it does not name, in the default order */
    size_t no = strnlen(v->id_order, sizeof v->id_order - 1);
    memcpy(order, v->id_order, no);
    for (const char *d = "beuspmto"; *d; d++)
        if (!memchr(order, *d, no)) order[no++] = *d;
    for (size_t k = 0; k < no; k++)
        for (size_t i = 0; i < SLM_ARRAY_LEN(ids); i++)
            if (ids[i].letter == order[k] && ids[i].id >= 0) SLM_TRY(slm_kvs_set_u32(kv, ids[i].key, (uint32_t)ids[i].id, err));
    char aorder[8]; /* add_order, then any flag it does not name */
    size_t na = strnlen(v->add_order, sizeof v->add_order - 1);
    memcpy(aorder, v->add_order, na);
    for (const char *d = "bse"; *d; d++)
        if (!memchr(aorder, *d, na)) aorder[na++] = *d;
    aorder[na] = 0;
    for (const char *o = aorder; *o; o++) {
        if (*o == 'b' && v->add_bos >= 0) SLM_TRY(slm_kvs_set_bool(kv, K_ADD_BOS, v->add_bos, err));
        if (*o == 's' && v->add_sep >= 0) SLM_TRY(slm_kvs_set_bool(kv, K_ADD_SEP, v->add_sep, err));
        if (*o == 'e' && v->add_eos >= 0) SLM_TRY(slm_kvs_set_bool(kv, K_ADD_EOS, v->add_eos, err));
    }
    if (v->chat_template) SLM_TRY(slm_kvs_set_str(kv, K_CHAT, v->chat_template, err));
    return SLM_OK;
}
