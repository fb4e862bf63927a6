/* layers.h - the layer kernels of the reference transformer, one forward per layer (llm.c style).
 *
 * Owns: embedding, rmsnorm, matmul, rope, attention (causal, grouped-query, over a KV cache),
 * swiglu and residual forwards and their `*_backward` passes (llm.c's pairing: gradient outputs
 * first, then dout, then the saved forward tensors, then dims; gradients accumulate with +=,
 * so one flat gradient buffer laid out like the parameters collects every contribution);
 * the packed "panel" layout of weight matrices and key caches; a fast exp shared by the kernels.
 * Must not: allocate, fail, print, or depend on the thread count: every output element is
 * computed by one fixed sequence of float operations (the "canonical order" stated at each
 * kernel), so results are bit-identical for any number of threads, for any batch split (T=1
 * decoding equals the batched forward), and between the AVX2 and the scalar reference paths.
 *
 * Dimension legend: B batch (always 1 here), T tokens of this call, C model dim, OC output
 * channels of a matmul, H query heads, Hkv kv heads, D head dim, F ffn dim, V vocab, L layers,
 * S key positions visible to a token (pos0 + t + 1), N a flat element count.
 * Argument order: outputs first, then inputs, parameters, dims (llm.c).
 * Backward passes follow the same rules: each parallel loop owns its outputs (matmul runs one
 * loop over tokens for dinp and one over panels for dweight/dbias, attention one over queries
 * for dq and one over keys for dk/dv), so there are no atomics and every gradient element is
 * one fixed sequence of float operations: bit-identical for any thread count and between the
 * AVX2 and scalar paths.
 *
 * Panels: a matrix W (OC, C) (PyTorch Linear, out x in) is stored as ceil(OC/16) panels of
 * (C, 16): W[o][c] is at wp[(o/16)*C*16 + c*16 + o%16], rows past OC are zero. A matmul then
 * accumulates 16 output channels of one token in one register pair with a broadcast input
 * value, with no horizontal sums; the key cache uses the same layout over positions.
 */
#ifndef SLM_LAYERS_H
#define SLM_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "model/config.h"

#define SLM_PANEL 16

/* Floats a panel-packed (OC, C) matrix takes: ceil(OC/16) * 16 * C. */
static inline size_t slm_panel_floats(int64_t OC, int64_t C) {
    return (size_t)((OC + SLM_PANEL - 1) / SLM_PANEL) * SLM_PANEL * (size_t)C;
}
/* Index of W[o][c] in a panel-packed (., C) matrix. */
static inline size_t slm_panel_index(int64_t o, int64_t c, int64_t C) {
    return (size_t)(o / SLM_PANEL) * SLM_PANEL * (size_t)C + (size_t)c * SLM_PANEL + (size_t)(o % SLM_PANEL);
}
/* Writes rows [o0, o0+n) of W, given row-major in w (n, C), into the packed matrix wp. */
void slm_panel_pack_rows(float *wp, const float *w, int64_t o0, int64_t n, int64_t C);
/* Reads them back: w (n, C) = rows [o0, o0+n) of wp. */
void slm_panel_unpack_rows(float *w, const float *wp, int64_t o0, int64_t n, int64_t C);

/* exp(x) for x <= 0 as used by softmax and silu (Cephes-style polynomial, ~1 ulp on [-87, 0],
   0 below -87.3). The AVX2 kernels evaluate the very same operations lane-wise. */
float slm_expf(float x);

/* out (T,C) = wte[tokens] ; PyTorch: out = self.wte(tokens). wte is panel-packed (V, C).
   Ids are checked by the caller. */
void slm_embedding_forward(float *out, const int32_t *tokens, const float *wte, int T, int C);
/* dwte (V,C) panel-packed += dout (T,C) scattered to the rows of tokens (T).
   Forward: out[t] = wte[tokens[t]]. Canonical order: each dwte element adds its tokens' dout
   values one by one in token order. Parallel over channels (a channel owns its column). */
void slm_embedding_backward(float *dwte, const float *dout, const int32_t *tokens, int T, int C);

