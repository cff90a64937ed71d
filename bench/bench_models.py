"""The model bench: every model of models/ and bench/models/ trained by nnc
and by its PyTorch twin, side by side in the same run.

LeNet's bench (bench/bench.py) says how fast nnc is on the network it was
tuned for; this part says how fast it is on the others: the examples of
models/ and a bench set of our own in bench/models/ (ResNet-20, a small VGG,
a wide MLP, a depthwise-separable net), each against the same network in
PyTorch (bench/torch_models.py, run by bench/torch_train.py).

For each model and batch:
  - nnc: the trainer built the way a user builds it (`nnc MODEL -o TRAINER`,
    $CC -O2), run as `TRAINER --batch B --steps S+1 --print-every 1000000000`:
    random data, the model's own loss and optimizer, the loop timed inside the
    trainer after its first step, at NNRT_THREADS=1 and 2 (THREADS);
  - PyTorch: the twin on random data of the same kind (token ids and a class
    per position for a sequence model), the same batch and steps, after a few
    untimed warm-up steps, torch.set_num_threads(1) and 2, in both memory
    formats for a convolutional model (contiguous and channels_last: the
    faster one is reported), in the contiguous one for any other;
  - steps: chosen by a quick calibration at one thread so that the slower
    side's run lasts about MODEL_SECONDS (1 s);
  - each setting runs RUNS times, nnc and PyTorch interleaved; medians.
The report (a markdown section, printed, and the last section of
bench/results.md): samples/s of each side at each thread count, the ratio of
the bests, GFLOP/s of each side and nnc's share of this machine's peak
(bench/peak.c, as bench.py measures it), and nnc's 2-thread/1-thread speedup;
tokens/s (samples/s x T) of a sequence model (input `[T] tokens(...)`); and
per model the parameter counts of nnc (`nnc --summary`) and of the twin,
which must agree.

usage: /usr/bin/python3 bench/bench.py runs it after LeNet's bench (make bench);
       /usr/bin/python3 bench/bench_models.py runs it alone and replaces its
       section of bench/results.md.
environment: MODELS (names, default all; empty: skip this part), MODEL_BATCHES
(default BATCHES if set, else "1 32 128"; lists are separated by spaces or
commas), MODEL_RUNS (default RUNS if set,
else 3), THREADS (default "1 2"), MODEL_SECONDS (the slower side's seconds a
run, default 1.0), MODEL_TIMEOUT (seconds a process may take, default 120),
CC, TORCH_PYTHON, BUILD (as bench.py's).
"""
import datetime
import glob
import json
import math
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
OUT = os.path.join(BUILD, "bench", "models")
RESULTS = os.path.join(ROOT, "bench", "results.md")
MODEL_DIRS = [os.path.join(ROOT, "models"), os.path.join(ROOT, "bench", "models")]
TORCH_TRAIN = os.path.join(ROOT, "bench", "torch_train.py")

CC = os.environ.get("CC", "cc")
TORCH_PYTHON = os.environ.get("TORCH_PYTHON", "/usr/bin/python3")


def env_list(value):
    """a list of the environment, "1 32 128" or "1,32,128" """
    return [v for v in re.split(r"[,\s]+", value) if v]


THREADS = [int(t) for t in env_list(os.environ.get("THREADS", "1 2"))]
BATCHES = [int(b) for b in env_list(os.environ.get("MODEL_BATCHES", os.environ.get("BATCHES", "1 32 128")))]
RUNS = int(os.environ.get("MODEL_RUNS", os.environ.get("RUNS", "3")))
SECONDS = float(os.environ.get("MODEL_SECONDS", "1.0"))
# A process that takes longer is stopped and its setting reported as not measured: on a busy
# machine PyTorch's OpenMP threads can spin 100 times slower, and the bench must end.
TIMEOUT = float(os.environ.get("MODEL_TIMEOUT", "120"))
CALIBRATE_SECONDS = 0.3     # each side's calibration run, about
MIN_STEPS = 3               # timed steps, at least
WARMUP = 3                  # PyTorch's untimed steps, at most (never more than the timed ones)
SECTION = "## Every model against PyTorch"

