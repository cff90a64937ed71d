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
/usr/bin/python3 tests/parity/models.py $B $args
