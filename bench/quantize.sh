#!/bin/sh
# quantize.sh - slm quantize vs llama.cpp's quantizer (llama_model_quantize, via the `llq`
# driver built from the npm binaries) on the same synthetic Llama-shaped model (~305M
# parameters, made by llama.cpp's own GGUF writer: mktiny), F32 and F16 inputs, same thread
# count. Prints wall time (best of REPEAT, whole process), peak RSS, the time ratio
# slm/llama.cpp per type, whether the two files are identical, and the error of both outputs
# against the F32 source (ggml's dequantizer, lldq). Targets (issue 9, F32 input, fsync included):
# Q8_0/Q4_0 <= 0.6x, Q4_K_M/IQ4_XS <= 0.3x, peak RSS <= llama.cpp's. The machine may be shared:
# compare ratios (the two alternate, so both see the same load), not seconds; the load is printed.
#   sh bench/quantize.sh            THREADS=2 REPEAT=3 TYPES="Q8_0 Q4_0 Q4_K_M IQ4_XS Q6_K" INPUTS="f32 f16" WORK=/tmp/slm-bench
set -eu
SLM=${SLM:-build/slm}
SLM=$(cd "$(dirname "$SLM")" && pwd)/$(basename "$SLM")
SHARED=${SHARED:-$(cd .. && pwd)/shared}
LLCPP_DIR=${LLCPP_DIR:-/tmp/llcpp}
THREADS=${THREADS:-2}
REPEAT=${REPEAT:-3}
TYPES=${TYPES:-"Q8_0 Q4_0 Q4_K_M IQ4_XS Q6_K"}
INPUTS=${INPUTS:-"f32 f16"}
WORK=${WORK:-/tmp/slm-bench}
command -v /usr/bin/time >/dev/null || { echo "quantize.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
sh "$SHARED/tools/llamacpp/setup.sh" "$LLCPP_DIR" >/dev/null
make -s -C "$SHARED/tools/llamacpp" LLCPP_DIR="$LLCPP_DIR" >/dev/null
B=$LLCPP_DIR/bin
mkdir -p "$WORK"
cd "$WORK"
for ty in f32 f16; do
    [ -f "big-$ty.gguf" ] || "$B/mktiny" --type $ty --n-vocab 32000 --n-embd 2048 --n-ff 5632 --n-layer 4 --n-head 32 \
        --n-head-kv 4 --seed 1 "big-$ty.gguf" >/dev/null 2>&1
done
[ -d orig ] || { mkdir orig && "$B/lldq" -q big-f32.gguf -o orig >/dev/null 2>&1; }

# one run of a command: "wall_s max_rss_kb"
once() {
    /usr/bin/time -f "%e %M" -o t.txt "$@" >/dev/null 2>&1 || { echo "quantize.sh: failed: $*" >&2; exit 1; }
    cat t.txt
}
# the best wall time and the largest RSS of two "wall rss" lines
keep() { echo "$1|$2" | awk -F'|' '{ if ($1 == "") { print $2; exit } split($1, a, " "); split($2, b, " ");
    print (b[1] < a[1] ? b[1] : a[1]), (b[2] > a[2] ? b[2] : a[2]) }'; }

err_of() { "$B/lldq" -q "$1" -c orig 2>/dev/null | sed -n 's/.*cmp-total.* rmse=\([^ ]*\) rel_rmse=\([^ ]*\).*/\1 \2/p'; }

echo "quantize.sh: $(nproc) cores, threads=$THREADS, best of $REPEAT alternating runs, load $(cut -d' ' -f1-3 /proc/loadavg), model 305M params ($(wc -c < big-f32.gguf) bytes F32)"
printf '%-6s %-4s %9s %9s %7s %9s %9s %-9s %12s %12s\n' type in "llama_s" "slm_s" ratio "ll_MB" "slm_MB" same "ll_relrmse" "slm_relrmse"
for ty in $INPUTS; do
    for t in $TYPES; do
        rm -f ll.gguf slm.gguf
        lb=""; sb=""; i=0
        while [ $i -lt "$REPEAT" ]; do # llama.cpp and slm alternately: both see the same load
            lb=$(keep "$lb" "$(once "$B/llq" -q "big-$ty.gguf" ll.gguf "$t" "$THREADS")")
            sb=$(keep "$sb" "$(once "$SLM" quantize "big-$ty.gguf" -o slm.gguf --type "$t" -t "$THREADS" -f)")
            i=$((i + 1))
        done
        set -- $lb; lw=$1; lm=$2
        set -- $sb; sw=$1; sm=$2
        same=no; cmp -s ll.gguf slm.gguf && same=identical
        set -- $(err_of ll.gguf); le=$2
        set -- $(err_of slm.gguf); se=$2
        printf '%-6s %-4s %9.2f %9.2f %7.2f %9.0f %9.0f %-9s %12s %12s\n' "$t" "$ty" "$lw" "$sw" \
            "$(awk -v a="$sw" -v b="$lw" 'BEGIN { print a / b }')" "$(awk -v k="$lm" 'BEGIN { print k / 1024 }')" \
            "$(awk -v k="$sm" 'BEGIN { print k / 1024 }')" "$same" "$le" "$se"
    done
done
echo "quantize.sh: load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
