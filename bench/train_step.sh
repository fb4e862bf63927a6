#!/bin/sh
# train_step.sh - training throughput, slm vs PyTorch: tokens/s of one step (forward keeping
# activations, mean cross-entropy, backward, global-norm clipping, AdamW) on tinystories-3M,
# B sequences x T tokens of text/tinystories_val.tok512.i32 (next ids as targets), THREADS
# threads, STEPS timed steps after one warm-up step; each tool runs REPEAT times, alternating,
# and the best run of each counts. slm: bench/train_step.c; PyTorch (float32, Debian's
# python3-torch with OpenBLAS): bench/train_step_torch.py. Both print the first loss, which
# must agree (same weights, same RoPE layout). Prints the ratio slm/PyTorch (> 1: slm faster).
# Not part of `make check`.
#   sh bench/train_step.sh          B=4 T=256 THREADS=2 STEPS=5 REPEAT=3 MODEL=... IDS=...
# On a shared 2-core box a busy core slows any 2-thread run several times: check `uptime`.
set -eu
BUILD=${BUILD:-build}
SHARED=${SHARED:-$(cd .. && pwd)/shared}
FIX=${SLM_FIXTURES:-$SHARED/fixtures}
MODEL=${MODEL:-$FIX/models/tinystories-3M}
IDS=${IDS:-$FIX/text/tinystories_val.tok512.i32}
B=${B:-4}; T=${T:-256}; THREADS=${THREADS:-2}; STEPS=${STEPS:-5}; REPEAT=${REPEAT:-3}
PY=${PY:-/usr/bin/python3}
"$PY" -c "import torch" 2>/dev/null || { echo "train_step.sh: needs python3-torch (apt-get install -y python3-torch libopenblas0-pthread)" >&2; exit 1; }
[ -f "$BUILD/libslm.a" ] || make -s "$BUILD/libslm.a"
cc -O2 -std=c11 -D_DEFAULT_SOURCE -I. bench/train_step.c "$BUILD/libslm.a" $(pkg-config --libs libcjson libzstd) -fopenmp -lm \
    -o "$BUILD/bench_train_step"
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS
echo "train step: $(basename "$MODEL"), B $B x T $T, $THREADS threads, $STEPS steps x $REPEAT runs; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
best_s=0; best_t=0
i=0
while [ $i -lt "$REPEAT" ]; do
    s=$("$BUILD/bench_train_step" "$MODEL" "$IDS" "$B" "$T" "$THREADS" "$STEPS")
    t=$("$PY" bench/train_step_torch.py "$MODEL" "$IDS" "$B" "$T" "$THREADS" "$STEPS")
    echo "  $s"; echo "  $t"
    best_s=$(echo "$s $best_s" | awk '{print ($3 > $NF) ? $3 : $NF}')
    best_t=$(echo "$t $best_t" | awk '{print ($3 > $NF) ? $3 : $NF}')
    i=$((i + 1))
done
echo "$best_s $best_t" | awk '{printf "best: slm %.0f tokens/s, PyTorch %.0f tokens/s, ratio slm/PyTorch %.2f\n", $1, $2, $1 / $2}'
