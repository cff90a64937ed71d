"""The PyTorch side of the model bench: trains one twin on random data and
prints its speed in the line nnc's trainer prints.

bench/bench_models.py runs this next to nnc's trainer of the same model
(the twins are in bench/torch_models.py): the same batch, the same number of
steps, random data of the same shape, zero_grad / forward / loss / backward
/ step. A few untimed warm-up steps come first; then the loop alone is timed
with a monotonic clock. A convolutional model trains in both memory formats
in turn (contiguous, i.e. NCHW, and channels_last, NHWC), each with its own
fresh model, so the driver can report PyTorch's best; any other (an MLP, a
sequence model) in the contiguous format only.

usage:
  /usr/bin/python3 bench/torch_train.py run NAME --batch B --steps S --threads T [--warmup W]
      one line per memory format: "FORMAT: trained S steps in T s: X steps/s, Y samples/s"
  /usr/bin/python3 bench/torch_train.py calibrate NAME --batches 1,32,128 [--seconds 0.3]
      for each batch and format, seconds per step at one thread:
      "calibrate BATCH FORMAT SECONDS"
  /usr/bin/python3 bench/torch_train.py info NAME...
      a JSON object: per model that has a twin, its parameter count,
      multiply-adds per sample (forward, backward), whether it has
      convolutions, its loss, and its tokens per sample (a sequence model's
      positions; null for the others)
"""
import argparse
import json
import os
import sys
import time

import torch

sys.dont_write_bytecode = True      # no __pycache__ in bench/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models  # noqa: E402


def formats(twin):
    """the memory formats worth trying: channels_last only means something for convolutions"""
    return ["contiguous", "channels_last"] if twin.is_conv else ["contiguous"]


MEMORY_FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}


def prepared(name, batch, fmt):
    """a fresh twin and a random batch, both in memory format fmt"""
    torch.manual_seed(1)
    twin = torch_models.build(name, MEMORY_FORMATS[fmt])
    x, t = twin.random_batch(batch)
    twin.net.train()
    return twin, x, t


def timed(twin, x, t, steps):
    t0 = time.perf_counter()
    for _ in range(steps):
        twin.step(x, t)
    return time.perf_counter() - t0


def cmd_run(a):
    torch.set_num_threads(a.threads)
    for fmt in formats(torch_models.build(a.name)):
        twin, x, t = prepared(a.name, a.batch, fmt)
        timed(twin, x, t, a.warmup)
        dt = timed(twin, x, t, a.steps)
        print(f"{fmt}: trained {a.steps} steps in {dt:.3f} s: {a.steps / dt:.0f} steps/s, "
              f"{a.steps * a.batch / dt:.0f} samples/s", flush=True)


def cmd_calibrate(a):
    """seconds per step, by running steps until a.seconds have passed"""
    torch.set_num_threads(1)
    for batch in (int(b) for b in a.batches.split(",")):
        for fmt in formats(torch_models.build(a.name)):
            twin, x, t = prepared(a.name, batch, fmt)
            timed(twin, x, t, 1)                        # warm-up
            steps, dt = 0, 0.0
            while dt < a.seconds:
                dt += timed(twin, x, t, 1)
                steps += 1
            print(f"calibrate {batch} {fmt} {dt / steps:.6g}", flush=True)


def cmd_info(a):
    out = {}
    for name in (n for n in a.names if n in torch_models.MODELS):    # the others have no twin
        twin = torch_models.build(name)
        fwd, bwd = torch_models.macs(twin.net, twin.input_spec)
        out[name] = {"params": twin.params(), "fwd_macs": fwd, "bwd_macs": bwd,
                     "conv": twin.is_conv, "loss": twin.loss_name, "tokens": twin.tokens}
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("name")
    r.add_argument("--batch", type=int, required=True)
    r.add_argument("--steps", type=int, required=True)
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--warmup", type=int, default=3)
    c = sub.add_parser("calibrate")
    c.add_argument("name")
    c.add_argument("--batches", default="1,32,128")
    c.add_argument("--seconds", type=float, default=0.3)
    i = sub.add_parser("info")
    i.add_argument("names", nargs="+")
    a = ap.parse_args()
    {"run": cmd_run, "calibrate": cmd_calibrate, "info": cmd_info}[a.cmd](a)


if __name__ == "__main__":
    main()
