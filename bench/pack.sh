#!/bin/sh
# pack.sh - the packed GGUF (slm pack): size and time of pack/unpack per zstd level, and what
# reading a packed file costs `slm eval` against the plain GGUF (target: <= 1.5x the time).
# Models: tinystories-3M (and stories260K) written by build/slm as F32, F16, Q8_0, Q4_K_M.
# Eval: the held-out text, --ctx CTX, CHUNKS windows, THREADS threads; the plain and the packed
# run alternate REPEAT times and the fastest of each is kept (whole-process wall time: load,
# decompression, tokenization and scoring). Not part of `make check`.
#   sh bench/pack.sh          CTX=256 CHUNKS=8 THREADS=2 REPEAT=3 LEVELS="1 3 9 19" WORK=/tmp/slm-bench-pack
set -eu
SLM=${SLM:-build/slm}
SLM=$(cd "$(dirname "$SLM")" && pwd)/$(basename "$SLM")
FIX=${SLM_FIXTURES:-$(cd .. && pwd)/shared/fixtures}
CTX=${CTX:-256}
CHUNKS=${CHUNKS:-8}
THREADS=${THREADS:-2}
REPEAT=${REPEAT:-3}
LEVELS=${LEVELS:-"1 3 9 19"}
MODELS=${MODELS:-"tinystories-3M:F32 tinystories-3M:F16 tinystories-3M:Q8_0 tinystories-3M:Q4_K_M stories260K:F32 stories260K:Q4_K_M"}
WORK=${WORK:-/tmp/slm-bench-pack}
mkdir -p "$WORK"
cd "$WORK"
tail -c +676506 "$FIX/text/tinystories_val.txt" > heldout.txt

now() { date +%s.%N; }
secs() { t0=$(now); "$@" > /dev/null 2>&1; t1=$(now); printf '%.3f' "$(echo "$t1 - $t0" | bc -l)"; }
min() { printf '%s\n' "$@" | sort -g | head -1; }

for mt in $MODELS; do
    m=${mt%%:*}; t=${mt#*:}
    [ -f "$m-$t.gguf" ] || "$SLM" quantize "$FIX/models/$m" -o "$m-$t.gguf" --type "$t" -f -q
done

echo "== pack / unpack per zstd level ($THREADS threads): packed/GGUF size, seconds"
for mt in $MODELS; do
    m=${mt%%:*}; t=${mt#*:}; g=$m-$t.gguf
    line=$(printf '%-16s %-7s' "$m" "$t")
    for l in $LEVELS; do
        s=$(secs "$SLM" pack "$g" -o "$g.$l.zst" -l "$l" -t "$THREADS" -f)
        line="$line  L$l $(printf '%.4f' "$(echo "$(stat -c %s "$g.$l.zst") / $(stat -c %s "$g")" | bc -l)") ${s}s"
    done
    u=$(secs "$SLM" unpack "$g.3.zst" -o "$g.back" -f)
    cmp -s "$g" "$g.back" || { echo "pack.sh: $g: unpack differs" >&2; exit 1; }
    echo "$line  unpack(L3) ${u}s, identical"
done

echo "== eval: plain GGUF vs packed (level 3), --ctx $CTX, $CHUNKS windows, $THREADS threads, best of $REPEAT"
for mt in $MODELS; do
    m=${mt%%:*}; t=${mt#*:}; g=$m-$t.gguf
    a=""; b=""
    for i in $(seq "$REPEAT"); do
        a="$a $(secs "$SLM" eval "$g" --text heldout.txt --ctx "$CTX" --chunks "$CHUNKS" -t "$THREADS")"
        b="$b $(secs "$SLM" eval "$g.3.zst" --text heldout.txt --ctx "$CTX" --chunks "$CHUNKS" -t "$THREADS")"
    done
    a=$(min $a); b=$(min $b)
    pa=$("$SLM" eval "$g" --text heldout.txt --ctx "$CTX" --chunks "$CHUNKS" -t "$THREADS" --json | grep '"ppl"')
    pb=$("$SLM" eval "$g.3.zst" --text heldout.txt --ctx "$CTX" --chunks "$CHUNKS" -t "$THREADS" --json | grep '"ppl"')
    [ "$pa" = "$pb" ] || { echo "pack.sh: $g: perplexity differs: $pa vs $pb" >&2; exit 1; }
    printf '%-16s %-7s plain %.3f s  packed %.3f s  ratio %.2fx  (same PPL)\n' "$m" "$t" "$a" "$b" "$(echo "$b / $a" | bc -l)"
done
