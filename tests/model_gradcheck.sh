#!/bin/sh
# Finite-difference gradient check of every model in models/ and
# tests/parity/models/, whole: nnc
# compiles it, tests/gradcheck_model.c includes the generated C.
set -eu
cd "$(dirname "$0")/.."
B=build/tests
mkdir -p $B
for nn in models/*.nn tests/parity/models/*.nn; do
    name=$(sed -n 's/^ *model  *\([A-Za-z_][A-Za-z0-9_]*\).*/\1/p' "$nn" | head -n 1)
    up=$(echo "$name" | tr a-z A-Z)
    build/nnc "$nn" -o $B/gc_$name.c
    ${CC:-cc} ${CFLAGS:--O2} -Iruntime -DMODEL_C="\"$PWD/$B/gc_$name.c\"" -DMODEL=$name -DMODEL_UP=$up \
        tests/gradcheck_model.c build/libnnrt.a ${LDFLAGS:-} -lm -lpthread -o $B/gc_$name
    echo "-- $nn"
    $B/gc_$name
done
