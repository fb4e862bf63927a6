/* export_hf.c - tensors -> model.safetensors with HF names and row order, config.json, copies. */
#include "export_hf.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/dtype.h"
#include "core/mapfile.h"
#include "core/mem.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "model/catalog.h"

#define SLAB_FLOATS (1 << 20) /* f32 scratch of one slab of rows */

const char *const slm_export_hf_copied[] = {"tokenizer.json", "tokenizer.model", "tokenizer_config.json",
                                            "special_tokens_map.json", "added_tokens.json", "generation_config.json", NULL};

typedef struct hf_tensor {
    char name[128];
    int heads; /* > 0: GGUF q/k rows go back to HF's rotate-half order */
} hf_tensor;

static int names(const slm_export_hf_opts *o, hf_tensor *t, slm_err *err) {
    for (size_t i = 0; i < o->src->n_tensors; i++) {
        slm_tensor_info in = slm_tensor_src_info(o->src, i);
        int l, role = slm_catalog_parse_gguf(in.name, &l);
        if (role < 0) return slm_errf(err, SLM_E_UNSUPPORTED, "%s: tensor %s has no Hugging Face name", in.file, in.name);
        slm_catalog_hf_name(role, l, t[i].name, sizeof t[i].name);
        t[i].heads = slm_catalog_permute_heads(o->cfg, role, l);
    }
    return SLM_OK;
}

/* rows [r0, r0+n) of tensor i, in HF order, converted to dtype into out */
static int slab(const slm_export_hf_opts *o, size_t i, const hf_tensor *t, int64_t nrows, int64_t ncols, int64_t r0, int64_t n,
                float *f, float *g, void *out, slm_err *err) {
    SLM_TRY(o->src->read_f32(o->src->ud, i, r0, n, f, err));
    int64_t bad = slm_first_nonfinite(f, n * ncols);
    if (bad >= 0) {
        slm_tensor_info in = slm_tensor_src_info(o->src, i);
        return slm_errf(err, SLM_E_DATA, "%s: tensor %s has a non-finite value (row %lld)", in.file, in.name, (long long)(r0 + bad / ncols));
    }
    if (t->heads) { /* slabs hold whole heads: GGUF row r of the slab is HF row slm_qk_src_row(r) */
        const int64_t D = nrows / t->heads;
        for (int64_t r = 0; r < n; r++) {
            int64_t h = r / D, k = r % D, src = h * D + (k % 2) * (D / 2) + k / 2;
            memcpy(g + src * ncols, f + r * ncols, (size_t)ncols * sizeof(float));
        }
        f = g;
    }
    if (o->dtype == SLM_DTYPE_F16) slm_f32_to_f16_row(out, f, n * ncols);
    else if (o->dtype == SLM_DTYPE_BF16) slm_f32_to_bf16_row(out, f, n * ncols);
    else memcpy(out, f, (size_t)(n * ncols) * sizeof(float));
    return SLM_OK;
}

static int tensor_data(const slm_export_hf_opts *o, slm_st_writer *w, size_t i, const hf_tensor *t, float *f, float *g, void *out,
                       slm_err *err) {
    slm_tensor_info in = slm_tensor_src_info(o->src, i);
    const int64_t nrows = slm_tensor_info_nrows(&in), ncols = slm_tensor_info_ncols(&in);
    int64_t step = SLAB_FLOATS / ncols > 0 ? SLAB_FLOATS / ncols : 1;
    if (t->heads) {
        const int64_t D = nrows / t->heads;
        step = step < D ? D : step / D * D;
    }
    if (o->progress) o->progress(o->progress_ud, in.name, i, o->src->n_tensors);
    for (int64_t r0 = 0; r0 < nrows; r0 += step) {
        const int64_t n = nrows - r0 < step ? nrows - r0 : step;
        slm_tensor_src_advise(o->src, i, r0, n, 1);
        SLM_TRY(slab(o, i, t, nrows, ncols, r0, n, f, g, out, err));
        SLM_TRY(slm_st_writer_put(w, out, (size_t)(n * ncols) * (o->dtype == SLM_DTYPE_F32 ? 4u : 2u), err));
        slm_tensor_src_advise(o->src, i, r0, n, 0);
    }
    return SLM_OK;
}

