#!/bin/sh
# lint.sh - the house rules a grep can check (STYLE.md, section A/K):
#  - below cli/, nothing prints to stdout/stderr or exits (libraries return errors);
#  - core/ includes nothing of ours but core/; quantize/ and model/ never include formats/ or cli/;
#  - nothing below cli/ includes cli/;
#  - omp.h only in core/thread.c; no -ffast-math anywhere.
set -u
fails=0
bad() { echo "lint: $*"; fails=$((fails + 1)); }
LIB="core formats model quantize prune distill"
for d in $LIB; do
    [ -d "$d" ] || continue
    hits=$(grep -nE '\b(printf|puts|putchar|perror|exit|abort)\s*\(|\b(stdout|stderr)\b' "$d"/*.c "$d"/*.h 2>/dev/null |
           grep -vE 'snprintf|vsnprintf|SLM_ASSERT|core/slm.h:.*(fprintf|abort)|^\S+:\s*[0-9]+:\s*(/\*|\*)' || true)
    [ -n "$hits" ] && bad "printing or exiting below cli/ in $d/:" && echo "$hits"
    hits=$(grep -n '#include "cli/' "$d"/*.c "$d"/*.h 2>/dev/null || true)
    [ -n "$hits" ] && bad "$d/ includes cli/:" && echo "$hits"
done
hits=$(grep -nE '#include "(formats|model|quantize|prune|distill|cli)/' core/*.c core/*.h 2>/dev/null || true)
[ -n "$hits" ] && bad "core/ includes other modules:" && echo "$hits"
for d in quantize model; do
    hits=$(grep -nE '#include "(formats|cli)/' "$d"/*.c "$d"/*.h 2>/dev/null || true)
    [ -n "$hits" ] && bad "$d/ includes formats/ or cli/:" && echo "$hits"
done
hits=$(grep -ln '#include <omp.h>' */*.c */*.h 2>/dev/null | grep -v '^core/thread.c$' || true)
[ -n "$hits" ] && bad "omp.h outside core/thread.c: $hits"
grep -rn 'fast-math\|-Ofast' Makefile */*.c */*.h 2>/dev/null | grep -v 'tests/lint.sh' | grep -v 'no -ffast-math\|No -ffast-math\|no fast-math' && bad "fast-math found"
[ "$fails" -eq 0 ] && echo "lint: ok" || echo "lint: $fails problem(s)"
[ "$fails" -eq 0 ]
