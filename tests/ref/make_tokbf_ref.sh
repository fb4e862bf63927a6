#!/bin/sh
# make_tokbf_ref.sh - writes tests/ref/tokbf-<variant>.digest and tokbf-s260.llama: what
# llama.cpp's own convert_hf_to_gguf.py (v0.5.0) makes of a Llama folder whose tokenizer is a
# byte_fallback tokenizer.json and no tokenizer.model (build/mkhftok from stories260K: plain, and
# --added with two tokens added after the vocabulary; s260m: --added with tokenizer.model too,
# the SentencePiece path with SpecialVocab reading tokenizer.json). The converter reads the
# first two through gguf-py's LlamaHfVocab, which needs transformers.AutoTokenizer; transformers cannot be
# installed here, so tests/ref/tokbf_shim/transformers stands in for it (LlamaTokenizerFast's
# vocabulary and special-token lists, see the file). The digest is tests/ref/gguf_digest.sh's
# (keys, tensors) plus one line per tokenizer.* array: its sha256 as `slm inspect --json` prints
# it. tokbf-s260.llama: llama.cpp's tokenization of tests/ref/tokbf_text.txt with that GGUF
# (llppl --dump-tokens: count and sha256 of the ids) and 16 greedy ids after "Once upon a time".
# tests/tokenizer_json.sh (make check) compares slm with these. Run by hand (needs Debian's
# python3-torch/numpy/sentencepiece/protobuf and /tmp/llcpp, ../shared/tools/llamacpp).
# usage: sh tests/ref/make_tokbf_ref.sh     (from the repository root, after make build/slm build/mkhftok)
set -eu
BUILD=${BUILD:-build}
export SLM=${SLM:-$BUILD/slm}
FIX=${SLM_FIXTURES:-../shared/fixtures}
LLCPP_DIR=${LLCPP_DIR:-/tmp/llcpp}
LL=$LLCPP_DIR/bin
SRC=$LLCPP_DIR/pysrc
if [ ! -f "$SRC/convert_hf_to_gguf.py" ]; then
    mkdir -p "$SRC"
    git --git-dir="$LLCPP_DIR/llama.cpp.git" archive HEAD convert_hf_to_gguf.py conversion gguf-py | tar x -C "$SRC"
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/slm-tokbf-ref-XXXXXX")
trap 'rm -rf "$T"' EXIT
hfconv() {
    PYTHONPATH="$SRC/gguf-py:$SRC:$PWD/tests/ref/tokbf_shim" /usr/bin/python3 -c '
import runpy, sys, torch
for n in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz"):
    if not hasattr(torch, n): setattr(torch, n, torch.uint8)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")' "$SRC/convert_hf_to_gguf.py" "$@"
}
for variant in s260 s260a s260m; do
    extra=; [ "$variant" = s260 ] || extra=--added
    "$BUILD/mkhftok" "$FIX/models/stories260K" "$T/$variant" $extra
    # s260m: the same folder with tokenizer.model beside tokenizer.json (the SentencePiece path,
    # with SpecialVocab reading tokenizer.json: TinyLlama's published folder has both)
    [ "$variant" = s260m ] && cp "$FIX/models/stories260K/tokenizer.model" "$T/$variant/"
    hfconv "$T/$variant" --outfile "$T/$variant.gguf" --outtype f32 > "$T/log" 2>&1 || { cat "$T/log" >&2; exit 1; }
    sh tests/ref/tok_digest.sh "$T/$variant.gguf" > "tests/ref/tokbf-$variant.digest"
    echo "tests/ref/tokbf-$variant.digest"
done
"$LL/llppl" -q -t 1 -c 64 --chunks 1 -f tests/ref/tokbf_text.txt --dump-tokens "$T/ll.tok" "$T/s260.gguf" > /dev/null 2>&1
{ echo "tokens $(wc -l < "$T/ll.tok") $(sha256sum < "$T/ll.tok" | cut -c1-64)"
  echo "greedy $("$LL/llppl" -q -t 1 -p "Once upon a time" -n 16 --ignore-eos "$T/s260.gguf" 2>/dev/null | sed -n 's/^gen: tokens=//p' | tr , ' ')"
} > tests/ref/tokbf-s260.llama
echo tests/ref/tokbf-s260.llama
