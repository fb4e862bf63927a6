/* test_tokenizer.c - vocab import (HF folders, GGUF keys) and llama.cpp-exact tokenization.
 *
 * Owns: checks of formats/tok_import.c and model/tokenizer.c against llama.cpp's own files:
 * the vocab-only GGUFs and their test-tokenizer-0 cases (fixtures/vocab), the GPT-2
 * tokenizer.json, tok512 (stories260K) on the whole held-out text, run.c's greedy text, and
 * malformed inputs written at test time. Every expected number comes from a fixture or from
 * llama.cpp v0.5.0 (libllama) itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/slm.h"
#include "formats/gguf.h"
#include "formats/model_src.h"
#include "model/tok_chkhsh.h"
#include "formats/tok_import.h"
#include "model/tokenizer.h"
#include "model/unicode.h"

/* ---- helpers ----------------------------------------------------------------------------- */

static void check_ok(int rc, const slm_err *err, const char *what) {
    if (rc) fail_msg("%s: error %d: %s", what, rc, err->msg);
}

static void vocab_from_gguf(slm_vocab *v, const char *rel) {
    slm_gguf g;
    slm_err err = {0};
    check_ok(slm_gguf_open(&g, fixture_path(rel), &err), &err, rel);
    check_ok(slm_vocab_from_kvs(v, &g.kv, &err), &err, rel);
    slm_gguf_close(&g);
}

static void vocab_from_dir(slm_vocab *v, const char *rel) {
    slm_err err = {0};
    check_ok(slm_vocab_from_hf_dir(v, fixture_path(rel), &err), &err, rel);
}

static void expect_vocab_equal(const slm_vocab *a, const slm_vocab *b, int compare_scores) {
    assert_int_equal(a->kind, b->kind);
    assert_string_equal(a->pre, b->pre);
    assert_int_equal(a->n_tokens, b->n_tokens);
    for (int32_t i = 0; i < a->n_tokens; i++) {
        if (strcmp(a->tokens[i], b->tokens[i]) != 0) fail_msg("token %d: '%s' vs '%s'", i, a->tokens[i], b->tokens[i]);
        if (a->types[i] != b->types[i]) fail_msg("token %d ('%s'): type %d vs %d", i, a->tokens[i], a->types[i], b->types[i]);
        if (compare_scores && memcmp(&a->scores[i], &b->scores[i], sizeof(float)) != 0)
            fail_msg("token %d ('%s'): score %g vs %g", i, a->tokens[i], a->scores[i], b->scores[i]);
    }
    assert_int_equal(a->n_merges, b->n_merges);
    for (int32_t i = 0; i < a->n_merges; i++)
        if (strcmp(a->merges[i], b->merges[i]) != 0) fail_msg("merge %d: '%s' vs '%s'", i, a->merges[i], b->merges[i]);
}

static void tokenize_ok(const slm_tokenizer *t, const char *s, size_t n, int add_special, int32_t **ids, size_t *n_ids) {
    slm_err err = {0};
    check_ok(slm_tokenize(t, s, n, add_special, ids, n_ids, &err), &err, "tokenize");
}

static void format_ids(char *out, size_t cap, const int32_t *ids, size_t n) {
    size_t k = 0;
    out[0] = 0;
    for (size_t i = 0; i < n && k + 16 < cap; i++) k += (size_t)snprintf(out + k, cap - k, " %d", ids[i]);
}

/* ---- import ------------------------------------------------------------------------------ */

/* tokenizer.json (GPT-2) imported like convert_hf_to_gguf.py equals llama.cpp's own GGUF */
static void test_tok_import_gpt2_matches_gguf(void **state) {
    (void)state;
    slm_vocab hf = {0}, gg = {0};
    vocab_from_dir(&hf, "tokenizers/gpt2");
    vocab_from_gguf(&gg, "vocab/ggml-vocab-gpt-2.gguf");
    expect_vocab_equal(&hf, &gg, 0);
    assert_string_equal(hf.pre, "gpt-2");
    assert_int_equal(hf.n_tokens, 50257);
    assert_int_equal(hf.n_merges, 50000);
    assert_int_equal(hf.types[50256], SLM_TOKEN_CONTROL);
    assert_int_equal(hf.bos_id, gg.bos_id);
    assert_int_equal(hf.eos_id, gg.eos_id);
    assert_int_equal(hf.bos_id, 50256);
    /* SpecialVocab also resolves tokenizer_config's unk_token; the fixture GGUF predates that */
    assert_int_equal(hf.unk_id, 50256);
    assert_int_equal(hf.add_bos, -1); /* no add_bos_token, no TemplateProcessing: key not written */
    assert_int_equal(hf.add_space_prefix, 0); /* tokenizer_config add_prefix_space: false */
    slm_vocab_free(&hf);
    slm_vocab_free(&gg);
    slm_vocab_free(&gg); /* twice: safe */
}

static int32_t type_from_name(const char *s) {
    if (!strcmp(s, "NORMAL")) return SLM_TOKEN_NORMAL;
    if (!strcmp(s, "UNKNOWN")) return SLM_TOKEN_UNKNOWN;
    if (!strcmp(s, "CONTROL")) return SLM_TOKEN_CONTROL;
    if (!strcmp(s, "BYTE")) return SLM_TOKEN_BYTE;
    fail_msg("vocab.tsv: unknown type %s", s);
    return 0;
}

