/* prune.c - plan a pruning (structured: new shapes and config; unstructured: targets, thresholds,
 * statistics per tensor) and serve the pruned model as an slm_tensor_src, row slab by row slab.
 * Reads top to bottom: checks -> structured plan -> unstructured plan -> the rows.
 */
#include "prune/prune.h"

#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>

#include "core/dtype.h"
#include "core/mem.h"
#include "core/slm.h"
#include "core/thread.h"
#include "model/catalog.h"
#include "prune/prune_impl.h"

static const char *const k_names[] = {NULL, "magnitude", "wanda", "sparsegpt", "ffn", "heads", "layers"};

const char *slm_prune_method_name(int m) { return m >= 1 && m <= SLM_PRUNE_LAYERS ? k_names[m] : "?"; }

static int structured(int m) { return m == SLM_PRUNE_FFN || m == SLM_PRUNE_HEADS || m == SLM_PRUNE_LAYERS; }

/* ---- checks -------------------------------------------------------------------------------- */

static int check_opts(const slm_prune_opts *o, const slm_model_config *c, slm_err *err) {
    if (o->method < SLM_PRUNE_MAGNITUDE || o->method > SLM_PRUNE_LAYERS) return slm_errf(err, SLM_E_ARG, "unknown pruning method");
    if (!(o->sparsity >= 0.0 && o->sparsity < 1.0))
        return slm_errf(err, SLM_E_ARG, "sparsity %g is outside [0, 1)", o->sparsity);
    if (o->nm_m && (o->nm_n < 1 || o->nm_n >= o->nm_m || structured(o->method)))
        return slm_errf(err, SLM_E_ARG, "N:M %d:%d: need 0 < N < M, for magnitude, wanda or sparsegpt", o->nm_n, o->nm_m);
    if ((o->method == SLM_PRUNE_WANDA || o->method == SLM_PRUNE_SPARSEGPT) && !o->calib)
        return slm_errf(err, SLM_E_ARG, "--method %s needs calibration statistics (--calibration or --calib-text)",
                        slm_prune_method_name(o->method));
    if (o->method == SLM_PRUNE_HEADS && c->arch == SLM_ARCH_PHI3)
        return slm_errf(err, SLM_E_UNSUPPORTED, "--method heads: llama.cpp's phi3 needs heads x head dim = embedding length "
                        "(attn_output is square), so phi3 heads cannot be removed (use --method ffn or layers)");
    if (!o->calib) return SLM_OK;
    const slm_model_config *s = &o->calib->cfg;
    int same = s->n_embd == c->n_embd && o->calib->n_layer == c->n_layer && s->head_dim == c->head_dim;
    for (int l = 0; same && l < c->n_layer; l++)
        same = slm_cfg_n_ff(s, l) == slm_cfg_n_ff(c, l) && slm_cfg_n_head(s, l) == slm_cfg_n_head(c, l) &&
               slm_cfg_n_head_kv(s, l) == slm_cfg_n_head_kv(c, l);
    if (!same)
        return slm_errf(err, SLM_E_ARG, "the calibration statistics are for another model (%d layers of width %d, FFN %d; "
                        "the model has %d layers of width %d, FFN %d)", o->calib->n_layer, s->n_embd, s->n_ff, c->n_layer,
                        c->n_embd, c->n_ff);
    return SLM_OK;
}

/* ---- structured ---------------------------------------------------------------------------- */

typedef struct splan {
    int32_t *ff[SLM_MAX_LAYERS], *hg[SLM_MAX_LAYERS]; /* kept channels / kv groups (NULL: all) */
    int ffn[SLM_MAX_LAYERS], hgn[SLM_MAX_LAYERS];
    int keep[SLM_MAX_LAYERS], out_l[SLM_MAX_LAYERS];
} splan;

