/* method.c - names and defaults of the quantization methods (method.h). */
#include "quantize/method.h"

#include <stdio.h>
#include <string.h>

static const char *const k_names[SLM_QMETHOD_COUNT] = {"rtn", "imatrix", "awq", "gptq", "awq+gptq"};

void slm_qmethod_params_default(slm_qmethod_params *p) {
    *p = (slm_qmethod_params){.awq_grid = 20, .awq_alpha = -1, .awq_clip = 0, .awq_score_flops = 1L << 24, .gptq_damp = 0.01,
                              .gptq_block = 128, .gptq_act_order = 1};
}

const char *slm_qmethod_name(int m) { return m >= 0 && m < SLM_QMETHOD_COUNT ? k_names[m] : NULL; }

int slm_qmethod_from_name(const char *name) {
    for (int m = 0; m < SLM_QMETHOD_COUNT; m++)
        if (!strcmp(name, k_names[m])) return m;
    return -1;
}

const char *slm_qmethod_params_str(int m, const slm_qmethod_params *p, char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = 0;
    if (slm_qmethod_uses_awq(m) && p->awq_alpha >= 0) n += (size_t)snprintf(buf + n, cap - n, "alpha=%g", p->awq_alpha);
    else if (slm_qmethod_uses_awq(m))
        n += (size_t)snprintf(buf + n, cap - n, "alpha_grid=%d clip=%d", p->awq_grid, p->awq_clip);
    if (slm_qmethod_uses_gptq(m) && n < cap)
        snprintf(buf + n, cap - n, "%sdamp=%g block=%d act_order=%d", n ? " " : "", p->gptq_damp, p->gptq_block,
                 p->gptq_act_order);
    return buf;
}
