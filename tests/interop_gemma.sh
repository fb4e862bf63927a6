#!/bin/sh
# interop_gemma.sh - llama.cpp (v0.5.0) loads and runs the Gemma 2 / Gemma 3 GGUFs slm writes
# (docs/families.md 5, 6), run by `make check-interop`. For build/mkfamily's bf16 seed-1
# checkpoints converted by `slm convert --outtype f32`: llppl's perplexity (ctx 64, first 8000
# bytes of tinystories_val.txt, 60 windows) equals `slm eval --numerics ggml` to 4 significant
# digits; llppl's 16 greedy ids equal `slm generate --ids`; `slm quantize --type Q4_K_M` is the
# file llama-quantize (llq) writes, byte for byte, and its perplexity within 0.5% of llppl's.
NAME=gemma
. tests/interoplib.sh
for fam in gemma2 gemma3; do
    d=$T/$fam g=$T/$fam.gguf
    "$BUILD/mkfamily" "$fam" "$d" > /dev/null && "$SLM" convert "$d" -o "$g" --outtype f32 -q || { bad "$fam convert"; continue; }
    cmp_ppl "$fam F32" "$g"
    cmp_greedy "$fam" "$g"
    cmp_q4km "$fam" "$g"
done
finish