/* vocab.tsv: id TAB type TAB score TAB piece, with \\ \t \n \r escaped */
static void test_tok_import_spm_matches_vocab_tsv(void **state) {
    (void)state;
    slm_vocab v = {0};
    vocab_from_dir(&v, "models/stories260K");
    assert_int_equal(v.kind, SLM_VOCAB_SPM);
    assert_string_equal(v.pre, "default");
    assert_int_equal(v.n_tokens, 512);
    char *tsv = read_whole_file(fixture_path("models/stories260K/vocab.tsv"), NULL);
    char *line = strchr(tsv, '\n') + 1; /* header */
    int32_t n = 0;
    while (*line) {
        char *end = strchr(line, '\n');
        if (end) *end = 0;
        char *f[4];
        f[0] = line;
        for (int k = 1; k < 4; k++) {
            f[k] = strchr(f[k - 1], '\t');
            assert_non_null(f[k]);
            *f[k]++ = 0;
        }
        int32_t id = atoi(f[0]);
        assert_int_equal(id, n);
        char piece[256];
        size_t k = 0;
        for (const char *p = f[3]; *p; p++) {
            char c = *p;
            if (c == '\\') {
                c = *++p;
                c = c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : c;
            }
            piece[k++] = c;
        }
        piece[k] = 0;
        if (strcmp(v.tokens[id], piece) != 0) fail_msg("piece %d: '%s' vs vocab.tsv '%s'", id, v.tokens[id], piece);
        assert_int_equal(v.types[id], type_from_name(f[1]));
        float score = strtof(f[2], NULL);
        if (memcmp(&score, &v.scores[id], sizeof score) != 0) fail_msg("score %d: %g vs vocab.tsv %s", id, v.scores[id], f[2]);
        n++;
        line = end ? end + 1 : line + strlen(line);
    }
    assert_int_equal(n, 512);
    /* special tokens: config.json only (no tokenizer.json to resolve token strings through) */
    assert_int_equal(v.bos_id, 1);
    assert_int_equal(v.eos_id, 2);
    assert_int_equal(v.unk_id, -1);
    assert_int_equal(v.add_bos, 1);
    assert_int_equal(v.add_eos, 0);
    assert_int_equal(v.add_space_prefix, -1);
    assert_null(v.chat_template);

    /* GGUF keys: write, read back, equal; and the key order of llama.cpp's converter */
    slm_kvs kv = {0};
    slm_err err = {0};
    slm_vocab back = {0};
    check_ok(slm_vocab_to_kvs(&v, &kv, &err), &err, "to_kvs");
    const char *order[] = {"tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.scores",
                           "tokenizer.ggml.token_type", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                           "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token"};
    assert_int_equal(kv.n, SLM_ARRAY_LEN(order));
    for (size_t i = 0; i < kv.n; i++) assert_string_equal(kv.items[i].key, order[i]);
    assert_int_equal(kv.items[5].val.type, SLM_GGUF_UINT32);
    check_ok(slm_vocab_from_kvs(&back, &kv, &err), &err, "from_kvs");
    expect_vocab_equal(&v, &back, 1);
    assert_int_equal(back.bos_id, 1);
    assert_int_equal(back.eos_id, 2);
    assert_int_equal(back.unk_id, -1);
    assert_int_equal(back.add_bos, 1);
    assert_int_equal(back.add_eos, 0);
    assert_int_equal(back.add_space_prefix, -1);
    slm_vocab_free(&back);
    slm_kvs_free(&kv);
    free(tsv);
    slm_vocab_free(&v);
}

/* GGUF -> vocab -> GGUF keeps every tokenizer key, value and (converter) order */
static void test_tok_kvs_round_trip_phi3(void **state) {
    (void)state;
    slm_gguf g;
    slm_err err = {0};
    slm_vocab v = {0};
    slm_kvs kv = {0};
    check_ok(slm_gguf_open(&g, fixture_path("vocab/ggml-vocab-phi-3.gguf"), &err), &err, "phi-3");
    check_ok(slm_vocab_from_kvs(&v, &g.kv, &err), &err, "from_kvs");
    check_ok(slm_vocab_to_kvs(&v, &kv, &err), &err, "to_kvs");
    size_t k = 0;
    for (size_t i = 0; i < g.kv.n; i++) {
        const slm_kv *a = &g.kv.items[i];
        if (strncmp(a->key, "tokenizer.", 10) != 0) continue;
        if (k >= kv.n) fail_msg("key %s not written", a->key);
        const slm_kv *b = &kv.items[k++];
        assert_string_equal(a->key, b->key);
        if (!slm_gguf_val_equal(&a->val, &b->val)) fail_msg("key %s: value differs after the round trip", a->key);
    }
    assert_int_equal(k, kv.n);
    assert_int_equal(v.pad_id, 32000);
    assert_non_null(v.chat_template);
    slm_kvs_free(&kv);
    slm_vocab_free(&v);
    slm_gguf_close(&g);
}

/* ---- tokenization: llama.cpp's test-tokenizer-0 cases ----------------------------------- */

/* inputs that stress byte fallback, invalid UTF-8, non-ASCII spaces and digits, user-defined and
   control token texts; expected ids from llama.cpp v0.5.0 (llama_tokenize, add_special 0,
   parse_special 0) on the same GGUF files */
