#!/bin/sh
# interop_eval.sh - `slm eval` gives llama.cpp's (v0.5.0) perplexity and KL divergence.
# Run by `make check-interop` (llama.cpp installed in LLBIN). Needs SLM and LLBIN.
#  1. tokens: slm tokenizes text/tinystories_val.txt into the very ids llama.cpp's
#     llama_tokenize gives (llppl --dump-tokens vs slm eval --dump-tokens, compared with cmp).
#  2. perplexity, llama-perplexity's convention (second half of each window of 256 scored) on
#     those ids (--tokens-in): the F32, Q8_0 and Q4_0 GGUFs of stories260K that slm writes,
#     PPL equal to 4 significant digits (half a unit of the 4th digit).
#  3. the fixtures' stream protocol (--convention all) against llppl --score-all fed
#     [BOS] + chunk windows, and against the fixture README's number on the whole file.
#  4. KL(F32 || Q8_0) and KL(F32 || Q4_0): slm eval --ref against llkld, mean KLD within 2%
#     (llama.cpp keeps its KV cache in F16; slm in F32), same-top-token rate within 0.5 points.
# CHUNKS=N limits every run to N windows (default 200; CHUNKS=0: the whole file, ~10 min).
set -u
SLM=${SLM:-build/slm}
LLBIN=${LLBIN:-/tmp/llcpp/bin}
FIX=${SLM_FIXTURES:-../shared/fixtures}
CHUNKS=${CHUNKS:-200}
TEXT=$FIX/text/tinystories_val.txt
T=$(mktemp -d "${TMPDIR:-/tmp}/slm-interop-eval-XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
for tool in llppl llkld; do
    [ -x "$LLBIN/$tool" ] || { echo "FAIL $LLBIN/$tool missing (sh ../shared/tools/llamacpp/setup.sh; make -C ../shared/tools/llamacpp)"; exit 1; }
done
if [ "$CHUNKS" -gt 0 ]; then LLCH="--chunks $CHUNKS"; SLMCH="--chunks $CHUNKS"; else LLCH=; SLMCH=; fi

# value of "key": in slm eval --json output (first occurrence: top level)
jnum() { sed -n "s/^[[:space:]]*\"$2\":[[:space:]]*\([-0-9.eE+]*\).*/\1/p" "$1" | head -1; }
# value of key= on a llppl/llkld result line
lnum() { tr ' ' '\n' < "$1" | sed -n "s/^$2=//p" | head -1; }
# same to 4 significant digits: |a - b| <= half a unit of b's 4th significant digit
same4() { awk -v a="$1" -v b="$2" 'BEGIN { u = 10 ^ (int(log(b) / log(10) + (b >= 1 ? 1 : 0)) - 4); exit !(a - b <= u / 2 && b - a <= u / 2) }'; }

# ---- models --------------------------------------------------------------------------------
"$SLM" convert "$FIX/models/stories260K" -o "$T/f32.gguf" -q || { echo "FAIL slm convert"; exit 1; }
for q in Q8_0 Q4_0; do "$SLM" quantize "$FIX/models/stories260K" -o "$T/$q.gguf" --type "$q" -q || bad "slm quantize $q"; done

# ---- 1. tokens -----------------------------------------------------------------------------
"$LLBIN/llppl" -q -t 1 -c 256 --chunks 1 -f "$TEXT" --dump-tokens "$T/ll.tok" "$T/f32.gguf" > /dev/null 2>&1
"$SLM" eval "$T/f32.gguf" --text "$TEXT" --ctx 256 --chunks 1 --dump-tokens "$T/slm.tok" -q
if cmp -s "$T/ll.tok" "$T/slm.tok"; then ok "tokens: slm = llama_tokenize on the whole text ($(wc -l < "$T/slm.tok") ids, BOS first)"
else bad "tokens: slm and llama.cpp tokenize the text differently"; fi

# ---- 2. perplexity, second half ------------------------------------------------------------
for m in f32 Q8_0 Q4_0; do
    "$LLBIN/llppl" -q -t 1 -c 256 $LLCH --tokens-in "$T/ll.tok" "$T/$m.gguf" 2>/dev/null | grep '^ppl:' > "$T/ll.$m"
    "$SLM" eval "$T/$m.gguf" --tokens-in "$T/ll.tok" --ctx 256 $SLMCH --json -q > "$T/slm.$m" || { bad "slm eval $m"; continue; }
    lp=$(lnum "$T/ll.$m" ppl); sp=$(jnum "$T/slm.$m" ppl)
    ln=$(lnum "$T/ll.$m" mean_nll); sn=$(jnum "$T/slm.$m" mean_nll)
    msg="$m second-half ctx 256, $(lnum "$T/ll.$m" scored) ids: llama.cpp PPL $lp (NLL $ln), slm $(printf %.4f "$sp") (NLL $(printf %.6f "$sn"))"
    if [ -n "$lp" ] && [ -n "$sp" ] && same4 "$sp" "$lp"; then ok "$msg"; else bad "$msg"; fi
done

# ---- 3. the fixtures' stream protocol ------------------------------------------------------
"$SLM" eval "$T/f32.gguf" --text "$TEXT" --ctx 256 --convention all --chunks 1 --dump-tokens "$T/stream.tok" -q
awk -v n="${CHUNKS}" '{ id[NR] = $1 } END { k = 0; for (i = 1; i + 254 <= NR && (n == 0 || k < n); i += 255) {
    print 1; for (j = 0; j < 255; j++) print id[i + j]; k++ } }' "$T/stream.tok" > "$T/stream_bos.tok"
