"""LeNet on MNIST in PyTorch, trained as nnc's `train --data mnist:DIR` trains it.

The reference side of the MNIST rows of `make bench` (bench/bench.py runs it
next to the trainer of models/lenet_ce.nn). The same work as nnc's trainer:

  - the network: models/lenet_ce.nn's LeNet (conv1 padding 2, for 28x28
    digits), PyTorch's default initialisation (tests/parity/lenet_torch.py,
    the twin the parity tests check against nnc);
  - the loss and optimizer the model declares: cross-entropy, SGD lr 0.02
    momentum 0.9, CosineAnnealingLR(T_max=3) stepped once per epoch;
  - the data: MNIST's IDX files (plain or .gz) read with Python and numpy
    (no torchvision), converted once to a float tensor as ToTensor and
    Normalize do, (x / 255 - 0.1307) / 0.3081, in float32;
  - each epoch a new permutation (torch.randperm), batches of 64 indexed from
    that tensor, zero_grad / forward / loss / backward / step, the running
    loss and accuracy; then a pass over the test set in batches of 64,
    without gradients (torch.inference_mode), in evaluation mode.

Timing, with a monotonic clock, in the parts nnc's trainer reports: loading
the training set (reading, checking, converting to the normalised tensor),
training (the epochs' loops, shuffling and batching included), loading the
test set, and the test passes. Process start-up (Python, `import torch`) is
outside all of them, as the trainer's start-up is.

usage: /usr/bin/python3 bench/torch_mnist.py --data DIR [--threads T] [--epochs E]
           [--batch B] [--seed S]
Prints, as nnc's trainer does:
  torch: trained E epochs (S steps) in X s, test accuracy Y%
  torch: time: load L s, train T s, load test LT s, test TT s
"""
import argparse
import gzip
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

# the twin of models/lenet_ce.nn that the parity tests check against nnc
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "parity"))
from lenet_torch import LeNet  # noqa: E402

MEAN, STD = 0.1307, 0.3081      # --normalize 0.1307,0.3081
LR, MOMENTUM, T_MAX = 0.02, 0.9, 3  # sgd(lr=0.02, momentum=0.9, schedule=cosine(t_max=3))


def find(directory, name):
    """DIR/name, or DIR/name.gz, as the trainer's mnist:DIR looks for them"""
    for candidate in (name, name + ".gz"):
        path = os.path.join(directory, candidate)
        if os.path.exists(path):
            return path
    sys.exit(f"torch_mnist: {directory}: no {name} (nor {name}.gz); `make mnist` fetches MNIST")


def read_idx(path):
    """An IDX file of bytes (plain or gzip) as a numpy array, checked against its header"""
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    if gz:
        with gzip.open(path, "rb") as f:
            raw = bytearray(f.read())
    else:
        raw = bytearray(os.path.getsize(path))       # writable: torch.from_numpy takes it as it is
        with open(path, "rb") as f:
            f.readinto(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 8:
        sys.exit(f"torch_mnist: {path}: not an IDX file of bytes")
    ndim = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    if len(raw) - offset != int(np.prod(shape)):
        sys.exit(f"torch_mnist: {path}: {len(raw) - offset} bytes of data, the header declares {shape}")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(shape)


def load(directory, prefix):
    """images [N, 1, 28, 28] normalised float32, labels [N] int64"""
    images = read_idx(find(directory, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(find(directory, f"{prefix}-labels-idx1-ubyte"))
    if labels.shape[0] != images.shape[0]:
        sys.exit(f"torch_mnist: {directory}: {labels.shape[0]} labels for {images.shape[0]} images")
    x = torch.from_numpy(images).unsqueeze(1).to(torch.float32)
    x.div_(255.0).sub_(MEAN).div_(STD)              # ToTensor, then Normalize
    y = torch.from_numpy(labels).to(torch.int64)
    return x, y


def train_epoch(net, opt, x, y, batch, gen):
    """one shuffled pass; returns (steps, mean loss, accuracy)"""
    net.train()
    perm = torch.randperm(x.shape[0], generator=gen)
    loss_sum = torch.zeros((), dtype=torch.float64)
    correct = torch.zeros((), dtype=torch.int64)
    steps = 0
    for at in range(0, x.shape[0], batch):
        idx = perm[at:at + batch]
        xb, yb = x[idx], y[idx]
        opt.zero_grad()
        out = net(xb)
        loss = F.cross_entropy(out, yb)
        loss.backward()
        opt.step()
        loss_sum += loss.detach() * idx.shape[0]
        correct += (out.detach().argmax(1) == yb).sum()
        steps += 1
    return steps, loss_sum.item() / x.shape[0], correct.item() / x.shape[0]


def test_pass(net, x, y, batch):
    """the test set in order, batch by batch; returns (mean loss, accuracy)"""
    net.eval()
    loss_sum, correct = 0.0, 0
    with torch.inference_mode():
        for at in range(0, x.shape[0], batch):
            out = net(x[at:at + batch])
            yb = y[at:at + batch]
            loss_sum += F.cross_entropy(out, yb, reduction="sum").item()
            correct += int((out.argmax(1) == yb).sum())
    return loss_sum / x.shape[0], correct / x.shape[0]


def main():
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("--data", required=True, help="MNIST's directory (mnist:DIR for nnc)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    net = LeNet(conv1_padding=2)
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=T_MAX)

    t0 = time.perf_counter()
    x, y = load(a.data, "train")
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    xt, yt = load(a.data, "t10k")
    t_load_test = time.perf_counter() - t0

    t_train = t_test = 0.0
    steps = 0
    test_acc = 0.0
    for epoch in range(a.epochs):
        t0 = time.perf_counter()
        n, loss, acc = train_epoch(net, opt, x, y, a.batch, gen)
        dt = time.perf_counter() - t0
        t_train += dt
        steps += n
        sched.step()
        t0 = time.perf_counter()
        test_loss, test_acc = test_pass(net, xt, yt, a.batch)
        t_test += time.perf_counter() - t0
        print(f"epoch {epoch + 1}/{a.epochs}  loss {loss:.4f}  acc {100 * acc:.2f}%  test loss {test_loss:.4f}"
              f"  acc {100 * test_acc:.2f}%  ({dt:.1f} s, {x.shape[0] / dt:.0f} samples/s)", flush=True)
    total = t_train + t_test                        # as the trainer's: from the first step
    print(f"torch: trained {a.epochs} epoch{'s' if a.epochs != 1 else ''} ({steps} steps) in {total:.1f} s, "
          f"test accuracy {100 * test_acc:.2f}%")
    print(f"torch: time: load {t_load:.3f} s, train {t_train:.3f} s, load test {t_load_test:.3f} s, "
          f"test {t_test:.3f} s", flush=True)


if __name__ == "__main__":
    main()
