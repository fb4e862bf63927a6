/* prune_select.c - structured pruning's choices: which FFN channels, attention head groups and
 * blocks stay. Scores are Minitron's mean |activation| (ffn_down input per channel, attention
 * output per head) when calibration statistics are given, else weight norms; blocks go by
 * ShortGPT's block influence (1 - cos(x in, x out)), which needs the statistics.
 * Non-uniform widths: scores normalized by their layer's mean, ranked across layers.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/slm.h"
#include "model/catalog.h"
#include "prune/prune_impl.h"

/* ---- weight-norm scores ------------------------------------------------------------------- */

/* Adds per row (cols NULL) or per column (rows NULL) sums of squares of tensor `name`. */
static int sq_norms(const slm_tensor_src *in, const char *name, double *rows, double *cols, slm_err *err) {
    int i = in->find(in->ud, name);
    if (i < 0) return slm_errf(err, SLM_E_FORMAT, "missing tensor '%s'", name);
    slm_tensor_info t = slm_tensor_src_info(in, (size_t)i);
    const int64_t nr = slm_tensor_info_nrows(&t), nc = slm_tensor_info_ncols(&t);
    const int64_t step = SLM_MAX(1, (1 << 20) / nc);
    float *buf;
    SLM_TRY(slm_alloc((void **)&buf, sizeof(float) * (size_t)(SLM_MIN(step, nr) * nc), err, "rows"));
    int rc = SLM_OK;
    for (int64_t r0 = 0; r0 < nr && !rc; r0 += step) {
        const int64_t n = SLM_MIN(step, nr - r0);
        if ((rc = in->read_f32(in->ud, (size_t)i, r0, n, buf, err))) break;
        for (int64_t r = 0; r < n; r++)
            for (int64_t c = 0; c < nc; c++) {
                const double v = buf[r * nc + c];
                if (rows) rows[r0 + r] += v * v;
                if (cols) cols[c] += v * v;
            }
        slm_tensor_src_advise(in, (size_t)i, r0, n, 0);
    }
    slm_free(buf);
    return rc;
}

/* FFN channel j: ||gate_j|| * ||up_j|| * ||down[:, j]||. A fused gate | up (phi3's ffn_up,
   2F rows and no ffn_gate) fills both halves. */
static int ffn_norm_scores(const slm_tensor_src *in, int l, int64_t F, float *out, slm_err *err) {
    double *g, *u, *d;
    char nm[SLM_MAX_NAME];
    SLM_TRY(slm_calloc((void **)&g, (size_t)(3 * F), sizeof(double), err, "scores"));
    u = g + F, d = u + F;
    const int fused = in->find(in->ud, slm_catalog_gguf_name(SLM_ROLE_FFN_GATE, l, nm, sizeof nm)) < 0;
    int rc = fused ? SLM_OK : sq_norms(in, nm, g, NULL, err);
    if (!rc) rc = sq_norms(in, slm_catalog_gguf_name(SLM_ROLE_FFN_UP, l, nm, sizeof nm), fused ? g : u, NULL, err);
    if (!rc) rc = sq_norms(in, slm_catalog_gguf_name(SLM_ROLE_FFN_DOWN, l, nm, sizeof nm), NULL, d, err);
    for (int64_t j = 0; !rc && j < F; j++) out[j] = (float)sqrt(g[j] * u[j] * d[j]);
    slm_free(g);
    return rc;
}

/* Head group g (one kv head and its q heads): ||v rows of g|| * sum over its q heads ||o cols||. */
static int head_norm_scores(const slm_tensor_src *in, const slm_model_config *c, int l, float *out, slm_err *err) {
    const int H = slm_cfg_n_head(c, l), G = slm_cfg_n_head_kv(c, l), D = c->head_dim;
    double *v, *o;
    char nm[SLM_MAX_NAME];
    SLM_TRY(slm_calloc((void **)&v, (size_t)(G * D + H * D), sizeof(double), err, "scores"));
    o = v + (size_t)G * D;
    int rc = sq_norms(in, slm_catalog_gguf_name(SLM_ROLE_ATTN_V, l, nm, sizeof nm), v, NULL, err);
    if (!rc) rc = sq_norms(in, slm_catalog_gguf_name(SLM_ROLE_ATTN_OUT, l, nm, sizeof nm), NULL, o, err);
    for (int g = 0; !rc && g < G; g++) {
        double sv = 0, so = 0;
        for (int k = 0; k < D; k++) sv += v[g * D + k];
        for (int h = g * (H / G); h < (g + 1) * (H / G); h++) {
            double s = 0;
            for (int k = 0; k < D; k++) s += o[h * D + k];
            so += sqrt(s);
        }
        out[g] = (float)(sqrt(sv) * so);
    }
    slm_free(v);
    return rc;
}

