#!/bin/sh
# Golden tests of nnc's messages: for each tests/diagnostics/NAME.nn, nnc's
# standard error and exit status must equal tests/diagnostics/NAME.expected
# exactly, and a failed compile must write no output file.
# To accept new output after a deliberate change: tests/diagnostics.sh --update
set -u
cd "$(dirname "$0")/.."
out=build/tests/diag
mkdir -p $out
fail=0
for nn in tests/diagnostics/*.nn; do
    name=$(basename "$nn" .nn)
    rm -f $out/$name.c
    NO_COLOR=1 build/nnc "$nn" -o $out/$name.c 2>$out/$name.err >/dev/null
    rc=$?
    echo "exit $rc" >>$out/$name.err
    if [ "${1:-}" = --update ]; then
        cp $out/$name.err tests/diagnostics/$name.expected
        continue
    fi
    if [ $rc -ne 0 ] && [ -e $out/$name.c ]; then
        echo "FAIL $name: exit $rc but an output file was written"
        fail=1
    elif ! diff -u tests/diagnostics/$name.expected $out/$name.err >$out/$name.diff; then
        echo "FAIL $name: the message differs from $name.expected:"
        cat $out/$name.diff
        fail=1
    else
        echo "ok   $name"
    fi
done

# --explain-shapes: the derivations for LeNet, exactly
build/nnc --explain-shapes models/lenet.nn >$out/explain.out 2>&1
if [ "${1:-}" = --update ]; then
    cp $out/explain.out tests/diagnostics/explain_lenet.expected
elif diff -u tests/diagnostics/explain_lenet.expected $out/explain.out; then
    echo "ok   --explain-shapes models/lenet.nn"
else
    echo "FAIL --explain-shapes output differs from explain_lenet.expected"
    fail=1
fi

# warnings fail only under -Werror, which reports them as errors
if NO_COLOR=1 build/nnc -Werror tests/diagnostics/unused_layer.nn -o $out/werror.c 2>$out/werror.err; then
    echo "FAIL -Werror: a warning did not fail the compile"
    fail=1
elif ! grep -q "error: layer \`spare\` is defined but never used in forward \[-Werror\]" $out/werror.err || [ -e $out/werror.c ]; then
    echo "FAIL -Werror: unexpected output"; cat $out/werror.err
    fail=1
else
    echo "ok   -Werror turns the warning into an error"
fi

# a misspelt option gets a did-you-mean, as the trainer's flags do
if build/nnc --sumary models/lenet.nn >/dev/null 2>$out/option.err; then
    echo "FAIL --sumary was accepted"
    fail=1
elif ! grep -q "unknown option '--sumary' (did you mean '--summary'?)" $out/option.err; then
    echo "FAIL --sumary: no did-you-mean:"; cat $out/option.err
    fail=1
else
    echo "ok   --sumary: did you mean '--summary'"
fi
exit $fail
