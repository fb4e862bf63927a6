/* cli_eval.h - one evaluation as the commands run it (eval, and quantize/prune/distill for
 * their quality gates): open the model (and the reference), the token ids, the transformer(s),
 * perplexity or KL divergence, the report's eval object.
 */
#ifndef SLM_CLI_EVAL_H
#define SLM_CLI_EVAL_H

#include <stdint.h>

#include "cli.h"
#include "formats/model_src.h"
#include "model/eval.h"
#include "model/tokenizer.h"
#include "model/transformer.h"
#include "report/report.h"

typedef struct cli_eval_args {
    const char *model, *ref;      /* ref: NULL for perplexity alone */
    const char *text, *tokens_in; /* exactly one */
    long ctx, chunks;             /* chunks 0: all windows */
    int convention, numerics, keep_nll;
} cli_eval_args;

/* What one evaluation holds: the model(s), the tokenizer, the ids and the results. */
typedef struct cli_eval {
    slm_src src, rsrc;
    slm_tokenizer tok;
    slm_model m, rm;
    int32_t *ids;
    int64_t n_ids;
    int32_t bos;
    slm_ppl_result ppl;
    slm_kl_result kl;
    double seconds; /* of the scoring */
} cli_eval;

/* Opens the model(s), reads the ids (checked against both vocabularies), builds. */
int cli_eval_load(cli_eval *s, const cli_eval_args *a, slm_err *err);
/* The model/eval options of this run (windows, BOS, names). */
slm_eval_opts cli_eval_opts(const cli_eval *s, const cli_eval_args *a);
/* Scores (progress on the terminal). */
int cli_eval_score(cli_eval *s, const cli_eval_args *a, slm_err *err);
/* The model's perplexity result (from the KL run with a reference). */
const slm_ppl_result *cli_eval_ppl(const cli_eval *s, const cli_eval_args *a);
/* report->eval from the results (packed_bytes when the model is a packed file). */
void cli_eval_fill(const cli_eval *s, const cli_eval_args *a, slm_report_eval *v);
void cli_eval_free(cli_eval *s);
/* The whole evaluation of a.model into v (quantize's gates: load, score, fill, free). */
int cli_eval_into(const cli_eval_args *a, slm_report_eval *v, slm_err *err);

#endif
