/* test_safetensors.c - the validating reader on the real fixtures (single file, sharded
 * F16, BF16), the writer round trip, and the HF config/name mapping. Malformed files are
 * covered by test_corrupt. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "tests/testutil.h"

static void test_st_reads_fixture(void **st) {
    (void)st;
    slm_err e = {0};
    slm_st_model m;
    assert_int_equal(slm_st_model_open(&m, fixture_path("models/stories260K"), &e), SLM_OK);
    assert_int_equal(m.n_shards, 1);
    assert_int_equal(m.n_tensors, 47);
    int i = slm_st_model_find(&m, "model.layers.4.mlp.down_proj.weight");
    assert_true(i >= 0);
    slm_tensor t;
    slm_st_model_view(&m, (size_t)i, &t);
    assert_int_equal(t.dtype, SLM_DTYPE_F32);
    assert_int_equal(t.ndim, 2);
    assert_int_equal(t.shape[0], 64);
    assert_int_equal(t.shape[1], 172);
    assert_int_equal(t.nbytes, 64 * 172 * 4);
    assert_int_equal(m.shards[0].data_start, 8 + 4848); /* header length from the fixture README */
    slm_st_model_close(&m);
}

static void test_st_reads_sharded(void **st) {
    (void)st;
    slm_err e = {0};
    slm_st_model m;
    assert_int_equal(slm_st_model_open(&m, fixture_path("models/tinystories-3M-sharded"), &e), SLM_OK);
    assert_int_equal(m.n_shards, 2);
    assert_int_equal(m.n_tensors, 39);
    assert_int_equal(m.shards[0].n, 20);
    assert_int_equal(m.shards[1].n, 19);
    uint64_t total = 0;
    for (size_t i = 0; i < m.n_tensors; i++) {
        slm_tensor t;
        slm_st_model_view(&m, i, &t);
        assert_int_equal(t.dtype, SLM_DTYPE_F16);
        total += t.nbytes;
    }
    assert_int_equal(total, 6820352); /* index.json's metadata.total_size */
    /* same values as the F32 original, rounded to F16 */
    slm_st_model f;
    assert_int_equal(slm_st_model_open(&f, fixture_path("models/tinystories-3M"), &e), SLM_OK);
    slm_tensor a, b;
    slm_st_model_view(&m, (size_t)slm_st_model_find(&m, "lm_head.weight"), &a);
    slm_st_model_view(&f, (size_t)slm_st_model_find(&f, "lm_head.weight"), &b);
    for (int k = 0; k < 1000; k++) {
        float x;
        memcpy(&x, (const uint8_t *)b.data + 4 * k, 4);
        uint16_t h;
        memcpy(&h, (const uint8_t *)a.data + 2 * k, 2);
        assert_int_equal(h, slm_f32_to_f16(x));
    }
    slm_st_model_close(&f);
    slm_st_model_close(&m);
}

static void test_st_writer_roundtrip(void **st) {
    (void)st;
    slm_err e = {0};
    slm_st_writer w;
    slm_st_writer_init(&w);
    assert_int_equal(slm_st_writer_meta(&w, "format", "pt", &e), SLM_OK);
    const int64_t s1[2] = {3, 4}, s2[1] = {5}, s3[1] = {1}; /* s3 unused: 0 dims */
    assert_int_equal(slm_st_writer_add(&w, "model.a", SLM_DTYPE_F32, 2, s1, &e), SLM_OK);
    assert_int_equal(slm_st_writer_add(&w, "model.b", SLM_DTYPE_BF16, 1, s2, &e), SLM_OK);
    assert_int_equal(slm_st_writer_add(&w, "scalar", SLM_DTYPE_F16, 0, s3, &e), SLM_OK);
    assert_int_equal(slm_st_writer_add(&w, "model.a", SLM_DTYPE_F32, 1, s2, &e), SLM_E_ARG);
    float a[12];
    uint16_t b[5], c = slm_f32_to_f16(0.5f);
    for (int i = 0; i < 12; i++) a[i] = (float)i * 0.25f;
    for (int i = 0; i < 5; i++) b[i] = slm_f32_to_bf16((float)i - 2);
    const char *path = tmp_path("w.safetensors");
    slm_afile f;
    assert_int_equal(slm_afile_open(&f, path, &e), SLM_OK);
    assert_int_equal(slm_st_writer_begin(&w, &f, &e), SLM_OK);
    assert_int_equal(slm_st_writer_put(&w, a, sizeof a, &e), SLM_OK);
    assert_int_equal(slm_st_writer_put(&w, b, sizeof b, &e), SLM_OK);
    assert_int_equal(slm_st_writer_put(&w, &c, 2, &e), SLM_OK);
    assert_int_equal(slm_st_writer_end(&w, &e), SLM_OK);
    assert_int_equal(slm_afile_commit(&f, &e), SLM_OK);
    slm_st_writer_free(&w);
    slm_st_file r;
    assert_int_equal(slm_st_open(&r, path, &e), SLM_OK);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.data_start % 8, 0); /* header padded to 8 bytes, as the reference writer does */
    slm_tensor t;
    slm_st_view(&r, 0, &t);
    assert_string_equal(t.name, "model.a");
    assert_memory_equal(t.data, a, sizeof a);
    slm_st_view(&r, 1, &t);
    assert_int_equal(t.dtype, SLM_DTYPE_BF16);
    assert_memory_equal(t.data, b, sizeof b);
    slm_st_view(&r, 2, &t);
    assert_int_equal(t.ndim, 0);
    assert_int_equal(t.nbytes, 2);
    slm_st_close(&r);
}

