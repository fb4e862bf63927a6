#!/bin/sh
# interop_phi3.sh - llama.cpp (v0.5.0) loads and runs the Phi-3 / Phi-3.5 GGUFs slm writes
# (docs/families.md 4), run by `make check-interop`. For build/mkfamily's bf16 seed-1 checkpoint
# converted by `slm convert --outtype f32`: llppl's perplexity (ctx 64, first 8000 bytes of
# tinystories_val.txt, 60 windows: short rope factors; ctx 4160 on the first 20000 bytes: long
# factors) equals `slm eval --numerics ggml` to 4 significant digits; llppl's 16 greedy ids
# equal `slm generate --ids`; `slm quantize --type Q4_K_M` is the file llama-quantize (llq)
# writes, byte for byte (also Q4_0, Q5_K_M and Q3_K_M; and with slm calibrate's imatrix, whose
# attn_qkv / ffn_up entries llama-quantize reads), its perplexity within 0.5% of llppl's; the
# FFN-pruned model (fused gate|up cut together) and the Phi-3-mini-4k-like variant (no longrope,
# tests/ref/phi3_4k.sh) have llppl's perplexity.
set -u
SLM=${SLM:-build/slm}
BUILD=${BUILD:-build}
LLBIN=${LLBIN:-${LLCPP_DIR:-/tmp/llcpp}/bin}
FIX=${SLM_FIXTURES:-../shared/fixtures}
export SLM_FIXTURES="$FIX"
T=$(mktemp -d "${TMPDIR:-/tmp}/slm-interop-phi3-XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
same4() { awk -v a="$1" -v b="$2" 'BEGIN { u = 10 ^ (int(log(b) / log(10)) - 3); d = a - b; exit !(d <= u / 2 && d >= -u / 2) }'; }
head -c 8000 "$FIX/text/tinystories_val.txt" > "$T/text.txt" || exit 1
head -c 20000 "$FIX/text/tinystories_val.txt" > "$T/long.txt" || exit 1
llppl() { "$LLBIN/llppl" -t 1 -c ${2:-64} -f "${3:-$T/text.txt}" "$1" 2>&1 | sed -n 's/^ppl:.* ppl=\([0-9.]*\).*/\1/p'; }
slmppl() { "$SLM" eval "$1" --text "${3:-$T/text.txt}" --ctx ${2:-64} --numerics ggml --json -q | sed -n "s/.*\"ppl\":[[:space:]]*\([0-9.e+-]*\).*/\1/p" | head -1; }
cmp_ppl() { # what file [ctx text]
    lp=$(llppl "$2" ${3:-} ${4:-}) sp=$(slmppl "$2" ${3:-} ${4:-})
    if [ -n "$lp" ] && [ -n "$sp" ] && same4 "$sp" "$lp"; then ok "$1: llama.cpp PPL $lp, slm $sp"; else bad "$1: llama.cpp PPL '$lp', slm '$sp'"; fi
}
d=$T/phi3 g=$T/phi3.gguf
"$BUILD/mkfamily" phi3 "$d" > /dev/null && "$SLM" convert "$d" -o "$g" --outtype f32 -q || { echo "FAIL phi3 convert"; exit 1; }
cmp_ppl "phi3 F32 ctx 64 (short factors)" "$g"
cmp_ppl "phi3 F32 ctx 4160 (long factors)" "$g" 4160 "$T/long.txt"
li=$("$LLBIN/llppl" -q -t 1 -p "Once upon a time" -n 16 --ignore-eos "$g" 2>/dev/null | sed -n 's/^gen: tokens=//p' | tr , ' ')
si=$("$SLM" generate "$g" -p "Once upon a time" -n 16 --ids --ignore-eos | sed 's/.*| //')
[ -n "$li" ] && [ "$li" = "$si" ] && ok "phi3 greedy ids equal: $si" || bad "phi3 greedy ids: llama.cpp '$li', slm '$si'"
for t in Q4_K_M Q4_0 Q5_K_M Q3_K_M; do
    "$SLM" quantize "$g" -o "$T/$t.gguf" --type $t -q && "$LLBIN/llq" "$g" "$T/$t.llq.gguf" $t > /dev/null 2>&1
    cmp -s "$T/$t.gguf" "$T/$t.llq.gguf" && ok "phi3 $t: the llama-quantize file, byte for byte" || bad "phi3 $t differs from llama-quantize's"
done
lp=$(llppl "$T/Q4_K_M.gguf") sp=$(slmppl "$T/Q4_K_M.gguf")
if [ -n "$lp" ] && [ -n "$sp" ] && awk -v a="$sp" -v b="$lp" 'BEGIN { d = a / b - 1; exit !(d < 0.005 && d > -0.005) }'; then
    ok "phi3 Q4_K_M: llama.cpp PPL $lp, slm $sp"; else bad "phi3 Q4_K_M: llama.cpp PPL '$lp', slm '$sp'"; fi
if "$SLM" calibrate "$g" --text "$T/long.txt" --ctx 64 --chunks 8 -o "$T/st.gguf" -q; then
    for t in Q4_K_M Q4_0; do
        "$SLM" quantize "$g" -o "$T/im$t.gguf" --type $t --imatrix "$T/st.gguf" -q &&
            "$LLBIN/llq" -q --imatrix "$T/st.gguf" "$g" "$T/im$t.llq.gguf" $t 1 > /dev/null 2>&1
        cmp -s "$T/im$t.gguf" "$T/im$t.llq.gguf" && ok "phi3 $t --imatrix (slm calibrate's): byte for byte llama-quantize --imatrix" ||
            bad "phi3 $t --imatrix differs from llama-quantize --imatrix"
    done
else bad "phi3 calibrate"; fi
"$SLM" prune "$g" -o "$T/ffn.gguf" --method ffn --sparsity 0.25 --uniform -q && cmp_ppl "phi3 prune ffn 25%" "$T/ffn.gguf" || bad "phi3 prune ffn"
d4=$T/phi3-4k
"$BUILD/mkfamily" phi3 "$d4" > /dev/null && sh tests/ref/phi3_4k.sh "$d4" && "$SLM" convert "$d4" -o "$d4.gguf" --outtype f32 -q &&
    cmp_ppl "phi3 without longrope" "$d4.gguf" || bad "phi3 without longrope: convert"
[ "$fails" -eq 0 ] && echo "interop_phi3: all ok" || echo "interop_phi3: $fails failed"
[ "$fails" -eq 0 ]
