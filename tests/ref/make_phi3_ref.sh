#!/bin/sh
# make_phi3_ref.sh - tests/ref files for Phi-3 / Phi-3.5 (docs/families.md 4), as
# make_gemma_ref.sh does for Gemma: phi3-<dtype>-s<seed>.digest is what llama.cpp's own
# convert_hf_to_gguf.py (v0.5.0, ../shared/tools/llamacpp/hfconv.sh, --outtype f32) makes of
# build/mkfamily's checkpoint (bf16 seed 1, f16 seed 2), as tests/ref/gguf_digest.sh prints it.
# For bf16 seed 1 also phi3-bf16-s1.llama: llama.cpp's numbers on its own GGUF (llppl -t 1):
#   f32_ppl     ctx 64, 20 windows of the first 8000 bytes of tinystories_val.txt (short factors)
#   q4km_ppl    the same on llama-quantize's Q4_K_M
#   long_ppl    ctx 4160, 1 window of the first 20000 bytes: context > original 4096, so the
#               long rope factors
#   ffn25_ppl   ctx 64, 20 windows, on `slm prune --method ffn --sparsity 0.25 --uniform` of the
#               GGUF (weight-norm scores): llama.cpp runs slm's pruned phi3
#   greedy      16 greedy ids after "Once upon a time"
# and phi3-bf16-s1.q4km.digest: the tensors of llama-quantize's Q4_K_M. phi3-4k-bf16-s1.digest
# and .llama (f32_ppl): the same checkpoint made Phi-3-mini-4k-like by tests/ref/phi3_4k.sh
# (rope_scaling null: no factor tensors, no attn_factor; context 4096, sliding_window 2047). tests/families_phi3.sh
# (make check) compares slm's output with these. Run by hand after changing mkfamily or the
# llama.cpp version: needs Debian's python3-torch/numpy/sentencepiece (docs/families.md 10.3).
# usage: sh tests/ref/make_phi3_ref.sh        (from the repository root, after make build/mkfamily build/slm)
set -eu
BUILD=${BUILD:-build}
export SLM=${SLM:-$BUILD/slm} SLM_FIXTURES=${SLM_FIXTURES:-../shared/fixtures}
HFCONV=${HFCONV:-../shared/tools/llamacpp/hfconv.sh}
LL=${LLCPP_DIR:-/tmp/llcpp}/bin
T=$(mktemp -d "${TMPDIR:-/tmp}/slm-phi3-ref-XXXXXX")
trap 'rm -rf "$T"' EXIT
fam=phi3
for spec in bf16:1 f16:2; do
    dtype=${spec%%:*} seed=${spec#*:}
    "$BUILD/mkfamily" $fam "$T/$fam" --dtype "$dtype" --seed "$seed" > /dev/null
    sh "$HFCONV" "$T/$fam" --outfile "$T/$fam.gguf" --outtype f32 > "$T/log" 2>&1 || { cat "$T/log" >&2; exit 1; }
    sh tests/ref/gguf_digest.sh "$T/$fam.gguf" > "tests/ref/$fam-$dtype-s$seed.digest"
    if [ "$seed" = 1 ]; then
        head -c 8000 "$SLM_FIXTURES/text/tinystories_val.txt" > "$T/text.txt"
        head -c 20000 "$SLM_FIXTURES/text/tinystories_val.txt" > "$T/long.txt"
        "$LL/llq" "$T/$fam.gguf" "$T/$fam.q4.gguf" Q4_K_M > /dev/null 2>&1
        sh tests/ref/gguf_digest.sh "$T/$fam.q4.gguf" | grep '^tensor ' > "tests/ref/$fam-$dtype-s$seed.q4km.digest"
        "$SLM" prune "$T/$fam.gguf" -o "$T/$fam.ffn.gguf" --method ffn --sparsity 0.25 --uniform -q
        ppl() { "$LL/llppl" -t 1 -c "${2:-64}" --chunks "${3:-20}" -f "${4:-$T/text.txt}" "$1" 2>&1 | sed -n 's/^ppl:.* ppl=\([0-9.]*\).*/\1/p'; }
        { echo "f32_ppl $(ppl "$T/$fam.gguf")"; echo "q4km_ppl $(ppl "$T/$fam.q4.gguf")"
          echo "long_ppl $(ppl "$T/$fam.gguf" 4160 1 "$T/long.txt")"; echo "ffn25_ppl $(ppl "$T/$fam.ffn.gguf")"
          echo "greedy $("$LL/llppl" -q -t 1 -p "Once upon a time" -n 16 --ignore-eos "$T/$fam.gguf" 2>/dev/null | sed -n 's/^gen: tokens=//p' | tr , ' ')"
        } > "tests/ref/$fam-$dtype-s$seed.llama"
    fi
    rm -rf "$T/$fam" "$T/$fam.gguf"
    echo "tests/ref/$fam-$dtype-s$seed.digest"
done
"$BUILD/mkfamily" $fam "$T/$fam" --seed 1 > /dev/null
sh tests/ref/phi3_4k.sh "$T/$fam"
sh "$HFCONV" "$T/$fam" --outfile "$T/$fam.gguf" --outtype f32 > "$T/log" 2>&1 || { cat "$T/log" >&2; exit 1; }
sh tests/ref/gguf_digest.sh "$T/$fam.gguf" > tests/ref/phi3-4k-bf16-s1.digest
echo "f32_ppl $("$LL/llppl" -t 1 -c 64 --chunks 20 -f "$T/text.txt" "$T/$fam.gguf" 2>&1 | sed -n 's/^ppl:.* ppl=\([0-9.]*\).*/\1/p')" > tests/ref/phi3-4k-bf16-s1.llama
echo tests/ref/phi3-4k-bf16-s1.digest
