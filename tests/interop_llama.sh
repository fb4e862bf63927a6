#!/bin/sh
# interop_llama.sh - llama.cpp (v0.5.0) loads and runs the GGUFs slm writes for the Llama-architecture
# families (docs/families.md 1, 7, 8), run by `make check-interop`. For build/mkfamily's bf16 seed-1
# checkpoints of llama3 (rope_freqs from rope_scaling llama3), smollm2 and tinyllama converted by
# `slm convert --outtype f32`: llppl's perplexity (ctx 64, first 8000 bytes of tinystories_val.txt,
# 60 windows) equals `slm eval --numerics ggml` to 4 significant digits; llppl's 16 greedy ids equal
# `slm generate --ids`; `slm quantize --type Q4_K_M` is the file llama-quantize (llq) writes, byte
# for byte, and its perplexity within 0.5% of llppl's. llama3 also: ctx 512, and a model slm pruned
# (heads) and distilled, whose rope_freqs come from the model in memory.
NAME=llama
. tests/interoplib.sh
for fam in llama3 smollm2 tinyllama; do
    d=$T/$fam g=$T/$fam.gguf
    "$BUILD/mkfamily" "$fam" "$d" > /dev/null && "$SLM" convert "$d" -o "$g" --outtype f32 -q || { bad "$fam convert"; continue; }
    cmp_ppl "$fam F32" "$g" 64
    cmp_greedy "$fam" "$g"
    cmp_q4km "$fam" "$g"
done
g=$T/llama3.gguf
if [ -f "$g" ]; then
    cmp_ppl "llama3 F32 ctx 512" "$g" 512
    "$SLM" prune "$g" -o "$T/l3.heads.gguf" --method heads --sparsity 0.25 --uniform -q && cmp_ppl "llama3 pruned (heads)" "$T/l3.heads.gguf" 64
    "$SLM" distill --teacher "$g" --student "$T/l3.heads.gguf" --text "$T/long.txt" -o "$T/l3.d.gguf" --steps 2 --ctx 32 --batch 2 -q &&
        cmp_ppl "llama3 pruned and distilled" "$T/l3.d.gguf" 64
fi
finish
