#!/bin/sh
# convert_rss.sh - peak RSS of `slm convert` on a ~1 GB synthetic Llama-shaped checkpoint
# (sharded, BF16), beside the input size: memory must be bounded by about one tensor, not by
# the model. Run from the repository root after `make`: sh bench/convert_rss.sh
#   SIZE_LAYERS=11 (about 1 GB)   OUTTYPE=bf16|f16|f32   WORK=/tmp/slm-bench
set -eu
SLM=${SLM:-build/slm}
MKSYNTH=${MKSYNTH:-build/mksynth}
WORK=${WORK:-/tmp/slm-bench}
LAYERS=${SIZE_LAYERS:-11}
OUTTYPE=${OUTTYPE:-bf16}
FIX=${SLM_FIXTURES:-../shared/fixtures}
command -v /usr/bin/time >/dev/null || { echo "convert_rss: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
mkdir -p "$WORK"
M="$WORK/synth-bf16"
if [ ! -f "$M/config.json" ]; then
    "$MKSYNTH" "$M" --dim 2048 --ff 5632 --layers "$LAYERS" --heads 32 --kv-heads 4 --vocab 512 --dtype bf16 --shards 4 \
        --tokenizer-from "$FIX/models/stories260K"
fi
in_bytes=$(cat "$M"/*.safetensors | wc -c)
big=$(for f in "$M"/*.safetensors; do "$SLM" inspect "$f" --json; done | grep '"bytes"' | tr -dc '0-9\n' | sort -n | tail -1)
rm -f "$WORK/out.gguf"
/usr/bin/time -v "$SLM" convert "$M" -o "$WORK/out.gguf" --outtype "$OUTTYPE" -f 2> "$WORK/time.txt"
rss_kb=$(grep "Maximum resident set size" "$WORK/time.txt" | tr -dc '0-9')
wall=$(grep "Elapsed (wall clock)" "$WORK/time.txt" | sed 's/.*: //')
out_bytes=$(wc -c < "$WORK/out.gguf")
awk -v i="$in_bytes" -v o="$out_bytes" -v r="$rss_kb" -v b="$big" -v w="$wall" -v t="$OUTTYPE" 'BEGIN {
    printf "convert_rss: input %.1f MB (BF16, 4 shards) -> %s %.1f MB in %s\n", i/1e6, t, o/1e6, w;
    printf "convert_rss: peak RSS %.1f MB = %.3f x input, %.2f x the largest tensor (%.1f MB)\n", r*1024/1e6, r*1024/i, r*1024/b, b/1e6 }'
