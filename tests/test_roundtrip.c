/* test_roundtrip.c - safetensors -> `slm convert` -> GGUF -> our reader: every tensor's bytes
 * come back bit-identical (q/k rows in llama.cpp's permuted order, 1-D tensors widened to
 * F32 exactly) and every KV equals what the source implies. Drives the export pipeline
 * (export/export.h) as `slm convert` does, without the binary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/dtype.h"
#include "quantize/qtypes.h"
#include "formats/gguf.h"
#include "formats/hf_config.h"
#include "formats/model_src.h"
#include "formats/safetensors.h"
#include "tests/testutil.h"

static void roundtrip(const char *model, const char *outtype) {
    const char *dir = fixture_path(model);
    char out[4096];
    snprintf(out, sizeof out, "%s", tmp_path("rt.gguf"));
    unlink(out);
    test_export_file(dir, out, outtype);
    slm_err e = {0};
    slm_gguf g;
    slm_st_model st;
    slm_model_config c;
    assert_int_equal(slm_gguf_open(&g, out, &e), SLM_OK);
    assert_int_equal(slm_st_model_open(&st, dir, &e), SLM_OK);
    assert_int_equal(slm_hf_config_load(&c, dir, &e), SLM_OK);
    size_t matched = 0;
    for (size_t i = 0; i < st.n_tensors; i++) {
        slm_tensor s, t;
        slm_st_model_view(&st, i, &s);
        char name[64];
        int perm;
        assert_int_equal(slm_hf_name_to_gguf(&c, s.name, name, sizeof name, &perm), SLM_NAME_MAPPED);
        int gi = slm_gguf_find(&g, name);
        if (gi < 0) fail_msg("%s: %s missing from the GGUF", model, name);
        slm_gguf_view(&g, (size_t)gi, &t);
        assert_int_equal(t.ndim, s.ndim);
        assert_memory_equal(t.shape, s.shape, sizeof(int64_t) * (size_t)s.ndim);
        int64_t rows = s.ndim == 2 ? s.shape[0] : 1, cols = s.shape[s.ndim - 1];
        if (t.dtype == s.dtype) {
            size_t rowb = slm_dtype_row_size(s.dtype, cols);
            for (int64_t r = 0; r < rows; r++) {
                int64_t sr = perm ? slm_qk_src_row(r, rows, perm) : r;
                if (memcmp((const uint8_t *)t.data + (size_t)r * rowb, (const uint8_t *)s.data + (size_t)sr * rowb, rowb))
                    fail_msg("%s: %s row %lld differs from source row %lld", model, name, (long long)r, (long long)sr);
            }
        } else {
            /* only 1-D tensors widen to F32 (llama.cpp's converter keeps norms in F32) */
            assert_int_equal(s.ndim, 1);
            assert_int_equal(t.dtype, SLM_DTYPE_F32);
            float *want = malloc((size_t)cols * sizeof(float));
            if (s.dtype == SLM_DTYPE_F16) slm_f16_to_f32_row(want, s.data, cols);
            else slm_bf16_to_f32_row(want, s.data, cols);
            assert_memory_equal(t.data, want, (size_t)cols * sizeof(float));
            free(want);
        }
        matched++;
    }
    assert_int_equal(matched, g.n_tensors); /* nothing extra in the GGUF */
    /* every KV: the source's metadata, then quantization_version and file_type */
    slm_src src;
    slm_kvs want = {0};
    assert_int_equal(slm_src_open(&src, dir, &e), SLM_OK);
    assert_int_equal(slm_src_gguf_meta(&src, &want, &e), SLM_OK);
    int ft = 0;
    if (g.n_tensors) {
        int te = slm_gguf_find(&g, "token_embd.weight");
        ft = g.tensors[te].type == SLM_DTYPE_F16 ? 1 : g.tensors[te].type == SLM_DTYPE_BF16 ? 32 : 0;
    }
    assert_int_equal(slm_kvs_set_u32(&want, "general.quantization_version", 2, &e), SLM_OK);
    assert_int_equal(slm_kvs_set_u32(&want, "general.file_type", (uint32_t)ft, &e), SLM_OK);
    assert_int_equal(g.kv.n, want.n);
    for (size_t i = 0; i < want.n; i++) {
        assert_string_equal(g.kv.items[i].key, want.items[i].key);
        if (!slm_gguf_val_equal(&g.kv.items[i].val, &want.items[i].val)) fail_msg("%s: KV %s differs", model, want.items[i].key);
    }
    assert_non_null(slm_kvs_get(&g.kv, "tokenizer.ggml.tokens"));
    slm_kvs_free(&want);
    slm_src_close(&src);
    slm_st_model_close(&st);
    slm_gguf_close(&g);
}

