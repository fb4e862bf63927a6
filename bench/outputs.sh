#!/bin/sh
# outputs.sh - a fingerprint of everything slm writes, for behaviour-preserving changes: the
# sha256 of convert and quantize outputs (every recipe on tinystories-3M, a few on the other
# fixtures and on a 305M-parameter random model) and the numbers `slm eval --json` prints.
# Run it before and after a change and diff the two listings:
#   sh bench/outputs.sh > before.txt; ...; sh bench/outputs.sh > after.txt; diff before.txt after.txt
# BIG=0 skips the 305M model (needs llama.cpp's mktiny, see bench/quantize.sh).
set -eu
SLM=${SLM:-build/slm}
SLM=$(cd "$(dirname "$SLM")" && pwd)/$(basename "$SLM")
SHARED=${SHARED:-$(cd .. && pwd)/shared}
FIX=${SLM_FIXTURES:-$SHARED/fixtures}
LLCPP_DIR=${LLCPP_DIR:-/tmp/llcpp}
BIG=${BIG:-1}
W=${WORK:-/tmp/slm-outputs}
rm -rf "$W.run"; mkdir -p "$W.run" "$W"
out() { printf '%s  %s\n' "$(sha256sum < "$1" | cut -c1-16)" "$2"; }
M=$FIX/models
for m in stories260K stories260K-f16 tinystories-3M tinystories-3M-bf16 tinystories-3M-sharded; do
    "$SLM" convert -q "$M/$m" -o "$W.run/c.gguf" -f; out "$W.run/c.gguf" "convert $m"
    for t in f32 f16 bf16; do "$SLM" convert -q "$M/$m" --outtype $t -o "$W.run/c.gguf" -f; out "$W.run/c.gguf" "convert $m $t"; done
done
for r in F32 F16 BF16 Q8_0 Q6_K Q5_K_M Q5_K_S Q5_1 Q5_0 Q4_K_M Q4_K_S Q4_1 Q4_0 IQ4_XS IQ4_NL Q3_K_L Q3_K_M Q3_K_S Q2_K; do
    "$SLM" quantize -q "$M/tinystories-3M" --type $r -o "$W.run/q.gguf" -f; out "$W.run/q.gguf" "quantize tinystories-3M $r"
done
for r in Q8_0 Q4_K_M; do
    for m in stories260K tinystories-3M-bf16 tinystories-3M-sharded; do
        "$SLM" quantize -q "$M/$m" --type $r -o "$W.run/q.gguf" -f; out "$W.run/q.gguf" "quantize $m $r"
    done
done
"$SLM" quantize -q "$M/tinystories-3M" --type Q4_K_M --pure -o "$W.run/q.gguf" -f; out "$W.run/q.gguf" "quantize --pure Q4_K_M"
"$SLM" quantize -q "$M/tinystories-3M" --type Q4_K_M --tensor-type 'ffn_down=Q8_0' --output-tensor-type Q5_0 \
    --token-embedding-type Q4_0 -o "$W.run/q.gguf" -f; out "$W.run/q.gguf" "quantize overrides"
"$SLM" quantize -q "$W.run/q.gguf" --type Q8_0 --allow-requantize -o "$W.run/r.gguf" -f; out "$W.run/r.gguf" "requantize"
"$SLM" quantize -q "$M/tinystories-3M" --type Q4_K_M --dry-run > "$W.run/dry.txt"; out "$W.run/dry.txt" "dry-run table"
"$SLM" convert -q "$M/tinystories-3M" -o "$W.run/f32.gguf"
"$SLM" quantize -q "$M/tinystories-3M" --type Q4_0 -o "$W.run/q4.gguf"
"$SLM" quantize -q "$M/tinystories-3M" --type Q4_K_M -o "$W.run/q4k.gguf"
"$SLM" quantize -q "$M/tinystories-3M" --type F16 -o "$W.run/f16.gguf"
T=$W.run/text.txt; head -c 60000 "$FIX/text/tinystories_val.txt" > "$T"
for n in f32 ggml; do
    "$SLM" eval "$W.run/q4.gguf" --text "$T" --ctx 128 --numerics $n --ref "$W.run/f32.gguf" --json |
        grep -v '"seconds"\|"tokens_per_second"\|"peak_rss\|"threads"\|"model\|"reference"\|"text"\|"output"' > "$W.run/e.json"
    out "$W.run/e.json" "eval q4_0 vs f32 $n"
    for q in q4k f16; do
        "$SLM" eval "$W.run/$q.gguf" --text "$T" --ctx 128 --numerics $n --json |
            grep -v '"seconds"\|"tokens_per_second"\|"peak_rss\|"threads"\|"model\|"reference"\|"text"\|"output"' > "$W.run/e.json"
        out "$W.run/e.json" "eval $q $n"
    done
    "$SLM" eval "$M/stories260K" --text "$T" --ctx 64 --numerics $n --convention all --json |
        grep -v '"seconds"\|"tokens_per_second"\|"peak_rss\|"threads"\|"model\|"reference"\|"text"\|"output"' > "$W.run/e.json"
    out "$W.run/e.json" "eval stories260K $n all"
done
"$SLM" generate "$M/tinystories-3M" -p "Once upon a time" -n 60 > "$W.run/g.txt" 2>/dev/null; out "$W.run/g.txt" "generate"
if [ "$BIG" = 1 ]; then
    [ -f "$W/big-f32.gguf" ] || "$LLCPP_DIR/bin/mktiny" --type f32 --n-vocab 32000 --n-embd 2048 --n-ff 5632 --n-layer 4 \
        --n-head 32 --n-head-kv 4 --seed 1 "$W/big-f32.gguf" >/dev/null 2>&1
    for r in Q8_0 Q4_0 Q4_K_M Q6_K IQ4_XS F16; do
        "$SLM" quantize -q "$W/big-f32.gguf" --type $r -o "$W.run/q.gguf" -f; out "$W.run/q.gguf" "quantize big $r"
    done
fi
rm -rf "$W.run"
