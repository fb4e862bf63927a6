#!/bin/sh
# eval.sh - `slm eval` vs llama.cpp's perplexity (the llppl driver, llama-perplexity's loop over
# llama_decode) on the same GGUFs (stories260K and tinystories-3M, F32 and Q8_0, written by
# build/slm), the same token ids (llama.cpp's own tokenization of text/tinystories_val.txt,
# fed to both with --tokens-in), the same windows (llama-perplexity's convention, CTX tokens,
# CHUNKS of them) and the same thread count (1 and 2). Prints the evaluation speed both tools
# report (tokens/s = windows x CTX / evaluation seconds, model load and tokenization excluded),
# the ratio slm/llama.cpp (target >= 1.0), whole-process wall time and peak RSS
# (/usr/bin/time), and both perplexities. Not part of `make check`.
#   sh bench/eval.sh          CTX=256 CHUNKS=100 THREADS="1 2" REPEAT=1 MODELS="..." WORK=/tmp/slm-bench-eval
# On a shared 2-core box, a busy core makes any 2-thread run (ours and llama.cpp's) several
# times slower: check `top` first; each tool's runs alternate, so both see the same load.
set -eu
SLM=${SLM:-build/slm}
SLM=$(cd "$(dirname "$SLM")" && pwd)/$(basename "$SLM")
SHARED=${SHARED:-$(cd .. && pwd)/shared}
FIX=${SLM_FIXTURES:-$SHARED/fixtures}
LLCPP_DIR=${LLCPP_DIR:-/tmp/llcpp}
CTX=${CTX:-256}
CHUNKS=${CHUNKS:-100}
THREADS=${THREADS:-"1 2"}
REPEAT=${REPEAT:-1}
MODELS=${MODELS:-"stories260K:F32 stories260K:Q8_0 tinystories-3M:F32 tinystories-3M:Q8_0"}
WORK=${WORK:-/tmp/slm-bench-eval}
command -v /usr/bin/time >/dev/null || { echo "eval.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
if [ ! -x "$LLCPP_DIR/bin/llppl" ]; then
    sh "$SHARED/tools/llamacpp/setup.sh" "$LLCPP_DIR" >/dev/null
    make -s -C "$SHARED/tools/llamacpp" LLCPP_DIR="$LLCPP_DIR" >/dev/null
fi
B=$LLCPP_DIR/bin
mkdir -p "$WORK"
cd "$WORK"

# the models, written by slm
for mt in $MODELS; do
    m=${mt%%:*}; t=${mt#*:}
    [ -f "$m-$t.gguf" ] && continue
    if [ "$t" = F32 ]; then "$SLM" convert "$FIX/models/$m" -o "$m-$t.gguf" --outtype f32 -f -q
    else "$SLM" quantize "$FIX/models/$m" -o "$m-$t.gguf" --type "$t" -f -q; fi
done
first=${MODELS%% *}; first=${first%%:*}-${first#*:}.gguf
[ -f ids.txt ] || "$B/llppl" -q -t 1 -c "$CTX" --chunks 1 -f "$FIX/text/tinystories_val.txt" --dump-tokens ids.txt "$first" >/dev/null 2>&1

# one run: "tok_per_s ppl wall_s max_rss_kb", best tok/s of REPEAT runs
run_ll() {
    best=""
    i=0
    while [ $i -lt "$REPEAT" ]; do
        /usr/bin/time -f "%e %M" -o t.txt "$B/llppl" -q -t "$1" -c "$CTX" --chunks "$CHUNKS" --tokens-in ids.txt "$2" > out.txt 2>/dev/null ||
            { echo "eval.sh: llppl failed on $2" >&2; exit 1; }
        r=$(tr ' ' '\n' < out.txt | awk -F= '$1 == "tok_per_s" { t = $2 } $1 == "ppl" { p = $2 } END { print t, p }')
        best=$(echo "$best|$r $(cat t.txt)" | awk -F'|' '{ split($1, a, " "); split($2, b, " "); print (a[1] == "" || b[1] > a[1]) ? $2 : $1 }')
        i=$((i + 1))
    done
    echo "$best"
}
run_slm() {
    best=""
    i=0
    while [ $i -lt "$REPEAT" ]; do
        /usr/bin/time -f "%e %M" -o t.txt "$SLM" eval "$2" --tokens-in ids.txt --ctx "$CTX" --chunks "$CHUNKS" -t "$1" --json -q > out.txt ||
            { echo "eval.sh: slm eval failed on $2" >&2; exit 1; }
        r=$(sed -n 's/^[[:space:]]*"\(tokens_per_second\|ppl\)":[[:space:]]*\([-0-9.eE+]*\).*/\1 \2/p' out.txt |
            awk '$1 == "tokens_per_second" { t = $2 } $1 == "ppl" && p == "" { p = $2 } END { print t, p }')
        best=$(echo "$best|$r $(cat t.txt)" | awk -F'|' '{ split($1, a, " "); split($2, b, " "); print (a[1] == "" || b[1] > a[1]) ? $2 : $1 }')
        i=$((i + 1))
    done
    echo "$best"
}

echo "eval.sh: $(nproc) cores, ctx $CTX, $CHUNKS windows ($((CTX * CHUNKS)) tokens evaluated per run), best of $REPEAT, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-22s %2s %11s %11s %6s %8s %8s %8s %8s %9s %9s\n' model thr "llama_tok/s" "slm_tok/s" ratio "ll_wall" "slm_wall" "ll_MB" "slm_MB" "ll_ppl" "slm_ppl"
for mt in $MODELS; do
    m=${mt%%:*}; t=${mt#*:}; f=$m-$t.gguf
    for th in $THREADS; do
        set -- $(run_ll "$th" "$f"); lt=$1; lp=$2; lw=$3; lm=$4
        set -- $(run_slm "$th" "$f"); st=$1; sp=$2; sw=$3; sm=$4
        printf '%-22s %2s %11.0f %11.0f %6.2f %8.2f %8.2f %8.1f %8.1f %9.4f %9.4f\n' "$m $t" "$th" "$lt" "$st" \
            "$(awk -v a="$st" -v b="$lt" 'BEGIN { print a / b }')" "$lw" "$sw" \
            "$(awk -v k="$lm" 'BEGIN { print k / 1024 }')" "$(awk -v k="$sm" 'BEGIN { print k / 1024 }')" "$lp" "$sp"
    done
done
