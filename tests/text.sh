#!/bin/sh
# A text as a data set, and sampling: `train --data text:FILE`, `eval` on
# its validation bytes, `sample` (runtime/host/text.c, trainer.c).
#
# tests/text/bigram.c is a bigram language model written by hand against
# nnrt_model (vocab 8, windows of 8): on "abcabc..." it learns each next
# letter exactly, so its validation loss falls near 0 and greedy sampling
# from "a" writes "bcabc..." for ever. Then: the checkpoint's vocabulary,
# eval repeating train's last validation loss, --seed, --resume, the CSV
# log, and bad input, each refused with a message and a non-zero status;
# and, when models/gpt_char.nn exists, a few steps of it.
# Runs from tests/run.sh (CC, CFLAGS, LDFLAGS, LDLIBS) or alone.
set -eu
cd "$(dirname "$0")/.."
B=build/tests/text
rm -rf $B && mkdir -p $B
CC=${CC:-cc}
CFLAGS=${CFLAGS:--O2 -g -std=c11 -Wall -Wextra -Werror}
LDLIBS=${LDLIBS:--lcjson -lz -lm -lpthread}
fail() { echo "FAIL $*"; exit 1; }
ok() { echo "ok   $*"; }
# expect_error STATUS TEXT CMD...: CMD exits with STATUS and says TEXT on stderr as "PROG: error: ..."
expect_error() {
    want=$1 text=$2
    shift 2
    set +e
    "$@" >$B/out 2>$B/err
    rc=$?
    set -e
    [ $rc -eq "$want" ] || { cat $B/err; fail "$* exits $rc, not $want"; }
    grep -q ': error: ' $B/err || { cat $B/err; fail "$*: no 'error:' line"; }
    grep -qF -- "$text" $B/err || { cat $B/err; fail "$*: the message lacks '$text'"; }
}

link() { # OUT FLAGS...: tests/text/bigram.c with the host and kernel libraries
    out=$1
    shift
    $CC $CFLAGS "$@" -Iruntime -Iruntime/host tests/text/bigram.c build/libnnrt-host.a build/libnnrt.a \
        ${LDFLAGS:-} $LDLIBS -o "$out"
}
link $B/bigram
link $B/bigram_noncausal -DBIGRAM_CAUSAL=0
G=$B/bigram

# -- the tutorial's loop: random ids in [0, vocab) and a class per position
$G --steps 50 --print-every 50 >$B/loop
awk '/^step +1 /{a=$4} /^step +50 /{b=$4} END{exit !(a > 0 && b < a)}' $B/loop ||
    { cat $B/loop; fail "the random-data loop does not train a model of tokens"; }
ok "random data: token ids, a class per position; the loss falls"

# -- training on "abcabc...": the validation loss falls far below log(8) = 2.08
awk 'BEGIN{for(i=0;i<400;i++) printf "abc"}' >$B/abc.txt
$G train --data text:$B/abc.txt --steps 300 --batch 16 --eval-every 100 --print-every 100 \
    --save $B/abc.st --log $B/abc.csv >$B/train
grep -q "1200 bytes, 3 distinct" $B/train || { cat $B/train; fail "the plan does not describe the text"; }
val=$(awk '/^step .*val loss/{v=$NF} END{print v}' $B/train)
awk -v v="$val" 'BEGIN{exit !(v < 0.05)}' || { cat $B/train; fail "the val loss is $val, not near 0"; }
[ "$(grep -c '^step .*val loss' $B/train)" -eq 3 ] || fail "not 3 validations in 300 steps with --eval-every 100"
ok "train --data text: val loss $val after 300 steps (log(8) = 2.08)"

# the log: a row per step, an eval row per validation, the columns of every log
head -1 $B/abc.csv | grep -qx 'kind,epoch,step,loss,accuracy,test_loss,test_accuracy,lr,seconds' ||
    fail "the log's header"
[ "$(grep -c '^step,' $B/abc.csv)" -eq 300 ] && [ "$(grep -c '^eval,' $B/abc.csv)" -eq 3 ] ||
    fail "the log does not hold 300 step rows and 3 eval rows"
grep '^eval,' $B/abc.csv | tail -1 | awk -F, -v v="$val" '{exit !($3 == 300 && $6 == v)}' ||
    fail "the last eval row is not step 300 with val loss $val"
