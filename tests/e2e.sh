#!/bin/sh
# End to end: nnc compiles models/lenet.nn, the C compiler builds the trainer
# (warnings are errors), and the trainer runs the tutorial's loop; the loss
# must fall. Then the command-line contracts of nnc and of the trainer.
set -eu
cd "$(dirname "$0")/.."
B=build/tests/e2e
rm -rf $B && mkdir -p $B
CC=${CC:-cc}
fail() { echo "FAIL $*"; exit 1; }
ok() { echo "ok   $*"; }

# -- compile and train
build/nnc models/lenet.nn -o $B/lenet.c
$CC ${CFLAGS:--O2} -Wall -Wextra -Werror -Iruntime -Iruntime/host $B/lenet.c build/libnnrt-host.a build/libnnrt.a ${LDFLAGS:-} ${LDLIBS:--lcjson -lz -lm -lpthread} -o $B/lenet
$B/lenet --steps 60 --print-every 1 >$B/train.out
first=$(awk '$1 == "step" && $2 == 1 {print $4}' $B/train.out)
last=$(awk '$1 == "step" && $2 == 60 {print $4}' $B/train.out)
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a / 10) }' || fail "loss did not fall: $first -> $last"
grep -q 'Total params:   61,706' $B/train.out || fail "the trainer's summary lacks the parameter count"
ok "lenet trains: loss $first -> $last in 60 steps"

$B/lenet --steps 30 --batch 8 --quiet --save $B/b8.safetensors
ok "batch 8"

# -- nnc -o EXE drives the C compiler
CC="$CC ${LDFLAGS:-}" build/nnc models/lenet.nn -o $B/lenet_exe
$B/lenet_exe --steps 2 --quiet || fail "nnc -o lenet_exe"
[ ! -e $B/lenet_exe.nnc.c ] || fail "nnc left its temporary C file"
ok "nnc -o executable"

# -- a checkpoint resumes exactly: 20 steps == 10 steps, save, load, 10 steps
$B/lenet --steps 20 --quiet --save $B/s20.safetensors
$B/lenet --steps 10 --quiet --save $B/s10.safetensors
$B/lenet --steps 10 --quiet --load $B/s10.safetensors --save $B/s10_10.safetensors
cmp -s $B/s20.safetensors $B/s10_10.safetensors || fail "save/load/continue differs from an uninterrupted run"
ok "save, load and continue give bit-identical weights"

# -- the same seed gives the same run; another seed another
$B/lenet --steps 3 --seed 5 --quiet --save $B/a.st
$B/lenet --steps 3 --seed 5 --quiet --save $B/b.st
$B/lenet --steps 3 --seed 6 --quiet --save $B/c.st
cmp -s $B/a.st $B/b.st || fail "seed 5 twice differs"
! cmp -s $B/a.st $B/c.st || fail "seeds 5 and 6 give the same weights"
ok "seeded and deterministic"

# -- the trainer's flags: bad ones exit 2 with a message, --help exits 0
expect_exit() {
    want=$1; shift
    set +e; "$@" >$B/out 2>$B/err; got=$?; set -e
    [ $got -eq $want ] || { cat $B/err; fail "'$*' exited $got, expected $want"; }
}
expect_exit 0 $B/lenet --help
grep -q -- '--steps' $B/out || fail "--help does not list --steps"
expect_exit 2 $B/lenet --bach 3
grep -q "did you mean '--batch'" $B/err || fail "no did-you-mean for --bach: $(cat $B/err)"
expect_exit 2 $B/lenet --steps -1
expect_exit 2 $B/lenet --lr abc
expect_exit 2 $B/lenet --batch 0
expect_exit 2 $B/lenet --steps
expect_exit 2 $B/lenet stray
expect_exit 1 $B/lenet --load $B/missing.st
grep -q "missing.st" $B/err || fail "--load of a missing file does not name it"
ok "trainer flags: --help 0, bad flags 2, missing checkpoint 1"

