#!/bin/sh
# make sanitize-clang: the runtime, the kernels' tests and every model's
# trainer built with clang's AddressSanitizer and UBSan, which catch some
# undefined behaviour GCC's do not (a zero offset applied to a NULL
# pointer, ...). make SANITIZE=1 test runs the whole suite under GCC's.
#   1. the kernel and host libraries, with the flags of a SANITIZE=1 build;
#   2. tests/runtime/test_kernels.c and test_reference.c against them;
#   3. the kernel parity suite against PyTorch (tests/parity/kernels.py);
#   4. every model of models/ and tests/parity/models/: its generated C
#      compiled the same way, trained 3 steps at batches 1 and 5 on 1 and
#      2 threads.
# Any report of a sanitizer stops the run with a non-zero exit.
set -eu
cd "$(dirname "$0")/../.."
CLANG=${CLANG:-clang}
command -v "$CLANG" >/dev/null || { echo "sanitize-clang: $CLANG is missing (Debian: clang libclang-rt-14-dev)"; exit 1; }
B=build/clang-san
rm -rf $B && mkdir -p $B/obj $B/models
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CFLAGS="-O1 -g -std=c11 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -ffp-contract=fast $SAN"
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

echo "== clang sanitizers: the runtime"
objs=""
for f in runtime/*.c runtime/sizing/*.c; do
    o=$B/obj/$(echo "$f" | tr / _ | sed 's/\.c$/.o/')
    $CLANG $CFLAGS -Iruntime -Iruntime/sizing -c "$f" -o "$o" &
    objs="$objs $o"
    [ "$(jobs -p | wc -l)" -lt "$(nproc)" ] || wait -n 2>/dev/null || wait
done
wait
rm -f $B/libnnrt.a && ar rcs $B/libnnrt.a $objs
hobjs=""
for f in runtime/host/*.c; do
    o=$B/obj/$(echo "$f" | tr / _ | sed 's/\.c$/.o/')
    $CLANG $CFLAGS -Iruntime -Iruntime/host -c "$f" -o "$o"
    hobjs="$hobjs $o"
done
rm -f $B/libnnrt-host.a && ar rcs $B/libnnrt-host.a $hobjs
LIBS="$B/libnnrt-host.a $B/libnnrt.a -lcjson -lz -lm -lpthread"

echo "== clang sanitizers: the kernels' tests"
$CLANG $CFLAGS -Iruntime tests/runtime/test_kernels.c $B/libnnrt.a -lm -lpthread -o $B/test_kernels
$B/test_kernels >$B/test_kernels.out || { grep -v '^ok' $B/test_kernels.out | head -40; exit 1; }
tail -1 $B/test_kernels.out
$CLANG $CFLAGS -Iruntime tests/runtime/test_reference.c $B/libnnrt.a -lm -lpthread -o $B/test_reference
$B/test_reference >$B/test_reference.out || { grep -v '^ok' $B/test_reference.out | head -40; exit 1; }
tail -1 $B/test_reference.out

echo "== clang sanitizers: kernel parity with PyTorch"
$CLANG $CFLAGS -Iruntime -Iruntime/host tests/parity/kernel_harness.c $LIBS -o $B/kernel_harness
/usr/bin/python3 tests/parity/kernels.py $B/kernel_harness $B >$B/kernel_parity.out ||
    { grep -v '^ok' $B/kernel_parity.out | head -40; exit 1; }
tail -1 $B/kernel_parity.out

echo "== clang sanitizers: every model's trainer"
[ -x build/nnc ] || { echo "sanitize-clang: build/nnc is missing: run make first"; exit 1; }
for nn in models/*.nn tests/parity/models/*.nn; do
    name=$(basename "$nn" .nn)
    build/nnc "$nn" -o $B/models/$name.c 2>/dev/null
    $CLANG $CFLAGS -Iruntime -Iruntime/host $B/models/$name.c $LIBS -o $B/models/$name
    for n in 1 5; do for t in 1 2; do
        if ! $B/models/$name --steps 3 --batch $n --threads $t --quiet >$B/models/$name.out 2>&1; then
            # a batch norm on one value per channel: no batch of one (tests/min_batch.sh)
            grep -q "batch norm cannot train on one value per channel" $B/models/$name.out && continue
            echo "FAIL $name --batch $n --threads $t:"; head -30 $B/models/$name.out; exit 1
        fi
    done; done
    echo "ok   $name: 3 steps at batches 1 and 5, 1 and 2 threads"
done
echo "clang sanitizers: no reports"