/* The output config from the choices; per-layer widths only when they differ. */
static int out_config(slm_prune *p, const splan *s, slm_err *err) {
    const slm_model_config *c = &p->in_cfg;
    slm_model_config *o = &p->cfg;
    int L = 0;
    o->n_ff = o->n_head = o->n_head_kv = 0;
    for (int l = 0; l < c->n_layer; l++) {
        if (!s->keep[l]) continue;
        const int H = slm_cfg_n_head(c, l), G = slm_cfg_n_head_kv(c, l);
        o->n_ff_l[L] = s->ff[l] ? s->ffn[l] : slm_cfg_n_ff(c, l);
        o->n_head_kv_l[L] = s->hg[l] ? s->hgn[l] : G;
        o->n_head_l[L] = G ? o->n_head_kv_l[L] * (H / G) : 0;
        o->n_ff = SLM_MAX(o->n_ff, o->n_ff_l[L]);
        o->n_head = SLM_MAX(o->n_head, o->n_head_l[L]);
        o->n_head_kv = SLM_MAX(o->n_head_kv, o->n_head_kv_l[L]);
        L++;
    }
    o->n_layer = L;
    o->per_layer = 0;
    for (int l = 0; l < L; l++)
        if (o->n_ff_l[l] != o->n_ff || o->n_head_l[l] != o->n_head || o->n_head_kv_l[l] != o->n_head_kv) o->per_layer = 1;
    if (o->per_layer && o->arch != SLM_ARCH_LLAMA)
        return slm_errf(err, SLM_E_ARG, "per-layer widths need llama.cpp's deci architecture (llama models only): use --uniform");
    return SLM_OK;
}

/* Rows of the kept heads: (kept groups) x (heads per group) x D, or groups x D for k/v. */
static int head_rows(const splan *s, int l, int per_group, int D, int32_t **out, int64_t *n, slm_err *err) {
    *n = (int64_t)s->hgn[l] * per_group * D;
    SLM_TRY(slm_alloc((void **)out, sizeof(int32_t) * (size_t)(*n ? *n : 1), err, "row list"));
    int64_t k = 0;
    for (int g = 0; g < s->hgn[l]; g++)
        for (int h = s->hg[l][g] * per_group; h < (s->hg[l][g] + 1) * per_group; h++)
            for (int d = 0; d < D; d++) (*out)[k++] = h * D + d;
    return SLM_OK;
}

static int copy_list(const int32_t *v, int n, int32_t **out, slm_err *err) {
    SLM_TRY(slm_alloc((void **)out, sizeof(int32_t) * (size_t)(n ? n : 1), err, "index list"));
    memcpy(*out, v, sizeof(int32_t) * (size_t)n);
    return SLM_OK;
}

/* Which input rows / columns tensor t (role at input layer l) keeps. */
static int tensor_lists(const slm_prune *p, const splan *s, slm_prune_tensor *t, int role, int l, slm_err *err) {
    const slm_model_config *c = &p->in_cfg;
    int64_t n = 0;
    int32_t **rows = &t->rows, **cols = &t->cols;
    const int H = slm_cfg_n_head(c, l), G = slm_cfg_n_head_kv(c, l), D = c->head_dim;
    const int ndim = t->info.ndim;
    const int fused_up = role == SLM_ROLE_FFN_UP && c->arch == SLM_ARCH_PHI3; /* gate | up rows */
    if (s->ff[l] && fused_up) {
        SLM_TRY(slm_alloc((void **)rows, sizeof(int32_t) * 2 * (size_t)(s->ffn[l] ? s->ffn[l] : 1), err, "index list"));
        for (int h = 0; h < 2; h++)
            for (int j = 0; j < s->ffn[l]; j++) (*rows)[h * s->ffn[l] + j] = h * slm_cfg_n_ff(c, l) + s->ff[l][j];
    } else if (s->ff[l]) {
        if (role == SLM_ROLE_FFN_GATE || role == SLM_ROLE_FFN_UP) SLM_TRY(copy_list(s->ff[l], s->ffn[l], rows, err));
        if (role == SLM_ROLE_FFN_DOWN) SLM_TRY(copy_list(s->ff[l], s->ffn[l], cols, err));
    }
    if (s->hg[l] && G) {
        const int g = H / G;
        if (role == SLM_ROLE_ATTN_Q) SLM_TRY(head_rows(s, l, g, D, rows, &n, err));
        if (role == SLM_ROLE_ATTN_Q_BIAS || role == SLM_ROLE_ATTN_OUT) SLM_TRY(head_rows(s, l, g, D, cols, &n, err));
        if (role == SLM_ROLE_ATTN_K || role == SLM_ROLE_ATTN_V) SLM_TRY(head_rows(s, l, 1, D, rows, &n, err));
        if (role == SLM_ROLE_ATTN_K_BIAS || role == SLM_ROLE_ATTN_V_BIAS) SLM_TRY(head_rows(s, l, 1, D, cols, &n, err));
    }
    if (t->rows) t->info.shape[0] = role == SLM_ROLE_FFN_GATE || role == SLM_ROLE_FFN_UP ? s->ffn[l] * (fused_up ? 2 : 1) : n;
    if (t->cols) t->info.shape[ndim - 1] = role == SLM_ROLE_FFN_DOWN ? s->ffn[l] : n;
    return SLM_OK;
}

