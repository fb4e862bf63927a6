/* recipe.c - per-tensor type selection, mirroring llama.cpp v0.5.0's llama-quant.cpp
 * (llama_tensor_get_type) for the dense Llama/Qwen2 models slm handles: no experts, not
 * Falcon, not 70B. Counters over attn_v / ffn_down advance in processing order, as there.
 */
#include "recipe.h"

#include <ctype.h>
#include <regex.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/dtype.h"
#include "core/ecma_re.h"
#include "quantize/qtypes.h"
#include "core/slm.h"
#include "model/catalog.h"

enum { /* llama_ftype, never renumbered */
    FT_F32 = 0, FT_F16 = 1, FT_Q4_0 = 2, FT_Q4_1 = 3, FT_Q8_0 = 7, FT_Q5_0 = 8, FT_Q5_1 = 9,
    FT_Q2_K = 10, FT_Q3_K_S = 11, FT_Q3_K_M = 12, FT_Q3_K_L = 13, FT_Q4_K_S = 14, FT_Q4_K_M = 15,
    FT_Q5_K_S = 16, FT_Q5_K_M = 17, FT_Q6_K = 18, FT_IQ2_XXS = 19, FT_IQ2_XS = 20, FT_Q2_K_S = 21, FT_IQ3_XS = 22,
    FT_IQ3_XXS = 23, FT_IQ1_S = 24, FT_IQ4_NL = 25, FT_IQ3_S = 26, FT_IQ3_M = 27, FT_IQ2_S = 28, FT_IQ2_M = 29,
    FT_IQ4_XS = 30, FT_IQ1_M = 31, FT_BF16 = 32,
};

static const slm_ftype_desc k_ftypes[] = {
    {"F32", FT_F32, SLM_DTYPE_F32, 0, 1, "32-bit float, lossless"},
    {"F16", FT_F16, SLM_DTYPE_F16, 0, 1, "16-bit float (1-D tensors stay F32)"},
    {"BF16", FT_BF16, SLM_DTYPE_BF16, 0, 1, "bfloat16 (1-D tensors stay F32)"},
    {"Q8_0", FT_Q8_0, SLM_DTYPE_Q8_0, 0, 1, "8.5 bpw, near lossless"},
    {"Q6_K", FT_Q6_K, SLM_DTYPE_Q6_K, 0, 1, "6.56 bpw k-quant"},
    {"Q5_K_M", FT_Q5_K_M, SLM_DTYPE_Q5_K, 0, 1, "Q5_K, Q6_K for half of attn_v/ffn_down"},
    {"Q5_K_S", FT_Q5_K_S, SLM_DTYPE_Q5_K, 0, 1, "Q5_K everywhere but output"},
    {"Q5_1", FT_Q5_1, SLM_DTYPE_Q5_1, 0, 1, "6 bpw, 32-blocks with min"},
    {"Q5_0", FT_Q5_0, SLM_DTYPE_Q5_0, 0, 1, "5.5 bpw, 32-blocks"},
    {"Q4_K_M", FT_Q4_K_M, SLM_DTYPE_Q4_K, 0, 1, "Q4_K, Q6_K for half of attn_v/ffn_down (recommended)"},
    {"Q4_K_S", FT_Q4_K_S, SLM_DTYPE_Q4_K, 0, 1, "Q4_K, Q5_K for the first attn_v/ffn_down"},
    {"Q4_1", FT_Q4_1, SLM_DTYPE_Q4_1, 0, 1, "5 bpw, 32-blocks with min"},
    {"Q4_0", FT_Q4_0, SLM_DTYPE_Q4_0, 0, 1, "4.5 bpw, 32-blocks"},
    {"IQ4_XS", FT_IQ4_XS, SLM_DTYPE_IQ4_XS, 0, 1, "4.25 bpw non-linear 256-blocks"},
    {"IQ4_NL", FT_IQ4_NL, SLM_DTYPE_IQ4_NL, 0, 1, "4.5 bpw non-linear 32-blocks"},
    {"Q3_K_L", FT_Q3_K_L, SLM_DTYPE_Q3_K, 0, 1, "Q3_K, Q5_K for attn_v/ffn_down/attn_output"},
    {"Q3_K_M", FT_Q3_K_M, SLM_DTYPE_Q3_K, 0, 1, "Q3_K, Q4_K/Q5_K for attn_v/ffn_down/attn_output"},
    {"Q3_K_S", FT_Q3_K_S, SLM_DTYPE_Q3_K, 0, 1, "Q3_K everywhere but output"},
    {"Q2_K", FT_Q2_K, SLM_DTYPE_Q2_K, 0, 1, "Q2_K, Q3_K/Q4_K for attn_v/ffn_down/attn_output"},
    {"Q2_K_S", FT_Q2_K_S, SLM_DTYPE_Q2_K, 1, 1, "Q2_K with importance weights (needs calibration)"},
    {"IQ3_M", FT_IQ3_M, SLM_DTYPE_IQ3_S, 0, 1, "3.66 bpw IQ3_S mix"},
    {"IQ3_S", FT_IQ3_S, SLM_DTYPE_IQ3_S, 0, 1, "3.44 bpw lattice 256-blocks"},
    {"IQ3_XS", FT_IQ3_XS, SLM_DTYPE_IQ3_S, 1, 1, "3.3 bpw IQ3_S/IQ3_XXS mix (needs calibration)"},
    {"IQ3_XXS", FT_IQ3_XXS, SLM_DTYPE_IQ3_XXS, 1, 1, "3.06 bpw lattice (needs calibration)"},
    {"IQ2_M", FT_IQ2_M, SLM_DTYPE_IQ2_S, 1, 1, "2.7 bpw IQ2_S mix (needs calibration)"},
    {"IQ2_S", FT_IQ2_S, SLM_DTYPE_IQ2_XS, 1, 1, "2.5 bpw IQ2_XS mix (needs calibration)"},
    {"IQ2_XS", FT_IQ2_XS, SLM_DTYPE_IQ2_XS, 1, 1, "2.31 bpw lattice (needs calibration)"},
    {"IQ2_XXS", FT_IQ2_XXS, SLM_DTYPE_IQ2_XXS, 1, 1, "2.06 bpw lattice (needs calibration)"},
    {"IQ1_M", FT_IQ1_M, SLM_DTYPE_IQ1_M, 1, 1, "1.75 bpw (needs calibration)"},
    {"IQ1_S", FT_IQ1_S, SLM_DTYPE_IQ1_S, 1, 1, "1.56 bpw (needs calibration)"},
};

