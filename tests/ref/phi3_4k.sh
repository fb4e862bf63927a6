#!/bin/sh
# phi3_4k.sh - turns build/mkfamily's phi3 checkpoint (Phi-3.5-mini-like, longrope) into a
# Phi-3-mini-4k-like one in place: config.json's rope_scaling null, max_position_embeddings
# 4096, sliding_window 2047, _name_or_path Phi-3-mini-4k-instruct (no Python needed).
# usage: sh tests/ref/phi3_4k.sh DIR
set -eu
c=$1/config.json
awk '/"rope_scaling": \{/ { print "  \"rope_scaling\": null,"; skip = 1; next }
     skip { if (/^  \}/) skip = 0; next }
     { sub(/"max_position_embeddings": 131072/, "\"max_position_embeddings\": 4096")
       sub(/"sliding_window": 262144/, "\"sliding_window\": 2047")
       sub(/Phi-3\.5-mini-instruct/, "Phi-3-mini-4k-instruct"); print }' "$c" > "$c.tmp"
mv "$c.tmp" "$c"
grep -q '"rope_scaling": null' "$c"
