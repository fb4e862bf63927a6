#!/bin/sh
# make_qwen3_ref.sh - (make_gemma_ref.sh for Qwen3) writes tests/ref/<family>-<dtype>-s<seed>.digest: what llama.cpp's own
# convert_hf_to_gguf.py (v0.5.0, ../shared/tools/llamacpp/hfconv.sh, --outtype f32) makes of
# build/mkfamily's checkpoint, as tests/ref/gguf_digest.sh prints it (metadata keys and values,
# per-tensor sha256). tests/families_qwen3.sh (make check) compares slm convert's output with
# these files, so CI needs no Python. For the bf16 seed-1 checkpoints also
# <family>-bf16-s1.llama: llama.cpp's numbers on its own GGUF (llppl -t 1 -c 64 --chunks 20 on
# the first 8000 bytes of tinystories_val.txt: F32 and Q4_K_M perplexity; 16 greedy ids after
# "Once upon a time") and <family>-bf16-s1.q4km.digest: the tensors of llama-quantize's Q4_K_M. Run by hand after changing mkfamily or the llama.cpp
# version: needs Debian's python3-torch/numpy/sentencepiece (see docs/families.md 10.3).
# usage: sh tests/ref/make_qwen3_ref.sh        (from the repository root, after make build/mkfamily build/slm)
set -eu
BUILD=${BUILD:-build}
export SLM=${SLM:-$BUILD/slm} SLM_FIXTURES=${SLM_FIXTURES:-../shared/fixtures}
HFCONV=${HFCONV:-../shared/tools/llamacpp/hfconv.sh}
LL=${LLCPP_DIR:-/tmp/llcpp}/bin
T=$(mktemp -d "${TMPDIR:-/tmp}/slm-qwen3-ref-XXXXXX")
trap 'rm -rf "$T"' EXIT
for spec in qwen3:bf16:1 qwen3:f16:2; do
    fam=${spec%%:*} rest=${spec#*:}; dtype=${rest%%:*} seed=${rest#*:}
    "$BUILD/mkfamily" "$fam" "$T/$fam" --dtype "$dtype" --seed "$seed" > /dev/null
    sh "$HFCONV" "$T/$fam" --outfile "$T/$fam.gguf" --outtype f32 > "$T/log" 2>&1 || { cat "$T/log" >&2; exit 1; }
    sh tests/ref/gguf_digest.sh "$T/$fam.gguf" > "tests/ref/$fam-$dtype-s$seed.digest"
    if [ "$seed" = 1 ]; then
        head -c 8000 "$SLM_FIXTURES/text/tinystories_val.txt" > "$T/text.txt"
        "$LL/llq" "$T/$fam.gguf" "$T/$fam.q4.gguf" Q4_K_M > /dev/null 2>&1
        sh tests/ref/gguf_digest.sh "$T/$fam.q4.gguf" | grep '^tensor ' > "tests/ref/$fam-$dtype-s$seed.q4km.digest"
        ppl() { "$LL/llppl" -t 1 -c 64 --chunks 20 -f "$T/text.txt" "$1" 2>&1 | sed -n 's/^ppl:.* ppl=\([0-9.]*\).*/\1/p'; }
        { echo "f32_ppl $(ppl "$T/$fam.gguf")"; echo "q4km_ppl $(ppl "$T/$fam.q4.gguf")"
          echo "greedy $("$LL/llppl" -q -t 1 -p "Once upon a time" -n 16 --ignore-eos "$T/$fam.gguf" 2>/dev/null | sed -n 's/^gen: tokens=//p' | tr , ' ')"
        } > "tests/ref/$fam-$dtype-s$seed.llama"
    fi
    rm -rf "$T/$fam" "$T/$fam.gguf"
    echo "tests/ref/$fam-$dtype-s$seed.digest"
done
