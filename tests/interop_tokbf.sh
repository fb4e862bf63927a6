#!/bin/sh
# interop_tokbf.sh - llama.cpp (v0.5.0) against slm on a Llama folder whose tokenizer is a
# byte_fallback tokenizer.json without tokenizer.model (build/mkhftok from stories260K), run by
# `make check-interop`: the GGUF slm converts loads in llama.cpp; llama_tokenize (llppl
# --dump-tokens) and slm's tokenizer give the same ids for the whole of tinystories_val.txt
# and for tests/ref/tokbf_text.txt (byte fallback, accents, CJK, emoji, runs of spaces);
# perplexity (ctx 64, 20 windows) equal to 4 significant digits; 16 greedy ids equal.
NAME=tokbf
. tests/interoplib.sh
d=$T/s260 g=$T/s260.gguf
if "$BUILD/mkhftok" "$FIX/models/stories260K" "$d" && "$SLM" convert "$d" -o "$g" --outtype f32 -q; then
    for text in "$FIX/text/tinystories_val.txt" tests/ref/tokbf_text.txt; do
        rm -f "$T/ll.tok" "$T/slm.tok"
        "$LLBIN/llppl" -q -t 1 -c 64 --chunks 1 -f "$text" --dump-tokens "$T/ll.tok" "$g" > /dev/null 2>&1
        "$SLM" eval "$g" --text "$text" --ctx 64 --chunks 1 --dump-tokens "$T/slm.tok" -q
        if [ -s "$T/ll.tok" ] && cmp -s "$T/ll.tok" "$T/slm.tok"; then ok "tokens of $(basename "$text"): slm = llama_tokenize ($(wc -l < "$T/slm.tok") ids)"
        else bad "tokens of $text differ: $(cmp "$T/ll.tok" "$T/slm.tok" 2>&1 | head -1)"; fi
    done
    lp=$("$LLBIN/llppl" -t 1 -c 64 --chunks 20 -f "$T/text.txt" "$g" 2>&1 | sed -n 's/^ppl:.* ppl=\([0-9.]*\).*/\1/p')
    sp=$("$SLM" eval "$g" --text "$T/text.txt" --ctx 64 --chunks 20 --numerics ggml --json -q | sed -n "s/.*\"ppl\":[[:space:]]*\([0-9.e+-]*\).*/\1/p" | head -1)
    if [ -n "$lp" ] && [ -n "$sp" ] && same4 "$sp" "$lp"; then ok "PPL: llama.cpp $lp, slm $sp"; else bad "PPL: llama.cpp '$lp', slm '$sp'"; fi
    cmp_greedy stories260K "$g"
else
    bad "mkhftok / convert"
fi
finish
