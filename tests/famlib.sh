# famlib.sh - the shared start of tests/families_*.sh (sourced, with FAMILY set): the tools, a
# temporary folder removed at exit, ok/bad with a failure count, the texts (the first 8000 bytes
# of tinystories_val.txt to score, 20000 to calibrate) and the comparisons against llama.cpp's
# numbers recorded in tests/ref/FAMILY-bf16-s1.llama.
set -u
SLM=${SLM:-build/slm}
BUILD=${BUILD:-build}
FIX=${SLM_FIXTURES:-../shared/fixtures}
export SLM SLM_FIXTURES="$FIX"
T=$(mktemp -d "${TMPDIR:-/tmp}/slm-$FAMILY-XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
head -c 8000 "$FIX/text/tinystories_val.txt" > "$T/text.txt" || exit 1
head -c 20000 "$FIX/text/tinystories_val.txt" > "$T/calib.txt" || exit 1
refv() { sed -n "s/^$2 //p" "tests/ref/$1-bf16-s1.llama"; }
# equal to 4 significant digits: within half a unit of b's 4th digit (as tests/interop_eval.sh)
same4() { awk -v a="$1" -v b="$2" 'BEGIN { u = 10 ^ (int(log(b) / log(10)) - 3); d = a - b; exit !(d <= u / 2 && d >= -u / 2) }'; }
# a within relative r of b
within() { awk -v a="$1" -v b="$2" -v r="$3" 'BEGIN { d = a / b - 1; exit !(d < r && d > -r) }'; }