/* out (T,C), rstd (T) ; PyTorch (Llama): x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w
   Canonical order: sum of squares in double, in index order. */
void slm_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, int T, int C, float eps);
/* dinp (T,C) += , dweight (C) += ; dout (T,C), the forward's inp (T,C), weight (C) and rstd (T).
   Forward: out = inp * rstd * weight, rstd = 1/sqrt(mean(inp^2) + eps), so with g = dout * weight:
   dinp = rstd * g - inp * rstd^3 / C * sum_c(g * inp); dweight = sum_t dout * inp * rstd.
   Canonical order: the per-token dot sum_c(g * inp) in double, in index order; dweight[c] sums
   its tokens in order in float. Two loops: over tokens (dinp), over channels (dweight). */
void slm_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                          const float *rstd, int T, int C);

/* out (T,OC) = inp (T,C) @ W^T (+ bias (OC)) ; PyTorch: out = F.linear(inp, W, bias).
   W panel-packed (OC, C). Rows of out are ld_out floats apart (>= OC), so a matmul can write
   into a column slice of a wider activation. Canonical order: acc = 0; for c in 0..C-1:
   acc = fmaf(inp[t][c], W[o][c], acc); then acc + bias[o]. Parallel over panels. */
void slm_matmul_forward(float *out, int ld_out, const float *inp, const float *wp, const float *bias, int T, int C,
                        int OC);
/* The same numbers through plain C (fmaf), the algorithmic reference the fast path is tested against. */
void slm_matmul_forward_ref(float *out, int ld_out, const float *inp, const float *wp, const float *bias, int T, int C,
                            int OC);
/* dinp (T,C) += dout @ W ; dweight (OC,C) += dout^T @ inp, panel-packed like W (same floats,
   padding rows stay 0) ; dbias (OC) += sum_t dout. dout (T,OC) rows ld_dout floats apart (a
   column slice of a wider gradient); inp (T,C) the forward's input; W panel-packed (OC,C).
   Forward: out = inp @ W^T + bias. dinp, dweight or dbias may be NULL (not wanted).
   Canonical order: dinp[t][c]: per chunk of 256 output channels (in order), one fmaf chain
   acc = fmaf(dout[t][o], W[o][c], acc) over the chunk's o in order, then added; dweight[o][c]:
   per block of 96 tokens (in order), acc = fmaf(inp[t][c], dout[t][o], acc) over the block's t,
   then added; dbias[o]: acc += dout[t][o] over all t, then added. Two parallel loops: items of
   (16 input channels, 96 tokens) own dinp blocks, panels own dweight and dbias. */
void slm_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout, int ld_dout, const float *inp,
                         const float *wp, int T, int C, int OC);
void slm_matmul_backward_ref(float *dinp, float *dweight, float *dbias, const float *dout, int ld_dout, const float *inp,
                             const float *wp, int T, int C, int OC);

/* A weight matrix (OC, C) as stored: OC rows of C values in dtype (any type the codec can
   read), row r at data + r * row_bytes; borrowed (a mapped file) or owned by the model. */
typedef struct slm_wmat {
    int dtype;
    const uint8_t *data;
    size_t row_bytes;
    int64_t rows, cols;
    const char *file; /* where it was read from (messages); borrowed like data */
} slm_wmat;

/* out (T,OC) = inp (T,C) @ W^T (+ bias) with W stored as w: each panel of 16 rows is
   dequantized (ggml's to_float) into the calling thread's scratch, packed, and multiplied by
   the panel kernel above, so the result equals slm_matmul_forward on the dequantized matrix
   bit for bit (same canonical order). scratch: n_scratch buffers of slm_matmul_scratch_floats(C)
   floats, one per thread (the loop runs on at most n_scratch threads). bad (OC/16 + 1 bytes,
   zeroed by the caller): set for panels with a NaN/Inf weight. */
size_t slm_matmul_scratch_floats(int64_t C);
void slm_matmul_forward_typed(float *out, int ld_out, const float *inp, const slm_wmat *w, const float *bias, int T, int C,
                              int OC, float *scratch, int n_scratch, uint8_t *bad);
