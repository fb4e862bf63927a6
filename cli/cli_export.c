/* cli_export.c - the CLI side of writing a GGUF (convert, quantize): open the source, plan, write
 * into an atomic file with a progress line, commit; and the one-screen summary. The pipeline
 * itself is library code (export/export.h).
 */
#include "cli_export.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "core/afile.h"
#include "core/mem.h"
#include "core/slm.h"
#include "msg.h"

static void progress(void *ud, const char *tensor, size_t done, size_t n) {
    SLM_UNUSED(ud);
    if (done < n) msg_progress(tensor, (double)done / (double)n);
    else msg_progress_done();
}

int cli_export_open(cli_export *e, const char *in, slm_err *err) {
    memset(e, 0, sizeof *e);
    SLM_TRY(cli_src_open(&e->src, in, err));
    e->opened = 1;
    slm_src_tensors(&e->src, &e->ts);
    return slm_src_output_meta(&e->src, &e->meta, err);
}

int cli_export_plan(cli_export *e, const char *in, const slm_export_opts *opts, const slm_report_manifest *mf, slm_err *err) {
    if (!e->opened) SLM_TRY(cli_export_open(e, in, err));
    if (mf && mf->present) { /* the manifest as slm.* keys, after the model's own */
        SLM_TRY(slm_kvs_set_str(&e->meta, "slm.version", mf->version, err));
        SLM_TRY(slm_kvs_set_str(&e->meta, "slm.input.sha256", mf->input_sha256, err));
        SLM_TRY(slm_kvs_set_str(&e->meta, "slm.flags", mf->flags, err));
    }
    slm_export_opts o = *opts;
    o.cfg = &e->src.cfg;
    o.meta = &e->meta;
    o.widen_1d = e->src.kind == SLM_SRC_HF;
    o.progress = progress;
    SLM_TRY(slm_export_plan(&e->x, &e->ts, &o, err));
    snprintf(e->x.rep.model_name, sizeof e->x.rep.model_name, "%s", e->src.name);
    snprintf(e->x.rep.model, sizeof e->x.rep.model, "%s", in);
    return SLM_OK;
}

int cli_export_write(cli_export *e, slm_outset *set, const char *out, slm_err *err) {
    slm_afile *f = NULL;
    SLM_TRY(slm_outset_open(set, out, &f, err));
    int rc = slm_export_write(&e->x, f, err);
    if (rc) msg_progress_done();
    else snprintf(e->x.rep.output, sizeof e->x.rep.output, "%s", out);
    return rc;
}

void cli_export_free(cli_export *e) {
    slm_export_free(&e->x);
    slm_kvs_free(&e->meta);
    slm_src_close(&e->src);
}

void cli_export_print_summary(const slm_report *r, FILE *f, int per_tensor) {
    char b1[32], b2[32];
    if (per_tensor) {
        fprintf(f, "%-28s %-7s %-7s %-14s %6s %10s %10s\n", "tensor", "from", "type", "shape", "bpw", "rel.RMSE", "max|err|");
        for (size_t i = 0; i < r->n_tensors; i++) {
            const slm_report_tensor *t = &r->tensors[i];
            char sh[48];
            slm_shape_str(sh, sizeof sh, t->shape, t->ndim);
            char e1[24] = "-", e2[24] = "-"; /* not computed in a dry run */
            if (!isnan(t->rel_rmse)) snprintf(e1, sizeof e1, "%.3g", t->rel_rmse);
            if (!isnan(t->max_abs_err)) snprintf(e2, sizeof e2, "%.3g", t->max_abs_err);
            fprintf(f, "%-28s %-7s %-7s %-14s %6.2f %10s %10s%s\n", t->name, t->src_type, t->type, sh, t->bpw, e1, e2,
                    t->fell_back ? "  (fell back)" : "");
        }
    }
    fprintf(f, "%s: %s -> %s, %s (%.2f bpw, %.2fx smaller), %zu tensors",
            r->ftype, slm_fmt_bytes(b1, sizeof b1, (double)r->src_bytes), r->output[0] ? r->output : "(dry run)",
            slm_fmt_bytes(b2, sizeof b2, (double)r->out_bytes), r->bpw, r->out_bytes ? (double)r->src_bytes / (double)r->out_bytes : 0,
            r->n_tensors);
    if (r->seconds > 0) fprintf(f, " in %.2f s", r->seconds);
    fprintf(f, "\n");
    if (r->n_fallback)
        fprintf(f, "%d of %zu tensors fell back to another type (row length not a multiple of the block size)\n", r->n_fallback,
                r->n_tensors);
}
