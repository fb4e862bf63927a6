#!/bin/sh
# interop_phi3.sh - llama.cpp (v0.5.0) loads and runs the Phi-3 / Phi-3.5 GGUFs slm writes
# (docs/families.md 4), run by `make check-interop`. For build/mkfamily's bf16 seed-1 checkpoint
# converted by `slm convert --outtype f32`: llppl's perplexity (ctx 64, first 8000 bytes of
# tinystories_val.txt, 60 windows: short rope factors; ctx 4160 on the first 20000 bytes: long
# factors) equals `slm eval --numerics ggml` to 4 significant digits; llppl's 16 greedy ids
# equal `slm generate --ids`; `slm quantize --type Q4_K_M` is the file llama-quantize (llq)
# writes, byte for byte (also Q4_0, Q5_K_M and Q3_K_M; and with slm calibrate's imatrix, whose
# attn_qkv / ffn_up entries llama-quantize reads), its perplexity within 0.5% of llppl's; the
# FFN-pruned model (fused gate|up cut together) and the Phi-3-mini-4k-like variant (no longrope,
# tests/ref/phi3_4k.sh) have llppl's perplexity.
NAME=phi3
. tests/interoplib.sh
d=$T/phi3 g=$T/phi3.gguf
"$BUILD/mkfamily" phi3 "$d" > /dev/null && "$SLM" convert "$d" -o "$g" --outtype f32 -q || { echo "FAIL phi3 convert"; exit 1; }
cmp_ppl "phi3 F32 ctx 64 (short factors)" "$g"
cmp_ppl "phi3 F32 ctx 4160 (long factors)" "$g" 4160 "$T/long.txt"
cmp_greedy phi3 "$g"
cmp_q4km phi3 "$g"
for t in Q4_0 Q5_K_M Q3_K_M; do cmp_quant phi3 "$g" $t; done
if "$SLM" calibrate "$g" --text "$T/long.txt" --ctx 64 --chunks 8 -o "$T/st.gguf" -q; then
    for t in Q4_K_M Q4_0; do
        "$SLM" quantize "$g" -o "$T/im$t.gguf" --type $t --imatrix "$T/st.gguf" -q &&
            "$LLBIN/llq" -q --imatrix "$T/st.gguf" "$g" "$T/im$t.llq.gguf" $t 1 > /dev/null 2>&1
        cmp -s "$T/im$t.gguf" "$T/im$t.llq.gguf" && ok "phi3 $t --imatrix (slm calibrate's): byte for byte llama-quantize --imatrix" ||
            bad "phi3 $t --imatrix differs from llama-quantize --imatrix"
    done
else bad "phi3 calibrate"; fi
"$SLM" prune "$g" -o "$T/ffn.gguf" --method ffn --sparsity 0.25 --uniform -q && cmp_ppl "phi3 prune ffn 25%" "$T/ffn.gguf" || bad "phi3 prune ffn"
d4=$T/phi3-4k
"$BUILD/mkfamily" phi3 "$d4" > /dev/null && sh tests/ref/phi3_4k.sh "$d4" && "$SLM" convert "$d4" -o "$d4.gguf" --outtype f32 -q &&
    cmp_ppl "phi3 without longrope" "$d4.gguf" || bad "phi3 without longrope: convert"
finish
