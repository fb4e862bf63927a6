/* cli.h - the subcommands and helpers shared between them.
 *
 * Exit status (documented in --help and the README): 0 ok, 1 failure (I/O, format,
 * unsupported, memory, data), 2 usage, 3 a quality gate failed (output kept),
 * 130/143 interrupted by SIGINT/SIGTERM (no output left behind).
 */
#ifndef SLM_CLI_H
#define SLM_CLI_H

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

/* Prints err (once) and returns the exit status for it. */
int cli_fail(const slm_err *err);
/* Refuses an existing output without force, and an output that is one of the inputs (same
   device and inode, or the output inside an input folder's files). Prints and returns 1. */
int cli_check_output(const char *out, int force, const char *input);
/* 1 when both paths name the same file (device and inode; the same string when either is missing). */
int cli_same_file(const char *a, const char *b);
/* The reference transformer for a model folder or GGUF file (one sequence of up to ctx tokens). */
int cli_model_build(const slm_src *s, slm_model *m, int ctx, slm_err *err);
/* Seconds since an arbitrary start (monotonic). */
double cli_now(void);
/* Peak resident set size of this process in bytes (getrusage). */
double cli_peak_rss(void);

#endif