static const char *const k_extra_inputs[] = {
    "a</s>b <s> <unk>x",
    "<|user|> hi<|end|>",
    "\xff""\x80""abc\xe2""\x82"" \xc3""",
    "DON'T 'LL 'Re \xe2""\x84""\xaa""elvin 'S",
    "\xc2""\xa0""\xe3""\x80""\x80"" x\xe2""\x80""\x83""\n\n  \t\n 12345678 \xd9""\xa3""\xd9""\xa3""\xd9""\xa3""\xd9""\xa3""",
    "  leading and trailing  ",
    "\xe2""\x96""\x81"" already escaped",
    "<|endoftext|>Hello<|endoftext|>",
};
static const struct {
    const char *vocab;
    const char *ids[8];
} k_extra_expected[] = {
    {"llama-spm",
     {"263 829 29879 29958 29890 529 29879 29958 529 2960 29958 29916",
      "529 29989 1792 29989 29958 7251 29966 29989 355 29989 29958",
      "29871 258 131 100 101 29883 229 133 229 153 132 198",
      "360 1164 29915 29911 525 2208 525 1123 29871 229 135 173 295 3845 525 29903",
      "20246 30358 921 30363 13 13 259 12 13 29871 29896 29906 29941 29946 29945 29953 29955 29947 29871 220 166 220 166 220 166 220 166",
      "259 8236 322 25053 259",
      "259 2307 19824",
      "529 29989 355 974 726 29989 29958 10994 29966 29989 355 974 726 29989 29958"}},
    {"phi-3",
     {"263 829 29879 29958 29890 529 29879 29958 529 2960 29958 29916",
      "529 29989 1792 29989 29958 7251 29966 29989 355 29989 29958",
      "29871 258 131 100 101 29883 229 133 229 153 132 198",
      "360 1164 29915 29911 525 2208 525 1123 29871 229 135 173 295 3845 525 29903",
      "20246 30358 921 30363 13 13 259 12 13 29871 29896 29906 29941 29946 29945 29953 29955 29947 29871 220 166 220 166 220 166 220 166",
      "259 8236 322 25053 259",
      "259 2307 19824",
      "529 29989 355 974 726 29989 29958 10994 29966 29989 355 974 726 29989 29958"}},
    {"gpt-2",
     {"64 3556 82 29 65 1279 82 29 1279 2954 29 87",
      "27 91 7220 91 29 23105 27 91 437 91 29",
      "6353 39305 6353 20543",
      "41173 6 51 705 3069 705 3041 2343 226 103 417 7114 705 50",
      "1849 5099 222 2124 447 225 628 220 220 197 198 17031 2231 30924 18923 96 149 96 149 96 149 96",
      "220 3756 290 25462 220 220",
      "5008 223 1541 13537",
      "27 91 437 1659 5239 91 29 15496 27 91 437 1659 5239 91 29"}},
    {"qwen2",
     {"64 522 82 51407 366 82 29 366 3122 28257",
      "27 91 872 91 29 15588 27 91 408 91 29",
      "9973 13683 9973 29333",
      "84641 17323 364 4086 364 693 28653 103 301 9603 364 50",
      "4102 22441 856 378 225 271 98251 220 16 17 18 19 20 21 22 23 220 149 96 149 96 149 96 149 96",
      "220 6388 323 27748 256",
      "10417 223 2669 27783",
      "27 91 8691 723 427 91 29 9707 27 91 8691 723 427 91 29"}},
    {"llama-bpe",
     {"64 524 82 52507 366 82 29 366 3200 29357",
      "27 91 882 91 29 15960 27 91 408 91 29",
      "10178 13997 10178 30433",
      "85741 17773 364 4178 364 697 29753 103 301 9799 364 50",
      "4194 23249 865 116503 271 99351 220 4513 10961 2495 220 117413 117413 117413 117413",
      "220 6522 323 28848 256",
      "10634 223 2736 28883",
      "27 91 8862 728 428 91 29 9906 27 91 8862 728 428 91 29"}},
};

/* Reads name.inp / name.out as test-tokenizer-0 does and compares every case; all cases pass
   with llama.cpp v0.5.0 itself (checked with libllama, vocab_only), "Cửa Việt" included. */
static void run_vocab_cases(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "vocab/ggml-vocab-%s.gguf", name);
    slm_vocab v = {0};
    slm_tokenizer t = {0};
    slm_err err = {0};
    vocab_from_gguf(&v, rel);
    check_ok(slm_tokenizer_build(&t, &v, &err), &err, rel);
    char rel_inp[300], rel_out[300];
    snprintf(rel_inp, sizeof rel_inp, "%s.inp", rel);
    snprintf(rel_out, sizeof rel_out, "%s.out", rel);
    size_t n_inp, n_out;
    char *inp = read_whole_file(fixture_path(rel_inp), &n_inp);
    char *out = read_whole_file(fixture_path(rel_out), &n_out);
    const char *sep = "\n__ggml_vocab_test__\n";
    size_t pos = 0, n_cases = 0, n_fail = 0;
    char *line = out;
    while (pos < n_inp) {
        char *next = strstr(inp + pos, sep);
        size_t end = next ? (size_t)(next - inp) : n_inp;
        /* expected ids: the line, stripped, split on single spaces */
        if (!*line) fail_msg("%s: fewer .out lines than cases", rel);
        char *eol = strchr(line, '\n');
        if (eol) *eol = 0;
        int32_t want[512];
        size_t n_want = 0;
        for (char *p = line; *p;) {
            char *q;
            long x = strtol(p, &q, 10);
            if (q == p) break;
            assert_true(n_want < 512);
            want[n_want++] = (int32_t)x;
            p = q;
        }
        int32_t *ids;
        size_t n_ids;
        tokenize_ok(&t, inp + pos, end - pos, 0, &ids, &n_ids);
        if (n_ids != n_want || memcmp(ids, want, n_want * sizeof(int32_t)) != 0) {
            char a[2048], b[2048];
            format_ids(a, sizeof a, want, n_want);
            format_ids(b, sizeof b, ids, n_ids);
            print_error("%s case %zu '%.*s':\n  expected%s\n  actual  %s\n", name, n_cases, (int)SLM_MIN(end - pos, 60),
                        inp + pos, a, b);
            n_fail++;
        }
        slm_free(ids);
        n_cases++;
        line = eol ? eol + 1 : line + strlen(line);
        if (!next) break;
        pos = end + strlen(sep);
    }
    assert_int_equal(n_cases, 46);
    /* the extra cases, same comparison */
    size_t k;
    for (k = 0; k < SLM_ARRAY_LEN(k_extra_expected) && strcmp(k_extra_expected[k].vocab, name) != 0; k++) {}
    assert_true(k < SLM_ARRAY_LEN(k_extra_expected));
    for (size_t c = 0; c < SLM_ARRAY_LEN(k_extra_inputs); c++) {
        int32_t *ids;
        size_t n_ids;
        char got[2048];
        tokenize_ok(&t, k_extra_inputs[c], strlen(k_extra_inputs[c]), 0, &ids, &n_ids);
        format_ids(got, sizeof got, ids, n_ids);
        if (strcmp(got[0] ? got + 1 : got, k_extra_expected[k].ids[c]) != 0) {
            print_error("%s extra case %zu:\n  expected %s\n  actual   %s\n", name, c, k_extra_expected[k].ids[c], got);
            n_fail++;
        }
        slm_free(ids);
    }
    if (n_fail) fail_msg("%s: %zu cases differ", name, n_fail);
    free(inp);
    free(out);
    slm_tokenizer_free(&t);
    slm_tokenizer_free(&t);
    slm_vocab_free(&v);
}