/* out (T,OC) = act @ W^T (+ bias) as llama.cpp's CPU backend computes it: act holds the T input
   rows already quantized to W's vec_dot type (qtypes.h; ggml_numerics.h slm_quantize_act_rows),
   act_row_bytes apart, and every element is the type's vec_dot (quants.h slm_dot_rows: ggml's
   lane order, bit for bit), plus bias[o] after. Parallel over groups of 16 output rows (each
   group sweeps the tokens in chunks), so no number depends on the thread count. bad (OC/16 + 1
   bytes): set for groups with a NaN/Inf output (the caller checks whether a weight caused it). */
void slm_matmul_forward_dot(float *out, int ld_out, const void *act, size_t act_row_bytes, const slm_wmat *w,
                            const float *bias, int T, int C, int OC, uint8_t *bad);
/* out (T,C) = rows tokens[t] of the stored matrix w (V, C), dequantized: the embedding lookup. */
void slm_embedding_forward_typed(float *out, const int32_t *tokens, const slm_wmat *w, int T, int C);

/* Rotates n_heads heads of D values in place, for tokens at positions pos0 .. pos0+T-1.
   x: (T, ld) with the heads at x[t*ld + h*D ...]. cs: (positions, D/2) pairs (cos, sin) of
   angle pos * theta^(-2i/D) / scale. neox = 0: pairs (x[2i], x[2i+1]) (llama.cpp ROPE_NORM,
   GGUF's interleaved q/k rows); neox = 1: pairs (x[i], x[i+D/2]) (NEOX, HF rotate_half).
   PyTorch (rotate_half): q * cos + rotate_half(q) * sin. */
void slm_rope_forward(float *x, int ld, const float *cs, int T, int pos0, int n_heads, int D, int neox);
/* The transpose of the rotation, in place like the forward: dx (T, ld) holds d(rotated) on
   entry and d(input) on return (the rotation is linear: da = dy0 c + dy1 s, db = dy1 c - dy0 s).
   It is the one backward that overwrites instead of adding: the gradient of the q and k
   columns is rotated in the buffer that collected it. */
void slm_rope_backward(float *dx, int ld, const float *cs, int T, int pos0, int n_heads, int D, int neox);

/* Writes k and v of T tokens (rows of ld floats; k at column k_off, v at v_off, Hkv*D each)
   into the cache of one layer at positions pos0 ..: kc panel layout per kv head
   (Hkv, ctx/16, D, 16), i.e. position s of head g at kc[g*ctx*D + (s/16)*D*16 + d*16 + s%16];
   vc (Hkv, ctx, D). ctx is a multiple of 16. */
void slm_kv_store(float *kc, float *vc, const float *qkv, int ld, int k_off, int v_off, int T, int pos0, int Hkv, int D,
                  int ctx);

/* Causal grouped-query attention of T queries over the cache positions 0 .. pos0+t.
   out (T, H*D) ; lse (T, H) = log sum exp of the scaled scores (what a backward needs to
   recompute the probabilities without storing (H, T, S)).
   q: (T, ld) with head h at q[t*ld + h*D]; query head h reads kv head h / (H/Hkv).
   PyTorch: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True).
   Canonical order per (t, h): keys in chunks of 64 positions, scored 16 at a time (panels):
   score = ((c0 + c1) + (c2 + c3)) * (1/sqrt(D)), c_r the fmaf chain of q[d]*k[d] over
   d = r mod 4; online softmax across chunks: m grows to the chunk's max (rescaling l and the
   outputs by slm_expf(m_old - m)), p = slm_expf(s - m), l += each panel's 16 p's summed in a
   fixed pairwise tree; R = max(1, 64/D rounded down to a power of two) output accumulators
   o_r[d] = fmaf(p_j, v_j[d], o_r[d]) over positions j = r mod R; out = (pairwise sum of the
   o_r) / l. (Interleaved chains hide FMA latency; chunks keep the softmax off the critical
   path.) Parallel over (head, tile of 8 queries); a tile reads each key chunk once. */
void slm_attention_forward(float *out, float *lse, const float *q, int ld, const float *kc, const float *vc, int T,
                           int pos0, int H, int Hkv, int D, int ctx);
