#!/bin/sh
# PyTorch parity of the tutorial's LeNet (see tests/parity/parity.py). Needs
# Debian's python3-torch under /usr/bin/python3 (make deps installs it).
set -eu
cd "$(dirname "$0")/.."
B=build/tests/parity
mkdir -p $B
build/nnc models/lenet.nn -o $B/lenet.c
${CC:-cc} ${CFLAGS:--O2} -Iruntime -Iruntime/host $B/lenet.c build/libnnrt-host.a build/libnnrt.a ${LDFLAGS:-} ${LDLIBS:--lcjson -lz -lm -lpthread} -o $B/lenet
/usr/bin/python3 tests/parity/parity.py $B/lenet $B
