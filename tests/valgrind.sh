#!/bin/sh
# valgrind.sh - the CLI suite (tests/run_cli.sh) with every slm process under valgrind memcheck:
# no invalid read/write, no use of uninitialised values, no definite leak, in successes and in
# every error path the suite walks. `make check-valgrind` (slow: about 30x; not part of CI).
# Each process logs to its own file; the run fails if any log holds an error.
set -u
BUILD=${BUILD:-build}
W=$(mktemp -d "${TMPDIR:-/tmp}/slm-vg-XXXXXX")
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/bin" "$W/log"
for b in "$BUILD"/slm "$BUILD"/slm-*; do
    name=$(basename "$b")
    cat > "$W/bin/$name" <<EOW
#!/bin/sh
exec valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
  --show-leak-kinds=definite --log-file="$W/log/%p.log" "$(cd "$(dirname "$b")" && pwd)/$name" "\$@"
EOW
    chmod +x "$W/bin/$name"
done
cp "$BUILD"/mksynth "$BUILD"/mkfamily "$W/bin/" 2>/dev/null
SLM_SIG_DELAY=8 SLM="$W/bin/slm" BUILD="$W/bin" OMP_NUM_THREADS=2 sh tests/run_cli.sh
rc=$?
bad=0
for f in "$W"/log/*.log; do
    [ -s "$f" ] || continue
    bad=$((bad + 1)); echo "valgrind: $(basename "$f" .log):"; head -40 "$f"
done
n=$(ls "$W"/log | wc -l)
echo "valgrind: $n processes, $bad with errors"
[ "$rc" -eq 0 ] && [ "$bad" -eq 0 ]
