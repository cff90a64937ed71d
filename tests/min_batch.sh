#!/bin/sh
# Batch norm cannot train on one value per channel (PyTorch raises
# "Expected more than 1 value per channel when training"). A model with
# such a layer (tests/min_batch/bn_flat.nn) refuses, with the way out:
# --batch 1; an epoch whose last batch has one sample (--drop-last skips
# it); the tutorial's loop at batch 1; the C API's forward in training at
# n = 1 (NULL and a message). Evaluation at batch 1 works.
set -eu
cd "$(dirname "$0")/.."
B=build/tests/min_batch
rm -rf $B && mkdir -p $B
fail=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }
CC="${CC:-cc} ${LDFLAGS:-}" build/nnc tests/min_batch/bn_flat.nn -o $B/bn_flat
# 9 samples: 4 features and a class
for i in 0 1 2 3 4 5 6 7 8; do echo "0.$i,1.$i,-0.$i,2,$((i % 2))"; done >$B/d.csv

if ! $B/bn_flat train --data csv:$B/d.csv --batch 1 --quiet 2>$B/e1; then
    grep -q "error: a batch has 1 sample, and batch norm cannot train on one value per channel" $B/e1 &&
        grep -q "help: use --batch 2 or more" $B/e1 && ok "train --batch 1: refused: $(head -1 $B/e1)" ||
        { bad "train --batch 1: the message"; cat $B/e1; }
else
    bad "train --batch 1 trained a batch norm on one value per channel"
fi
if ! $B/bn_flat train --data csv:$B/d.csv --batch 4 --quiet 2>$B/e2; then
    grep -q "error: the epoch's last batch has 1 sample" $B/e2 && grep -q "add --drop-last" $B/e2 &&
        ok "train --batch 4 on 9 samples: refused: $(head -1 $B/e2)" || { bad "last batch: the message"; cat $B/e2; }
else
    bad "train --batch 4 on 9 samples trained a last batch of one sample"
fi
$B/bn_flat train --data csv:$B/d.csv --batch 4 --drop-last --epochs 2 --quiet --save $B/w.st &&
    ok "train --batch 4 --drop-last: trains, skipping the last sample" || bad "train --drop-last failed"
$B/bn_flat eval --load $B/w.st --data csv:$B/d.csv --batch 1 --quiet >$B/eval.out &&
    ok "eval --batch 1: works (evaluation uses the running statistics)" || bad "eval --batch 1 failed"
if ! $B/bn_flat --steps 2 --batch 1 --quiet 2>$B/e3; then
    grep -q "error: a batch has 1 sample" $B/e3 && ok "the tutorial's loop at batch 1: refused" ||
        { bad "tutorial loop: the message"; cat $B/e3; }
else
    bad "the tutorial's loop trained at batch 1"
fi
# the C API: forward in training at n = 1
build/nnc tests/min_batch/bn_flat.nn -o $B/bn_flat.c
cat >$B/api.c <<'C'
#define NNC_NO_MAIN
#include "bn_flat.c"
int main(void)
{
    bn_flat m;
    float x[8] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f};
    bn_flat_init(&m, 2, 1);
    int refused = bn_flat_forward(&m, x, 1) == NULL;
    int two = bn_flat_forward(&m, x, 2) != NULL;
    bn_flat_set_training(&m, 0);
    int eval = bn_flat_forward(&m, x, 1) != NULL;
    bn_flat_free(&m);
    return !(refused && two && eval);
}
C
${CC:-cc} ${CFLAGS:--O2} -Iruntime $B/api.c build/libnnrt.a ${LDFLAGS:-} -lm -lpthread -o $B/api
$B/api 2>$B/e4 && grep -q "bn_flat_forward: batch norm \`bn\` (line 9) cannot train on a batch of 1" $B/e4 &&
    ok "C API: forward in training at n = 1 is refused; n = 2 and evaluation at 1 work" ||
    { bad "C API: forward at n = 1"; cat $B/e4; }
exit $fail