"$LLBIN/llppl" -q -t 1 -c 256 --score-all --tokens-in "$T/stream_bos.tok" "$T/f32.gguf" 2>/dev/null | grep '^ppl:' > "$T/ll.stream"
"$SLM" eval "$T/f32.gguf" --tokens-in "$T/stream.tok" --ctx 256 --convention all $SLMCH --json -q > "$T/slm.stream"
lp=$(lnum "$T/ll.stream" ppl); sp=$(jnum "$T/slm.stream" ppl)
msg="f32 stream ctx 256 (every id of [BOS]+255 scored), $(jnum "$T/slm.stream" scored) ids: llama.cpp PPL $lp, slm $(printf %.6f "$sp")"
if [ -n "$lp" ] && [ -n "$sp" ] && same4 "$sp" "$lp"; then ok "$msg"; else bad "$msg"; fi
if [ "$CHUNKS" = 0 ]; then
    if same4 "$sp" 5.698645; then ok "f32 stream ctx 256, whole file: slm PPL $sp, fixture README 5.698645"
    else bad "f32 stream ctx 256, whole file: slm PPL $sp, fixture README 5.698645"; fi
fi

# ---- 4. KL divergence ----------------------------------------------------------------------
"$LLBIN/llkld" -q -t 1 -c 256 $LLCH --tokens-in "$T/ll.tok" "$T/f32.gguf" "$T/Q8_0.gguf" "$T/Q4_0.gguf" 2>/dev/null > "$T/ll.kld"
for m in Q8_0 Q4_0; do
    grep "^kld: model=$T/$m.gguf" "$T/ll.kld" > "$T/ll.kld.$m"
    "$SLM" eval "$T/$m.gguf" --ref "$T/f32.gguf" --tokens-in "$T/ll.tok" --ctx 256 $SLMCH --json -q > "$T/slm.kld.$m" || { bad "slm eval --ref $m"; continue; }
    lk=$(lnum "$T/ll.kld.$m" kld_mean); sk=$(sed -n '/"kld":/,/}/p' "$T/slm.kld.$m" | sed -n 's/^[[:space:]]*"mean":[[:space:]]*\([-0-9.eE+]*\).*/\1/p')
    lt=$(lnum "$T/ll.kld.$m" same_top_pct); st=$(jnum "$T/slm.kld.$m" top1)
    msg="KL(F32 || $m): llama.cpp mean $lk, same top $lt%; slm mean $(printf %.6f "$sk"), same top $(awk -v t="$st" 'BEGIN { printf "%.3f", 100 * t }')%"
    if [ -n "$lk" ] && [ -n "$sk" ] && awk -v a="$sk" -v b="$lk" -v c="$st" -v d="$lt" \
        'BEGIN { exit !(a > 0 && (a - b) / b < 0.02 && (b - a) / b < 0.02 && (100 * c - d) < 0.5 && (d - 100 * c) < 0.5) }'; then ok "$msg"; else bad "$msg"; fi
done

[ "$fails" = 0 ] && echo "interop_eval: OK" || echo "interop_eval: $fails failure(s)"
[ "$fails" = 0 ]
