#!/bin/sh
# imatrix_agree.sh - checks formats/imatrix.c against llama.cpp v0.5.0 itself (not part of
# `make check`: it needs the llama.cpp workshop install, ../shared/tools/llamacpp/NOTES.md).
#
#  1. importance vectors: slm_imatrix_load vs llama-quantize's own load_imatrix()
#     (tools/imatrix_llama_dump.cpp) and vs llimatrix.h (`llq --imatrix`), float bits compared,
#     on the reference imatrix, on slm-written copies and on synthetic edge cases;
#  2. writers: slm's GGUF and .dat bytes vs llama-imatrix's (`--in-file X -o Y [--output-format dat]`);
#  3. end to end: llama_model_quantize (llq) with the reference GGUF, slm's .dat of it and slm's
#     GGUF of that .dat gives byte-identical Q4_K_M and IQ4_XS models;
#  4. slm's calibration extras (formats/imatrix_calib.h: sums of |x|, Gram matrices, cosines,
#     channel and head scores) are invisible to llama.cpp: llama-quantize's load_imatrix() reads
#     the same vectors, llq quantizes byte-identically with and without them, and
#     `llama-imatrix --in-file` rewrites the file as slm writes it without them.
# Usage (after `make`): sh tools/imatrix_agree.sh     [LLCPP_DIR=/tmp/llcpp OUT=build/imatrix_agree]
set -eu
LLCPP_DIR=${LLCPP_DIR:-/tmp/llcpp}
FIX=${SLM_FIXTURES:-../shared/fixtures}
TOOLS=${TOOLS:-../shared/tools/llamacpp}
OUT=${OUT:-build/imatrix_agree}
SLM=${SLM:-build/slm}
L=$LLCPP_DIR
REF=$FIX/reference/tinystories-3M.calib40.imatrix.gguf
mkdir -p "$OUT/syn" "$OUT/e2e/a" "$OUT/e2e/b" "$OUT/e2e/c"

# llama.cpp sources (for quantize.cpp) and llama-imatrix: the workshop Makefile's `ref` rules
make -s -C "$TOOLS" LLCPP_DIR="$L" "$L/ref/llama-imatrix" >/dev/null
cc -O2 -std=c11 -I. -I"$L/include" -I"$TOOLS" tools/imatrix_agree.c build/libslm.a -o "$OUT/imatrix_agree" \
   -L"$L/lib" -lggml-base -lggml -Wl,-rpath,"$L/lib" -fopenmp -lm
g++ -O2 -std=c++17 -I"$L/src/include" -I"$L/src/common" -I"$L/src/ggml/include" -I"$L/src/vendor" -I"$L/src" \
    tools/imatrix_llama_dump.cpp -o "$OUT/imatrix_llama_dump" \
    -L"$L/lib" -lllama-common -lllama -lggml -lggml-base -Wl,-rpath,"$L/lib" -lpthread
AG=$OUT/imatrix_agree
LD=$OUT/imatrix_llama_dump
LI=$L/ref/llama-imatrix

vectors() { # FILE: slm == llimatrix.h (in imatrix_agree) and slm == llama-quantize's load_imatrix
    d=$OUT/dump.$(basename "$1")   # dumps stay in $OUT (never next to a read-only fixture)
    "$AG" --dump "$d.slm.txt" "$1"
    "$LD" "$1" "$d.llama.txt" >/dev/null 2>&1
    cmp "$d.slm.txt" "$d.llama.txt"
    echo "imatrix_agree: $1: llama-quantize load_imatrix() vectors and quantize.imatrix.* values identical"
}
same() { cmp "$1" "$2"; echo "imatrix_agree: $1 == $2 (byte for byte)"; }

echo "== 1. vectors"
vectors "$REF"
"$AG" --synth "$OUT/syn"
vectors "$OUT/syn/synth.gguf"
vectors "$OUT/syn/synth.dat"

echo "== 2. writers vs llama-imatrix"
"$AG" --save-gguf "$OUT/ref.slm.gguf" --save-dat "$OUT/ref.slm.dat" "$REF" >/dev/null
"$LI" -m none --in-file "$REF" -o "$OUT/ref.llama.dat" --output-format dat >/dev/null 2>&1
same "$OUT/ref.slm.gguf" "$REF"
same "$OUT/ref.slm.dat" "$OUT/ref.llama.dat"
vectors "$OUT/ref.llama.dat"
"$AG" --save-gguf "$OUT/syn/synth.slm.gguf" --save-dat "$OUT/syn/synth.slm.dat" "$OUT/syn/synth.gguf" >/dev/null
"$LI" -m none --in-file "$OUT/syn/synth.gguf" -o "$OUT/syn/synth.llama.gguf" >/dev/null 2>&1
"$LI" -m none --in-file "$OUT/syn/synth.gguf" -o "$OUT/syn/synth.llama.dat" --output-format dat >/dev/null 2>&1
same "$OUT/syn/synth.slm.gguf" "$OUT/syn/synth.llama.gguf"
same "$OUT/syn/synth.slm.dat" "$OUT/syn/synth.llama.dat"

echo "== 3. llama_model_quantize with each form (same file name 'im' so quantize.imatrix.file matches)"
E=$OUT/e2e
[ -f "$E/ts3m-f32.gguf" ] || "$SLM" convert "$FIX/models/tinystories-3M" -o "$E/ts3m-f32.gguf" --outtype f32 -q
cp "$REF" "$E/a/im"
"$AG" --save-dat "$E/b/im" "$E/a/im" >/dev/null
"$AG" --save-gguf "$E/c/im" "$E/b/im" >/dev/null
for d in a b c; do
    for t in Q4_K_M IQ4_XS; do
        (cd "$E/$d" && "$L/bin/llq" -q --imatrix im ../ts3m-f32.gguf "$t.gguf" "$t" 1 >/dev/null)
    done
done
for t in Q4_K_M IQ4_XS; do same "$E/b/$t.gguf" "$E/a/$t.gguf"; same "$E/c/$t.gguf" "$E/a/$t.gguf"; done

echo "== 4. slm's calibration extras, ignored by llama.cpp"
X=$OUT/extras
mkdir -p "$X/plain" "$X/extras"
cc -O2 -std=c11 -D_DEFAULT_SOURCE -I. bench/calib.c build/libslm.a -fopenmp -lcjson -lm -o "$OUT/bench_calib"
head -c 317760 "$FIX/text/tinystories_val.txt" > "$X/calib40.txt"
"$OUT/bench_calib" "$FIX/models/tinystories-3M" "$X/calib40.txt" --chunks 8 --gram --process-output -o "$X/extras/im" \
    --extras >/dev/null
"$OUT/bench_calib" "$FIX/models/tinystories-3M" "$X/calib40.txt" --chunks 8 --process-output -o "$X/plain/im" >/dev/null
vectors "$X/extras/im"
for d in plain extras; do
    for t in Q4_K_M IQ2_XS; do
        (cd "$X/$d" && "$L/bin/llq" -q --imatrix im ../../e2e/ts3m-f32.gguf "$t.gguf" "$t" 1 >/dev/null)
    done
done
for t in Q4_K_M IQ2_XS; do same "$X/extras/$t.gguf" "$X/plain/$t.gguf"; done
"$LI" -m none --in-file "$X/extras/im" -o "$X/rewritten.gguf" >/dev/null 2>&1
same "$X/rewritten.gguf" "$X/plain/im"
echo "imatrix_agree: OK"