# -- a loss that turns NaN stops training, names the first layer that went
#    non-finite, and saves nothing over the last good weights
cp $B/s20.safetensors $B/good.st
expect_exit 1 $B/lenet --lr 1e30 --steps 5 --quiet --save $B/good.st
grep -q "the first value that is not finite is the output of conv" $B/err || fail "no layer named: $(cat $B/err)"
cmp -s $B/s20.safetensors $B/good.st || fail "the last good weights were overwritten"
ok "NaN: stops, names the layer, keeps the last good weights"

# -- a checkpoint of another model is refused, naming the mismatch
cat >$B/other.nn <<'NN'
model other {
  input x: [4]
  fc1 = linear(10)
  forward {
    return fc1(x)
  }
  loss mse()
  optimizer sgd(lr=0.1)
}
NN
CC="$CC ${LDFLAGS:-}" build/nnc $B/other.nn -o $B/other
$B/other --steps 1 --quiet --save $B/other.st
expect_exit 1 $B/lenet --steps 1 --load $B/other.st
grep -q "fc1.weight" $B/err || fail "the refusal does not name fc1.weight: $(cat $B/err)"
ok "a checkpoint of another model is refused"

# -- nnc's command line
expect_exit 1 build/nnc $B/nope.nn
[ "$(cat $B/err)" = "nnc: error: cannot open '$B/nope.nn': No such file or directory" ] || fail "missing file message: $(cat $B/err)"
expect_exit 2 build/nnc
expect_exit 2 build/nnc --frobnicate models/lenet.nn
expect_exit 0 build/nnc --version
expect_exit 0 build/nnc --help
expect_exit 1 build/nnc models
build/nnc --summary models/lenet.nn >$B/summary
grep -q '^fc1 .*linear .*\[N, 120\] .*48,120' $B/summary || fail "summary lacks fc1's row"
build/nnc models/lenet.nn >$B/stdout.c
cmp -s $B/stdout.c $B/lenet.c || fail "nnc without -o differs from -o lenet.c"
ok "nnc: missing file, usage errors, --summary, stdout"

# -- make install, and building with pkg-config: the trainer with nnrt-host,
#    an embedded model with nnrt (the kernels alone) and the installed headers
make -s install PREFIX="$PWD/$B/prefix" >/dev/null
for f in bin/nnc lib/libnnrt.a lib/libnnrt-host.a include/nnrt.h include/nnrt_host.h include/nnrt_sizing.h \
         lib/pkgconfig/nnrt.pc lib/pkgconfig/nnrt-host.pc; do
    [ -f $B/prefix/$f ] || fail "make install did not install $f"
done
export PKG_CONFIG_PATH="$PWD/$B/prefix/lib/pkgconfig"
pkg-config --cflags --libs nnrt-host >$B/pc
$CC -O2 $B/lenet.c $(cat $B/pc) ${LDFLAGS:-} -o $B/lenet_pc
$B/lenet_pc --steps 2 --quiet
pkg-config --libs nnrt >$B/pc_kernels
grep -q -e '-lcjson' -e '-lz' $B/pc_kernels && fail "pkg-config --libs nnrt names cJSON or zlib: $(cat $B/pc_kernels)"
$CC -O2 -DMODEL_C="\"$PWD/$B/lenet.c\"" -DMODEL=lenet -DMODEL_UP=LENET tests/embed/embed.c \
    $(pkg-config --cflags nnrt) $(cat $B/pc_kernels) ${LDFLAGS:-} -o $B/embed_pc
$B/embed_pc >/dev/null || fail "the embedded model built with pkg-config nnrt"
sizing_c=$(printf '#include "nnrt_sizing.h"\nint main(void) { conv_geom g; (void)g; return 0; }\n')
echo "$sizing_c" | $CC -fsyntax-only -x c $(pkg-config --cflags nnrt) - || fail "nnrt_sizing.h does not compile installed"
CC="$CC ${LDFLAGS:-}" $B/prefix/bin/nnc models/lenet.nn -o $B/lenet_installed
$B/lenet_installed --steps 2 --quiet
ok "make install, pkg-config nnrt-host (a trainer) and nnrt (an embedded model), installed nnc"
