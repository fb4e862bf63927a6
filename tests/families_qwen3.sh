#!/bin/sh
# families_qwen3.sh - Qwen3 (Qwen3ForCausalLM, issue 13, docs/families.md 3) through every
# command, on build/mkfamily's small random checkpoints, against llama.cpp's numbers recorded in
# tests/ref (tests/ref/make_qwen3_ref.sh; no Python or llama.cpp needed here):
#  1. slm convert --outtype f32 of bf16 (seed 1) and f16 (seed 2) checkpoints: every metadata
#     key (general.sampling.* from generation_config.json included) and every tensor's bytes as
#     convert_hf_to_gguf.py writes them (tests/ref/*.digest);
#  2. eval --numerics ggml (ctx 64, 20 windows of the first 8000 bytes of tinystories_val.txt):
#     perplexity equal to llama.cpp's to 4 significant digits, the f32 forward within 0.1%;
#     greedy ids equal llama.cpp's;
#  3. calibrate; quantize Q4_K_M: tensors byte for byte llama-quantize's; its perplexity within
#     0.5% of llama.cpp's (quantized numerics are not bit-exact); prune (magnitude, wanda, ffn,
#     heads, layers) and eval of each; distill of the FFN-pruned model (held-out KL to the
#     teacher goes down); prune --format hf (the HF folder converts to the GGUF output's
#     tensors); eval and generate of the HF folder; a reranker refused.
FAMILY=qwen3
. tests/famlib.sh
ppl() { "$SLM" eval "$1" --text "$T/text.txt" --ctx 64 --chunks ${2:-20} --numerics ${3:-ggml} --json -q | sed -n "s/.*\"ppl\":[[:space:]]*\([0-9.e+-]*\).*/\1/p" | head -1; }
fam=qwen3