void slm_attention_forward_ref(float *out, float *lse, const float *q, int ld, const float *kc, const float *vc, int T,
                               int pos0, int H, int Hkv, int D, int ctx);
/* Backward of causal GQA attention of one sequence of T tokens at positions 0 .. T-1.
   dqkv (T, ld) += gradients of q | k | v, laid out like qkv (T, ld): q heads at column 0, k at
   k_off, v at v_off (the forward's SLM_A_QKV rows, q and k after RoPE); delta (T, H) scratch
   the kernel fills (delta_i = dout_i . out_i per head, as llm.c passes datt); dout (T, H*D) the
   gradient of out; out (T, H*D) and lse (T, H) as the forward wrote them.
   Probabilities are recomputed: P_ij = exp(s_ij - lse_i), s_ij = (q_i . k_j) / sqrt(D), j <= i;
   dS_ij = P_ij (dout_i . v_j - delta_i); dq_i = sum_j dS_ij k_j / sqrt(D);
   dk_j = sum_{h in group, i >= j} dS_ij q_i / sqrt(D); dv_j = sum_{h in group, i >= j} P_ij dout_i.
   Canonical order: every dot product over D as 8 lane chains (d mod 8) of fmaf summed
   ((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7)); P = slm_expf(dot * scale - lse); each dq,
   dk, dv element one fmaf chain over its keys (queries) in index order, the query heads of a
   group in order, then scaled and added. Two parallel loops: (head, query) items own dq and
   delta rows, (kv head, key) items own dk and dv rows. */
void slm_attention_backward(float *dqkv, float *delta, const float *dout, const float *qkv, const float *out,
                            const float *lse, int ld, int k_off, int v_off, int T, int H, int Hkv, int D);
void slm_attention_backward_ref(float *dqkv, float *delta, const float *dout, const float *qkv, const float *out,
                                const float *lse, int ld, int k_off, int v_off, int T, int H, int Hkv, int D);
/* out (T,F) = silu(gate) * up with gate_up (T, 2F) = [gate | up] ; PyTorch: F.silu(g) * u,
   silu(g) = g / (1 + exp(-g)) with slm_expf (g >= 0 uses 1/(1+e^-g), g < 0 uses e^g/(1+e^g)). */
void slm_swiglu_forward(float *out, const float *gate_up, int T, int F);
void slm_swiglu_forward_ref(float *out, const float *gate_up, int T, int F);
/* dgate_up (T, 2F) += [dgate | dup] ; dout (T,F), gate_up (T, 2F) as the forward read it.
   Forward: out = silu(g) * u, so dup = dout * silu(g), dgate = dout * u * sig(g) (1 + g (1 - sig(g))),
   sig computed as the forward does (slm_expf of -|g|). Parallel over tokens. */
void slm_swiglu_backward(float *dgate_up, const float *dout, const float *gate_up, int T, int F);
void slm_swiglu_backward_ref(float *dgate_up, const float *dout, const float *gate_up, int T, int F);

/* out (N) = inp1 + inp2 ; PyTorch: x = x + f(x). out may alias inp1. */
void slm_residual_forward(float *out, const float *inp1, const float *inp2, int64_t N);
/* dinp1 (N) += dout ; dinp2 (N) += dout. Forward: out = inp1 + inp2. dinp1 may be dout itself
   (the stream's gradient flows on in place), then only dinp2 is added. */
void slm_residual_backward(float *dinp1, float *dinp2, const float *dout, int64_t N);

/* losses (T) ; PyTorch: F.cross_entropy(logits, targets, reduction='none') in double:
   -log p[target] with log p_i = (double)(x_i - max) - log(sum_i expf(x_i - max)), the sum in
   double (llama-perplexity's log_softmax). logits (T, V). */
void slm_crossentropy_forward(double *losses, const float *logits, const int32_t *targets, int T, int V);
/* dlogits (T,V) += dlosses[t] * (softmax(logits[t]) - onehot(targets[t])) ; dlosses (T) the
   gradient of each token's loss (1/n for a mean), logits (T,V) as the forward read them.
   Tokens with targets[t] < 0 are skipped (not scored). Forward: losses = -log softmax[target];
   softmax in double with the forward's max and sum. Parallel over tokens. */
