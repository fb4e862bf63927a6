#!/bin/sh
# tok_digest.sh - tests/ref/gguf_digest.sh's digest of a GGUF (keys with their types, tensors)
# followed by one line per tokenizer.* array key: the sha256 of its whole value as
# `slm inspect --json` prints it (strings with JSON escapes, floats to 15 significant digits, which tells every f32 apart), so two
# tokenizers compare entry by entry. Needs: SLM (build/slm), sha256sum.
# usage: sh tests/ref/tok_digest.sh FILE.gguf
set -eu
SLM=${SLM:-build/slm}
sh "$(dirname "$0")/gguf_digest.sh" "$1"
"$SLM" inspect "$1" --json | sed -n 's/^[[:space:]]*"\(tokenizer\.[a-z_.]*\)":[[:space:]]*\(\[.*\]\),\{0,1\}$/\1 \2/p' |
while read -r key value; do
    printf '%s %s\n' "value $key" "$(printf '%s' "$value" | sha256sum | cut -c1-64)"
done
