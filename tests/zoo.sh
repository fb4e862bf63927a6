#!/bin/sh
# zoo.sh - examples/zoo/Makefile on two fixture models (copied: their files get touched):
# 4 recipes each with make -j2 (GGUF, packed copy, reports, index page), a second make does
# nothing, touching one input redoes that model only, a flags change redoes everything, the
# same bytes in a fresh output folder, and a failing quality gate stops make with slm's
# status 3 (model kept as .gate-failed, the report says which gate and by how much).
# Run by `make check` with SLM set.
set -u
SLM=$(cd "$(dirname "${SLM:-build/slm}")" && pwd)/$(basename "${SLM:-build/slm}")
FIX=$(cd "${SLM_FIXTURES:-../shared/fixtures}" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/slm-zoo-XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: zoo: $*"; fails=$((fails + 1)); }
RECIPES="f16 q8_0 q4_k_m q4_0 ffn25-q4_k_m" # the last: calibrate, prune, quantize
MK() { make --no-print-directory -C examples/zoo ZOO="$T/zoo" TEXT="$T/text.txt" SLM="$SLM" RECIPES="$RECIPES" "$@"; }
MODELS="stories260K stories260K-f16"

mkdir -p "$T/zoo"
for m in $MODELS; do cp -r "$FIX/models/$m" "$T/zoo/"; done
tail -c +676506 "$FIX/text/tinystories_val.txt" | head -c 30000 > "$T/text.txt" # held-out text

# ---- 4 recipes per model, -j2
MK OUT="$T/out" -j2 > "$T/log1" 2>&1 || fail "first make failed: $(tail -5 "$T/log1")"
for m in $MODELS; do
    for r in $RECIPES; do
        for f in "$r.gguf" "$r.gguf.zst" "$r.json" "$r.pack.json"; do [ -s "$T/out/$m/$f" ] || fail "missing $m/$f"; done
        grep -q '"gates_passed":[[:space:]]*true' "$T/out/$m/$r.json" || fail "$m/$r.json: gates not recorded as passed"
        grep -q '"input_sha256":[[:space:]]*"[0-9a-f]\{64\}"' "$T/out/$m/$r.json" || fail "$m/$r.json: no manifest"
        grep -q '"packed_bytes":[[:space:]]*[1-9]' "$T/out/$m/$r.pack.json" || fail "$m/$r.pack.json: no packed_bytes"
    done
    [ -s "$T/out/$m/report/report.html" ] || fail "missing $m/report/report.html"
done
[ -s "$T/out/index/report.html" ] || fail "missing the index page"
grep -q 'zstd' "$T/out/index/report.md" || fail "index: no compressed size column"
[ "$(grep -c '^| [0-9]' "$T/out/index/report.md")" -ge 8 ] || fail "index: fewer than 8 runs"
"$SLM" inspect "$T/out/stories260K/q4_0.gguf" | grep -q 'slm.input.sha256 .*"[0-9a-f]\{64\}"' || fail "inspect shows no manifest"
"$SLM" inspect "$T/out/stories260K/q4_0.gguf.zst" | grep -q 'slm.flags .*--type Q4_0' || fail "inspect of the pack shows no flags"

# ---- the prune step: FFN 172 -> 129 channels in every layer, evaluated against the unpruned model
for m in $MODELS; do
    "$SLM" inspect "$T/out/$m/ffn25-q4_k_m.gguf" | grep -q 'llama.feed_forward_length  *u32  *129$' || fail "$m: ffn25-q4_k_m not pruned to 129 channels"
    "$SLM" inspect "$T/out/$m/ffn25-q4_k_m.gguf" | grep -q 'blk.0.ffn_up.weight  *Q' || fail "$m: ffn25-q4_k_m not quantized"
    grep -q "\"reference\":[[:space:]]*\"$T/zoo/$m\"" "$T/out/$m/ffn25-q4_k_m.json" || fail "$m: ffn25-q4_k_m not evaluated against the unpruned model"
done

# ---- a second make does nothing
touch "$T/mark"; sleep 1
MK OUT="$T/out" -j2 > "$T/log2" 2>&1 || fail "second make failed"
grep -q "Nothing to be done" "$T/log2" || fail "second make did something: $(head -3 "$T/log2")"
[ -z "$(find "$T/out" -newer "$T/mark" -type f)" ] || fail "second make changed files: $(find "$T/out" -newer "$T/mark" -type f | head -3)"

# ---- touching one input redoes that model only
touch "$T/zoo/stories260K-f16/config.json"
touch "$T/mark2"; sleep 1
MK OUT="$T/out" -j2 > "$T/log3" 2>&1 || fail "make after touch failed"
for r in $RECIPES; do
    [ "$T/out/stories260K-f16/$r.gguf" -nt "$T/mark2" ] || fail "touched model: $r.gguf not redone"
    [ "$T/out/stories260K/$r.gguf" -nt "$T/mark2" ] && fail "untouched model: $r.gguf redone"
done
[ "$T/out/index/report.html" -nt "$T/mark2" ] || fail "index not redone"
[ "$(grep -c ' quantize ' "$T/log3")" -eq 5 ] || fail "touch: $(grep -c ' quantize ' "$T/log3") quantize runs, want 5"
[ "$(grep -c ' prune ' "$T/log3")" -eq 1 ] || fail "touch: $(grep -c ' prune ' "$T/log3") prune runs, want 1"

# ---- the same bytes in a fresh folder
MK OUT="$T/out2" -j2 > "$T/log4" 2>&1 || fail "fresh make failed"
for m in $MODELS; do
    for r in $RECIPES; do
        for f in "$r.gguf" "$r.gguf.zst"; do cmp -s "$T/out/$m/$f" "$T/out2/$m/$f" || fail "$m/$f differs between runs"; done
    done
done

# ---- a flags change redoes everything
touch "$T/mark3"; sleep 1
MK OUT="$T/out2" -j2 QFLAGS=--pure > "$T/log5" 2>&1 || fail "make with new flags failed"
[ "$(grep -c ' quantize ' "$T/log5")" -eq 10 ] || fail "flags change: $(grep -c ' quantize ' "$T/log5") quantize runs, want 10"
grep -q '"flags":[[:space:]]*"--type Q8_0 --pure' "$T/out2/stories260K/q8_0.json" || fail "flags change: manifest lacks --pure"

# ---- a failing gate stops make with status 3
mkdir -p "$T/strict"
printf '{"method": "quantize", "type": "Q4_0", "gates": {"max_kld": 1e-9}, "eval": {"ctx": 64, "chunks": 2}}\n' > "$T/strict/strict.json"
MK OUT="$T/out3" RECIPE_DIR="$T/strict" RECIPES=strict -j2 > "$T/log6" 2>&1 && fail "make passed a failing gate"
grep -q 'Error 3' "$T/log6" || fail "make did not stop with status 3: $(tail -3 "$T/log6")"
grep -q 'gate max_kld failed: kld_mean .* > 1e-09 (missed by' "$T/log6" || fail "no gate message: $(tail -3 "$T/log6")"
m=stories260K
[ -s "$T/out3/$m/strict.gguf.gate-failed" ] || fail "gate: model not kept as .gate-failed"
[ -e "$T/out3/$m/strict.gguf" ] && fail "gate: model left under its target name"
grep -q '"gates_passed":[[:space:]]*false' "$T/out3/$m/strict.json" || fail "gate: report does not say it failed"
grep -q '"excess":[[:space:]]*[0-9]' "$T/out3/$m/strict.json" || fail "gate: report does not say by how much"

# ---- with slm calibrate in the binary: the imatrix recipe (calibrate, then quantize --imatrix)
if "$SLM" calibrate --help > /dev/null 2>&1; then
    MK OUT="$T/out4" RECIPES=iq4_xs-im CALIB_TEXT="$FIX/text/tinystories_val.txt" -j2 > "$T/log7" 2>&1 || fail "imatrix recipe: $(tail -3 "$T/log7")"
    "$SLM" inspect "$T/out4/stories260K/iq4_xs-im.gguf" | grep -q quantize.imatrix.entries_count || fail "imatrix recipe: no imatrix used"
fi

[ "$fails" -eq 0 ] && echo "zoo: ok (2 models x 5 recipes, one pruned, no-op, touch, flags, same bytes, gate status 3)"
[ "$fails" -eq 0 ]