TRAINED = re.compile(r"trained (\d+) steps in ([0-9.]+) s: ([0-9.]+) steps/s, ([0-9.]+) samples/s")
STEADY = re.compile(r"\(steps after the first: ([0-9.]+) samples/s\)")
TORCH_LINE = re.compile(r"^(\w+): " + TRAINED.pattern, re.M)
FORMAT_TAG = {"contiguous": "", "channels_last": " (cl)"}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def model_files():
    """name -> .nn file, models/ first, then bench/models/ (lenet.json is
    models/lenet.nn written as JSON: the same network, measured once)"""
    files = {}
    for d in MODEL_DIRS:
        for path in sorted(glob.glob(os.path.join(d, "*.nn"))):
            files.setdefault(os.path.splitext(os.path.basename(path))[0], path)
    return files


def chosen_models():
    files = model_files()
    wanted = os.environ.get("MODELS")
    if wanted is None:
        return files
    names = env_list(wanted)
    unknown = [n for n in names if n not in files]
    if unknown:
        sys.exit(f"bench: MODELS names {', '.join(unknown)}, not in models/ or bench/models/ "
                 f"(there are: {', '.join(files)})")
    return {n: files[n] for n in names}


def try_run(cmd, env=None):
    """(stdout, None) or (None, why it failed: the first error of its stderr
    (else its last line), or that it ran out of time)"""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, f"stopped after {TIMEOUT:.0f} s (MODEL_TIMEOUT; is the machine busy?)"
    if p.returncode != 0:
        lines = (p.stderr or p.stdout).strip().splitlines() or [f"exit status {p.returncode}"]
        return None, next((ln for ln in lines if "error" in ln), lines[-1])
    return p.stdout, None


# ---- nnc's side ------------------------------------------------------------

def nnc_summary(path):
    """(params, optimizer line) from `nnc --summary`, or (None, why nnc refuses)"""
    out, why = try_run([os.path.join(BUILD, "nnc"), "--summary", path])
    if out is None:
        return None, why
    params = re.search(r"^Total params:\s+([0-9,]+)", out, re.M)
    opt = re.search(r"^Optimizer:\s+(.*)$", out, re.M)
    loss = re.search(r"^Loss:\s+(\S+)", out, re.M)
    return int(params.group(1).replace(",", "")), f"{loss.group(1)}, {opt.group(1).strip()}"


def build_trainer(name, path):
    """nnc -o: the trainer as a user builds it; (path, None) or (None, why not)"""
    exe = os.path.join(OUT, name)
    out, why = try_run([os.path.join(BUILD, "nnc"), path, "-o", exe], env=dict(os.environ, CC=CC))
    return (exe, None) if out is not None else (None, why)


def nnc_run(exe, batch, steps, threads):
    """samples/s of steps 2..steps+1 (the first, which also touches fresh
    memory, is nnc's warm-up step), or the reason the trainer failed"""
    cmd = [exe, "--batch", str(batch), "--steps", str(steps + 1), "--print-every", str(10**9)]
    out, why = try_run(cmd, env=dict(os.environ, NNRT_THREADS=str(threads)))
    if out is None:
        return why
    m = STEADY.search(out)
    return float(m.group(1)) if m else f"no 'steps after the first' in the line of {' '.join(cmd)}"


# ---- PyTorch's side --------------------------------------------------------

def torch_env(threads):
    return dict(os.environ, OMP_NUM_THREADS=str(threads))


def torch_info(names):
    out, why = try_run([TORCH_PYTHON, TORCH_TRAIN, "info"] + names)
    if out is None:
        sys.exit(f"bench: {TORCH_TRAIN} info failed: {why}")
    return json.loads(out)


def torch_run(name, batch, steps, threads):
    """{memory format: samples/s}, or the reason the twin failed"""
    cmd = [TORCH_PYTHON, TORCH_TRAIN, "run", name, "--batch", str(batch), "--steps", str(steps),
           "--threads", str(threads), "--warmup", str(min(WARMUP, steps))]
    out, why = try_run(cmd, env=torch_env(threads))
    if out is None:
        return why
    return {m.group(1): float(m.group(5)) for m in TORCH_LINE.finditer(out)}


# ---- calibration: how many steps make a run of about SECONDS ---------------

