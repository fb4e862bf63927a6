/* calib.h - calibration statistics of a model on a token stream, collected through the forward
 * observer (model/transformer.h): what importance-weighted quantization (imatrix), AWQ, GPTQ and
 * structured pruning read.
 *
 * Owns: slm_calib (per distinct matmul input of every layer: llama-imatrix's sums of squares and
 * counts, sums of |x|, optionally the Gram matrix X^T X; per block the cosine similarity of the
 * residual stream entering and leaving it), cutting the ids into llama-imatrix's chunks, batches
 * and ubatches, and the accessors. A data header as well: formats/imatrix_calib.c turns an
 * slm_calib into an imatrix file and back, so this header names the transformer only as a
 * forward-declared struct.
 * Must not: read or write files, tokenize, print; results do not depend on the thread count.
 *
 * What llama-imatrix (llama.cpp v0.5.0, tools/imatrix/imatrix.cpp) does, and slm_calib_run with
 * it (C = ctx, b = n_batch, u = n_ubatch):
 *  - ids are the text tokenized with add_special (BOS first when the vocab adds one); chunk k is
 *    ids[kC .. (k+1)C) with its first id replaced by BOS; n_chunks = n_ids / C (the tail is
 *    dropped), at most `chunks`. (--chunk N, which skips N chunks, is ids + N*C.)
 *  - it decodes S = max(1, b / C) chunks at once (S sequences of a batch; a batch of C tokens
 *    at most when C > b), and the llama.cpp scheduler cuts each batch into ubatches of
 *    k = max(1, u' / S) tokens per sequence (u' = min(u, b, S*C)), sequence after sequence
 *    inside a ubatch (kv cache per sequence: split_equal; one sequence: u' tokens in order);
 *  - every weight of a block ("blk.*") is a matmul whose input rows it sums: values[j] +=
 *    x[j]*x[j] in float, row after row in that order, counts += rows. q, k and v share their
 *    input (so do gate and up) and get identical entries; a ubatch of fewer than 16 tokens is
 *    not collected at all (nor counted); output.weight only with --process-output, and never
 *    for tied embeddings (its weight is token_embd.weight, not a "blk." name).
 *  - imatrix.chunk_count = max count / C, imatrix.chunk_size = C.
 * slm_calib_run forwards the same S chunks at once (B = S sequences) and sums the same rows in
 * the same order in float, so with the same activations the sums are bit-identical. The
 * activations themselves are the transformer's: with SLM_NUMERICS_GGML (F16 KV cache, ggml's
 * flash attention rounding) they are close to llama.cpp's CPU backend, not equal.
 */
#ifndef SLM_CALIB_H
#define SLM_CALIB_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "model/config.h"

struct slm_model;

/* The distinct matmul inputs of a block, in block order. */
typedef enum slm_calib_kind {
    SLM_CALIB_ATTN_IN,  /* attn_norm output: input of attn_q, attn_k, attn_v (C columns) */
    SLM_CALIB_ATTN_OUT, /* attention output: input of attn_output (H*D columns, head after head) */
    SLM_CALIB_FFN_IN,   /* ffn_norm output: input of ffn_gate, ffn_up (C columns) */
    SLM_CALIB_FFN_DOWN, /* silu(gate) * up: input of ffn_down (F columns) */
    SLM_CALIB_KINDS
} slm_calib_kind;

/* The widest input a Gram matrix is kept for (by default, and at most): 8192^2 doubles = 512 MiB. */
#define SLM_CALIB_GRAM_MAX 8192

/* Statistics of one distinct input X (rows = tokens summed, n columns). */
typedef struct slm_calib_input {
    int64_t n;       /* columns; 0: the model has no such input (removed sub-block, tied output) */
    int64_t count;   /* rows summed (llama-imatrix's "counts") */
    float *sum2;     /* (n) sum of x^2 per column, in float, llama-imatrix's order ("in_sum2") */
    double *abs_sum; /* (n) sum of |x| per column; NULL when not available (read from a plain imatrix) */
    double *gram;    /* (n, n) X^T X, row-major, symmetric; NULL unless asked and n <= gram_max_cols */
} slm_calib_input;

typedef struct slm_calib {
    slm_model_config cfg;  /* the model's (copied) */
    int n_layer;
    slm_calib_input *in;   /* (n_layer, SLM_CALIB_KINDS) */
    slm_calib_input out;   /* classifier input (output_norm output): only with process_output */
    double *cos_sum;       /* (n_layer) sum over rows of cos(x entering block l, x leaving it) */
    int64_t *cos_count;    /* (n_layer) rows in cos_sum */
    int64_t n_chunks;      /* chunks run */
    int ctx;               /* tokens per chunk (imatrix.chunk_size) */
} slm_calib;

/* Called after each forward (a batch of chunks), from the calling thread. */
typedef void (*slm_calib_progress_fn)(void *ud, int64_t chunks_done, int64_t n_chunks);

