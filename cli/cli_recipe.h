/* cli_recipe.h - recipe files (--recipe FILE.json): a zoo's policy in one reviewed file instead
 * of flags scattered over a Makefile. A recipe is a JSON object whose keys are the command's
 * long options without the dashes ('_' for '-'), with two groups and one map:
 *
 *   { "method": "quantize",                       the command it is for (required)
 *     "about": "...",                             free text, ignored
 *     "type": "Q4_K_M", "pure": false, "output_tensor_type": "Q8_0",
 *     "tensor_types": { "ffn_down": "Q6_K" },     REGEX -> TYPE (--tensor-type REGEX=TYPE)
 *     "gates": { "max_kld": 0.05, "min_top1": 0.9, "max_ppl_delta": 0.5 },
 *     "eval":  { "text": "held_out.txt", "ctx": 128, "chunks": 8 } }   (--eval-text ...)
 *
 * A "prune" object is a pruning step before the command (a zoo's "ffn25-q4_k_m": prune, then
 * quantize the pruned model): its keys are slm prune's options ("method" there is --method).
 * `slm prune --recipe` applies the step alone when "method" names another command (and the whole
 * file when it is "prune"); the other commands skip the step.
 *
 * Values are checked as on the command line; options given on the command line override the
 * recipe's (lists add to it). Any fault is one line naming the file and the key.
 */
#ifndef SLM_CLI_RECIPE_H
#define SLM_CLI_RECIPE_H

#include "opts.h"

#define CLI_RECIPE_MAX_VALUES 256

typedef struct cli_recipe {
    void *root;                           /* the parsed cJSON tree (values point into it) */
    char *own[CLI_RECIPE_MAX_VALUES];     /* values made here (REGEX=TYPE, numbers) */
    int n_own;
} cli_recipe;

/* Applies the recipe at path to out (the command's options struct). 0, or the exit status
   after printing the fault (1: unreadable, 2: a bad key or value). */
int cli_recipe_apply(cli_recipe *r, const char *path, const cmd_spec *spec, void *out);
void cli_recipe_free(cli_recipe *r);

#endif