const slm_ftype_desc *slm_ftype_at(size_t i) { return i < SLM_ARRAY_LEN(k_ftypes) ? &k_ftypes[i] : NULL; }

const slm_ftype_desc *slm_ftype_find(const char *name) {
    for (size_t i = 0; i < SLM_ARRAY_LEN(k_ftypes); i++) {
        const char *a = k_ftypes[i].name, *b = name;
        while (*a && *b && *a == toupper((unsigned char)*b)) a++, b++;
        if (!*a && !*b) return &k_ftypes[i];
    }
    /* llama.cpp aliases */
    if (!strcasecmp(name, "Q3_K")) return slm_ftype_find("Q3_K_M");
    if (!strcasecmp(name, "Q4_K")) return slm_ftype_find("Q4_K_M");
    if (!strcasecmp(name, "Q5_K")) return slm_ftype_find("Q5_K_M");
    return NULL;
}

const slm_ftype_desc *slm_ftype_by_id(int ftype) {
    for (size_t i = 0; i < SLM_ARRAY_LEN(k_ftypes); i++)
        if (k_ftypes[i].ftype == ftype) return &k_ftypes[i];
    return NULL;
}

static int layer_of(const char *name) {
    int l = -1;
    if (sscanf(name, "blk.%d.", &l) != 1) l = -1;
    return l;
}

int slm_recipe_order(const char *a, const char *b) {
    int la = layer_of(a), lb = layer_of(b);
    if (la != lb) return la < lb ? -1 : 1;
    return strcmp(a, b);
}

/* 2-D (or more) tensors whose name ends in "weight", except norms. */
static int allows_quantization(const slm_recipe_tensor *t) {
    size_t n = strlen(t->name);
    if (t->ndim < 2 || n < 6 || strcmp(t->name + n - 6, "weight")) return 0;
    return strstr(t->name, "_norm.weight") == NULL;
}

static int use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

typedef struct state {
    int n_attention_wv, i_attention_wv, i_ffn_down, i_ffn_gate, i_ffn_up, n_layer, tied, n_gqa;
} state;

static int is_iq_low(int ftype) { /* llama.cpp's IQ1/IQ2 file types */
    return ftype == FT_IQ2_XXS || ftype == FT_IQ2_XS || ftype == FT_IQ1_S || ftype == FT_IQ2_S || ftype == FT_IQ2_M ||
           ftype == FT_IQ1_M;
}

