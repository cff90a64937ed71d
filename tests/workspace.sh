#!/bin/sh
# The kernels' workspace is planned exactly: nnc computes the scratch every
# convolution and linear layer asks for (runtime/sizing/workspace.c), the generated
# trainer allocates that with its model, and the kernels take their scratch
# from it. A kernel that asks for more than planned still works (it falls
# back to memory of its own) but is counted, and the trainer warns at exit.
# So: every model, at batches that take each path of the convolution (1;
# 5, one chunk of samples; 20, three chunks) and with 1 and 2 threads,
# trains three steps without that warning, and with the same bits when the
# scratch is filled with NaNs before each use (NNRT_POISON_SCRATCH); so does
# an epoch whose last batch is smaller than the others. And the
# check can fail: a plan of half the size must make the warning appear.
set -eu
cd "$(dirname "$0")/.."
B=build/tests/workspace
mkdir -p $B
n=0
for nn in models/*.nn tests/parity/models/*.nn; do
    name=$(basename "$nn" .nn)
    build/nnc "$nn" -o $B/$name.c
    ${CC:-cc} ${CFLAGS:--O2} -Iruntime -Iruntime/host $B/$name.c build/libnnrt-host.a build/libnnrt.a ${LDFLAGS:-} ${LDLIBS:--lcjson -lz -lm -lpthread} -o $B/$name
    for batch in 1 5 20; do
        for threads in 1 2; do
            if ! NNRT_THREADS=$threads $B/$name --steps 3 --batch $batch --quiet --dump $B/dump 2>$B/err; then
                # a batch norm on one value per channel: no batch of one (tests/min_batch.sh)
                grep -q "batch norm cannot train on one value per channel" $B/err && continue
                echo "FAIL $name: batch $batch, $threads threads: the trainer failed"; cat $B/err; exit 1
            fi
            if grep -q "scratch memory" $B/err; then
                echo "FAIL $name: batch $batch, $threads threads: $(cat $B/err)"; exit 1
            fi
            # the same bits with every scratch buffer filled with NaNs first
            # (parallel.c): no kernel reads scratch it did not write
            NNRT_POISON_SCRATCH=1 NNRT_THREADS=$threads $B/$name --steps 3 --batch $batch --quiet \
                --dump $B/dump_poisoned 2>$B/err || { echo "FAIL $name: poisoned scratch"; cat $B/err; exit 1; }
            if ! cmp -s $B/dump $B/dump_poisoned; then
                echo "FAIL $name: batch $batch, $threads threads: scratch filled with NaNs changes the results"
                exit 1
            fi
            n=$((n + 1))
        done
    done
    if grep -q "^#define [A-Z0-9_]*_VOCAB " $B/$name.c; then
        # a model of tokens trains on a text, whose batches are random windows, all full:
        # a few steps there, poisoned or not, the same bits
        awk 'BEGIN { for (i = 0; i < 400; i++) print "the quick brown fox jumps over the lazy dog " i }' >$B/$name.txt
        for batch in 5 20; do
            for poison in 0 1; do
                NNRT_POISON_SCRATCH=$poison $B/$name train --data text:$B/$name.txt --steps 3 --eval-every 3 \
                    --eval-batches 2 --batch $batch --quiet --save $B/ckpt$poison.safetensors >$B/out 2>$B/err ||
                    { echo "FAIL $name: a text, batch $batch: the trainer failed"; cat $B/err $B/out; exit 1; }
                if grep -q "scratch memory" $B/err; then
                    echo "FAIL $name: a text, batch $batch: $(cat $B/err)"; exit 1
                fi
            done
            cmp -s $B/ckpt0.safetensors $B/ckpt1.safetensors ||
                { echo "FAIL $name: a text, batch $batch: scratch filled with NaNs changes the results"; exit 1; }
            n=$((n + 1))
        done
        continue
    fi
    # an epoch of 41 samples ends with a batch of one (20, 20, 1; 5 ... 5, 1):
    # its plan is the full batch's, and some kernels split a small batch differently
    sizes=$(sed -nE 's/^#define [A-Z0-9_]+_(INPUT|OUTPUT|TARGET)_SIZE +([0-9]+).*/\1 \2/p' $B/$name.c)
    nin=$(echo "$sizes" | awk '$1 == "INPUT" {print $2}')
    nout=$(echo "$sizes" | awk '$1 == "OUTPUT" {print $2}')
    ntarget=$(echo "$sizes" | awk '$1 == "TARGET" {print $2}')
    awk -v nin="$nin" -v nout="$nout" -v nt="$ntarget" 'BEGIN {
        srand(7)
        for (r = 0; r < 41; r++) {
            line = ""
            for (i = 0; i < nin; i++) line = line sprintf("%.4f,", rand() * 2 - 1)
            if (nt == 1 && nout > 1) line = line int(rand() * nout)      # a class
            else for (i = 0; i < nt; i++) line = line sprintf("%s%.4f", i ? "," : "", rand())
            print line
        }
    }' >$B/$name.csv
    for batch in 5 20; do
        for threads in 1 2; do
            for poison in 0 1; do
                if ! NNRT_POISON_SCRATCH=$poison NNRT_THREADS=$threads $B/$name train --data csv:$B/$name.csv \
                        --batch $batch --quiet --save $B/ckpt$poison.safetensors >$B/out 2>$B/err; then
                    grep -q "batch norm cannot train on one value per channel" $B/err && continue 3
                    echo "FAIL $name: an epoch of 41 samples, batch $batch, $threads threads: the trainer failed"
                    cat $B/err $B/out; exit 1
                fi
                if grep -q "scratch memory" $B/err; then
                    echo "FAIL $name: an epoch of 41 samples, batch $batch, $threads threads: $(cat $B/err)"; exit 1
                fi
            done
            if ! cmp -s $B/ckpt0.safetensors $B/ckpt1.safetensors; then
                echo "FAIL $name: an epoch of 41 samples, batch $batch, $threads threads: scratch filled with NaNs changes the results"
                exit 1
            fi
            n=$((n + 1))
        done
    done