static void test_hf_config_and_names(void **st) {
    (void)st;
    slm_err e = {0};
    slm_model_config c;
    assert_int_equal(slm_hf_config_load(&c, fixture_path("models/stories260K"), &e), SLM_OK);
    assert_int_equal(c.arch, SLM_ARCH_LLAMA);
    assert_int_equal(c.n_embd, 64);
    assert_int_equal(c.n_ff, 172);
    assert_int_equal(c.n_head_kv, 4);
    assert_int_equal(c.head_dim, 8);
    assert_true(c.tied_embeddings);
    char out[64];
    int perm;
    assert_int_equal(slm_hf_name_to_gguf(&c, "model.layers.3.self_attn.k_proj.weight", out, sizeof out, &perm), SLM_NAME_MAPPED);
    assert_string_equal(out, "blk.3.attn_k.weight");
    assert_int_equal(perm, 4);
    assert_int_equal(slm_hf_name_to_gguf(&c, "model.layers.3.self_attn.q_proj.weight", out, sizeof out, &perm), SLM_NAME_MAPPED);
    assert_int_equal(perm, 8);
    assert_int_equal(slm_hf_name_to_gguf(&c, "model.layers.0.mlp.down_proj.weight", out, sizeof out, &perm), SLM_NAME_MAPPED);
    assert_string_equal(out, "blk.0.ffn_down.weight");
    assert_int_equal(perm, 0);
    assert_int_equal(slm_hf_name_to_gguf(&c, "model.layers.9.mlp.down_proj.weight", out, sizeof out, &perm), SLM_NAME_UNKNOWN);
    assert_int_equal(slm_hf_name_to_gguf(&c, "model.layers.0.self_attn.rotary_emb.inv_freq", out, sizeof out, &perm), SLM_NAME_SKIP);
    /* the permutation: head_dim 8 -> GGUF rows 0..7 come from HF rows 0 4 1 5 2 6 3 7 */
    const int64_t want[8] = {0, 4, 1, 5, 2, 6, 3, 7};
    for (int r = 0; r < 8; r++) assert_int_equal(slm_qk_src_row(r, 64, 8), want[r]);
    assert_int_equal(slm_qk_src_row(9, 64, 8), 12); /* second head, pair 0 element 1 */
    static const char qwen[] = "{\"architectures\":[\"Qwen2ForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":128,"
                               "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"vocab_size\":100,"
                               "\"rms_norm_eps\":1e-6,\"rope_theta\":1000000.0}";
    assert_int_equal(slm_hf_config_parse(&c, qwen, sizeof qwen - 1, "config.json", &e), SLM_OK);
    assert_int_equal(c.arch, SLM_ARCH_QWEN2);
    assert_true(c.qkv_bias);
    assert_false(c.tied_embeddings);
    assert_int_equal(slm_hf_name_to_gguf(&c, "model.layers.1.self_attn.q_proj.bias", out, sizeof out, &perm), SLM_NAME_MAPPED);
    assert_string_equal(out, "blk.1.attn_q.bias");
    assert_int_equal(perm, 0); /* NEOX rope: no permutation */
    static const char odd[] = "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":128,"
                              "\"num_hidden_layers\":2,\"num_attention_heads\":3,\"vocab_size\":100,\"rms_norm_eps\":1e-6,"
                              "\"num_key_value_heads\":2}";
    assert_int_equal(slm_hf_config_parse(&c, odd, sizeof odd - 1, "config.json", &e), SLM_E_FORMAT);
    assert_string_equal(e.msg, "config.json: 3 attention heads are not a multiple of 2 kv heads");
}

