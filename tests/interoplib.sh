# interoplib.sh - the shared start of tests/interop_{gemma,llama,qwen3,phi3,tokbf}.sh (sourced, with
# NAME set): the tools (llama.cpp's drivers in LLBIN), a temporary folder removed at exit, ok/bad
# with a failure count, the texts (the first 8000 bytes of tinystories_val.txt to score, 20000
# for long windows and calibration) and the comparisons with llama.cpp: perplexity (llppl vs
# `slm eval --numerics ggml`), greedy ids, quantized files byte for byte.
set -u
SLM=${SLM:-build/slm}
BUILD=${BUILD:-build}
LLBIN=${LLBIN:-${LLCPP_DIR:-/tmp/llcpp}/bin}
FIX=${SLM_FIXTURES:-../shared/fixtures}
export SLM_FIXTURES="$FIX"
T=$(mktemp -d "${TMPDIR:-/tmp}/slm-interop-$NAME-XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
head -c 8000 "$FIX/text/tinystories_val.txt" > "$T/text.txt" || exit 1
head -c 20000 "$FIX/text/tinystories_val.txt" > "$T/long.txt" || exit 1
# equal to 4 significant digits: within half a unit of b's 4th digit (as tests/interop_eval.sh)
same4() { awk -v a="$1" -v b="$2" 'BEGIN { u = 10 ^ (int(log(b) / log(10)) - 3); d = a - b; exit !(d <= u / 2 && d >= -u / 2) }'; }
# a within relative r of b
within() { awk -v a="$1" -v b="$2" -v r="$3" 'BEGIN { d = a / b - 1; exit !(d < r && d > -r) }'; }
# file [ctx [text]] -> the perplexity llama.cpp / slm give
llppl() { "$LLBIN/llppl" -t 1 -c "${2:-64}" -f "${3:-$T/text.txt}" "$1" 2>&1 | sed -n 's/^ppl:.* ppl=\([0-9.]*\).*/\1/p'; }
slmppl() {
    "$SLM" eval "$1" --text "${3:-$T/text.txt}" --ctx "${2:-64}" --numerics ggml --json -q |
        sed -n "s/.*\"ppl\":[[:space:]]*\([0-9.e+-]*\).*/\1/p" | head -1
}
# what file [ctx [text]]: the two perplexities equal to 4 significant digits
cmp_ppl() {
    lp=$(llppl "$2" "${3:-64}" "${4:-$T/text.txt}") sp=$(slmppl "$2" "${3:-64}" "${4:-$T/text.txt}")
    if [ -n "$lp" ] && [ -n "$sp" ] && same4 "$sp" "$lp"; then ok "$1: llama.cpp PPL $lp, slm $sp"; else bad "$1: llama.cpp PPL '$lp', slm '$sp'"; fi
}
# what file: llama.cpp's 16 greedy ids equal `slm generate --ids`
cmp_greedy() {
    li=$("$LLBIN/llppl" -q -t 1 -p "Once upon a time" -n 16 --ignore-eos "$2" 2>/dev/null | sed -n 's/^gen: tokens=//p' | tr , ' ')
    si=$("$SLM" generate "$2" -p "Once upon a time" -n 16 --ids --ignore-eos | sed 's/.*| //')
    [ -n "$li" ] && [ "$li" = "$si" ] && ok "$1 greedy ids equal: $si" || bad "$1 greedy ids: llama.cpp '$li', slm '$si'"
}
# what file type: `slm quantize` writes llama-quantize's file byte for byte (kept: $T/what.type.gguf)
cmp_quant() {
    "$SLM" quantize "$2" -o "$T/$1.$3.gguf" --type "$3" -q && "$LLBIN/llq" "$2" "$T/$1.$3.llq.gguf" "$3" > /dev/null 2>&1
    cmp -s "$T/$1.$3.gguf" "$T/$1.$3.llq.gguf" && ok "$1 $3: the llama-quantize file, byte for byte" || bad "$1 $3 differs from llama-quantize's"
}
# what file: cmp_quant Q4_K_M, and that file's perplexity within 0.5% of llama.cpp's
cmp_q4km() {
    cmp_quant "$1" "$2" Q4_K_M
    lp=$(llppl "$T/$1.Q4_K_M.gguf") sp=$(slmppl "$T/$1.Q4_K_M.gguf")
    if [ -n "$lp" ] && [ -n "$sp" ] && within "$sp" "$lp" 0.005; then ok "$1 Q4_K_M: llama.cpp PPL $lp, slm $sp"; else
        bad "$1 Q4_K_M: llama.cpp PPL '$lp', slm '$sp'"; fi
}
# the summary line; the status of the script
finish() {
    [ "$fails" -eq 0 ] && echo "interop_$NAME: all ok" || echo "interop_$NAME: $fails failed"
    [ "$fails" -eq 0 ]
}
