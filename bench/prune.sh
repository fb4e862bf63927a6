#!/bin/sh
# prune.sh - slm prune's speed and peak RSS beside a plain F32 -> F16 `slm convert` of the same
# model (both streaming passes; the issue asks magnitude/Wanda with precomputed statistics at
# >= 0.5x convert's speed), and SparseGPT on tinystories-3M. Timings are noisy on a shared
# machine: the runs are side by side, compare the ratios. Run from the repository root after make.
#   DIM=1024 FF=2816 LAYERS=6 (synthetic F32 Llama, about 180 MB)   WORK=/tmp/slm-bench-prune
set -eu
SLM=${SLM:-build/slm}; MKSYNTH=${MKSYNTH:-build/mksynth}; FIX=${SLM_FIXTURES:-../shared/fixtures}
WORK=${WORK:-/tmp/slm-bench-prune}; mkdir -p "$WORK"
M="$WORK/synth-f32"
[ -f "$M/config.json" ] || "$MKSYNTH" "$M" --dim "${DIM:-1024}" --ff "${FF:-2816}" --layers "${LAYERS:-6}" --heads 16 \
    --kv-heads 4 --dtype f32 --shards 1 --tokenizer-from "$FIX/models/stories260K" > /dev/null
head -c 20000 "$FIX/text/tinystories_val.txt" > "$WORK/cal.txt"
"$SLM" calibrate "$M" --text "$WORK/cal.txt" -o "$WORK/stats.gguf" --ctx 64 --chunks 2 --gram-max 0 -q -f
run() { # label cmd... : wall seconds and peak RSS
    /usr/bin/time -f "%e %M" -o "$WORK/t.txt" "$@" > /dev/null 2>&1 || { echo "prune.sh: $1 failed" >&2; exit 1; }
    read -r s kb < "$WORK/t.txt"; echo "$s $kb"
}
set -- $(run "$SLM" convert "$M" -o "$WORK/c.gguf" --outtype f16 -f); cs=$1; crss=$2
for meth in magnitude wanda; do
    set -- $(run "$SLM" prune "$M" -o "$WORK/p.gguf" --method $meth --sparsity 0.5 --outtype f16 --calibration "$WORK/stats.gguf" -f)
    awk -v m=$meth -v s=$1 -v r=$2 -v cs=$cs -v cr=$crss 'BEGIN { printf "prune %-9s %.2f s (%.2fx convert F32->F16 at %.2f s), peak RSS %.1f MB (convert %.1f MB)\n", m, s, cs / s, cs, r / 1024, cr / 1024 }'
done
TS3="$FIX/models/tinystories-3M"
head -c 317760 "$FIX/text/tinystories_val.txt" > "$WORK/cal3m.txt"
set -- $(run "$SLM" prune "$TS3" -o "$WORK/sg.gguf" --method sparsegpt --sparsity 0.5 --calib-text "$WORK/cal3m.txt" -f)
echo "prune sparsegpt tinystories-3M (calibration 317760 bytes, incl. the calibration pass): $1 s, peak RSS $(($2 / 1024)) MB"
