/* export_awq.c - the AWQ pre-pass of the export (export.h): before any tensor is streamed, per
 * block and per linear group (q/k/v after attn_norm, gate/up after ffn_norm, o after v, down
 * after up) a sample of the group's rows is read, quantize/awq.h searches the scales, and the
 * folding is recorded per output tensor (col_mul, row_div, awq_w) for write_tensor to apply.
 * One group's rows in memory at a time.
 */
#include <stdio.h>
#include <string.h>

#include "core/dtype.h"
#include "core/mem.h"
#include "core/slm.h"
#include "export/export.h"
#include "quantize/awq.h"

/* output index of a tensor by name, or -1 */
static long find_out(const slm_export *x, const char *name) {
    for (size_t i = 0; i < x->n; i++)
        if (!strcmp(x->rep.tensors[i].name, name)) return (long)i;
    return -1;
}

typedef struct awq_spec {
    int kind;               /* slm_calib_kind of the consumers' input */
    const char *prod, *prod_bias; /* producer weight (norm or matrix whose rows are divided) and its bias */
    const char *cons[3];
    int fused;              /* 1: phi3's fused q|k|v, gate|up only; 0: the other architectures only */
} awq_spec;

static const awq_spec k_groups[] = {
    {SLM_CALIB_ATTN_IN, "attn_norm.weight", NULL, {"attn_q.weight", "attn_k.weight", "attn_v.weight"}, 0},
    {SLM_CALIB_FFN_IN, "ffn_norm.weight", NULL, {"ffn_gate.weight", "ffn_up.weight", NULL}, 0},
    {SLM_CALIB_ATTN_OUT, "attn_v.weight", "attn_v.bias", {"attn_output.weight", NULL, NULL}, 0},
    {SLM_CALIB_FFN_DOWN, "ffn_up.weight", "ffn_up.bias", {"ffn_down.weight", NULL, NULL}, 0},
    /* phi3: the norms feed one fused matrix each (v -> o and up -> down are not folded: their
       producers' rows are parts of a fused matrix) */
    {SLM_CALIB_ATTN_IN, "attn_norm.weight", NULL, {"attn_qkv.weight", NULL, NULL}, 1},
    {SLM_CALIB_FFN_IN, "ffn_norm.weight", NULL, {"ffn_up.weight", NULL, NULL}, 1},
};

typedef struct awq_job {
    long ci[3], prod, bias;
    int nc;
    int64_t n, m; /* columns; scales (m < n: tied) */
    int32_t *tie;
    float *rows[3];
} awq_job;

static void job_free(awq_job *j) {
    slm_free(j->tie);
    for (int k = 0; k < 3; k++) slm_free(j->rows[k]);
}

/* rows (2-D) or elements (1-D) of output tensor i */
static int64_t prod_len(const slm_export *x, long i) {
    slm_tensor_info t = slm_tensor_src_info(x->src, x->order[i]);
    return t.ndim < 2 ? slm_tensor_info_ncols(&t) : slm_tensor_info_nrows(&t);
}

/* The tensors of group g of block l; 0 when the group cannot be folded (something missing, shapes
   that do not line up): it is then quantized as it is. */
static int job_find(const slm_export *x, int l, const awq_spec *g, awq_job *j) {
    char nm[SLM_MAX_NAME];
    memset(j, 0, sizeof *j);
    snprintf(nm, sizeof nm, "blk.%d.%s", l, g->prod);
    if ((j->prod = find_out(x, nm)) < 0) return 0;
    j->bias = -1;
    if (g->prod_bias) snprintf(nm, sizeof nm, "blk.%d.%s", l, g->prod_bias), j->bias = find_out(x, nm);
    for (int k = 0; k < 3 && g->cons[k]; k++) {
        snprintf(nm, sizeof nm, "blk.%d.%s", l, g->cons[k]);
        if ((j->ci[j->nc] = find_out(x, nm)) < 0) return 0;
        slm_tensor_info t = slm_tensor_src_info(x->src, x->order[j->ci[j->nc]]);
        if (t.ndim != 2 || (j->nc && slm_tensor_info_ncols(&t) != j->n)) return 0;
        j->n = slm_tensor_info_ncols(&t);
        j->nc++;
    }
    j->m = prod_len(x, j->prod);
    return j->m > 0 && (j->bias < 0 || prod_len(x, j->bias) == j->m);
}

/* GQA: o's columns of query head h take kv head h / (Hq / Hkv)'s scale */
static int job_tie(const slm_export *x, int l, awq_job *j, slm_err *err) {
    if (j->m == j->n) return 1;
    const int hq = slm_cfg_n_head(x->o.cfg, l), hkv = slm_cfg_n_head_kv(x->o.cfg, l);
    if (hq <= 0 || hkv <= 0 || hq % hkv || j->n % hq || j->m != (j->n / hq) * hkv) return 0;
    const int64_t d = j->n / hq;
    if (slm_alloc((void **)&j->tie, sizeof(int32_t) * (size_t)j->n, err, "AWQ ties")) return -1;
    for (int64_t c = 0; c < j->n; c++) j->tie[c] = (int32_t)((c / d) / (hq / hkv) * d + c % d);
    return 1;
}

