#!/bin/sh
# Checkpoints survive what happens to a trainer:
#   - SIGKILL at random moments, 50 times, while LeNet trains and saves its
#     checkpoint after every step (--save-every 1, most of its time is spent
#     writing it): each time the checkpoint loads, resumes, and is the old one
#     or a newer one (its step never goes back); a kill inside a write leaves
#     at most a <path>.tmp.<pid> file, which breaks no later save;
#   - a checkpoint path that cannot be written (no such directory, a
#     directory, a read-only file system) and a full disk (a small tmpfs when
#     this runs as root and may mount one, else a file size limit): exit 1, a
#     message naming the file, and the previous checkpoint intact;
#   - --nan-check: training stops at the first layer whose output is not
#     finite, names it, and leaves the last checkpoint in place; on a healthy
#     run it changes nothing (the same weights, bit for bit).
set -u
cd "$(dirname "$0")/.."
B=build/tests/kill
rm -rf $B && mkdir -p $B
CC=${CC:-cc}
fail=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }

build/nnc models/lenet.nn -o $B/lenet.c || exit 1
$CC ${CFLAGS:--O2} -Iruntime -Iruntime/host $B/lenet.c build/libnnrt-host.a build/libnnrt.a ${LDFLAGS:-} ${LDLIBS:--lcjson -lz -lm -lpthread} -o $B/lenet || exit 1
T=$B/lenet
# 32 samples of LeNet: 1024 pixels, then the 10 targets
awk 'BEGIN { srand(7); for (r = 0; r < 32; r++) { for (i = 0; i < 1034; i++) printf "%s%.3f", i ? "," : "", rand() - 0.5; print "" } }' >$B/data.csv
TRAIN="train --data csv:$B/data.csv --batch 4 --epochs 1000000 --save-every 1 --quiet"

# step_of FILE: the checkpoint's step (its metadata), or -1 if it does not parse
step_of() {
    /usr/bin/python3 - "$1" <<'PY' 2>/dev/null || echo -1
import sys
sys.path.insert(0, "tests/parity")
import st
t = st.load(sys.argv[1])
assert "conv1.weight" in t and "fc3.bias" in t
print(int(t.metadata["step"]))
PY
}

# -- SIGKILL, 50 times
$T $TRAIN --steps 3 --save $B/ck.st || { bad "the first checkpoint"; exit 1; }
last=$(step_of $B/ck.st)
[ "$last" = 3 ] || bad "the first checkpoint is at step $last, not 3"
start=$(date +%s)
kills=0 inside=0 older=0 broken=0 resumed=0
i=0
while [ $i -lt 50 ]; do
    i=$((i + 1))
    $T $TRAIN --resume $B/ck.st --save $B/ck.st >/dev/null 2>$B/run.err &
    pid=$!
    sleep "$(awk -v s=$i 'BEGIN { srand(s); printf "%.3f", 0.02 + rand() * 0.25 }')"
    kill -KILL $pid 2>/dev/null && kills=$((kills + 1))
    wait $pid 2>/dev/null
    [ -e $B/ck.st.tmp.$pid ] && inside=$((inside + 1))
    if ! $T --load $B/ck.st --steps 0 --quiet 2>$B/load.err; then
        broken=$((broken + 1)); echo "   after kill $i the checkpoint does not load:"; cat $B/load.err
        break
    fi
    now=$(step_of $B/ck.st)
    if [ "$now" -lt "$last" ]; then
        older=$((older + 1)); echo "   after kill $i the checkpoint is at step $now, before $last"
    fi
    [ "$now" -gt "$last" ] && resumed=$((resumed + 1))
    last=$now
    [ $(($(date +%s) - start)) -lt 30 ] || break
done
tmps=$(ls $B | grep -c '^ck\.st\.tmp\.')
if [ $broken -eq 0 ] && [ $older -eq 0 ] && [ $i -ge 20 ] && [ $resumed -gt 0 ]; then
    ok "$i SIGKILLs in $(($(date +%s) - start)) s: the checkpoint always loads, its step never goes back" \
       "(now $last; $resumed runs got further; $inside kills inside a write left a .tmp file)"
else
    bad "$i SIGKILLs: $broken unloadable, $older older checkpoints, $resumed runs got further"
fi
[ "$tmps" -eq "$inside" ] || bad "$tmps .tmp files, but $inside kills inside a write"
$T $TRAIN --resume $B/ck.st --steps $((last + 2)) --save $B/ck.st || bad "no save after the kills"
[ "$(step_of $B/ck.st)" = $((last + 2)) ] && ok "the .tmp files left by kills break no later save" ||
    bad "the save after the kills is at step $(step_of $B/ck.st)"
rm -f $B/ck.st.tmp.*

