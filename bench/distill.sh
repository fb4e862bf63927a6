#!/bin/sh
# distill.sh - distillation throughput, slm vs PyTorch: training tokens/s of `slm distill`
# (teacher forward + student forward/backward + AdamW, per step) beside the same step in PyTorch
# (bench/distill_torch.py), same teacher (tinystories-3M), same student (its FFN pruned by 25%,
# `slm prune --method ffn --uniform --format hf`, F32), B windows of T tokens, THREADS threads;
# and the peak RSS of each. Each tool runs REPEAT times, alternating; the best run counts.
# Not part of `make check`.
#   sh bench/distill.sh          B=8 T=256 THREADS=2 STEPS=20 REPEAT=3 TEACHER=...
# On a shared 2-core box a busy core slows any 2-thread run several times: check `uptime`.
set -eu
BUILD=${BUILD:-build}
SLM=${SLM:-$BUILD/slm}
SHARED=${SHARED:-$(cd .. && pwd)/shared}
FIX=${SLM_FIXTURES:-$SHARED/fixtures}
TEACHER=${TEACHER:-$FIX/models/tinystories-3M}
IDS=${IDS:-$FIX/text/tinystories_val.tok512.i32}
B=${B:-8}; T=${T:-256}; THREADS=${THREADS:-2}; STEPS=${STEPS:-20}; REPEAT=${REPEAT:-3}
PY=${PY:-/usr/bin/python3}
"$PY" -c "import torch" 2>/dev/null || { echo "distill.sh: needs python3-torch (apt-get install -y python3-torch libopenblas0-pthread)" >&2; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/slm-distill-bench-XXXXXX")
trap 'rm -rf "$W"' EXIT
"$SLM" prune "$TEACHER" --method ffn --sparsity 0.25 --uniform --format hf -o "$W/student" 2>/dev/null
head -c 400000 "$FIX/text/tinystories_val.txt" > "$W/text.txt"
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS
echo "distill step: teacher $(basename "$TEACHER"), student its FFN -25%, B $B x T $T, $THREADS threads, $STEPS steps x $REPEAT runs; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
best_s=0; best_t=0; rss_s=0; rss_t=0
i=0
while [ $i -lt "$REPEAT" ]; do
    /usr/bin/time -f "%M" -o "$W/rss" "$SLM" distill --teacher "$TEACHER" --student "$W/student" --text "$W/text.txt" \
        -o "$W/out.gguf" -f -v --steps "$STEPS" --ctx "$T" --batch "$B" --lr 3e-4 -t "$THREADS" 2> "$W/log"
    s=$(sed -n 's/.* in [0-9.]* s (\([0-9]*\) tokens\/s).*/\1/p' "$W/log")
    rs=$(awk '{printf "%.1f", $1 / 1024}' "$W/rss")
    t=$("$PY" bench/distill_torch.py "$TEACHER" "$W/student" "$IDS" "$B" "$T" "$THREADS" 5)
    echo "  slm tokens/s $s peak_rss_mb $rs"; echo "  $t"
    best_s=$(echo "$s $best_s" | awk '{print ($1 > $2) ? $1 : $2}')
    best_t=$(echo "$t $best_t" | awk '{print ($3 > $NF) ? $3 : $NF}')
    rss_s=$rs; rss_t=$(echo "$t" | awk '{print $7}')
    i=$((i + 1))
done
echo "$best_s $best_t $rss_s $rss_t" | awk '{printf "best: slm %.0f tokens/s, PyTorch %.0f tokens/s, ratio slm/PyTorch %.2f; peak RSS slm %s MB, PyTorch %s MB\n", $1, $2, $1 / $2, $3, $4}'
