"""The tutorial's LeNet in PyTorch, trained as nnc's trainer trains it.

The reference side of `make bench` (bench/bench.py runs it): the same network
as models/lenet.nn (tests/parity/lenet_torch.py, the one the parity tests
use), random normal input [batch, 1, 32, 32] and target
[batch, 10], MSE loss, SGD lr 0.01, and the tutorial's loop
zero_grad / forward / loss / backward / step. A few warm-up steps run first
and are not timed; then STEPS steps are timed with a monotonic clock.

usage: /usr/bin/python3 bench/torch_lenet.py --batch B --steps S --threads T
Prints one line: "trained S steps in T s: X steps/s, Y samples/s", the line
nnc's trainer prints, so the driver parses both the same way.
"""
import argparse
import os
import sys
import time

import torch
import torch.nn as nn

# the twin of models/lenet.nn that the parity tests check against nnc
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "parity"))
from lenet_torch import LeNet  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=5)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    net = LeNet()
    x = torch.randn(a.batch, 1, 32, 32)
    t = torch.randn(a.batch, 10)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    crit = nn.MSELoss()

    def step():
        opt.zero_grad()
        loss = crit(net(x), t)
        loss.backward()
        opt.step()

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    dt = time.perf_counter() - t0
    print(f"trained {a.steps} steps in {dt:.3f} s: {a.steps / dt:.0f} steps/s, "
          f"{a.steps * a.batch / dt:.0f} samples/s", flush=True)


if __name__ == "__main__":
    main()
