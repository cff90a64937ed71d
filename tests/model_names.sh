#!/bin/sh
# The generated C is named after the model (a type `lenet`, lenet_forward,
# ...), and its functions have locals and parameters of their own (m, t, k,
# v_conv1, ...). A model called like one of them once made C that did not
# compile: the local hid the type (`((m *)m)` with a model called m).
#
# So, for every model in models/ and tests/parity/models/: take every
# identifier its generated C uses (comments and strings left out, the names
# made from the model's own name too), call the model by it, and run nnc. nnc
# either refuses the name with an error at it (a keyword of the language or
# of C, a name of the C library or of the runtime, ...) or the C it writes
# must compile. Two jobs at a time.
set -u
cd "$(dirname "$0")/.."
B=build/tests/model_names
CC=${CC:-cc}

# one model renamed: $1 the .nn file, $2 its name, $3 the new name
if [ "${1:-}" = --one ]; then
    nn=$2 old=$3 new=$4
    out=$B/$(basename "$nn" .nn).$new
    sed -E "s/^model +$old\b/model $new/" "$nn" >$out.nn
    NO_COLOR=1 build/nnc $out.nn -o $out.c >/dev/null 2>$out.err
    rc=$?
    if [ $rc -eq 1 ] && grep -qE "^$out.nn:[0-9]+:7: error: " $out.err; then
        rm -f $out.nn $out.err; exit 0
    elif [ $rc -ne 0 ]; then
        echo "FAIL $out.nn: nnc exits $rc:"; head -5 $out.err; exit 1
    elif ! $CC -std=c11 -fsyntax-only -Iruntime -Iruntime/host $out.c 2>$out.cc; then
        echo "FAIL $out.nn: nnc accepts the name \`$new\` but its C does not compile:"; head -5 $out.cc; exit 1
    fi
    rm -f $out.nn $out.err $out.c $out.cc
    exit 0
fi

rm -rf $B && mkdir -p $B
jobs=$B/jobs
: >$jobs
for nn in models/*.nn tests/parity/models/*.nn; do
    name=$(sed -nE 's/^model +([A-Za-z_][A-Za-z0-9_]*).*/\1/p' "$nn" | head -1)
    [ -n "$name" ] || { echo "FAIL $nn: no model line"; exit 1; }
    build/nnc "$nn" -o $B/base.c >/dev/null 2>&1 || { echo "FAIL nnc refuses $nn"; exit 1; }
    # identifiers of the code itself: the preprocessor drops the comments
    # (not the includes: -fpreprocessed), sed the string literals
    $CC -fpreprocessed -dD -E -P $B/base.c 2>/dev/null | sed -E 's/"([^"\\]|\\.)*"//g' |
        grep -oE '\b[A-Za-z_][A-Za-z0-9_]*\b' | sort -u |
        sed "s|^|$nn $name |" >>$jobs
done
total=$(wc -l <$jobs)
[ "$total" -gt 1000 ] || { echo "FAIL only $total identifiers found: the extraction is broken"; exit 1; }
if xargs -P 2 -L 1 sh tests/model_names.sh --one <$jobs >$B/log 2>&1; then
    echo "ok   $total model names taken from the generated C: each refused with a located error or compiled"
else
    grep -A5 FAIL $B/log | head -40
    exit 1
fi
