"""PyTorch parity for LeNet: the tutorial's network, in PyTorch and compiled by nnc.

From the same initial weights (PyTorch's default initialisation, handed over
as safetensors) and the same input and target, one or more steps of
zero_grad / forward / MSE / backward / SGD must give PyTorch's loss, output,
every gradient and every updated weight, within 1e-5 relative (per tensor:
max |nnc - torch| / max |torch|).

usage: /usr/bin/python3 tests/parity/parity.py TRAINER WORKDIR
"""
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402  (safetensors in numpy, tests/parity/st.py)
from lenet_torch import LeNet  # noqa: E402

TOL = 1e-5


def Net():
    """The tutorial's LeNet (tests/parity/lenet_torch.py)."""
    return LeNet()


def rel_err(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    scale = max(np.abs(b).max(), 1e-30)
    return float(np.abs(a - b).max() / scale)


def run_case(trainer, work, batch, steps, lr, seed):
    torch.manual_seed(seed)
    net = Net()
    x = torch.randn(batch, 1, 32, 32)
    t = torch.randn(batch, 10)
    tag = f"n{batch}_s{steps}"
    init = os.path.join(work, f"init_{tag}.safetensors")
    data = os.path.join(work, f"data_{tag}.safetensors")
    dump = os.path.join(work, f"dump_{tag}.safetensors")
    st.save(init, {k: v.detach().numpy() for k, v in net.state_dict().items()})
    st.save(data, {"input": x.numpy(), "target": t.numpy()})
    subprocess.run([trainer, "--load", init, "--data", data, "--steps", str(steps), "--lr", repr(lr),
                    "--dump", dump, "--quiet"], check=True)
    got = st.load(dump)

    opt = torch.optim.SGD(net.parameters(), lr=lr)
    crit = nn.MSELoss()
    for _ in range(steps):
        opt.zero_grad()
        out = net(x)
        loss = crit(out, t)
        loss.backward()
        grads = {k: p.grad.detach().clone() for k, p in net.named_parameters()}
        opt.step()

    want = {"loss": loss.detach().reshape(1).numpy(), "output": out.detach().numpy()}
    for k, p in net.named_parameters():
        want[k] = p.detach().numpy()
        want[k + ".grad"] = grads[k].numpy()
    failed = 0
    worst = 0.0
    for name, ref in want.items():
        if name not in got:
            print(f"FAIL n={batch} steps={steps}: nnc's dump has no '{name}'")
            failed += 1
            continue
        e = rel_err(got[name], ref)
        worst = max(worst, e)
        if not e <= TOL:
            print(f"FAIL n={batch} steps={steps} {name}: relative error {e:.2e} > {TOL:g}")
            failed += 1
    status = "ok  " if not failed else "FAIL"
    print(f"{status} batch {batch}, {steps} step(s): loss {float(loss):.6f}, {len(want)} tensors, "
          f"max relative error {worst:.2e}")
    return failed


def main():
    trainer, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    torch.set_num_threads(1)
    failed = 0
    failed += run_case(trainer, work, batch=1, steps=1, lr=0.01, seed=0)   # the tutorial
    failed += run_case(trainer, work, batch=4, steps=1, lr=0.01, seed=1)
    failed += run_case(trainer, work, batch=3, steps=3, lr=0.05, seed=2)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
