/* tok_chkhsh.h - llama.cpp's tokenizer hash ("chkhsh") of a byte-level BPE vocabulary, and the
 * tokenizer.ggml.pre its converter assigns to known hashes (see tok_chkhsh.c).
 * Must not: print.
 */
#ifndef SLM_TOK_CHKHSH_H
#define SLM_TOK_CHKHSH_H

#include "core/err.h"
#include "model/vocab.h"

/* sha256 hex of the printed ids of the converter's check text, tokenized with v as it stands
   (its pre, merges and add_bos). */
int slm_vocab_chkhsh(const slm_vocab *v, char hex[65], slm_err *err);
/* The pre name llama.cpp's converter gives that hash (among those slm implements), or NULL. */
const char *slm_pre_by_chkhsh(const char *hex);
/* A BPE v's pre replaced by the hash's name when it is known; unchanged otherwise (also when v
   cannot tokenize the check text). */
void slm_vocab_pre_from_chkhsh(slm_vocab *v);

#endif