# 1. conversion against convert_hf_to_gguf.py
for spec in bf16:1 f16:2; do
    dtype=${spec%%:*} seed=${spec#*:}
    d=$T/$fam-$dtype
    "$BUILD/mkfamily" "$fam" "$d" --dtype "$dtype" --seed "$seed" > /dev/null || { bad "mkfamily $fam $spec"; continue; }
    "$SLM" convert "$d" -o "$d.gguf" --outtype f32 -q || { bad "convert $fam $spec"; continue; }
    sh tests/ref/gguf_digest.sh "$d.gguf" > "$d.digest"
    if cmp -s "$d.digest" "tests/ref/$fam-$dtype-s$seed.digest"; then ok "$fam $dtype seed $seed: $(grep -c '^kv' "$d.digest") keys and $(grep -c '^tensor' "$d.digest") tensors as convert_hf_to_gguf.py"
    else bad "$fam $dtype seed $seed differs from convert_hf_to_gguf.py:"; diff "tests/ref/$fam-$dtype-s$seed.digest" "$d.digest" | head -5; fi
done

d=$T/$fam-bf16 g=$T/$fam-bf16.gguf
if [ -f "$g" ]; then
    # 2. perplexity and greedy ids
    p=$(ppl "$g") lp=$(refv $fam f32_ppl)
    if [ -n "$p" ] && same4 "$p" "$lp"; then ok "$fam eval --numerics ggml PPL $p, llama.cpp $lp"; else bad "$fam eval PPL '$p', llama.cpp $lp"; fi
    p=$(ppl "$g" 20 f32)
    if [ -n "$p" ] && within "$p" "$lp" 0.001; then ok "$fam eval --numerics f32 PPL $p, llama.cpp $lp"; else bad "$fam eval f32 PPL '$p', llama.cpp $lp"; fi
    check_greedy "$fam" "$g"
    # 3. the other commands
    "$SLM" calibrate "$g" --text "$T/calib.txt" --ctx 64 --chunks 4 -o "$T/$fam.stats.gguf" -q || bad "$fam calibrate"
    check_q4km_digest "$fam" "$g"
    p=$(ppl "$T/$fam.q4.gguf") lp=$(refv $fam q4km_ppl)
    if [ -n "$p" ] && within "$p" "$lp" 0.005; then ok "$fam Q4_K_M PPL $p, llama.cpp $lp"; else bad "$fam Q4_K_M PPL '$p', llama.cpp $lp"; fi
    "$SLM" quantize "$g" -o "$T/$fam.q4i.gguf" --type Q4_K_M --calibration "$T/$fam.stats.gguf" -q || bad "$fam quantize --calibration"
    for m in magnitude wanda ffn heads layers; do
        extra=; case $m in ffn|heads) extra=--uniform;; esac
        if "$SLM" prune "$g" -o "$T/$fam.$m.gguf" --method $m --sparsity 0.25 $extra --calibration "$T/$fam.stats.gguf" -q &&
           p=$(ppl "$T/$fam.$m.gguf" 4) && [ -n "$p" ]; then ok "$fam prune $m: PPL $p"; else bad "$fam prune $m"; fi
    done
    # the HF layout back (no permutation, q_norm/k_norm, head_dim): converting slm's HF output
    # gives the tensors of the GGUF output (llama.cpp's converter too, checked by hand)
    "$SLM" prune "$d" -o "$T/$fam.hf" --method magnitude --sparsity 0.25 --format hf -q &&
        "$SLM" prune "$d" -o "$T/$fam.hfg.gguf" --method magnitude --sparsity 0.25 -q &&
        "$SLM" convert "$T/$fam.hf" -o "$T/$fam.hf.gguf" --outtype f32 -q && "$SLM" convert "$T/$fam.hfg.gguf" -o "$T/$fam.hfg32.gguf" --outtype f32 -q ||
        bad "$fam prune --format hf"
    sh tests/ref/gguf_digest.sh "$T/$fam.hf.gguf" | grep '^tensor ' > "$T/$fam.hf.digest"
    sh tests/ref/gguf_digest.sh "$T/$fam.hfg32.gguf" | grep '^tensor ' > "$T/$fam.hfg.digest"
    if [ -s "$T/$fam.hf.digest" ] && cmp -s "$T/$fam.hf.digest" "$T/$fam.hfg.digest" && grep -q '"Qwen3ForCausalLM"' "$T/$fam.hf/config.json" &&
       grep -q '"head_dim":[[:space:]]*64' "$T/$fam.hf/config.json"; then ok "$fam prune --format hf: $(grep -c . "$T/$fam.hf.digest") tensors as the GGUF output's"
    else bad "$fam prune --format hf differs from the GGUF output"; fi
    p=$("$SLM" eval "$d" --text "$T/text.txt" --ctx 64 --chunks 20 --numerics ggml -q --json | sed -n "s/.*\"ppl\":[[:space:]]*\([0-9.e+-]*\).*/\1/p" | head -1)
    lp=$(refv $fam f32_ppl)
    # the bf16 weights are multiplied as bf16 (as llama.cpp would a BF16 GGUF): close, not equal
    if [ -n "$p" ] && within "$p" "$lp" 0.001; then ok "$fam eval of the HF folder: PPL $p"; else bad "$fam eval of the HF folder: '$p', llama.cpp $lp"; fi
    "$SLM" generate "$d" -p "Once" -n 4 > /dev/null || bad "$fam generate from the HF folder"
    # distill the FFN-pruned student back toward the model (q/k norm backward: tests/test_train.c):
    # the held-out KL to the teacher goes down
    if "$SLM" distill --teacher "$g" --student "$T/$fam.ffn.gguf" --text "$T/calib.txt" -o "$T/$fam.d.gguf" --steps 16 --ctx 64 \
        --batch 2 --lr 3e-4 --eval-text "$T/text.txt" --eval-ctx 64 --report "$T/$fam.d.json" -q &&
       k=$(sed -n 's/.*"kld":[[:space:]]*\([0-9.e+-]*\).*/\1/p' "$T/$fam.d.json" | tr '\n' ' ') &&
       set -- $k && [ $# -eq 2 ] && awk -v a="$1" -v b="$2" 'BEGIN { exit !(b < a) }' &&
       p=$(ppl "$T/$fam.d.gguf" 4) && [ -n "$p" ]; then ok "$fam distill: held-out KL to the teacher $1 -> $2, PPL $p"
    else bad "$fam distill: KL '$k'"; fi
    # llama.cpp's converter would make a reranker of this folder (docs/families.md 3a)
    mv "$d" "$T/Qwen3-Reranker-0.6B"
    msg=$("$SLM" convert "$T/Qwen3-Reranker-0.6B" -o "$T/rr.gguf" 2>&1)
    [ $? -ne 0 ] && [ "$msg" = "slm: error: $T/Qwen3-Reranker-0.6B/config.json: Qwen3 rerankers are not supported (Qwen3-Reranker-0.6B names one)" ] &&
        [ ! -e "$T/rr.gguf" ] && ok "$fam reranker refused: $msg" || bad "$fam reranker: '$msg'"
fi
[ "$fails" -eq 0 ] && echo "families_qwen3: all ok" || echo "families_qwen3: $fails failed"
[ "$fails" -eq 0 ]
