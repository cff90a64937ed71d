"""kernels.py — PyTorch parity of each runtime kernel on its own.

For every case below, PyTorch (torch.nn.functional, torch.optim,
torch.optim.lr_scheduler) computes a kernel's forward output, the gradient
of its input and of its parameters for a random upstream gradient dy (and
batch norm's running statistics; for optimizers, the parameters and buffers
after three steps; for schedules, the learning rate of each epoch). The same
inputs go to tests/parity/kernel_harness.c as safetensors files, one per
case, with the options as metadata; the harness runs nnc's kernel and writes
its results back. Each result must match PyTorch within 1e-5 relative, per
tensor: max |nnc - torch| / max |torch|. A case that needs more says so, and
why, where it is defined.

Dropout draws its own mask (nnc's generator is not PyTorch's), so its case
checks PyTorch's semantics with nnc's mask: every mask value is 0 or
PyTorch's scale 1/(1-p), about a fraction p of them are 0, and y and dx are
PyTorch's x * mask and dy * mask.

usage: /usr/bin/python3 tests/parity/kernels.py HARNESS WORKDIR
"""
import math
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402  (safetensors in numpy, tests/parity/st.py)

TOL = 1e-5
CASES = []


class Case:
    """One kernel call: the inputs and options nnc gets, and what PyTorch says."""

    def __init__(self, name, kernel, inputs, meta, want, tol=None, check=None):
        self.name = name            # shown in the report
        self.kernel = kernel        # the harness's kernel name
        self.inputs = inputs        # name -> tensor, for the harness
        self.meta = meta            # option -> number
        self.want = want            # name -> PyTorch's tensor, compared to nnc's
        self.tol = tol or {}        # name -> tolerance, where 1e-5 is not enough
        self.check = check          # extra check of nnc's outputs: returns a list of failures


def case(*args, **kwargs):
    CASES.append(Case(*args, **kwargs))


def np32(t):
    return t.detach().cpu().float().numpy() if torch.is_tensor(t) else np.asarray(t, np.float32)


def leaf(t):
    return t.clone().detach().requires_grad_(True)


def backward(y, dy, *leaves):
    """y.backward(dy); returns the leaves' gradients (zeros where none flowed)"""
    y.backward(dy)
    return [v.grad if v.grad is not None else torch.zeros_like(v) for v in leaves]


# ---- pooling ----

def pool(kind, N, C, H, W, k, s, p, ceil, include_pad=True):
    k, s, p = [v if isinstance(v, tuple) else (v, v) for v in (k, s, p)]
    x = leaf(torch.randn(N, C, H, W))
    if kind == "max":
        y = F.max_pool2d(x, k, s, p, ceil_mode=ceil)
    else:
        y = F.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=include_pad)
    dy = torch.randn_like(y)
    (dx,) = backward(y, dy, x)
    name = (f"{kind}pool2d [{N},{C},{H},{W}] k{k} s{s} p{p} {'ceil' if ceil else 'floor'}"
            + ("" if kind == "max" else f" count_include_pad={include_pad}"))
    case(name, f"{kind}pool2d", {"x": x, "dy": dy},
         {"kh": k[0], "kw": k[1], "sh": s[0], "sw": s[1], "ph": p[0], "pw": p[1],
          "count_include_pad": int(include_pad)},
         {"y": y, "dx": dx})


def adaptive(N, C, H, W, P, Q):
    x = leaf(torch.randn(N, C, H, W))
    y = F.adaptive_avg_pool2d(x, (P, Q))
    dy = torch.randn_like(y)
    (dx,) = backward(y, dy, x)
    case(f"adaptive_avgpool2d [{N},{C},{H},{W}] -> {P}x{Q}", "adaptive_avgpool2d",
         {"x": x, "dy": dy}, {}, {"y": y, "dx": dx})


# ---- activations, softmax ----

