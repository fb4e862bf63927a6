#!/bin/sh
# lint.sh [ROOT] - the house rules a grep can check (STYLE.md, sections A/K), on the tree at ROOT
# (default: the current folder). tests/lint_test.sh breaks each rule on purpose and expects a
# failure. The layering, lowest first:
#   core/                          includes nothing of ours but core/
#   quantize/ codec (quants.h, qtypes.h, quantize.h, q_*)   core/ and the codec only
#   model/                         core/ and the codec (never formats/, report/, export/, cli/,
#                                  quantize/ policy, prune/, distill/)
#   formats/                       core/, the codec, and model/'s data headers (config.h, vocab.h,
#                                  catalog.h, calib.h), never model/transformer.h or other model/ code
#   report/                        core/ only
#   quantize/ policy (recipe, imatrix use, AWQ, GPTQ)  core/, the codec, model/; never prune/
#   prune/                         core/, the codec, model/; never quantize/ policy
#   distill/                       core/, the codec, model/
#   export/                        anything but cli/
#   cli/                           everything
# Also: below cli/ nothing prints or exits; omp.h only in core/thread.c; no fast-math anywhere.
set -u
ROOT=${1:-.}
cd "$ROOT" || exit 2
fails=0
bad() { echo "lint: $*"; fails=$((fails + 1)); }

# files of a folder (or a codec/policy part of quantize/)
files() { ls "$@" 2>/dev/null; }
CODEC=$(files quantize/quants.h quantize/qtypes.h quantize/quantize.h quantize/q_*.c quantize/q_*.h)
POLICY=$(for f in $(files quantize/*.c quantize/*.h); do case " $CODEC " in *" $f "*) ;; *) echo "$f" ;; esac; done)
CODEC_INC='quantize/(quants|qtypes|quantize)\.h|quantize/q_[a-z0-9_]*\.h'
MODEL_DATA='model/(config|vocab|catalog|calib)\.h'

# includes of ours in FILES that do not match ALLOWED (an ERE over the path inside the quotes)
check() {
    what=$1 allowed=$2
    shift 2
    [ $# -eq 0 ] && return
    hits=$(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]+"[a-z_]+/' "$@" 2>/dev/null |
           grep -vE "#[[:space:]]*include[[:space:]]+\"($allowed)\"" || true)
    [ -n "$hits" ] && bad "$what:" && echo "$hits"
}
check "core/ includes other modules" 'core/[a-z_0-9]+\.h' $(files core/*.c core/*.h)
check "the quantize/ codec includes more than core/" "core/[a-z_0-9]+\.h|$CODEC_INC" $CODEC
check "model/ includes formats/, report/, export/, cli/ or quantize/ policy" "core/[a-z_0-9]+\.h|$CODEC_INC|model/[a-z_0-9]+\.h" \
    $(files model/*.c model/*.h)
check "formats/ includes model/ code (only config.h, vocab.h, catalog.h, calib.h) or another module" \
    "core/[a-z_0-9]+\.h|$CODEC_INC|$MODEL_DATA|formats/[a-z_0-9]+\.h" $(files formats/*.c formats/*.h)
check "report/ includes more than core/" 'core/[a-z_0-9]+\.h|report/[a-z_0-9]+\.h' $(files report/*.c report/*.h)
check "quantize/ policy includes prune/, distill/, formats/, export/ or cli/" \
    "core/[a-z_0-9]+\.h|quantize/[a-z_0-9]+\.h|model/[a-z_0-9]+\.h" $POLICY
check "prune/ includes quantize/ policy or another module" "core/[a-z_0-9]+\.h|$CODEC_INC|model/[a-z_0-9]+\.h|prune/[a-z_0-9]+\.h" \
    $(files prune/*.c prune/*.h)
check "distill/ includes more than core/, the codec and model/" "core/[a-z_0-9]+\.h|$CODEC_INC|model/[a-z_0-9]+\.h|distill/[a-z_0-9]+\.h" \
    $(files distill/*.c distill/*.h)
check "export/ includes cli/" "(core|quantize|model|formats|report|prune|distill|export)/[a-z_0-9]+\.h" \
    $(files export/*.c export/*.h)

LIB="core formats model quantize prune distill report export"
for d in $LIB; do
    [ -d "$d" ] || continue
    hits=$(grep -nE '\b(printf|puts|putchar|perror|exit|abort)\s*\(|\b(stdout|stderr)\b' "$d"/*.c "$d"/*.h 2>/dev/null |
           grep -vE 'snprintf|vsnprintf|SLM_ASSERT|core/slm.h:.*(fprintf|abort)|^\S+:\s*[0-9]+:\s*(/\*|\*)' || true)
    [ -n "$hits" ] && bad "printing or exiting below cli/ in $d/:" && echo "$hits"
done
hits=$(ls */*.c */*.h 2>/dev/null | grep -v '^core/thread.c$' | xargs grep -ln '#include <omp.h>' 2>/dev/null || true)
[ -n "$hits" ] && bad "omp.h outside core/thread.c: $hits"
grep -rn 'fast-math\|-Ofast' Makefile */*.c */*.h 2>/dev/null | grep -v 'tests/lint' | grep -v 'no -ffast-math\|No -ffast-math\|no fast-math' &&
    bad "fast-math found"
[ "$fails" -eq 0 ] && echo "lint: ok" || echo "lint: $fails problem(s)"
[ "$fails" -eq 0 ]
