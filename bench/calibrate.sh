#!/bin/sh
# calibrate.sh - issue 10's measurements, one script (prints; asserts nothing):
#  1. calibration: `slm calibrate` (with its extras: E|x|, Gram matrices; and --plain, only what
#     llama-imatrix computes) beside llama.cpp's llama-imatrix on tinystories-3M, calib40 (the
#     first 317,760 bytes of text/tinystories_val.txt), -c 512, same threads: whole-process wall
#     time (load + tokenize + run; llama-imatrix also computes its perplexity), tokens/s, peak RSS.
#  2. KLD per method: for each recipe, llama.cpp with the fixtures' reference imatrix (llq
#     --imatrix) and every slm method with `slm calibrate`'s statistics (--calibration), mean KLD
#     by llama.cpp's own llkld (ctx 256, held-out text = tail -c +676506, vs the F32 GGUF), file
#     size against llama.cpp's, the issue's target (0.8x llama.cpp's reference KLD). Methods the
#     build does not have (gptq before it lands) are skipped.
#  3. quantize time per method (AWQ search, GPTQ): tinystories-3M and a 240M random Llama (mktiny:
#     16 layers of 1024/2816, 16 heads, 4 kv heads, vocab 32000) calibrated on 4 chunks of 128 ids
#     (Gram matrices up to 1024 columns).
# Timings on a shared machine are noisy: each comparison runs side by side in the same minute.
#   sh bench/calibrate.sh          THREADS=2 TYPES="Q4_K_M Q3_K_M Q2_K" METHODS="rtn imatrix awq gptq awq+gptq"
#                                  BIG=0 skips the 240M model; WORK=/tmp/slm-calibrate keeps files
set -eu
SLM=${SLM:-build/slm}
SLM=$(cd "$(dirname "$SLM")" && pwd)/$(basename "$SLM")
FIX=${SLM_FIXTURES:-$(cd .. && pwd)/shared/fixtures}
FIX=$(cd "$FIX" && pwd)
SHARED=$(cd "$FIX/.." && pwd)
LLCPP_DIR=${LLCPP_DIR:-/tmp/llcpp}
THREADS=${THREADS:-2}
TYPES=${TYPES:-"Q4_K_M Q3_K_M Q2_K"}
METHODS=${METHODS:-"rtn imatrix awq awq-clip gptq awq+gptq"}   # NAME-clip: --method NAME --awq-clip
BIG=${BIG:-1}
WORK=${WORK:-/tmp/slm-calibrate}
REF_IM="$FIX/reference/tinystories-3M.calib40.imatrix.gguf"
command -v /usr/bin/time >/dev/null || { echo "calibrate.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
[ -x "$LLCPP_DIR/bin/llkld" ] || { sh "$SHARED/tools/llamacpp/setup.sh" "$LLCPP_DIR" >/dev/null; make -s -C "$SHARED/tools/llamacpp" LLCPP_DIR="$LLCPP_DIR" >/dev/null; }
[ -x "$LLCPP_DIR/ref/llama-imatrix" ] || make -s -C "$SHARED/tools/llamacpp" ref LLCPP_DIR="$LLCPP_DIR" >/dev/null
B=$LLCPP_DIR/bin
mkdir -p "$WORK"
cd "$WORK"
head -c 317760 "$FIX/text/tinystories_val.txt" > calib40.txt
tail -c +676506 "$FIX/text/tinystories_val.txt" > heldout.txt
[ -f ts-f32.gguf ] || "$SLM" convert "$FIX/models/tinystories-3M" -o ts-f32.gguf --outtype f32

# "wall_s peak_rss_kib" of one run
run_timed() { /usr/bin/time -f "%e %M" -o t.txt "$@" >/dev/null 2>&1 || { echo "calibrate.sh: failed: $*" >&2; exit 1; }; cat t.txt; }

echo "== 1. calibration, tinystories-3M, calib40, -c 512 (301 chunks = 154112 tokens), $THREADS threads, whole process"
toks=$((301 * 512))
row() { echo "$2" | awk -v n="$1" -v t="$toks" '{printf "%-34s %7.2f s %8.0f tok/s  peak RSS %6.1f MiB\n", n, $1, t / $1, $2 / 1024}'; }
row "llama-imatrix" "$(run_timed "$LLCPP_DIR/ref/llama-imatrix" -m ts-f32.gguf -f calib40.txt -o ll.imatrix.gguf -c 512 -t "$THREADS")"
row "slm calibrate --plain" "$(run_timed "$SLM" calibrate ts-f32.gguf --text calib40.txt -o plain.stats.gguf -f -t "$THREADS" --plain)"
row "slm calibrate (E|x|, Gram)" "$(run_timed "$SLM" calibrate ts-f32.gguf --text calib40.txt -o ts.stats.gguf -f -t "$THREADS")"
row "slm calibrate --numerics ggml" "$(run_timed "$SLM" calibrate ts-f32.gguf --text calib40.txt -o ggml.stats.gguf -f -t "$THREADS" --numerics ggml)"

echo
echo "== 2. mean KLD (llkld, ctx 256, held-out text, vs F32), llama.cpp with the reference imatrix vs slm --calibration"
cands=""
: > rows.txt
for ty in $TYPES; do
    "$B/llq" --imatrix "$REF_IM" ts-f32.gguf "ll-$ty.gguf" "$ty" "$THREADS" >/dev/null 2>&1
    cands="$cands ll-$ty.gguf"
    echo "ll-$ty.gguf $ty llama.cpp+ref-imatrix 0" >> rows.txt
    for m in $METHODS; do
        f="slm-$ty-$(echo "$m" | tr + _).gguf"
        mb=${m%-clip}; clip=""; [ "$mb" = "$m" ] || clip=--awq-clip
        if ! out=$(/usr/bin/time -f "%e" -o t.txt "$SLM" quantize ts-f32.gguf -o "$f" --type "$ty" --calibration ts.stats.gguf \
                --method "$mb" $clip -f -t "$THREADS" --report "$f.json" 2>&1); then
            echo "  (skipped $ty $m: $(echo "$out" | head -1))"
            continue
        fi
        cands="$cands $f"
        echo "$f $ty $m $(cat t.txt)" >> rows.txt
    done
done
# shellcheck disable=SC2086
"$B/llkld" -f heldout.txt -c 256 -t "$THREADS" -q ts-f32.gguf $cands > kld.txt 2>&1
printf "%-8s %-22s %9s %6s %10s %9s %8s %9s %9s  %s\n" recipe method bytes bpw "mean KLD" "vs ll" "top-1 %" dPPL "quant s" "target"
while read -r f ty m secs; do
    line=$(grep "^kld: model=$f " kld.txt)
    kld=$(echo "$line" | sed 's/.*kld_mean=\([0-9.e-]*\).*/\1/')
    top=$(echo "$line" | sed 's/.*same_top_pct=\([0-9.]*\).*/\1/')
    dppl=$(echo "$line" | sed 's/.* dppl=\([0-9.e+-]*\).*/\1/')
    llk=$(grep "^kld: model=ll-$ty.gguf " kld.txt | sed 's/.*kld_mean=\([0-9.e-]*\).*/\1/')
    bytes=$(stat -c %s "$f"); llb=$(stat -c %s "ll-$ty.gguf")
    np=$(grep -o 'n_params=[0-9]*' kld.txt | head -1 | cut -d= -f2)
    awk -v ty="$ty" -v m="$m" -v b="$bytes" -v llb="$llb" -v np="$np" -v k="$kld" -v llk="$llk" -v top="$top" -v d="$dppl" -v s="$secs" 'BEGIN {
        tgt = 0.8 * llk; ok = (k <= tgt && b <= llb) ? "MET" : "not met"
        if (m ~ /llama/) ok = ""
        printf "%-8s %-22s %9d %6.3f %10.6f %8.3fx %8.3f %+9.5f %9.2f  %s\n", ty, m, b, 8 * b / np, k, k / llk, top, d, s,
               m ~ /llama/ ? sprintf("(target <= %.4f)", tgt) : ok (b > llb ? " (larger than llama.cpp)" : "")
    }'