ok "the log: step rows and eval rows (the val loss as test_loss)"

# the checkpoint keeps the vocabulary: the bytes of a, b, c
grep -aq '"vocab":"97,98,99"' $B/abc.st || fail "the checkpoint has no vocab metadata 97,98,99"
ok "the checkpoint's metadata: vocab 97,98,99"

# eval repeats the last validation of train (the same windows, the same weights)
$G eval --load $B/abc.st --data text:$B/abc.txt --batch 16 >$B/eval
grep -qx "val loss $val" $B/eval || { cat $B/eval; fail "eval's val loss is not train's $val"; }
ok "eval --data text: val loss $val, as train's last"

# -- sampling
$G sample --load $B/abc.st --prompt a --tokens 30 --temperature 0 >$B/greedy
[ "$(cat $B/greedy)" = "abcabcabcabcabcabcabcabcabcabca" ] || fail "greedy sampling from 'a' wrote '$(cat $B/greedy)'"
ok "sample --temperature 0 from 'a': a + bcabc... (30 tokens)"
$G sample --load $B/abc.st --prompt cab --tokens 200 --seed 7 --temperature 1.5 --top-k 0 >$B/s1
$G sample --load $B/abc.st --prompt cab --tokens 200 --seed 7 --temperature 1.5 --top-k 0 >$B/s2
$G sample --load $B/abc.st --prompt cab --tokens 200 --seed 8 --temperature 1.5 --top-k 0 >$B/s3
cmp -s $B/s1 $B/s2 || fail "the same --seed writes other text"
cmp -s $B/s1 $B/s3 && fail "another --seed writes the same text"
[ "$(wc -c <$B/s1)" -eq 203 ] || fail "the prompt and 200 tokens are not 203 bytes"
[ "$(tr -d abc <$B/s1 | wc -c)" -eq 0 ] || fail "sampling wrote a byte outside the vocabulary (ids 3..7 have none)"
ok "sample --seed: the same text twice; bytes of the vocabulary only"
# a model that has not learnt: every id of the table is likely, ids 3..7 most of all
$G train --data text:$B/abc.txt --steps 1 --lr 0.001 --quiet --save $B/raw.st
$G sample --load $B/raw.st --tokens 500 --temperature 5 >$B/raw
[ "$(tr -d abc <$B/raw | wc -c)" -eq 0 ] || fail "an untrained model emits ids beyond the text's vocabulary"
[ "$(tr -d a <$B/raw | wc -c)" -gt 0 ] || fail "an untrained model at temperature 5 writes only 'a'"
ok "sample: ids beyond the text's vocabulary are never drawn"
# top-k 1 is greedy
$G sample --load $B/raw.st --prompt b --tokens 40 --top-k 1 --seed 3 >$B/k1
$G sample --load $B/raw.st --prompt b --tokens 40 --temperature 0 >$B/t0
cmp -s $B/k1 $B/t0 || fail "--top-k 1 differs from --temperature 0"
ok "sample --top-k 1 is --temperature 0"

# -- --resume goes on bit-identically; --save-every
$G train --data text:$B/abc.txt --steps 120 --batch 16 --lr 0.5 --quiet --save $B/whole.st
$G train --data text:$B/abc.txt --steps 50 --batch 16 --lr 0.5 --quiet --save $B/part.st
$G train --data text:$B/abc.txt --steps 120 --batch 16 --lr 0.5 --quiet --resume $B/part.st
cmp -s $B/whole.st $B/part.st || fail "a resumed run differs from one never stopped"
ok "train --resume on a text: bit-identical to an unbroken run"

# -- bad input: a message and a non-zero status, never a crash
expect_error 1 "the prompt's 'x' (at offset 1) is not in the vocabulary" \
    $G sample --load $B/abc.st --prompt ax
