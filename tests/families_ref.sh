#!/bin/sh
# families_ref.sh - llama.cpp as the reference for the model families of issue 13 (docs/families.md).
# For each family: build/mkfamily writes a small random checkpoint in the family's HF layout,
# llama.cpp's own convert_hf_to_gguf.py (../shared/tools/llamacpp/hfconv.sh) converts it to F32,
# and llama.cpp (llppl) loads it, generates 16 tokens and measures perplexity (ctx 64) on the first
# 8000 bytes of tinystories_val.txt. When python3-numpy is there, tools/families_verify.py
# rebuilds every tensor from the checkpoint with the spec's transformations (bit for bit). When
# build/slm converts the folder too, its tensors are compared with llama.cpp's (lldq -c, by name)
# and its metadata keys counted against llama.cpp's. One line per family; the files stay in OUT
# (FAMILY/ = the HF folder, FAMILY.llama.gguf, FAMILY.slm.gguf, FAMILY.*.log, FAMILY.*.list).
# Not part of `make check` (needs Debian's python3-torch and the llama.cpp npm package).
#
# usage: sh tests/families_ref.sh [OUT_DIR [FAMILY...]]      default OUT_DIR: build/families
# env:   BUILD (build), SLM ($BUILD/slm), LLCPP_DIR (/tmp/llcpp), SHARED (../shared),
#        DTYPE (bf16: the checkpoint's dtype), SEED (1), TEXT (a text file), CTX (64), THREADS (1)
# exit:  0 if every family converts and loads in llama.cpp with a finite perplexity, else 1.
# Needs: make build/mkfamily build/slm; sh ../shared/tools/llamacpp/setup.sh and its Makefile;
#        apt-get install -y python3-numpy python3-torch python3-sentencepiece python3-protobuf python3-tqdm
set -u
BUILD=${BUILD:-build}
SLM=${SLM:-$BUILD/slm}
LLCPP_DIR=${LLCPP_DIR:-/tmp/llcpp}
SHARED=${SHARED:-../shared}
DTYPE=${DTYPE:-bf16}
SEED=${SEED:-1}
CTX=${CTX:-64}
THREADS=${THREADS:-1}
OUT=${1:-$BUILD/families}
[ $# -gt 0 ] && shift
FAMILIES=${*:-llama3 qwen2 qwen3 phi3 gemma2 gemma3 smollm2 tinyllama}
LL=$LLCPP_DIR/bin
HFCONV=$SHARED/tools/llamacpp/hfconv.sh
HERE=$(cd "$(dirname "$0")/.." && pwd)
export LLCPP_DIR SLM_FIXTURES="${SLM_FIXTURES:-$SHARED/fixtures}"

for need in "$BUILD/mkfamily" "$LL/llppl" "$LL/lldq" "$HFCONV"; do
    [ -e "$need" ] || { echo "families_ref: missing $need (see the header of $0)" >&2; exit 1; }
done
mkdir -p "$OUT" || exit 1
if [ -z "${TEXT:-}" ]; then
    TEXT=$OUT/text.txt
    head -c 8000 "$SLM_FIXTURES/text/tinystories_val.txt" > "$TEXT" || exit 1
fi
verify=no
/usr/bin/python3 -c 'import numpy' 2>/dev/null && verify=yes

echo "families_ref: llama.cpp $(cat "$LLCPP_DIR/VERSION" 2>/dev/null | head -1), dtype=$DTYPE seed=$SEED ctx=$CTX text=$TEXT out=$OUT"
fails=0
for fam in $FAMILIES; do
    d=$OUT/$fam ref=$OUT/$fam.llama.gguf
    rm -rf "$d" "$ref" "$OUT/$fam.slm.gguf" "$OUT/$fam.ref"
    conv=no loads=no ppl=- gen=- ver=- slm=-
    if ! "$BUILD/mkfamily" "$fam" "$d" --dtype "$DTYPE" --seed "$SEED" > "$OUT/$fam.mkfamily.log" 2>&1; then
        echo "$fam: mkfamily failed: $(tail -1 "$OUT/$fam.mkfamily.log")"
        fails=$((fails + 1))
        continue
    fi
    if sh "$HFCONV" "$d" --outfile "$ref" --outtype f32 > "$OUT/$fam.conv.log" 2>&1; then
        conv=yes
        "$LL/lldq" --list "$ref" > "$OUT/$fam.llama.list" 2>&1
        if "$LL/llppl" -q -t "$THREADS" -p "Once upon a time" -n 16 "$ref" > "$OUT/$fam.gen.log" 2>&1; then
            loads=yes
            gen=$(grep -a '^gen: tokens=' "$OUT/$fam.gen.log" | sed 's/^gen: tokens=//')
        fi
        "$LL/llppl" -q -t "$THREADS" -f "$TEXT" -c "$CTX" "$ref" > "$OUT/$fam.ppl.log" 2>&1 &&
            ppl=$(grep -a '^ppl:' "$OUT/$fam.ppl.log" | sed 's/.* ppl=\([^ ]*\).*/\1/')
        if [ $verify = yes ]; then
            if /usr/bin/python3 "$HERE/tools/families_verify.py" "$fam" "$d" "$ref" > "$OUT/$fam.verify.log" 2>&1
            then ver=bit-exact; else ver=FAILED; fi
        fi
        # slm's own conversion, when it takes the family: tensors by name against llama.cpp's
        if [ -x "$SLM" ]; then
            if "$SLM" convert "$d" -o "$OUT/$fam.slm.gguf" --outtype f32 -f > "$OUT/$fam.slm.log" 2>&1; then
                "$LL/lldq" --list "$OUT/$fam.slm.gguf" > "$OUT/$fam.slm.list" 2>&1
                mkdir -p "$OUT/$fam.ref" && "$LL/lldq" -q "$ref" -o "$OUT/$fam.ref" > /dev/null 2>&1
                "$LL/lldq" "$OUT/$fam.slm.gguf" -c "$OUT/$fam.ref" > "$OUT/$fam.cmp.log" 2>&1
                n_ref=$(grep -ac '^tensor ' "$OUT/$fam.llama.list")
                n_same=$(awk '/^lldq: cmp tensor=/ && /bit_exact=/ { split($0, a, "bit_exact="); split(a[2], b, "[/ ]"); if (b[1] == b[2]) n++ } END { print n + 0 }' "$OUT/$fam.cmp.log")
                kv_diff=$(grep -a '^kv ' "$OUT/$fam.llama.list" | grep -av 'tokenizer.chat_template' | sort > "$OUT/$fam.kv.a"
                          grep -a '^kv ' "$OUT/$fam.slm.list" | grep -av 'tokenizer.chat_template' | sort > "$OUT/$fam.kv.b"
                          diff "$OUT/$fam.kv.a" "$OUT/$fam.kv.b" | grep -c '^[<>]')
                slm="tensors-bit-exact=$n_same/$n_ref,kv-lines-differing=$kv_diff"
            else
                slm="refused($(tail -1 "$OUT/$fam.slm.log" | sed 's/.*: //; s/ /_/g' | cut -c1-60))"
            fi
        fi
    fi
    case $ppl in
        -|nan|inf|-nan|-inf) ok=no ;;
        *) ok=$conv ;;
    esac
    [ $loads = yes ] || ok=no
    [ $ok = yes ] || fails=$((fails + 1))
    echo "$fam: converted=$conv loads=$loads ppl=$ppl verify=$ver slm=$slm gen=$gen"
done
[ $fails -eq 0 ] && echo "families_ref: OK" || echo "families_ref: $fails family(ies) failed"
[ $fails -eq 0 ]
