#!/bin/sh
# make_llama_ref.sh - as make_gemma_ref.sh, for the Llama-architecture families (docs/families.md
# 1, 7, 8): Llama 3.x (rope_scaling llama3: rope_freqs, tied, head_dim != hidden/heads), SmolLM2
# (tied, integer rope_theta) and TinyLlama (untied, Llama 2 style). Writes
# tests/ref/<family>-<dtype>-s<seed>.digest (llama.cpp's convert_hf_to_gguf.py v0.5.0 of
# build/mkfamily's checkpoint, --outtype f32, as tests/ref/gguf_digest.sh prints it) and, for the
# bf16 seed-1 checkpoints, <family>-bf16-s1.llama (llppl -t 1 -c 64 --chunks 20 on the first 8000
# bytes of tinystories_val.txt: F32 and Q4_K_M perplexity; 16 greedy ids after "Once upon a time";
# for llama3 also the F32 perplexity at -c 512, where the rope factors matter) and
# <family>-bf16-s1.q4km.digest (the tensors of llama-quantize's Q4_K_M). tests/families_llama.sh
# (make check) compares slm with these files, so CI needs no Python or llama.cpp.
# Run by hand after changing mkfamily or the llama.cpp version: needs Debian's
# python3-torch/numpy/sentencepiece (see docs/families.md 10.3).
# usage: sh tests/ref/make_llama_ref.sh        (from the repository root, after make build/mkfamily build/slm)
set -eu
BUILD=${BUILD:-build}
export SLM=${SLM:-$BUILD/slm} SLM_FIXTURES=${SLM_FIXTURES:-../shared/fixtures}
HFCONV=${HFCONV:-../shared/tools/llamacpp/hfconv.sh}
LL=${LLCPP_DIR:-/tmp/llcpp}/bin
T=$(mktemp -d "${TMPDIR:-/tmp}/slm-llama-ref-XXXXXX")
trap 'rm -rf "$T"' EXIT
head -c 8000 "$SLM_FIXTURES/text/tinystories_val.txt" > "$T/text.txt"
ppl() { "$LL/llppl" -t 1 -c "${2:-64}" ${3:+--chunks $3} -f "$T/text.txt" "$1" 2>&1 | sed -n 's/^ppl:.* ppl=\([0-9.]*\).*/\1/p'; }
for spec in llama3:bf16:1 llama3:f16:2 smollm2:bf16:1 smollm2:f16:2 tinyllama:bf16:1 tinyllama:f16:2; do
    fam=${spec%%:*} rest=${spec#*:}; dtype=${rest%%:*} seed=${rest#*:}
    "$BUILD/mkfamily" "$fam" "$T/$fam" --dtype "$dtype" --seed "$seed" > /dev/null
    sh "$HFCONV" "$T/$fam" --outfile "$T/$fam.gguf" --outtype f32 > "$T/log" 2>&1 || { cat "$T/log" >&2; exit 1; }
    sh tests/ref/gguf_digest.sh "$T/$fam.gguf" > "tests/ref/$fam-$dtype-s$seed.digest"
    if [ "$seed" = 1 ]; then
        "$LL/llq" "$T/$fam.gguf" "$T/$fam.q4.gguf" Q4_K_M > /dev/null 2>&1
        sh tests/ref/gguf_digest.sh "$T/$fam.q4.gguf" | grep '^tensor ' > "tests/ref/$fam-$dtype-s$seed.q4km.digest"
        { echo "f32_ppl $(ppl "$T/$fam.gguf" 64 20)"; echo "q4km_ppl $(ppl "$T/$fam.q4.gguf" 64 20)"
          echo "greedy $("$LL/llppl" -q -t 1 -p "Once upon a time" -n 16 --ignore-eos "$T/$fam.gguf" 2>/dev/null | sed -n 's/^gen: tokens=//p' | tr , ' ')"
          if [ "$fam" = llama3 ]; then echo "f32_ppl_ctx512 $(ppl "$T/$fam.gguf" 512)"; fi
        } > "tests/ref/$fam-$dtype-s$seed.llama"
    fi
    rm -rf "$T/$fam" "$T/$fam.gguf" "$T/$fam.q4.gguf"
    echo "tests/ref/$fam-$dtype-s$seed.digest"
done