def activation(kernel, shape, scale=3.0, slope=0.01, extra=()):
    x = torch.randn(*shape) * scale
    flat = x.view(-1)
    flat[:len(extra)] = torch.tensor(extra, dtype=torch.float32)   # edge values first
    x = leaf(x)
    if kernel == "leaky_relu":
        y = F.leaky_relu(x, slope)
    elif kernel == "elu":
        y = F.elu(x, slope)
    elif kernel == "gelu":
        y = F.gelu(x)
    elif kernel == "silu":
        y = F.silu(x)
    else:
        y = getattr(torch, kernel)(x)
    dy = torch.randn_like(y)
    (dx,) = backward(y, dy, x)
    name = f"{kernel} {list(shape)}" + (f" slope {slope}" if kernel == "leaky_relu" else "")
    name += f" alpha {slope}" if kernel == "elu" else ""
    if extra:
        name += f" with {list(extra)}"
    case(name, kernel, {"x": x, "dy": dy}, {"slope": slope}, {"y": y, "dx": dx})


def softmax(kernel, shape, dim=1, scale=1.0, offset=0.0):
    """offset: added to every logit; exp(x) would overflow without the
    maximum taken out. (Large scales saturate softmax, and its backward then
    cancels to a few float ulps of y ~ 1 in PyTorch as in nnc: a float
    limitation, not a kernel's, so scales stay moderate.)"""
    x = leaf(torch.randn(*shape) * scale + offset)
    y = (F.softmax if kernel == "softmax" else F.log_softmax)(x, dim)
    dy = torch.randn_like(y)
    (dx,) = backward(y, dy, x)
    case(f"{kernel} {list(shape)} dim {dim}" + (f" logits x{scale:g}" if scale != 1 else "")
         + (f" + {offset:g}" if offset else ""), kernel,
         {"x": x, "dy": dy}, {"dim": dim}, {"y": y, "dx": dx})


# ---- dropout: PyTorch's semantics with nnc's mask ----

def dropout(shape, p, seed):
    x = leaf(torch.randn(*shape))
    dy = torch.randn(*shape)
    # PyTorch's scale for kept elements, from its own dropout of ones
    ones = F.dropout(torch.ones(100000), p, training=True)
    scale = float(ones.max()) if p > 0 else 1.0
    n = x.numel()

    def check(got):
        mask = torch.from_numpy(got["mask"])
        fails = []
        values = set(np.unique(got["mask"]).tolist())
        if not values <= {0.0, scale}:
            fails.append(f"mask values {sorted(values)[:5]} are not 0 or {scale!r}")
        frac = float((mask == 0).float().mean())
        sd = math.sqrt(p * (1 - p) / n)
        if abs(frac - p) > 5 * sd + 1e-12:
            fails.append(f"{frac:.4f} of the mask is 0, expected {p} +- {5 * sd:.4f}")
        x.grad = None
        y = x * mask                                  # PyTorch's dropout, given the mask
        (dx,) = backward(y, dy, x)
        for name, want in (("y", y), ("dx", dx)):
            if not np.array_equal(got[name], np32(want)):
                fails.append(f"{name} differs from PyTorch's x * mask: max error "
                             f"{np.abs(got[name] - np32(want)).max():.2e}")
        return fails

    case(f"dropout {list(shape)} p={p}", "dropout", {"x": x, "dy": dy}, {"p": p, "seed": seed}, {},
         check=check)


# ---- batch norm ----

def batchnorm(shape, affine, training=True, eps=1e-5, momentum=0.1, offset=2.0):
    C = shape[1]
    x = leaf(torch.randn(*shape) * 1.5 + offset)
    gamma = leaf(torch.rand(C) + 0.5) if affine else None
    beta = leaf(torch.randn(C)) if affine else None
    rm0, rv0 = torch.randn(C), torch.rand(C) + 0.5
    rm, rv = rm0.clone(), rv0.clone()
    y = F.batch_norm(x, rm, rv, gamma, beta, training, momentum, eps)
    dy = torch.randn_like(y)
    inputs = {"x": x, "dy": dy, "running_mean": rm0, "running_var": rv0}
    want = {"y": y, "running_mean": rm, "running_var": rv}
    if affine:
        inputs.update(gamma=gamma, beta=beta)
    if training:
        leaves = [x] + ([gamma, beta] if affine else [])
        grads = backward(y, dy, *leaves)
        want["dx"] = grads[0]
        if affine:
            want["dgamma"], want["dbeta"] = grads[1], grads[2]
        _, mean, invstd = torch.native_batch_norm(x.detach(), None, None, rm0.clone(), rv0.clone(),
                                                  True, momentum, eps)
        want["mean"], want["invstd"] = mean, invstd
    kind = "1d" if len(shape) <= 3 else "2d"
    name = (f"batchnorm{kind} {list(shape)} {'affine' if affine else 'no affine'} "
            f"{'train' if training else 'eval'} eps {eps:g} momentum {momentum:g}")
    case(name, "batchnorm", inputs, {"eps": eps, "momentum": momentum, "training": int(training)}, want)


