#!/bin/sh
# run_cli.sh - command-line behaviour: exit codes, one-line errors naming the file, no output
# or temp file left after a failure or a signal, refusal to overwrite, determinism across
# thread counts, quiet unless asked. Run by `make check` with SLM and BUILD set.
set -u
SLM=${SLM:-build/slm}
BUILD=${BUILD:-build}
FIX=${SLM_FIXTURES:-../shared/fixtures}
T=$(mktemp -d "${TMPDIR:-/tmp}/slm-cli-XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0; n=0
S260="$FIX/models/stories260K"

fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# expect CODE 'stderr substring' cmd... : exit status and a substring of stderr ('' = empty stderr)
expect() {
    code=$1; want=$2; shift 2
    n=$((n + 1))
    "$@" > "$T/out" 2> "$T/err"
    got=$?
    if [ "$got" != "$code" ]; then fail "[$*] exit $got, want $code; stderr: $(head -c 300 "$T/err")"; return; fi
    if [ -z "$want" ]; then
        [ -s "$T/err" ] && fail "[$*] stderr not empty: $(head -c 300 "$T/err")"
    elif ! grep -qF -- "$want" "$T/err"; then
        fail "[$*] stderr lacks '$want': $(head -c 300 "$T/err")"
    fi
    return 0
}
expect_stdout() { grep -qF -- "$1" "$T/out" || fail "stdout lacks '$1': $(head -c 300 "$T/out")"; }
no_file() { [ ! -e "$1" ] || fail "$1 exists after a failure"; ls -a "$(dirname "$1")" | grep -q '\.slm-' && fail "temp file left in $(dirname "$1")"; return 0; }
one_line() { [ "$(wc -l < "$T/err")" -eq 1 ] || fail "error is not one line: $(cat "$T/err")"; }

# ---- usage, help, version -----------------------------------------------------------------
expect 0 '' "$SLM" --version; expect_stdout "slm 0.1.0"
expect 0 '' "$SLM" --help; expect_stdout "usage: slm <command>"
expect 2 "usage: slm <command>" "$SLM"
expect 2 "slm: unknown command 'frob'" "$SLM" frob
expect 0 '' "$SLM" convert --help; expect_stdout "usage: slm convert MODEL_DIR -o OUT.gguf"
expect 0 '' "$BUILD/slm-quantize" --help; expect_stdout "usage: slm quantize MODEL -o OUT.gguf --type TYPE"
expect 2 "slm convert: missing MODEL_DIR" "$SLM" convert
expect 2 "Try 'slm convert --help'." "$SLM" convert "$S260" -o "$T/x.gguf" --fo
expect 2 "slm convert: unknown option '--fo'" "$SLM" convert "$S260" -o "$T/x.gguf" --fo
expect 2 "option '-o' needs a value" "$SLM" convert "$S260" -o
expect 2 "--outtype: 'q4_0' is not one of f32, f16, bf16 (use 'slm quantize' for quantized types)" "$SLM" convert "$S260" -o "$T/x.gguf" --outtype q4_0
expect 2 "option '--threads': '0' is not an integer in [1, 1024]" "$SLM" convert "$S260" -o "$T/x.gguf" --threads 0
expect 2 "slm quantize: missing --type" "$SLM" quantize "$S260" -o "$T/x.gguf"
expect 2 "slm quantize: unknown type 'Q9_9' (see --list-types)" "$SLM" quantize "$S260" -o "$T/x.gguf" --type Q9_9
expect 2 "--tensor-type: unknown tensor type 'Q9'" "$SLM" quantize "$S260" -o "$T/x.gguf" --type Q8_0 --tensor-type attn_q=Q9
expect 2 "--tensor-type: expected REGEX=TYPE" "$SLM" quantize "$S260" -o "$T/x.gguf" --type Q8_0 --tensor-type attn_q
expect 2 "slm quantize: --target-size and --target-bpw exclude each other" "$SLM" quantize "$S260" -o "$T/x.gguf" --target-size 100000 --target-bpw 4
expect 1 "slm: error: target of 1000 bytes is smaller than the smallest possible file (" "$SLM" quantize "$S260" -o "$T/x.gguf" --target-size 1000
no_file "$T/x.gguf"
expect 0 '' "$SLM" quantize --list-types; expect_stdout "Q4_K_M"

# ---- success is quiet off a terminal; -v gives the summary ---------------------------------
expect 0 '' "$SLM" convert "$S260" -o "$T/s.gguf"
expect 0 "Q8_0:" "$SLM" quantize "$T/s.gguf" -o "$T/q8.gguf" --type Q8_0 -v
expect 0 '' "$SLM" inspect "$T/q8.gguf"; expect_stdout "blk.0.attn_q.weight"
expect_stdout "general.file_type                            u32    7"
expect 0 '' "$SLM" inspect "$T/q8.gguf" --json; expect_stdout '"Q8_0"'
expect 0 '' "$SLM" inspect "$S260"; expect_stdout "model.layers.0.self_attn.q_proj.weight"

# ---- outputs: no overwrite without -f, never the input ------------------------------------
cp "$T/s.gguf" "$T/keep.gguf"
expect 1 "already exists (use -f to overwrite)" "$SLM" convert "$S260" -o "$T/s.gguf" --outtype f16
cmp -s "$T/s.gguf" "$T/keep.gguf" || fail "refused overwrite still changed the file"
expect 0 '' "$SLM" convert "$S260" -o "$T/s.gguf" --outtype f16 -f
cmp -s "$T/s.gguf" "$T/keep.gguf" && fail "-f did not overwrite"
expect 1 "is the input" "$SLM" quantize "$T/q8.gguf" -o "$T/q8.gguf" --type Q8_0 -f --allow-requantize
cmp -s "$T/q8.gguf" "$T/q8.gguf" || true
# ---- outputs that would destroy data (issue 8): each refused before any work, one line, nothing written
cp "$T/q8.gguf" "$T/q8.keep"
expect 1 "given twice as an output" "$SLM" quantize "$S260" -o "$T/y.gguf" --type Q8_0 --report "$T/y.gguf"; one_line; no_file "$T/y.gguf"
expect 1 "is the input" "$SLM" quantize "$T/q8.gguf" -o "$T/y.gguf" --type Q8_0 --allow-requantize --report "$T/q8.gguf" -f; one_line
cmp -s "$T/q8.gguf" "$T/q8.keep" || fail "--report INPUT -f changed the input"
no_file "$T/y.gguf"
head -c 3000 "$FIX/text/tinystories_val.txt" > "$T/small.txt"
expect 1 "is the input" "$SLM" eval "$T/q8.gguf" --text "$T/small.txt" --ctx 64 --dump-nll "$T/q8.gguf" -f; one_line
expect 1 "is the input" "$SLM" eval "$T/q8.gguf" --text "$T/small.txt" --ctx 64 --dump-tokens "$T/small.txt" -f; one_line
cmp -s "$T/q8.gguf" "$T/q8.keep" || fail "eval --dump-nll INPUT -f changed the input"
mkdir -p "$T/hf" && cp -r "$S260"/* "$T/hf/"
cp "$T/hf/config.json" "$T/cfg.keep"
expect 1 "is a file of the model folder" "$SLM" convert "$T/hf" -o "$T/hf/config.json" -f; one_line
cmp -s "$T/hf/config.json" "$T/cfg.keep" || fail "convert -o HFDIR/config.json -f changed the config"
expect 0 '' "$SLM" convert "$T/hf" -o "$T/hf/model.gguf" # a new file in the folder is fine
mkfifo "$T/fifo.gguf"
expect 1 "not a regular file" "$SLM" convert "$S260" -o "$T/fifo.gguf" -f; one_line
[ -p "$T/fifo.gguf" ] || fail "-f replaced a FIFO"
expect 1 "not a regular file" "$SLM" convert "$S260" -o /dev/null -f; one_line
[ -c /dev/null ] || fail "-f replaced /dev/null"
ln -s "$T/nowhere.gguf" "$T/dangling.gguf"
expect 1 "already exists (use -f to overwrite)" "$SLM" convert "$S260" -o "$T/dangling.gguf"; one_line
[ -L "$T/dangling.gguf" ] || fail "a dangling symlink was replaced without -f"
expect 1 "never a stream" "$SLM" convert "$S260" -o -; one_line
[ -e ./- ] && fail "-o - wrote a file named -"
# a report that cannot be written: no output either (it used to keep the GGUF and exit 1)
mkdir -p "$T/blocked" && touch "$T/blocked/report.md" && chmod 000 "$T/blocked" 2>/dev/null
if [ "$(id -u)" != 0 ]; then
    expect 1 "" "$SLM" quantize "$S260" -o "$T/z.gguf" --type Q8_0 --report-dir "$T/blocked"; no_file "$T/z.gguf"
fi
chmod 755 "$T/blocked"
touch "$T/file-not-dir"
expect 1 "a parent is not a folder" "$SLM" quantize "$S260" -o "$T/z.gguf" --type Q8_0 --report-dir "$T/file-not-dir/r" -f; one_line
no_file "$T/z.gguf"

# ---- bad requests ---------------------------------------------------------------------------
expect 1 "Q2_K_S needs an importance matrix: give --imatrix FILE" "$SLM" quantize "$S260" -o "$T/x.gguf" --type Q2_K_S; one_line; no_file "$T/x.gguf"
expect 1 "IQ2_XXS needs an importance matrix" "$SLM" quantize "$S260" -o "$T/x.gguf" --type IQ2_XXS; one_line; no_file "$T/x.gguf"
expect 1 "tensor 'blk.0.attn_q.weight' (IQ2_XXS) needs importance weights: give --imatrix FILE" \
    "$SLM" quantize "$FIX/models/tinystories-3M" -o "$T/x.gguf" --type Q8_0 --tensor-type 'attn_q=IQ2_XXS'; one_line; no_file "$T/x.gguf"
IM="$FIX/reference/tinystories-3M.calib40.imatrix.gguf"
expect 1 "imatrix entry 'blk.0.attn_k.weight' has 1 x 256 values but the model's tensor [32, 64] has 1 x 64 (imatrix from another model?)" \
    "$SLM" quantize "$S260" -o "$T/x.gguf" --type Q4_0 --imatrix "$IM"; one_line; no_file "$T/x.gguf"
expect 1 "legacy imatrix" "$SLM" quantize "$S260" -o "$T/x.gguf" --type Q4_0 --imatrix "$S260/config.json"; one_line; no_file "$T/x.gguf"
# prune (issue 11): bad input is one line, exit 1, no output
TS3="$FIX/models/tinystories-3M"
# ---- --target-size: at most the target, within 0.5% of it, the same bytes for 1 and 2 threads
expect 0 '' "$SLM" quantize "$TS3" --target-size 1300000 -o "$T/tg1.gguf" -t 1
expect 0 '' "$SLM" quantize "$TS3" --target-size 1300000 -o "$T/tg2.gguf" -t 2
tgb=$(stat -c %s "$T/tg1.gguf"); n=$((n + 1))
[ "$tgb" -le 1300000 ] && [ "$tgb" -ge 1293500 ] || fail "--target-size 1300000 wrote $tgb bytes"
cmp -s "$T/tg1.gguf" "$T/tg2.gguf" || fail "--target-size: 1 and 2 threads differ"
expect 1 "sparsity 1 is outside [0, 1)" "$SLM" prune "$TS3" -o "$T/p.gguf" --sparsity 1; one_line; no_file "$T/p.gguf"
expect 1 "3:7 does not divide its rows of 256 values" "$SLM" prune "$TS3" -o "$T/p.gguf" --nm 3:7; one_line; no_file "$T/p.gguf"
expect 1 "removes every head of layer 0" "$SLM" prune "$TS3" -o "$T/p.gguf" --method heads --uniform --sparsity 0.9; one_line; no_file "$T/p.gguf"
expect 1 "imatrix from another model?" "$SLM" prune "$S260" -o "$T/p.gguf" --method wanda --calibration "$FIX/reference/tinystories-3M.calib40.imatrix.gguf"; one_line; no_file "$T/p.gguf"
# 2:4 read back from the written file: exactly 2 zeros in every 4 consecutive input weights of
# every pruned row (F32 output, rows a multiple of 4 long, so od's lines of 4 floats are the groups)
nm_groups() { # FILE: prints "groups bad" over the pruned tensors
    d=$("$SLM" inspect "$1" | sed -n '1s/.*data at //p')
    "$SLM" inspect "$1" | awk '$1 ~ /^blk\..*(attn_(q|k|v|output)|ffn_(up|gate|down))\.weight$/ {print $(NF-1), $NF}' |
        while read -r bytes off; do od -An -v -tf4 -w16 -j $((d + off)) -N "$bytes" "$1"; done |
        awk '{z = 0; for (i = 1; i <= 4; i++) if ($i + 0 == 0) z++; g++; if (z != 2) b++} END {print g + 0, b + 0}'
}
for meth in magnitude wanda; do
    expect 0 '' "$SLM" prune "$S260" -o "$T/p24.gguf" --method $meth --nm 2:4 --calib-text "$T/small.txt" -f
    [ "$(nm_groups "$T/p24.gguf")" = "56640 0" ] || fail "2:4 $meth: groups/bad = $(nm_groups "$T/p24.gguf")"
done
rm -f "$T/p24.gguf"
# prune --eval-text: PPL/KLD against the input into the summary and the report; gates exit 3, output kept
expect 0 "mean KLD" "$SLM" prune "$S260" -o "$T/pe.gguf" --eval-text "$T/small.txt" --eval-ctx 64 --report "$T/pe.json" -v
grep -q '"kld_mean"' "$T/pe.json" || fail "prune report lacks kld_mean"
grep -q '"packed_bytes":.[1-9]' "$T/pe.json" || fail "prune report lacks the zstd size"
ls "$T" | grep -q 'pe.gguf.zst' && fail "prune left its zstd probe file"
expect 3 "gate max_kld failed" "$SLM" prune "$S260" -o "$T/pe.gguf" --eval-text "$T/small.txt" --eval-ctx 64 --max-kld 1e-9 -f
[ -e "$T/pe.gguf" ] || fail "prune: a failed gate removed the output"
expect 2 "quality gates need an evaluation" "$SLM" prune "$S260" -o "$T/pf.gguf" --max-kld 0.1; no_file "$T/pf.gguf"

# prune --format hf (issue 11): the HF folder converts back to the very tensors prune writes as a GGUF
tensor_sums() { # FILE: "name type sha256" of each tensor's data bytes of a GGUF
    _d=$("$SLM" inspect "$1" | sed -n 's/.*data at \([0-9]*\)$/\1/p' | head -1)
    "$SLM" inspect "$1" | awk '/^  tensor /{t=1; next} t && NF>=5 {print $1, $2, $(NF-1), $NF}' |
    while read -r _n _t _b _o; do
        printf '%s %s %s\n' "$_n" "$_t" "$(tail -c +$((_d + _o + 1)) "$1" | head -c "$_b" | sha256sum | cut -c1-16)"
    done
}
for meth in ffn heads magnitude; do
    expect 0 '' "$SLM" prune "$TS3" --method $meth --sparsity 0.25 --uniform -o "$T/h-$meth.gguf"
    expect 0 '' "$SLM" prune "$TS3" --method $meth --sparsity 0.25 --uniform --format hf -o "$T/h-$meth"
    expect 0 '' "$SLM" convert "$T/h-$meth" -o "$T/h-$meth.hf.gguf"
    tensor_sums "$T/h-$meth.gguf" > "$T/sa"; tensor_sums "$T/h-$meth.hf.gguf" > "$T/sb"
    [ "$(wc -l < "$T/sa")" -ge 30 ] && cmp -s "$T/sa" "$T/sb" || fail "prune --format hf $meth: tensors differ from the GGUF's: $(diff "$T/sa" "$T/sb" | head -3)"
done
for f in config.json model.safetensors tokenizer.model tokenizer_config.json; do [ -f "$T/h-ffn/$f" ] || fail "prune --format hf: no $f"; done
[ "$(stat -c %a "$T/h-ffn")" = "$(printf '%o' $((0777 & ~$(umask))))" ] || fail "prune --format hf: folder mode $(stat -c %a "$T/h-ffn")"
grep -q '"intermediate_size":.*576,' "$T/h-ffn/config.json" || fail "prune --format hf: intermediate_size not rewritten"
grep -q '"num_attention_heads":.*6,' "$T/h-heads/config.json" && grep -q '"head_dim":.*32,' "$T/h-heads/config.json" ||
    fail "prune --format hf: heads/head_dim not rewritten: $(grep head "$T/h-heads/config.json")"
"$SLM" eval "$T/h-ffn" --text "$T/small.txt" --ctx 64 --json > "$T/e1.json" 2>/dev/null
"$SLM" eval "$T/h-ffn.gguf" --text "$T/small.txt" --ctx 64 --json > "$T/e2.json" 2>/dev/null
p1=$(grep '"ppl"' "$T/e1.json"); p2=$(grep '"ppl"' "$T/e2.json")
[ -n "$p1" ] && [ "$p1" = "$p2" ] || fail "prune --format hf: eval of the folder '$p1' != the GGUF's '$p2'"
expect 0 '' "$SLM" prune "$TS3" --method ffn --sparsity 0.5 --uniform --format hf --outtype bf16 -o "$T/h-bf"
grep -q '"torch_dtype":.*"bfloat16"' "$T/h-bf/config.json" || fail "prune --format hf --outtype bf16: torch_dtype"
"$SLM" inspect "$T/h-bf/model.safetensors" | grep -q 'blk.0.ffn_up\|model.layers.0.mlp.up_proj.weight *BF16 *\[384, 256\]' || fail "prune --format hf bf16: up_proj not BF16 [384, 256]"
expect 1 "already exists (use -f to replace the folder)" "$SLM" prune "$TS3" --method ffn --uniform --format hf -o "$T/h-ffn"; one_line
echo x > "$T/h-ffn/stale.safetensors"
expect 0 '' "$SLM" prune "$TS3" --method ffn --sparsity 0.5 --uniform --format hf -o "$T/h-ffn" -f
[ -e "$T/h-ffn/stale.safetensors" ] && fail "prune --format hf -f: the old folder's files survived"
grep -q '"intermediate_size":.*384,' "$T/h-ffn/config.json" || fail "prune --format hf -f: folder not replaced"
ls -a "$T" | grep -q '\.slm-' && fail "prune --format hf: temp folder left in $T"
expect 2 "--format hf needs --uniform" "$SLM" prune "$TS3" --method ffn --format hf -o "$T/h-x"; no_file "$T/h-x"
expect 1 "needs a Hugging Face folder as MODEL" "$SLM" prune "$T/h-ffn.gguf" --method ffn --uniform --format hf -o "$T/h-x"; one_line; no_file "$T/h-x"
expect 1 "is or holds the input" "$SLM" prune "$TS3" --method ffn --uniform --format hf -o "$TS3" -f; one_line
mkdir -p "$T/h-sub/inner"
expect 1 "not a model folder" "$SLM" prune "$TS3" --method ffn --uniform --format hf -o "$T/h-sub" -f; one_line
[ -d "$T/h-sub/inner" ] || fail "prune --format hf -f removed a folder that is not a model folder"
expect 1 "exists and is not a folder" "$SLM" prune "$TS3" --method ffn --uniform --format hf -o "$T/h-ffn.gguf" -f; one_line
: > "$T/empty.txt"
expect 1 "fewer than one window" "$SLM" prune "$TS3" --method ffn --uniform --format hf -o "$T/h-y" --eval-text "$T/empty.txt"; one_line; no_file "$T/h-y"
rm -f "$T/pe.gguf" "$T/pe.json"
# recipes with a "prune" step (issue 14's zoo: prune, then quantize, evaluated against the original)
ZR=examples/zoo/recipes
expect 0 '' "$SLM" prune "$S260" -o "$T/zr1.gguf" --recipe "$ZR/ffn25-q4_k_m.json"
expect 0 '' "$SLM" prune "$S260" -o "$T/zr2.gguf" --method ffn --sparsity 0.25 --uniform
cmp -s "$T/zr1.gguf" "$T/zr2.gguf" || fail "prune --recipe: not the bytes of the same options on the command line"
expect 0 '' "$SLM" prune "$S260" -o "$T/zr3.gguf" --recipe "$ZR/ffn25-q4_k_m.json" --sparsity 0.5
"$SLM" inspect "$T/zr3.gguf" | grep -q 'llama.feed_forward_length  *u32  *86$' || fail "prune --recipe: the command line does not override it"
printf '{"method": "prune", "prune": {"method": "ffn", "uniform": true}, "sparsity": 0.25}\n' > "$T/zr.json"
expect 0 '' "$SLM" prune "$S260" -o "$T/zr4.gguf" --recipe "$T/zr.json"
cmp -s "$T/zr4.gguf" "$T/zr2.gguf" || fail "prune --recipe (method prune): not the bytes of the command line"
expect 2 "q4_k_m.json: key 'method': a recipe for 'quantize' with no \"prune\" step, this is slm prune" \
    "$SLM" prune "$S260" -o "$T/zr5.gguf" --recipe "$ZR/q4_k_m.json"; one_line; no_file "$T/zr5.gguf"
printf '{"method": "prune", "prune": {"type": "Q4_0"}}\n' > "$T/zr.json"
expect 2 "zr.json: key 'prune.type': not an option of this command" "$SLM" prune "$S260" -o "$T/zr5.gguf" --recipe "$T/zr.json"; one_line
expect 0 '' "$SLM" quantize "$T/zr1.gguf" -o "$T/zq.gguf" --recipe "$ZR/ffn25-q4_k_m.json" --eval-text "$T/small.txt" \
    --eval-ref "$S260" --eval-ctx 64 --report "$T/zq.json"
"$SLM" eval "$T/zq.gguf" --ref "$S260" --text "$T/small.txt" --ctx 64 --chunks 4 --json > "$T/zq-e.json" 2>/dev/null
k1=$(grep -o '"kld_mean":[^,]*' "$T/zq.json"); k2=$(grep -o '"kld_mean":[^,]*' "$T/zq-e.json")
[ -n "$k1" ] && [ "$k1" = "$k2" ] || fail "quantize --eval-ref: '$k1' != slm eval --ref's '$k2'"
grep -q "\"reference\":[[:space:]]*\"$S260\"" "$T/zq.json" || fail "quantize --eval-ref: report names another reference"
expect 2 "--eval-ref needs --eval-text FILE" "$SLM" quantize "$T/zr1.gguf" -o "$T/zq2.gguf" --type Q8_0 --eval-ref "$S260"; no_file "$T/zq2.gguf"
expect 0 "" "$SLM" quantize "$FIX/models/tinystories-3M" -o "$T/im.gguf" --type IQ2_XS --imatrix "$IM"
expect 0 "" "$SLM" inspect "$T/im.gguf"; expect_stdout "quantize.imatrix.entries_count"
rm -f "$T/im.gguf"
expect 1 "is already quantized (Q8_0)" "$SLM" quantize "$T/q8.gguf" -o "$T/x.gguf" --type Q4_0; one_line; no_file "$T/x.gguf"
expect 0 '' "$SLM" quantize "$T/q8.gguf" -o "$T/x.gguf" --type Q4_0 --allow-requantize
rm -f "$T/x.gguf"
"$BUILD/mksynth" "$T/untied" --dim 64 --ff 128 --layers 1 --heads 4 --kv-heads 2 --dtype f32 --shards 1 \
    --tokenizer-from "$S260" > /dev/null || fail "mksynth"
expect 1 "tensor 'output.weight': row length 64 is not a multiple of Q4_K's block size 256" \
    "$SLM" quantize "$T/untied" -o "$T/x.gguf" --type Q8_0 --output-tensor-type Q4_K; no_file "$T/x.gguf"
expect 1 "tensor 'token_embd.weight': row length 64 is not a multiple of Q6_K's block size 256" \
    "$SLM" quantize "$S260" -o "$T/x.gguf" --type Q4_0 --token-embedding-type Q6_K; no_file "$T/x.gguf"
expect 1 "/nonexistent: no such file or folder" "$SLM" quantize /nonexistent -o "$T/x.gguf" --type Q8_0
"$BUILD/mksynth" "$T/nan" --dim 64 --ff 128 --layers 1 --heads 4 --kv-heads 2 --dtype f32 --shards 1 \
    --tokenizer-from "$S260" --nan 7:300 > /dev/null || fail "mksynth"
expect 1 "tensor 'model.layers.0.mlp.gate_proj.weight' (rows from 0): NaN at index 300 (row 4, column 44)" \
    "$SLM" quantize "$T/nan" -o "$T/x.gguf" --type Q8_0; one_line; no_file "$T/x.gguf"
# NaN/Inf also when the type does not change (convert, --type F32) and in 1-D norms (issue 8)
expect 1 "tensor 'model.layers.0.mlp.gate_proj.weight': NaN or Inf at row 4, column 44" \
    "$SLM" convert "$T/nan" -o "$T/x.gguf"; one_line; no_file "$T/x.gguf"
expect 1 "tensor 'model.layers.0.mlp.gate_proj.weight': NaN or Inf at row 4, column 44" \
    "$SLM" quantize "$T/nan" -o "$T/x.gguf" --type F32; one_line; no_file "$T/x.gguf"
"$BUILD/mksynth" "$T/nannorm" --dim 64 --ff 128 --layers 1 --heads 4 --kv-heads 2 --dtype f32 --shards 1 \
    --tokenizer-from "$S260" --nan 1:5 > /dev/null || fail "mksynth"
for ty in Q4_0 Q8_0 F16; do
    expect 1 "tensor 'model.layers.0.input_layernorm.weight': NaN or Inf at row 0, column 5" \
        "$SLM" quantize "$T/nannorm" -o "$T/x.gguf" --type $ty; one_line; no_file "$T/x.gguf"
done
expect 1 "$T/nan/model.safetensors: tensor 'blk.0.ffn_gate.weight': non-finite values (NaN/Inf)" \
    "$SLM" eval "$T/nan" --text "$FIX/text/tinystories_val.txt" --ctx 32 --chunks 1; one_line
# a non-finite weight is the model's fault, not the text's; huge finite weights are an error, not "PPL nan"
expect 1 "$T/nannorm/model.safetensors: tensor 'model.layers.0.input_layernorm.weight': non-finite value nan" \
    "$SLM" eval "$T/nannorm" --text "$FIX/text/tinystories_val.txt" --ctx 32 --chunks 1; one_line
"$BUILD/mksynth" "$T/huge" --dim 64 --ff 128 --layers 1 --heads 4 --kv-heads 2 --dtype f32 --shards 1 \
    --tokenizer-from "$S260" --scale 10:1e30 > /dev/null || fail "mksynth"
expect 1 "$T/huge: the perplexity overflows (mean NLL 2.71e+30 nats per token)" \
    "$SLM" eval "$T/huge" --text "$FIX/text/tinystories_val.txt" --ctx 32 --chunks 1 --convention all; one_line
rm -rf "$T/huge"; "$BUILD/mksynth" "$T/huge" --dim 64 --ff 128 --layers 1 --heads 4 --kv-heads 2 --dtype f32 --shards 1 \
    --tokenizer-from "$S260" --scale 10:1e38 > /dev/null || fail "mksynth"
expect 1 "$T/huge: window 0, position 1: the logits are not finite (NaN/Inf)" \
    "$SLM" eval "$T/huge" --text "$FIX/text/tinystories_val.txt" --ctx 32 --chunks 1 --convention all; one_line


# distill (issue 12): resume bit for bit, any thread count, NaN stop keeps the checkpoint, refusals
"$SLM" prune "$TS3" --method ffn --sparsity 0.25 --uniform -o "$T/d-st.gguf" 2>/dev/null
head -c 40000 "$FIX/text/tinystories_val.txt" > "$T/d-train.txt"
D="$SLM distill --teacher $TS3 --text $T/d-train.txt --ctx 64 --batch 2 --lr 3e-4 --steps 8"
expect 0 '' $D --student "$T/d-st.gguf" -o "$T/d-a.gguf"
expect 0 '' $D --student "$T/d-st.gguf" -o "$T/d-b1.gguf" --tokens 512 --checkpoint "$T/d-ck"
cp "$T/d-ck" "$T/d-ck4"
expect 0 '' $D --student "$T/d-st.gguf" -o "$T/d-b2.gguf" --resume "$T/d-ck" --checkpoint "$T/d-ck"
cmp -s "$T/d-a.gguf" "$T/d-b2.gguf" || fail "distill: 4 steps + --resume + 4 steps differs from 8 steps"
cmp -s "$T/d-a.gguf" "$T/d-b1.gguf" && fail "distill: --tokens 512 did not stop early"
cmp -s "$T/d-a.gguf" "$T/d-st.gguf" && fail "distill: the student did not change"
expect 0 '' $D --student "$T/d-st.gguf" -o "$T/d-t1.gguf" -t 1
cmp -s "$T/d-a.gguf" "$T/d-t1.gguf" || fail "distill: 1 thread differs from 2"
expect 1 "is not finite" $D --student "$T/d-st.gguf" -o "$T/d-n.gguf" --lr 10 --clip 0 --steps 40 --checkpoint "$T/d-ckn" --checkpoint-every 1
one_line; no_file "$T/d-n.gguf"
grep -q "the last good checkpoint is $T/d-ckn (step" "$T/err" || fail "distill NaN: no last good checkpoint named: $(cat "$T/err")"
expect 0 '' $D --student "$T/d-st.gguf" -o "$T/d-n.gguf" --steps 40 --resume "$T/d-ckn" --tokens 1 # loads, writes its weights
"$SLM" quantize "$T/d-st.gguf" --type Q8_0 -o "$T/d-q8.gguf" 2>/dev/null
expect 1 "a quantized student cannot be trained" $D --student "$T/d-q8.gguf" -o "$T/d-x.gguf"; one_line; no_file "$T/d-x.gguf"
"$BUILD/mksynth" "$T/d-v1024" --dim 64 --ff 128 --layers 1 --heads 2 --kv-heads 2 --vocab 1024 --shards 1 --tokenizer-from "$TS3" >/dev/null
expect 1 "has 512 tokens, $T/d-v1024 1024: distillation needs one vocabulary" $D --student "$T/d-v1024" -o "$T/d-x.gguf"; one_line; no_file "$T/d-x.gguf"
expect 1 "not an slm distill checkpoint" $D --student "$T/d-st.gguf" -o "$T/d-x.gguf" --resume "$T/d-train.txt"; one_line; no_file "$T/d-x.gguf"
expect 1 "made for another student" $D --student "$T/d-st.gguf" -o "$T/d-x.gguf" --resume "$T/d-ck4" --batch 3; one_line
expect 2 "needs --teacher MODEL" "$SLM" distill --student "$T/d-st.gguf" -o "$T/d-x.gguf"
expect 2 "quality gates need an evaluation" $D --student "$T/d-st.gguf" -o "$T/d-x.gguf" --max-kld 1
# out of disk while checkpointing: the checkpoint resumed from is intact, no output
cp "$T/d-ck4" "$T/d-ck0"
out=$( (trap '' XFSZ; ulimit -f 20000; $D --student "$T/d-st.gguf" -o "$T/d-x.gguf" --resume "$T/d-ck4" --checkpoint "$T/d-ck4" --checkpoint-every 1) 2>&1 ); rc=$?
[ $rc = 1 ] && echo "$out" | grep -q "checkpoint at step 5: .*File too large; $T/d-ck4 is unchanged" || fail "distill out of disk: rc $rc: $out"
cmp -s "$T/d-ck4" "$T/d-ck0" || fail "distill out of disk: the checkpoint changed"; no_file "$T/d-x.gguf"
# --teacher-cache: made once, reused (the teacher's forward skipped); top-k = V trains as the full KL
expect 0 "eval $T/small.txt: PPL" $D --student "$T/d-st.gguf" -o "$T/d-c0.gguf" --steps 4 --eval-text "$T/small.txt" --eval-ctx 64 -v
grep "^eval" "$T/err" > "$T/d-c0.txt"
expect 0 '' $D --student "$T/d-st.gguf" -o "$T/d-c1.gguf" --steps 4 --teacher-cache "$T/d-tc" --cache-topk 512
[ -s "$T/d-tc" ] || fail "distill --teacher-cache: no cache written"
cp "$T/d-tc" "$T/d-tc0"
expect 0 "eval $T/small.txt: PPL" $D --student "$T/d-st.gguf" -o "$T/d-c2.gguf" --steps 4 --teacher-cache "$T/d-tc" --eval-text "$T/small.txt" --eval-ctx 64 -v
grep "^eval" "$T/err" > "$T/d-c2.txt"
cmp -s "$T/d-tc" "$T/d-tc0" || fail "distill --teacher-cache: an existing cache was rewritten"
cmp -s "$T/d-c0.txt" "$T/d-c2.txt" || fail "distill --teacher-cache top-512: $(cat "$T/d-c2.txt") vs the teacher's forward: $(cat "$T/d-c0.txt")"
expect 1 "made with --ctx 64 (not 32)" $D --student "$T/d-st.gguf" -o "$T/d-x.gguf" --teacher-cache "$T/d-tc" --ctx 32; one_line; no_file "$T/d-x.gguf"
expect 1 "made at --temperature 1 (not 2)" $D --student "$T/d-st.gguf" -o "$T/d-x.gguf" --teacher-cache "$T/d-tc" --temperature 2; one_line
expect 1 "made from another teacher" $D --student "$T/d-st.gguf" -o "$T/d-x.gguf" --teacher-cache "$T/d-tc" --teacher "$S260"; one_line
head -c 100000 "$T/d-tc0" > "$T/d-tct"
expect 1 "not an slm teacher cache (or truncated)" $D --student "$T/d-st.gguf" -o "$T/d-x.gguf" --teacher-cache "$T/d-tct"; one_line
cp "$T/d-tc0" "$T/d-tcd" # window 1's offset in the index overwritten
ix=$(od -An -t u8 -j $(($(wc -c < "$T/d-tcd") - 16)) -N 8 "$T/d-tcd" | tr -d ' ')
printf '\377\377\377\377\377\377\377\177' | dd of="$T/d-tcd" bs=1 seek=$((ix + 8)) conv=notrunc 2>/dev/null
expect 1 "damaged teacher cache index" $D --student "$T/d-st.gguf" -o "$T/d-x.gguf" --teacher-cache "$T/d-tcd"; one_line; no_file "$T/d-x.gguf"
expect 1 "serves the forward KL (--loss fkl) only" $D --student "$T/d-st.gguf" -o "$T/d-x.gguf" --teacher-cache "$T/d-tc" --loss jsd; one_line
# --feature-weight: 0 changes nothing (same bytes), > 0 trains on the hidden states too; depth must match
expect 0 '' $D --student "$T/d-st.gguf" -o "$T/d-f0.gguf" --feature-weight 0
cmp -s "$T/d-a.gguf" "$T/d-f0.gguf" || fail "distill --feature-weight 0 changed the result"
expect 0 '' $D --student "$T/d-st.gguf" -o "$T/d-f1.gguf" --feature-weight 1
cmp -s "$T/d-a.gguf" "$T/d-f1.gguf" && fail "distill --feature-weight 1 changed nothing"
"$SLM" prune "$TS3" --method layers --sparsity 0.25 --calib-text "$T/d-train.txt" --uniform -o "$T/d-lay.gguf" 2>/dev/null
expect 1 "the student needs the teacher's width and depth (4 x 256, not 3 x 256)" $D --student "$T/d-lay.gguf" -o "$T/d-x.gguf" --feature-weight 1
one_line; no_file "$T/d-x.gguf"
# a quantized teacher; a 2:4 student stays 2:4 (masked updates), read back from the file
"$SLM" quantize "$TS3" --type Q4_K_M -o "$T/d-tq.gguf" 2>/dev/null
expect 0 '' $D --student "$T/d-st.gguf" --teacher "$T/d-tq.gguf" -o "$T/d-fromq.gguf" --steps 2
"$SLM" prune "$S260" -o "$T/d-24.gguf" --nm 2:4 2>/dev/null
expect 0 '' "$SLM" distill --teacher "$S260" --student "$T/d-24.gguf" --text "$T/d-train.txt" --ctx 64 --batch 2 --steps 4 --lr 1e-3 -o "$T/d-24d.gguf"
cmp -s "$T/d-24.gguf" "$T/d-24d.gguf" && fail "distill 2:4: the student did not change"
[ "$(nm_groups "$T/d-24d.gguf")" = "56640 0" ] || fail "distill 2:4: groups/bad = $(nm_groups "$T/d-24d.gguf")"
# held-out evaluation, gates, report, HF output
expect 0 "held-out PPL" $D --student "$T/d-st.gguf" -o "$T/d-e.gguf" --eval-text "$T/small.txt" --eval-ctx 64 --eval-every 4 --report "$T/d-e.json" --report-dir "$T/d-rep" -v
[ "$(grep -c '"eval":[[:space:]]*true' "$T/d-e.json")" = 3 ] || fail "distill report: not 3 evaluation points"
[ "$(grep -c '"grad_norm"' "$T/d-e.json")" = 8 ] || fail "distill report: not 8 step points"
grep -q '"command":[[:space:]]*"distill"' "$T/d-e.json" || fail "distill report: command"
[ "$(grep -c '<polyline' "$T/d-rep/report.html")" -ge 4 ] && grep -q "Held-out perplexity over training" "$T/d-rep/report.html" ||
    fail "distill report.html: no training charts"
grep -q '^| 8 | 1024 |' "$T/d-rep/report.md" || fail "distill report.md: no evaluation row for step 8"
expect 3 "gate max_kld failed" $D --student "$T/d-st.gguf" -o "$T/d-e.gguf" --eval-text "$T/small.txt" --eval-ctx 64 --max-kld 1e-9 -f
[ -e "$T/d-e.gguf" ] || fail "distill: a failed gate removed the output"
"$SLM" prune "$TS3" --method ffn --sparsity 0.25 --uniform --format hf -o "$T/d-sthf" 2>/dev/null
expect 0 '' $D --student "$T/d-sthf" -o "$T/d-hf" --format hf
expect 0 '' "$SLM" convert "$T/d-hf" -o "$T/d-hf.gguf"
expect 0 '' $D --student "$T/d-sthf" -o "$T/d-hf2.gguf"
tensor_sums "$T/d-hf.gguf" > "$T/sa"; tensor_sums "$T/d-hf2.gguf" > "$T/sb"
cmp -s "$T/sa" "$T/sb" || fail "distill --format hf: tensors differ from the GGUF output's"

# ---- malformed files: every fixtures/corrupt case, through inspect (files) or convert (folders)
while IFS="$(printf '\t')" read -r path kind code msg; do
    case "$path" in "#"*|"") continue ;; esac
    f="fixtures/corrupt/$path"
    if [ "$kind" = model ]; then
        [ "$code" = OK ] && continue
        expect 1 "$msg" "$SLM" convert "$f" -o "$T/bad.gguf"; one_line; no_file "$T/bad.gguf"
    elif [ "$code" = OK ]; then
        expect 0 '' "$SLM" inspect "$f"
    else
        expect 1 "$msg" "$SLM" inspect "$f"; one_line
        grep -qF "$f" "$T/err" || fail "error for $f does not name the file"
    fi
done < fixtures/corrupt/MANIFEST

# ---- FIFOs as inputs: refused at once ("not a regular file", status 1), never a hang in open()
# (timeout turns a hang into status 124)
F="$T/fifo"; mkdir -p "$F/cfg" "$F/shard" "$F/index" "$F/tok"
A260=$(cd "$S260" && pwd); A3M=$(cd "$FIX/models/tinystories-3M-sharded" && pwd) # symlink targets
mkfifo "$F/x.gguf" "$F/x" "$F/x.safetensors" "$F/text.txt" "$F/r.json" "$F/cfg/config.json" "$F/shard/model.safetensors" \
    "$F/index/model-00002-of-00002.safetensors" "$F/tok/tokenizer.model"
for f in model.safetensors tokenizer.model tokenizer_config.json; do ln -s "$A260/$f" "$F/cfg/$f"; done
for f in config.json tokenizer.model tokenizer_config.json; do ln -s "$A260/$f" "$F/shard/$f"; done
for f in config.json tokenizer.model tokenizer_config.json model.safetensors.index.json model-00001-of-00002.safetensors; do
    ln -s "$A3M/$f" "$F/index/$f"; done
for f in config.json model.safetensors tokenizer_config.json; do ln -s "$A260/$f" "$F/tok/$f"; done
expect 1 "$F/cfg/config.json: not a regular file" timeout 10 "$SLM" convert "$F/cfg" -o "$T/x.gguf"; one_line; no_file "$T/x.gguf"
expect 1 "$F/shard/model.safetensors: not a regular file" timeout 10 "$SLM" convert "$F/shard" -o "$T/x.gguf"; one_line
expect 1 "model-00002-of-00002.safetensors: not a regular file" timeout 10 "$SLM" quantize "$F/index" -o "$T/x.gguf" --type Q8_0; one_line
expect 1 "$F/tok/tokenizer.model: not a regular file" timeout 10 "$SLM" convert "$F/tok" -o "$T/x.gguf"; one_line; no_file "$T/x.gguf"
expect 1 "$F/text.txt: not a regular file" timeout 10 "$SLM" eval "$S260" --text "$F/text.txt"; one_line
expect 1 "$F/text.txt: not a regular file" timeout 10 "$SLM" eval "$S260" --tokens-in "$F/text.txt"; one_line
expect 1 "$F/r.json: not a regular file" timeout 10 "$SLM" report "$F/r.json" -o "$T/fifo-rep"; one_line
expect 1 "$F/x.gguf: not a regular file" timeout 10 "$SLM" inspect "$F/x.gguf"; one_line
expect 1 "$F/x.gguf: not a regular file" timeout 10 "$SLM" eval "$F/x.gguf" --text "$FIX/text/tinystories_val.txt"; one_line
expect 1 "$F/x.gguf: not a regular file" timeout 10 "$SLM" eval "$S260" --ref "$F/x.gguf" --text "$FIX/text/tinystories_val.txt"; one_line
expect 1 "$F/x: not a regular file" timeout 10 "$SLM" inspect "$F/x"; one_line
expect 1 "$F/x.safetensors: not a regular file" timeout 10 "$SLM" inspect "$F/x.safetensors"; one_line

# ---- eval and generate ---------------------------------------------------------------------------
expect 2 "slm eval: missing --text FILE" "$SLM" eval "$S260"
expect 1 "/nonexistent.txt: No such file or directory" "$SLM" eval "$S260" --text /nonexistent.txt; one_line
expect 0 '' "$SLM" eval "$S260" --text "$FIX/text/tinystories_val.txt" --ctx 64 --chunks 3 --json
expect_stdout '"ppl":'
expect 0 '' "$SLM" generate "$S260" -p "Once upon a time" -n 200
n_out=$(($(wc -c < "$T/out") - 1)) # without the final newline generate adds
head -c "$n_out" "$T/out" > "$T/gen.txt"
head -c "$n_out" "$FIX/reference/stories260K.runc_greedy.txt" > "$T/ref.txt"
[ "$n_out" -gt 400 ] && cmp -s "$T/gen.txt" "$T/ref.txt" ||
    fail "slm generate: 200 greedy tokens are not run.c's text"

# ---- dry run: the exact size, nothing written --------------------------------------------------
expect 0 '' "$SLM" quantize "$FIX/models/tinystories-3M" --type Q4_K_M --dry-run -o "$T/dry.gguf"
no_file "$T/dry.gguf"
size=$(sed -n 's/^output size: \([0-9]*\) bytes$/\1/p' "$T/out")
grep -q "blk.2.ffn_down.weight .*Q6_K" "$T/out" || fail "dry run table lacks the ffn_down type"
expect 0 '' "$SLM" quantize "$FIX/models/tinystories-3M" --type Q4_K_M -o "$T/t.gguf" --report "$T/r.json"
[ "$size" = "$(wc -c < "$T/t.gguf" | tr -d ' ')" ] || fail "dry-run size $size != real size"
grep -q '"slm-report/1"' "$T/r.json" && grep -q '"rel_rmse"' "$T/r.json" || fail "report lacks keys"
expect 0 '' "$SLM" quantize "$FIX/models/tinystories-3M" --type Q8_0 -o "$T/t8.gguf" --report-dir "$T/rep8"
for f in report.json report.md report.html; do [ -s "$T/rep8/$f" ] || fail "--report-dir did not write $f"; done
grep -q "<svg" "$T/rep8/report.html" || fail "report.html has no chart"
expect 0 '' "$SLM" report "$T/r.json" "$T/rep8/report.json" -o "$T/cmp"
grep -q "Q4_K_M" "$T/cmp/report.md" && grep -q "Q8_0" "$T/cmp/report.md" || fail "comparison lacks a run"
expect 1 "already exists" "$SLM" report "$T/r.json" -o "$T/cmp"
# an eval report of a quantized file merges into that file's quantize run
"$SLM" eval "$T/t8.gguf" --text "$FIX/text/tinystories_val.txt" --ctx 128 --chunks 4 --report-dir "$T/ev8" || fail "eval"
expect 0 '' "$SLM" report "$T/rep8/report.json" "$T/ev8/report.json" -o "$T/merged"
[ -f "$T/merged/report.json" ] && [ ! -f "$T/merged/reports.json" ] || fail "eval report was not merged into its quantize run"
grep -q '"ppl"' "$T/merged/report.json" && grep -q '"rel_rmse"' "$T/merged/report.json" || fail "merged run lacks size or quality"
expect 1 "t8.gguf: not valid JSON" "$SLM" report "$T/t8.gguf" -o "$T/cmp2"; one_line
echo "{\"format\": \"other\"}" > "$T/o.json"
expect 1 "o.json: not an slm report" "$SLM" report "$T/o.json" -o "$T/cmp2"

# ---- the first hour (issue 13): what a new user, used to llama.cpp, trips over -------------------
TS="$FIX/models/tinystories-3M"
# --report-dir refuses an existing report without -f, like every other output, and leaves nothing
expect 1 "rep8/report.json: already exists (use -f to overwrite)" "$SLM" quantize "$TS" --type Q8_0 -o "$T/fh.gguf" --report-dir "$T/rep8"
one_line; no_file "$T/fh.gguf"
expect 1 "report.json: already exists" "$SLM" quantize "$TS" --type Q8_0 --dry-run --report-dir "$T/rep8"
expect 0 '' "$SLM" quantize "$TS" --type Q8_0 -o "$T/fh.gguf" --report-dir "$T/rep8" -f
rm -f "$T/fh.gguf"
# --tensor-type takes llama.cpp's (ECMAScript) patterns, searched in the name, lowercased as llama-quantize does
expect 0 '' "$SLM" quantize "$TS" --type Q8_0 --dry-run --tensor-type 'blk\.\d+\.attn_q=Q4_0' --tensor-type 'BLK\.(?:0|1)\.ffn_(?:up|gate)=Q5_0'
[ "$(grep -c 'attn_q.weight .* Q4_0 ' "$T/out")" = 4 ] || fail "'blk\\.\\d+\\.attn_q' did not select the 4 attn_q tensors"
[ "$(grep -c 'ffn_\(up\|gate\).weight .* Q5_0 ' "$T/out")" = 4 ] || fail "'(?:0|1)' groups did not select blk.0/1 ffn_up/gate"
expect 0 "slm: warning: --tensor-type 'attn_qq=Q4_0' matches no quantizable tensor" \
    "$SLM" quantize "$TS" --type Q8_0 --dry-run --tensor-type 'attn_qq=Q4_0'; one_line
expect 2 "'attn(?=_q)': lookahead (?= or (?! (at offset 4) is not supported" \
    "$SLM" quantize "$TS" --type Q8_0 -o "$T/fh.gguf" --tensor-type 'attn(?=_q)=Q4_0'; no_file "$T/fh.gguf"
# an eval report shows the evaluated file's size, and the reference's as its source
"$SLM" eval "$T/t8.gguf" --ref "$TS" --text "$FIX/text/tinystories_val.txt" --ctx 128 --chunks 2 --report-dir "$T/ev8r" -q || fail "eval --ref"
grep -q '| compression | 3.76× smaller |' "$T/ev8r/report.md" || fail "eval report: $(grep compression "$T/ev8r/report.md")"
grep -q 'smaller' "$T/ev8/report.md" && fail "eval report without a reference claims a compression"
# per-tensor rows answer "which tensors hurt": largest rel. RMSE first; 1-D F32 tensors off the
# charts' bpw scale; the long table scrolls; a dry run shows dashes (not 0) for errors it did not compute
sed -n 's/^| [0-9]* | \([^ ]*\) | .* | \([0-9.e+-]*\) | [0-9.e+-]* | .*|$/\2 \1/p' "$T/rep8/report.md" > "$T/rows"
[ "$(wc -l < "$T/rows")" = 39 ] && sort -s -k1,1gr "$T/rows" | cmp -s - "$T/rows" || fail "tensor rows not sorted by rel. RMSE: $(head -3 "$T/rows")"
grep -q '<div class="wide tall"><table class="tensors">' "$T/rep8/report.html" || fail "report.html: the tensor table does not scroll"
sed -n '/^Largest rel. RMSE (in any run) first./,$s/^| [^ ]* | [^ ]* \([0-9.e+-]*\) | .*/\1/p' "$T/cmp/report.md" > "$T/mrows"
[ "$(wc -l < "$T/mrows")" = 39 ] && sort -s -gr "$T/mrows" | cmp -s - "$T/mrows" || fail "slm report: per-tensor matrix not by error: $(head -2 "$T/mrows")"
grep -q '>output_norm.weight</text>' "$T/rep8/report.html" && fail "report.html: a 1-D F32 tensor sets the bpw chart's scale"
expect 0 '' "$SLM" quantize "$TS" --type Q4_K_M --dry-run --report-dir "$T/repdry"
grep -q '| 1 | output.weight | F32 → Q6_K | 512×256 | 131072 | 105.0 KiB | 6.56 | — | — | |' "$T/repdry/report.md" || fail "dry-run report: $(grep output.weight "$T/repdry/report.md")"
grep -q '"rel_rmse":	null' "$T/repdry/report.json" || fail "dry-run report.json: rel_rmse not null"
grep -q 'Relative RMSE per tensor' "$T/repdry/report.html" && fail "dry-run report.html charts errors it did not compute"
grep -q 'output.weight .* Q6_K .* 6.56 *- *-$' "$T/out" || fail "dry-run table: $(grep output.weight "$T/out")"
"$SLM" eval "$TS" --ref "$TS" --text "$FIX/text/tinystories_val.txt" --ctx 128 --chunks 2 --report-dir "$T/evsame" -q || fail "eval same"
grep -q '| mean KLD | 0.000000 |' "$T/evsame/report.md" && ! grep -q '± 0.0000' "$T/evsame/report.md" || fail "eval report prints '± 0': $(grep '± 0.0000' "$T/evsame/report.md")"
# llama-quantize's habits: positional IN OUT TYPE [N] gets the slm spelling; no -o: its default name
expect 2 "unexpected argument '$T/fhq.gguf'; did you mean: slm quantize $T/s.gguf -o $T/fhq.gguf --type Q4_K_M" \
    "$SLM" quantize "$T/s.gguf" "$T/fhq.gguf" Q4_K_M; no_file "$T/fhq.gguf"
expect 2 "did you mean: slm quantize $T/s.gguf --type q8_0 -t 2" "$SLM" quantize "$T/s.gguf" q8_0 2
mkdir -p "$T/dflt" && cp "$T/s.gguf" "$T/dflt/in.gguf"
expect 0 '' "$SLM" quantize "$T/dflt/in.gguf" --type q4_0
[ -s "$T/dflt/ggml-model-Q4_0.gguf" ] || fail "no -o: ggml-model-Q4_0.gguf not written next to the input: $(ls "$T/dflt")"
expect 1 "ggml-model-Q4_0.gguf: already exists (use -f to overwrite)" "$SLM" quantize "$T/dflt/in.gguf" --type Q4_0
cp -r "$S260" "$T/dflt/m260"
expect 0 '' "$SLM" quantize "$T/dflt/m260" --type Q8_0
[ -s "$T/dflt/m260/ggml-model-Q8_0.gguf" ] || fail "no -o for a folder: ggml-model-Q8_0.gguf not written inside it"
# make demo without the fixtures: a hint, not a raw tail error
expect 1 "demo: $T/nowhere/text/tinystories_val.txt not found: make demo needs the fixtures" \
    env SLM="$SLM" FIX="$T/nowhere" MODEL="$T/nowhere/models/tinystories-3M" OUT="$T/demo" sh tests/demo.sh; one_line
grep -q "tail:" "$T/err" && fail "make demo: raw tail error"
# make install / uninstall into a staging folder: the binary, aliases and the man page, then nothing
D="$T/destdir"
${MAKE:-make} -s --no-print-directory install DESTDIR="$D" PREFIX=/usr BUILD="$BUILD" > "$T/out" 2> "$T/err" || fail "make install: $(cat "$T/err")"
(cd "$D" && find . ! -type d | sort) > "$T/installed"
want="./usr/bin/slm ./usr/share/man/man1/slm.1"
for a in $(cd "$BUILD" && ls slm-*[a-z] 2>/dev/null); do want="$want ./usr/bin/$a ./usr/share/man/man1/$a.1"; done
[ "$(printf '%s\n' $want | sort)" = "$(cat "$T/installed")" ] || fail "make install put: $(cat "$T/installed" | tr '\n' ' ')"
"$D/usr/bin/slm-quantize" --help | grep -q "usage: slm quantize" || fail "installed slm-quantize does not run"
grep -q '^\.TH SLM 1' "$D/usr/share/man/man1/slm.1" && grep -q '^\.B \\-\\-tensor\\-type REGEX=TYPE' "$D/usr/share/man/man1/slm.1" ||
    fail "slm.1 lacks the header or quantize's option table"
if command -v man > /dev/null; then
    MANWIDTH=80 man -l "$D/usr/share/man/man1/slm.1" 2> "$T/err" | grep -q "SLM(1)" && [ ! -s "$T/err" ] || fail "man -l slm.1: $(head -3 "$T/err")"
fi
${MAKE:-make} -s --no-print-directory uninstall DESTDIR="$D" PREFIX=/usr BUILD="$BUILD" > /dev/null || fail "make uninstall"
[ -z "$(cd "$D" && find . ! -type d)" ] || fail "make uninstall left: $(cd "$D" && find . ! -type d | tr '\n' ' ')"
n=$((n + 4))

# ---- calibrate, quantize --calibration / --method (issue 10) -----------------------------------
head -c 20000 "$FIX/text/tinystories_val.txt" > "$T/cal.txt"
expect 0 '' "$SLM" calibrate "$S260" --text "$T/cal.txt" -o "$T/st.gguf" --ctx 64 --chunks 4 -t 1
expect 0 '' "$BUILD/slm-calibrate" "$S260" --text "$T/cal.txt" -o "$T/st2.gguf" --ctx 64 --chunks 4 -t 2
cmp -s "$T/st.gguf" "$T/st2.gguf" || fail "calibrate: 1 and 2 threads differ"
expect 0 '' "$SLM" inspect "$T/st.gguf"; expect_stdout "blk.0.attn_q.weight.gram"; expect_stdout "imatrix.chunk_size"
expect 0 '' "$SLM" quantize "$S260" -o "$T/awq1.gguf" --type Q4_0 --calibration "$T/st.gguf" --method awq --report "$T/awq.json" -t 1
grep -q '"method":	"awq"' "$T/awq.json" || fail "report lacks method awq"
grep -q '"method_params":	"alpha_grid=20' "$T/awq.json" || fail "report lacks the AWQ parameters"
expect 0 '' "$SLM" quantize "$S260" -o "$T/awq2.gguf" --type Q4_0 --calibration "$T/st.gguf" --method awq -t 2
cmp -s "$T/awq1.gguf" "$T/awq2.gguf" || fail "awq: 1 and 2 threads differ"
expect 0 '' "$SLM" quantize "$S260" -o "$T/imx.gguf" --type Q4_0 --calibration "$T/st.gguf" --method imatrix
expect 0 '' "$SLM" quantize "$S260" -o "$T/imx2.gguf" --type Q4_0 --imatrix "$T/st.gguf"
cmp -s "$T/imx.gguf" "$T/imx2.gguf" || fail "--calibration --method imatrix differs from --imatrix"
cmp -s "$T/imx.gguf" "$T/awq1.gguf" && fail "awq gave the imatrix bytes"
rm -f "$T/awq1.gguf" "$T/awq2.gguf" "$T/imx.gguf" "$T/imx2.gguf" "$T/st2.gguf"
# AWQ's folding (norms, GQA v -> o, up -> down) leaves the float model's output unchanged: F32 out, alpha 0.5
"$SLM" convert "$S260" -o "$T/f32.gguf" || fail "convert"
expect 0 '' "$SLM" quantize "$T/f32.gguf" -o "$T/fold.gguf" --type F32 --calibration "$T/st.gguf" --method awq --awq-alpha 0.5 --report "$T/fold.json"
grep -q '"method_params":	"alpha=0.5 groups=20 ' "$T/fold.json" || fail "fold: not 20 groups folded: $(grep method_params "$T/fold.json")"
cmp -s "$T/f32.gguf" "$T/fold.gguf" && fail "fold: weights unchanged"
"$SLM" eval "$T/fold.gguf" --ref "$T/f32.gguf" --text "$T/cal.txt" --ctx 128 --chunks 4 --json > "$T/fold.eval" || fail "eval fold"
awk '/"kld_max"/ {gsub(/[^0-9.e+-]/, ""); ok = ($0 + 0 < 1e-6)} END {exit !ok}' "$T/fold.eval" || fail "fold: KLD vs the unfolded model $(grep kld_max "$T/fold.eval")"
rm -f "$T/f32.gguf" "$T/fold.gguf" "$T/fold.json" "$T/fold.eval"
expect 2 "--imatrix and --calibration exclude each other" "$SLM" quantize "$S260" -o "$T/x.gguf" --type Q4_0 --imatrix "$T/st.gguf" --calibration "$T/st.gguf"
expect 2 "--method gptq needs calibration statistics" "$SLM" quantize "$S260" -o "$T/x.gguf" --type Q4_0 --method gptq
expect 2 "--method awq needs calibration statistics" "$SLM" quantize "$S260" -o "$T/x.gguf" --type Q4_0 --method awq
expect 2 "'frob' is not one of rtn, imatrix, awq, gptq, awq+gptq" "$SLM" quantize "$S260" -o "$T/x.gguf" --type Q4_0 --method frob
# bad calibration input: one line naming the file, status 1, no output
: > "$T/empty.txt"
expect 1 "empty.txt: empty calibration text" "$SLM" calibrate "$S260" --text "$T/empty.txt" -o "$T/x.gguf"; one_line; no_file "$T/x.gguf"
head -c 300 "$T/cal.txt" > "$T/short.txt"
expect 1 "short.txt: 152 tokens, fewer than one chunk of 512" "$SLM" calibrate "$S260" --text "$T/short.txt" -o "$T/x.gguf"; one_line; no_file "$T/x.gguf"
printf 'Once upon a time\377\376 there was' > "$T/bin.txt"
expect 1 "bin.txt: not UTF-8 text (invalid byte at offset 16)" "$SLM" calibrate "$S260" --text "$T/bin.txt" -o "$T/x.gguf"; one_line; no_file "$T/x.gguf"
expect 1 "tinystories-3M.calib40.imatrix.gguf: entry 'blk.0.attn_k.weight' (1 x 256 values) is no matmul of this model: imatrix from another model?" \
    "$SLM" quantize "$S260" -o "$T/x.gguf" --type Q4_0 --calibration "$IM"; one_line; no_file "$T/x.gguf"
# non-finite statistics: a NaN in the first in_sum2, then in the first Gram matrix
"$SLM" inspect "$T/st.gguf" --json > "$T/st.json"
data=$(grep '"data_offset"' "$T/st.json" | tr -dc 0-9)
gram=$(awk '/\.gram"/ {g = 1} g && /"offset"/ {gsub(/[^0-9]/, ""); print; exit}' "$T/st.json")
cp "$T/st.gguf" "$T/nan1.gguf"; cp "$T/st.gguf" "$T/nan2.gguf"
printf '\000\000\300\177' | dd of="$T/nan1.gguf" bs=1 seek="$data" conv=notrunc 2>/dev/null
printf '\000\000\300\177' | dd of="$T/nan2.gguf" bs=1 seek=$((data + gram + 4)) conv=notrunc 2>/dev/null
expect 1 "nan1.gguf: entry 'blk.0.attn_k.weight': in_sum2[0] is nan" "$SLM" quantize "$S260" -o "$T/x.gguf" --type Q4_0 --calibration "$T/nan1.gguf"
one_line; no_file "$T/x.gguf"
expect 1 "nan2.gguf: " "$SLM" quantize "$S260" -o "$T/x.gguf" --type Q4_0 --calibration "$T/nan2.gguf"; one_line; no_file "$T/x.gguf"
grep -q "gram" "$T/err" || fail "non-finite Gram: the message does not name the Gram matrix: $(cat "$T/err")"
expect 0 '' "$SLM" quantize "$S260" -o "$T/g1.gguf" --type Q4_0 --calibration "$T/st.gguf" --method awq+gptq -t 1 --report "$T/g.json"
grep -q '"method":	"awq+gptq"' "$T/g.json" || fail "report lacks method awq+gptq"
grep -q 'damp=0.01 block=128 act_order=1' "$T/g.json" || fail "report lacks the GPTQ parameters"
expect 0 '' "$SLM" quantize "$S260" -o "$T/g3.gguf" --type Q4_0 --calibration "$T/st.gguf" --report "$T/g3.json"
grep -q '"method":	"gptq"' "$T/g3.json" || fail "--calibration's default method is not gptq"
rm -f "$T/g3.gguf" "$T/g3.json"
expect 0 '' "$SLM" quantize "$S260" -o "$T/g2.gguf" --type Q4_0 --calibration "$T/st.gguf" --method awq+gptq -t 2
cmp -s "$T/g1.gguf" "$T/g2.gguf" || fail "awq+gptq: 1 and 2 threads differ"
rm -f "$T/g1.gguf" "$T/g2.gguf" "$T/g.json"
rm -f "$T/nan1.gguf" "$T/nan2.gguf" "$T/st.json"

# ---- quality gates, recipe files, manifest, packed files (issue 14) -----------------------------
TXT="$T/heldout.txt"; tail -c +676506 "$FIX/text/tinystories_val.txt" | head -c 20000 > "$TXT"
expect 2 "quality gates compare with a reference: add --ref" "$SLM" eval "$S260" --text "$TXT" --max-kld 0.1
expect 2 "quality gates need an evaluation: add --eval-text FILE" "$SLM" quantize "$S260" -o "$T/g.gguf" --type Q4_0 --max-kld 0.1
expect 2 "option '--min-top1': '2' is not a number in [0, 1]" "$SLM" eval "$S260" --text "$TXT" --ref "$S260" --min-top1 2
# a failed gate: status 3, the output kept, the report says which gate and by how much
expect 3 "gate max_kld failed: kld_mean " "$SLM" quantize "$S260" -o "$T/g.gguf" --type Q4_0 --eval-text "$TXT" --eval-ctx 64 \
    --eval-chunks 2 --max-kld 1e-6 --min-top1 0.1 --report "$T/g.json"; one_line
[ -s "$T/g.gguf" ] || fail "gate: output not kept"
grep -q '"gate":[[:space:]]*"max_kld"' "$T/g.json" && grep -q '"gates_passed":[[:space:]]*false' "$T/g.json" || fail "gate: report lacks gates"
grep -q '"kld_mean"' "$T/g.json" || fail "gate: report lacks the evaluation"
expect 0 '' "$SLM" quantize "$S260" -o "$T/g.gguf" --type Q4_0 --eval-text "$TXT" --eval-ctx 64 --eval-chunks 2 --max-kld 0.5 -f
expect 3 "gate min_top1 failed: top1_agreement " "$SLM" eval "$T/g.gguf" --ref "$S260" --text "$TXT" --ctx 64 --chunks 2 --min-top1 0.9999 --json
expect_stdout '"gates_passed":'
# recipe files: the command line overrides them; faults name the file and the key
printf '{"method": "quantize", "type": "Q8_0", "tensor_types": {"attn_q": "Q4_0"}, "manifest": true,\n "gates": {"max_kld": 0.5}, "eval": {"ctx": 64, "chunks": 2}}\n' > "$T/r.json"
expect 0 '' "$SLM" quantize "$S260" -o "$T/r.gguf" --recipe "$T/r.json" --eval-text "$TXT" --report "$T/rr.json"
"$SLM" inspect "$T/r.gguf" > "$T/insp" && grep -q 'slm.flags .*"--type Q8_0 --tensor-type attn_q=Q4_0 --eval-ctx 64 --eval-chunks 2 --max-kld 0.5 --manifest"' "$T/insp" ||
    fail "recipe: slm.flags not as expected: $(grep slm.flags "$T/insp")"
grep -q "blk.0.attn_q.weight .*Q4_0" "$T/insp" || fail "recipe: tensor_types not applied"
grep -q "\"input_sha256\":[[:space:]]*\"" "$T/rr.json" || fail "recipe: report lacks the manifest"
expect 0 '' "$SLM" quantize "$S260" -o "$T/r2.gguf" --recipe "$T/r.json" --eval-text "$TXT" --type Q4_0
"$SLM" inspect "$T/r2.gguf" | grep -q 'slm.flags .*"--type Q4_0' || fail "recipe: the command line does not override --type"
cmp -s "$T/r.gguf" "$T/r2.gguf" && fail "recipe: override made the same file"
"$SLM" quantize "$S260" -o "$T/r3.gguf" --recipe "$T/r.json" --eval-text "$TXT" -q && cmp -s "$T/r.gguf" "$T/r3.gguf" ||
    fail "recipe + manifest: not the same bytes twice"
n=$((n + 1))
printf '{"method": "quantize", "typo": 1}' > "$T/bad.json"
expect 2 "bad.json: key 'typo': not an option of this command" "$SLM" quantize "$S260" -o "$T/x.gguf" --recipe "$T/bad.json"; one_line
printf '{"method": "eval", "type": "Q4_0"}' > "$T/bad.json"
expect 2 "bad.json: key 'method': a recipe for 'eval', this is slm quantize" "$SLM" quantize "$S260" -o "$T/x.gguf" --recipe "$T/bad.json"; one_line
printf '{"method": "quantize", "gates": {"max_kld": "low"}}' > "$T/bad.json"
expect 2 "bad.json: key 'gates.max_kld': expected a number" "$SLM" quantize "$S260" -o "$T/x.gguf" --recipe "$T/bad.json"; one_line
printf '{"method": "quantize", "gates": {"min_top1": 3}}' > "$T/bad.json"
expect 2 "bad.json: key 'gates.min_top1': option '--min-top1': '3' is not a number in [0, 1]" "$SLM" quantize "$S260" -o "$T/x.gguf" --recipe "$T/bad.json"
printf '{"method": "quantize", "tensor_types": ["ffn_down"]}' > "$T/bad.json"
expect 2 "--tensor-type: expected REGEX=TYPE" "$SLM" quantize "$S260" -o "$T/x.gguf" --recipe "$T/bad.json" --type Q8_0
printf '{"method": "quantize",' > "$T/bad.json"
expect 2 "bad.json: not valid JSON" "$SLM" quantize "$S260" -o "$T/x.gguf" --recipe "$T/bad.json"; one_line; no_file "$T/x.gguf"
expect 1 "nope.json: No such file or directory" "$SLM" quantize "$S260" -o "$T/x.gguf" --recipe "$T/nope.json"; one_line
# packed files: eval reads the container (same numbers), the report has its size
expect 0 '' "$SLM" pack "$T/g.gguf" -o "$T/g.gguf.zst"
"$SLM" eval "$T/g.gguf" --text "$TXT" --ctx 64 --chunks 2 --json > "$T/e1.json"
"$SLM" eval "$T/g.gguf.zst" --text "$TXT" --ctx 64 --chunks 2 --json > "$T/e2.json"
[ "$(grep '"ppl"' "$T/e1.json")" = "$(grep '"ppl"' "$T/e2.json")" ] || fail "pack: eval differs"
grep -qE "\"packed_bytes\":[[:space:]]*$(wc -c < "$T/g.gguf.zst" | tr -d ' ')([^0-9]|$)" "$T/e2.json" || fail "pack: packed_bytes is not the file size"
grep -qE '"packed_bytes":[[:space:]]*0([^0-9]|$)' "$T/e1.json" || fail "pack: packed_bytes of a plain GGUF is not 0"
expect 0 '' "$SLM" unpack "$T/g.gguf.zst" -o "$T/g.back.gguf"; cmp -s "$T/g.gguf" "$T/g.back.gguf" || fail "unpack differs"
expect 0 '' "$SLM" inspect "$T/g.gguf.zst"; expect_stdout "packed GGUF (slm pack v1, zstd level 3)"
n=$((n + 1))

# ---- determinism: runs and thread counts give the same bytes -----------------------------------
for t in Q4_K_M Q8_0 IQ4_XS; do
    "$SLM" quantize "$FIX/models/tinystories-3M" --type $t -o "$T/a1.gguf" -t 1 -f
    "$SLM" quantize "$FIX/models/tinystories-3M" --type $t -o "$T/a2.gguf" -t 2 -f
    "$SLM" quantize "$FIX/models/tinystories-3M" --type $t -o "$T/a3.gguf" -t 2 -f
    cmp -s "$T/a1.gguf" "$T/a2.gguf" && cmp -s "$T/a2.gguf" "$T/a3.gguf" || fail "$t output depends on threads or run"
    n=$((n + 1))
done
for o in f32 f16 bf16; do
    "$SLM" convert "$FIX/models/tinystories-3M-sharded" -o "$T/c1.gguf" --outtype $o -t 1 -f
    "$SLM" convert "$FIX/models/tinystories-3M-sharded" -o "$T/c2.gguf" --outtype $o -t 2 -f
    cmp -s "$T/c1.gguf" "$T/c2.gguf" || fail "convert --outtype $o depends on threads"
    n=$((n + 1))
done

# ---- SIGINT / SIGTERM: status 130 / 143, no output, no temp file --------------------------------
"$BUILD/mksynth" "$T/big" --dim 1024 --ff 2816 --layers 6 --heads 16 --kv-heads 4 --dtype f32 --shards 2 \
    --tokenizer-from "$S260" > /dev/null || fail "mksynth big"
for sig in INT TERM; do
    rm -f "$T/int.gguf"
    "$SLM" quantize "$T/big" -o "$T/int.gguf" --type Q4_K_M -t 1 &
    pid=$!
    sleep "${SLM_SIG_DELAY:-0.5}"  # valgrind.sh: longer, its start-up is slow
    kill -s $sig $pid
    wait $pid 2>/dev/null
    st=$?
    want=130; [ $sig = TERM ] && want=143
    [ "$st" = "$want" ] || fail "SIG$sig: exit status $st, want $want"
    no_file "$T/int.gguf"
    n=$((n + 1))
done

echo "cli: $n cases, $fails failure(s)"
[ "$fails" -eq 0 ]