typedef struct slm_calib_opts {
    int ctx;             /* C: tokens per chunk (llama-imatrix -c; it defaults to 512); >= 1 */
    int64_t chunks;      /* run at most this many chunks (--chunks); 0: all */
    int32_t bos_id;      /* replaces the first id of every chunk; -1: the vocab adds no BOS */
    int n_batch;         /* llama-imatrix -b (0: 2048): chunks per forward, hence which rows count */
    int n_ubatch;        /* -ub (0: 512) */
    int gram;            /* 1: accumulate X^T X (double) for inputs of <= gram_max_cols columns */
    int gram_max_cols;   /* 0: SLM_CALIB_GRAM_MAX; larger values are refused */
    int process_output;  /* --process-output: also the classifier input (untied classifiers only) */
    slm_calib_progress_fn progress; /* or NULL */
    void *progress_ud;
} slm_calib_opts;

/* Sequences the model must be built for (slm_model_build_batch's max_batch): max(1, n_batch /
   ctx), at most the number of chunks. n_batch = ctx gives 1 (llama-imatrix -b C: the same
   rows, summed chunk after chunk). */
int slm_calib_batch(const slm_calib_opts *o, int64_t n_ids);
/* Tokens of one forward (slm_model_build_calls's max_tokens): llama-imatrix's ubatch, B
   sequences of min(u'/B, ctx) tokens (one sequence: u'), so activations never take more. */
int slm_calib_call_tokens(const slm_calib_opts *o, int64_t n_ids);

/* Bytes slm_calib_run allocates for cfg and o (statistics, Gram matrices, scratch for B
   sequences of ctx tokens), and of them the Gram matrices; the model itself is not counted. */
size_t slm_calib_bytes(const slm_model_config *cfg, const slm_calib_opts *o, int batch, size_t *gram_bytes);

/* Runs the chunks of ids through m (built with max_ctx >= ctx and max_batch >= slm_calib_batch)
   and fills a zeroed c. m's numerics are used as set; its observer is set during the run and
   restored after. SLM_E_ARG: bad options, ids outside the vocabulary, a model built too small;
   SLM_E_DATA: fewer ids than one chunk, a non-finite sum (llama-imatrix stops on those too);
   SLM_E_NOMEM. On failure c is freed. */
int slm_calib_run(slm_calib *c, struct slm_model *m, const int32_t *ids, int64_t n_ids, const slm_calib_opts *o,
                  slm_err *err);

/* Allocates a zeroed c for cfg: every input's n (per-layer widths), sum2 and counts zeroed;
   abs_sum (with_abs) and Gram matrices (gram_max_cols > 0: inputs up to that width) when
   asked; cos arrays. For readers (formats/imatrix_calib.c) and slm_calib_run. */
int slm_calib_init(slm_calib *c, const slm_model_config *cfg, int with_abs, int gram_max_cols, int process_output,
                   slm_err *err);

/* Safe on a zeroed or freed struct. */
void slm_calib_free(slm_calib *c);

/* ---- accessors ------------------------------------------------------------------------------ */

/* The input a weight reads, from its GGUF name: "blk.3.attn_k.weight" -> layer 3's
   SLM_CALIB_ATTN_IN; "output.weight" -> &c->out. NULL when the name is no matmul weight of a
   block (or the output), or the model has no such input. */
const slm_calib_input *slm_calib_find(const slm_calib *c, const char *gguf_name);
/* Kind of input a per-layer role reads (slm_role of model/catalog.h), -1 for non-matmul roles. */
int slm_calib_kind_of_role(int role);
/* The role whose GGUF name the shared statistics of a kind are filed under (Gram matrices):
   attn_q, attn_output, ffn_gate, ffn_down. */
int slm_calib_first_role(int kind);

/* Mean over rows of the cosine similarity between the residual stream entering block l and
   leaving it (near 1: the block changes little; ShortGPT's block influence is 1 - this).
   NaN when nothing was summed. */
double slm_calib_cos_sim(const slm_calib *c, int l);
/* Per FFN channel of block l, the mean |x| of the ffn_down input (F values), and per head the
   mean |x| over that head's D columns of the attn_output input (H values). SLM_E_ARG when the
   block has no such input or its sums of |x| are not available. */
int slm_calib_ffn_channel_abs(const slm_calib *c, int l, float *out, slm_err *err);
int slm_calib_attn_head_abs(const slm_calib *c, int l, float *out, slm_err *err);

/* ---- kernel (exported for the tests) ----------------------------------------------------- */

/* G (n, n) += X^T X over the rows rows[0 .. n_rows) of x (rows of n floats): every entry with
   j >= i (and some below the diagonal) gets one chain of fused multiply-adds in double over the
   rows in order, threads own row blocks: the same bits for any thread count, and for the AVX2
   (simd = 1, when the CPU has it) and the scalar path (simd = 0). slm_calib_run mirrors the
   upper triangle at the end. */
void slm_calib_gram_add(double *G, int64_t n, const float *x, const int32_t *rows, int64_t n_rows, int simd);

#endif
