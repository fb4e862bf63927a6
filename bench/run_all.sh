#!/bin/sh
# run_all.sh - every benchmark (`make bench`): convert memory, parse time vs entry count,
# quantize speed vs llama.cpp, eval speed vs llama.cpp, kernel throughput vs ggml. Prints
# ratios; asserts nothing.
set -eu
SLM=${SLM:-build/slm}
export SLM
LLCPP_DIR=${LLCPP_DIR:-/tmp/llcpp}
sh "$(dirname "$0")/convert_rss.sh"
sh "$(dirname "$0")/parse_scale.sh"
sh "$(dirname "$0")/quantize.sh"
sh "$(dirname "$0")/eval.sh"
sh "$(dirname "$0")/pack.sh"
sh "$(dirname "$0")/distill.sh"
BUILD=${BUILD:-build}
cc -O2 -std=c11 -D_DEFAULT_SOURCE -I. -I"$LLCPP_DIR/include" bench/quant_kernels.c "$BUILD/libslm.a" -L"$LLCPP_DIR/lib" \
    -lggml-base -Wl,-rpath,"$LLCPP_DIR/lib" -fopenmp -lm -o "$BUILD/bench_quant_kernels"
"$BUILD/bench_quant_kernels" 3
"$BUILD/bench_quant_kernels" 3 64 iq
