#!/bin/sh
# target.sh - slm quantize --target-bpw (per-tensor types for a size target) against llama.cpp's fixed
# recipes made by slm with the same --calibration, tinystories-3M. KLD by llama.cpp's own llkld (ctx
# 256, held-out text = tail -c +676506 of tinystories_val.txt, vs the F32 GGUF); calibration stats by
# slm calibrate on the first 317760 bytes.
#   sh bench/target.sh [SLM]     BPWS="3.5 4.0 5.0" RECIPES="Q3_K_M Q3_K_L IQ4_XS Q4_K_S Q4_K_M Q5_K_S"
#                                THREADS=2 WORK=/tmp/slm-target
set -eu
SLM=${1:-build/slm}
SLM=$(cd "$(dirname "$SLM")" && pwd)/$(basename "$SLM")
FIX=${SLM_FIXTURES:-$(cd .. && pwd)/shared/fixtures}
FIX=$(cd "$FIX" && pwd)
LLCPP_DIR=${LLCPP_DIR:-/tmp/llcpp}
THREADS=${THREADS:-2}
BPWS=${BPWS:-"3.5 4.0 5.0"}
RECIPES=${RECIPES:-"Q3_K_M Q3_K_L IQ4_XS Q4_K_S Q4_K_M Q5_K_S"}
WORK=${WORK:-/tmp/slm-target}
mkdir -p "$WORK"
cd "$WORK"
head -c 317760 "$FIX/text/tinystories_val.txt" > calib40.txt
tail -c +676506 "$FIX/text/tinystories_val.txt" > heldout.txt
[ -f ts-f32.gguf ] || "$SLM" convert "$FIX/models/tinystories-3M" -o ts-f32.gguf --outtype f32
[ -f ts.stats.gguf ] || "$SLM" calibrate ts-f32.gguf --text calib40.txt -o ts.stats.gguf -f -t "$THREADS"
cands=""
for r in $RECIPES; do
    "$SLM" quantize ts-f32.gguf --type "$r" --calibration ts.stats.gguf -o "fix-$r.gguf" -f -t "$THREADS" 2>/dev/null
    cands="$cands fix-$r.gguf"
done
for b in $BPWS; do
    "$SLM" quantize ts-f32.gguf --target-bpw "$b" --calibration ts.stats.gguf -o "tgt-$b.gguf" --report "tgt-$b.json" -f \
        -t "$THREADS" 2>/dev/null
    cands="$cands tgt-$b.gguf"
done
# shellcheck disable=SC2086
"$LLCPP_DIR/bin/llkld" -f heldout.txt -c 256 -t "$THREADS" -q ts-f32.gguf $cands > kld.txt 2>&1
np=$(grep -o 'n_params=[0-9]*' kld.txt | head -1 | cut -d= -f2)
printf "%-16s %9s %7s %10s %8s  %s\n" model bytes bpw "mean KLD" "top-1 %" "target"
for f in $cands; do
    line=$(grep "^kld: model=$f " kld.txt)
    kld=$(echo "$line" | sed 's/.*kld_mean=\([0-9.e-]*\).*/\1/')
    top=$(echo "$line" | sed 's/.*same_top_pct=\([0-9.]*\).*/\1/')
    tg=""
    [ -f "${f%.gguf}.json" ] && tg=$(grep -o 'target_bytes=[0-9]*' "${f%.gguf}.json")
    awk -v f="$f" -v b="$(stat -c %s "$f")" -v np="$np" -v k="$kld" -v t="$top" -v tg="$tg" \
        'BEGIN { printf "%-16s %9d %7.3f %10.6f %8.3f  %s\n", f, b, 8 * b / np, k, t, tg }'
done
echo "(bpw = 8 * file bytes / parameters, everything counted; fix-* = llama.cpp recipes, slm --calibration (gptq))"
