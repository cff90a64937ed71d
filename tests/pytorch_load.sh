#!/bin/sh
# A checkpoint of the trainer loads into PyTorch with the snippet of
# docs/trainer.md, exactly as written there, under load_state_dict's strict
# default: every tensor of the twin's state_dict is there, num_batches_tracked
# included (int64, the steps trained), and the weights are the trainer's.
# The other way, a PyTorch state_dict with num_batches_tracked loads into
# the trainer and is written back. resnet_tiny (batch norms) and lenet_ce.
set -eu
cd "$(dirname "$0")/.."
B=build/tests/pytorch_load
rm -rf $B && mkdir -p $B
# the snippet: the python block under "## Weights and PyTorch"
awk '/^## Weights and PyTorch/ {w = 1} w && /^```python/ {p = 1; next} p && /^```/ {exit} p' docs/trainer.md \
    >$B/snippet.py
grep -q "load_state_dict" $B/snippet.py || { echo "FAIL no snippet found in docs/trainer.md"; exit 1; }
for name in resnet_tiny lenet_ce; do
    CC="${CC:-cc} ${LDFLAGS:-}" build/nnc models/$name.nn -o $B/$name 2>/dev/null
    $B/$name --steps 3 --batch 4 --quiet --save $B/$name.st
    (cd $B && /usr/bin/python3 - $name <<'PY'
import os, sys
sys.path.insert(0, os.path.join(os.environ.get("ROOT", "../../.."), "tests", "parity"))
import models, st
import numpy as np
name = sys.argv[1]
net = models.CASES[name][0]()
os.symlink(name + ".st", "w.safetensors") if not os.path.exists("w.safetensors") else None
exec(open("snippet.py").read())          # as a reader of docs/trainer.md would run it
os.remove("w.safetensors")
sd = net.state_dict()
raw = st.load(name + ".st")
for k, v in sd.items():
    want = raw[k]
    if not np.array_equal(v.numpy(), want):
        sys.exit(f"FAIL {name}: {k} differs after load_state_dict")
nbt = [k for k in sd if k.endswith("num_batches_tracked")]
if nbt and not all(int(sd[k]) == 3 for k in nbt):
    sys.exit(f"FAIL {name}: num_batches_tracked is {[int(sd[k]) for k in nbt]}, not 3")
print(f"ok   {name}: the trainer's checkpoint loads into PyTorch (strict), {len(nbt)} num_batches_tracked = 3")
# and back: PyTorch's state_dict, num_batches_tracked at 7, into the trainer
for k in nbt:
    sd[k].fill_(7)
st.save("torch.st", {k: v for k, v in sd.items()})
PY
    )
    $B/$name --load $B/torch.st --steps 0 --quiet --save $B/back.st
    /usr/bin/python3 - $B/back.st <<'PY'
import sys
sys.path.insert(0, "tests/parity")
import st
t = st.load(sys.argv[1])
nbt = [k for k in t if k.endswith("num_batches_tracked")]
bad = [k for k in nbt if int(t[k]) != 7]
if bad:
    sys.exit(f"FAIL {sys.argv[1]}: {bad} not kept")
print(f"ok   a PyTorch state_dict with num_batches_tracked loads into the trainer and is written back ({len(nbt)})")
PY
done
