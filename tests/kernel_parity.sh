#!/bin/sh
# Kernel-level PyTorch parity (see tests/parity/kernels.py): each runtime
# kernel on its own, forward and backward, against torch.nn.functional and
# torch.optim, through tests/parity/kernel_harness.c. Needs Debian's
# python3-torch under /usr/bin/python3 (make deps installs it).
set -eu
cd "$(dirname "$0")/.."
B=build/tests/kernel_parity
mkdir -p $B
${CC:-cc} ${CFLAGS:--O2} -Iruntime -Iruntime/host tests/parity/kernel_harness.c build/libnnrt-host.a build/libnnrt.a ${LDFLAGS:-} \
    ${LDLIBS:--lcjson -lz -lm -lpthread} -o $B/kernel_harness
/usr/bin/python3 tests/parity/kernels.py $B/kernel_harness $B
