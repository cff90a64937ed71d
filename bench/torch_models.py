"""PyTorch twins of every model `make bench` measures, built by name.

The model bench (bench/bench_models.py) races nnc's trainer of each model in
models/ and bench/models/ against the same network in PyTorch. This file is
that PyTorch side: one nn.Module per model with the same layers, shapes and
parameter names as the .nn file, the same loss and the same optimizer
(hyper-parameters included), and what the runner needs to feed it: the
input's shape and the kind of target. `build(name)` returns all of it.

`macs(net, input_spec)` counts multiply-adds per sample from the shapes,
with forward hooks on the Conv2d and Linear layers (and, for a transformer,
attention's two matmuls), for the GFLOP/s columns.

A schedule (models/lenet_ce.nn's and resnet_tiny.nn's cosine per epoch,
gpt_char.nn's warmup_cosine per step) changes the learning rate as training
goes; nnc's trainer applies none in its random-data loop, so the twins have
none either.

A twin that tests/parity/models.py already has (checked there for numerical
parity with nnc: the same state_dict names) is imported from it, not
copied: LeNet, ResNetTiny, InceptionTiny and GPTChar, with GPTChar's loss
(sequence_ce) and optimizer groups (nanogpt_groups). The others are the
bench's own: the models of bench/models/, and MLP, whose parity twin drops
its dropout (the bench keeps it: it is part of the step's cost).
"""
import importlib.util
import os

import torch
import torch.nn as nn
import torch.nn.functional as F


def import_parity_models():
    """tests/parity/models.py as the module parity_models (a file, not a
    package: loaded by path; it finds its own neighbours, st.py and
    lenet_torch.py)"""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(root, "tests", "parity", "models.py")
    spec = importlib.util.spec_from_file_location("parity_models", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


parity = import_parity_models()


def conv_bn(cin, cout, kernel, stride=1, padding=0, groups=1):
    """conv2d(bias=false) and its batchnorm2d, the pair every residual and
    separable block is made of"""
    return (nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, groups=groups, bias=False),
            nn.BatchNorm2d(cout))


# ---- models/ (the bench's own; the rest of models/ is parity's) ------------

class MLP(nn.Module):
    """models/mlp.nn: 784-256-10, dropout 0.2 after the hidden relu"""
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 256)
        self.fc2 = nn.Linear(256, 10)

    def forward(self, x):
        h = F.dropout(F.relu(self.fc1(torch.flatten(x, 1))), p=0.2, training=self.training)
        return self.fc2(h)


# ---- bench/models/ ---------------------------------------------------------

class ResNet20(nn.Module):
    """bench/models/resnet20.nn: CIFAR's ResNet-20 with projection shortcuts.
    Block B of stage S is s<S>b<B>: c1, n1, c2, n2 (conv + batchnorm, c1
    strided in the first block of stages 2 and 3), and there sc, ns, the 1x1
    strided projection of the shortcut; flat names, as the .nn file's."""
    def __init__(self):
        super().__init__()
        self.stem, self.bn0 = conv_bn(3, 16, 3, padding=1)
        self.block_names, cin = [], 16
        for s, cout in enumerate((16, 32, 64), 1):
            for b in range(1, 4):
                p = f"s{s}b{b}"
                stride = 2 if (s > 1 and b == 1) else 1
                self.add_pair(p + "c1", p + "n1", conv_bn(cin, cout, 3, stride=stride, padding=1))
                self.add_pair(p + "c2", p + "n2", conv_bn(cout, cout, 3, padding=1))
                if stride != 1:
                    self.add_pair(p + "sc", p + "ns", conv_bn(cin, cout, 1, stride=stride))
                self.block_names.append(p)
                cin = cout
        self.fc = nn.Linear(64, 10)

    def add_pair(self, conv_name, bn_name, pair):
        self.add_module(conv_name, pair[0])
        self.add_module(bn_name, pair[1])

    def block(self, p, x):
        layer = lambda suffix: getattr(self, p + suffix)  # noqa: E731
        h = F.relu(layer("n1")(layer("c1")(x)))
        shortcut = layer("ns")(layer("sc")(x)) if hasattr(self, p + "sc") else x
        return F.relu(layer("n2")(layer("c2")(h)) + shortcut)

    def forward(self, x):
        x = F.relu(self.bn0(self.stem(x)))
        for p in self.block_names:
            x = self.block(p, x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class VGG(nn.Module):
    """bench/models/vgg.nn: conv 32, conv 32, pool, conv 64, conv 64, pool,
    linear 256, linear 10"""
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 32, 3, padding=1)
        self.c2 = nn.Conv2d(32, 32, 3, padding=1)
        self.c3 = nn.Conv2d(32, 64, 3, padding=1)
        self.c4 = nn.Conv2d(64, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 8 * 8, 256)
        self.fc2 = nn.Linear(256, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c2(F.relu(self.c1(x)))), 2)
        x = F.max_pool2d(F.relu(self.c4(F.relu(self.c3(x)))), 2)
        x = F.relu(self.fc1(torch.flatten(x, 1)))
        return self.fc2(x)