# ---- embedding, layer norm, attention ----

def embedding(shape, num, D):
    """ids drawn from [0, num), so that rows of one id add up in d weight"""
    idx = torch.randint(0, num, shape)
    w = leaf(torch.randn(num, D))
    y = F.embedding(idx, w)
    dy = torch.randn_like(y)
    (dw,) = backward(y, dy, w)
    case(f"embedding {list(shape)} ids of {num}, D={D}", "embedding", {"idx": idx.float(), "w": w, "dy": dy}, {},
         {"y": y, "dw": dw})


def layernorm(shape, affine, eps=1e-5, offset=3.0):
    C = shape[-1]
    x = leaf(torch.randn(*shape) * 2.0 + offset)
    w = leaf(torch.rand(C) + 0.5) if affine else None
    b = leaf(torch.randn(C)) if affine else None
    y = F.layer_norm(x, (C,), w, b, eps)
    dy = torch.randn_like(y)
    grads = backward(y, dy, *([x, w, b] if affine else [x]))
    _, mean, rstd = torch.native_layer_norm(x.detach(), (C,), None, None, eps)
    inputs = {"x": x, "dy": dy}
    want = {"y": y, "dx": grads[0], "mean": mean.reshape(-1), "rstd": rstd.reshape(-1)}
    if affine:
        inputs.update(w=w, b=b)
        want.update(dw=grads[1], db=grads[2])
    case(f"layernorm {list(shape)} {'affine' if affine else 'no affine'} eps {eps:g}", "layernorm", inputs,
         {"eps": eps}, want)


def attention(N, T, C, H, causal, scale=1.0):
    """softmax(q k^T / sqrt(Dh) + mask) v by hand (torch 1.13 has no
    F.scaled_dot_product_attention), heads as nanoGPT cuts them"""
    Dh = C // H
    qkv = leaf(torch.randn(N, T, 3 * C) * scale)
    q, k, v = [t.reshape(N, T, H, Dh).transpose(1, 2) for t in qkv.split(C, dim=2)]
    s = q @ k.transpose(-2, -1) * (1.0 / math.sqrt(Dh))
    if causal:
        s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    att = F.softmax(s, dim=-1)
    y = (att @ v).transpose(1, 2).reshape(N, T, C)
    dy = torch.randn_like(y)
    (dqkv,) = backward(y, dy, qkv)
    case(f"attention [{N},{T},{C}] H={H} {'causal' if causal else 'full'}" + (f" x{scale:g}" if scale != 1 else ""),
         "attention", {"qkv": qkv, "dy": dy}, {"H": H, "causal": int(causal)}, {"y": y, "att": att, "dqkv": dqkv})


def lstm(N, T, I, H, bias=True, scale=1.0):
    """torch.nn.LSTM(I, H, batch_first=True), one layer, zero initial state;
    its weights, initialised as PyTorch does (times scale: saturated gates),
    copied into the inputs"""
    m = torch.nn.LSTM(I, H, batch_first=True, bias=bias)
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(scale)
    x = leaf(torch.randn(N, T, I))
    y, _ = m(x)
    dy = torch.randn_like(y)
    y.backward(dy)
    inputs = {"x": x, "dy": dy, "w_ih": m.weight_ih_l0, "w_hh": m.weight_hh_l0}
    want = {"y": y, "dx": x.grad, "dw_ih": m.weight_ih_l0.grad, "dw_hh": m.weight_hh_l0.grad}
    if bias:
        inputs.update(b_ih=m.bias_ih_l0, b_hh=m.bias_hh_l0)
        want.update(db_ih=m.bias_ih_l0.grad, db_hh=m.bias_hh_l0.grad)
    case(f"lstm [{N},{T},{I}] H={H}" + ("" if bias else " no bias") + (f" weights x{scale:g}" if scale != 1 else ""),
         "lstm", inputs, {}, want)