static int head_calib_scores(const slm_calib *cb, const slm_model_config *c, int l, float *out, slm_err *err) {
    const int H = slm_cfg_n_head(c, l), G = slm_cfg_n_head_kv(c, l);
    float hs[1024];
    if (H > 1024) return slm_errf(err, SLM_E_UNSUPPORTED, "layer %d: more than 1024 heads", l);
    SLM_TRY(slm_calib_attn_head_abs(cb, l, hs, err));
    for (int g = 0; g < G; g++) {
        double s = 0;
        for (int h = g * (H / G); h < (g + 1) * (H / G); h++) s += hs[h];
        out[g] = (float)s;
    }
    return SLM_OK;
}

/* ---- choosing ------------------------------------------------------------------------------ */

typedef struct unit { float s; int l, j; } unit;

static int cmp_unit(const void *a, const void *b) {
    const unit *x = a, *y = b;
    if (x->s != y->s) return x->s < y->s ? -1 : 1;
    if (x->l != y->l) return x->l < y->l ? -1 : 1;
    return (x->j > y->j) - (x->j < y->j);
}

/* Indices of the top `keep` of n scores, ascending, into out. */
static void top_sorted(const float *sc, int n, int keep, int32_t *out, unit *tmp) {
    if (n <= 0) return;
    for (int j = 0; j < n; j++) tmp[j] = (unit){-sc[j], 0, j};
    qsort(tmp, (size_t)n, sizeof *tmp, cmp_unit);
    char *on = (char *)(tmp + n);
    memset(on, 0, (size_t)n);
    for (int j = 0; j < keep; j++) on[tmp[j].j] = 1;
    for (int j = 0, k = 0; j < n; j++)
        if (on[j]) out[k++] = j;
}

/* Per-layer kept counts from global ranking of layer-normalized scores: the lowest `remove`
   units go, each layer keeping at least `floor_keep` (0: may lose none of its units below it). */
static int global_counts(float *const *sc, const int *n, int L, int64_t remove, int floor_keep, int *keep, slm_err *err) {
    int64_t total = 0;
    for (int l = 0; l < L; l++) total += n[l];
    unit *u;
    SLM_TRY(slm_alloc((void **)&u, sizeof(unit) * (size_t)(total ? total : 1), err, "ranking"));
    int64_t k = 0;
    for (int l = 0; l < L; l++) {
        double mean = 0;
        for (int j = 0; j < n[l]; j++) mean += sc[l][j];
        mean = n[l] ? mean / n[l] : 1;
        for (int j = 0; j < n[l]; j++) u[k++] = (unit){(float)(mean > 0 ? sc[l][j] / mean : sc[l][j]), l, j};
        keep[l] = n[l];
    }
    qsort(u, (size_t)total, sizeof *u, cmp_unit);
    int64_t removed = 0;
    for (int64_t i = 0; i < total && removed < remove; i++)
        if (keep[u[i].l] > floor_keep) keep[u[i].l]--, removed++;
    slm_free(u);
    if (removed < remove) return slm_errf(err, SLM_E_ARG, "the sparsity leaves a layer less than %d units", floor_keep);
    return SLM_OK;
}

/* FFN: kept counts aligned to multiples of `align` (largest remainders keep the total). */
static void align_counts(int *keep, const int *n, int L, int align) {
    int64_t want = 0, got = 0;
    double rem[SLM_MAX_LAYERS];
    for (int l = 0; l < L; l++) want += keep[l];
    for (int l = 0; l < L; l++) {
        int a = n[l] % align ? 1 : align; /* a width that is no multiple keeps any count */
        int q = keep[l] / a * a;
        if (q < a) q = SLM_MIN(a, n[l]);
        rem[l] = (double)(keep[l] - q) / a;
        keep[l] = q;
        got += q;
    }
    while (got + align / 2 < want) {
        int best = -1;
        for (int l = 0; l < L; l++)
            if (keep[l] + align <= n[l] && (best < 0 || rem[l] > rem[best])) best = l;
        if (best < 0) break;
        keep[best] += align, got += align, rem[best] -= 1;
    }
}

