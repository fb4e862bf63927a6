#!/bin/sh
# families_gemma.sh - Gemma 2 and 3 (issue 13, docs/families.md 5, 6) through every command, on
# build/mkfamily's small random checkpoints, against llama.cpp's numbers recorded in tests/ref
# (tests/ref/make_gemma_ref.sh; no Python or llama.cpp needed here):
#  1. slm convert --outtype f32 of bf16 (seed 1) and f16 (seed 2) checkpoints: every metadata
#     key and every tensor's bytes as convert_hf_to_gguf.py writes them (tests/ref/*.digest);
#  2. eval --numerics ggml (ctx 64, 20 windows of the first 8000 bytes of tinystories_val.txt):
#     perplexity equal to llama.cpp's to 4 significant digits; greedy ids equal llama.cpp's;
#  3. calibrate; quantize Q4_K_M: tensors byte for byte llama-quantize's; its perplexity within
#     0.5% of llama.cpp's (quantized numerics are not bit-exact); prune (magnitude, wanda, ffn,
#     heads, layers) and eval of each; eval and generate of the HF folder; distill refused.
FAMILY=gemma
. tests/famlib.sh
ppl() { "$SLM" eval "$1" --text "$T/text.txt" --ctx 64 --chunks ${2:-20} --numerics ggml --json -q | sed -n "s/.*\"ppl\":[[:space:]]*\([0-9.e+-]*\).*/\1/p" | head -1; }

# 1. conversion against convert_hf_to_gguf.py
for spec in gemma2:bf16:1 gemma3:bf16:1 gemma2:f16:2 gemma3:f16:2; do
    convert_digest "$spec"
done

for fam in gemma2 gemma3; do
    d=$T/$fam-bf16 g=$T/$fam-bf16.gguf
    [ -f "$g" ] || continue
    # 2. perplexity and greedy ids
    p=$(ppl "$g") lp=$(refv $fam f32_ppl)
    if [ -n "$p" ] && same4 "$p" "$lp"; then ok "$fam eval --numerics ggml PPL $p, llama.cpp $lp"; else bad "$fam eval PPL '$p', llama.cpp $lp"; fi
    check_greedy "$fam" "$g"
    # 3. the other commands
    "$SLM" calibrate "$g" --text "$T/calib.txt" --ctx 64 --chunks 4 -o "$T/$fam.stats.gguf" -q || bad "$fam calibrate"
    check_q4km_digest "$fam" "$g"
    p=$(ppl "$T/$fam.q4.gguf") lp=$(refv $fam q4km_ppl)
    if [ -n "$p" ] && awk -v a="$p" -v b="$lp" 'BEGIN { d = a / b - 1; exit !(d < 0.005 && d > -0.005) }'; then ok "$fam Q4_K_M PPL $p, llama.cpp $lp"
    else bad "$fam Q4_K_M PPL '$p', llama.cpp $lp"; fi
    "$SLM" quantize "$g" -o "$T/$fam.q4i.gguf" --type Q4_K_M --calibration "$T/$fam.stats.gguf" -q || bad "$fam quantize --calibration"
    for m in magnitude wanda ffn heads layers; do
        extra=; case $m in ffn|heads) extra=--uniform;; esac
        if "$SLM" prune "$g" -o "$T/$fam.$m.gguf" --method $m --sparsity 0.25 $extra --calibration "$T/$fam.stats.gguf" -q &&
           p=$(ppl "$T/$fam.$m.gguf" 4) && [ -n "$p" ]; then ok "$fam prune $m: PPL $p"; else bad "$fam prune $m"; fi
    done
    msg=$("$SLM" prune "$d" -o "$T/$fam.hf" --method magnitude --format hf 2>&1)
    [ $? -eq 1 ] && [ "$msg" = "slm: error: writing $fam models as a Hugging Face folder is not supported yet (write a GGUF)" ] &&
        [ ! -e "$T/$fam.hf" ] && ok "$fam prune --format hf refused: $msg" || bad "$fam prune --format hf: '$msg'"
    "$SLM" eval "$d" --text "$T/text.txt" --ctx 64 --chunks 4 -q --json > /dev/null || bad "$fam eval of the HF folder"
    "$SLM" generate "$d" -p "Once" -n 4 > /dev/null || bad "$fam generate from the HF folder"
    msg=$("$SLM" distill --teacher "$g" --student "$g" --text "$T/calib.txt" -o "$T/$fam.d.gguf" --steps 1 --ctx 32 2>&1)
    [ $? -ne 0 ] && [ "$msg" = "slm: error: training $fam models is not supported yet" ] && [ ! -e "$T/$fam.d.gguf" ] &&
        ok "$fam distill refused: $msg" || bad "$fam distill: '$msg'"
done
[ "$fails" -eq 0 ] && echo "families_gemma: all ok" || echo "families_gemma: $fails failed"
[ "$fails" -eq 0 ]