static int plan_structured(slm_prune *p, splan *s, slm_err *err) {
    const slm_model_config *c = &p->in_cfg;
    for (int l = 0; l < c->n_layer; l++) s->keep[l] = 1;
    if (p->o.method == SLM_PRUNE_FFN) SLM_TRY(slm_prune_choose_ffn(p, s->ff, s->ffn, err));
    if (p->o.method == SLM_PRUNE_HEADS) SLM_TRY(slm_prune_choose_heads(p, s->hg, s->hgn, err));
    if (p->o.method == SLM_PRUNE_LAYERS) SLM_TRY(slm_prune_choose_layers(p, s->keep, err));
    for (int l = 0, j = 0; l < c->n_layer; l++) s->out_l[l] = s->keep[l] ? j++ : -1;
    SLM_TRY(out_config(p, s, err));
    for (size_t i = 0; i < p->in->n_tensors; i++) {
        slm_prune_tensor *t = &p->t[p->n];
        t->info = slm_tensor_src_info(p->in, i);
        t->src = i;
        t->src_params = slm_tensor_info_nrows(&t->info) * slm_tensor_info_ncols(&t->info);
        int l, role = slm_catalog_parse_gguf(t->info.name, &l);
        if (role >= 0 && slm_catalog_kind(role)->per_layer) {
            if (l < 0 || l >= c->n_layer) return slm_errf(err, SLM_E_FORMAT, "tensor '%s': no such layer", t->info.name);
            if (!s->keep[l]) continue;
            char nm[SLM_MAX_NAME];
            snprintf(t->info.name, sizeof t->info.name, "%s", slm_catalog_gguf_name(role, s->out_l[l], nm, sizeof nm));
            SLM_TRY(tensor_lists(p, s, t, role, l, err));
        }
        p->n++;
        if (!t->rows && !t->cols) continue;
        t->changed = 1;
        t->info.dtype = SLM_DTYPE_F32;
        t->info.nbytes = sizeof(float) * (size_t)(slm_tensor_info_nrows(&t->info) * slm_tensor_info_ncols(&t->info));
    }
    return SLM_OK;
}

/* ---- unstructured -------------------------------------------------------------------------- */

/* The sparsity pattern of tensor name: a pattern's, or the run's for the blocks' matmul weights
   by default; < 0: untouched. *which: index of the matching pattern (-1 none). */
static double target_of(const slm_prune *p, const regex_t *re, const char *name, int ndim, int *which) {
    *which = -1;
    if (ndim != 2) return -1;
    if (!p->o.n_patterns) {
        int l, role = slm_catalog_parse_gguf(name, &l);
        return role >= 0 && slm_catalog_kind(role)->per_layer && slm_calib_kind_of_role(role) >= 0 ? p->o.sparsity : -1;
    }
    for (size_t k = 0; k < p->o.n_patterns; k++)
        if (!regexec(&re[k], name, 0, NULL, 0)) {
            *which = (int)k;
            return p->o.patterns[k].sparsity >= 0 ? p->o.patterns[k].sparsity : p->o.sparsity;
        }
    return -1;
}

/* Exact k-th smallest |w| over the listed tensors (two histogram passes over the float bits):
   the threshold bits T and how many values equal to T are pruned so exactly k are. */
