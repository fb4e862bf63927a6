#!/bin/sh
# gguf_digest.sh - a GGUF as text for comparing two converters: the metadata keys in file order
# with their type and value as `slm inspect` prints them, then every tensor (sorted by name)
# with its type, shape and the sha256 of its data bytes. Keys whose value or place the common
# metadata writer does not reproduce yet (general.name, general.size_label, general.file_type,
# general.quantization_version) are left out. Needs: SLM (build/slm), dd, sha256sum.
# usage: sh tests/ref/gguf_digest.sh FILE.gguf
set -eu
SLM=${SLM:-build/slm}
f=$1
list=$("$SLM" inspect "$f")
data=$(printf '%s\n' "$list" | sed -n '1s/.*data at \([0-9]*\).*/\1/p')
printf '%s\n' "$list" | awk 'NR > 1 && /^  tensor /{ exit } NR > 1 { print "kv", $0 }' |
    grep -v -e ' general\.name ' -e ' general\.size_label ' -e ' general\.file_type ' -e ' general\.quantization_version ' |
    sed 's/  */ /g'
printf '%s\n' "$list" | awk '/^  tensor /{ t = 1; next } t { print $1, $2, $(NF-1), $NF, $0 }' | sort |
while read -r name type bytes off rest; do
    shape=$(printf '%s\n' "$rest" | sed 's/.*\(\[[^]]*\]\).*/\1/' | tr -d ' ')
    sum=$(dd if="$f" bs=65536 iflag=skip_bytes,count_bytes skip=$((data + off)) count="$bytes" status=none | sha256sum | cut -c1-64)
    echo "tensor $name $type $shape $sum"
done