/* An in-memory file: 8-byte length, header, data_size zero bytes. */
static uint8_t *st_image(const char *header, size_t data_size, size_t *n) {
    size_t hl = strlen(header);
    uint8_t *p = calloc(1, 8 + hl + data_size);
    assert_non_null(p);
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(p + 8, header, hl);
    *n = 8 + hl + data_size;
    return p;
}

/* 20000 entries: each found at its index (hash index), a repeated name anywhere refused,
   and an entry object with many keys checked for repeats too. */
static void test_st_many_entries(void **st) {
    (void)st;
    enum { N = 20000 };
    slm_err e = {0};
    char *h = malloc((size_t)N * 96 + 256);
    assert_non_null(h);
    for (int dup = 0; dup < 2; dup++) {
        size_t len = 0;
        h[len++] = '{';
        for (int i = 0; i < N; i++)
            len += (size_t)sprintf(h + len, "%s\"t.%05d\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[%d,%d]}", i ? "," : "",
                                   dup && i == N - 1 ? 777 : i, 4 * i, 4 * i + 4);
        h[len++] = '}';
        h[len] = 0;
        size_t n;
        uint8_t *img = st_image(h, (size_t)N * 4, &n);
        slm_st_file f;
        if (!dup) {
            assert_int_equal(slm_st_parse(&f, img, n, &e), SLM_OK);
            assert_int_equal(f.n, N);
            char nm[16];
            for (int i = 0; i < N; i++) {
                snprintf(nm, sizeof nm, "t.%05d", i);
                assert_int_equal(slm_st_find(&f, nm), i);
            }
            assert_int_equal(slm_st_find(&f, "t.20000"), -1);
            slm_st_close(&f);
        } else {
            assert_int_equal(slm_st_parse(&f, img, n, &e), SLM_E_FORMAT);
            assert_string_equal(e.msg, "duplicate tensor name 't.00777'");
        }
        free(img);
    }
    size_t len = (size_t)sprintf(h, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]");
    for (int i = 0; i < 100; i++) len += (size_t)sprintf(h + len, ",\"x%d\":0", i == 99 ? 42 : i);
    sprintf(h + len, "}}");
    size_t n;
    uint8_t *img = st_image(h, 4, &n);
    slm_st_file f;
    assert_int_equal(slm_st_parse(&f, img, n, &e), SLM_E_FORMAT);
    assert_string_equal(e.msg, "tensor 'w': duplicate key 'x42'");
    free(img);
    free(h);
}

/* Numbers out of an integer's range are refused before any conversion (converting them is
   undefined behaviour: UBSan's float-cast-overflow, and bos = INT_MIN on x86 before). */
static void test_hf_config_number_ranges(void **st) {
    (void)st;
    static const struct { const char *extra, *msg; } k[] = {
        {"\"head_dim\":9.3e18", "config.json: field \"head_dim\" must be a non-negative integer"},
        {"\"head_dim\":-9.3e18", "config.json: field \"head_dim\" must be a non-negative integer"},
        {"\"max_position_embeddings\":1e300", "config.json: field \"max_position_embeddings\" must be a non-negative integer"},
        {"\"bos_token_id\":1e10", "config.json: field \"bos_token_id\" must be a token id (an integer in [-1, 2^31))"},
        {"\"eos_token_id\":[-1e19, 2]", "config.json: field \"eos_token_id\" must be a token id (an integer in [-1, 2^31))"},
        {"\"eos_token_id\":2.5", "config.json: field \"eos_token_id\" must be a token id (an integer in [-1, 2^31))"},
        {"\"rope_theta\":1e39", "config.json: field \"rope_theta\" must be a positive number"},
        {"\"bos_token_id\":1,\"eos_token_id\":[2,3]", NULL},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        char json[512];
        int n = snprintf(json, sizeof json, "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":128,"
                         "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":100,\"rms_norm_eps\":1e-6,%s}", k[i].extra);
        slm_err e = {0};
        slm_model_config c;
        int rc = slm_hf_config_parse(&c, json, (size_t)n, "config.json", &e);
        if (!k[i].msg) {
            assert_int_equal(rc, SLM_OK);
            assert_int_equal(c.bos_id, 1);
            assert_int_equal(c.eos_id, 2);
            continue;
        }
        assert_int_equal(rc, SLM_E_FORMAT);
        assert_string_equal(e.msg, k[i].msg);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hf_config_number_ranges),
        cmocka_unit_test(test_st_many_entries),
        cmocka_unit_test(test_st_reads_fixture),
        cmocka_unit_test(test_st_reads_sharded),
        cmocka_unit_test(test_st_writer_roundtrip),
        cmocka_unit_test(test_hf_config_and_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
