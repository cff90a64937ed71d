#!/bin/sh
# The generated forward's check for NaNs and infinities (--nan-check):
# tests/nan_check/nan_check.c on tests/nan_check/squash.nn, whose first
# non-finite value's memory is used again by the layer after it.
set -eu
cd "$(dirname "$0")/.."
B=build/tests/nan_check
mkdir -p $B
CC=${CC:-cc}
build/nnc tests/nan_check/squash.nn -o $B/squash.c
# the check before that layer writes: what makes the test mean something
grep -q 'squash_check(m, n, 0, 2)' $B/squash.c ||
    { echo "FAIL squash.nn: no check of a's value before its memory is used again; the test needs one"; exit 1; }
$CC ${CFLAGS:--O2} -Iruntime -DMODEL_C="\"$PWD/$B/squash.c\"" tests/nan_check/nan_check.c build/libnnrt.a \
    ${LDFLAGS:-} -lm -lpthread -o $B/nan_check
$B/nan_check