# ---- merging values ----

def add(shape):
    a, b = leaf(torch.randn(*shape)), leaf(torch.randn(*shape))
    y = a + b
    dy = torch.randn_like(y)
    da, db = backward(y, dy, a, b)
    case(f"add {list(shape)}", "add", {"a": a, "b": b, "dy": dy}, {}, {"y": y, "da": da, "db": db})


def concat(N, channels, rest):
    xs = [leaf(torch.randn(N, c, *rest)) for c in channels]
    y = torch.cat(xs, 1)
    dy = torch.randn_like(y)
    grads = backward(y, dy, *xs)
    inputs = {f"x{i}": x for i, x in enumerate(xs)}
    inputs["dy"] = dy
    want = {"y": y}
    want.update({f"dx{i}": g for i, g in enumerate(grads)})
    case(f"concat N={N} C={'+'.join(map(str, channels))} {list(rest)}", "concat", inputs, {}, want)


# ---- losses ----

def loss(kernel, N, C, reduction, dloss=1.0, scale=1.0, ties=0):
    red = {"mean": 0, "sum": 1}[reduction]
    x = torch.randn(N, C) * scale
    if kernel in ("cross_entropy", "nll"):
        t = torch.randint(0, C, (N,))
        if kernel == "nll":
            x = F.log_softmax(x, 1)
        x = leaf(x)
        l = (F.cross_entropy if kernel == "cross_entropy" else F.nll_loss)(x, t, reduction=reduction)
        t = t.float()
    else:
        if kernel == "bce_with_logits":
            t = torch.rand(N, C)
            t.view(-1)[::3] = torch.randint(0, 2, t.view(-1)[::3].shape).float()   # some hard labels
            x.view(-1)[:2] = torch.tensor([60.0, -60.0])[:min(2, x.numel())]      # far in the tails
        else:
            t = torch.randn(N, C)
            t.view(-1)[:ties] = x.view(-1)[:ties]    # y == t: L1's gradient is sign(0) = 0
        x = leaf(x)
        fn = {"mse": F.mse_loss, "l1": F.l1_loss, "bce_with_logits": F.binary_cross_entropy_with_logits}
        l = fn[kernel](x, t, reduction=reduction)
    (dx,) = backward(l * dloss, torch.tensor(1.0), x)
    name = f"{kernel} [{N},{C}] {reduction}" + (f" dloss {dloss}" if dloss != 1 else "")
    if scale != 1:
        name += f" logits x{scale:g}"
    case(name, kernel, {"x": x, "t": t}, {"reduction": red, "dloss": dloss},
         {"loss": l.reshape(1), "dx": dx})


# ---- optimizers, clipping, schedules ----

def optimizer(kind, lr, steps=3, **opts):
    """three steps from the same parameters and gradients; compares p, the
    buffers, and p - p0 (the update itself, which p alone would hide when
    it is small)"""
    p0 = torch.randn(5, 7)
    grads = [torch.randn(5, 7) for _ in range(steps)]
    p = p0.clone().requires_grad_(True)
    if kind == "sgd":
        o = torch.optim.SGD([p], lr=lr, **opts)
        meta = {"lr": lr, "momentum": opts.get("momentum", 0), "dampening": opts.get("dampening", 0),
                "weight_decay": opts.get("weight_decay", 0), "nesterov": int(opts.get("nesterov", False))}
    else:
        cls = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
        o = cls([p], lr=lr, **opts)
        betas = opts.get("betas", (0.9, 0.999))
        meta = {"lr": lr, "beta1": betas[0], "beta2": betas[1], "eps": opts.get("eps", 1e-8),
                "weight_decay": opts.get("weight_decay", 1e-2 if kind == "adamw" else 0),
                "decoupled": int(kind == "adamw")}
    for g in grads:
        p.grad = g.clone()
        o.step()
    state = o.state[p]
    want = {"p": p, "update": p.detach() - p0}
    # the optimizer's state within 1e-6, so that a checkpoint resumed in
    # PyTorch goes on as PyTorch would (its constants are computed in double)
    tol = {"buf": 1e-6, "m": 1e-6, "v": 1e-6}
    if kind == "sgd":
        if opts.get("momentum", 0):
            want["buf"] = state["momentum_buffer"]
    else:
        want["m"], want["v"] = state["exp_avg"], state["exp_avg_sq"]
    inputs = {"p": p0}
    inputs.update({f"g{i + 1}": g for i, g in enumerate(grads)})
    desc = ", ".join(f"{k}={v}" for k, v in opts.items())
    case(f"{kind} lr={lr}" + (f", {desc}" if desc else "") + f": {steps} steps", "adam" if kind != "sgd" else kind,
         inputs, meta, want, tol)


