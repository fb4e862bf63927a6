#!/bin/sh
# tokenizer_json.sh - Llama folders whose tokenizer is a byte_fallback tokenizer.json without a
# tokenizer.model (Llama-2 / TinyLlama HF exports; issue 13), against llama.cpp's numbers
# recorded in tests/ref (tests/ref/make_tokbf_ref.sh; no Python or llama.cpp needed here):
#  1. slm convert of build/mkhftok's folders (stories260K; plain, and --added with two tokens
#     added after the vocabulary): every tokenizer.* key (type, value, order; arrays by sha256)
#     and every tensor as convert_hf_to_gguf.py (LlamaHfVocab) writes them; the --added folder
#     with tokenizer.model beside tokenizer.json (SentencePiece, TemplateProcessing's pair ->
#     add_sep_token) too;
#  2. slm's tokenizer on that vocabulary: the ids of tests/ref/tokbf_text.txt (byte fallback,
#     accents, CJK, emoji, runs of spaces) equal llama_tokenize's, from the GGUF and from the
#     folder; 16 greedy ids equal llama.cpp's;
#  3. quantize keeps the tokenizer keys (add_sep_token and its place included);
#  4. refusals: the same tokenizer.json for Gemma2 (llama.cpp needs tokenizer.model there), a
#     decoder that is not a Sequence, an added token whose id is not the next one, a special
#     token that is in no vocabulary.
set -u
SLM=${SLM:-build/slm}
BUILD=${BUILD:-build}
FIX=${SLM_FIXTURES:-../shared/fixtures}
export SLM SLM_FIXTURES="$FIX"
T=$(mktemp -d "${TMPDIR:-/tmp}/slm-tokjson-XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
# what is compared: tokenizer keys, tokenizer arrays, tensors
keep() { grep -e '^kv tokenizer\.' -e '^value ' -e '^tensor ' "$1"; }
refv() { sed -n "s/^$1 //p" tests/ref/tokbf-s260.llama; }
# expect_fail DESC DIR 'message part': slm convert must fail, naming the problem
expect_fail() {
    if "$SLM" convert "$2" -o "$T/x.gguf" -f -q 2> "$T/err"; then bad "$1: converted"
    elif grep -qF -- "$3" "$T/err"; then ok "$1: $(head -c 200 "$T/err")"
    else bad "$1: message '$(cat "$T/err")'"; fi
}

# 1. conversion against convert_hf_to_gguf.py
for v in s260 s260a s260m; do
    extra=; [ "$v" = s260 ] || extra=--added
    "$BUILD/mkhftok" "$FIX/models/stories260K" "$T/$v" $extra || { bad "mkhftok $v"; continue; }
    [ "$v" = s260m ] && cp "$FIX/models/stories260K/tokenizer.model" "$T/$v/"
    [ "$v" = s260m ] || [ ! -e "$T/$v/tokenizer.model" ] && grep -q '"byte_fallback": true' "$T/$v/tokenizer.json" || bad "$v: not a byte_fallback folder"
    "$SLM" convert "$T/$v" -o "$T/$v.gguf" --outtype f32 -q || { bad "convert $v"; continue; }
    sh tests/ref/tok_digest.sh "$T/$v.gguf" > "$T/$v.digest"
    keep "$T/$v.digest" > "$T/$v.mine"; keep "tests/ref/tokbf-$v.digest" > "$T/$v.ref"
    if [ -s "$T/$v.ref" ] && cmp -s "$T/$v.mine" "$T/$v.ref"; then
        ok "$v: $(grep -c '^kv tokenizer' "$T/$v.ref") tokenizer keys, $(grep -c '^value' "$T/$v.ref") arrays and $(grep -c '^tensor' "$T/$v.ref") tensors as convert_hf_to_gguf.py"
    else bad "$v differs from convert_hf_to_gguf.py:"; diff "$T/$v.ref" "$T/$v.mine" | head -8; fi
done
grep -q '^kv tokenizer.ggml.tokens array \[string x 514\]' "$T/s260a.digest" && grep -q '^kv tokenizer.ggml.add_sep_token bool false' "$T/s260a.digest" &&
    ok "s260a: 514 tokens, add_sep_token written" || bad "s260a: token count or add_sep_token"

# 2. tokenization and greedy ids against llama.cpp
if [ -f "$T/s260.gguf" ]; then
    for src in "$T/s260.gguf" "$T/s260"; do
        rm -f "$T/slm.tok"
        "$SLM" eval "$src" --text tests/ref/tokbf_text.txt --ctx 64 --chunks 1 --dump-tokens "$T/slm.tok" -q || bad "eval $src"
        got="$(wc -l < "$T/slm.tok" | tr -d ' ') $(sha256sum < "$T/slm.tok" | cut -c1-64)"
        [ "$got" = "$(refv tokens)" ] && ok "tokens of $(basename "$src"): llama_tokenize's ($got)" || bad "tokens of $src: '$got', llama.cpp $(refv tokens)"
    done
    ids=$("$SLM" generate "$T/s260.gguf" -p "Once upon a time" -n 16 --ids --ignore-eos | sed 's/.*| //')
    [ "$ids" = "$(refv greedy)" ] && ok "generate: llama.cpp's 16 greedy ids" || bad "generate ids '$ids', llama.cpp $(refv greedy)"
    # 3. a quantized copy keeps the tokenizer keys in their order
    "$SLM" quantize "$T/s260.gguf" -o "$T/q8.gguf" --type Q8_0 -q &&
        sh tests/ref/tok_digest.sh "$T/q8.gguf" | grep -e '^kv tokenizer\.' -e '^value ' > "$T/q8.tok" &&
        grep -e '^kv tokenizer\.' -e '^value ' "$T/s260.digest" | cmp -s - "$T/q8.tok" && ok "quantize Q8_0 keeps the tokenizer keys" || bad "quantize changed the tokenizer keys"
fi

# 4. refusals
if "$BUILD/mkfamily" gemma2 "$T/g2src" --seed 1 > /dev/null && "$BUILD/mkhftok" "$T/g2src" "$T/g2"; then
    expect_fail "gemma2 with tokenizer.json only" "$T/g2" "needs a tokenizer.model for Gemma2ForCausalLM"
else bad "mkfamily gemma2 / mkhftok"; fi
cp -r "$T/s260" "$T/dec" && sed '/"decoder": {/{n;s/Sequence/Fuse/}' "$T/s260/tokenizer.json" > "$T/dec/tokenizer.json" &&
    expect_fail "decoder not a Sequence" "$T/dec" "byte_fallback and a decoder other than Sequence"
cp -r "$T/s260a" "$T/gap" && sed 's/"id": 513,/"id": 600,/' "$T/s260a/tokenizer.json" > "$T/gap/tokenizer.json" &&
    expect_fail "added token id out of line" "$T/gap" "has id 600, expected 513"
cp -r "$T/s260" "$T/pad" && sed 's/"pad_token": null/"pad_token": "<pad>"/' "$T/s260/tokenizer_config.json" > "$T/pad/tokenizer_config.json" &&
    expect_fail "special token in no vocabulary" "$T/pad" "special token '<pad>' is neither in model.vocab nor in added_tokens"

echo "tokenizer_json: $fails failed"
[ "$fails" = 0 ]
