#!/bin/sh
# parse_scale.sh - parse time and peak RSS of `slm inspect` on headers with 10k..80k entries
# (GGUF metadata keys, GGUF tensors, safetensors entries), and on a GGUF whose metadata is one
# array of STRARR empty strings (default 50M: a 400 MB file). Linear parsers double their time
# when the entry count doubles; the string array must stay within the metadata cap or be
# refused with one line. Run from the repository root after `make`: sh bench/parse_scale.sh
#   SLM=build/slm  WORK=/tmp/slm-parse-scale  SIZES="10000 20000 40000 80000"  STRARR=50000000
set -eu
SLM=${SLM:-build/slm}
BUILD=${BUILD:-build}
WORK=${WORK:-/tmp/slm-parse-scale}
SIZES=${SIZES:-10000 20000 40000 80000}
STRARR=${STRARR:-50000000}
command -v /usr/bin/time >/dev/null || { echo "parse_scale: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
mkdir -p "$WORK"
GEN="$BUILD/gen_scale"
cc -O2 -std=c11 -D_DEFAULT_SOURCE -I. bench/gen_scale.c -o "$GEN"

# run FILE: prints "seconds peak_rss_kb exit_status" of `slm inspect FILE` (wall time from
# date +%N: /usr/bin/time only resolves 10 ms)
run() {
    st=0
    t0=$(date +%s%N)
    /usr/bin/time -f "%M" -o "$WORK/time.txt" "$SLM" inspect "$1" > /dev/null 2> "$WORK/err.txt" || st=$?
    t1=$(date +%s%N)
    echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }') $(tail -1 "$WORK/time.txt") $st"
}

printf "%-14s %9s %10s %9s %10s %8s\n" "kind" "entries" "file MB" "seconds" "peak RSS" "t/t(prev)"
for kind in gguf-kv gguf-tensors st; do
    prev=""
    for n in $SIZES; do
        ext=gguf; [ "$kind" = st ] && ext=safetensors
        f="$WORK/$kind-$n.$ext"
        [ -f "$f" ] || "$GEN" "$kind" "$n" "$f"
        set -- $(run "$f")
        [ "$3" = 0 ] || { echo "parse_scale: $f: exit $3: $(cat "$WORK/err.txt")" >&2; exit 1; }
        ratio=$(awk -v a="$1" -v b="${prev:-0}" 'BEGIN { if (b > 0.0005) printf "%.2f", a / b; else printf "-" }')
        awk -v kind="$kind" -v n="$n" -v b="$(wc -c < "$f")" -v s="$1" -v k="$2" -v r="$ratio" \
            'BEGIN { printf "%-14s %9d %10.1f %9.3f %7.1f MB %8s\n", kind, n, b / 1e6, s, k / 1024, r }'
        prev=$1
    done
done

f="$WORK/strarr-$STRARR.gguf"
[ -f "$f" ] || "$GEN" gguf-strarr "$STRARR" "$f"
set -- $(run "$f")
bytes=$(wc -c < "$f")
awk -v n="$STRARR" -v b="$bytes" -v s="$1" -v k="$2" -v st="$3" 'BEGIN {
    printf "string array: %d empty strings, file %.1f MB: %.2f s, peak RSS %.1f MB (%.2f x the file), exit %d\n",
           n, b / 1e6, s, k * 1024 / 1e6, k * 1024 / b, st }'
[ "$3" = 0 ] || echo "  stderr: $(head -c 300 "$WORK/err.txt")"
