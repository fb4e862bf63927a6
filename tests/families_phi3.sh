#!/bin/sh
# families_phi3.sh - Phi-3 / Phi-3.5 (issue 13, docs/families.md 4) through every command, on
# build/mkfamily's small random checkpoints (fused qkv_proj / gate_up_proj, longrope), against
# llama.cpp's numbers recorded in tests/ref (tests/ref/make_phi3_ref.sh; no Python or llama.cpp
# needed here):
#  1. slm convert --outtype f32 of bf16 (seed 1) and f16 (seed 2) checkpoints: every metadata
#     key (attn_factor second, general.finetune/basename, sliding_window) and every tensor's bytes
#     (attn_qkv and ffn_up kept fused, rope_factors_long/short) as convert_hf_to_gguf.py writes them;
#     also without longrope (tests/ref/phi3_4k.sh: Phi-3-mini-4k-like), and its PPL;
#  2. eval --numerics ggml: perplexity equal to llama.cpp's to 4 significant digits at ctx 64
#     (short rope factors) and at ctx 4160 (> the original 4096: long factors); greedy ids;
#  3. calibrate (imatrix entries named attn_qkv / ffn_up); quantize Q4_K_M: tensors byte for byte
#     llama-quantize's (attn_qkv counted as attn_v), PPL within 0.5% of llama.cpp's; quantize with
#     --calibration (gptq) and --method awq; prune magnitude, wanda, ffn, layers; the ffn-pruned
#     model (fused gate|up rows cut together) has llama.cpp's PPL on the same file to 4 digits;
#     prune heads and prune --format hf refused; distill of the ffn-pruned student lowers its KLD
#     to the teacher (fused matrices trained as one); eval and generate of the HF folder.
FAMILY=phi3
. tests/famlib.sh
ppl() { "$SLM" eval "$1" --text "${4:-$T/text.txt}" --ctx ${3:-64} --chunks ${2:-20} --numerics ggml --json -q | sed -n "s/.*\"ppl\":[[:space:]]*\([0-9.e+-]*\).*/\1/p" | head -1; }

