#!/bin/sh
# interop_llama.sh - llama.cpp (v0.5.0) loads and runs the GGUFs slm writes for the Llama-architecture
# families (docs/families.md 1, 7, 8), run by `make check-interop`. For build/mkfamily's bf16 seed-1
# checkpoints of llama3 (rope_freqs from rope_scaling llama3), smollm2 and tinyllama converted by
# `slm convert --outtype f32`: llppl's perplexity (ctx 64, first 8000 bytes of tinystories_val.txt,
# 60 windows) equals `slm eval --numerics ggml` to 4 significant digits; llppl's 16 greedy ids equal
# `slm generate --ids`; `slm quantize --type Q4_K_M` is the file llama-quantize (llq) writes, byte
# for byte, and its perplexity within 0.5% of llppl's. llama3 also: ctx 512, and a model slm pruned
# (heads) and distilled, whose rope_freqs come from the model in memory.
set -u
SLM=${SLM:-build/slm}
BUILD=${BUILD:-build}
LLBIN=${LLBIN:-${LLCPP_DIR:-/tmp/llcpp}/bin}
FIX=${SLM_FIXTURES:-../shared/fixtures}
export SLM_FIXTURES="$FIX"
T=$(mktemp -d "${TMPDIR:-/tmp}/slm-interop-llama-XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
same4() { awk -v a="$1" -v b="$2" 'BEGIN { u = 10 ^ (int(log(b) / log(10)) - 3); d = a - b; exit !(d <= u / 2 && d >= -u / 2) }'; }
head -c 8000 "$FIX/text/tinystories_val.txt" > "$T/text.txt" || exit 1
llppl() { "$LLBIN/llppl" -t 1 -c "${2:-64}" -f "$T/text.txt" "$1" 2>&1 | sed -n 's/^ppl:.* ppl=\([0-9.]*\).*/\1/p'; }
slmppl() { "$SLM" eval "$1" --text "$T/text.txt" --ctx "${2:-64}" --numerics ggml --json -q | sed -n "s/.*\"ppl\":[[:space:]]*\([0-9.e+-]*\).*/\1/p" | head -1; }
cmp_ppl() { # what, file, ctx
    lp=$(llppl "$2" "$3") sp=$(slmppl "$2" "$3")
    if [ -n "$lp" ] && [ -n "$sp" ] && same4 "$sp" "$lp"; then ok "$1: llama.cpp PPL $lp, slm $sp"; else bad "$1: llama.cpp PPL '$lp', slm '$sp'"; fi
}
for fam in llama3 smollm2 tinyllama; do
    d=$T/$fam g=$T/$fam.gguf
    "$BUILD/mkfamily" "$fam" "$d" > /dev/null && "$SLM" convert "$d" -o "$g" --outtype f32 -q || { bad "$fam convert"; continue; }
    cmp_ppl "$fam F32" "$g" 64
    li=$("$LLBIN/llppl" -q -t 1 -p "Once upon a time" -n 16 --ignore-eos "$g" 2>/dev/null | sed -n 's/^gen: tokens=//p' | tr , ' ')
    si=$("$SLM" generate "$g" -p "Once upon a time" -n 16 --ids --ignore-eos | sed 's/.*| //')
    [ -n "$li" ] && [ "$li" = "$si" ] && ok "$fam greedy ids equal: $si" || bad "$fam greedy ids: llama.cpp '$li', slm '$si'"
    "$SLM" quantize "$g" -o "$T/$fam.q4.gguf" --type Q4_K_M -q && "$LLBIN/llq" "$g" "$T/$fam.llq.gguf" Q4_K_M > /dev/null 2>&1
    cmp -s "$T/$fam.q4.gguf" "$T/$fam.llq.gguf" && ok "$fam Q4_K_M: the llama-quantize file, byte for byte" || bad "$fam Q4_K_M differs from llama-quantize's"
    lp=$(llppl "$T/$fam.q4.gguf") sp=$(slmppl "$T/$fam.q4.gguf")
    if [ -n "$lp" ] && [ -n "$sp" ] && awk -v a="$sp" -v b="$lp" 'BEGIN { d = a / b - 1; exit !(d < 0.005 && d > -0.005) }'; then
        ok "$fam Q4_K_M: llama.cpp PPL $lp, slm $sp"; else bad "$fam Q4_K_M: llama.cpp PPL '$lp', slm '$sp'"; fi
done
g=$T/llama3.gguf
if [ -f "$g" ]; then
    cmp_ppl "llama3 F32 ctx 512" "$g" 512
    "$SLM" prune "$g" -o "$T/l3.heads.gguf" --method heads --sparsity 0.25 --uniform -q && cmp_ppl "llama3 pruned (heads)" "$T/l3.heads.gguf" 64
    head -c 20000 "$FIX/text/tinystories_val.txt" > "$T/calib.txt"
    "$SLM" distill --teacher "$g" --student "$T/l3.heads.gguf" --text "$T/calib.txt" -o "$T/l3.d.gguf" --steps 2 --ctx 32 --batch 2 -q &&
        cmp_ppl "llama3 pruned and distilled" "$T/l3.d.gguf" 64
fi
[ "$fails" -eq 0 ] && echo "interop_llama: all ok" || echo "interop_llama: $fails failed"
[ "$fails" -eq 0 ]
