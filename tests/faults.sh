#!/bin/sh
# faults.sh - what a tired user, a full disk and the OOM killer do to slm's outputs (issue 8):
#   1. kill -9 at random moments while writing: the output path holds nothing or the complete
#      file (never a part), and no temp file is left once the next run has been;
#   2. a full disk (RLIMIT_FSIZE stands in for ENOSPC: no root needed) and an unwritable folder:
#      one line, exit 1, no file;
#   3. allocation failure at every allocation point of convert, quantize, calibrate, quantize
#      --calibration (AWQ folding) and eval: exit 1 with
#      "out of memory", no output (leaks are caught when this runs under `make check-asan`).
# Run by `make check` with SLM set. TRIALS=N changes the number of kill trials (default 100).
set -u
SLM=${SLM:-build/slm}
FIX=${SLM_FIXTURES:-../shared/fixtures}
TRIALS=${TRIALS:-100}
T=$(mktemp -d "${TMPDIR:-/tmp}/slm-faults-XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "faults: FAIL: $*"; fails=$((fails + 1)); }
temps() { ls -a "$1" | grep -c '\.slm-' ; }
M=$FIX/models/tinystories-3M

# ---- 1. kill -9 -------------------------------------------------------------------------------
"$SLM" quantize -q "$M" --type Q4_K_M -o "$T/ref.gguf" || { echo "faults: reference quantize failed"; exit 1; }
t0=$(date +%s%N); "$SLM" quantize -q "$M" --type Q4_K_M -o "$T/t.gguf" -f; t1=$(date +%s%N)
dur_us=$(( (t1 - t0) / 1000 ))
complete=0; absent=0
i=0
while [ $i -lt "$TRIALS" ]; do
    rm -f "$T/k.gguf"
    "$SLM" quantize -q "$M" --type Q4_K_M -o "$T/k.gguf" -f &
    pid=$!
    # a random moment in [0, 1.2 x the run's duration]
    us=$(awk -v s=$i -v d=$dur_us 'BEGIN { srand(s + 1); printf "%d", rand() * d * 1.2 }')
    sleep "$(awk -v u="$us" 'BEGIN { printf "%.6f", u / 1e6 }')"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    if [ -e "$T/k.gguf" ]; then
        cmp -s "$T/k.gguf" "$T/ref.gguf" || fail "trial $i: the output is a partial or different file"
        complete=$((complete + 1))
    else
        absent=$((absent + 1))
    fi
    i=$((i + 1))
done
"$SLM" quantize -q "$M" --type Q4_K_M -o "$T/k.gguf" -f || fail "the run after the kills failed"
[ "$(temps "$T")" = 0 ] || fail "temp files left after $TRIALS kills and a clean run: $(ls -a "$T" | grep '\.slm-')"
echo "faults: $TRIALS kill -9 trials: $complete complete outputs, $absent none, 0 partial; no temp file left"

# ---- 2. full disk, unwritable folder ------------------------------------------------------------
out=$( (trap '' XFSZ; ulimit -f 1000; "$SLM" quantize "$M" --type F32 -o "$T/full.gguf") 2>&1 ); rc=$?
[ $rc -eq 1 ] || fail "full disk: exit $rc, want 1 ($out)"
[ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || fail "full disk: not one line: $out"
printf '%s' "$out" | grep -q "full.gguf" || fail "full disk: the message does not name the file: $out"
[ -e "$T/full.gguf" ] && fail "full disk: an output was left"
[ "$(temps "$T")" = 0 ] || fail "full disk: a temp file was left"
if [ "$(id -u)" != 0 ]; then ro="$T/ro"; mkdir "$ro"; chmod 555 "$ro"; else ro=/proc; fi
out=$("$SLM" convert "$M" -o "$ro/x.gguf" 2>&1); rc=$?
[ $rc -eq 1 ] || fail "unwritable folder: exit $rc, want 1 ($out)"
printf '%s' "$out" | grep -q "cannot create a file in" || fail "unwritable folder: $out"
[ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || fail "unwritable folder: not one line: $out"
echo "faults: full disk and unwritable folder: one line, exit 1, no file"

# ---- 3. allocation failure at every allocation --------------------------------------------------
S260=$FIX/models/stories260K
head -c 2000 "$FIX/text/tinystories_val.txt" > "$T/text.txt"
walk() { # walk NAME OUTPUT cmd... : fail allocation k = 0, 1, ... until the command succeeds
    name=$1; outp=$2; shift 2
    k=0
    while :; do
        rm -f "$outp"
        msg=$(SLM_TEST_FAIL_ALLOC=$k "$@" 2>&1 >/dev/null); rc=$?
        [ $rc -eq 0 ] && break
        [ $rc -eq 1 ] || { fail "$name: allocation $k: exit $rc ($msg)"; break; }
        printf '%s' "$msg" | grep -q "out of memory" || { fail "$name: allocation $k: $msg"; break; }
        [ -e "$outp" ] && fail "$name: allocation $k: output left"
        k=$((k + 1))
        [ $k -gt 5000 ] && { fail "$name: no success after 5000 allocations"; break; }
    done
    [ "$(temps "$T")" = 0 ] || fail "$name: temp files left"
    echo "faults: $name: each of its $k allocations failed once: exit 1, 'out of memory', no output"
}
walk convert "$T/c.gguf" "$SLM" convert "$S260" -o "$T/c.gguf"
walk quantize "$T/q.gguf" "$SLM" quantize "$S260" --type Q4_K_M -o "$T/q.gguf" --report-dir "$T/qr" -f
head -c 6000 "$FIX/text/tinystories_val.txt" > "$T/cal.txt"
walk calibrate "$T/st.gguf" "$SLM" calibrate "$S260" --text "$T/cal.txt" --ctx 64 --chunks 2 -o "$T/st.gguf" -f
"$SLM" calibrate "$S260" --text "$T/cal.txt" --ctx 64 --chunks 2 -o "$T/st.gguf" -f || fail "calibrate"
walk "quantize --calibration" "$T/q.gguf" "$SLM" quantize "$S260" --type Q8_0 -o "$T/q.gguf" --calibration "$T/st.gguf" --method awq+gptq --awq-alpha 0.5 -f
walk eval "$T/nll.txt" "$SLM" eval "$S260" --text "$T/text.txt" --ctx 64 --dump-nll "$T/nll.txt" -f
[ $fails -eq 0 ] && echo "faults: ok" || echo "faults: $fails failure(s)"
[ $fails -eq 0 ]
