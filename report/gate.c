/* gate.c - quality gates (gate.h). */
#include "report/gate.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* name, the report key it limits, maximum (1) or minimum (0) */
static const struct {
    const char *name, *key;
    int is_max;
    size_t off;
} k_gates[] = {
    {"max_kld", "kld_mean", 1, offsetof(slm_report_eval, kld_mean)},
    {"max_ppl_delta", "delta_ppl", 1, offsetof(slm_report_eval, dppl)},
    {"min_top1", "top1_agreement", 0, offsetof(slm_report_eval, top1)},
};

static double limit_of(const slm_gates *g, size_t k) { return k == 0 ? g->max_kld : k == 1 ? g->max_ppl_delta : g->min_top1; }

void slm_gates_none(slm_gates *g) { g->max_kld = g->max_ppl_delta = g->min_top1 = NAN; }

int slm_gates_any(const slm_gates *g) { return !isnan(g->max_kld) || !isnan(g->max_ppl_delta) || !isnan(g->min_top1); }

int slm_gates_check(const slm_gates *g, slm_report *r) {
    int failed = 0;
    r->n_gates = 0;
    for (size_t k = 0; k < sizeof k_gates / sizeof k_gates[0]; k++) {
        double lim = limit_of(g, k);
        if (isnan(lim)) continue;
        slm_report_gate *o = &r->gates[r->n_gates++];
        snprintf(o->name, sizeof o->name, "%s", k_gates[k].name);
        o->limit = lim;
        o->value = r->eval.has_ref ? *(const double *)(const void *)((const char *)&r->eval + k_gates[k].off) : NAN;
        o->excess = k_gates[k].is_max ? o->value - lim : lim - o->value;
        o->passed = !isnan(o->value) && o->excess <= 0;
        failed += !o->passed;
    }
    return failed;
}

const char *slm_gate_describe(char *buf, size_t cap, const slm_report_gate *g) {
    size_t k = 0;
    while (k + 1 < sizeof k_gates / sizeof k_gates[0] && strcmp(k_gates[k].name, g->name)) k++;
    snprintf(buf, cap, "gate %s %s: %s %.6g %s %.6g (%s %.6g)", g->name, g->passed ? "passed" : "failed", k_gates[k].key,
             g->value, k_gates[k].is_max ? (g->passed ? "<=" : ">") : (g->passed ? ">=" : "<"), g->limit,
             g->passed ? "margin" : "missed by", fabs(g->excess));
    return buf;
}
