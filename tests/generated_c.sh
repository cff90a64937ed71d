#!/bin/sh
# The generated C is for people and for strict builds: for every model, it
# compiles without a single warning under gcc and clang with -Wall -Wextra
# -Wpedantic -Wshadow -Wconversion, at -O0 and -O2. nnc itself compiles
# LeNet in milliseconds (measured by `make bench`, not asserted here).
set -eu
cd "$(dirname "$0")/.."
B=build/tests/generated_c
mkdir -p $B
compilers=gcc
if command -v clang >/dev/null; then compilers="gcc clang"; else echo "note: no clang here; gcc only"; fi
for nn in models/*.nn tests/parity/models/*.nn tests/generated_c/*.nn; do
    name=$(basename "$nn" .nn)
    build/nnc "$nn" -o $B/$name.c
    for cc in $compilers; do
        for opt in -O0 -O2; do
            $cc -std=c11 $opt -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror -Iruntime -Iruntime/host \
                -c $B/$name.c -o $B/$name.o
        done
    done
    echo "ok   $name: no warnings ($compilers; -O0, -O2)"
done
