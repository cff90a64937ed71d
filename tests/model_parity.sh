#!/bin/sh
# PyTorch parity of whole models (tests/parity/models.py): every model in
# models/ (but lenet, which tests/parity.sh covers) and tests/parity/models/.
set -eu
cd "$(dirname "$0")/.."
B=build/tests/model_parity
mkdir -p $B
args=""
for nn in models/*.nn tests/parity/models/*.nn; do
    name=$(basename "$nn" .nn)
    [ "$name" = lenet ] && continue
    src=$nn
    if [ "$name" = mlp ]; then      # its dropout at p=0: masks come from different generators
        sed 's/p=0\.2/p=0.0/' "$nn" >$B/mlp.nn
        src=$B/mlp.nn
    fi
    build/nnc "$src" -o $B/$name.c
    ${CC:-cc} ${CFLAGS:--O2} -Iruntime -Iruntime/host $B/$name.c build/libnnrt-host.a build/libnnrt.a ${LDFLAGS:-} ${LDLIBS:--lcjson -lz -lm -lpthread} -o $B/$name
    args="$args $name=$B/$name"
done
# the sequence models once more with SGD, whose steps do not magnify rounding as
# Adam's do (and whose weight decay, on the matrices alone, is large enough to be seen)
for name in gpt_char lstm_char; do
    sed -e '/^  optimizer /,/^}/{/^}/!d;}' models/$name.nn |
        sed 's/^}$/  optimizer sgd(lr=0.1, momentum=0.9, weight_decay=0.1, decay="matrices")\n}/' >$B/${name}_sgd.nn
    build/nnc $B/${name}_sgd.nn -o $B/${name}_sgd.c
    ${CC:-cc} ${CFLAGS:--O2} -Iruntime -Iruntime/host $B/${name}_sgd.c build/libnnrt-host.a build/libnnrt.a ${LDFLAGS:-} ${LDLIBS:--lcjson -lz -lm -lpthread} -o $B/${name}_sgd
    args="$args ${name}_sgd=$B/${name}_sgd"
done
/usr/bin/python3 tests/parity/models.py $B $args
