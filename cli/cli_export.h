/* cli_export.h - the CLI side of the export pipeline (export/export.h) for convert and
 * quantize: a model folder or GGUF opened as the source, the atomic output, progress and the
 * summary table.
 */
#ifndef SLM_CLI_EXPORT_H
#define SLM_CLI_EXPORT_H

#include <stdio.h>

#include "export/export.h"
#include "formats/model_src.h"
#include "report/report.h"

typedef struct cli_export {
    slm_src src;
    slm_tensor_src ts;
    slm_kvs meta;
    slm_export x;
    int opened;
} cli_export;

/* Opens `in` (the source's cfg is then e->src.cfg); cli_export_plan opens it unless done. */
int cli_export_open(cli_export *e, const char *in, slm_err *err);

/* Opens `in` (unless done) and plans the export with opts (cfg, meta, widen_1d and progress are
   filled in); mf (or NULL): a manifest to record as slm.version, slm.input.sha256 and slm.flags keys. */
int cli_export_plan(cli_export *e, const char *in, const slm_export_opts *opts, const slm_report_manifest *mf, slm_err *err);
/* Writes the planned file to `out` in the command's output set (committed by the caller). */
int cli_export_write(cli_export *e, slm_outset *set, const char *out, slm_err *err);
void cli_export_free(cli_export *e);
/* One-screen table (tensor, type, shape, bpw, rel. RMSE) and totals. */
void cli_export_print_summary(const slm_report *r, FILE *f, int per_tensor);

#endif
