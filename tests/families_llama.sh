#!/bin/sh
# families_llama.sh - the Llama-architecture families (issue 13, docs/families.md 1, 7, 8) through
# every command, on build/mkfamily's small random checkpoints, against llama.cpp's numbers recorded
# in tests/ref (tests/ref/make_llama_ref.sh; no Python or llama.cpp needed here):
#  1. slm convert --outtype f32 of bf16 (seed 1) and f16 (seed 2) checkpoints of llama3 (Llama 3.2:
#     rope_scaling llama3 -> the generated rope_freqs tensor, tied, head_dim != hidden/heads,
#     generation_config's sampling keys), smollm2 and tinyllama: every metadata key and every
#     tensor's bytes as convert_hf_to_gguf.py writes them (tests/ref/*.digest); --outtype f16
#     keeps rope_freqs F32;
#  2. eval --numerics ggml (ctx 64, 20 windows of the first 8000 bytes of tinystories_val.txt):
#     perplexity equal to llama.cpp's to 4 significant digits; greedy ids equal llama.cpp's; for
#     llama3 also ctx 512 (where the rope factors move the perplexity by 0.4%): ggml numerics to 4
#     digits, f32 numerics within 0.05%;
#  3. calibrate; quantize Q4_K_M: tensors byte for byte llama-quantize's (rope_freqs stays F32);
#     its perplexity within 0.5% of llama.cpp's; prune (magnitude, wanda, ffn, heads, layers) and
#     eval of each; eval and generate of the HF folder; prune --format hf (llama3: rope_scaling
#     kept in config.json, no rope_freqs in the safetensors, the same perplexity as the GGUF);
#     distill of a pruned GGUF (keeps rope_freqs) and of the HF folder; what is refused, by name.
FAMILY=llama
. tests/famlib.sh
ppl() { "$SLM" eval "$1" --text "$T/text.txt" --ctx ${3:-64} ${2:+--chunks $2} ${4:---numerics ggml} --json -q | sed -n "s/.*\"ppl\":[[:space:]]*\([0-9.e+-]*\).*/\1/p" | head -1; }

# 1. conversion against convert_hf_to_gguf.py
for spec in llama3:bf16:1 llama3:f16:2 smollm2:bf16:1 smollm2:f16:2 tinyllama:bf16:1 tinyllama:f16:2; do
    convert_digest "$spec"
done
grep -q '^tensor rope_freqs.weight F32 \[32\] ' "$T/llama3-bf16.digest" && ok "llama3: rope_freqs.weight F32 [32]" || bad "llama3: no rope_freqs.weight F32 [32]"
"$SLM" convert "$T/llama3-bf16" -o "$T/llama3-f16out.gguf" --outtype f16 -q &&
    "$SLM" inspect "$T/llama3-f16out.gguf" | grep -q '^  rope_freqs.weight  *F32 ' &&
    "$SLM" inspect "$T/llama3-f16out.gguf" | grep -q '^  token_embd.weight  *F16 ' && ok "llama3 --outtype f16: rope_freqs stays F32" || bad "llama3 --outtype f16"

for fam in llama3 smollm2 tinyllama; do
    d=$T/$fam-bf16 g=$T/$fam-bf16.gguf
    [ -f "$g" ] || continue
    # 2. perplexity and greedy ids
    p=$(ppl "$g" 20) lp=$(refv $fam f32_ppl)
    if [ -n "$p" ] && same4 "$p" "$lp"; then ok "$fam eval --numerics ggml PPL $p, llama.cpp $lp"; else bad "$fam eval PPL '$p', llama.cpp $lp"; fi
    check_greedy "$fam" "$g"
    if [ $fam = llama3 ]; then
        lp=$(refv $fam f32_ppl_ctx512) p=$(ppl "$g" "" 512) pf=$(ppl "$g" "" 512 --numerics=f32)
        if [ -n "$p" ] && same4 "$p" "$lp"; then ok "$fam ctx 512 PPL $p, llama.cpp $lp"; else bad "$fam ctx 512 PPL '$p', llama.cpp $lp"; fi
        if [ -n "$pf" ] && within "$pf" "$lp" 0.0005; then ok "$fam ctx 512 --numerics f32 PPL $pf"; else bad "$fam ctx 512 --numerics f32 PPL '$pf', llama.cpp $lp"; fi
    fi
    # 3. the other commands
    "$SLM" calibrate "$g" --text "$T/calib.txt" --ctx 64 --chunks 4 -o "$T/$fam.stats.gguf" -q || bad "$fam calibrate"
    check_q4km_digest "$fam" "$g"
    p=$(ppl "$T/$fam.q4.gguf" 20) lp=$(refv $fam q4km_ppl)
    if [ -n "$p" ] && within "$p" "$lp" 0.005; then ok "$fam Q4_K_M PPL $p, llama.cpp $lp"; else bad "$fam Q4_K_M PPL '$p', llama.cpp $lp"; fi
    "$SLM" quantize "$g" -o "$T/$fam.q4i.gguf" --type Q4_K_M --calibration "$T/$fam.stats.gguf" -q || bad "$fam quantize --calibration"
    for m in magnitude wanda ffn heads layers; do
        extra=; case $m in ffn|heads) extra=--uniform;; esac
        if "$SLM" prune "$g" -o "$T/$fam.$m.gguf" --method $m --sparsity 0.25 $extra --calibration "$T/$fam.stats.gguf" -q &&
           p=$(ppl "$T/$fam.$m.gguf" 4) && [ -n "$p" ]; then ok "$fam prune $m: PPL $p"; else bad "$fam prune $m"; fi
    done
    "$SLM" eval "$d" --text "$T/text.txt" --ctx 64 --chunks 4 -q --json > /dev/null || bad "$fam eval of the HF folder"
    "$SLM" generate "$d" -p "Once" -n 4 > /dev/null || bad "$fam generate from the HF folder"
    # prune --format hf: the folder reads back as the GGUF prune's model
    "$SLM" prune "$d" -o "$T/$fam.hf" --method magnitude --sparsity 0.25 --format hf -q &&
        "$SLM" prune "$d" -o "$T/$fam.mag.gguf" --method magnitude --sparsity 0.25 -q &&
        p=$(ppl "$T/$fam.hf" 4 64 --numerics=f32) && q=$(ppl "$T/$fam.mag.gguf" 4 64 --numerics=f32) && [ -n "$p" ] && [ "$p" = "$q" ] &&
        ok "$fam prune --format hf: PPL $p, as the pruned GGUF" || bad "$fam prune --format hf: PPL '${p:-}' vs GGUF '${q:-}'"
    "$SLM" distill --teacher "$g" --student "$T/$fam.ffn.gguf" --text "$T/calib.txt" -o "$T/$fam.d.gguf" --steps 2 --ctx 32 --batch 2 -q &&
        p=$(ppl "$T/$fam.d.gguf" 4) && q=$(ppl "$T/$fam.ffn.gguf" 4) && [ -n "$p" ] && [ "$p" != "$q" ] &&
        ok "$fam distill of the FFN-pruned GGUF: PPL $q -> $p" || bad "$fam distill: PPL '${q:-}' -> '${p:-}'"
    "$SLM" distill --teacher "$d" --student "$T/$fam.hf" --text "$T/calib.txt" -o "$T/$fam.dhf" --format hf --steps 1 --ctx 32 --batch 2 -q &&
        [ -f "$T/$fam.dhf/model.safetensors" ] && ok "$fam distill --format hf of the HF folder" || bad "$fam distill --format hf"
