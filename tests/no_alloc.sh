#!/bin/sh
# No allocation in the training loop: a trainer with tests/alloc/count_alloc.c
# preloaded (it counts malloc, realloc, aligned_alloc and posix_memalign)
# makes as many heap allocations for 1000 steps as for 10: LeNet and
# lenet_ce on synthetic data, batches 1 and 64, one and two threads; and
# `train` on MNIST (when data/mnist is there) for one epoch as for three.
# Skipped under the sanitizers, which bring their own allocator.
set -eu
cd "$(dirname "$0")/.."
case "${CFLAGS:-}" in *sanitize*) echo "skip (sanitizers: they replace malloc)"; exit 0 ;; esac
B=build/tests/no_alloc
mkdir -p $B
${CC:-cc} -shared -fPIC -O2 -Wall -Wextra tests/alloc/count_alloc.c -o $B/count_alloc.so -ldl
count() {   # the allocations of a run: count CMD...
    LD_PRELOAD=$PWD/$B/count_alloc.so "$@" 2>&1 >/dev/null | awk '/^allocations:/ {print $2}'
}
for name in lenet lenet_ce; do
    build/nnc models/$name.nn -o $B/$name.c
    ${CC:-cc} ${CFLAGS:--O2} -Iruntime -Iruntime/host $B/$name.c build/libnnrt-host.a build/libnnrt.a ${LDFLAGS:-} ${LDLIBS:--lcjson -lz -lm -lpthread} -o $B/$name
    for batch in 1 64; do
        for threads in 1 2; do
            few=$(NNRT_THREADS=$threads count $B/$name --steps 10 --batch $batch --quiet)
            many=$(NNRT_THREADS=$threads count $B/$name --steps 1000 --batch $batch --quiet)
            if [ -z "$few" ] || [ "$few" != "$many" ]; then
                echo "FAIL $name batch $batch, $threads threads: $few allocations for 10 steps, $many for 1000"
                exit 1
            fi
        done
    done
    echo "ok   $name: $few allocations in all, the same for 10 steps as for 1000 (batches 1 and 64, 1 and 2 threads)"
done
if [ -f data/mnist/train-images-idx3-ubyte ] || [ -f data/mnist/train-images-idx3-ubyte.gz ]; then
    one=$(NNRT_THREADS=2 count $B/lenet_ce train --data mnist:data/mnist --limit 2000 --test-limit 500 --epochs 1 --quiet)
    three=$(NNRT_THREADS=2 count $B/lenet_ce train --data mnist:data/mnist --limit 2000 --test-limit 500 --epochs 3 --quiet)
    if [ -z "$one" ] || [ "$one" != "$three" ]; then
        echo "FAIL train on MNIST: $one allocations for one epoch, $three for three"
        exit 1
    fi
    echo "ok   lenet_ce train on MNIST: $one allocations, the same for one epoch as for three"
else
    echo "skip train on MNIST (no data/mnist; make mnist)"
fi