static int kth_abs(slm_prune *p, const size_t *list, size_t nl, int64_t k, uint32_t *T, int64_t *ties, slm_err *err) {
    uint64_t *h;
    *T = 0, *ties = 0;
    if (k <= 0) return SLM_OK;
    SLM_TRY(slm_calloc((void **)&h, 65536, sizeof(uint64_t), err, "histogram"));
    int rc = SLM_OK;
    int64_t below = 0, need = k;
    uint32_t hi = 0;
    for (int pass = 0; pass < 2 && !rc; pass++) {
        memset(h, 0, 65536 * sizeof(uint64_t));
        for (size_t q = 0; q < nl && !rc; q++) {
            const slm_prune_tensor *t = &p->t[list[q]];
            const int64_t nr = slm_tensor_info_nrows(&t->info), nc = slm_tensor_info_ncols(&t->info);
            const int64_t step = SLM_MAX(1, (int64_t)(p->buf_elems / (size_t)nc));
            for (int64_t r0 = 0; r0 < nr && !rc; r0 += step) {
                const int64_t n = SLM_MIN(step, nr - r0);
                if ((rc = p->in->read_f32(p->in->ud, t->src, r0, n, p->buf, err))) break;
                for (int64_t j = 0; j < n * nc; j++) {
                    uint32_t u;
                    memcpy(&u, &p->buf[j], 4);
                    u &= 0x7fffffffu;
                    if (pass == 0) h[u >> 16]++;
                    else if ((u >> 16) == hi) h[u & 0xffff]++;
                }
                slm_tensor_src_advise(p->in, t->src, r0, n, 0);
            }
        }
        uint32_t b = 0;
        uint64_t cum = 0;
        while (b < 65535 && cum + h[b] < (uint64_t)need) cum += h[b++];
        below += (int64_t)cum;
        need -= (int64_t)cum;
        if (pass == 0) hi = b;
        else *T = hi << 16 | b;
    }
    *ties = need;
    (void)below;
    slm_free(h);
    return rc;
}

/* Global threshold: the values equal to T that are pruned, handed to the tensors in list order
   (so every tensor's rows are the same whenever they are read). */
static int share_ties(slm_prune *p, const size_t *list, size_t nl, uint32_t T, int64_t ties, slm_err *err) {
    for (size_t q = 0; q < nl; q++) {
        slm_prune_tensor *t = &p->t[list[q]];
        const int64_t nr = slm_tensor_info_nrows(&t->info), nc = slm_tensor_info_ncols(&t->info);
        const int64_t step = SLM_MAX(1, (int64_t)(p->buf_elems / (size_t)nc));
        int64_t eq = 0;
        for (int64_t r0 = 0; r0 < nr && ties > 0; r0 += step) {
            const int64_t n = SLM_MIN(step, nr - r0);
            SLM_TRY(p->in->read_f32(p->in->ud, t->src, r0, n, p->buf, err));
            for (int64_t j = 0; j < n * nc; j++) {
                uint32_t u;
                memcpy(&u, &p->buf[j], 4);
                eq += (u & 0x7fffffffu) == T;
            }
        }
        t->ties = SLM_MIN(eq, ties);
        ties -= t->ties;
    }
    return SLM_OK;
}

