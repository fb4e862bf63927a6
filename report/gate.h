/* gate.h - quality gates: limits on what an evaluation measured (mean KL divergence, PPL
 * increase, top-1 agreement with the reference), checked the same way for every command that
 * evaluates its output (quantize, eval, and prune/distill when they come): one call fills the
 * report's gates, the command exits with status 3 when one failed (its output kept).
 *
 * Owns: the gate list, the check, the one-line account of a failure.
 * Must not: evaluate anything (the command fills report->eval first), print, or exit.
 */
#ifndef SLM_GATE_H
#define SLM_GATE_H

#include <stddef.h>

#include "report/report.h"

/* Limits; NaN = no gate (slm_gates_none). All need an evaluation against a reference. */
typedef struct slm_gates {
    double max_kld;       /* kld_mean <= max_kld */
    double max_ppl_delta; /* delta_ppl (PPL - PPL(ref)) <= max_ppl_delta */
    double min_top1;      /* top1_agreement >= min_top1 (a fraction, 0..1) */
} slm_gates;

void slm_gates_none(slm_gates *g);
/* 1 when at least one gate is set. */
int slm_gates_any(const slm_gates *g);
/* Checks r->eval (which must have a reference) against g; fills r->gates / r->n_gates. Returns
   the number of gates that failed (a NaN measurement fails). */
int slm_gates_check(const slm_gates *g, slm_report *r);
/* "gate max_kld failed: kld_mean 0.0234 > 0.01 (missed by 0.0134)" for gate i of r, into buf. */
const char *slm_gate_describe(char *buf, size_t cap, const slm_report_gate *g);

#endif