/* The output (and a tied token embedding) of llama_tensor_get_type_impl. */
static int output_type(int t, int ftype, int64_t ncols) {
    if (ncols % slm_dtype_get(t)->blck_size) return SLM_DTYPE_Q8_0;
    if (is_iq_low(ftype) || ftype == FT_IQ3_XXS) return SLM_DTYPE_Q5_K;
    return t != SLM_DTYPE_Q8_0 ? SLM_DTYPE_Q6_K : t;
}

/* llama_tensor_get_type_impl for the IQ1/IQ2 file types (no experts). */
static int iq_low_type(state *qs, int t, int ftype, int cat) {
    const int s_or_m = ftype == FT_IQ2_S || ftype == FT_IQ2_M;
    if (cat == SLM_CAT_ATTN_V || cat == SLM_CAT_ATTN_QKV) { /* category_is_attn_v */
        t = qs->n_gqa >= 4 ? SLM_DTYPE_Q4_K : s_or_m ? SLM_DTYPE_IQ3_S : SLM_DTYPE_Q2_K;
        ++qs->i_attention_wv;
    } else if (cat == SLM_CAT_FFN_DOWN) {
        if (qs->i_ffn_down < qs->n_layer / 8) t = s_or_m ? SLM_DTYPE_IQ3_S : SLM_DTYPE_Q2_K;
        ++qs->i_ffn_down;
    } else if (cat == SLM_CAT_ATTN_OUT) {
        if (ftype == FT_IQ1_S || ftype == FT_IQ1_M) t = SLM_DTYPE_IQ2_XXS;
        else if (s_or_m) t = SLM_DTYPE_IQ3_S;
    }
    return t;
}

static int attn_v_type(state *qs, int t, int ftype, const slm_recipe_opts *o) {
    if (ftype == FT_Q2_K) t = qs->n_gqa >= 4 ? SLM_DTYPE_Q4_K : SLM_DTYPE_Q3_K;
    else if (ftype == FT_Q2_K_S && qs->n_gqa >= 4) t = SLM_DTYPE_Q4_K;
    else if (ftype == FT_IQ3_XXS) t = qs->n_gqa >= 4 ? SLM_DTYPE_Q4_K : !o->has_imatrix ? SLM_DTYPE_IQ3_S : SLM_DTYPE_IQ3_XXS;
    else if ((ftype == FT_IQ3_XS || ftype == FT_IQ3_S) && qs->n_gqa >= 4) t = SLM_DTYPE_Q4_K;
    else if (ftype == FT_IQ3_M) t = SLM_DTYPE_Q4_K;
    else if (ftype == FT_Q3_K_M) t = qs->i_attention_wv < 2 ? SLM_DTYPE_Q5_K : SLM_DTYPE_Q4_K;
    else if (ftype == FT_Q3_K_L) t = SLM_DTYPE_Q5_K;
    else if ((ftype == FT_IQ4_NL || ftype == FT_IQ4_XS) && qs->n_gqa >= 4) t = SLM_DTYPE_Q5_K;
    else if ((ftype == FT_Q4_K_M || ftype == FT_Q5_K_M) && use_more_bits(qs->i_attention_wv, qs->n_attention_wv)) t = SLM_DTYPE_Q6_K;
    else if (ftype == FT_Q4_K_S && qs->i_attention_wv < 4) t = SLM_DTYPE_Q5_K;
    ++qs->i_attention_wv;
    return t;
}

static int ffn_down_type(state *qs, int t, int ftype, const slm_recipe_opts *o) {
    int i = qs->i_ffn_down, n = qs->n_layer;
    if (ftype == FT_Q2_K) t = SLM_DTYPE_Q3_K;
    else if (ftype == FT_Q2_K_S) { if (i < n / 8) t = SLM_DTYPE_Q4_K; }
    else if (ftype == FT_IQ3_XXS && !o->has_imatrix) t = i < n / 8 ? SLM_DTYPE_Q4_K : SLM_DTYPE_Q3_K;
    else if (ftype == FT_Q3_K_M) t = i < n / 16 ? SLM_DTYPE_Q5_K : SLM_DTYPE_Q4_K;
    else if (ftype == FT_IQ3_M && i < n / 8) t = SLM_DTYPE_Q4_K;
    else if (ftype == FT_Q3_K_L) t = SLM_DTYPE_Q5_K;
    else if (ftype == FT_Q4_K_M) { if (use_more_bits(i, n)) t = SLM_DTYPE_Q6_K; }
    else if (i < n / 8 && (ftype == FT_IQ4_NL || ftype == FT_IQ4_XS) && !o->has_imatrix) t = SLM_DTYPE_Q5_K;
    else if (ftype == FT_Q5_K_M && use_more_bits(i, n)) t = SLM_DTYPE_Q6_K;
    else if (ftype == FT_Q4_K_S && i < n / 8) t = SLM_DTYPE_Q5_K;
    else if ((ftype == FT_Q4_0 || ftype == FT_Q5_0) && o->has_imatrix && i < n / 8)
        t = ftype == FT_Q4_0 ? SLM_DTYPE_Q4_1 : SLM_DTYPE_Q5_1;
    ++qs->i_ffn_down;
    return t;
}