static int plan_unstructured(slm_prune *p, slm_err *err) {
    regex_t re[64];
    size_t n_re = 0, list[4096], nl = 0;
    int64_t total = 0;
    int matched[64] = {0};
    if (p->o.n_patterns > 64) return slm_errf(err, SLM_E_ARG, "at most 64 tensor patterns");
    for (; n_re < p->o.n_patterns; n_re++)
        if (regcomp(&re[n_re], p->o.patterns[n_re].regex, REG_EXTENDED | REG_NOSUB)) {
            for (size_t k = 0; k < n_re; k++) regfree(&re[k]);
            return slm_errf(err, SLM_E_ARG, "--tensors: bad regular expression '%s'", p->o.patterns[n_re].regex);
        }
    int rc = SLM_OK;
    for (size_t i = 0; i < p->in->n_tensors && !rc; i++) {
        slm_prune_tensor *t = &p->t[p->n++];
        t->info = slm_tensor_src_info(p->in, i);
        t->src = i;
        const int64_t nc = slm_tensor_info_ncols(&t->info);
        t->src_params = slm_tensor_info_nrows(&t->info) * nc;
        int which;
        const double s = target_of(p, re, t->info.name, t->info.ndim, &which);
        if (which >= 0) matched[which] = 1;
        if (s < 0 || (s == 0 && !p->o.nm_m)) continue;
        if (!(s < 1.0)) { rc = slm_errf(err, SLM_E_ARG, "tensor '%s': sparsity %g is outside [0, 1)", t->info.name, s); break; }
        if (p->o.nm_m && nc % p->o.nm_m) {
            rc = slm_errf(err, SLM_E_ARG, "tensor '%s': %d:%d does not divide its rows of %lld values", t->info.name, p->o.nm_n,
                          p->o.nm_m, (long long)nc);
            break;
        }
        t->sparsity = p->o.nm_m ? (double)(p->o.nm_m - p->o.nm_n) / p->o.nm_m : s;
        t->changed = 1;
        t->info.dtype = SLM_DTYPE_F32;
        t->info.nbytes = sizeof(float) * (size_t)t->src_params;
        if (p->o.method != SLM_PRUNE_MAGNITUDE) {
            t->stats = slm_calib_find(p->o.calib, t->info.name);
            if (!t->stats || t->stats->n != nc || !t->stats->count)
                rc = slm_errf(err, SLM_E_ARG, "tensor '%s': the calibration statistics have no input for it", t->info.name);
            else if (p->o.method == SLM_PRUNE_SPARSEGPT && !t->stats->gram)
                rc = slm_errf(err, SLM_E_ARG, "tensor '%s': the calibration statistics have no Gram matrix (SparseGPT needs one)",
                              t->info.name);
        }
        if (!rc && p->o.method == SLM_PRUNE_WANDA && !(rc = slm_alloc((void **)&t->col_scale, sizeof(float) * (size_t)nc, err, "scales")))
            for (int64_t j = 0; j < nc; j++) t->col_scale[j] = sqrtf(t->stats->sum2[j] / (float)t->stats->count);
        if (p->o.method == SLM_PRUNE_MAGNITUDE && p->o.scope != SLM_PRUNE_SCOPE_ROW && !p->o.nm_m) {
            if (nl == SLM_ARRAY_LEN(list)) { rc = slm_errf(err, SLM_E_UNSUPPORTED, "too many tensors for a global threshold"); break; }
            list[nl++] = p->n - 1;
            total += t->src_params;
        }
    }
    for (size_t k = 0; k < p->o.n_patterns && !rc; k++)
        if (!matched[k]) rc = slm_errf(err, SLM_E_ARG, "--tensors '%s' matches no 2-D tensor", p->o.patterns[k].regex);
    for (size_t k = 0; k < n_re; k++) regfree(&re[k]);
    if (rc || !nl) return rc;
    if (p->o.scope == SLM_PRUNE_SCOPE_GLOBAL) {
        uint32_t T;
        int64_t ties;
        SLM_TRY(kth_abs(p, list, nl, llround(p->o.sparsity * (double)total), &T, &ties, err));
        for (size_t q = 0; q < nl; q++) p->t[list[q]].thresh_bits = T;
        return share_ties(p, list, nl, T, ties, err);
    }
    for (size_t q = 0; q < nl; q++) {
        slm_prune_tensor *t = &p->t[list[q]];
        SLM_TRY(kth_abs(p, &list[q], 1, llround(t->sparsity * (double)t->src_params), &t->thresh_bits, &t->ties, err));
    }
    return SLM_OK;
}

/* ---- the rows ------------------------------------------------------------------------------ */

static int grow(void **buf, size_t *have, size_t need, size_t elem, slm_err *err) {
    if (need <= *have) return SLM_OK;
    slm_free(*buf);
    *buf = NULL;
    *have = 0;
    SLM_TRY(slm_alloc(buf, need * elem, err, "pruning scratch"));
    *have = need;
    return SLM_OK;
}

/* Output rows [r0, r0+n) before unstructured pruning: input rows (gathered), columns gathered. */
static int gather(slm_prune *p, const slm_prune_tensor *t, int64_t r0, int64_t n, float *dst, slm_err *err) {
    const slm_tensor_info in = slm_tensor_src_info(p->in, t->src);
    const int64_t inc = slm_tensor_info_ncols(&in), onc = slm_tensor_info_ncols(&t->info);
    if (!t->rows && !t->cols) return p->in->read_f32(p->in->ud, t->src, r0, n, dst, err);
    float *rows = dst;
    if (t->cols) {
        SLM_TRY(grow((void **)&p->buf, &p->buf_elems, (size_t)(n * inc), sizeof(float), err));
        rows = p->buf;
    }
    for (int64_t r = 0; r < n;) {
        const int64_t ir = t->rows ? t->rows[r0 + r] : r0 + r;
        int64_t run = 1;
        while (r + run < n && t->rows && t->rows[r0 + r + run] == ir + run) run++;
        if (!t->rows) run = n;
        SLM_TRY(p->in->read_f32(p->in->ud, t->src, ir, run, rows + r * inc, err));
        r += run;
    }
    if (t->cols)
        for (int64_t r = 0; r < n; r++)
            for (int64_t c = 0; c < onc; c++) dst[r * onc + c] = rows[r * inc + t->cols[c]];
    return SLM_OK;
}