class MLPWide(nn.Module):
    """bench/models/mlp_wide.nn: 784-1024-1024-10"""
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 1024)
        self.fc2 = nn.Linear(1024, 1024)
        self.fc3 = nn.Linear(1024, 10)

    def forward(self, x):
        x = F.relu(self.fc1(torch.flatten(x, 1)))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class DWSep(nn.Module):
    """bench/models/dwsep.nn: a stem, then depthwise 3x3 + pointwise 1x1
    blocks (each conv with batchnorm and relu): 32->64 s2, 64->128 s2,
    128->128"""
    def __init__(self):
        super().__init__()
        self.stem, self.bn0 = conv_bn(3, 32, 3, padding=1)
        self.dw1, self.dn1 = conv_bn(32, 32, 3, stride=2, padding=1, groups=32)
        self.pw1, self.pn1 = conv_bn(32, 64, 1)
        self.dw2, self.dn2 = conv_bn(64, 64, 3, stride=2, padding=1, groups=64)
        self.pw2, self.pn2 = conv_bn(64, 128, 1)
        self.dw3, self.dn3 = conv_bn(128, 128, 3, padding=1, groups=128)
        self.pw3, self.pn3 = conv_bn(128, 128, 1)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.bn0(self.stem(x)))
        x = F.relu(self.pn1(self.pw1(F.relu(self.dn1(self.dw1(x))))))
        x = F.relu(self.pn2(self.pw2(F.relu(self.dn2(self.dw2(x))))))
        x = F.relu(self.pn3(self.pw3(F.relu(self.dn3(self.dw3(x))))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# ---- by name ---------------------------------------------------------------

def sgd(lr, **kw):
    return lambda params: torch.optim.SGD(params, lr=lr, **kw)


class Tokens:
    """an input of T token ids in [0, vocab) per sample (`tokens(vocab=N)`)"""
    def __init__(self, T, vocab):
        self.T, self.vocab = T, vocab


def classes(n, positions=()):
    """the target of cross-entropy: a class in [0, n) per sample, or at
    each of its positions (a sequence model's)"""
    return ("classes", n, positions)


def normal(*shape):
    """the target of mse: N(0, 1) of this shape per sample"""
    return ("normal", shape)


# name: (the module, the input per sample (a shape, or Tokens), the loss, its
# target per sample, the optimizer, clip_norm (None: no clipping)).
# Each line says what its .nn file says.
MODELS = {
    "lenet": (lambda: parity.LeNet(0), (1, 32, 32), "mse", normal(10), sgd(0.01), None),
    "lenet_ce": (lambda: parity.LeNet(2), (1, 28, 28), "cross_entropy", classes(10),
                 sgd(0.02, momentum=0.9), None),
    "mlp": (MLP, (1, 28, 28), "cross_entropy", classes(10), lambda p: torch.optim.Adam(p, lr=0.001), None),
    "resnet_tiny": (parity.ResNetTiny, (3, 32, 32), "cross_entropy", classes(10),
                    sgd(0.1, momentum=0.9, nesterov=True, weight_decay=0.0005), None),
    "inception_tiny": (parity.InceptionTiny, (1, 28, 28), "cross_entropy", classes(10),
                       lambda p: torch.optim.AdamW(p, lr=0.002, weight_decay=0.01), 5.0),
    # adamw(decay="matrices"): weight decay on the tensors of 2 or more dims only
    "gpt_char": (parity.GPTChar, Tokens(64, 96), "cross_entropy", classes(96, (64,)),
                 lambda p: torch.optim.AdamW(parity.nanogpt_groups(p, 0.1), lr=0.001, betas=(0.9, 0.99)), 1.0),
    "lstm_char": (parity.LSTMChar, Tokens(64, 96), "cross_entropy", classes(96, (64,)),
                  lambda p: torch.optim.Adam(p, lr=0.002), 1.0),
    "resnet20": (ResNet20, (3, 32, 32), "cross_entropy", classes(10), sgd(0.1, momentum=0.9), None),
    "vgg": (VGG, (3, 32, 32), "cross_entropy", classes(10), sgd(0.01, momentum=0.9), None),
    "mlp_wide": (MLPWide, (1, 28, 28), "cross_entropy", classes(10), sgd(0.01, momentum=0.9), None),
    "dwsep": (DWSep, (3, 32, 32), "cross_entropy", classes(10), sgd(0.05, momentum=0.9), None),
}


class Twin:
    """A model ready to train: net, loss, optimizer and the data's shapes."""
    def __init__(self, name, memory_format=torch.contiguous_format):
        make, self.input_spec, loss, self.target_spec, optimizer, self.clip_norm = MODELS[name]
        self.name = name
        self.memory_format = memory_format
        self.net = make().to(memory_format=memory_format)
        if loss == "mse":
            self.loss = nn.MSELoss()
        elif self.target_spec[2]:                 # a class at each position: the mean over them all
            self.loss = parity.sequence_ce
        else:
            self.loss = nn.CrossEntropyLoss()
        self.loss_name = loss
        self.opt = optimizer(self.net.parameters())
        self.is_conv = any(isinstance(m, nn.Conv2d) for m in self.net.modules())
        # positions per sample of a sequence model (its tokens/s are samples/s x T), else None
        self.tokens = self.input_spec.T if isinstance(self.input_spec, Tokens) else None

    def random_batch(self, batch):
        """the data as nnc's trainer draws it: input N(0, 1), or token ids
        uniform in [0, vocab); the target N(0, 1) for mse, a uniform class
        (per sample or per position) for cross-entropy"""
        if isinstance(self.input_spec, Tokens):
            x = torch.randint(0, self.input_spec.vocab, (batch, self.input_spec.T))
        else:
            x = torch.randn(batch, *self.input_spec)
            if x.dim() == 4:
                x = x.contiguous(memory_format=self.memory_format)
        if self.target_spec[0] == "classes":
            _, n, positions = self.target_spec
            t = torch.randint(0, n, (batch, *positions))
        else:
            t = torch.randn(batch, *self.target_spec[1])
        return x, t

    def params(self):
        return sum(p.numel() for p in self.net.parameters())

    def step(self, x, t):
        """zero_grad / forward / loss / backward / (clip) / step"""
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss(self.net(x), t)
        loss.backward()
        if self.clip_norm is not None:
            nn.utils.clip_grad_norm_(self.net.parameters(), self.clip_norm)
        self.opt.step()
        return loss


def build(name, memory_format=torch.contiguous_format):
    """The twin of the model called name (models/NAME.nn or bench/models/NAME.nn),
    its weights (and the batches it draws) in memory_format."""
    if name not in MODELS:
        raise KeyError(f"no PyTorch twin of {name!r}; there are: {', '.join(MODELS)}")
    return Twin(name, memory_format)


def macs(net, input_spec):
    """Multiply-adds per sample of one training step, from the shapes:
    (forward, backward). Forward: a conv's output elements times
    in_channels/groups * kh * kw, a linear's out * in (per row it sees: per
    position of a sequence). Backward: the weights' gradient costs the
    forward's again, and the input's gradient too, except for a layer whose
    input needs none (the first). A net with an attention(qkv) method (the
    GPT): its two matmuls, q k^T and att v, are T * T * C each per layer
    (the full T x T, as PyTorch computes it before the causal mask), and
    their backward twice that (dq, dk, datt, dv). An LSTM: 4H (I + H) a step
    forward, and its backward twice that. Bias, embeddings,
    activations, pooling, batch and layer norm, softmax, the loss and the
    optimizer are left out."""
    fwd, bwd = [0], [0]

    def hook(m, inputs, out):
        if isinstance(m, nn.Conv2d):
            kh, kw = m.kernel_size
            n = out[0].numel() * (m.in_channels // m.groups) * kh * kw
        elif isinstance(m, nn.LSTM):     # out: (y [1, T, H], (h, c))
            T, H = out[0].shape[1], m.hidden_size
            n = T * 4 * H * (m.input_size + H)
        else:
            n = out[0].numel() * m.in_features
        fwd[0] += n
        bwd[0] += n * (2 if inputs[0].requires_grad else 1)

    def counted_attention(qkv):
        _, T, C3 = qkv.shape
        n = 2 * T * T * (C3 // 3)
        fwd[0] += n
        bwd[0] += 2 * n
        return attention(qkv)

    hooks = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.LSTM))]
    attention = getattr(net, "attention", None)
    if attention is not None:
        net.attention = counted_attention         # the instance's, over the class's method
    if isinstance(input_spec, Tokens):
        x = torch.zeros(1, input_spec.T, dtype=torch.long)
    else:
        x = torch.zeros(1, *input_spec)
    try:
        was_training = net.training
        net.eval()                    # no batch statistics or dropout to disturb
        net(x)
        net.train(was_training)
    finally:
        for h in hooks:
            h.remove()
        if attention is not None:
            del net.attention
    return fwd[0], bwd[0]