static int safetensors(const slm_export_hf_opts *o, slm_adir *d, const hf_tensor *t, slm_err *err) {
    int64_t widest = 1, heads_rows = 1;
    slm_st_writer w;
    slm_st_writer_init(&w);
    int rc = slm_st_writer_meta(&w, "format", "pt", err);
    for (size_t i = 0; !rc && i < o->src->n_tensors; i++) {
        slm_tensor_info in = slm_tensor_src_info(o->src, i);
        const int64_t ncols = slm_tensor_info_ncols(&in);
        if (ncols > widest) widest = ncols;
        if (t[i].heads && slm_tensor_info_nrows(&in) / t[i].heads * ncols > heads_rows)
            heads_rows = slm_tensor_info_nrows(&in) / t[i].heads * ncols;
        rc = slm_st_writer_add(&w, t[i].name, o->dtype, in.ndim, in.shape, err);
    }
    /* scratch: a slab (at least one row, or one head of rows) as f32 twice, and in dtype */
    size_t cap = (size_t)(SLAB_FLOATS > widest ? SLAB_FLOATS : widest);
    if ((size_t)heads_rows > cap) cap = (size_t)heads_rows;
    float *f = NULL, *g = NULL;
    void *out = NULL;
    slm_afile file;
    int opened = 0;
    if (!rc) rc = slm_alloc((void **)&f, cap * sizeof(float), err, "slab");
    if (!rc) rc = slm_alloc((void **)&g, cap * sizeof(float), err, "slab");
    if (!rc) rc = slm_alloc(&out, cap * sizeof(float), err, "slab");
    if (!rc) rc = slm_adir_open_file(d, "model.safetensors", &file, err), opened = !rc;
    if (!rc) rc = slm_st_writer_begin(&w, &file, err);
    for (size_t i = 0; !rc && i < o->src->n_tensors; i++) rc = tensor_data(o, &w, i, &t[i], f, g, out, err);
    if (!rc) rc = slm_st_writer_end(&w, err);
    if (!rc) rc = slm_adir_commit_file(d, &file, err);
    else if (opened) slm_afile_abort(&file);
    slm_st_writer_free(&w);
    slm_free(f), slm_free(g), slm_free(out);
    return rc;
}

static int config(const slm_export_hf_opts *o, slm_adir *d, slm_err *err) {
    char path[4096], *json = NULL;
    slm_map m = {0};
    int have = 0, rc = SLM_OK;
    if (o->base_dir) {
        struct stat st;
        snprintf(path, sizeof path, "%s/config.json", o->base_dir);
        if (stat(path, &st) == 0) rc = slm_map_open(&m, path, err), have = !rc;
    }
    if (!rc) rc = slm_hf_config_write(o->cfg, have ? (const char *)m.data : NULL, have ? m.size : 0, o->dtype, &json, err);
    if (rc && have) slm_err_prefix(err, "%s", path);
    if (!rc) rc = slm_adir_write_file(d, "config.json", json, strlen(json), err);
    slm_free(json);
    if (have) slm_map_close(&m);
    return rc;
}

static int copies(const slm_export_hf_opts *o, slm_adir *d, slm_err *err) {
    for (int k = 0; o->base_dir && slm_export_hf_copied[k]; k++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", o->base_dir, slm_export_hf_copied[k]);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) SLM_TRY(slm_adir_copy_file(d, slm_export_hf_copied[k], path, err));
    }
    return SLM_OK;
}

int slm_export_hf(const slm_export_hf_opts *o, slm_adir *d, slm_err *err) {
    if (o->dtype != SLM_DTYPE_F32 && o->dtype != SLM_DTYPE_F16 && o->dtype != SLM_DTYPE_BF16)
        return slm_errf(err, SLM_E_ARG, "Hugging Face weights are F32, F16 or BF16");
    if (o->cfg->arch != SLM_ARCH_LLAMA && o->cfg->arch != SLM_ARCH_QWEN2 && o->cfg->arch != SLM_ARCH_QWEN3) /* e.g. Gemma's norms carry llama.cpp's +1 */
        return slm_errf(err, SLM_E_UNSUPPORTED, "writing %s models as a Hugging Face folder is not supported yet (write a GGUF)",
                        slm_arch_gguf_name(o->cfg->arch));
    hf_tensor *t = NULL;
    SLM_TRY(slm_calloc((void **)&t, o->src->n_tensors ? o->src->n_tensors : 1, sizeof *t, err, "tensor names"));
    int rc = config(o, d, err);
    if (!rc) rc = names(o, t, err);
    if (!rc) rc = safetensors(o, d, t, err);
    if (!rc) rc = copies(o, d, err);
    slm_free(t);
    return rc;
}