static void test_tok_cases_llama_spm(void **state) { (void)state; run_vocab_cases("llama-spm"); }
static void test_tok_cases_phi3(void **state) { (void)state; run_vocab_cases("phi-3"); }
static void test_tok_cases_gpt2(void **state) { (void)state; run_vocab_cases("gpt-2"); }
static void test_tok_cases_qwen2(void **state) { (void)state; run_vocab_cases("qwen2"); }
static void test_tok_cases_llama_bpe(void **state) { (void)state; run_vocab_cases("llama-bpe"); }

/* add_special: BOS as the vocab says; llama-bpe adds BOS by default (no add_bos key) */
static void test_tok_add_special(void **state) {
    (void)state;
    slm_vocab v = {0};
    slm_tokenizer t = {0};
    slm_err err = {0};
    int32_t *ids;
    size_t n;
    vocab_from_gguf(&v, "vocab/ggml-vocab-llama-bpe.gguf");
    check_ok(slm_tokenizer_build(&t, &v, &err), &err, "llama-bpe");
    tokenize_ok(&t, "Hello world", 11, 1, &ids, &n);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 128000);
    assert_int_equal(ids[1], 9906);
    assert_int_equal(ids[2], 1917);
    slm_free(ids);
    tokenize_ok(&t, "", 0, 1, &ids, &n); /* empty text: BOS only */
    assert_int_equal(n, 1);
    slm_free(ids);
    tokenize_ok(&t, "", 0, 0, &ids, &n);
    assert_int_equal(n, 0);
    slm_free(ids);
    slm_tokenizer_free(&t);
    slm_vocab_free(&v);
    /* gpt-2: no BOS by default */
    vocab_from_gguf(&v, "vocab/ggml-vocab-gpt-2.gguf");
    check_ok(slm_tokenizer_build(&t, &v, &err), &err, "gpt-2");
    tokenize_ok(&t, "Hello world", 11, 1, &ids, &n);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 15496);
    slm_free(ids);
    slm_tokenizer_free(&t);
    slm_vocab_free(&v);
}

/* ---- tok512 on the held-out text -------------------------------------------------------- */

/* The positions (in our ids) of the 6 extra "▁" tokens at the text's double spaces, where
   sentencepiece (remove_extra_whitespaces) collapses the run and llama.cpp does not. */
static const size_t k_double_space_at[6] = {186973, 209221, 209452, 285058, 285184, 363074};

static void test_tok_tinystories_tok512(void **state) {
    (void)state;
    slm_vocab v = {0};
    slm_tokenizer t = {0};
    slm_err err = {0};
    vocab_from_dir(&v, "models/stories260K");
    check_ok(slm_tokenizer_build(&t, &v, &err), &err, "tok512");
    size_t n_text, n_ref_bytes;
    char *text = read_whole_file(fixture_path("text/tinystories_val.txt"), &n_text);
    int32_t *ref = read_whole_file(fixture_path("text/tinystories_val.tok512.i32"), &n_ref_bytes);
    size_t n_ref = n_ref_bytes / 4;
    assert_int_equal(n_text, 794375);
    assert_int_equal(n_ref, 393012);
    int32_t *ids;
    size_t n;
    tokenize_ok(&t, text, n_text, 0, &ids, &n);
    assert_int_equal(n, 393018);
    /* walk both: every difference is one extra "▁" (id 259's sibling: the lone space token) */
    int32_t space = -1;
    for (int32_t i = 0; i < v.n_tokens; i++)
        if (!strcmp(v.tokens[i], "\xe2\x96\x81")) space = i;
    assert_true(space >= 0);
    size_t i = 0, j = 0, n_extra = 0;
    while (i < n && j < n_ref) {
        if (ids[i] == ref[j]) {
            i++;
            j++;
            continue;
        }
        if (ids[i] != space) fail_msg("id %zu: %d, reference id %zu: %d (not an extra space)", i, ids[i], j, ref[j]);
        if (n_extra >= 6) fail_msg("more than 6 extra spaces (at id %zu)", i);
        if (i != k_double_space_at[n_extra]) fail_msg("extra space %zu at id %zu, expected at %zu", n_extra, i, k_double_space_at[n_extra]);
        n_extra++;
        i++;
    }
    assert_int_equal(i, n);
    assert_int_equal(j, n_ref);
    assert_int_equal(n_extra, 6);
    slm_free(ids);

    /* with BOS: "Once upon a time" -> 1 403 407 261 378 */
    tokenize_ok(&t, "Once upon a time", 16, 1, &ids, &n);
    const int32_t want[] = {1, 403, 407, 261, 378};
    assert_int_equal(n, 5);
    assert_memory_equal(ids, want, sizeof want);
    slm_free(ids);
    free(text);
    free(ref);
    slm_tokenizer_free(&t);
    slm_vocab_free(&v);
}