static int sparsegpt_begin(slm_prune *p, slm_prune_tensor *t, int64_t nc, slm_err *err) {
    double damp = p->o.damp > 0 ? p->o.damp : 0.01;
    SLM_TRY(slm_alloc((void **)&t->hinv, sizeof(double) * (size_t)(nc * nc), err, "inverse Hessian"));
    SLM_TRY(slm_alloc((void **)&t->col_scale, sizeof(float) * (size_t)nc, err, "dead columns"));
    int rc = slm_prune_hinv(t->stats->gram, nc, t->stats->count, damp, t->hinv, t->col_scale, err);
    if (rc) slm_err_prefix(err, "tensor '%s'", t->info.name);
    return rc;
}

/* Unstructured pruning of n rows in place. */
static int prune_rows(slm_prune *p, slm_prune_tensor *t, int64_t r0, int64_t n, float *w, slm_err *err) {
    const int64_t nc = slm_tensor_info_ncols(&t->info), nrow = slm_tensor_info_nrows(&t->info);
    const int m = p->o.nm_m, nk = p->o.nm_n;
    if (r0 == 0) t->ties_left = t->ties;
    if (p->o.method == SLM_PRUNE_SPARSEGPT && !t->hinv) SLM_TRY(sparsegpt_begin(p, t, nc, err));
    if (p->o.method == SLM_PRUNE_MAGNITUDE && p->o.scope != SLM_PRUNE_SCOPE_ROW && !m) {
        for (int64_t j = 0; j < n * nc; j++) {
            uint32_t u;
            memcpy(&u, &w[j], 4);
            u &= 0x7fffffffu;
            if (u < t->thresh_bits || (u == t->thresh_bits && t->ties_left > 0 && t->ties_left--)) w[j] = 0.0f;
        }
        return SLM_OK;
    }
    const size_t per = (size_t)p->widest * (4 * sizeof(int32_t) + 2 * sizeof(float));
    const int64_t k = llround(t->sparsity * (double)nc);
    const int sgpt = p->o.method == SLM_PRUNE_SPARSEGPT, block = p->o.block > 0 ? p->o.block : 128;
    const float *scale = p->o.method == SLM_PRUNE_WANDA ? t->col_scale : NULL;
#pragma omp parallel for schedule(dynamic, 4)
    for (int64_t r = 0; r < n; r++) {
        uint8_t *sc = (uint8_t *)p->rowscratch + per * (size_t)slm_thread_id();
        int32_t *idx = (int32_t *)(void *)sc;
        float *tmp = (float *)(void *)(sc + (size_t)nc * 4 * sizeof(int32_t));
        float *row = w + r * nc;
        if (sgpt) {
            for (int64_t j = 0; j < nc; j++)
                if (t->col_scale[j] != 0.0f) row[j] = 0.0f; /* dead input: SparseGPT zeroes it */
            slm_prune_row_sparsegpt(row, nc, t->hinv, t->sparsity, nk, m, block, tmp, idx);
        } else {
            slm_prune_row_select(row, nc, scale, k, nk, m, idx);
        }
    }
    if (sgpt && r0 + n == nrow) {
        slm_free(t->hinv), t->hinv = NULL;
        slm_free(t->col_scale), t->col_scale = NULL;
    }
    return SLM_OK;
}

static int out_read_f32(const void *ud, size_t i, int64_t r0, int64_t n, float *dst, slm_err *err) {
    slm_prune *p = (slm_prune *)(uintptr_t)ud; /* the source's state: counters, scratch */
    slm_prune_tensor *t = &p->t[i];
    if (!t->changed) return p->in->read_f32(p->in->ud, t->src, r0, n, dst, err);
    SLM_TRY(gather(p, t, r0, n, dst, err));
    if (t->sparsity > 0) SLM_TRY(prune_rows(p, t, r0, n, dst, err));
    const int64_t nv = n * slm_tensor_info_ncols(&t->info);
    if (r0 == 0) t->zeros = t->n_values = 0;
    for (int64_t j = 0; j < nv; j++) t->zeros += dst[j] == 0.0f;
    t->n_values += nv;
    return SLM_OK;
}

