#!/bin/sh
# Every model in models/ compiles and trains on synthetic data: 60 steps of
# the trainer on one fixed random batch of 8 must bring the loss down by 15%
# (memorising one batch is the least a correct trainer can do).
set -eu
cd "$(dirname "$0")/.."
B=build/tests/models_train
mkdir -p $B
for nn in models/*.nn; do
    name=$(basename "$nn" .nn)
    build/nnc "$nn" -o $B/$name.c
    ${CC:-cc} ${CFLAGS:--O2} -Iruntime -Iruntime/host $B/$name.c build/libnnrt-host.a build/libnnrt.a ${LDFLAGS:-} ${LDLIBS:--lcjson -lz -lm -lpthread} -o $B/$name
    $B/$name --steps 60 --batch 8 --print-every 1 >$B/$name.out
    first=$(awk '$1 == "step" && $2 == 1 {print $4}' $B/$name.out)
    last=$(awk '$1 == "step" && $2 == 60 {print $4}' $B/$name.out)
    if awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < 0.85 * a) }'; then
        echo "ok   $name: loss $first -> $last in 60 steps"
    else
        echo "FAIL $name: loss $first -> $last in 60 steps"
        exit 1
    fi
done