# -- saves that fail: exit 1, the file named, the old checkpoint intact
cp $B/ck.st $B/good.st
save_fails() {  # save_fails NAME PATH: the tutorial's loop, saving to PATH, must fail cleanly
    $T --steps 2 --quiet --save "$2" >/dev/null 2>$B/save.err
    rc=$?
    if [ $rc -ne 1 ] || ! grep -q -- "$2" $B/save.err; then
        bad "$1: exit $rc, expected 1 and a message naming $2:"; cat $B/save.err
    else
        ok "$1: exit 1, \"$(head -1 $B/save.err)\""
    fi
}
save_fails "--save into a missing directory" $B/missing/ck.st
mkdir -p $B/adir
save_fails "--save over a directory" $B/adir
[ -z "$(ls $B | grep '^adir\.tmp')" ] || bad "a failed save left its temporary file"

full=""
if [ "$(id -u)" = 0 ] && mkdir -p $B/mnt && mount -t tmpfs -o size=400k tmpfs $B/mnt 2>/dev/null; then
    full=tmpfs
    cp $B/good.st $B/mnt/ck.st     # 250 KB: a second copy does not fit
    save_fails "a full disk (a 400 KB tmpfs)" $B/mnt/ck.st
    cmp -s $B/good.st $B/mnt/ck.st && ok "the checkpoint on the full disk is intact" || bad "the full disk's checkpoint changed"
    [ -z "$(ls $B/mnt | grep tmp)" ] || bad "the failed save left its temporary file on the full disk"
    $T $TRAIN --resume $B/mnt/ck.st --steps $((last + 1)) --save $B/mnt/ck.st 2>$B/save.err
    [ $? -eq 1 ] && grep -q "$B/mnt/ck.st" $B/save.err && cmp -s $B/good.st $B/mnt/ck.st &&
        ok "train --save-every on the full disk: exit 1, the checkpoint intact" ||
        { bad "train on the full disk"; cat $B/save.err; }
    umount $B/mnt
    if mount -t tmpfs -o size=1m,ro tmpfs $B/mnt 2>/dev/null; then
        save_fails "a read-only file system" $B/mnt/ck.st
        umount $B/mnt
    fi
fi
if [ -z "$full" ]; then     # not root, or no mount here: a file size limit of 64 KB fails the write
    full="ulimit -f"
    cp $B/good.st $B/limited.st
    (trap '' XFSZ; ulimit -f 128; exec $T --steps 2 --quiet --save $B/limited.st) >/dev/null 2>$B/save.err
    rc=$?
    if [ $rc -eq 1 ] && grep -q "$B/limited.st" $B/save.err && cmp -s $B/good.st $B/limited.st; then
        ok "a write beyond the file size limit (ulimit -f): exit 1, \"$(head -1 $B/save.err)\", the checkpoint intact"
    else
        bad "ulimit -f: exit $rc"; cat $B/save.err
    fi
fi

# -- --nan-check
$T --steps 20 --quiet --save $B/plain.st && $T --steps 20 --quiet --nan-check --save $B/checked.st
cmp -s $B/plain.st $B/checked.st && ok "--nan-check on a healthy run: the same weights" ||
    bad "--nan-check changes the weights of a healthy run"
cp $B/good.st $B/nan.st
$T --lr 1e30 --steps 20 --quiet --nan-check --save $B/nan.st >/dev/null 2>$B/nan.err
rc=$?
if [ $rc -eq 1 ] && grep -q "the output of conv[12] (line [0-9]*) is not finite (--nan-check)" $B/nan.err &&
   cmp -s $B/good.st $B/nan.st; then
    ok "--nan-check: \"$(head -1 $B/nan.err)\"; the checkpoint intact"
else
    bad "--nan-check with --lr 1e30: exit $rc"; cat $B/nan.err
fi
# in train, --save-every saved the step before: its weights are finite, and it loads
$T $TRAIN --resume $B/good.st --lr 1e30 --nan-check --save $B/nan.st >/dev/null 2>$B/nan.err
rc=$?
at=$(sed -n 's/.* at step \([0-9]*\) the output of .* is not finite (--nan-check).*/\1/p' $B/nan.err)
finite=$(/usr/bin/python3 - $B/nan.st <<'PY' 2>&1
import sys
import numpy as np
sys.path.insert(0, "tests/parity")
import st
t = st.load(sys.argv[1])
print(int(t.metadata["step"]) if all(np.isfinite(v).all() for v in t.values()) else "not finite")
PY
)
if [ $rc -eq 1 ] && [ -n "$at" ] && [ "$finite" = $((at - 1)) ] && $T --load $B/nan.st --steps 0 --quiet; then
    ok "train --nan-check --save-every 1: stops at step $at, naming the layer; the checkpoint of step $((at - 1)) is finite and loads"
else
    bad "train --nan-check: exit $rc, stopped at step '$at', checkpoint: $finite"; cat $B/nan.err
fi
exit $fail