static const void *out_read_raw(const void *ud, size_t i, int64_t r0, int64_t n, void *scratch, slm_err *err) {
    const slm_prune *p = ud;
    const slm_prune_tensor *t = &p->t[i];
    if (!t->changed) return p->in->read_raw(p->in->ud, t->src, r0, n, scratch, err);
    if (!scratch) return NULL; /* the probe: computed rows are never borrowed */
    return out_read_f32(ud, i, r0, n, scratch, err) ? NULL : scratch;
}

static void out_info(const void *ud, size_t i, slm_tensor_info *o) { *o = ((const slm_prune *)ud)->t[i].info; }

static int out_find(const void *ud, const char *name) {
    const slm_prune *p = ud;
    for (size_t i = 0; i < p->n; i++)
        if (!strcmp(p->t[i].info.name, name)) return (int)i;
    return -1;
}

/* Input pages are released behind the reader (rows map one to one unless gathered). */
static void out_advise(const void *ud, size_t i, int64_t r0, int64_t n, int need) {
    const slm_prune *p = ud;
    const slm_prune_tensor *t = &p->t[i];
    if (!t->rows) slm_tensor_src_advise(p->in, t->src, r0, n, need);
    else if (!need && r0 == 0 && n == slm_tensor_info_nrows(&t->info)) {
        slm_tensor_info in = slm_tensor_src_info(p->in, t->src);
        slm_tensor_src_advise(p->in, t->src, 0, slm_tensor_info_nrows(&in), 0);
    }
}

/* ---- plan ---------------------------------------------------------------------------------- */

int slm_prune_plan(slm_prune *p, const slm_tensor_src *in, const slm_model_config *cfg, const slm_prune_opts *o,
                   slm_err *err) {
    memset(p, 0, sizeof *p);
    p->in = in;
    p->in_cfg = p->cfg = *cfg;
    p->o = *o;
    SLM_TRY(check_opts(o, cfg, err));
    int64_t widest = 1;
    for (size_t i = 0; i < in->n_tensors; i++) {
        slm_tensor_info t = slm_tensor_src_info(in, i);
        widest = SLM_MAX(widest, slm_tensor_info_ncols(&t));
    }
    p->n_threads = SLM_MAX(1, slm_threads_get());
    p->widest = widest;
    int rc = slm_calloc((void **)&p->t, in->n_tensors + 1, sizeof(slm_prune_tensor), err, "tensor list");
    size_t per = (size_t)widest * (4 * sizeof(int32_t) + 2 * sizeof(float));
    if (!rc) rc = slm_alloc(&p->rowscratch, per * (size_t)p->n_threads, err, "row scratch");
    if (!rc) rc = grow((void **)&p->buf, &p->buf_elems, SLM_MAX((size_t)widest, (size_t)1 << 20), sizeof(float), err);
    if (!rc) {
        splan *s;
        if (structured(o->method) && !(rc = slm_calloc((void **)&s, 1, sizeof *s, err, "plan"))) {
            rc = plan_structured(p, s, err);
            for (int l = 0; l < SLM_MAX_LAYERS; l++) slm_free(s->ff[l]), slm_free(s->hg[l]);
            slm_free(s);
        } else if (!structured(o->method)) {
            rc = plan_unstructured(p, err);
        }
    }
    if (rc) {
        slm_prune_free(p);
        return rc;
    }
    p->out = (slm_tensor_src){p->n, p, out_info, out_find, out_read_f32, out_read_raw, out_advise};
    return SLM_OK;
}

void slm_prune_free(slm_prune *p) {
    for (size_t i = 0; p->t && i < p->n; i++) {
        slm_free(p->t[i].rows);
        slm_free(p->t[i].cols);
        slm_free(p->t[i].col_scale);
        slm_free(p->t[i].hinv);
    }
    slm_free(p->t);
    slm_free(p->buf);
    slm_free(p->rowscratch);
    memset(p, 0, sizeof *p);
}