/* llama_tensor_get_type_impl for the dense, non-Falcon, non-70B, expert-free case. */
static int impl_type(state *qs, int t, int ftype, int cat, int64_t ncols, const slm_recipe_opts *o) {
    if (cat == SLM_CAT_OUTPUT || (qs->tied && cat == SLM_CAT_TOKEN_EMBD))
        return o->output_type >= 0 ? o->output_type : output_type(t, ftype, ncols);
    if (cat == SLM_CAT_TOKEN_EMBD) {
        if (o->token_embd_type >= 0) return o->token_embd_type;
        if (ftype == FT_IQ2_XXS || ftype == FT_IQ2_XS || ftype == FT_IQ1_S || ftype == FT_IQ1_M) return SLM_DTYPE_Q2_K;
        if (ftype == FT_IQ2_S || ftype == FT_IQ2_M || ftype == FT_IQ3_XXS) return SLM_DTYPE_IQ3_S;
        return t;
    }
    if (is_iq_low(ftype)) return iq_low_type(qs, t, ftype, cat);
    if (cat == SLM_CAT_ATTN_V || cat == SLM_CAT_ATTN_QKV) return attn_v_type(qs, t, ftype, o); /* llama.cpp's attn_qkv branch comes after and is never reached */
    if (cat == SLM_CAT_ATTN_K || cat == SLM_CAT_ATTN_Q) {
        if (ftype == FT_IQ3_XS) return SLM_DTYPE_IQ3_XXS;
        if (ftype == FT_IQ3_XXS) return SLM_DTYPE_IQ2_S;
        return t;
    }
    if (cat == SLM_CAT_FFN_DOWN) return ffn_down_type(qs, t, ftype, o);
    if (cat == SLM_CAT_ATTN_OUT) {
        if (ftype == FT_Q2_K) t = SLM_DTYPE_Q3_K;
        else if (ftype == FT_IQ3_XXS) t = SLM_DTYPE_IQ3_S;
        else if (ftype == FT_Q3_K_M) t = SLM_DTYPE_Q4_K;
        else if (ftype == FT_Q3_K_L) t = SLM_DTYPE_Q5_K;
        else if (ftype == FT_IQ3_M) t = SLM_DTYPE_Q4_K;
        return t;
    }
    if (cat == SLM_CAT_FFN_GATE || cat == SLM_CAT_FFN_UP) {
        int *i = cat == SLM_CAT_FFN_GATE ? &qs->i_ffn_gate : &qs->i_ffn_up, n = qs->n_layer;
        if (ftype == FT_IQ3_XS && *i >= n / 8 && *i < 7 * n / 8) t = SLM_DTYPE_IQ3_XXS;
        ++*i;
    }
    return t;
}

int slm_recipe_requires_imatrix(const slm_recipe_opts *o, const char *name, int type) {
    int cat = (int)slm_catalog_category(name);
    if (cat == SLM_CAT_TOKEN_EMBD || cat == SLM_CAT_OUTPUT) return 0;
    switch (type) {
    case SLM_DTYPE_IQ3_XXS:
    case SLM_DTYPE_IQ2_XXS:
    case SLM_DTYPE_IQ2_XS:
    case SLM_DTYPE_IQ2_S:
    case SLM_DTYPE_IQ1_M:
    case SLM_DTYPE_IQ1_S: return 1;
    case SLM_DTYPE_Q2_K: return o->ftype->ftype == FT_Q2_K_S;
    default: return 0;
    }
}