/* ---- decode ------------------------------------------------------------------------------ */

/* run.c prints the pieces of the greedy ids after BOS, the first one without its leading
   space (sentencepiece strips it after BOS), then "\n". llama.cpp's detokenize of the ids
   after BOS strips that space the same way (add_space_prefix); with BOS and remove_special
   it keeps it. Compared: our pieces/detokenize against the file minus its final newline. */
static void test_tok_decode_greedy(void **state) {
    (void)state;
    slm_vocab v = {0};
    slm_tokenizer t = {0};
    slm_err err = {0};
    vocab_from_dir(&v, "models/stories260K");
    check_ok(slm_tokenizer_build(&t, &v, &err), &err, "tok512");
    size_t n_json, n_runc;
    char *json = read_whole_file(fixture_path("reference/stories260K.json"), &n_json);
    char *runc = read_whole_file(fixture_path("reference/stories260K.runc_greedy.txt"), &n_runc);
    assert_true(n_runc > 0 && runc[n_runc - 1] == '\n');
    runc[--n_runc] = 0;
    cJSON *j = cJSON_ParseWithLength(json, n_json);
    assert_non_null(j);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "llama2c_greedy_tokens");
    assert_true(cJSON_IsArray(arr));
    size_t n = (size_t)cJSON_GetArraySize(arr);
    assert_int_equal(n, 257);
    int32_t *ids = calloc(n, sizeof(int32_t));
    size_t k = 0;
    for (const cJSON *e = arr->child; e; e = e->next) ids[k++] = (int32_t)e->valuedouble;
    assert_int_equal(ids[0], 1);

    /* pieces after BOS, first leading space dropped */
    char *cat = calloc(1, 65536);
    size_t len = 0;
    for (size_t i = 1; i < n; i++) len += slm_token_piece(&t, ids[i], cat + len, 65536 - len);
    assert_true(len < 65536);
    assert_int_equal(cat[0], ' ');
    assert_int_equal(len - 1, n_runc);
    assert_memory_equal(cat + 1, runc, n_runc);

    char *text;
    size_t n_text;
    check_ok(slm_detokenize(&t, ids + 1, n - 1, 0, &text, &n_text, &err), &err, "detokenize");
    assert_string_equal(text, runc);
    slm_free(text);
    check_ok(slm_detokenize(&t, ids, n, 1, &text, &n_text, &err), &err, "detokenize");
    assert_int_equal(n_text, n_runc + 1);
    assert_string_equal(text + 1, runc);
    slm_free(text);

    /* single pieces: control -> nothing, byte token -> the byte, cut to cap */
    char buf[8];
    assert_int_equal(slm_token_piece(&t, 1, buf, sizeof buf), 0);
    assert_int_equal(slm_token_piece(&t, 13, buf, sizeof buf), 1);
    assert_int_equal(buf[0], '\n');
    assert_int_equal(slm_token_piece(&t, 512, buf, sizeof buf), 0);
    assert_int_equal(slm_token_piece(&t, -1, buf, sizeof buf), 0);
    assert_int_equal(slm_detokenize(&t, (const int32_t[]){600}, 1, 0, &text, &n_text, &err), SLM_E_ARG);
    free(cat);
    free(ids);
    cJSON_Delete(j);
    free(json);
    free(runc);
    slm_tokenizer_free(&t);
    slm_vocab_free(&v);
}

/* BPE pieces are byte-decoded: detokenize(tokenize(x)) == x for gpt-2 without clean-up cases */
static void test_tok_bpe_round_trip(void **state) {
    (void)state;
    slm_vocab v = {0};
    slm_tokenizer t = {0};
    slm_err err = {0};
    vocab_from_gguf(&v, "vocab/ggml-vocab-qwen2.gguf");
    check_ok(slm_tokenizer_build(&t, &v, &err), &err, "qwen2");
    const char *s = "Hello  world\n\n\t\xc3\x84pfel \xf0\x9f\xa6\x99 3333 \xe1\x9e\x80\xe1\x9e\xb6 it's";
    int32_t *ids;
    size_t n, n_text;
    char *text;
    tokenize_ok(&t, s, strlen(s), 0, &ids, &n);
    check_ok(slm_detokenize(&t, ids, n, 0, &text, &n_text, &err), &err, "detokenize");
    assert_string_equal(text, s);
    slm_free(text);
    slm_free(ids);
    slm_tokenizer_free(&t);
    slm_vocab_free(&v);
}

/* ---- malformed inputs -------------------------------------------------------------------- */

static void write_text(const char *dir_file, const char *s) { write_whole_file(tmp_path(dir_file), s, strlen(s)); }

static void expect_dir_error(const char *dir, int code, const char *substr) {
    slm_vocab v;
    slm_err err = {0};
    int rc = slm_vocab_from_hf_dir(&v, tmp_path(dir), &err);
    if (rc != code || !strstr(err.msg, substr)) fail_msg("%s: got %d '%s', expected %d with '%s'", dir, rc, err.msg, code, substr);
    slm_vocab_free(&v);
}