done < rows.txt
echo "(bpw over all parameters incl. metadata; 'quant s' = slm quantize wall seconds incl. the AWQ search)"

echo
echo "== 2b. the same runs in slm's own report: slm eval (ctx 256, held-out, --ref F32) merged into each quantize report,"
echo "   then slm report: size, bpw, dPPL, mean KLD, top-1 per method -> $WORK/compare/report.md and report.html"
reps=""
while read -r f ty m secs; do
    case "$m" in llama*) continue ;; esac
    "$SLM" eval "$f" --ref ts-f32.gguf --text heldout.txt --ctx 256 -t "$THREADS" --report-dir "ev-$f" -f >/dev/null 2>&1 || { echo "eval $f failed"; continue; }
    reps="$reps $f.json ev-$f/report.json"
done < rows.txt
# shellcheck disable=SC2086
"$SLM" report $reps -o compare -f && sed -n '/^| # | recipe | method/,/^$/p' compare/report.md

echo
echo "== 3. quantize time per method ($THREADS threads, wall s of the whole process, recipe Q4_K_M)"
qtimes() { # model stats label
    line="$3:"
    for m in $METHODS; do
        mb=${m%-clip}; clip=""; [ "$mb" = "$m" ] || clip=--awq-clip
        t=$(run_timed "$SLM" quantize "$1" -o t-q.gguf --type Q4_K_M --calibration "$2" --method "$mb" $clip -f -t "$THREADS")
        line="$line $m $(echo "$t" | awk '{printf "%.2f s (%.0f MiB)", $1, $2 / 1024}'),"
    done
    echo "$line" | sed 's/,$//'
    rm -f t-q.gguf
}
qtimes ts-f32.gguf ts.stats.gguf "tinystories-3M"
if [ "$BIG" = 1 ]; then
    [ -f big240.gguf ] || "$B/mktiny" --type f32 --n-vocab 32000 --n-embd 1024 --n-ff 2816 --n-layer 16 --n-head 16 \
        --n-head-kv 4 --seed 1 big240.gguf >/dev/null 2>&1
    awk 'BEGIN { s = 1; for (i = 0; i < 512; i++) { s = (s * 1103515245 + 12345) % 2147483648; printf "%d\n", 3 + s % 31990 } }' > big.ids
    t_cal=$(run_timed "$SLM" calibrate big240.gguf --tokens-in big.ids -o big.stats.gguf --ctx 128 --gram-max 1024 -f -t "$THREADS")
    echo "240M random (mktiny): calibrate 512 ids (Gram matrices up to 1024 columns: ffn_down gets imatrix rounding under gptq)" \
        "$(echo "$t_cal" | awk '{printf "%.2f s, %.0f MiB", $1, $2 / 1024}')"
    qtimes big240.gguf big.stats.gguf "240M random"
fi