def calibrate(name, exe, batches):
    """({batch: steps}, None) or (None, why not): one-thread seconds a step of
    PyTorch (each memory format) and of nnc; steps = SECONDS / the slowest"""
    out, why = try_run([TORCH_PYTHON, TORCH_TRAIN, "calibrate", name, "--batches",
                        ",".join(map(str, batches)), "--seconds", str(CALIBRATE_SECONDS)], env=torch_env(1))
    if out is None:
        return None, f"calibrating its PyTorch twin fails: {why}"
    torch_step = {}
    for line in out.splitlines():
        _, b, _, sec = line.split()
        torch_step[int(b)] = max(torch_step.get(int(b), 0.0), float(sec))
    steps = {}
    for b in batches:
        slowest = torch_step[b]
        probe = max(2, min(1000, round(CALIBRATE_SECONDS / slowest)))
        sps = nnc_run(exe, b, probe, 1)
        if isinstance(sps, float):
            slowest = max(slowest, b / sps)
        steps[b] = max(MIN_STEPS, round(SECONDS / slowest))
    return steps, None


# ---- the measurement -------------------------------------------------------

def measure():
    """Everything this part reports, as a dict for section()."""
    os.makedirs(OUT, exist_ok=True)
    files = chosen_models()
    names = list(files)
    info = torch_info(names)
    models = {}
    for name, path in files.items():
        m = {"file": os.path.relpath(path, ROOT), "why": None}
        models[name] = m
        m["params"], m["train"] = nnc_summary(path)
        if m["params"] is None:
            m["why"] = f"nnc refuses it: {m['train']}"
        elif name not in info:
            m["why"] = "no PyTorch twin in bench/torch_models.py"
        else:
            m["exe"], why = build_trainer(name, path)
            if why:
                m["why"] = f"`nnc -o` fails: {why}"
        if not m["why"]:
            m["twin"] = info[name]
            m["steps"], m["why"] = calibrate(name, m["exe"], BATCHES)
        if m["why"]:
            log(f"bench: {name}: {m['why']}")
            continue
        log(f"  {name}: steps " + ", ".join(f"batch {b}: {s}" for b, s in m["steps"].items()))

    # runs[(name, batch, side, threads)] = [samples/s]; side: nnc or a memory format
    runs, failed = {}, {}
    for i in range(RUNS):
        for name, m in models.items():
            if m["why"]:
                continue
            for b in BATCHES:
                if (name, b) in failed:
                    continue
                s = m["steps"][b]
                for t in THREADS:
                    r = nnc_run(m["exe"], b, s, t)
                    if not isinstance(r, float):
                        failed[(name, b)] = f"nnc's trainer fails: {r}"
                        break
                    runs.setdefault((name, b, "nnc", t), []).append(r)
                    tr = torch_run(name, b, s, t)
                    if isinstance(tr, str):
                        failed[(name, b)] = f"the PyTorch twin fails: {tr}"
                        break
                    for fmt, v in tr.items():
                        runs.setdefault((name, b, fmt, t), []).append(v)
                    log(f"  run {i + 1}/{RUNS}  {name:14s} batch {b:3d}  {t}T  nnc {r:9.0f}  PyTorch " +
                        "  ".join(f"{fmt} {v:9.0f}" for fmt, v in tr.items()) + "  samples/s")
    for k, why in failed.items():
        log(f"bench: {k[0]} at batch {k[1]}: {why}")
    med = {k: statistics.median(v) for k, v in runs.items()}
    return {"models": models, "med": med, "failed": failed}


# ---- the report ------------------------------------------------------------

def torch_best(med, name, b, t):
    """(samples/s, memory format) of PyTorch's faster memory format"""
    have = [(med[(name, b, fmt, t)], fmt) for fmt in FORMAT_TAG if (name, b, fmt, t) in med]
    return max(have)


