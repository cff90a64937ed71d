#!/bin/sh
# The fuzzers' findings, kept: each tests/fuzz/regressions/NAME.nn or .json
# is an input that once crashed nnc, hung it, leaked, tripped a sanitizer or
# made C that did not compile. Run through build/nnc (a SANITIZE=1 build under
# `make SANITIZE=1 test`), each must end with exit status 0 or 1 — a
# compiled model or located errors — never a signal, a sanitizer report or a
# usage error; and when nnc accepts it, the C it writes must compile.
# Then, when clang's libFuzzer is installed, a short fuzz of both front-ends
# (the long one is `make fuzz`, tests/fuzz/run.sh).
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
    elif [ $rc -eq 0 ] && ! $CC -std=c11 -fsyntax-only -Iruntime -Iruntime/host $B/$name.c 2>$B/$name.cc; then
        echo "FAIL $name: nnc accepts it but its C does not compile:"; head -10 $B/$name.cc; fail=1
    else
        echo "ok   $name (exit $rc)"
    fi
done
[ $n -gt 0 ] || { echo "FAIL no regression inputs in tests/fuzz/regressions"; fail=1; }

# The fuzzing itself, bounded: NNC_TEST_FUZZ_SECONDS (10) per front-end when
# clang's libFuzzer is here (make fuzz-deps installs it); CI fuzzes longer.
secs=${NNC_TEST_FUZZ_SECONDS:-10}
if [ $fail -eq 0 ] && [ "$secs" -gt 0 ]; then
    if tests/fuzz/run.sh --check; then
        if make -s build/fuzz/fuzz_nn build/fuzz/fuzz_json >$B/build.log 2>&1 && tests/fuzz/run.sh "$secs" >$B/fuzz.log 2>&1; then
            echo "ok   fuzzed both front-ends for ${secs} s each: nothing found"
        else
            echo "FAIL the bounded fuzz (build/tests/fuzz/build.log, fuzz.log):"; tail -n 20 $B/build.log $B/fuzz.log
            fail=1
        fi
    else
        echo "note: clang's libFuzzer is not installed (make fuzz-deps): the bounded fuzz is skipped"
    fi
fi
exit $fail
