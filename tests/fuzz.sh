#!/bin/sh
# The fuzzers' findings, kept: each tests/fuzz/regressions/NAME.nn or .json
# is an input that once crashed nnc, hung it, leaked, tripped a sanitizer or
# made C that did not compile. Run through build/nnc (a SANITIZE=1 build under
# `make SANITIZE=1 test`), each must end with exit status 0 or 1 — a
# compiled model or located errors — never a signal, a sanitizer report or a
# usage error; and when nnc accepts it, the C it writes must compile.
# The fuzzing itself is `make fuzz` (tests/fuzz/run.sh); this is the part
# that runs on every `make test`.
set -u
cd "$(dirname "$0")/.."
B=build/tests/fuzz
rm -rf $B && mkdir -p $B
CC=${CC:-cc}
fail=0
n=0
for f in tests/fuzz/regressions/*.nn tests/fuzz/regressions/*.json; do
    [ -e "$f" ] || continue
    n=$((n + 1))
    name=$(basename "$f")
    NO_COLOR=1 build/nnc "$f" -o $B/$name.c >$B/$name.out 2>$B/$name.err
    rc=$?
    if [ $rc -gt 1 ] || grep -q -e 'Sanitizer' -e 'runtime error' $B/$name.err; then
        echo "FAIL $name: exit $rc"; head -20 $B/$name.err; fail=1
    elif [ $rc -eq 1 ] && ! grep -q 'error' $B/$name.err; then
        echo "FAIL $name: exit 1 without an error message"; fail=1
    elif [ $rc -eq 0 ] && ! $CC -std=c11 -fsyntax-only -Iruntime $B/$name.c 2>$B/$name.cc; then
        echo "FAIL $name: nnc accepts it but its C does not compile:"; head -10 $B/$name.cc; fail=1
    else
        echo "ok   $name (exit $rc)"
    fi
done
[ $n -gt 0 ] || { echo "FAIL no regression inputs in tests/fuzz/regressions"; fail=1; }
exit $fail
