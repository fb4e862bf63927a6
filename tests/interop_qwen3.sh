#!/bin/sh
# interop_qwen3.sh - llama.cpp (v0.5.0) loads and runs the Qwen3 GGUFs slm writes
# (docs/families.md 3), run by `make check-interop`. For build/mkfamily's bf16 seed-1
# checkpoints converted by `slm convert --outtype f32`: llppl's perplexity (ctx 64, first 8000
# bytes of tinystories_val.txt, 60 windows) equals `slm eval --numerics ggml` to 4 significant
# digits; llppl's 16 greedy ids equal `slm generate --ids`; `slm quantize --type Q4_K_M` is the
# file llama-quantize (llq) writes, byte for byte, and its perplexity within 0.5% of llppl's;
# heads-, FFN- and layer-pruned models and a student distilled by slm (FFN-pruned, 4 steps) load
# in llama.cpp with equal perplexity.
set -u
SLM=${SLM:-build/slm}
BUILD=${BUILD:-build}
LLBIN=${LLBIN:-${LLCPP_DIR:-/tmp/llcpp}/bin}
FIX=${SLM_FIXTURES:-../shared/fixtures}
export SLM_FIXTURES="$FIX"
T=$(mktemp -d "${TMPDIR:-/tmp}/slm-interop-qwen3-XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
same4() { awk -v a="$1" -v b="$2" 'BEGIN { u = 10 ^ (int(log(b) / log(10)) - 3); d = a - b; exit !(d <= u / 2 && d >= -u / 2) }'; }
head -c 8000 "$FIX/text/tinystories_val.txt" > "$T/text.txt" || exit 1
llppl() { "$LLBIN/llppl" -t 1 -c 64 -f "$T/text.txt" "$1" 2>&1 | sed -n 's/^ppl:.* ppl=\([0-9.]*\).*/\1/p'; }
slmppl() { "$SLM" eval "$1" --text "$T/text.txt" --ctx 64 --numerics ggml --json -q | sed -n "s/.*\"ppl\":[[:space:]]*\([0-9.e+-]*\).*/\1/p" | head -1; }
for fam in qwen3; do
    d=$T/$fam g=$T/$fam.gguf
    "$BUILD/mkfamily" "$fam" "$d" > /dev/null && "$SLM" convert "$d" -o "$g" --outtype f32 -q || { bad "$fam convert"; continue; }
    lp=$(llppl "$g") sp=$(slmppl "$g")
    if [ -n "$lp" ] && [ -n "$sp" ] && same4 "$sp" "$lp"; then ok "$fam F32: llama.cpp PPL $lp, slm $sp"; else bad "$fam F32: llama.cpp PPL '$lp', slm '$sp'"; fi
    li=$("$LLBIN/llppl" -q -t 1 -p "Once upon a time" -n 16 --ignore-eos "$g" 2>/dev/null | sed -n 's/^gen: tokens=//p' | tr , ' ')
    si=$("$SLM" generate "$g" -p "Once upon a time" -n 16 --ids --ignore-eos | sed 's/.*| //')
    [ -n "$li" ] && [ "$li" = "$si" ] && ok "$fam greedy ids equal: $si" || bad "$fam greedy ids: llama.cpp '$li', slm '$si'"
    "$SLM" quantize "$g" -o "$T/$fam.q4.gguf" --type Q4_K_M -q && "$LLBIN/llq" "$g" "$T/$fam.llq.gguf" Q4_K_M > /dev/null 2>&1
    cmp -s "$T/$fam.q4.gguf" "$T/$fam.llq.gguf" && ok "$fam Q4_K_M: the llama-quantize file, byte for byte" || bad "$fam Q4_K_M differs from llama-quantize's"
    lp=$(llppl "$T/$fam.q4.gguf") sp=$(slmppl "$T/$fam.q4.gguf")
    if [ -n "$lp" ] && [ -n "$sp" ] && awk -v a="$sp" -v b="$lp" 'BEGIN { d = a / b - 1; exit !(d < 0.005 && d > -0.005) }'; then
        ok "$fam Q4_K_M: llama.cpp PPL $lp, slm $sp"; else bad "$fam Q4_K_M: llama.cpp PPL '$lp', slm '$sp'"; fi
    # structurally pruned models (the kept heads keep their q/k norms): llama.cpp agrees
    for m in heads ffn layers; do
        "$SLM" prune "$g" -o "$T/$fam.$m.gguf" --method $m --sparsity 0.25 --uniform --calib-text "$T/text.txt" -q || bad "$fam prune $m"
        lp=$(llppl "$T/$fam.$m.gguf") sp=$(slmppl "$T/$fam.$m.gguf")
        if [ -n "$lp" ] && [ -n "$sp" ] && same4 "$sp" "$lp"; then ok "$fam prune $m: llama.cpp PPL $lp, slm $sp"; else bad "$fam prune $m: llama.cpp PPL '$lp', slm '$sp'"; fi
    done
    # a distilled (trained) student: llama.cpp loads it and agrees on its perplexity
    "$SLM" distill --teacher "$g" --student "$T/$fam.ffn.gguf" --text "$T/text.txt" -o "$T/$fam.d.gguf" --steps 4 --ctx 64 --batch 2 --lr 3e-4 -q ||
        bad "$fam distill"
    lp=$(llppl "$T/$fam.d.gguf") sp=$(slmppl "$T/$fam.d.gguf")
    if [ -n "$lp" ] && [ -n "$sp" ] && same4 "$sp" "$lp"; then ok "$fam distilled: llama.cpp PPL $lp, slm $sp"; else bad "$fam distilled: llama.cpp PPL '$lp', slm '$sp'"; fi
done
[ "$fails" -eq 0 ] && echo "interop_qwen3: all ok" || echo "interop_qwen3: $fails failed"
[ "$fails" -eq 0 ]
