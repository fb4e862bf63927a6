#!/bin/sh
# interop_eval.sh - `slm eval` gives llama.cpp's (v0.5.0) perplexity and KL divergence.
# Run by `make check-interop` (llama.cpp's drivers in LLBIN, default $LLCPP_DIR/bin). Needs SLM.
#  1. tokens: slm tokenizes text/tinystories_val.txt into the very ids llama.cpp's
#     llama_tokenize gives (llppl --dump-tokens vs slm eval --dump-tokens, compared with cmp).
#  2. perplexity, llama-perplexity's convention (second half of each window of 256 scored) on
#     those ids (--tokens-in): the F32, Q8_0 and Q4_0 GGUFs of stories260K that slm writes,
#     PPL equal to 4 significant digits (half a unit of the 4th digit), with --numerics ggml
#     (activations rounded to Q8_0/F16 as ggml's matmuls do, F16 KV cache and flash
#     attention); the default f32 numerics are printed beside it. llama.cpp's own f16 and Q8
#     rounding makes per-token NLLs differ by ~0.03 (sd) from any other float implementation,
#     so on part of the file the means may differ by a few standard errors of the paired
#     per-token differences (printed as z): a mean difference within 3 SE also passes.
#  3. the fixtures' stream protocol (--convention all) on the fixture's ids
#     (text/tinystories_val.tok512.i32) against llppl --score-all fed [BOS] + chunk windows,
#     and against the fixture README's number on the whole file (f32 numerics, as the README).
#  4. KL(F32 || Q8_0) and KL(F32 || Q4_0): slm eval --ref --numerics ggml against llkld, mean
#     KLD within 5% and same-top-token rate within 0.5 points (f16 and Q8 rounding flips make
#     the per-token values noisy, so the two agree statistically, not to the last digit).
# CHUNKS=N limits every run to N windows (default 100, ~2 min; CHUNKS=0: the whole file, ~15 min).
set -u
SLM=${SLM:-build/slm}
LLBIN=${LLBIN:-${LLCPP_DIR:-/tmp/llcpp}/bin}
FIX=${SLM_FIXTURES:-../shared/fixtures}
CHUNKS=${CHUNKS:-100}
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

# value of "key": in slm eval --json output (the report object: its "eval" keys, README)
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
# paired per-token NLL differences of two --dump-nll files: "mean se z"
paired() { paste "$1" "$2" | awk '$1 != $5 || $2 != $6 || $3 != $7 { bad = 1 } { d = $8 - $4; s += d; s2 += d * d; n++ }
    END { if (bad || !n) { print "nan nan nan"; exit } m = s / n; v = s2 / n - m * m; se = v > 0 ? sqrt(v / (n - 1)) : 0;
          printf "%.3g %.3g %.2f\n", m, se, (se > 0 ? m / se : 0) }'; }
for m in f32 Q8_0 Q4_0; do
    "$LLBIN/llppl" -q -t 1 -c 256 $LLCH --tokens-in "$T/ll.tok" --dump-nll "$T/ll.$m.nll" "$T/$m.gguf" 2>/dev/null | grep '^ppl:' > "$T/ll.$m"
    "$SLM" eval "$T/$m.gguf" --tokens-in "$T/ll.tok" --ctx 256 $SLMCH --numerics ggml --json -q --dump-nll "$T/slm.$m.nll" > "$T/slm.$m" || { bad "slm eval $m"; continue; }
    "$SLM" eval "$T/$m.gguf" --tokens-in "$T/ll.tok" --ctx 256 $SLMCH --json -q > "$T/slm32.$m" || { bad "slm eval $m"; continue; }
    lp=$(lnum "$T/ll.$m" ppl); sp=$(jnum "$T/slm.$m" ppl)
    ln=$(lnum "$T/ll.$m" mean_nll); sn=$(jnum "$T/slm.$m" mean_nll)
    set -- $(paired "$T/ll.$m.nll" "$T/slm.$m.nll")
    msg="$m second-half ctx 256, $(lnum "$T/ll.$m" scored) ids: llama.cpp PPL $lp (NLL $ln), slm $(printf %.4f "$sp") (NLL $(printf %.6f "$sn"); paired difference $1 +/- $2, z $3); f32 numerics $(printf %.4f "$(jnum "$T/slm32.$m" ppl)")"
    if [ -n "$lp" ] && [ -n "$sp" ] && same4 "$sp" "$lp"; then ok "$msg"
    elif [ -n "$lp" ] && [ -n "$sp" ] && awk -v z="$3" 'BEGIN { exit !(z == z + 0 && z < 3 && z > -3) }'; then ok "$msg (within 3 SE, not 4 digits)"
    else bad "$msg"; fi
done

# ---- 3. the fixtures' stream protocol ------------------------------------------------------
# the fixture's own ids (sentencepiece, 393,012; llama.cpp's tokenizer keeps 6 more '▁' at double spaces)
od -An -v -t d4 "$FIX/text/tinystories_val.tok512.i32" | tr -s ' \n' '\n' | sed '/^$/d' > "$T/stream.tok"
awk -v n="${CHUNKS}" '{ id[NR] = $1 } END { k = 0; for (i = 1; i + 254 <= NR && (n == 0 || k < n); i += 255) {
    print 1; for (j = 0; j < 255; j++) print id[i + j]; k++ } }' "$T/stream.tok" > "$T/stream_bos.tok"
