#!/bin/sh
# demo.sh - the main job on the built-in default model (`make demo`): quantize to Q4_K_M and
# Q8_0, evaluate both against the original on held-out text, write the report.
set -eu
SLM=${SLM:-build/slm}
MODEL=${MODEL:-../shared/fixtures/models/tinystories-3M}
FIX=${FIX:-../shared/fixtures}
OUT=${OUT:-build/demo}
# the demo's model and text are the test fixtures (../shared, or SLM_FIXTURES / SHARED=...)
for f in "$FIX/text/tinystories_val.txt" "$MODEL/config.json"; do
    if [ ! -f "$f" ]; then
        echo "demo: $f not found: make demo needs the fixtures (../shared/fixtures next to this folder);" \
             "point to them with 'make demo SLM_FIXTURES=/path/to/fixtures', or try a real model (README: Quick start)" >&2
        exit 1
    fi
done
mkdir -p "$OUT"
TEXT="$OUT/heldout.txt"
# the held-out 15% of the TinyStories validation text (fixtures README, section 7.3)
tail -c +676506 "$FIX/text/tinystories_val.txt" > "$TEXT"
echo "demo: model $MODEL"
"$SLM" convert "$MODEL" -o "$OUT/f32.gguf" --outtype f32 -f -q
for t in Q8_0 Q4_K_M; do
    "$SLM" quantize "$MODEL" -o "$OUT/$t.gguf" --type "$t" -f --report "$OUT/$t.quantize.json"
    if "$SLM" eval --help > /dev/null 2>&1; then
        "$SLM" eval "$OUT/$t.gguf" --ref "$OUT/f32.gguf" --text "$TEXT" --ctx 256 --report-dir "$OUT/$t" -f -v
    fi
done
if "$SLM" report --help > /dev/null 2>&1 && [ -f "$OUT/Q8_0/report.json" ]; then
    "$SLM" report "$OUT/Q8_0.quantize.json" "$OUT/Q8_0/report.json" "$OUT/Q4_K_M.quantize.json" \
        "$OUT/Q4_K_M/report.json" -o "$OUT/report" -f
    echo "demo: report: $OUT/report/report.html"
else
    echo "demo: reports: $OUT/Q8_0.quantize.json $OUT/Q4_K_M.quantize.json"
fi
