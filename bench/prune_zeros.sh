#!/bin/sh
# prune_zeros.sh - which quantization block formats keep a pruned model's zeros exactly zero:
# tinystories-3M, 50% magnitude (per row), then slm quantize --type T (no imatrix), dequantized by
# llama.cpp's ggml (lldq); prints per type the fraction of the pruned zeros that are still 0.0.
# Usage: sh bench/prune_zeros.sh   (SLM, LLBIN, SLM_FIXTURES as for the tests)
set -eu
SLM=${SLM:-build/slm}; LLBIN=${LLBIN:-/tmp/llcpp/bin}; FIX=${SLM_FIXTURES:-../shared/fixtures}
T=$(mktemp -d "${TMPDIR:-/tmp}/slm-prunez-XXXXXX"); trap 'rm -rf "$T"' EXIT
"$SLM" prune "$FIX/models/tinystories-3M" -o "$T/p.gguf" --method magnitude --sparsity 0.5 -q
mkdir "$T/ref" && "$LLBIN/lldq" -q -o "$T/ref" "$T/p.gguf" > /dev/null 2>&1
for t in Q8_0 Q5_0 Q4_0 IQ4_NL Q5_1 Q4_1 Q6_K Q5_K_M Q4_K_M Q3_K_M Q2_K; do
    "$SLM" quantize "$T/p.gguf" -o "$T/q.gguf" --type $t -q -f
    rm -rf "$T/dq" && mkdir "$T/dq" && "$LLBIN/lldq" -q -o "$T/dq" "$T/q.gguf" > /dev/null 2>&1
    python3 - "$T/ref" "$T/dq" "$t" <<'PY'
import array, os, re, sys
ref, dq, t = sys.argv[1:4]
z = kept = nz0 = 0
for f in sorted(os.listdir(ref)):
    if not re.match(r'blk\.\d+\.(attn_(q|k|v|output)|ffn_(up|gate|down))\.weight\.f32$', f): continue
    a = array.array('f'); a.frombytes(open(os.path.join(ref, f), 'rb').read())
    b = array.array('f'); b.frombytes(open(os.path.join(dq, f), 'rb').read())
    for x, y in zip(a, b):
        if x == 0.0:
            z += 1; kept += y == 0.0
        elif y == 0.0: nz0 += 1
print("%-7s zeros kept %.4f (%d of %d); kept weights that became 0: %d" % (t, kept / z, kept, z, nz0))
PY
done
