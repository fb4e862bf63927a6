# famlib.sh - the shared start of tests/families_*.sh (sourced, with FAMILY set): the tools, a
# temporary folder removed at exit, ok/bad with a failure count, the texts (the first 8000 bytes
# of tinystories_val.txt to score, 20000 to calibrate) and the comparisons against llama.cpp's
# numbers recorded in tests/ref/FAMILY-bf16-s1.llama, and the checks every family runs: conversion
# digests (convert_digest), greedy ids (check_greedy), Q4_K_M tensors (check_q4km_digest).
set -u
SLM=${SLM:-build/slm}
BUILD=${BUILD:-build}
FIX=${SLM_FIXTURES:-../shared/fixtures}
export SLM SLM_FIXTURES="$FIX"
T=$(mktemp -d "${TMPDIR:-/tmp}/slm-$FAMILY-XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
head -c 8000 "$FIX/text/tinystories_val.txt" > "$T/text.txt" || exit 1
head -c 20000 "$FIX/text/tinystories_val.txt" > "$T/calib.txt" || exit 1
refv() { sed -n "s/^$2 //p" "tests/ref/$1-bf16-s1.llama"; }
# equal to 4 significant digits: within half a unit of b's 4th digit (as tests/interop_eval.sh)
same4() { awk -v a="$1" -v b="$2" 'BEGIN { u = 10 ^ (int(log(b) / log(10)) - 3); d = a - b; exit !(d <= u / 2 && d >= -u / 2) }'; }
# a within relative r of b
within() { awk -v a="$1" -v b="$2" -v r="$3" 'BEGIN { d = a / b - 1; exit !(d < r && d > -r) }'; }
# spec (family:dtype:seed): build/mkfamily's checkpoint converted to $T/family-dtype.gguf, its keys
# and tensors those of convert_hf_to_gguf.py (tests/ref/family-dtype-sSEED.digest)
convert_digest() {
    cf=${1%%:*} cr=${1#*:}; cdt=${cr%%:*} cs=${cr#*:}
    cd_=$T/$cf-$cdt
    "$BUILD/mkfamily" "$cf" "$cd_" --dtype "$cdt" --seed "$cs" > /dev/null || { bad "mkfamily $1"; return 1; }
    "$SLM" convert "$cd_" -o "$cd_.gguf" --outtype f32 -q || { bad "convert $1"; return 1; }
    sh tests/ref/gguf_digest.sh "$cd_.gguf" > "$cd_.digest"
    if cmp -s "$cd_.digest" "tests/ref/$cf-$cdt-s$cs.digest"; then ok "$cf $cdt seed $cs: $(grep -c '^kv' "$cd_.digest") keys and $(grep -c '^tensor' "$cd_.digest") tensors as convert_hf_to_gguf.py"
    else bad "$cf $cdt seed $cs differs from convert_hf_to_gguf.py:"; diff "tests/ref/$cf-$cdt-s$cs.digest" "$cd_.digest" | head -5; fi
}
# family file: `slm generate`'s 16 greedy ids are llama.cpp's (refv family greedy)
check_greedy() {
    ids=$("$SLM" generate "$2" -p "Once upon a time" -n 16 --ids --ignore-eos | sed 's/.*| //')
    [ "$ids" = "$(refv "$1" greedy)" ] && ok "$1 generate: llama.cpp's 16 greedy ids" || bad "$1 generate ids '$ids', llama.cpp $(refv "$1" greedy)"
}
# family file: `slm quantize --type Q4_K_M` (kept as $T/family.q4.gguf) has llama-quantize's tensors
# (tests/ref/family-bf16-s1.q4km.digest)
check_q4km_digest() {
    "$SLM" quantize "$2" -o "$T/$1.q4.gguf" --type Q4_K_M -q || bad "$1 quantize"
    sh tests/ref/gguf_digest.sh "$T/$1.q4.gguf" | grep '^tensor ' > "$T/$1.q4.digest"
    cmp -s "$T/$1.q4.digest" "tests/ref/$1-bf16-s1.q4km.digest" && ok "$1 Q4_K_M: tensors as llama-quantize's" || bad "$1 Q4_K_M tensors differ from llama-quantize's"
}
