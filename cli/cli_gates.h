/* cli_gates.h - quality gates on the command line: the three options (one table row macro a
 * command adds to its option table) and the check that prints which gate failed and by how
 * much and gives exit status 3. The gates themselves: report/gate.h.
 *
 *   typedef struct x_opts { ...; slm_gates gates; } x_opts;
 *   static const opt k_opts[] = { ..., CLI_GATE_OPTS(x_opts, gates) };
 *   slm_gates_none(&o.gates);                     // before parsing
 *   int gate = cli_gates_check(&o.gates, &rep);   // after rep.eval is filled, before writing rep
 *   ... write outputs ...; return gate;           // EXIT_OK or EXIT_GATE
 */
#ifndef SLM_CLI_GATES_H
#define SLM_CLI_GATES_H

#include "cli.h"
#include "opts.h"
#include "report/gate.h"
#include "report/report.h"

#define CLI_GATE_OPTS(T, field)                                                                                               \
    {"--max-kld", NULL, OPT_NUM, OPT_OF(T, field.max_kld), "X",                                                              \
     "quality gate: mean KL(ref || model) at most X, else exit status 3\n(output and report kept; the report says by how much)", \
     0, 1e300, NULL, NULL},                                                                                                   \
    {"--max-ppl-delta", NULL, OPT_NUM, OPT_OF(T, field.max_ppl_delta), "X", "quality gate: PPL - PPL(ref) at most X", -1e300,  \
     1e300, NULL, NULL},                                                                                                      \
    {"--min-top1", NULL, OPT_NUM, OPT_OF(T, field.min_top1), "X",                                                            \
     "quality gate: top-1 agreement with the reference at least X (0..1)", 0, 1, NULL, NULL}

/* Checks r->eval against g (r->gates filled for the report), prints one line per failed gate
   ("slm: error: gate max_kld failed: kld_mean 0.0234 > 0.01 (missed by 0.0134)"), returns
   EXIT_GATE when one failed, else EXIT_OK. No gate set: EXIT_OK, nothing recorded. */
int cli_gates_check(const slm_gates *g, slm_report *r);

#endif