def clip(max_norm, scale):
    """clip_grad_norm_ over three parameters; nnc sees their gradients as one block"""
    params = [torch.zeros(3, 4, requires_grad=True), torch.zeros(5, requires_grad=True),
              torch.zeros(2, 3, 2, requires_grad=True)]
    for q in params:
        q.grad = torch.randn_like(q) * scale
    g0 = torch.cat([q.grad.reshape(-1) for q in params])
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    g = torch.cat([q.grad.reshape(-1) for q in params])
    case(f"clip_grad_norm max_norm {max_norm}, norm {float(norm):.3g}", "clip_grad_norm", {"g": g0},
         {"max_norm": max_norm}, {"g": g, "norm": norm.reshape(1)})


def schedule(kind, lr, epochs, **opts):
    p = torch.zeros(1, requires_grad=True)
    o = torch.optim.SGD([p], lr=lr)
    if kind == "step":
        s = torch.optim.lr_scheduler.StepLR(o, opts["step_size"], opts["gamma"])
    else:
        s = torch.optim.lr_scheduler.CosineAnnealingLR(o, opts["t_max"], opts["eta_min"])
    lrs = []
    for _ in range(epochs):
        lrs.append(o.param_groups[0]["lr"])
        o.step()
        s.step()
    desc = ", ".join(f"{k}={v}" for k, v in opts.items())
    case(f"lr_{kind} lr={lr}, {desc}, {epochs} epochs", f"lr_{kind}", {"none": torch.zeros(1)},
         dict(lr=lr, epochs=epochs, **opts), {"lr": torch.tensor(lrs)})


