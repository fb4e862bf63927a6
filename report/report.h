/* report.h - the accuracy/size report: one data model, several renderings.
 *
 * Owns: slm_report (a run: what was made from what, per-tensor size and error, evaluation
 * numbers) and its renderings through the atomic writer: JSON (stable keys, documented in
 * the README, read back by `slm report`), Markdown and a self-contained HTML page.
 * Must not: compute anything; commands fill the data model.
 */
#ifndef SLM_REPORT_H
#define SLM_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "core/afile.h"
#include "core/err.h"
#include "core/tensor.h"

#define SLM_REPORT_FORMAT "slm-report/1"

typedef struct slm_report_tensor {
    char name[SLM_MAX_NAME];
    char type[16];       /* output type name */
    char src_type[16];   /* source type name */
    int ndim;
    int64_t shape[SLM_MAX_DIMS];
    int64_t n_params;
    uint64_t bytes, src_bytes;
    double bpw;          /* bits per weight of the output */
    double rmse, rel_rmse, max_abs_err; /* dequantized output vs source weights */
    int fell_back;       /* the recipe's type did not fit the row length */
} slm_report_tensor;

/* The evaluation of a run. Its JSON keys (the "eval" object of report.json, and what
   `slm eval --json` prints) are listed once, in report.c's k_eval_fields. */
typedef struct slm_report_eval {
    int present;
    char text[256];         /* evaluation text file (or token id file) */
    char convention[32];    /* "second-half" (llama-perplexity) or "all" */
    char numerics[8];       /* "f32" or "ggml" */
    int ctx;
    int64_t tokens;         /* ids in the stream */
    int64_t n_chunks, scored;
    double nll_sum, mean_nll, ppl, ppl_err;
    int has_ref;
    char ref[256];          /* reference model */
    double ref_mean_nll, ref_ppl, ref_ppl_err;
    double dppl, dppl_err;                /* PPL(model) - PPL(ref) and its standard error */
    double ln_ppl_ratio, ln_ppl_ratio_err;
    double kld_mean, kld_mean_err, kld_median, kld_p90, kld_p99, kld_p999, kld_max;
    double top1, top1_err;  /* fraction of tokens whose argmax equals the reference's */
    double rms_dp, rms_dp_err, mean_dp, max_dp; /* delta p of the target token (llama-perplexity) */
    double tok_per_s;
    int64_t packed_bytes;   /* the model is a packed GGUF (slm pack): the container's bytes, else 0 */
} slm_report_eval;

/* A quality gate's outcome (report/gate.h checks them): "max_kld" (kld_mean), "max_ppl_delta"
   (delta_ppl) or "min_top1" (top1_agreement), its limit, the measured value and by how much
   it missed (value - limit for a maximum, limit - value for a minimum; <= 0 when passed). */
#define SLM_REPORT_MAX_GATES 4
typedef struct slm_report_gate {
    char name[24];
    double limit, value, excess;
    int passed;
} slm_report_gate;

/* Provenance (slm records it with --manifest, also as slm.* GGUF keys): no timestamps, no
   output paths, so the same inputs and flags give the same bytes. */
typedef struct slm_report_manifest {
    int present;
    char input_sha256[65];  /* of the model's files (core/sha256.h, slm_sha256_inputs) */
    char flags[1024];       /* the options that shape the output, canonical order */
    char version[16];       /* slm version */
} slm_report_manifest;

/* A training run (slm distill): one point per optimizer step (loss, kd, ce, grad_norm, lr;
   has_eval 0) and per held-out evaluation (ppl, ref_ppl, kld, top1; has_eval 1). Values a point
   does not have are NaN. */
typedef struct slm_report_train_point {
    int64_t step, tokens;
    double seconds, loss, kd, ce, grad_norm, lr;
    int has_eval;
    double ppl, ref_ppl, kld, top1;
} slm_report_train_point;

typedef struct slm_report {
    char command[32];       /* "quantize", "convert", "eval" */
    char version[16];       /* slm version */
    char model[256];        /* source path */
    char model_name[128];
    char output[256];       /* written file ("" for eval) */
    char ftype[16];         /* recipe name, e.g. "Q4_K_M" */
    char method[16];        /* quantization method: "rtn", "imatrix", "awq", "gptq", "awq+gptq" ("" for convert/eval) */
    char method_params[192]; /* its parameters, "key=value ..." */
    char calibration[256];  /* statistics file (--calibration / --imatrix), or "" */
    int threads;
    double seconds, peak_rss_bytes;
    uint64_t src_bytes, out_bytes;
    int64_t n_params;
    double bpw;             /* output bits per weight over all tensors */
    int n_fallback;
    slm_report_tensor *tensors; /* owned */
    size_t n_tensors;
    slm_report_eval eval;
    slm_report_gate gates[SLM_REPORT_MAX_GATES];
    int n_gates;
    slm_report_manifest manifest;
    slm_report_train_point *train; /* owned; the training curve (distill), n_train points */
    size_t n_train;
} slm_report;

void slm_report_free(slm_report *r);
/* Writers add their files to an output set (core/afile.h): the caller commits it with the
   command's other outputs, so a failed report leaves no model behind, and vice versa. */
int slm_report_write_json(slm_outset *os, const slm_report *r, const char *path, slm_err *err);
/* The same JSON as a string (no trailing newline; free() it); NULL when out of memory. */
char *slm_report_json_string(const slm_report *r);
/* Reads a JSON report written by slm (for `slm report`). Missing fields read as 0 or "";
   integer fields that are not integers in range are refused. */
int slm_report_read_json(slm_report *r, const char *path, slm_err *err);
/* The same from len bytes of text (tests, fuzzing); `what` names the input in messages. */
int slm_report_parse_json(slm_report *r, const char *text, size_t len, const char *what, slm_err *err);

/* ---- human-readable renderings (report_html.c). Deterministic bytes: no timestamps, fixed
   number formats; NaN shows as "n/a", Inf as "∞", absent values as "—". n_runs >= 1. */

/* File names slm_report_write_dir writes inside its folder. */
#define SLM_REPORT_JSON_NAME "report.json"   /* one run */
#define SLM_REPORT_JSONS_NAME "reports.json" /* several runs: a JSON array of report objects */
#define SLM_REPORT_MD_NAME "report.md"
#define SLM_REPORT_HTML_NAME "report.html"

/* One run: facts, evaluation, per-tensor table and totals. Several runs: a comparison table
   (one row per run, sorted by output size) and a per-tensor relative RMSE matrix. */
int slm_report_write_markdown(slm_outset *os, const slm_report *runs, size_t n_runs, const char *path, slm_err *err);
/* One self-contained page (inline CSS and SVG, no script, no external resources). One run:
   bar charts of bits per weight and relative RMSE per tensor, then the tables. Several runs:
   a scatter of size (or bpw) against mean KLD (else ΔPPL, PPL, or weighted weight error). */
int slm_report_write_html(slm_outset *os, const slm_report *runs, size_t n_runs, const char *path, slm_err *err);
/* mkdir -p dir, then writes (each atomically) report.json for one run or reports.json for
   several, report.md and report.html. Existing files are replaced: callers decide (-f). */
int slm_report_write_dir(slm_outset *os, const slm_report *runs, size_t n_runs, const char *dir, slm_err *err);
/* dir/name into buf (no doubled '/'); returns buf. */
const char *slm_report_dir_file(char *buf, size_t cap, const char *dir, const char *name);

#endif
