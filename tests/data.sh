#!/bin/sh
# Data sets and the trainer's commands, on small hand-made files.
#
# tests/data/tiny.nn classifies 4x4 images of three classes (a lit top row,
# left column or diagonal). The same nine images are written here as IDX
# (plain and gzip), CSV and PGM; pixels are 0 or 255, so every format gives
# the model the same numbers and the same training gives the same
# checkpoint, byte for byte. Then: eval, predict, the CSV log, resuming a
# run bit-identically, and bad files, each refused with exit status 1 and a
# message naming the file. tests/data/test_data.c tests data.c's functions
# one by one.
set -eu
cd "$(dirname "$0")/.."
B=build/tests/data
rm -rf $B && mkdir -p $B
CC=${CC:-cc}
fail() { echo "FAIL $*"; exit 1; }
ok() { echo "ok   $*"; }

$CC ${CFLAGS:--O2} -Iruntime -Iruntime/host tests/data/test_data.c build/libnnrt-host.a build/libnnrt.a ${LDFLAGS:-} ${LDLIBS:--lcjson -lz -lm -lpthread} \
    -o $B/test_data
$B/test_data $B
build/nnc tests/data/tiny.nn -o $B/tiny.c
$CC ${CFLAGS:--O2} -Iruntime -Iruntime/host $B/tiny.c build/libnnrt-host.a build/libnnrt.a ${LDFLAGS:-} ${LDLIBS:--lcjson -lz -lm -lpthread} -o $B/tiny
T=$B/tiny

