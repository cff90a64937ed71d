#!/bin/sh
# safetensors_python.sh — the C runtime and tests/parity/st.py agree on safetensors.
#
# PyTorch tensors saved by st.py are read by nnrt_st_open and written again by
# nnrt_save_safetensors (st_copy.c): the two files must be byte-identical, and
# st.py must read the C-written one back bit for bit. Then st.py must refuse
# the malformed files the C reader refuses.
set -eu
cd "$(dirname "$0")/.."
CC=${CC:-cc}
CFLAGS=${CFLAGS:-"-O2 -g -std=c11 -Wall -Wextra -Werror"}
PYTHON=${PYTHON:-/usr/bin/python3}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

$CC $CFLAGS -D_POSIX_C_SOURCE=200809L -Iruntime -Iruntime/host tests/parity/st_copy.c \
    runtime/host/safetensors.c runtime/alloc.c ${LDFLAGS:-} -lcjson -lm -o "$T/st_copy"

PYTHONPATH=tests/parity "$PYTHON" - "$T" <<'PY'
import sys, torch, numpy as np
import st
t = sys.argv[1]
torch.manual_seed(0)
w = torch.randn(6, 1, 5, 5)
w.view(-1)[:4] = torch.tensor([float("inf"), -0.0, float("nan"), 1e-45])
tensors = {"conv1.weight": w, "conv1.bias": torch.randn(6), "scalar": torch.tensor(2.5),
           "empty": torch.zeros(0, 3), "fc.weight": np.arange(12, dtype=np.float64).reshape(3, 4)}
st.save(f"{t}/py.st", tensors, metadata={"model": "lenet", "note": "caf\u00e9 \"q\""})
back = st.load(f"{t}/py.st")
assert list(back) == list(tensors) and back.metadata["model"] == "lenet"
for k, v in tensors.items():
    v = np.asarray(v, dtype=np.float32)
    assert back[k].dtype == np.float32 and back[k].shape == v.shape, k
    assert back[k].tobytes() == v.tobytes(), k
print("ok   st.py round trip")
PY

"$T/st_copy" "$T/py.st" "$T/c.st" model note
cmp "$T/py.st" "$T/c.st"
echo "ok   st.py and nnrt_save_safetensors write the same bytes"

PYTHONPATH=tests/parity "$PYTHON" - "$T" <<'PY'
import sys, struct, numpy as np
import st
t = sys.argv[1]
a, b = st.load(f"{t}/py.st"), st.load(f"{t}/c.st")
assert b.metadata == a.metadata and list(a) == list(b)
for k in a:
    assert a[k].tobytes() == b[k].tobytes(), k
print("ok   st.py reads the C-written file bit for bit")

good = open(f"{t}/py.st", "rb").read()
bad = [good[:n] for n in range(len(good))]
bad.append(struct.pack("<Q", 2**64 - 1) + b"{}")
bad.append(struct.pack("<Q", 9) + b"{not json")
for i, b in enumerate(bad):
    open(f"{t}/bad.st", "wb").write(b)
    try:
        st.load(f"{t}/bad.st")
    except ValueError:
        continue
    raise SystemExit(f"st.py accepted malformed file {i}")
print("ok   st.py refuses truncated and malformed files")
PY