done
echo "ok   $n runs (every model, batches 1, 5 and 20, and an epoch of 41 samples at batches 5 and 20 ending with a batch of one; 1 and 2 threads): no kernel outgrew the planned workspace, nor read scratch it did not write"

# every batch from 1 to the planned one, at 1 and 2 threads, for every model
# (and tests/workspace/v_a.nn): a step at each n within the plan for 20 and 64
for nn in models/*.nn tests/parity/models/*.nn tests/workspace/*.nn; do
    name=$(basename "$nn" .nn)
    up=$(echo "$name" | tr a-z A-Z)
    build/nnc "$nn" -o $B/eb_$name.c 2>/dev/null
    ${CC:-cc} ${CFLAGS:--O2} -Iruntime -DMODEL_C="\"$PWD/$B/eb_$name.c\"" -DMODEL=$name -DMODEL_UP=$up \
        tests/workspace/every_batch.c build/libnnrt.a ${LDFLAGS:-} -lm -lpthread -o $B/eb_$name
    batches="20 64"     # a sequence model's steps are long (a GPT's at 64 under ASan, minutes): 20
    grep -q "^#define ${up}_VOCAB " $B/eb_$name.c && batches=20
    for batch in $batches; do
        for threads in 1 2; do
            $B/eb_$name $batch $threads >$B/eb.out 2>$B/eb.err || { cat $B/eb.out $B/eb.err; exit 1; }
        done
    done
done
echo "ok   every model, planned for batches 20 and 64 (sequence models: 20) on 1 and 2 threads: a step at every smaller batch within the plan"

# the check itself: the generated lenet with its plan halved must warn
sed 's/nnrt_workspace_floats(&ws, threads)/nnrt_workspace_floats(\&ws, threads); for (int s = 0; s < 4; s++) ws.slot[s] \/= 2/' \
    $B/lenet.c >$B/lenet_half.c
grep -q "ws.slot\[s\] /= 2" $B/lenet_half.c
${CC:-cc} ${CFLAGS:--O2} -Iruntime -Iruntime/host $B/lenet_half.c build/libnnrt-host.a build/libnnrt.a ${LDFLAGS:-} ${LDLIBS:--lcjson -lz -lm -lpthread} -o $B/lenet_half
NNRT_THREADS=2 $B/lenet_half --steps 3 --batch 20 --quiet 2>$B/err
if grep -q "more scratch memory than nnc planned" $B/err; then
    echo "ok   a plan of half the size is caught: $(cat $B/err)"
else
    echo "FAIL a workspace of half the plan went unnoticed"; exit 1
fi
