#!/bin/sh
# lint_test.sh - tests/lint.sh must fail on each rule it claims to enforce: a copy of the
# sources gets one deliberate violation at a time and lint must name it (and pass without it).
set -u
T=$(mktemp -d /tmp/slm-lint-XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
cp -r core formats model quantize report export cli Makefile "$T"/ 2>/dev/null
mkdir -p "$T/tests" "$T/prune" && cp tests/lint.sh "$T/tests/"
sh tests/lint.sh "$T" >/dev/null || { echo "lint_test: the clean copy fails lint"; exit 1; }

# inject FILE LINE EXPECTED-MESSAGE: append LINE to FILE in a fresh copy, expect lint to fail with MESSAGE
inject() {
    f=$1 line=$2 want=$3
    cp "$T/$f" "$T/$f.orig" 2>/dev/null || : > "$T/$f.orig"
    printf '%s\n' "$line" >> "$T/$f"
    out=$(sh "$T/tests/lint.sh" "$T" 2>&1)
    rc=$?
    mv "$T/$f.orig" "$T/$f"
    [ -s "$T/$f" ] || rm -f "$T/$f"
    if [ $rc -eq 0 ] || ! printf '%s' "$out" | grep -qF "$want"; then
        echo "lint_test: '$line' in $f: expected a failure with '$want', got (status $rc):"; echo "$out"
        fails=$((fails + 1))
    fi
}
inject core/tensor.c '#include "model/config.h"' "core/ includes other modules"
inject quantize/q_types.c '#include "model/transformer.h"' "the quantize/ codec includes more than core/"
inject quantize/q_legacy.c '#include "formats/gguf.h"' "the quantize/ codec includes more than core/"
inject model/eval.c '#include "formats/gguf.h"' "model/ includes formats/"
inject model/calib_x.c '#include "quantize/recipe.h"' "model/ includes formats/, report/, export/, cli/ or quantize/ policy"
inject formats/model_src.c '#include "model/transformer.h"' "formats/ includes model/ code"
inject report/report.c '#include "model/eval.h"' "report/ includes more than core/"
inject quantize/recipe.c '#include "prune/prune.h"' "quantize/ policy includes prune/"
inject prune/magnitude.c '#include "quantize/recipe.h"' "prune/ includes quantize/ policy"
inject export/export.c '#include "cli/msg.h"' "export/ includes cli/"
inject model/eval.c 'static void f(void) { printf("x"); }' "printing or exiting below cli/ in model/"
inject formats/gguf_read.c '#include <omp.h>' "omp.h outside core/thread.c"
[ $fails -eq 0 ] && echo "lint_test: 12 deliberate violations caught" || echo "lint_test: $fails violation(s) not caught"
[ $fails -eq 0 ]