def section(res, peak, load_before, load_after):
    """the markdown section of this part"""
    models, med, failed = res["models"], res["med"], res["failed"]
    lines = []
    w = lines.append
    w(SECTION + "\n")
    w("Written by `make bench` (bench/bench.py, its part in bench/bench_models.py): nnc's trainer of each "
      "model against its PyTorch twin (bench/torch_models.py), random data, the model's loss and optimizer. "
      "How it is measured is at the end of this section.\n")
    w(f"- date: {datetime.date.today().isoformat()}; median of {RUNS} run{'s' if RUNS != 1 else ''}; "
      f"batches {', '.join(map(str, BATCHES))}; threads {', '.join(map(str, THREADS))}")
    w(f"- load average (1, 5, 15 min) before: {load_before}, after: {load_after}")
    pk = f"{peak:.0f} GFLOP/s per core (bench/peak.c)" if peak else "not measured (bench/peak.c did not build)"
    w(f"- peak of this machine: {pk}\n")

    w("### The models\n")
    w("| model | file | nnc params | PyTorch twin params | forward MMAC / sample | training MFLOP / sample "
      "| loss, optimizer (nnc --summary) |")
    w("|---|---|---|---|---|---|---|")
    for name, m in models.items():
        if m["params"] is None:
            w(f"| {name} | {m['file']} | - | - | - | - | {m['why']} |")
            continue
        if "twin" not in m:
            w(f"| {name} | {m['file']} | {m['params']:,} | - | - | - | {m['why']} |")
            continue
        twin = m["twin"]
        same = "" if twin["params"] == m["params"] else " **(differs)**"
        w(f"| {name} | {m['file']} | {m['params']:,} | {twin['params']:,}{same} | {twin['fwd_macs'] / 1e6:.3f} | "
          f"{train_flop(twin) / 1e6:.2f} | {m['train']} |")
    w("")

    w("### Training throughput (samples/s, higher is better)\n")
    w("PyTorch's figure is its faster memory format; (cl) marks channels_last. The ratio is nnc's best "
      "thread count over PyTorch's best (thread count and format). GFLOP/s are at each side's best; "
      "nnc's share of peak is of the cores its best thread count uses.\n")
    head = ("| model | batch | steps |" + "".join(f" nnc {t}T |" for t in THREADS) +
            "".join(f" PyTorch {t}T |" for t in THREADS) +
            " nnc / PyTorch | nnc GFLOP/s | PyTorch GFLOP/s | nnc % of peak |")
    if 1 in THREADS and len(THREADS) > 1:
        head += f" nnc {max(THREADS)}T / 1T |"
    w(head)
    ncols = head.count("|") - 1
    w("|" + "---|" * ncols)
    ratios = {}
    notes = []
    for name, m in models.items():
        if m["why"]:
            notes.append(f"- {name}: not measured: {m['why']}")
            continue
        gf = train_flop(m["twin"]) / 1e9
        for b in BATCHES:
            if (name, b) in failed:
                w(f"| {name} | {b} | {m['steps'][b]} |" + " - |" * (ncols - 3))
                notes.append(f"- {name}, batch {b}: {failed[(name, b)]}")
                continue
            nnc = {t: med[(name, b, "nnc", t)] for t in THREADS}
            tor = {t: torch_best(med, name, b, t) for t in THREADS}
            nt = max(THREADS, key=lambda t: nnc[t])
            tt = max(THREADS, key=lambda t: tor[t][0])
            ratio = nnc[nt] / tor[tt][0]
            ratios.setdefault(b, []).append(ratio)
            pct = f"{100 * nnc[nt] * gf / (peak * nt):.1f}% of {nt}" if peak else "-"
            row = (f"| {name} | {b} | {m['steps'][b]} |" + "".join(f" {nnc[t]:,.0f} |" for t in THREADS) +
                   "".join(f" {tor[t][0]:,.0f}{FORMAT_TAG[tor[t][1]]} |" for t in THREADS) +
                   f" **{ratio:.2f}x** | {nnc[nt] * gf:.1f} | {tor[tt][0] * gf:.1f} | {pct} |")
            if 1 in THREADS and len(THREADS) > 1:
                row += f" {nnc[max(THREADS)] / nnc[1]:.2f}x |"
            w(row)
    w("")
    if ratios:
        means = [f"batch {b}: **{geomean(r):.2f}x** ({len(r)} model{'s' if len(r) > 1 else ''})"
                 for b, r in ratios.items()]
        w("Geometric mean of nnc / PyTorch over the models: " + "; ".join(means) + ".\n")
    tokens_table(models, med, failed, w)
    if notes:
        w("Not measured:\n")
        lines.extend(notes)
        w("")
    w(NOTES)
    return "\n".join(lines) + "\n"


def tokens_table(models, med, failed, w):
    """tokens/s of each sequence model (samples/s x its positions T), at
    each thread count: the figure a language model is usually quoted in"""
    seq = [(name, m) for name, m in models.items() if not m["why"] and m["twin"].get("tokens")]
    if not seq:
        return
    w("### Sequence models: tokens/s (samples/s x T, higher is better)\n")
    w("A sample of a sequence model is T tokens (" +
      ", ".join(f"{name}: T = {m['twin']['tokens']}" for name, m in seq) + "); these are the figures above x T.\n")
    w("| model | batch |" + "".join(f" nnc {t}T |" for t in THREADS) + "".join(f" PyTorch {t}T |" for t in THREADS))
    w("|" + "---|" * (2 + 2 * len(THREADS)))
    for name, m in seq:
        T = m["twin"]["tokens"]
        for b in BATCHES:
            if (name, b) in failed:
                continue
            w(f"| {name} | {b} |" + "".join(f" {med[(name, b, 'nnc', t)] * T:,.0f} |" for t in THREADS) +
              "".join(f" {torch_best(med, name, b, t)[0] * T:,.0f} |" for t in THREADS))
    w("")


