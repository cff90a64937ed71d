"""The tutorial's LeNet in PyTorch, trained as nnc's trainer trains it.

The reference side of `make bench` (bench/bench.py runs it): the same network
as models/lenet.nn, random normal input [batch, 1, 32, 32] and target
[batch, 10], MSE loss, SGD lr 0.01, and the tutorial's loop
zero_grad / forward / loss / backward / step. A few warm-up steps run first
and are not timed; then STEPS steps are timed with a monotonic clock.

usage: /usr/bin/python3 bench/torch_lenet.py --batch B --steps S --threads T
Prints one line: "trained S steps in T s: X steps/s, Y samples/s", the line
nnc's trainer prints, so the driver parses both the same way.
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    """The tutorial's LeNet, as in tests/parity/parity.py."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=5)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    net = Net()
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