static void test_tok_rejects_truncated_tokenizer_model(void **state) {
    (void)state;
    size_t n;
    char *model = read_whole_file(fixture_path("models/stories260K/tokenizer.model"), &n);
    char path[4096];
    snprintf(path, sizeof path, "%s", tmp_path("trunc"));
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", path);
    assert_int_equal(system(cmd), 0);
    /* inside the 11th piece: a clean error naming the file */
    write_whole_file(tmp_path("trunc/tokenizer.model"), model, 100);
    expect_dir_error("trunc", SLM_E_FORMAT, "tokenizer.model: truncated or malformed protobuf at byte");
    write_whole_file(tmp_path("trunc/tokenizer.model"), model, 0);
    expect_dir_error("trunc", SLM_E_FORMAT, "tokenizer.model: no pieces");
    /* every length: an error naming the file or (cut at a field boundary) fewer pieces */
    for (size_t len = 1; len < n; len += 7) {
        slm_vocab v;
        slm_err err = {0};
        write_whole_file(tmp_path("trunc/tokenizer.model"), model, len);
        int rc = slm_vocab_from_hf_dir(&v, path, &err);
        if (rc && !strstr(err.msg, "tokenizer.model")) fail_msg("length %zu: %s", len, err.msg);
        if (!rc) assert_true(v.n_tokens > 0 && v.n_tokens < 512); /* no config.json: the pieces read */
        slm_vocab_free(&v);
    }
    free(model);
}

static const char *k_json_head = "{\"version\": \"1.0\", \"added_tokens\": [], \"normalizer\": null, ";

static void make_dir(const char *name) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", tmp_path(name));
    assert_int_equal(system(cmd), 0);
}

static void test_tok_rejects_bad_tokenizer_json(void **state) {
    (void)state;
    char s[2048];
    make_dir("pre");
    snprintf(s, sizeof s,
             "%s\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": "
             "{\"Regex\": \"\\\\p{L}+|\\\\s+\"}, \"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\", "
             "\"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": false}]}, \"model\": {\"type\": \"BPE\", "
             "\"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a b\"]}}",
             k_json_head);
    write_text("pre/tokenizer.json", s);
    expect_dir_error("pre", SLM_E_UNSUPPORTED,
                     "tokenizer.json: unknown pre-tokenizer Sequence[Split(regex '\\p{L}+|\\s+'), ByteLevel]: cannot choose tokenizer.ggml.pre");

    make_dir("vocab");
    snprintf(s, sizeof s,
             "%s\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}, "
             "\"model\": {\"type\": \"BPE\", \"vocab\": [\"a\", \"b\"], \"merges\": [\"a b\"]}}",
             k_json_head);
    write_text("vocab/tokenizer.json", s);
    expect_dir_error("vocab", SLM_E_FORMAT, "tokenizer.json: model.vocab is not an object");

    make_dir("ids");
    snprintf(s, sizeof s,
             "%s\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}, "
             "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"0\"}, \"merges\": [\"a b\"]}}",
             k_json_head);
    write_text("ids/tokenizer.json", s);
    expect_dir_error("ids", SLM_E_FORMAT, "tokenizer.json: model.vocab['a'] is not a token id");

    make_dir("dup");
    snprintf(s, sizeof s,
             "%s\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}, "
             "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"a\": 1}, \"merges\": [\"a b\"]}}",
             k_json_head);
    write_text("dup/tokenizer.json", s);
    expect_dir_error("dup", SLM_E_FORMAT, "tokenizer.json: duplicate key 'a'");

    make_dir("merges");
    snprintf(s, sizeof s,
             "%s\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}, "
             "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a b\", 7]}}",
             k_json_head);
    write_text("merges/tokenizer.json", s);
    expect_dir_error("merges", SLM_E_FORMAT, "tokenizer.json: model.merges[1] is neither a string nor a pair of strings");

    make_dir("trunc_json");
    write_text("trunc_json/tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"voc");
    expect_dir_error("trunc_json", SLM_E_FORMAT, "tokenizer.json: invalid JSON");

    make_dir("none");
    expect_dir_error("none", SLM_E_UNSUPPORTED, "no tokenizer.model or tokenizer.json");
}

/* A small byte-level BPE folder: pair-form merges, added tokens, TemplateProcessing,
   config.json vocab_size padding, chat template. */
static void test_tok_import_small_bpe_folder(void **state) {
    (void)state;
    make_dir("small");
    write_text("small/tokenizer.json",
               "{\"added_tokens\": [{\"id\": 5, \"content\": \"<|begin|>\", \"special\": true},"
               " {\"id\": 6, \"content\": \"x\\u2581y\", \"special\": false}],"
               " \"normalizer\": null, \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": ["
               "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|"
               "\\\\p{N}{1,3}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"}, \"behavior\": "
               "\"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true,"
               " \"use_regex\": false}]},"
               " \"post_processor\": {\"type\": \"Sequence\", \"processors\": [{\"type\": \"ByteLevel\"}, {\"type\": "
               "\"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<|begin|>\", \"type_id\": 0}}, "
               "{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}]}]},"
               " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2, \"\\u0120\": 3}, "
               "\"merges\": [[\"a\", \"b\"], [\" \", \"a\"]]}}");
    write_text("small/tokenizer_config.json", "{\"bos_token\": \"<|begin|>\", \"chat_template\": \"{{ x }}\"}");
    write_text("small/config.json", "{\"vocab_size\": 8, \"eos_token_id\": 2}");
    slm_vocab v = {0};
    slm_err err = {0};
    check_ok(slm_vocab_from_hf_dir(&v, tmp_path("small"), &err), &err, "small");
    assert_string_equal(v.pre, "llama-bpe");
    assert_int_equal(v.n_tokens, 8);
    assert_string_equal(v.tokens[4], "[PAD4]");
    assert_int_equal(v.types[4], SLM_TOKEN_UNUSED);
    assert_int_equal(v.types[5], SLM_TOKEN_CONTROL);
    assert_string_equal(v.tokens[6], "x y"); /* user-defined: U+2581 pre-normalised to ' ' */
    assert_int_equal(v.types[6], SLM_TOKEN_USER_DEFINED);
    assert_int_equal(v.n_merges, 2);
    assert_string_equal(v.merges[0], "a b");
    assert_string_equal(v.merges[1], "\xc4\xa0 a");
    assert_int_equal(v.bos_id, 5);
    assert_int_equal(v.eos_id, 2);
    assert_int_equal(v.add_bos, 1);
    assert_string_equal(v.chat_template, "{{ x }}");
    slm_vocab_free(&v);
}

