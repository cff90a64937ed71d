"""MNIST interop: nnc's trainer and PyTorch share checkpoints both ways.

1. The trainer trains LeNet on a slice of MNIST and saves a checkpoint. The
   same LeNet, defined here in PyTorch, loads that checkpoint (read with
   st.py, numpy only) and must reach the trainer's test accuracy to within
   0.1%, on the same test samples prepared the same way.
2. A LeNet initialised by PyTorch is saved as safetensors; the trainer loads
   it (a state_dict: no optimizer state, no metadata) and its outputs on the
   test samples must be PyTorch's to within 1e-5 relative, and so must its
   accuracy.

The checkpoint's metadata names the model and how samples were prepared
(pad, normalize); the PyTorch side follows it:

    x = bytes / 255, zero-padded by `pad` pixels, then (x - mean) / std

usage: /usr/bin/python3 tests/parity/mnist_interop.py TRAINER MNIST_DIR WORKDIR
           [--checkpoint FILE] [--train N] [--test N]
  --checkpoint FILE   the trainer's checkpoint to check (default: train one on --train digits)
  --train N, --test N how many digits to train on (2000) and to test on (1000)
"""
import argparse
import gzip
import os
import re
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st
from lenet_torch import LeNet  # noqa: E402

NORMALIZE = (0.1307, 0.3081)  # MNIST's mean and standard deviation


MODELS = {  # the model's name in the checkpoint -> (conv1's padding, the data's --pad)
    "lenet_ce": (2, 0),
    "lenet": (0, 2),
}


def read_idx(path):
    """An IDX file (plain or gzip) as a numpy array"""
    opener = gzip.open if open(path, "rb").read(2) == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        raw = f.read()
    assert raw[0] == 0 and raw[1] == 0 and raw[2] == 8, f"{path}: not an IDX file of bytes"
    ndim = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def find(directory, name):
    for candidate in (name, name + ".gz"):
        if os.path.exists(os.path.join(directory, candidate)):
            return os.path.join(directory, candidate)
    raise SystemExit(f"{directory}: no {name}")


def prepare(images, pad, mean, std):
    """as torchvision's ToTensor, Pad and Normalize: bytes -> [N, 1, H, W] floats"""
    x = torch.from_numpy(images.astype(np.float32)).unsqueeze(1) / 255.0
    if pad:
        x = F.pad(x, (pad, pad, pad, pad), value=0.0)
    return (x - mean) / std


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise SystemExit(f"FAIL {' '.join(cmd)} exited {r.returncode}:\n{r.stderr}")
    return r.stdout


def trainer_accuracy(out):
    m = re.search(r"accuracy [0-9.]+% \((\d+)/(\d+)\)", out)
    if not m:
        raise SystemExit(f"FAIL no accuracy in the trainer's output:\n{out}")
    return int(m.group(1)), int(m.group(2))


def main():
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("trainer")
    ap.add_argument("mnist")
    ap.add_argument("work")
    ap.add_argument("--checkpoint")
    ap.add_argument("--train", type=int, default=2000)
    ap.add_argument("--test", type=int, default=1000)
    args = ap.parse_args()
    trainer, mnist, work, test_n = args.trainer, args.mnist, args.work, args.test
    os.makedirs(work, exist_ok=True)
    data = f"mnist:{mnist}"
    images = read_idx(find(mnist, "t10k-images-idx3-ubyte"))[:test_n]
    labels = read_idx(find(mnist, "t10k-labels-idx1-ubyte"))[:test_n].astype(np.int64)
    torch.set_num_threads(1)

    # -- 1. the trainer's checkpoint in PyTorch
    help_text = run([trainer, "--help"])
    name = re.search(r"the model `(\w+)`", help_text).group(1)
    conv1_padding, pad = MODELS[name]
    ckpt = args.checkpoint
    if not ckpt:
        ckpt = os.path.join(work, "trained.st")
        run([trainer, "train", "--data", data, "--epochs", "1", "--limit", str(args.train), "--test-limit", "10",
             "--pad", str(pad), "--normalize", f"{NORMALIZE[0]},{NORMALIZE[1]}", "--save", ckpt, "--quiet"])
    right_c, n = trainer_accuracy(run([trainer, "eval", "--load", ckpt, "--data", data, "--limit", str(test_n)]))
    tensors = st.load(ckpt)
    meta = tensors.metadata
    assert meta["model"] == name and int(meta["pad"]) == pad, meta
    mean, std = (float(v) for v in meta["normalize"].split(","))
    net = LeNet(conv1_padding)
    state = {k: torch.from_numpy(v) for k, v in tensors.items() if not k.startswith("optimizer.")}
    net.load_state_dict(state, strict=True)
    net.eval()
    x = prepare(images, pad, mean, std)
    with torch.no_grad():
        right_t = int((net(x).argmax(1).numpy() == labels).sum())
    diff = abs(right_c - right_t) / n
    print(f"{'ok  ' if diff <= 0.001 else 'FAIL'} the trainer's checkpoint in PyTorch: test accuracy "
          f"{100 * right_c / n:.2f}% (nnc) and {100 * right_t / n:.2f}% (PyTorch) on {n} samples")
    if diff > 0.001:
        raise SystemExit(1)

    # -- 2. a PyTorch-initialised checkpoint in the trainer
    torch.manual_seed(0)
    net = LeNet(conv1_padding)
    init = os.path.join(work, "torch_init.st")
    st.save(init, net.state_dict())  # no metadata: the trainer takes --pad and --normalize
    dump = os.path.join(work, "outputs.st")
    out = run([trainer, "eval", "--load", init, "--data", data, "--limit", str(test_n), "--pad", str(pad),
               "--normalize", f"{NORMALIZE[0]},{NORMALIZE[1]}", "--dump", dump])
    right_c, n = trainer_accuracy(out)
    x = prepare(images, pad, *NORMALIZE)
    net.eval()
    with torch.no_grad():
        want = net(x).numpy()
    got = st.load(dump)
    assert got["output"].shape == want.shape and (got["label"] == labels).all()
    err = float(np.abs(got["output"] - want).max() / np.abs(want).max())
    right_t = int((want.argmax(1) == labels).sum())
    good = err <= 1e-5 and right_c == right_t
    print(f"{'ok  ' if good else 'FAIL'} a PyTorch-initialised checkpoint in the trainer: outputs within "
          f"{err:.1e} relative of PyTorch's; accuracy {100 * right_c / n:.2f}% (nnc), "
          f"{100 * right_t / n:.2f}% (PyTorch)")
    if not good:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
