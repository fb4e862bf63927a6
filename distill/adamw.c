/* adamw.c - AdamW over flat buffers: schedule, deterministic global-norm clipping, masked
 * updates, and the mask of a model's parameter buffer.
 * Must not: print or allocate inside the parallel loops (scratch comes from init).
 */
#include "distill/adamw.h"

#include <math.h>
#include <string.h>

#include "core/mem.h"
#include "core/slm.h"
#include "model/layers.h"
#include "model/train.h"

/* Parameters per norm partial: the sum of squares is split at fixed indices, never by thread. */
#define NORM_CHUNK 65536

void slm_adamw_defaults(slm_adamw_opts *o) {
    *o = (slm_adamw_opts){.lr = 1e-4f, .min_lr = 0.0f, .warmup_steps = 0, .total_steps = 0, .beta1 = 0.9f,
                          .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f, .clip_norm = 1.0f};
}

int slm_adamw_init(slm_adamw *a, const slm_adamw_opts *o, size_t n, slm_err *err) {
    memset(a, 0, sizeof *a);
    if (!(o->lr >= 0.0f && isfinite(o->lr)) || !(o->min_lr >= 0.0f && o->min_lr <= o->lr))
        return slm_errf(err, SLM_E_ARG, "learning rate %g (floor %g): need 0 <= floor <= lr", (double)o->lr, (double)o->min_lr);
    if (!(o->beta1 >= 0.0f && o->beta1 < 1.0f) || !(o->beta2 >= 0.0f && o->beta2 < 1.0f) || !(o->eps > 0.0f))
        return slm_errf(err, SLM_E_ARG, "AdamW betas (%g, %g) must be in [0, 1) and eps %g > 0", (double)o->beta1,
                        (double)o->beta2, (double)o->eps);
    if (!(o->weight_decay >= 0.0f) || !(o->clip_norm >= 0.0f) || o->warmup_steps < 0 || o->total_steps < 0)
        return slm_errf(err, SLM_E_ARG, "AdamW: weight decay %g, clip norm %g, warmup %lld and total steps %lld must not be "
                        "negative", (double)o->weight_decay, (double)o->clip_norm, (long long)o->warmup_steps,
                        (long long)o->total_steps);
    a->o = *o;
    a->n = n;
    a->n_chunks = (n + NORM_CHUNK - 1) / NORM_CHUNK;
    int rc = slm_calloc((void **)&a->m, n ? n : 1, sizeof(float), err, "AdamW first moments");
    if (!rc) rc = slm_calloc((void **)&a->v, n ? n : 1, sizeof(float), err, "AdamW second moments");
    if (!rc) rc = slm_calloc((void **)&a->partials, a->n_chunks ? a->n_chunks : 1, sizeof(double), err, "AdamW norm partials");
    if (rc) slm_adamw_free(a);
    return rc;
}

void slm_adamw_free(slm_adamw *a) {
    slm_free(a->m);
    slm_free(a->v);
    slm_free(a->mask);
    slm_free(a->partials);
    memset(a, 0, sizeof *a);
}

/* llm.c's schedule: linear warmup, then lr_min + (lr - lr_min) (1 + cos(pi progress)) / 2 */
float slm_adamw_lr(const slm_adamw_opts *o, int64_t step) {
    if (step < o->warmup_steps) return (float)((double)o->lr * (double)(step + 1) / (double)o->warmup_steps);
    if (o->total_steps <= o->warmup_steps) return o->lr;
    if (step >= o->total_steps) return o->min_lr;
    const double progress = (double)(step - o->warmup_steps) / (double)(o->total_steps - o->warmup_steps);
    return (float)(o->min_lr + 0.5 * ((double)o->lr - o->min_lr) * (1.0 + cos(3.14159265358979323846 * progress)));
}

/* ---------------------------------------------------------------------------------------------
 * the mask of a model's parameter buffer */

/* Output rows and input columns of matrix p at layer l (the panel-packed shapes of transformer.h). */
static void matrix_shape(const slm_model_config *c, int p, int l, int64_t *rows, int64_t *cols) {
    const int64_t HD = l >= 0 ? (int64_t)slm_cfg_n_head(c, l) * c->head_dim : 0;
    const int64_t KD = l >= 0 ? (int64_t)slm_cfg_n_head_kv(c, l) * c->head_dim : 0, F = l >= 0 ? slm_cfg_n_ff(c, l) : 0;
    *rows = c->n_vocab, *cols = c->n_embd; /* wte, wcls */
    if (p == SLM_P_WQ) *rows = HD;
    if (p == SLM_P_WK || p == SLM_P_WV) *rows = KD;
    if (p == SLM_P_WO) *rows = c->n_embd, *cols = HD;
    if (p == SLM_P_WGATE || p == SLM_P_WUP) *rows = F;
    if (c->arch == SLM_ARCH_PHI3 && p == SLM_P_WQ) *rows = HD + 2 * KD; /* fused q | k | v */
    if (c->arch == SLM_ARCH_PHI3 && p == SLM_P_WUP) *rows = 2 * F;      /* fused gate | up */
    if (p == SLM_P_WDOWN) *rows = c->n_embd, *cols = F;
}