void slm_crossentropy_softmax_backward(float *dlogits, const float *dlosses, const float *logits, const int32_t *targets,
                                       int T, int V);

/* Per token of a reference model's logits lr (T,V) and a model's lm (T,V), log-softmax as
   above: kld (T) = sum_i p_ref,i (log p_ref,i - log p_i) over the full vocabulary (exactly 0
   for identical rows); nll_ref, nll (T) of targets; dp (T) = p[target] - p_ref[target]
   (llama-perplexity's delta p); same_top (T) = 1 when the argmaxes (lowest id on ties) agree.
   PyTorch: F.kl_div(log_softmax(lm), log_softmax(lr), log_target=True, reduction='none').sum(-1) */
void slm_kldiv_forward(double *kld, double *nll_ref, double *nll, double *dp, uint8_t *same_top, const float *lr,
                       const float *lm, const int32_t *targets, int T, int V);

/* 0: the scalar reference path; 1 (or more) when this CPU runs the AVX2+FMA kernels;
   SLM_SIMD_AVX512 where AVX-512 (F, VL, BW, VNNI; not with SLM_NO_AVX512=1) runs the matmul
   forward in 512-bit registers (the same chains). */
#define SLM_SIMD_AVX512 2
int slm_layers_simd(void);

/* ---- Gemma 2/3 (layer_gemma.c) ---- */
/* out (T, F) = gelu(gate) * up of gate_up (T, 2F), tanh GELU; ggml: read from ggml's F16 table
   (0 at x <= -10, x at x >= 10) as llama.cpp's CPU backend does. Backward (of the f32 form)
   adds into dgate_up, as slm_swiglu_backward. */
void slm_geglu_forward(float *out, const float *gate_up, int T, int F, int ggml);
void slm_geglu_backward(float *dgate_up, const float *dout, const float *gate_up, int T, int F);
/* x = cap * tanh(x / cap) in place; backward from the output y: d *= 1 - (y/cap)^2. */
void slm_softcap_forward(float *x, int64_t n, float cap);
void slm_softcap_backward(float *d, const float *y, int64_t n, float cap);
/* In-place RMSNorm of each of n_heads D-wide heads in rows x[t*ld ...] with weight w (D). */
void slm_head_rmsnorm_forward(float *x, int ld, const float *w, int T, int n_heads, int D, float eps);
/* Its backward, in place: d (rows d[t*ld ...], n_heads heads of D) holds dout and becomes d inp;
   dw (D) += sum over tokens and heads of dout * inp * rstd. inp is the forward's input (rows
   inp[t*ld_in ...]), rstd recomputed from it as the forward does. Canonical order: dw[d] sums
   tokens then heads in order in float; per head, sum(dout * w * inp) in double. */
void slm_head_rmsnorm_backward(float *d, int ld, float *dw, const float *inp, int ld_in, const float *w, int T,
                               int n_heads, int D, float eps);
/* Causal GQA attention as slm_attention_forward, with q already scaled (scale 1), scores
   soft-capped (cap > 0: cap * tanh(s / cap)) and, when n_swa > 0, key p0 seen by query p1 only
   if p1 - p0 < n_swa. f16: llama.cpp's per-query F16 flash attention (q, k, v rounded to f16
   by the caller, output accumulated in f16); else f32. Inference only (no backward). */
void slm_gemma_attention_forward(float *out, float *lse, const float *q, int ld, const float *kc, const float *vc, int T,
                                 int pos0, int H, int Hkv, int D, int ctx, float cap, int n_swa, int f16);

/* ---- Phi-3 (layer_phi3.c) ---- */
/* The RoPE table (n_pos, D/2, 2) of a phi3 config: cos, sin of pos * base^(-2i/D) / ff[i] times
   attn_factor, ff the long factors when n_pos > orig_ctx, else the short ones (none: 1). */
void slm_phi3_rope_table(float *cs, int n_pos, const slm_model_config *c);

#endif
