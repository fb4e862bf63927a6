#!/bin/sh
# interop_qwen3.sh - llama.cpp (v0.5.0) loads and runs the Qwen3 GGUFs slm writes
# (docs/families.md 3), run by `make check-interop`. For build/mkfamily's bf16 seed-1
# checkpoints converted by `slm convert --outtype f32`: llppl's perplexity (ctx 64, first 8000
# bytes of tinystories_val.txt, 60 windows) equals `slm eval --numerics ggml` to 4 significant
# digits; llppl's 16 greedy ids equal `slm generate --ids`; `slm quantize --type Q4_K_M` is the
# file llama-quantize (llq) writes, byte for byte, and its perplexity within 0.5% of llppl's;
# heads-, FFN- and layer-pruned models and a student distilled by slm (FFN-pruned, 4 steps) load
# in llama.cpp with equal perplexity.
NAME=qwen3
. tests/interoplib.sh
for fam in qwen3; do
    d=$T/$fam g=$T/$fam.gguf
    "$BUILD/mkfamily" "$fam" "$d" > /dev/null && "$SLM" convert "$d" -o "$g" --outtype f32 -q || { bad "$fam convert"; continue; }
    cmp_ppl "$fam F32" "$g"
    cmp_greedy "$fam" "$g"
    cmp_q4km "$fam" "$g"
    # structurally pruned models (the kept heads keep their q/k norms): llama.cpp agrees
    for m in heads ffn layers; do
        "$SLM" prune "$g" -o "$T/$fam.$m.gguf" --method $m --sparsity 0.25 --uniform --calib-text "$T/text.txt" -q || bad "$fam prune $m"
        cmp_ppl "$fam prune $m" "$T/$fam.$m.gguf"
    done
    # a distilled (trained) student: llama.cpp loads it and agrees on its perplexity
    "$SLM" distill --teacher "$g" --student "$T/$fam.ffn.gguf" --text "$T/text.txt" -o "$T/$fam.d.gguf" --steps 4 --ctx 64 --batch 2 --lr 3e-4 -q ||
        bad "$fam distill"
    cmp_ppl "$fam distilled" "$T/$fam.d.gguf"
done
finish