/* llama.cpp's converter names a BPE pre-tokenizer by hashing the ids of a check text
   (conversion/base.py: get_vocab_base_pre); slm computes the same hash with its tokenizer. */
static void test_tok_chkhsh(void **state) {
    (void)state;
    slm_vocab v = {0};
    slm_err err = {0};
    char hex[65];
    vocab_from_dir(&v, "tokenizers/gpt2");
    check_ok(slm_vocab_chkhsh(&v, hex, &err), &err, "chkhsh");
    assert_string_equal(hex, "3ce83efda5659b07b1ad37ca97ca5797ea4285d9b9ab0dc679e4a720c9da7454"); /* openai-community/gpt2 */
    assert_string_equal(slm_pre_by_chkhsh(hex), "gpt-2");
    assert_string_equal(slm_pre_by_chkhsh("855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249"), "smollm");
    assert_null(slm_pre_by_chkhsh("0000"));
    /* another split gives another hash, unknown: the structural name stays */
    snprintf(v.pre, sizeof v.pre, "starcoder");
    check_ok(slm_vocab_chkhsh(&v, hex, &err), &err, "chkhsh");
    assert_null(slm_pre_by_chkhsh(hex));
    slm_vocab_pre_from_chkhsh(&v);
    assert_string_equal(v.pre, "starcoder");
    /* LlamaModel.set_vocab: a 49152-token Llama (SmolLM) gets add_bos_token false, after the other keys */
    slm_model_config c = {0};
    c.arch = SLM_ARCH_LLAMA, c.n_embd = 64, c.n_ff = 128, c.n_layer = 1, c.n_head = 4, c.n_head_kv = 4, c.head_dim = 16;
    c.n_vocab = 49152, c.norm_eps = 1e-5f, c.rope_theta = 10000.0f, c.rope_scale = 1.0f;
    slm_kvs kv = {0};
    check_ok(slm_model_gguf_meta(&c, "m", &v, &kv, &err), &err, "meta");
    assert_string_equal(kv.items[kv.n - 1].key, "tokenizer.ggml.add_bos_token");
    int b = 1;
    check_ok(slm_kvs_get_bool(&kv, "tokenizer.ggml.add_bos_token", &b, &err), &err, "add_bos");
    assert_int_equal(b, 0);
    slm_kvs_free(&kv);
    slm_vocab_free(&v);
}

/* A byte_fallback tokenizer.json without tokenizer.model, read as llama.cpp's LlamaHfVocab
   does: SPM, every score -1000, <0xHH> BYTE, special tokens CONTROL, added tokens after the
   vocabulary USER_DEFINED with their text as is; TemplateProcessing's pair "A </s> B" sets
   add_sep_token (and the separator id), written in the order SpecialVocab set them. What
   gguf-py's SpecialVocab and LlamaHfVocab (with tests/ref/tokbf_shim) give for this folder:
   ids {bos 1, eos 2, sep 2, cls 1}, add {bos True, sep True, eos False}, the types below. */
