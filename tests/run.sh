#!/bin/sh
# The test driver behind `make test`: builds and runs every test, stops at the
# first failure. Each section prints one line per test.
set -eu
cd "$(dirname "$0")/.."
CC=${CC:-cc}
CFLAGS=${CFLAGS:-"-O2 -g -std=c11 -Wall -Wextra -Werror"}
LDFLAGS=${LDFLAGS:-}
LDLIBS=${LDLIBS:-"-lcjson -lz -lm -lpthread"}
B=build/tests
mkdir -p $B
export CC CFLAGS LDFLAGS LDLIBS B

echo "== runtime kernels: hand-computed cases and finite-difference gradients"
# the kernels alone: libnnrt.a, libm and pthreads
$CC $CFLAGS -Iruntime tests/runtime/test_kernels.c build/libnnrt.a $LDFLAGS -lm -lpthread -o $B/test_kernels
$B/test_kernels

echo "== runtime kernels, portable build: no AVX-512 code, no per-CPU clones (the paths other machines take)"
# build/portable/libnnrt.a: the runtime built with -DNNRT_NO_CLONES (make test builds it)
[ -f build/portable/libnnrt.a ] || { echo "tests/run.sh: build/portable/libnnrt.a is missing: run make test"; exit 1; }
$CC $CFLAGS -DNNRT_NO_CLONES -Iruntime tests/runtime/test_kernels.c build/portable/libnnrt.a \
    $LDFLAGS -lm -lpthread -o $B/test_kernels_portable
# (its lines are those above; the last, and the failures, are shown)
$B/test_kernels_portable >$B/test_kernels_portable.out || { grep FAIL $B/test_kernels_portable.out; exit 1; }
tail -1 $B/test_kernels_portable.out

echo "== GELU's erf and exp against double erf and exp: a dense sweep and the special values (both builds)"
$CC $CFLAGS -Iruntime tests/runtime/test_gelu.c build/libnnrt.a $LDFLAGS -lm -lpthread -o $B/test_gelu
$B/test_gelu >$B/test_gelu.out || { grep FAIL $B/test_gelu.out; exit 1; }
tail -1 $B/test_gelu.out
$CC $CFLAGS -DNNRT_NO_CLONES -Iruntime tests/runtime/test_gelu.c build/portable/libnnrt.a \
    $LDFLAGS -lm -lpthread -o $B/test_gelu_portable
$B/test_gelu_portable >$B/test_gelu_portable.out || { grep FAIL $B/test_gelu_portable.out; exit 1; }
tail -1 $B/test_gelu_portable.out

echo "== runtime kernels, every scratch buffer filled with NaNs first (a kernel that reads scratch it did not write fails)"
NNRT_POISON_SCRATCH=1 $B/test_kernels >$B/test_kernels_poisoned.out || { grep FAIL $B/test_kernels_poisoned.out; exit 1; }
tail -1 $B/test_kernels_poisoned.out

echo "== runtime kernels: every fast path against its reference (conv2d_ref.c, linear_ref.c)"
$CC $CFLAGS -Iruntime tests/runtime/test_reference.c build/libnnrt.a $LDFLAGS -lm -lpthread -o $B/test_reference
$B/test_reference >$B/test_reference.out || { grep FAIL $B/test_reference.out; exit 1; }
tail -1 $B/test_reference.out
$CC $CFLAGS -DNNRT_NO_CLONES -Iruntime tests/runtime/test_reference.c build/portable/libnnrt.a \
    $LDFLAGS -lm -lpthread -o $B/test_reference_portable
$B/test_reference_portable >$B/test_reference_portable.out || { grep FAIL $B/test_reference_portable.out; exit 1; }
tail -1 $B/test_reference_portable.out

echo "== safetensors"
$CC $CFLAGS -Iruntime -Iruntime/host tests/runtime/test_safetensors.c build/libnnrt-host.a build/libnnrt.a \
    $LDFLAGS $LDLIBS -o $B/test_safetensors
$B/test_safetensors $B

for t in tests/*.sh; do
    [ "$t" = tests/run.sh ] && continue
    echo "== $t"
    sh "$t"
done
echo "all tests passed"