int slm_adamw_mask_model(slm_adamw *a, const slm_model *m, int freeze_zeros, int64_t *n_frozen, slm_err *err) {
    if (a->n != m->num_parameters || !m->params_memory)
        return slm_errf(err, SLM_E_ARG, "AdamW of %zu parameters: the model has %zu f32 parameters", a->n, m->num_parameters);
    if (!a->mask) SLM_TRY(slm_alloc((void **)&a->mask, a->n ? a->n : 1, err, "AdamW mask"));
    memset(a->mask, SLM_ADAMW_FROZEN, a->n); /* what no tensor claims (panel padding) stays frozen */
    int64_t frozen = 0;
    for (int p = 0; p < SLM_NUM_PARAMETER_TENSORS; p++)
        for (int l = -1; l < m->cfg.n_layer; l++) {
            size_t off, n;
            int is_matrix;
            if (!slm_train_param_range(m, p, l, &off, &n, &is_matrix)) continue;
            if (!is_matrix) {
                memset(a->mask + off, SLM_ADAMW_TRAIN, n);
                continue;
            }
            int64_t rows, cols;
            matrix_shape(&m->cfg, p, l, &rows, &cols);
            for (int64_t r = 0; r < rows; r++)
                for (int64_t c = 0; c < cols; c++) {
                    const size_t i = off + slm_panel_index(r, c, cols);
                    const int keep = !freeze_zeros || m->params_memory[i] != 0.0f;
                    a->mask[i] = keep ? SLM_ADAMW_DECAY : SLM_ADAMW_FROZEN;
                    frozen += !keep;
                }
        }
    if (n_frozen) *n_frozen = frozen;
    return SLM_OK;
}

/* ---------------------------------------------------------------------------------------------
 * the update */

int slm_adamw_step(slm_adamw *a, float *params, const float *grads, float grad_scale, slm_err *err) {
    const slm_adamw_opts *o = &a->o;
    const uint8_t *mask = a->mask;
    const size_t n = a->n;
    /* ||grads * grad_scale|| over trained parameters: chunk partials, summed in chunk order */
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < a->n_chunks; k++) {
        const size_t i1 = SLM_MIN(n, (k + 1) * NORM_CHUNK);
        double s = 0.0;
        for (size_t i = k * NORM_CHUNK; i < i1; i++)
            if (!mask || mask[i]) s += (double)grads[i] * grads[i];
        a->partials[k] = s;
    }
    double ss = 0.0;
    for (size_t k = 0; k < a->n_chunks; k++) ss += a->partials[k];
    const double norm = sqrt(ss) * fabs((double)grad_scale);
    if (!isfinite(norm))
        return slm_errf(err, SLM_E_DATA, "AdamW step %lld: gradient norm is not finite (NaN/Inf gradients); step skipped",
                        (long long)a->step);
    a->grad_norm = norm;
    a->clipped = o->clip_norm > 0.0f && norm > o->clip_norm;
    const float gs = (float)(grad_scale * (a->clipped ? o->clip_norm / (norm + 1e-6) : 1.0));
    const float lr = slm_adamw_lr(o, a->step), b1 = o->beta1, b2 = o->beta2, eps = o->eps, wd = o->weight_decay;
    const int64_t t = a->step + 1;
    const float c1 = (float)(1.0 - pow(b1, (double)t)), c2 = (float)(1.0 - pow(b2, (double)t)); /* bias corrections */
    float *m = a->m, *v = a->v;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        const int mk = mask ? mask[i] : SLM_ADAMW_DECAY;
        if (mk == SLM_ADAMW_FROZEN) continue;
        const float g = grads[i] * gs;
        m[i] = b1 * m[i] + (1.0f - b1) * g;
        v[i] = b2 * v[i] + (1.0f - b2) * (g * g);
        const float mhat = m[i] / c1, vhat = v[i] / c2;
        params[i] -= lr * (mhat / (sqrtf(vhat) + eps) + (mk == SLM_ADAMW_DECAY ? wd * params[i] : 0.0f));
    }
    a->lr = lr;
    a->step++;
    return SLM_OK;
}