def build_cases():
    torch.manual_seed(0)
    # max pooling: ceil mode clips the last window; floor mode for reference
    pool("max", 2, 3, 7, 6, 3, 2, 1, True)
    pool("max", 1, 2, 6, 6, 3, 2, 0, True)
    pool("max", 3, 2, 5, 8, (2, 3), (2, 2), (1, 0), True)
    pool("max", 1, 1, 9, 7, 2, 2, 0, False)
    # average pooling: ceil mode x count_include_pad x padding, batch 1 and 2
    for ceil in (False, True):
        for include_pad in (True, False):
            pool("avg", 2, 3, 7, 6, 3, 2, 1, ceil, include_pad)
            pool("avg", 1, 2, 6, 7, 3, 2, 1, ceil, include_pad)   # ceil: the last window runs past the padding
            pool("avg", 2, 2, 7, 8, (2, 3), (3, 2), 0, ceil, include_pad)
    pool("avg", 1, 2, 6, 9, (2, 3), (1, 2), (1, 1), True, False)
    pool("avg", 3, 1, 5, 5, 3, 2, 1, True, True)
    # adaptive average pooling: sizes that do not divide, larger output, global
    adaptive(2, 3, 7, 5, 3, 4)
    adaptive(1, 2, 10, 9, 4, 5)
    adaptive(1, 1, 3, 5, 4, 7)
    adaptive(3, 2, 8, 8, 1, 1)
    adaptive(2, 1, 6, 4, 3, 2)
    # activations: 0 and far tails included
    activation("relu", (3, 5, 7), extra=(0.0,))
    activation("leaky_relu", (3, 5, 7), extra=(0.0, -1e-3))
    activation("leaky_relu", (1, 13), slope=0.2, extra=(0.0,))
    activation("sigmoid", (3, 5, 7), extra=(0.0, 30.0, -30.0, 100.0, -100.0))
    activation("sigmoid", (1, 9))
    activation("tanh", (3, 5, 7), extra=(0.0, 20.0, -20.0))
    activation("gelu", (3, 5, 7), extra=(0.0, 10.0, -10.0))
    activation("gelu", (1, 11), scale=1.0)
    activation("silu", (3, 5, 7), extra=(0.0, 30.0, -30.0, 100.0, -100.0))
    activation("silu", (1, 11), scale=1.0)
    activation("elu", (3, 5, 7), slope=1.0, extra=(0.0, -1e-3, 30.0, -30.0, -100.0))
    activation("elu", (1, 13), slope=0.3, extra=(0.0,))
    # softmax and log-softmax: [N, C] and along C of [N, C, H, W]
    for k in ("softmax", "log_softmax"):
        softmax(k, (4, 10))
        softmax(k, (1, 7), scale=3.0, offset=1000.0)
        softmax(k, (2, 5, 3, 4))
        softmax(k, (1, 3, 10, 13))          # H*W = 130: more than one block of positions
        softmax(k, (3, 6), scale=10.0)
    # dropout
    dropout((4, 5000), 0.3, seed=5)
    dropout((2, 3, 40, 25), 0.5, seed=6)
    dropout((3, 7), 0.0, seed=7)
    dropout((1, 999), 0.1, seed=8)
    # batch norm: 1d on [N, C] and [N, C, L], 2d, affine or not, train and eval
    batchnorm((4, 5), affine=True)
    batchnorm((3, 4, 7), affine=True)
    batchnorm((6, 3), affine=False)
    batchnorm((2, 3, 5, 4), affine=True, eps=1e-3, momentum=0.3)
    batchnorm((1, 3, 4, 5), affine=True)
    batchnorm((3, 2, 3, 3), affine=False)
    batchnorm((2, 3, 5, 4), affine=True, training=False)
    batchnorm((5, 4), affine=False, training=False, eps=1e-3)
    # embedding: repeated ids, ids of a [N, T] batch
    embedding((7,), 3, 5)
    embedding((4, 16), 50, 32)
    embedding((2, 64), 10, 128)
    # layer norm: affine or not, rows of one vector, under one, past a block of 256
    layernorm((4, 10), affine=True)
    layernorm((2, 8, 32), affine=True)
    layernorm((3, 5, 7), affine=False)
    layernorm((16, 64), affine=False, eps=1e-3)
    layernorm((2, 300), affine=True)
    layernorm((2, 64, 128), affine=True)
    # attention: causal and not, 1, 2 and 4 heads, T up to 64, C up to 128
    for causal in (True, False):
        attention(1, 1, 4, 1, causal)
        attention(2, 5, 8, 1, causal)
        attention(2, 16, 32, 2, causal)
        attention(1, 64, 128, 4, causal)
        attention(3, 33, 64, 4, causal, scale=2.0)
    attention(2, 64, 128, 2, True)
    # head sizes 32, 64 and 24 (two vectors, the second part padding) with T
    # not a multiple of 16 (attention.c's panels padded)
    attention(2, 37, 128, 4, False)
    attention(2, 50, 128, 2, True)
    attention(1, 20, 128, 2, False)
    attention(2, 19, 48, 2, True)
    # LSTM: one step and several, batch 1 and 3, up to 17 steps, 16 inputs, 32 hidden units
    lstm(1, 1, 3, 4)
    lstm(1, 5, 3, 4)
    lstm(3, 5, 16, 32)
    lstm(3, 17, 16, 32)
    lstm(1, 17, 3, 32)
    lstm(3, 17, 3, 4, bias=False)
    lstm(2, 9, 16, 32, scale=4.0)
    lstm(40, 6, 24, 20)           # products shared between threads
    # merging
    add((2, 3, 4, 5))
    add((1, 7))
    concat(2, (3, 2, 1), (4, 5))
    concat(1, (4, 3), ())
    concat(3, (1, 2), (3,))
    # losses, mean and sum
    for r in ("mean", "sum"):
        loss("mse", 3, 7, r)
        loss("l1", 4, 6, r, ties=3)
        loss("cross_entropy", 5, 10, r)
        loss("nll", 5, 6, r)
        loss("bce_with_logits", 3, 8, r)
    loss("mse", 1, 10, "mean", dloss=0.7)
    loss("l1", 1, 5, "sum", dloss=0.7)
    loss("cross_entropy", 1, 3, "mean", dloss=0.7)
    loss("cross_entropy", 4, 6, "mean", scale=20.0)
    loss("nll", 1, 4, "sum", dloss=0.7)
    loss("bce_with_logits", 2, 5, "mean", dloss=0.7, scale=5.0)
    # optimizers
    optimizer("sgd", 0.1)
    optimizer("sgd", 0.1, momentum=0.9)
    optimizer("sgd", 0.1, momentum=0.9, dampening=0.3)
    optimizer("sgd", 0.05, momentum=0.8, nesterov=True)
    optimizer("sgd", 0.1, weight_decay=0.05)
    optimizer("sgd", 0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)
    optimizer("sgd", 0.05, momentum=0.9, nesterov=True, weight_decay=0.02)
    optimizer("adam", 0.01)
    optimizer("adam", 0.01, weight_decay=0.1)
    optimizer("adam", 0.05, betas=(0.8, 0.99), eps=1e-6)
    optimizer("adamw", 0.01)
    optimizer("adamw", 0.05, weight_decay=0.1, betas=(0.85, 0.95))
    # clipping by global norm, and learning-rate schedules
    clip(1.0, 1.0)
    clip(100.0, 1.0)
    clip(0.5, 3.0)
    schedule("step", 0.1, 12, step_size=3, gamma=0.5)
    schedule("step", 0.05, 10, step_size=1, gamma=0.9)
    schedule("cosine", 0.1, 25, t_max=10, eta_min=0.001)
    schedule("cosine", 0.5, 15, t_max=7, eta_min=0.0)