done

# llama3 specifics: what the written files hold, and refusals by name
"$SLM" inspect "$T/llama3.q4.gguf" | grep -q '^  rope_freqs.weight  *F32 ' && "$SLM" inspect "$T/llama3.d.gguf" | grep -q '^  rope_freqs.weight  *F32 ' &&
    ok "llama3 Q4_K_M and distilled GGUFs keep rope_freqs F32" || bad "llama3 rope_freqs in the Q4_K_M or distilled GGUF"
c=$T/llama3.hf/config.json
grep -q '"rope_type":[[:space:]]*"llama3"' "$c" && grep -q '"factor":[[:space:]]*32' "$c" && ! "$SLM" inspect "$T/llama3.hf/model.safetensors" 2>&1 | grep -q rope_freqs &&
    ok "llama3 prune --format hf: config.json keeps rope_scaling llama3, no rope_freqs tensor" || bad "llama3 prune --format hf config or tensors"
msg=$("$SLM" distill --teacher "$T/llama3-bf16.gguf" --student "$T/llama3.ffn.gguf" --text "$T/calib.txt" -o "$T/l3.dhf" --format hf --steps 1 --ctx 32 --batch 2 2>&1)
[ $? -ne 0 ] && [ "$msg" = "slm: error: the model's RoPE frequency factors (rope_freqs.weight) cannot be written as config.json rope_scaling: start from the Hugging Face folder" ] &&
    [ ! -e "$T/l3.dhf" ] && ok "llama3 distill --format hf of a GGUF refused: $msg" || bad "llama3 distill --format hf of a GGUF: '$msg'"
for ty in yarn longrope su; do
    rm -rf "$T/rs" && cp -r "$T/llama3-bf16" "$T/rs" && sed "s/\"rope_type\": \"llama3\"/\"rope_type\": \"$ty\"/" "$T/llama3-bf16/config.json" > "$T/rs/config.json"
    msg=$("$SLM" convert "$T/rs" -o "$T/rs.gguf" 2>&1)
    [ $? -ne 0 ] && [ "$msg" = "slm: error: $T/rs/config.json: rope_scaling $ty is not supported for LlamaForCausalLM (slm handles none, linear, dynamic, llama3)" ] &&
        [ ! -e "$T/rs.gguf" ] && ok "rope_scaling $ty refused: ${msg#*: rope_scaling }" || bad "rope_scaling $ty: '$msg'"
done
# dynamic: llama.cpp's converter writes nothing (plain RoPE); so does slm
sed 's/"rope_type": "llama3"/"rope_type": "dynamic"/' "$T/llama3-bf16/config.json" > "$T/rs/config.json"
"$SLM" convert "$T/rs" -o "$T/rs.gguf" --outtype f32 -q && ! "$SLM" inspect "$T/rs.gguf" | grep -q -e rope_freqs -e rope.scaling &&
    ok "rope_scaling dynamic: no rope key, no rope_freqs (as convert_hf_to_gguf.py)" || bad "rope_scaling dynamic"
[ "$fails" -eq 0 ] && echo "families_llama: all ok" || echo "families_llama: $fails failed"
[ "$fails" -eq 0 ]
