/* imatrix_calib.h - calibration statistics (model/calib.h) as an imatrix file and back.
 *
 * Owns: the mapping between slm_calib and slm_imatrix: llama-imatrix's entries, keys and tensor
 * names, and slm's extra statistics as extra tensors that llama.cpp ignores (its loader pairs
 * only "<name>.in_sum2" with "<name>.counts"; llama-quantize and llama-imatrix --in-file load
 * such files unchanged). All F32:
 *   <tensor>.in_abs_sum    [n]     sum of |x| per column over the same rows as in_sum2, for every
 *                                  tensor that has an entry (q/k/v alike, as their in_sum2)
 *   <tensor>.gram          [n, n]  X^T X of the input, once per distinct input, filed under the
 *                                  first tensor reading it: attn_q (k and v share it),
 *                                  attn_output, ffn_gate (ffn_up shares it), ffn_down, output
 *   blk.N.cos_sim          [1]     mean over rows of cos(residual entering block N, leaving it)
 *   blk.N.ffn_channel_abs  [F]     mean |x| per channel of the ffn_down input
 *   blk.N.attn_head_abs    [H]     mean |x| per head of the attn_output input
 * The rows of every statistic are the entry's count (imatrix.chunk_count chunks of
 * imatrix.chunk_size tokens when llama-imatrix's schedule drops nothing).
 * Must not: read or write files itself (formats/imatrix.c does), print.
 */
#ifndef SLM_IMATRIX_CALIB_H
#define SLM_IMATRIX_CALIB_H

#include "core/err.h"
#include "formats/imatrix.h"
#include "model/calib.h"
#include "model/config.h"

/* Fills a zeroed im (GGUF format) with c's entries as llama-imatrix stores them (every weight of
   a block that got rows, output.weight when collected; imatrix.datasets = [dataset] unless NULL,
   imatrix.chunk_count = max count / ctx, imatrix.chunk_size = ctx) and, with extras, the extra
   tensors above. Without extras, slm_imatrix_save writes the file llama-imatrix would for the same
   sums. On failure im is freed. */
int slm_imatrix_from_calib(slm_imatrix *im, const slm_calib *c, const char *dataset, int extras, slm_err *err);

/* Fills a zeroed c for the model of cfg from an imatrix: sums of squares and counts from the
   entries (q/k/v: the first present; the same for gate/up), and whatever extras the file has
   (sums of |x|, Gram matrices, cosines; ffn_channel_abs and attn_head_abs are derived from the
   sums of |x| and not read). SLM_E_ARG "imatrix from another model?" when an entry names no
   matmul of cfg or has another width; SLM_E_FORMAT for an extra of the wrong type or shape.
   c->ctx and c->n_chunks come from imatrix.chunk_size and imatrix.chunk_count. */
int slm_calib_from_imatrix(slm_calib *c, const slm_imatrix *im, const slm_model_config *cfg, slm_err *err);

#endif