static void test_tok_import_byte_fallback_folder(void **state) {
    (void)state;
    make_dir("bf");
    write_text("bf/tokenizer.json",
               "{\"added_tokens\": [{\"id\": 0, \"content\": \"<unk>\", \"special\": true},"
               " {\"id\": 1, \"content\": \"<s>\", \"special\": true}, {\"id\": 2, \"content\": \"</s>\", \"special\": true},"
               " {\"id\": 7, \"content\": \"<|end|>\", \"special\": true}, {\"id\": 8, \"content\": \"\\u2581hi\", \"special\": false}],"
               " \"normalizer\": null, \"pre_tokenizer\": null,"
               " \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\"}},"
               " {\"Sequence\": {\"id\": \"A\"}}], \"pair\": [{\"SpecialToken\": {\"id\": \"<s>\"}}, {\"Sequence\": {\"id\": \"A\"}},"
               " {\"SpecialToken\": {\"id\": \"</s>\"}}, {\"Sequence\": {\"id\": \"B\"}}]},"
               " \"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"ByteFallback\"}]},"
               " \"model\": {\"type\": \"BPE\", \"byte_fallback\": true, \"vocab\": {\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2,"
               " \"<0x0a>\": 3, \"<0xZZ>\": 4, \"\\u2581a\": 5, \"a\": 6}, \"merges\": []}}");
    write_text("bf/tokenizer_config.json",
               "{\"tokenizer_class\": \"LlamaTokenizer\", \"eos_token\": \"</s>\", \"add_eos_token\": false,"
               " \"additional_special_tokens\": [\"<|end|>\"]}");
    write_text("bf/config.json", "{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 32}");
    slm_vocab v = {0}, w = {0};
    slm_err err = {0};
    check_ok(slm_vocab_from_hf_dir(&v, tmp_path("bf"), &err), &err, "bf");
    assert_int_equal(v.kind, SLM_VOCAB_SPM);
    assert_string_equal(v.pre, "default");
    assert_int_equal(v.n_tokens, 9); /* config.json's vocab_size is not used */
    static const int32_t types[9] = {SLM_TOKEN_CONTROL, SLM_TOKEN_CONTROL, SLM_TOKEN_CONTROL, SLM_TOKEN_BYTE, SLM_TOKEN_NORMAL,
                                     SLM_TOKEN_NORMAL, SLM_TOKEN_NORMAL, SLM_TOKEN_CONTROL, SLM_TOKEN_USER_DEFINED};
    for (int i = 0; i < 9; i++) {
        assert_int_equal(v.types[i], types[i]);
        assert_true(v.scores[i] == -1000.0f);
    }
    assert_string_equal(v.tokens[8], "\xe2\x96\x81hi");
    assert_int_equal(v.n_merges, 0);
    assert_int_equal(v.bos_id, 1);
    assert_int_equal(v.eos_id, 2);
    assert_int_equal(v.unk_id, -1); /* SpecialVocab reads tokenizer_config.json, which names no unk_token */
    assert_int_equal(v.add_bos, 1);
    assert_int_equal(v.add_sep, 1);
    assert_int_equal(v.add_eos, 0);
    assert_string_equal(v.add_order, "bse");
    assert_int_equal(v.sep_id, 2); /* sep_token became eos_token, as SpecialVocab does when the pair adds it */
    assert_int_equal(v.mask_id, -1);
    assert_string_equal(v.id_order, "bes");
    /* the add_* keys keep their order through GGUF metadata */
    v.add_order[0] = 'e', v.add_order[2] = 'b';
    slm_kvs kv = {0};
    check_ok(slm_vocab_to_kvs(&v, &kv, &err), &err, "to_kvs");
    check_ok(slm_vocab_from_kvs(&w, &kv, &err), &err, "from_kvs");
    assert_string_equal(w.add_order, "esb");
    assert_string_equal(w.id_order, "bes");
    assert_int_equal(w.sep_id, 2);
    assert_int_equal(w.add_sep, 1);
    slm_kvs_free(&kv);
    slm_vocab_free(&w);
    slm_vocab_free(&v);

    /* the same tokenizer.json for Gemma 2: llama.cpp's converter needs tokenizer.model */
    write_text("bf/config.json", "{\"architectures\": [\"Gemma2ForCausalLM\"]}");
    expect_dir_error("bf", SLM_E_UNSUPPORTED, "needs a tokenizer.model for Gemma2ForCausalLM");
}

static void test_tok_unicode_flags(void **state) {
    (void)state;
    assert_int_equal(slm_unicode_flags('a'), SLM_UCAT_LETTER);
    assert_int_equal(slm_unicode_flags(' '), SLM_UCAT_SEPARATOR | SLM_UCAT_WHITESPACE);
    assert_int_equal(slm_unicode_flags('\n'), SLM_UCAT_CONTROL | SLM_UCAT_WHITESPACE);
    assert_int_equal(slm_unicode_flags(0x00C4), SLM_UCAT_LETTER);                      /* Ä */
    assert_int_equal(slm_unicode_flags(0x0663), SLM_UCAT_NUMBER);                      /* Arabic-Indic 3 */
    assert_int_equal(slm_unicode_flags(0x17B6), SLM_UCAT_MARK);                        /* Khmer vowel sign AA */
    assert_int_equal(slm_unicode_flags(0x3000), SLM_UCAT_SEPARATOR | SLM_UCAT_WHITESPACE);
    assert_int_equal(slm_unicode_flags(0x1F999), SLM_UCAT_SYMBOL);                     /* 🦙 */
    assert_int_equal(slm_unicode_flags(0x0378), SLM_UCAT_UNDEFINED);                   /* unassigned */
    assert_int_equal(slm_unicode_flags(0x110000), SLM_UCAT_UNDEFINED);
    assert_int_equal(slm_unicode_lower_ascii(0x212A), 'k');
    for (int b = 0; b < 256; b++) assert_int_equal(slm_cp_to_byte(slm_byte_to_cp((unsigned char)b)), b);
    assert_int_equal(slm_byte_to_cp(' '), 0x120);
    size_t adv;
    assert_int_equal(slm_utf8_decode((const unsigned char *)"\xe2\x82", 2, &adv), SLM_UNICODE_REPLACEMENT);
    assert_int_equal(adv, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tok_unicode_flags),
        cmocka_unit_test(test_tok_import_gpt2_matches_gguf),
        cmocka_unit_test(test_tok_chkhsh),
        cmocka_unit_test(test_tok_import_spm_matches_vocab_tsv),
        cmocka_unit_test(test_tok_kvs_round_trip_phi3),
        cmocka_unit_test(test_tok_import_small_bpe_folder),
        cmocka_unit_test(test_tok_import_byte_fallback_folder),
        cmocka_unit_test(test_tok_cases_llama_spm),
        cmocka_unit_test(test_tok_cases_phi3),
        cmocka_unit_test(test_tok_cases_gpt2),
        cmocka_unit_test(test_tok_cases_qwen2),
        cmocka_unit_test(test_tok_cases_llama_bpe),
        cmocka_unit_test(test_tok_add_special),
        cmocka_unit_test(test_tok_tinystories_tok512),
        cmocka_unit_test(test_tok_decode_greedy),
        cmocka_unit_test(test_tok_bpe_round_trip),
        cmocka_unit_test(test_tok_rejects_truncated_tokenizer_model),
        cmocka_unit_test(test_tok_rejects_bad_tokenizer_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
