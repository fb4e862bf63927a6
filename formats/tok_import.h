/* tok_import.h - tokenizer vocabularies in and out: Hugging Face folders and GGUF metadata.
 *
 * Owns: building an slm_vocab from a model folder the way llama.cpp's convert_hf_to_gguf.py
 * does for Llama-family models (tokenizer.model SentencePiece, tokenizer.json byte_fallback
 * BPE read as SentencePiece, or tokenizer.json byte-level BPE, plus the special-token rules of gguf-py's SpecialVocab), reading it from and writing it
 * to tokenizer.ggml.* keys, and freeing it.
 * Must not: print, guess a pre-tokenizer it does not recognise, or trust any number it reads.
 */
#ifndef SLM_TOK_IMPORT_H
#define SLM_TOK_IMPORT_H

#include "core/err.h"
#include "formats/gguf.h"
#include "model/vocab.h"

/* Fills v (overwritten; caller frees with slm_vocab_free, also after an error) from dir:
 *   - dir/tokenizer.model (SentencePiece ModelProto) -> SLM_VOCAB_SPM, pre "default", scores,
 *     types as the converter sets them, [PAD{i}] up to config.json's vocab_size,
 *     added_tokens.json and tokenizer_config.json's added_tokens_decoder applied;
 *   - else dir/tokenizer.json with a byte_fallback BPE and a Sequence decoder (SentencePiece
 *     exported by HF: Llama 2, TinyLlama), for LlamaForCausalLM / MistralForCausalLM only (as
 *     llama.cpp's LlamaModel.set_vocab reads it through gguf-py's LlamaHfVocab) -> SLM_VOCAB_SPM,
 *     pre "default", every score -1000, <0xHH> BYTE, special tokens CONTROL, tokens added
 *     after the vocabulary USER_DEFINED, no merges;
 *   - else dir/tokenizer.json (model.type BPE, byte-level) -> SLM_VOCAB_BPE with merges and a
 *     pre name chosen from the normalizer/pre_tokenizer structure (SLM_E_UNSUPPORTED naming
 *     the structure when it is not one we know).
 * Special ids, add_bos/add_sep/add_eos and chat_template follow SpecialVocab (tokenizer_config.json,
 * tokenizer.json added_tokens and post_processor, config.json); add_space_prefix is set only
 * from tokenizer_config.json's add_prefix_space, as the Llama converter writes it.
 * Errors name the file: "tokenizer.json: model.vocab is not an object". */
int slm_vocab_from_hf_dir(slm_vocab *v, const char *dir, slm_err *err);

/* The same from the bytes of one tokenizer.json (len bytes) or tokenizer.model (size bytes),
   as if it were alone in its folder (no config.json, tokenizer_config.json, merges.txt or
   added_tokens.json): tests and fuzzing. v as above. */
int slm_vocab_from_tokenizer_json(slm_vocab *v, const char *json, size_t len, slm_err *err);
int slm_vocab_from_tokenizer_model(slm_vocab *v, const uint8_t *data, size_t size, slm_err *err);

/* Reads tokenizer.ggml.* (model "llama" or "gpt2") from GGUF metadata into v (overwritten). */
int slm_vocab_from_kvs(slm_vocab *v, const slm_kvs *kv, slm_err *err);

/* Appends tokenizer.ggml.* in the order llama.cpp's converter writes them: add_space_prefix
 * (only when known), model, pre, tokens, scores (SPM), token_type, merges (BPE),
 * bos/eos/unknown/seperator/padding/mask/eot/eom ids (u32, those >= 0, in v->id_order),
 * add_bos_token/add_sep_token/add_eos_token (those known, in v->add_order), chat_template. */
int slm_vocab_to_kvs(const slm_vocab *v, slm_kvs *kv, slm_err *err);

/* Frees everything v owns and zeroes it; safe on a zeroed or already freed vocab. */
void slm_vocab_free(slm_vocab *v);

#endif