awk 'BEGIN{for(i=0;i<20;i++) printf "abcdefghij"}' >$B/ten.txt
expect_error 1 "holds 10 distinct bytes, but the model's vocabulary has 8" $G train --data text:$B/ten.txt --steps 1
grep -qF 'tokens(vocab=10)' $B/err || fail "no help to declare tokens(vocab=10)"
expect_error 1 "$B/none.txt: cannot open" $G train --data text:$B/none.txt --steps 1
printf 'abcabcabcabcabcabcabc' >$B/short.txt
expect_error 1 "$B/short.txt: too short" $G train --data text:$B/short.txt --steps 1
: >$B/empty.txt
expect_error 1 "$B/empty.txt: the file is empty" $G train --data text:$B/empty.txt --steps 1
expect_error 2 "--epochs does not fit a text" $G train --data text:$B/abc.txt --epochs 2
expect_error 2 "say how long to train with --steps N" $G train --data text:$B/abc.txt
expect_error 2 "--pad does not apply to a text" $G train --data text:$B/abc.txt --steps 1 --pad 2
expect_error 1 "the model's input is token ids" $G train --data csv:$B/abc.txt --steps 1
expect_error 1 "$B/noweights.st: cannot open" $G sample --load $B/noweights.st
expect_error 1 "sample needs a causal model" $B/bigram_noncausal sample --load $B/abc.st
expect_error 2 "--temperature expects a number >= 0" $G sample --load $B/abc.st --temperature -1
expect_error 1 "predict takes images" $G predict --load $B/abc.st $B/abc.txt
# a checkpoint without a vocabulary: sample refuses it, eval uses the file's and says so
$G --steps 1 --quiet --save $B/novocab.st
expect_error 1 "holds no vocabulary" $G sample --load $B/novocab.st
$G eval --load $B/novocab.st --data text:$B/abc.txt >$B/out 2>$B/err
grep -q "note: .*holds no vocabulary; using the distinct bytes of" $B/err || fail "eval gives no note on its vocabulary"
# a text's byte the checkpoint's vocabulary lacks
printf 'abcd%.0s' $(seq 30) >$B/abcd.txt
expect_error 1 "its 'd' (at offset 3) is not in the vocabulary of $B/abc.st" \
    $G eval --load $B/abc.st --data text:$B/abcd.txt
# text: on a model of floats
build/nnc tests/data/tiny.nn -o $B/tiny.c
$CC $CFLAGS -Iruntime -Iruntime/host $B/tiny.c build/libnnrt-host.a build/libnnrt.a ${LDFLAGS:-} $LDLIBS -o $B/tiny
expect_error 1 "a text is the data of a model of tokens, and this model's input is floats" \
    $B/tiny train --data text:$B/abc.txt
expect_error 1 "sample writes text, from a model of tokens" $B/tiny sample --load $B/abc.st
ok "bad input: unknown prompt byte, too many bytes, missing, short and empty files, flags, models"

# -- the character-level GPT of models/, when there is one: a few steps, eval and sample
if [ -f models/gpt_char.nn ]; then
    build/nnc models/gpt_char.nn -o $B/gpt_char.c
    $CC $CFLAGS -Iruntime -Iruntime/host $B/gpt_char.c build/libnnrt-host.a build/libnnrt.a ${LDFLAGS:-} $LDLIBS \
        -o $B/gpt_char
    cat README.md docs/trainer.md | LC_ALL=C tr -cd '\n -~' >$B/docs.txt
    $B/gpt_char train --data text:$B/docs.txt --steps 6 --batch 4 --eval-every 3 --eval-batches 2 \
        --save $B/gpt.st >$B/gpt_train
    gval=$(awk '/^step .*val loss/{v=$NF} END{print v}' $B/gpt_train)
    $B/gpt_char eval --load $B/gpt.st --data text:$B/docs.txt --batch 4 --eval-batches 2 >$B/gpt_eval
    grep -qx "val loss $gval" $B/gpt_eval || { cat $B/gpt_train $B/gpt_eval; fail "gpt_char: eval differs from train"; }
    $B/gpt_char sample --load $B/gpt.st --prompt "The " --tokens 40 --seed 1 >$B/gpt_s1
    $B/gpt_char sample --load $B/gpt.st --prompt "The " --tokens 40 --seed 1 >$B/gpt_s2
    [ "$(wc -c <$B/gpt_s1)" -eq 44 ] && cmp -s $B/gpt_s1 $B/gpt_s2 || fail "gpt_char: sample"
    ok "models/gpt_char.nn: 6 steps on a text (val loss $gval, as eval's), sample"
fi