def train_flop(twin):
    """FLOP of one training step per sample: 2 per multiply-add, forward and backward"""
    return 2 * (twin["fwd_macs"] + twin["bwd_macs"])


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


NOTES = f"""### How the model bench is measured

- nnc: `nnc MODEL -o TRAINER` (nnc, then `$CC -O2` and the link, as a user builds it), then
  `TRAINER --batch B --steps S+1 --print-every 1000000000` with NNRT_THREADS=T: the trainer's loop
  on random data (input N(0, 1), or token ids uniform in [0, vocab) for an input of tokens; a
  uniform class for cross-entropy, per sample or per position, N(0, 1) for mse), timed
  inside the trainer; the figure is its steps after the first ("steps after the first: X
  samples/s"): the first step, which also touches the trainer's fresh memory, is its one
  warm-up step.
- PyTorch: bench/torch_train.py runs the twin of bench/torch_models.py: the same layers,
  shapes and parameter names (nnc's checkpoints load into them under a strict
  load_state_dict), the same loss and optimizer with the same hyper-parameters (clipping
  included; no schedule on either side: nnc's random-data loop applies none, per epoch or per
  step), random data of the same kind (long token ids and a class per position for gpt_char),
  zero_grad(set_to_none=True) / forward / loss / backward / step. Twins that tests/parity checks
  against nnc are imported from tests/parity/models.py.
  torch.set_num_threads(T) and OMP_NUM_THREADS=T; up to {WARMUP} untimed warm-up steps, then the
  loop is timed with a monotonic clock. A convolutional model runs in one process in both
  memory formats in turn, each with a fresh model (contiguous NCHW, then channels_last);
  the faster is reported. Any other model (an MLP, a sequence model) runs contiguous only.
- Steps: a calibration at one thread (PyTorch {CALIBRATE_SECONDS} s a memory format, nnc about as
  long) gives each side's seconds a step; S makes the slowest of them about MODEL_SECONDS
  (default 1 s), and at least {MIN_STEPS}.
- Each (model, batch, threads) runs RUNS times, nnc and PyTorch interleaved; the figures are
  medians of samples/s (per memory format for PyTorch, then the faster).
- FLOP per sample, from the shapes (forward hooks on the twin's Conv2d and Linear layers):
  forward multiply-adds (a conv: output elements x in_channels/groups x kh x kw; a linear:
  out x in, at every position of a sequence); backward: the weights' gradient as many again,
  the input's gradient as many again except for a layer whose input needs none (the first);
  x 2 FLOP. For a transformer (gpt_char) also attention's two matmuls, q k^T and att v:
  T x T x C multiply-adds each per sample and layer forward (the full T x T square, as
  PyTorch computes it before the causal mask; nnc's kernel does only the lower triangle,
  (T + 1) / 2T of it), twice that backward. Bias, embeddings, activations, pooling, batch
  and layer norm, softmax, the loss and the optimizer are left out.
- Tokens/s of a sequence model: samples/s x T, its positions per sample.
"""


def write_section(text):
    """bench/results.md with this section in place of the old one (or appended)"""
    old = open(RESULTS).read() if os.path.exists(RESULTS) else ""
    at = old.find("\n" + SECTION + "\n")
    head = old[:at + 1] if at >= 0 else (old.rstrip("\n") + "\n\n" if old else "")
    with open(RESULTS, "w") as f:
        f.write(head + text)


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def run_all(peak):
    """the section, measured now (bench.py's entry); '' if MODELS is empty"""
    if not chosen_models():
        log("bench: MODELS is empty: the model bench is skipped")
        return ""
    before = load_average()
    res = measure()
    return section(res, peak, before, load_average())


def main():
    sys.dont_write_bytecode = True    # no __pycache__ in bench/
    import bench                      # bench.py: the peak, as LeNet's part measures it
    os.makedirs(bench.OUT, exist_ok=True)
    text = run_all(bench.measure_peak())
    if text:
        print(text)
        write_section(text)
        print(f"written to {os.path.relpath(RESULTS, os.getcwd())}")


if __name__ == "__main__":
    main()