# -- the images: 16 characters each, '#' is 255 and '.' is 0, row by row
IMAGES="####............ 0
#...#...#...#... 1
#....#....#....# 2
####.#.......... 0
#...#...#...##.. 1
#....#....#..#.# 2
####......#..... 0
#...#...#...#..# 1
##...#....#....# 2"
bytes() { printf "$(echo "$1" | sed 's/#/\\377/g; s/\./\\000/g')"; }
idx_images() { # N ROWS COLS: the header of an IDX file of bytes [N, ROWS, COLS]
    printf '\000\000\010\003\000\000\000\'"$(printf %03o "$1")"'\000\000\000\'"$(printf %03o "$2")"
    printf '\000\000\000\'"$(printf %03o "$3")"
}
{ idx_images 9 4 4; echo "$IMAGES" | while read -r img label; do bytes "$img"; done; } >$B/img
{ printf '\000\000\010\001\000\000\000\011'; echo "$IMAGES" | while read -r img label; do
    printf '\'"$(printf %03o "$label")"; done; } >$B/lbl
gzip -c $B/img >$B/img.gz
gzip -c $B/lbl >$B/lbl.gz
{ echo "p0,p1,p2,p3,p4,p5,p6,p7,p8,p9,p10,p11,p12,p13,p14,p15,label"
  echo "$IMAGES" | while read -r img label; do
      echo "$(echo "$img" | sed 's/#/1,/g; s/\./0,/g')$label"; done; } >$B/tiny.csv
gzip -c $B/tiny.csv >$B/tiny.csv.gz
[ "$(wc -c <$B/img)" -eq 160 ] && [ "$(wc -c <$B/lbl)" -eq 17 ] || fail "the hand-made IDX files"

# -- the same data in every format trains to the same checkpoint
TRAIN="train --epochs 20 --batch 4 --quiet"
$T $TRAIN --data idx:$B/img,$B/lbl --save $B/idx.st
$T $TRAIN --data idx:$B/img.gz,$B/lbl.gz --save $B/gz.st
$T $TRAIN --data csv:$B/tiny.csv --save $B/csv.st
$T $TRAIN --data $B/tiny.csv.gz --save $B/csvgz.st
cmp -s $B/idx.st $B/gz.st || fail "IDX and gzipped IDX train differently"
cmp -s $B/idx.st $B/csv.st || fail "IDX and CSV train differently"
cmp -s $B/idx.st $B/csvgz.st || fail "CSV and gzipped CSV train differently"
ok "IDX, gzip IDX, CSV and gzip CSV: the same data, the same checkpoint"

# -- train reports each epoch (piped: one plain line each), tests, logs
$T train --data idx:$B/img,$B/lbl --test-data csv:$B/tiny.csv --epochs 3 --batch 4 --log $B/log.csv \
    --save $B/w.st >$B/out
[ "$(grep -c '^epoch [1-3]/3  loss [0-9.]*  acc [0-9.]*%  test loss [0-9.]*  acc [0-9.]*%' $B/out)" -eq 3 ] ||
    { cat $B/out; fail "train's per-epoch lines"; }
! grep -q "$(printf '\r')" $B/out || fail "a progress bar on a pipe"
# the line make bench reads (bench/bench.py: TIMES)
grep -q ': time: load [0-9.]* s, train [0-9.]* s, load test [0-9.]* s, test [0-9.]* s$' $B/out ||
    { cat $B/out; fail "train's time line"; }
head -1 $B/log.csv | grep -qx 'kind,epoch,step,loss,accuracy,test_loss,test_accuracy,lr,seconds' ||
    fail "the log's header"
[ "$(grep -c '^step,' $B/log.csv)" -eq 9 ] && [ "$(grep -c '^epoch,' $B/log.csv)" -eq 3 ] ||
    fail "the log: 9 steps (3 epochs of 3 batches: 4, 4 and 1) and 3 epochs"
awk -F, 'NR > 1 && NF != 9 { exit 1 }' $B/log.csv || fail "the log has rows of other than 9 fields"
ok "train: a line per epoch, test loss and accuracy, the time line, the CSV log"

$T eval --load $B/idx.st --data idx:$B/img,$B/lbl >$B/out
grep -q '^loss [0-9.e-]*  accuracy 100.00% (9/9)$' $B/out || { cat $B/out; fail "eval's accuracy"; }
grep -q '^confusion matrix' $B/out && grep -q '^    2      0     0     3  100.00%$' $B/out ||
    { cat $B/out; fail "eval's confusion matrix"; }
ok "eval: loss, accuracy, confusion matrix"

printf 'P2\n# a diagonal: class 2\n4 4\n255\n255 0 0 0\n0 255 0 0\n0 0 255 0\n0 0 0 255\n' >$B/diag.pgm
$T predict --load $B/idx.st $B/diag.pgm >$B/out
grep -q "^$B/diag.pgm: 2, probability [01]\.[0-9]*\$" $B/out || { cat $B/out; fail "predict on a PGM"; }
grep -q '^    0 [01]\.[0-9]*     1 [01]\.[0-9]*     2 [01]\.[0-9]*$' $B/out || { cat $B/out; fail "predict's probabilities"; }
$T predict --load $B/idx.st --data idx:$B/img.gz,$B/lbl.gz --index 4 >$B/out
grep -q "^$B/img.gz\[4\]: 1, probability .* (label 1)\$" $B/out || { cat $B/out; fail "predict --data --index"; }
$T predict --load $B/idx.st $B/img --index 8 >$B/out
grep -q "^$B/img\[8\]: 2, " $B/out || { cat $B/out; fail "predict on an IDX file"; }
ok "predict: a PGM, an IDX file and a data set's sample"

# -- resuming: stopped after 5 steps, then after 7, then to the end: the
# same bytes as one run (momentum SGD: the optimizer's state must come back)
R="train --data idx:$B/img,$B/lbl --epochs 4 --batch 2 --quiet"
$T $R --save $B/full.st
$T $R --save $B/part.st --steps 5
$T $R --resume $B/part.st --steps 7
$T $R --resume $B/part.st
cmp -s $B/full.st $B/part.st || fail "stopped and resumed twice differs from one run"
$T $R --save $B/edge.st --steps 10   # the end of the second epoch
$T $R --resume $B/edge.st
cmp -s $B/full.st $B/edge.st || fail "resumed at the end of an epoch differs from one run"
ok "stopped and resumed: bit-identical to an uninterrupted run"

# -- errors: exit 1, and the message names the file
expect_error() { # FILE-IN-MESSAGE MESSAGE-PART COMMAND...
    name=$1 part=$2; shift 2
    set +e; "$@" >$B/out 2>$B/err; rc=$?; set -e
    [ $rc -eq 1 ] || { cat $B/err; fail "'$*' exited $rc, expected 1"; }
    grep -qF -- "$name" $B/err || fail "'$*': the message does not name $name: $(cat $B/err)"
    grep -qF -- "$part" $B/err || fail "'$*': the message lacks '$part': $(cat $B/err)"
}
printf '\001\002\003\004\000\000\000\011' >$B/magic
expect_error $B/magic "not an IDX file: it starts with 01 02 03 04" $T train --data idx:$B/magic,$B/lbl
head -c 100 $B/img >$B/short
expect_error $B/short "truncated: the header declares [9, 4, 4], 144 bytes of data, but the file holds 84" \
    $T train --data idx:$B/short,$B/lbl
head -c 30 $B/img.gz >$B/short.gz
expect_error $B/short.gz "the gzip data is cut short" $T train --data idx:$B/short.gz,$B/lbl
{ cat $B/img; printf '\000'; } >$B/long
expect_error $B/long "more data than the header declares" $T train --data idx:$B/long,$B/lbl
{ printf '\000\000\010\001\000\000\000\011\000\001\002\000\001\007\000\001\002'; } >$B/lbl7
expect_error $B/lbl7 "the label of sample 5 is 7, out of range: the model has 3 classes (0 to 2)" \
    $T train --data idx:$B/img,$B/lbl7
printf '\000\000\010\001\000\000\000\010\000\001\002\000\001\002\000\001' >$B/lbl8
expect_error $B/lbl8 "8 labels, but $B/img holds 9 samples" $T train --data idx:$B/img,$B/lbl8
{ idx_images 1 5 5; bytes "#########################"; } >$B/img5
expect_error $B/img5 "its samples are [5, 5], but the model's input is [1, 4, 4]" \
    $T predict --load $B/idx.st $B/img5
expect_error $B/nothere "$B/nothere: cannot open: No such file or directory" $T train --data idx:$B/nothere,$B/lbl
expect_error $B/nothere "cannot open" $T eval --load $B/idx.st --data csv:$B/nothere
expect_error $B/nodir/train-images-idx3-ubyte "help: \`make mnist\`" $T train --data mnist:$B/nodir
printf '1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0\n1,0,0,x,0,0,0,0,0,0,0,0,0,0,0,0,0\n' >$B/bad.csv
expect_error $B/bad.csv:2 "field 4 is 'x', not a number" $T train --data csv:$B/bad.csv
printf '1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0\n1,0,0,0\n' >$B/short.csv
expect_error $B/short.csv:2 "4 fields, but the first row has 17" $T train --data csv:$B/short.csv
printf '1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1.5\n' >$B/frac.csv
expect_error $B/frac.csv:1 "the label (field 17) is 1.5, not a class index" $T train --data csv:$B/frac.csv
printf '1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0\n' >$B/narrow.csv
expect_error $B/narrow.csv:1 "16 fields; the model takes 16 features, then a label (17 fields)" \
    $T train --data $B/narrow.csv
expect_error $B/img "--index 9 is out of range: it holds 9 samples" $T predict --load $B/idx.st $B/img --index 9
expect_error $B/img "holds 9 samples: choose one with --index N" $T predict --load $B/idx.st $B/img
ok "bad data: wrong magic, truncated, too long, label out of range, counts and sizes differ, missing, bad CSV"

# -- checkpoints and runs that do not go together
$T --steps 2 --quiet --save $B/plain.st
expect_error $B/plain.st "not a checkpoint of \`tiny train\`" $T $R --resume $B/plain.st
expect_error $B/part.st "trained with --batch 2, this run has 3" $T $R --batch 3 --resume $B/part.st
expect_error $B/part.st "trained with --seed 1, this run has 2" $T $R --seed 2 --resume $B/part.st
set +e; $T train --epochs 2 >$B/out 2>$B/err; rc=$?; set -e
[ $rc -eq 2 ] && grep -q "train needs --data SPEC" $B/err || fail "train without --data: $rc $(cat $B/err)"
set +e; $T eval --data csv:$B/tiny.csv >$B/out 2>$B/err; rc=$?; set -e
[ $rc -eq 2 ] && grep -q "eval needs --load FILE" $B/err || fail "eval without --load: $rc $(cat $B/err)"
ok "refused: --resume of a plain checkpoint, of another batch or seed; missing --data, --load"

# -- the tutorial's loop on --data: its first --batch samples, all of them without --batch
$T --steps 1 --batch 6 --quiet --dump $B/six.st
$T --data $B/six.st --steps 2 >$B/out
grep -q "^batch 6, 2 steps" $B/out || { cat $B/out; fail "--data without --batch: not the whole file"; }
$T --data $B/six.st --steps 2 --batch 4 >$B/out
grep -q "^batch 4, 2 steps" $B/out || { cat $B/out; fail "--data --batch 4: not 4 samples"; }
expect_error $B/six.st "--batch 7, but it holds 6 samples" $T --data $B/six.st --steps 1 --batch 7
ok "the tutorial's loop on --data: --batch takes its first samples (6 without, 4, 7 refused)"

# -- a regression target saved as [N] for a model with one output: values, not labels
CC="${CC:-cc} ${LDFLAGS:-}" build/nnc tests/data/reg.nn -o $B/reg
python3 - $B/reg_target.st <<'PY'
import json, struct, sys
x = [0.1 * i for i in range(12)]           # input [4, 3]
t = [0.332449, 0.5, 0.25, 0.75]            # target [4]: one value a sample
head = {"input": {"dtype": "F32", "shape": [4, 3], "data_offsets": [0, 48]},
        "target": {"dtype": "F32", "shape": [4], "data_offsets": [48, 64]}}
h = json.dumps(head).encode()
h += b" " * (-len(h) % 8)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + struct.pack("<12f", *x) + struct.pack("<4f", *t))
PY
$B/reg train --data $B/reg_target.st --batch 2 --quiet --save $B/reg.st ||
    fail "train on targets [N] of a one-output regression model"
