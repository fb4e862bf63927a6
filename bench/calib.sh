#!/bin/sh
# calib.sh - calibration (model/calib.c, driven by bench/calib.c) vs llama.cpp's llama-imatrix on
# tinystories-3M with the reference imatrix's text and options (calib40 = the first 317,760 bytes
# of text/tinystories_val.txt, -c 512: 301 chunks), 1 and 2 threads: tokens/s of both (llama-imatrix:
# from its "computing over" log line to its exit, so model load and tokenization are left out on
# both sides; it also computes its perplexity, which needs the logits) and the agreement of the
# sums with the fixtures' reference file. Prints; asserts nothing. llama-imatrix comes from
# `make -C ../shared/tools/llamacpp ref` (built here when missing).
set -eu
BUILD=${BUILD:-build}
SLM=${SLM:-$BUILD/slm}
LLCPP_DIR=${LLCPP_DIR:-/tmp/llcpp}
FIX=${SLM_FIXTURES:-../shared/fixtures}
SHARED=$(cd "$FIX/.." && pwd)
CHUNKS=${CHUNKS:-0}   # 0: all 301
REF="$FIX/reference/tinystories-3M.calib40.imatrix.gguf"

cc -O2 -std=c11 -D_DEFAULT_SOURCE -I. bench/calib.c "$BUILD/libslm.a" -fopenmp -lcjson -lm -o "$BUILD/bench_calib"
[ -x "$LLCPP_DIR/ref/llama-imatrix" ] || make -C "$SHARED/tools/llamacpp" ref LLCPP_DIR="$LLCPP_DIR" >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
head -c 317760 "$FIX/text/tinystories_val.txt" > "$tmp/calib40.txt"
"$SLM" convert "$FIX/models/tinystories-3M" -o "$tmp/ts3m-f32.gguf" --outtype f32

# seconds from the "computing over" line (llama.cpp's log stamps: minutes.seconds.ms.us) to the end
# of a llama-imatrix run
llama_seconds() {
    t0=$(date +%s.%N)
    "$LLCPP_DIR/ref/llama-imatrix" -m "$tmp/ts3m-f32.gguf" -f "$tmp/calib40.txt" -o "$tmp/ll.imatrix.gguf" -c 512 -t "$1" \
        --chunks "$([ "$CHUNKS" = 0 ] && echo -1 || echo "$CHUNKS")" > "$tmp/ll.log" 2>&1
    t1=$(date +%s.%N)
    start=$(grep 'computing over' "$tmp/ll.log" | awk '{split($1, a, "."); print a[1] * 60 + a[2] + a[3] / 1e3 + a[4] / 1e6}')
    echo "$t0 $t1 $start" | awk '{printf "%.3f", $2 - $1 - $3}'
}

echo "== calibration, tinystories-3M, calib40, ctx 512 (slm: --numerics ggml, as close to llama.cpp as it gets)"
for t in 1 2; do
    s=$(llama_seconds "$t")
    toks=$(grep -o 'computing over [0-9]* chunks' "$tmp/ll.log" | awk '{print $3 * 512}')
    line=$("$BUILD/bench_calib" "$FIX/models/tinystories-3M" "$tmp/calib40.txt" -c 512 -t "$t" --chunks "$CHUNKS" | grep '^calib:')
    ours=$(echo "$line" | sed 's/.*tok_per_s=//')
    echo "$toks $s $ours $t" | awk '{ll = $1 / $2; printf "threads %d: slm %.0f tok/s, llama-imatrix %.0f tok/s (%.2f s): %.2fx\n", $4, $3, ll, $2, $3 / ll}'
done
t=2
g=$("$BUILD/bench_calib" "$FIX/models/tinystories-3M" "$tmp/calib40.txt" -c 512 -t "$t" --chunks "$CHUNKS" --gram | grep '^calib:')
echo "with Gram matrices (threads $t): $(echo "$g" | sed 's/.*gram_bytes=\([0-9]*\).*tok_per_s=\(.*\)/\2 tok\/s, \1 bytes of Gram matrices/')"
f=$("$BUILD/bench_calib" "$FIX/models/tinystories-3M" "$tmp/calib40.txt" -c 512 -t "$t" --chunks "$CHUNKS" --forward-only | grep -E '^(calib|forward):')
echo "statistics overhead (threads $t): $(echo "$f" | sed -n 's/^calib:.*tok_per_s=/calib /p') vs $(echo "$f" | sed -n 's/^forward:.*tok_per_s=/forward only /p') tok/s"
if [ "$CHUNKS" = 0 ]; then
    for num in ggml f32; do
        echo "agreement with $REF, --numerics $num: $("$BUILD/bench_calib" "$FIX/models/tinystories-3M" "$tmp/calib40.txt" -c 512 \
            -t 2 --numerics $num --ref "$REF" | grep '^agree:')"
    done
fi