/* tensor_type_fallback: a type whose block does not divide the row length. */
static int fallback(int t, int64_t ncols, int *fell) {
    int64_t bs = slm_dtype_get(t)->blck_size;
    if (ncols % bs == 0) return t;
    *fell = 1;
    int r = t;
    switch (t) {
    case SLM_DTYPE_IQ1_S:
    case SLM_DTYPE_IQ1_M:
    case SLM_DTYPE_IQ2_XXS:
    case SLM_DTYPE_IQ2_XS:
    case SLM_DTYPE_IQ2_S:
    case SLM_DTYPE_IQ3_XXS:
    case SLM_DTYPE_IQ3_S:
    case SLM_DTYPE_IQ4_XS: r = SLM_DTYPE_IQ4_NL; break;
    case SLM_DTYPE_Q2_K: case SLM_DTYPE_Q3_K: r = SLM_DTYPE_Q4_0; break;
    case SLM_DTYPE_Q4_K: r = SLM_DTYPE_Q5_0; break;
    case SLM_DTYPE_Q5_K: r = SLM_DTYPE_Q5_1; break;
    case SLM_DTYPE_Q6_K: r = SLM_DTYPE_Q8_0; break;
    default: break; /* a 32-block type: no smaller block to demote to */
    }
    if (ncols % slm_dtype_get(r)->blck_size) r = SLM_DTYPE_F16; /* llama.cpp: "must use F16 due to unusual shape" */
    return r;
}

int slm_recipe_plan(const slm_recipe_opts *o, const slm_model_config *c, const slm_recipe_tensor *t, size_t n,
                    int *out_types, int *fell_back, slm_err *err) {
    state qs = {0};
    qs.n_layer = c->n_layer;
    qs.n_gqa = c->n_head / c->n_head_kv;
    qs.tied = 1;
    for (size_t i = 0; i < n; i++) {
        int cat = (int)slm_catalog_category(t[i].name);
        qs.n_attention_wv += cat == SLM_CAT_ATTN_V || cat == SLM_CAT_ATTN_QKV;
        if (cat == SLM_CAT_OUTPUT) qs.tied = 0;
    }
    regex_t *re = NULL;
    int rc = SLM_OK;
    size_t n_re = 0;
    if (o->n_overrides) {
        re = calloc(o->n_overrides, sizeof(regex_t));
        if (!re) return slm_errf(err, SLM_E_NOMEM, "compiling --tensor-type patterns: out of memory");
        for (; n_re < o->n_overrides; n_re++) {
            char ere[1024];
            const char *pat = o->overrides[n_re].pattern;
            if ((rc = slm_ere_from_ecma(pat, ere, sizeof ere, err))) {
                char why[sizeof err->msg];
                snprintf(why, sizeof why, "%s", err->msg);
                slm_errf(err, SLM_E_ARG, "--tensor-type: %s", why);
                goto done;
            }
            if (regcomp(&re[n_re], ere, REG_EXTENDED | REG_NOSUB)) {
                rc = slm_errf(err, SLM_E_ARG, "--tensor-type: invalid regular expression '%s'", pat);
                goto done;
            }
            if (o->override_hits) o->override_hits[n_re] = 0;
        }
    }
    const int base = o->ftype->base_type;
    const int base_quantized = slm_dtype_get(base)->is_quantized;
    for (size_t i = 0; i < n; i++) {
        const slm_recipe_tensor *x = &t[i];
        int64_t ncols = x->shape[x->ndim - 1];
        int cat = (int)slm_catalog_category(x->name);
        fell_back[i] = 0;
        if (!allows_quantization(x)) { out_types[i] = x->cur_type; continue; }
        if (o->token_embd_type >= 0 && cat == SLM_CAT_TOKEN_EMBD) { out_types[i] = o->token_embd_type; continue; }
        if (o->output_type >= 0 && cat == SLM_CAT_OUTPUT) { out_types[i] = o->output_type; continue; }
        int ty = base;
        if (base_quantized) {
            int manual = 0;
            for (size_t k = 0; k < n_re && (!manual || o->override_hits); k++) {
                if (regexec(&re[k], x->name, 0, NULL, 0) != 0) continue;
                if (o->override_hits) o->override_hits[k]++;
                if (!manual) ty = o->overrides[k].type, manual = 1;
            }
            if (!manual && !o->pure) ty = impl_type(&qs, ty, o->ftype->ftype, cat, ncols, o);
            ty = fallback(ty, ncols, &fell_back[i]);
        }
        out_types[i] = ty;
    }
done:
    for (size_t k = 0; k < n_re; k++) regfree(&re[k]);
    free(re);
    return rc;
}