ok "a regression target [N] for a model with one output: read as values"
expect_error $B/plain.st "is a checkpoint of the model \`tiny\`, not of \`reg\`" $B/reg --load $B/plain.st --steps 1
ok "another model's checkpoint: said so, with its name"
$B/reg predict --load $B/reg.st --data $B/reg_target.st --index 1 >$B/out
grep -q "^$B/reg_target.st\[1\]: output [-0-9.e]* (target 0.5)\$" $B/out || { cat $B/out; fail "predict of a regression model"; }
ok "predict on a regression model: its output and the target, not a class"
sed 's/input x: \[1, 4, 4\]/input x: [3, 6, 6]/; s/model tiny/model rgb/' tests/data/tiny.nn >$B/rgb.nn
CC="${CC:-cc} ${LDFLAGS:-}" build/nnc $B/rgb.nn -o $B/rgb
expect_error $B/img "the height and width fit; the channels do not: 1 here, 3" $B/rgb train --data idx:$B/img,$B/lbl --pad 1
grep -q "help: --pad" $B/err && fail "a --pad suggested where the channels differ"
ok "channels that differ: said so, and no --pad suggested"
mkdir -p $B/mn $B/nodata && cp $B/img $B/mn/train-images-idx3-ubyte
expect_error $B/mn "help: write --data mnist:$B/mn" $T train --data $B/mn
expect_error $B/nodata "is a folder, not a data set" $T train --data $B/nodata
ok "--data DIR: a folder of MNIST's files gets mnist:DIR; another folder, what --data takes"

# -- make plot, where gnuplot is
if command -v gnuplot >/dev/null; then
    make -s plot LOG=$B/log.csv >/dev/null
    [ -s $B/log.png ] || fail "make plot made no PNG"
    # a regression model's log has no accuracy; a run shorter than an epoch, no epoch rows
    $B/reg train --data $B/reg_target.st --batch 2 --epochs 2 --quiet --log $B/reg_log.csv
    make -s plot LOG=$B/reg_log.csv >/dev/null && [ -s $B/reg_log.png ] || fail "make plot of a regression log"
    grep '^step,' $B/reg_log.csv >$B/steps_log.csv
    make -s plot LOG=$B/steps_log.csv >/dev/null && [ -s $B/steps_log.png ] || fail "make plot of step rows alone"
    ok "make plot: a classifier's log, a regression model's, step rows alone"
fi