static void test_roundtrip_stories260K_f32(void **st) { (void)st; roundtrip("models/stories260K", NULL); }
static void test_roundtrip_stories260K_f16(void **st) { (void)st; roundtrip("models/stories260K-f16", NULL); }
static void test_roundtrip_tinystories_bf16(void **st) { (void)st; roundtrip("models/tinystories-3M-bf16", NULL); }
static void test_roundtrip_tinystories_sharded(void **st) { (void)st; roundtrip("models/tinystories-3M-sharded", "F16"); }

/* general.alignment 1 is legal GGUF (ggml accepts it) and can put quantized blocks at odd
   offsets of the map: the model source must still read them (it once aborted). The same
   Q8_0 file is rewritten with alignment 1 and read back row for row. */
static void test_roundtrip_alignment_1(void **st) {
    (void)st;
    char q8[4096], odd[4096];
    snprintf(q8, sizeof q8, "%s", tmp_path("q8.gguf"));
    snprintf(odd, sizeof odd, "%s", tmp_path("odd.gguf"));
    test_export_file(fixture_path("models/stories260K"), q8, "Q8_0");
    slm_err e = {0};
    slm_gguf g;
    assert_int_equal(slm_gguf_open(&g, q8, &e), SLM_OK);
    slm_gguf_writer w;
    slm_gguf_writer_init(&w);
    for (size_t k = 0; k < g.kv.n; k++) assert_int_equal(slm_kvs_set_val(&w.kv, g.kv.items[k].key, &g.kv.items[k].val, &e), SLM_OK);
    assert_int_equal(slm_kvs_set_u32(&w.kv, "general.alignment", 1, &e), SLM_OK);
    if (slm_gguf_writer_meta_size(&w) % 2 == 0) { /* one u8 KV with a 4-byte key adds 17 bytes: odd data start */
        slm_gguf_val v;
        memset(&v, 0, sizeof v);
        v.type = SLM_GGUF_UINT8;
        assert_int_equal(slm_kvs_set_val(&w.kv, "x.od", &v, &e), SLM_OK);
    }
    for (size_t i = 0; i < g.n_tensors; i++)
        assert_int_equal(slm_gguf_writer_add(&w, g.tensors[i].name, g.tensors[i].type, g.tensors[i].ndim, g.tensors[i].shape, &e), SLM_OK);
    slm_afile f;
    assert_int_equal(slm_afile_open(&f, odd, &e), SLM_OK);
    assert_int_equal(slm_gguf_writer_begin(&w, &f, &e), SLM_OK);
    for (size_t i = 0; i < g.n_tensors; i++) {
        slm_tensor t;
        slm_gguf_view(&g, i, &t);
        assert_int_equal(slm_gguf_writer_put(&w, t.data, t.nbytes, &e), SLM_OK);
    }
    assert_int_equal(slm_gguf_writer_end(&w, &e), SLM_OK);
    assert_int_equal(slm_afile_commit(&f, &e), SLM_OK);
    slm_gguf_writer_free(&w);
    slm_gguf_close(&g);
    slm_src a, b;
    assert_int_equal(slm_src_open(&a, q8, &e), SLM_OK);
    assert_int_equal(slm_src_open(&b, odd, &e), SLM_OK);
    int n_odd = 0;
    for (size_t i = 0; i < a.n_tensors; i++) {
        const slm_src_tensor *t = &a.tensors[i];
        int j = slm_src_find(&b, t->name);
        assert_true(j >= 0);
        n_odd += (int)((uintptr_t)b.tensors[j].data & 1);
        int64_t nr = slm_src_nrows(t), nc = slm_src_ncols(t);
        float *x = malloc(sizeof(float) * (size_t)(nr * nc)), *y = malloc(sizeof(float) * (size_t)(nr * nc));
        assert_int_equal(slm_src_read_rows(&a, i, 0, nr, x, &e), SLM_OK);
        assert_int_equal(slm_src_read_rows(&b, (size_t)j, 0, nr, y, &e), SLM_OK);
        assert_memory_equal(x, y, sizeof(float) * (size_t)(nr * nc));
        free(x);
        free(y);
    }
    assert_true(n_odd > 0); /* the case this test is about did occur */
    slm_src_close(&b);
    slm_src_close(&a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_stories260K_f32),
        cmocka_unit_test(test_roundtrip_stories260K_f16),
        cmocka_unit_test(test_roundtrip_tinystories_bf16),
        cmocka_unit_test(test_roundtrip_tinystories_sharded),
        cmocka_unit_test(test_roundtrip_alignment_1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