int slm_prune_choose_ffn(slm_prune *p, int32_t **keep_idx, int *keep_n, slm_err *err) {
    const slm_model_config *c = &p->in_cfg;
    const int L = c->n_layer, align = p->o.align > 0 ? p->o.align : 32;
    float *sc[SLM_MAX_LAYERS];
    int n[SLM_MAX_LAYERS];
    int rc = SLM_OK;
    memset(sc, 0, sizeof sc);
    for (int l = 0; l < L && !rc; l++) {
        n[l] = slm_cfg_n_ff(c, l);
        if ((rc = slm_alloc((void **)&sc[l], sizeof(float) * (size_t)(n[l] ? n[l] : 1), err, "scores"))) break;
        if (!n[l]) continue;
        rc = p->o.calib ? slm_calib_ffn_channel_abs(p->o.calib, l, sc[l], err) : ffn_norm_scores(p->in, l, n[l], sc[l], err);
    }
    if (!rc && p->o.uniform) {
        for (int l = 0; l < L; l++) keep_n[l] = n[l] - (int)llround(p->o.sparsity * n[l]);
        align_counts(keep_n, n, L, align);
    } else if (!rc) {
        int64_t total = 0;
        for (int l = 0; l < L; l++) total += n[l];
        rc = global_counts(sc, n, L, llround(p->o.sparsity * (double)total), SLM_MIN(align, c->n_ff), keep_n, err);
        if (!rc) align_counts(keep_n, n, L, align);
    }
    unit *tmp = NULL;
    if (!rc) rc = slm_alloc((void **)&tmp, (sizeof(unit) + 1) * (size_t)c->n_ff + 16, err, "ranking");
    for (int l = 0; l < L && !rc; l++) {
        if ((rc = slm_alloc((void **)&keep_idx[l], sizeof(int32_t) * (size_t)(keep_n[l] + 1), err, "channels"))) break;
        top_sorted(sc[l], n[l], keep_n[l], keep_idx[l], tmp);
    }
    slm_free(tmp);
    for (int l = 0; l < L; l++) slm_free(sc[l]);
    return rc;
}

int slm_prune_choose_heads(slm_prune *p, int32_t **keep_idx, int *keep_n, slm_err *err) {
    const slm_model_config *c = &p->in_cfg;
    const int L = c->n_layer;
    float *sc[SLM_MAX_LAYERS];
    int n[SLM_MAX_LAYERS];
    int rc = SLM_OK;
    memset(sc, 0, sizeof sc);
    for (int l = 0; l < L && !rc; l++) {
        n[l] = slm_cfg_n_head_kv(c, l);
        if ((rc = slm_alloc((void **)&sc[l], sizeof(float) * (size_t)(n[l] ? n[l] : 1), err, "scores"))) break;
        if (!n[l]) continue;
        rc = p->o.calib ? head_calib_scores(p->o.calib, c, l, sc[l], err) : head_norm_scores(p->in, c, l, sc[l], err);
    }
    for (int l = 0; l < L && !rc && p->o.uniform; l++) {
        keep_n[l] = n[l] - (int)llround(p->o.sparsity * n[l]);
        if (n[l] && keep_n[l] <= 0)
            rc = slm_errf(err, SLM_E_ARG, "sparsity %g removes every head of layer %d (%d kv head groups)", p->o.sparsity, l, n[l]);
    }
    if (!rc && !p->o.uniform) {
        int64_t total = 0;
        for (int l = 0; l < L; l++) total += n[l];
        rc = global_counts(sc, n, L, llround(p->o.sparsity * (double)total), 1, keep_n, err);
        if (rc) rc = slm_errf(err, SLM_E_ARG, "sparsity %g removes every head of a layer (%lld head groups in %d layers)",
                              p->o.sparsity, (long long)total, L);
    }
    unit *tmp = NULL;
    if (!rc) rc = slm_alloc((void **)&tmp, (sizeof(unit) + 1) * (size_t)c->n_head_kv + 16, err, "ranking");
    for (int l = 0; l < L && !rc; l++) {
        if ((rc = slm_alloc((void **)&keep_idx[l], sizeof(int32_t) * (size_t)(keep_n[l] + 1), err, "heads"))) break;
        top_sorted(sc[l], n[l], keep_n[l], keep_idx[l], tmp);
    }
    slm_free(tmp);
    for (int l = 0; l < L; l++) slm_free(sc[l]);
    return rc;
}

int slm_prune_choose_layers(slm_prune *p, int *keep, slm_err *err) {
    const int L = p->in_cfg.n_layer;
    const int remove = (int)llround(p->o.sparsity * L);
    if (!p->o.calib) return slm_errf(err, SLM_E_ARG, "--method layers needs calibration statistics (--calibration or --calib-text)");
    if (remove >= L) return slm_errf(err, SLM_E_ARG, "sparsity %g removes every block (%d layers)", p->o.sparsity, L);
    float sc[SLM_MAX_LAYERS];
    int32_t idx[SLM_MAX_LAYERS];
    unit tmp[2 * SLM_MAX_LAYERS];
    for (int l = 0; l < L; l++) {
        const double cs = slm_calib_cos_sim(p->o.calib, l);
        if (isnan(cs)) return slm_errf(err, SLM_E_ARG, "calibration: no block cosine for layer %d", l);
        sc[l] = (float)(1.0 - cs); /* block influence: the higher, the more it matters */
    }
    top_sorted(sc, L, L - remove, idx, tmp);
    memset(keep, 0, sizeof(int) * (size_t)L);
    for (int k = 0; k < L - remove; k++) keep[idx[k]] = 1;
    return SLM_OK;
}