def rel_err(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    scale = max(np.abs(b).max(), 1e-30)
    return float(np.abs(a - b).max() / scale)


def main():
    harness, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    torch.set_num_threads(1)
    build_cases()
    args = []
    for i, c in enumerate(CASES):
        src, dst = os.path.join(work, f"case{i:03d}.in"), os.path.join(work, f"case{i:03d}.out")
        meta = {"kernel": c.kernel}
        meta.update({k: repr(float(v)) if isinstance(v, float) else str(v) for k, v in c.meta.items()})
        st.save(src, {k: np32(v) for k, v in c.inputs.items()}, metadata=meta)
        args += [src, dst]
    subprocess.run([harness] + args, check=True)

    failed, worst = 0, 0.0
    for i, c in enumerate(CASES):
        got = st.load(os.path.join(work, f"case{i:03d}.out"))
        if "update" in c.want:      # the optimizer's update, p - p0, from nnc's p
            got["update"] = got["p"] - np32(c.inputs["p"])
        fails, errs = [], []
        for name, ref in c.want.items():
            if name not in got:
                fails.append(f"nnc wrote no '{name}'")
                continue
            e = rel_err(got[name], np32(ref))
            tol = c.tol.get(name, TOL)
            errs.append((e, name, tol))
            if not e <= tol:
                fails.append(f"{name}: relative error {e:.2e} > {tol:g}")
        if c.check:
            fails += c.check(got)
        worst = max([worst] + [e for e, _, tol in errs if tol == TOL])
        e, name, tol = max(errs, default=(0.0, "-", TOL))
        if fails:
            failed += 1
            print(f"FAIL {c.name}: " + "; ".join(fails))
        else:
            note = f", tolerance {tol:g}" if tol != TOL else ""
            print(f"ok   {c.name:<72} (max rel err {e:.1e} in {name}{note})")
    print(f"{len(CASES) - failed} of {len(CASES)} kernel cases match PyTorch; largest relative "
          f"error {worst:.1e} (where the tolerance is {TOL:g})")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