# 1. conversion against convert_hf_to_gguf.py
for spec in bf16:1 f16:2; do
    dtype=${spec%%:*} seed=${spec#*:}
    d=$T/phi3-$dtype
    "$BUILD/mkfamily" phi3 "$d" --dtype "$dtype" --seed "$seed" > /dev/null || { bad "mkfamily $spec"; continue; }
    "$SLM" convert "$d" -o "$d.gguf" --outtype f32 -q || { bad "convert $spec"; continue; }
    sh tests/ref/gguf_digest.sh "$d.gguf" > "$d.digest"
    if cmp -s "$d.digest" "tests/ref/phi3-$dtype-s$seed.digest"; then ok "phi3 $dtype seed $seed: $(grep -c '^kv' "$d.digest") keys and $(grep -c '^tensor' "$d.digest") tensors as convert_hf_to_gguf.py"
    else bad "phi3 $dtype seed $seed differs from convert_hf_to_gguf.py:"; diff "tests/ref/phi3-$dtype-s$seed.digest" "$d.digest" | head -5; fi
done
d=$T/phi3-4k
"$BUILD/mkfamily" phi3 "$d" --seed 1 > /dev/null && sh tests/ref/phi3_4k.sh "$d" && "$SLM" convert "$d" -o "$d.gguf" --outtype f32 -q || bad "convert phi3 4k"
sh tests/ref/gguf_digest.sh "$d.gguf" > "$d.digest"
cmp -s "$d.digest" tests/ref/phi3-4k-bf16-s1.digest && ok "phi3 without longrope: $(grep -c '^tensor' "$d.digest") tensors and the keys as convert_hf_to_gguf.py" ||
    { bad "phi3 without longrope differs from convert_hf_to_gguf.py:"; diff tests/ref/phi3-4k-bf16-s1.digest "$d.digest" | head -5; }
p=$(ppl "$d.gguf") lp=$(sed -n 's/^f32_ppl //p' tests/ref/phi3-4k-bf16-s1.llama)
if [ -n "$p" ] && same4 "$p" "$lp"; then ok "phi3 without longrope: PPL $p, llama.cpp $lp"; else bad "phi3 without longrope: PPL '$p', llama.cpp $lp"; fi

d=$T/phi3-bf16 g=$T/phi3-bf16.gguf
if [ -f "$g" ]; then
    # 2. perplexity (short and long rope factors) and greedy ids
    p=$(ppl "$g") lp=$(refv phi3 f32_ppl)
    if [ -n "$p" ] && same4 "$p" "$lp"; then ok "phi3 eval --numerics ggml PPL $p, llama.cpp $lp (ctx 64: short factors)"; else bad "phi3 eval PPL '$p', llama.cpp $lp"; fi
    p=$(ppl "$g" 1 4160 "$T/calib.txt") lp=$(refv phi3 long_ppl)
    if [ -n "$p" ] && same4 "$p" "$lp"; then ok "phi3 eval --numerics ggml PPL $p, llama.cpp $lp (ctx 4160: long factors)"; else bad "phi3 eval ctx 4160 PPL '$p', llama.cpp $lp"; fi
    check_greedy phi3 "$g"
    # 3. the other commands
    "$SLM" calibrate "$g" --text "$T/calib.txt" --ctx 64 --chunks 4 -o "$T/stats.gguf" -q || bad "phi3 calibrate"
    names=$("$SLM" inspect "$T/stats.gguf" | sed -n 's/^  \(blk\.0\.[a-z_]*\.weight\)\.in_sum2 .*/\1/p' | tr '\n' ' ')
    [ "$names" = "blk.0.attn_output.weight blk.0.attn_qkv.weight blk.0.ffn_down.weight blk.0.ffn_up.weight " ] &&
        ok "phi3 calibrate: imatrix entries $names" || bad "phi3 calibrate entries '$names'"
    "$SLM" quantize "$g" -o "$T/q4.gguf" --type Q4_K_M -q || bad "phi3 quantize"
    sh tests/ref/gguf_digest.sh "$T/q4.gguf" | grep '^tensor ' > "$T/q4.digest"
    cmp -s "$T/q4.digest" tests/ref/phi3-bf16-s1.q4km.digest && ok "phi3 Q4_K_M: tensors as llama-quantize's" || bad "phi3 Q4_K_M tensors differ from llama-quantize's"
    p=$(ppl "$T/q4.gguf") lp=$(refv phi3 q4km_ppl)
    if [ -n "$p" ] && awk -v a="$p" -v b="$lp" 'BEGIN { d = a / b - 1; exit !(d < 0.005 && d > -0.005) }'; then ok "phi3 Q4_K_M PPL $p, llama.cpp $lp"
    else bad "phi3 Q4_K_M PPL '$p', llama.cpp $lp"; fi
    for m in gptq awq; do
        "$SLM" quantize "$g" -o "$T/q4$m.gguf" --type Q4_K_M --calibration "$T/stats.gguf" --method $m -q && p=$(ppl "$T/q4$m.gguf" 4) &&
            [ -n "$p" ] && ok "phi3 quantize --method $m: PPL $p" || bad "phi3 quantize --method $m"
    done
    for m in magnitude wanda ffn layers; do
        extra=; case $m in ffn) extra=--uniform;; esac
        if "$SLM" prune "$g" -o "$T/$m.gguf" --method $m --sparsity 0.25 $extra --calibration "$T/stats.gguf" -q &&
           p=$(ppl "$T/$m.gguf" 4) && [ -n "$p" ]; then ok "phi3 prune $m: PPL $p"; else bad "phi3 prune $m"; fi
    done
    "$SLM" prune "$g" -o "$T/ffn25.gguf" --method ffn --sparsity 0.25 --uniform -q || bad "phi3 prune ffn (weight norms)"
    p=$(ppl "$T/ffn25.gguf") lp=$(refv phi3 ffn25_ppl)
    if [ -n "$p" ] && same4 "$p" "$lp"; then ok "phi3 prune ffn 25%: PPL $p, llama.cpp $lp on the same file"; else bad "phi3 prune ffn PPL '$p', llama.cpp $lp"; fi
    msg=$("$SLM" prune "$g" -o "$T/heads.gguf" --method heads --sparsity 0.25 --uniform 2>&1)
    [ $? -eq 1 ] && [ "$msg" = "slm: error: --method heads: llama.cpp's phi3 needs heads x head dim = embedding length (attn_output is square), so phi3 heads cannot be removed (use --method ffn or layers)" ] &&
        [ ! -e "$T/heads.gguf" ] && ok "phi3 prune heads refused" || bad "phi3 prune heads: '$msg'"
    msg=$("$SLM" prune "$d" -o "$T/phi3.hf" --method magnitude --format hf 2>&1)
    [ $? -eq 1 ] && [ "$msg" = "slm: error: writing phi3 models as a Hugging Face folder is not supported yet (write a GGUF)" ] &&
        [ ! -e "$T/phi3.hf" ] && ok "phi3 prune --format hf refused: $msg" || bad "phi3 prune --format hf: '$msg'"
    p=$("$SLM" eval "$d" --text "$T/text.txt" --ctx 64 --chunks 20 -q --json | sed -n "s/.*\"ppl\":[[:space:]]*\([0-9.e+-]*\).*/\1/p" | head -1)
    [ -n "$p" ] && same4 "$p" "$(refv phi3 f32_ppl)" && ok "phi3 eval of the HF folder: PPL $p" || bad "phi3 eval of the HF folder: '$p'"
    "$SLM" generate "$d" -p "Once" -n 4 > /dev/null || bad "phi3 generate from the HF folder"
    kld() { "$SLM" eval "$1" --text "$T/text.txt" --ctx 64 --chunks 20 --ref "$g" --json -q | sed -n 's/.*"kld_mean":[[:space:]]*\([0-9.e+-]*\).*/\1/p' | head -1; }
    if "$SLM" distill --teacher "$g" --student "$T/ffn25.gguf" --text "$T/calib.txt" -o "$T/d.gguf" --steps 30 --ctx 64 --batch 4 --lr 1e-4 -q; then
        k0=$(kld "$T/ffn25.gguf") k1=$(kld "$T/d.gguf")
        [ -n "$k0" ] && [ -n "$k1" ] && awk -v a="$k1" -v b="$k0" 'BEGIN { exit !(a < 0.95 * b) }' &&
            ok "phi3 distill (ffn-pruned student, 30 steps): KLD to the teacher $k0 -> $k1" || bad "phi3 distill: KLD '$k0' -> '$k1'"
    else bad "phi3 distill"; fi
fi
[ "$fails" -eq 0 ] && echo "families_phi3: all ok" || echo "families_phi3: $fails failed"
[ "$fails" -eq 0 ]