/* the sampled rows of consumer k into the job, as the group's weight k */
static int read_sample(const slm_export *x, awq_job *j, int k, slm_awq_weight *w, slm_err *err) {
    const size_t si = x->order[j->ci[k]];
    slm_tensor_info t = slm_tensor_src_info(x->src, si);
    const int64_t rows = slm_tensor_info_nrows(&t), m = slm_awq_sample_rows(rows, j->n, x->o.mp.awq_score_flops);
    SLM_TRY(slm_alloc((void **)&j->rows[k], sizeof(float) * (size_t)(m * j->n), err, "AWQ rows"));
    for (int64_t r = 0; r < m; r++)
        SLM_TRY(x->src->read_f32(x->src->ud, si, r * rows / m, 1, j->rows[k] + r * j->n, err));
    slm_tensor_src_advise(x->src, si, 0, rows, 0);
    *w = (slm_awq_weight){j->rows[k], m, x->types[j->ci[k]], x->imatrix[j->ci[k]]};
    return SLM_OK;
}

static int dup_floats(float **dst, const float *src, int64_t n, slm_err *err) {
    SLM_TRY(slm_alloc((void **)dst, sizeof(float) * (size_t)n, err, "AWQ scales"));
    memcpy(*dst, src, sizeof(float) * (size_t)n);
    return SLM_OK;
}

/* records the folding of a searched group */
static int job_fold(slm_export *x, const awq_job *j, const float *s, const float *s_red, slm_err *err) {
    for (int k = 0; k < j->nc; k++) {
        const long i = j->ci[k];
        SLM_TRY(dup_floats(&x->col_mul[i], s, j->n, err));
        if (x->imatrix[i]) {
            SLM_TRY(dup_floats(&x->awq_w[i], x->imatrix[i], j->n, err));
            for (int64_t c = 0; c < j->n; c++) x->awq_w[i][c] /= s[c] * s[c];
        }
    }
    SLM_TRY(dup_floats(&x->row_div[j->prod], s_red, j->m, err));
    if (j->bias >= 0) SLM_TRY(dup_floats(&x->row_div[j->bias], s_red, j->m, err));
    return SLM_OK;
}

static int run_group(slm_export *x, int l, const awq_spec *g, slm_err *err) {
    awq_job j;
    slm_awq_group grp = {0};
    float *s = NULL, *s_red = NULL;
    char nm[SLM_MAX_NAME];
    int rc = SLM_OK;
    if (g->fused != (x->o.cfg->arch == SLM_ARCH_PHI3)) return SLM_OK;
    if (!job_find(x, l, g, &j)) return SLM_OK;
    if (j.prod >= 0 && (x->row_div[j.prod] || (j.bias >= 0 && x->row_div[j.bias]))) goto done; /* folded already */
    snprintf(nm, sizeof nm, "blk.%d.%s", l, g->cons[0]);
    const slm_calib_input *in = slm_calib_find(x->o.calib, nm);
    if (!in || in->n != j.n || in->count <= 0) goto done;
    int t = job_tie(x, l, &j, err);
    if (t <= 0) {
        rc = t < 0 ? err->code : SLM_OK;
        goto done;
    }
    grp = (slm_awq_group){.n = j.n, .count = in->count, .sum2 = in->sum2, .abs_sum = in->abs_sum, .gram = in->gram,
                          .n_red = j.tie ? j.m : 0, .tie = j.tie, .n_w = j.nc};
    for (int k = 0; k < j.nc && !rc; k++) rc = read_sample(x, &j, k, &grp.w[k], err);
    slm_awq_result res;
    if (!rc && !(rc = slm_alloc((void **)&s, sizeof(float) * (size_t)j.n, err, "AWQ")) &&
        !(rc = slm_alloc((void **)&s_red, sizeof(float) * (size_t)j.m, err, "AWQ")))
        rc = slm_awq_search(&grp, &x->o.mp, s, s_red, &res, err);
    float clip[SLM_AWQ_MAX_W] = {0};
    if (!rc && x->o.mp.awq_clip) {
        rc = slm_awq_clip_search(&grp, res.alpha > 0 ? s : NULL, clip, err);
        for (int k = 0; k < j.nc && !rc; k++) x->clip[j.ci[k]] = clip[k], x->awq_clipped += clip[k] < 1;
    }
    if (!rc && res.alpha > 0) {
        rc = job_fold(x, &j, s, j.tie ? s_red : s, err);
        x->awq_groups++;
        x->awq_alpha_sum += res.alpha;
        x->awq_err_base += res.err_base;
        x->awq_err += res.err;
    }
    if (rc) slm_err_prefix(err, "AWQ, block %d, %s", l, g->cons[0]);
done:
    slm_free(s);
    slm_free(s_red);
    job_free(&j);
    return rc;
}

int slm_export_awq_prepass(slm_export *x, slm_err *err) {
    const int n_layer = x->o.calib->n_layer;
    for (int l = 0; l < n_layer; l++) {
        if (x->o.progress) x->o.progress(x->o.progress_ud, "AWQ scale search", (size_t)l, (size_t)n_layer + x->n);
        for (size_t g = 0; g < SLM_ARRAY_LEN(k_groups); g++) SLM_TRY(run_group(x, l, &k_groups[g], err));
    }
    return SLM_OK;
}
