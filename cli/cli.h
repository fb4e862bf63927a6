/* cli.h - the subcommands and helpers shared between them.
 *
 * Exit status (documented in --help and the README): 0 ok, 1 failure (I/O, format,
 * unsupported, memory, data), 2 usage, 3 a quality gate failed (output kept),
 * 130/143 interrupted by SIGINT/SIGTERM (no output left behind).
 */
#ifndef SLM_CLI_H
#define SLM_CLI_H

#include "core/afile.h"
#include "core/err.h"
#include "formats/model_src.h"
#include "model/transformer.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_GATE = 3 };

int cmd_convert(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_prune(int argc, char **argv);
int cmd_distill(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);
int cmd_pack(int argc, char **argv);
int cmd_unpack(int argc, char **argv);

/* Prints err (once) and returns the exit status for it. */
int cli_fail(const slm_err *err);
/* The outputs of one command (the one output layer): every path is checked before any work
   (slm_output_check: not an input or a model folder's file, not another output, not a folder,
   FIFO or device, not "-", not existing without -f), all are written into one output set and
   committed together at the end, so a failure anywhere leaves none of them. */
#define CLI_MAX_INPUTS 256
typedef struct cli_outputs {
    const char *inputs[CLI_MAX_INPUTS];
    size_t n_in;
    const char *paths[SLM_OUTSET_MAX];
    size_t n;
    char own[SLM_OUTSET_MAX][4200]; /* paths made here (report folder files) */
    size_t n_own;
    int force;
    slm_outset set;
} cli_outputs;
void cli_outputs_init(cli_outputs *o, int force);
void cli_outputs_input(cli_outputs *o, const char *path); /* NULL is ignored */
/* One more output path (NULL is ignored); prints the refusal and returns EXIT_FAIL. */
int cli_outputs_add(cli_outputs *o, const char *path);
/* An output folder (HF model folder: core/adir.h's rules, slm_output_dir_check): checked now,
   written and committed by the command through an slm_adir. */
int cli_outputs_add_dir(cli_outputs *o, const char *dir);
/* The report folder's files (report.json or reports.json, report.md, report.html). */
int cli_outputs_add_report_dir(cli_outputs *o, const char *dir, size_t n_runs);
int cli_outputs_commit(cli_outputs *o, slm_err *err);
void cli_outputs_abort(cli_outputs *o);
/* 1 when both paths name the same file (device and inode; the same string when either is missing). */
int cli_same_file(const char *a, const char *b);
/* The reference transformer for a model folder or GGUF file (batch sequences of up to ctx tokens),
   its matrices mapped in their stored type: keep s open while m is used. numerics (SLM_NUMERICS_*)
   is set on m; ggml numerics get an f16 KV cache, as llama.cpp. */
/* slm_src_open, and for a folder's byte-level BPE tokenizer.json the tokenizer.ggml.pre llama.cpp's
   converter gives it by hashing a check text's tokenization (model/tok_chkhsh.h; formats/ cannot
   tokenize). Every command opens its models so. */
int cli_src_open(slm_src *s, const char *path, slm_err *err);
int cli_model_build(const slm_src *s, slm_model *m, int batch, int ctx, int numerics, slm_err *err);
/* The same with forwards of at most call_tokens tokens (B*T; slm_model_build_calls). */
int cli_model_build_calls(const slm_src *s, slm_model *m, int batch, int ctx, int call_tokens, int numerics, slm_err *err);
/* Seconds since an arbitrary start (monotonic). */
double cli_now(void);
/* Peak resident set size of this process in bytes (getrusage). */
double cli_peak_rss(void);

#endif
