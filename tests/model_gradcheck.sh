#!/bin/sh
# Finite-difference gradient check of every model in models/ and
# tests/parity/models/, whole: nnc
# compiles it, tests/gradcheck_model.c includes the generated C.
set -eu
cd "$(dirname "$0")/.."
B=build/tests
mkdir -p $B
for nn in models/*.nn tests/parity/models/*.nn; do
    name=$(sed -n 's/^ *model  *\([A-Za-z_][A-Za-z0-9_]*\).*/\1/p' "$nn" | head -n 1)
    up=$(echo "$name" | tr a-z A-Z)
    build/nnc "$nn" -o $B/gc_$name.c
    ids=""      # token ids and class indices are drawn as such, not from a normal distribution
    # a sequence model's loss is the mean over every position, so each weight moves it
    # little: a longer step (it has no kinks: GELU, softmax, layernorm) keeps float32's
    # rounding of the loss from drowning the difference
    grep -q "^#define ${up}_VOCAB " $B/gc_$name.c && ids="$ids -DVOCAB_OF=${up}_VOCAB -DEPS=1e-2f"
    if grep -q "nnrt_lstm_forward" $B/gc_$name.c; then
        # an LSTM's recurrent weights move the mean loss of 192 positions by less than
        # float32 resolves at any step: its gradients are checked by finite differences
        # kernel by kernel (tests/runtime/test_kernels.c), and the whole model against
        # PyTorch (tests/model_parity.sh, lstm_char_sgd: 1e-6)
        echo "-- $nn: skipped (an LSTM: see tests/runtime/test_kernels.c and tests/model_parity.sh)"
        continue
    fi
    grep -q "^#define ${up}_CLASSES " $B/gc_$name.c && ids="$ids -DCLASSES_OF=${up}_CLASSES"
    ${CC:-cc} ${CFLAGS:--O2} -Iruntime -DMODEL_C="\"$PWD/$B/gc_$name.c\"" -DMODEL=$name -DMODEL_UP=$up $ids \
        tests/gradcheck_model.c build/libnnrt.a ${LDFLAGS:-} -lm -lpthread -o $B/gc_$name
    echo "-- $nn"
    $B/gc_$name
done
