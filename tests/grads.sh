#!/bin/sh
# The gradients of generated models behave as PyTorch's .grad with nnc's lazy
# zero_grad (tests/grads/grads.c): LeNet (convolutions, whose gradients are
# cleared before their backward, and linear layers, whose backward assigns
# them), a model that applies a layer twice (the second call adds; its
# backward_step updates that layer after both calls) and one with momentum
# (whose backward_step is the three calls).
set -eu
cd "$(dirname "$0")/.."
B=build/tests
mkdir -p $B
for nn in models/lenet.nn tests/grads/shared.nn models/mlp.nn; do
    name=$(sed -n 's/^ *model  *\([A-Za-z_][A-Za-z0-9_]*\).*/\1/p' "$nn" | head -n 1)
    up=$(echo "$name" | tr a-z A-Z)
    build/nnc "$nn" -o $B/grads_$name.c
    ${CC:-cc} ${CFLAGS:--O2} -Iruntime -DMODEL_C="\"$PWD/$B/grads_$name.c\"" -DMODEL=$name -DMODEL_UP=$up \
        tests/grads/grads.c build/libnnrt.a ${LDFLAGS:-} -lm -lpthread -o $B/grads_$name
    echo "-- $nn"
    $B/grads_$name
done
