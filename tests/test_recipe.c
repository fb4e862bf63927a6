/* test_recipe.c - per-tensor type choices of llama.cpp's recipes (checked byte for byte
 * against llama-quantize in the interop suite; here the rules themselves, on a 32-layer
 * tensor list where the layer patterns show). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "quantize/recipe.h"
#include "tests/testutil.h"

#define NL 32
static const char *k_suffix[] = {"attn_k.weight", "attn_norm.weight", "attn_output.weight", "attn_q.weight", "attn_v.weight",
                                 "ffn_down.weight", "ffn_gate.weight", "ffn_norm.weight", "ffn_up.weight"};
enum { NS = sizeof k_suffix / sizeof k_suffix[0] };

typedef struct model32 {
    char names[3 + NL * NS][64];
    int64_t shapes[3 + NL * NS][2];
    slm_recipe_tensor t[3 + NL * NS];
    size_t n;
    slm_model_config c;
} model32;

/* llama.cpp order: output, output_norm, token_embd, then blocks (names sorted). */
static void make32(model32 *m, int64_t C, int tied) {
    memset(m, 0, sizeof *m);
    m->c = (slm_model_config){.arch = SLM_ARCH_LLAMA, .n_embd = (int)C, .n_ff = 2 * (int)C, .n_layer = NL, .n_head = 8, .n_head_kv = 2,
                              .head_dim = (int)C / 8, .n_vocab = 1000};
    size_t n = 0;
#define ADD(nm, nd, r, cl)                                           \
    do {                                                             \
        snprintf(m->names[n], 64, "%s", nm);                         \
        m->shapes[n][0] = (nd) == 1 ? (cl) : (r);                    \
        m->shapes[n][1] = (cl);                                      \
        m->t[n] = (slm_recipe_tensor){m->names[n], nd, (nd) == 1 ? &m->shapes[n][1] : m->shapes[n], SLM_DTYPE_F32}; \
        n++;                                                         \
    } while (0)
    if (!tied) ADD("output.weight", 2, 1000, C);
    ADD("output_norm.weight", 1, 1, C);
    ADD("token_embd.weight", 2, 1000, C);
    for (int l = 0; l < NL; l++) {
        for (int s = 0; s < NS; s++) {
            char nm[64];
            snprintf(nm, sizeof nm, "blk.%d.%s", l, k_suffix[s]);
            int one = strstr(k_suffix[s], "norm") != NULL;
            ADD(nm, one ? 1 : 2, strstr(k_suffix[s], "attn_k") || strstr(k_suffix[s], "attn_v") ? C / 4 : C, C);
        }
    }
    m->n = n;
#undef ADD
}

static int type_of(const model32 *m, const int *types, const char *name) {
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->names[i], name)) return types[i];
    fail_msg("no tensor %s", name);
    return -1;
}

static void plan(model32 *m, const slm_recipe_opts *o, int *types, int *fell) {
    slm_err e = {0};
    assert_int_equal(slm_recipe_plan(o, &m->c, m->t, m->n, types, fell, &e), SLM_OK);
}

static int more_bits(int i) { return i < NL / 8 || i >= 7 * NL / 8 || (i - NL / 8) % 3 == 2; }

static void test_recipe_q4_k_m_layer_pattern(void **st) {
    (void)st;
    static model32 m;
    int types[3 + NL * NS], fell[3 + NL * NS];
    make32(&m, 256, 0);
    slm_recipe_opts o = {.ftype = slm_ftype_find("q4_k_m"), .output_type = -1, .token_embd_type = -1};
    plan(&m, &o, types, fell);
    assert_int_equal(type_of(&m, types, "output.weight"), SLM_DTYPE_Q6_K);
    assert_int_equal(type_of(&m, types, "token_embd.weight"), SLM_DTYPE_Q4_K);
    assert_int_equal(type_of(&m, types, "output_norm.weight"), SLM_DTYPE_F32);
    int n_q6 = 0;
    for (int l = 0; l < NL; l++) {
        char v[64], d[64], q[64];
        snprintf(v, sizeof v, "blk.%d.attn_v.weight", l);
        snprintf(d, sizeof d, "blk.%d.ffn_down.weight", l);
        snprintf(q, sizeof q, "blk.%d.attn_q.weight", l);
        int want = more_bits(l) ? SLM_DTYPE_Q6_K : SLM_DTYPE_Q4_K;
        assert_int_equal(type_of(&m, types, v), want);
        assert_int_equal(type_of(&m, types, d), want);
        assert_int_equal(type_of(&m, types, q), SLM_DTYPE_Q4_K);
        n_q6 += want == SLM_DTYPE_Q6_K;
    }
    assert_int_equal(n_q6, 16); /* layers 0-3, 6, 9, ..., 27, 28-31 */
    for (size_t i = 0; i < m.n; i++) assert_int_equal(fell[i], 0);
}

