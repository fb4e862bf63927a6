#!/bin/sh
# distill.sh - distillation throughput, slm vs PyTorch: training tokens/s of `slm distill` (teacher
# forward + student forward/backward + forward KL + clipping + AdamW) on tinystories-3M as the
# teacher and its 25%-FFN-pruned copy (slm prune --method ffn --sparsity 0.25 --uniform --format hf)
# as the student, B sequences x T tokens, THREADS threads, STEPS steps; PyTorch (float32, Debian's
# python3-torch) runs the same step on the same two models (bench/distill_torch.py). Each runs
# REPEAT times, alternating; the best of each counts. Peak RSS (GNU time) beside it.
# Not part of `make check`.
#   sh bench/distill.sh          B=8 T=128 THREADS=2 STEPS=10 REPEAT=2
# On a shared 2-core box a busy core slows any 2-thread run several times: the load average is printed.
set -eu
BUILD=${BUILD:-build}
SHARED=${SHARED:-$(cd .. && pwd)/shared}
FIX=${SLM_FIXTURES:-$SHARED/fixtures}
TEACHER=${TEACHER:-$FIX/models/tinystories-3M}
TEXT=${TEXT:-$FIX/text/tinystories_val.txt}
IDS=${IDS:-$FIX/text/tinystories_val.tok512.i32}
B=${B:-8}; T=${T:-128}; THREADS=${THREADS:-2}; STEPS=${STEPS:-10}; REPEAT=${REPEAT:-2}
PY=${PY:-/usr/bin/python3}
"$PY" -c "import torch" 2>/dev/null || { echo "distill.sh: needs python3-torch" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "distill.sh: needs GNU time (/usr/bin/time)" >&2; exit 1; }
[ -x "$BUILD/slm" ] || make -s "$BUILD/slm"
W=$(mktemp -d "${TMPDIR:-/tmp}/slm-distill-bench-XXXXXX")
trap 'rm -rf "$W"' EXIT
"$BUILD/slm" prune "$TEACHER" --method ffn --sparsity 0.25 --uniform --format hf -o "$W/student"
head -c 317760 "$TEXT" > "$W/text.txt"
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS
echo "distill step: $(basename "$TEACHER") -> 25% FFN-pruned student, B $B x T $T, $THREADS threads, $STEPS steps x $REPEAT runs; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
rss() { sed -n 's/.*Maximum resident set size (kbytes): //p' "$1" | awk '{printf "%.1f", $1 / 1024}'; }
best_s=0; best_t=0; i=0
while [ $i -lt "$REPEAT" ]; do
    /usr/bin/time -v "$BUILD/slm" distill --teacher "$TEACHER" --student "$W/student" --text "$W/text.txt" -o "$W/out.gguf" -f \
        --steps "$STEPS" --batch "$B" --ctx "$T" --warmup 0 -t "$THREADS" -v 2> "$W/slm.err" || { cat "$W/slm.err" >&2; exit 1; }
    s=$(sed -n 's/^distill: .*(\([0-9.]*\) tokens\/s).*/\1/p' "$W/slm.err")
    /usr/bin/time -v "$PY" bench/distill_torch.py "$TEACHER" "$W/student" "$IDS" "$B" "$T" "$THREADS" "$STEPS" > "$W/torch.out" 2> "$W/torch.err" ||
        { cat "$W/torch.err" >&2; exit 1; }
    t=$(awk '{print $3}' "$W/torch.out")
    echo "  slm   tokens/s $s  peak RSS $(rss "$W/slm.err") MiB"
    echo "  torch tokens/s $t  peak RSS $(rss "$W/torch.err") MiB  ($(cat "$W/torch.out"))"
    best_s=$(echo "$s $best_s" | awk '{print ($1 > $2) ? $1 : $2}')
    best_t=$(echo "$t $best_t" | awk '{print ($1 > $2) ? $1 : $2}')
    i=$((i + 1))
done
echo "$best_s $best_t" | awk '{printf "best: slm %.0f tokens/s, PyTorch %.0f tokens/s, ratio slm/PyTorch %.2f\n", $1, $2, $1 / $2}'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