"$LLBIN/llppl" -q -t 1 -c 256 --score-all --tokens-in "$T/stream_bos.tok" "$T/f32.gguf" 2>/dev/null | grep '^ppl:' > "$T/ll.stream"
"$SLM" eval "$T/f32.gguf" --tokens-in "$T/stream.tok" --ctx 256 --convention all $SLMCH --numerics ggml --json -q > "$T/slm.stream"
"$SLM" eval "$T/f32.gguf" --tokens-in "$T/stream.tok" --ctx 256 --convention all $SLMCH --json -q > "$T/slm32.stream"
lp=$(lnum "$T/ll.stream" ppl); sp=$(jnum "$T/slm.stream" ppl)
msg="f32 stream ctx 256 (every id of [BOS]+255 scored), $(jnum "$T/slm.stream" scored_tokens) ids: llama.cpp PPL $lp, slm $(printf %.4f "$sp")"
if [ -n "$lp" ] && [ -n "$sp" ] && same4 "$sp" "$lp"; then ok "$msg"; else bad "$msg"; fi
sp=$(jnum "$T/slm32.stream" ppl) # the fixtures' reference forward is f32 throughout
if [ "$CHUNKS" = 0 ]; then
    if same4 "$sp" 5.698645; then ok "f32 stream ctx 256, whole file: slm PPL $sp, fixture README 5.698645"
    else bad "f32 stream ctx 256, whole file: slm PPL $sp, fixture README 5.698645"; fi
fi

# ---- 4. KL divergence ----------------------------------------------------------------------
"$LLBIN/llkld" -q -t 1 -c 256 $LLCH --tokens-in "$T/ll.tok" "$T/f32.gguf" "$T/Q8_0.gguf" "$T/Q4_0.gguf" 2>/dev/null > "$T/ll.kld"
for m in Q8_0 Q4_0; do
    grep "^kld: model=$T/$m.gguf" "$T/ll.kld" > "$T/ll.kld.$m"
    "$SLM" eval "$T/$m.gguf" --ref "$T/f32.gguf" --tokens-in "$T/ll.tok" --ctx 256 $SLMCH --numerics ggml --json -q > "$T/slm.kld.$m" || { bad "slm eval --ref $m"; continue; }
    lk=$(lnum "$T/ll.kld.$m" kld_mean); sk=$(jnum "$T/slm.kld.$m" kld_mean)
    lt=$(lnum "$T/ll.kld.$m" same_top_pct); st=$(jnum "$T/slm.kld.$m" top1_agreement)
    msg="KL(F32 || $m): llama.cpp mean $lk, same top $lt%; slm mean $(printf %.6f "$sk"), same top $(awk -v t="$st" 'BEGIN { printf "%.3f", 100 * t }')%"
    if [ -n "$lk" ] && [ -n "$sk" ] && awk -v a="$sk" -v b="$lk" -v c="$st" -v d="$lt" \
        'BEGIN { exit !(a > 0 && (a - b) / b < 0.05 && (b - a) / b < 0.05 && (100 * c - d) < 0.5 && (d - 100 * c) < 0.5) }'; then ok "$msg"; else bad "$msg"; fi
done

[ "$fails" = 0 ] && echo "interop_eval: OK" || echo "interop_eval: $fails failure(s)"
[ "$fails" = 0 ]