static void test_recipe_q3_k_m_and_q2_k(void **st) {
    (void)st;
    static model32 m;
    int types[3 + NL * NS], fell[3 + NL * NS];
    make32(&m, 256, 0);
    slm_recipe_opts o = {.ftype = slm_ftype_find("Q3_K_M"), .output_type = -1, .token_embd_type = -1};
    plan(&m, &o, types, fell);
    assert_int_equal(type_of(&m, types, "blk.0.attn_v.weight"), SLM_DTYPE_Q5_K);  /* first two attn_v */
    assert_int_equal(type_of(&m, types, "blk.1.attn_v.weight"), SLM_DTYPE_Q5_K);
    assert_int_equal(type_of(&m, types, "blk.2.attn_v.weight"), SLM_DTYPE_Q4_K);
    assert_int_equal(type_of(&m, types, "blk.1.ffn_down.weight"), SLM_DTYPE_Q5_K); /* i < n/16 */
    assert_int_equal(type_of(&m, types, "blk.2.ffn_down.weight"), SLM_DTYPE_Q4_K);
    assert_int_equal(type_of(&m, types, "blk.5.attn_output.weight"), SLM_DTYPE_Q4_K);
    assert_int_equal(type_of(&m, types, "blk.5.ffn_up.weight"), SLM_DTYPE_Q3_K);
    o.ftype = slm_ftype_find("Q2_K");
    plan(&m, &o, types, fell);
    assert_int_equal(type_of(&m, types, "blk.7.attn_v.weight"), SLM_DTYPE_Q4_K); /* n_gqa = 4 */
    assert_int_equal(type_of(&m, types, "blk.7.ffn_down.weight"), SLM_DTYPE_Q3_K);
    assert_int_equal(type_of(&m, types, "blk.7.ffn_gate.weight"), SLM_DTYPE_Q2_K);
}

/* Row length 64 (stories260K): K types fall back as llama.cpp does; output goes Q8_0. */
static void test_recipe_fallback_narrow_rows(void **st) {
    (void)st;
    static model32 m;
    int types[3 + NL * NS], fell[3 + NL * NS];
    make32(&m, 64, 1);
    slm_recipe_opts o = {.ftype = slm_ftype_find("Q4_K_M"), .output_type = -1, .token_embd_type = -1};
    plan(&m, &o, types, fell);
    assert_int_equal(type_of(&m, types, "token_embd.weight"), SLM_DTYPE_Q8_0); /* tied: the output's rule */
    assert_int_equal(type_of(&m, types, "blk.0.attn_q.weight"), SLM_DTYPE_Q5_0);
    assert_int_equal(type_of(&m, types, "blk.0.attn_v.weight"), SLM_DTYPE_Q8_0); /* Q6_K -> Q8_0 */
    int nf = 0;
    for (size_t i = 0; i < m.n; i++) nf += fell[i];
    assert_int_equal(nf, NL * 7); /* the 7 matrices of every block; token_embd is Q8_0 directly */
    o.ftype = slm_ftype_find("IQ4_XS");
    plan(&m, &o, types, fell);
    assert_int_equal(type_of(&m, types, "blk.9.ffn_up.weight"), SLM_DTYPE_IQ4_NL);
}

static void test_recipe_overrides(void **st) {
    (void)st;
    static model32 m;
    int types[3 + NL * NS], fell[3 + NL * NS];
    make32(&m, 256, 0);
    slm_tt_override ov[2] = {{"attn_q", SLM_DTYPE_Q8_0}, {"^blk\\.1[0-9]\\.ffn_", SLM_DTYPE_Q2_K}};
    slm_recipe_opts o = {.ftype = slm_ftype_find("Q4_K_M"), .output_type = SLM_DTYPE_Q5_K, .token_embd_type = SLM_DTYPE_Q8_0,
                         .overrides = ov, .n_overrides = 2};
    plan(&m, &o, types, fell);
    assert_int_equal(type_of(&m, types, "output.weight"), SLM_DTYPE_Q5_K);
    assert_int_equal(type_of(&m, types, "token_embd.weight"), SLM_DTYPE_Q8_0);
    assert_int_equal(type_of(&m, types, "blk.3.attn_q.weight"), SLM_DTYPE_Q8_0);
    assert_int_equal(type_of(&m, types, "blk.12.ffn_down.weight"), SLM_DTYPE_Q2_K);
    assert_int_equal(type_of(&m, types, "blk.2.ffn_down.weight"), SLM_DTYPE_Q6_K);
    assert_int_equal(type_of(&m, types, "blk.12.ffn_norm.weight"), SLM_DTYPE_F32); /* norms never quantized */
    slm_recipe_opts p = {.ftype = slm_ftype_find("Q4_K_M"), .output_type = -1, .token_embd_type = -1, .pure = 1};
    plan(&m, &p, types, fell);
    assert_int_equal(type_of(&m, types, "blk.0.attn_v.weight"), SLM_DTYPE_Q4_K);
    assert_int_equal(type_of(&m, types, "output.weight"), SLM_DTYPE_Q4_K);
    slm_tt_override badre[1] = {{"(", SLM_DTYPE_Q8_0}};
    slm_recipe_opts b = {.ftype = slm_ftype_find("Q4_0"), .output_type = -1, .token_embd_type = -1, .overrides = badre, .n_overrides = 1};
    slm_err e = {0};
    assert_int_equal(slm_recipe_plan(&b, &m.c, m.t, m.n, types, fell, &e), SLM_E_ARG);
    assert_string_equal(e.msg, "--tensor-type: invalid regular expression '('");
}

static void test_recipe_names(void **st) {
    (void)st;
    assert_int_equal(slm_ftype_find("q4_k_m")->ftype, 15);
    assert_int_equal(slm_ftype_find("Q4_K")->ftype, 15); /* llama.cpp alias */
    assert_int_equal(slm_ftype_find("Q8_0")->ftype, 7);
    assert_int_equal(slm_ftype_find("BF16")->ftype, 32);
    assert_null(slm_ftype_find("Q4_K_X"));
    assert_true(slm_ftype_find("Q2_K_S")->needs_imatrix);
    assert_true(slm_recipe_order("output.weight", "blk.0.attn_k.weight") < 0);
    assert_true(slm_recipe_order("blk.2.ffn_up.weight", "blk.10.attn_k.weight") < 0); /* numeric blocks */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recipe_q4_k_m_layer_pattern),
        cmocka_unit_test(test_recipe_q3_k_m_and_q2_k),
        cmocka_unit_test(test_recipe_fallback_narrow_rows),
        cmocka_unit_test(test_recipe_overrides),
        cmocka_unit_test(test_recipe_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
