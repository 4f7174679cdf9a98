"""fastdl in a NumPy loop: fastdl calls taking turns with NumPy (or PyTorch) calls, in one process.

This is how fastdl is used when its layers are swapped into an existing training loop: every fastdl
kernel is followed by NumPy's (OpenBLAS's) work and the other way round, with no pause between them.
Each pair is a fastdl call ``f`` and a rival call ``g`` of similar cost, timed round after round in
three ways: ``f`` alone and ``g`` alone (a block of calls each, after a pause, so that the other
library's spinning threads are gone), then ``f, g, f, g, ...`` with no pause at all. The ratio

    ideal / pair = (t_f alone + t_g alone) / t_(f then g)

is 1.0 when the two run as fast taking turns as each does alone; it is the median over rounds.

The networks are the book's loop (its network, softmax cross-entropy and SGD with momentum written
here in NumPy, float64 data, batch 60) with fastdl layers, NumPy layers (the book's own, written here),
or both: the time per training step, each network in blocks of steps.
"""

import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

import fastdl
from fastdl import kernels
from fastdl.cli.bench import GEMM_SHAPES, conv_step, lstm_step, rand_f32, loss_step


@dataclass
class PairCase:
    work: str                                   # the fastdl call
    rival: str                                  # the other library's call (make() names it exactly)
    make: Callable[[], tuple]                   # builds inputs, returns (fastdl call, rival call, rival)
    flop: Optional[float] = None                # of one fastdl call and one rival call together
    quick: bool = True


@dataclass
class PairRow:
    work: str
    rival: str
    fastdl_ms: float
    rival_ms: float
    pair_ms: float
    ratio: float                                # (t_f + t_g) / t_pair, median over rounds
    pair_gflops: Optional[float]


@dataclass
class StepRow:
    network: str
    layers: str
    step_ms: float


# ---------------------------------------------------------------------------------------------
# Pairs of calls
# ---------------------------------------------------------------------------------------------

_QUICK_MATMULS = {(256, 784, 256), (64, 256, 1024)}


def _matmul_label(m, k, n, ta, tb):
    kind = {(False, False): "", (False, True): " NT", (True, False): " TN"}[(ta, tb)]
    return f"matmul{kind} {m}x{k}x{n}"


def _matmul_pair(m, k, n, ta, tb):
    def make():
        rng = np.random.default_rng(0)
        a = rand_f32(rng, (k, m) if ta else (m, k))
        b = rand_f32(rng, (n, k) if tb else (k, n))
        op_a, op_b = (a.T if ta else a), (b.T if tb else b)
        f = lambda: kernels.matmul(a, b, trans_a=ta, trans_b=tb)  # noqa: E731
        return f, (lambda: op_a @ op_b), "numpy @ (the same product)"
    return make


def seconds_per_call(call, min_seconds=0.02):
    """Seconds per call, warm: three calls first, then as many as take ``min_seconds``."""
    for _ in range(3):
        call()
    reps, t0 = 0, time.perf_counter()
    while reps < 3 or time.perf_counter() - t0 < min_seconds:
        call()
        reps += 1
    return (time.perf_counter() - t0) / reps


def _numpy_matmul_like(seconds):
    """A NumPy float32 square matmul that takes about ``seconds`` here (measured, not guessed)."""
    rng = np.random.default_rng(1)

    def timed(n):
        a, b = rand_f32(rng, (n, n)), rand_f32(rng, (n, n))
        return seconds_per_call(lambda: a @ b)

    n = 256
    for _ in range(3):
        n = int(np.clip(round(n * (seconds / timed(n)) ** (1 / 3) / 16) * 16, 16, 2048))
    a, b = rand_f32(rng, (n, n)), rand_f32(rng, (n, n))
    return n, (lambda: a @ b)


def _with_numpy_rival(make_fastdl):
    """A pair of a fastdl step and a NumPy matmul sized to take as long as that step alone."""
    def make():
        f = make_fastdl()
        n, g = _numpy_matmul_like(seconds_per_call(f, 0.05))
        return f, g, f"numpy @ {n}x{n}x{n}"
    return make


def _torch_pair(m, k, n):
    def make():
        import torch

        rng = np.random.default_rng(0)
        a, b = rand_f32(rng, (m, k)), rand_f32(rng, (k, n))
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        return (lambda: kernels.matmul(a, b)), (lambda: torch.matmul(ta, tb)), "torch.matmul (the same product)"
    return make


def torch_available():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def pair_cases(with_torch=None):
    """Every pair: each GEMM shape of bench_matmul against NumPy's ``@`` on the same operands; conv2d,
    lstm and softmax cross-entropy against a NumPy ``@`` of similar cost; matmul against PyTorch."""
    cases = [PairCase(_matmul_label(*s), "numpy @ (the same product)", _matmul_pair(*s), 2 * 2.0 * s[0] * s[1] * s[2],
                      quick=s[:3] in _QUICK_MATMULS) for s in GEMM_SHAPES]
    steps = [("conv2d fwd+bwd 32x1x28x28 k5->16", conv_step(32, 1, 16, 28, 5), True),
             ("conv2d fwd+bwd 32x16x14x14 k3->32", conv_step(32, 16, 32, 14, 3), False),
             ("lstm fwd+bwd B32 T25 F62 H256", lstm_step(32, 25, 62, 256), False),
             ("softmax_cross_entropy 512x8192 one-hot", loss_step("softmax_cross_entropy", 512, 8192, False), False)]
    cases += [PairCase(work, "numpy @ of similar cost", _with_numpy_rival(make), quick=quick)
              for work, make, quick in steps]
    if with_torch if with_torch is not None else torch_available():
        cases.append(PairCase("matmul 256x784x256", "torch.matmul (the same product)", _torch_pair(256, 784, 256),
                              2 * 2.0 * 256 * 784 * 256))
    return cases


def _block(call, reps):
    t0 = time.perf_counter()
    for _ in range(reps):
        call()
    return (time.perf_counter() - t0) / reps


def time_pair(f, g, rounds=7, pause=0.2, budget=0.1):
    """Median seconds per call of f alone and g alone (each block after ``pause``) and of one f plus one g
    taking turns (no pause anywhere), and the median over rounds of (t_f + t_g) / t_pair."""
    for _ in range(3):
        f()
        g()
    reps = max(3, int(budget / max(seconds_per_call(lambda: (f(), g()), 0.0), 1e-7)))
    alone_f, alone_g, pairs, ratios = [], [], [], []
    for _ in range(rounds):
        time.sleep(pause)
        alone_f.append(_block(f, reps))
        time.sleep(pause)
        alone_g.append(_block(g, reps))
        pairs.append(_block(lambda: (f(), g()), reps))
        ratios.append((alone_f[-1] + alone_g[-1]) / pairs[-1])
    return float(np.median(alone_f)), float(np.median(alone_g)), float(np.median(pairs)), float(np.median(ratios))


def run_pairs(quick=False, progress=print, with_torch=None):
    rounds, budget = (3, 0.05) if quick else (7, 0.1)
    rows = []
    for case in pair_cases(with_torch):
        if quick and not case.quick:
            continue
        with fastdl.use_backend("cpu"):
            f, g, rival = case.make()
            t_f, t_g, t_pair, ratio = time_pair(f, g, rounds=rounds, budget=budget)
        row = PairRow(case.work, rival, t_f * 1e3, t_g * 1e3, t_pair * 1e3, ratio,
                      None if case.flop is None else case.flop / t_pair / 1e9)
        rows.append(row)
        if progress:
            progress(format_pair(row))
    return rows


PAIR_HEADER = (f"{'fastdl call':<40} {'rival call':<30} {'fastdl ms':>9} {'rival ms':>9} {'turns ms':>9} "
               f"{'ideal/turns':>11} {'GFLOP/s':>8}")


def format_pair(r):
    gf = f"{r.pair_gflops:8.1f}" if r.pair_gflops is not None else f"{'':>8}"
    return (f"{r.work:<40} {r.rival:<30} {r.fastdl_ms:9.3f} {r.rival_ms:9.3f} {r.pair_ms:9.3f} "
            f"{r.ratio:10.2f}x {gf}")


# ---------------------------------------------------------------------------------------------
# The book's loop with fastdl layers, NumPy layers, or both
# ---------------------------------------------------------------------------------------------

class NumpyDense:
    """The book's Dense layer in float64 NumPy: x @ W + B, then tanh or nothing."""

    def __init__(self, neurons, activation="linear"):
        self.neurons, self.activation = neurons, activation
        self.first, self.seed, self.params, self.param_grads = True, None, [], []

    def forward(self, x, inference=False):
        if self.first:
            rng = np.random.default_rng(self.seed)
            scale = np.sqrt(2 / (x.shape[1] + self.neurons))
            self.params = [rng.normal(0, scale, (x.shape[1], self.neurons)), rng.normal(0, scale, (1, self.neurons))]
            self.first = False
        self.input_ = x
        z = x @ self.params[0] + self.params[1]
        self.output = np.tanh(z) if self.activation == "tanh" else z
        return self.output

    def backward(self, grad):
        if self.activation == "tanh":
            grad = grad * (1 - self.output * self.output)
        self.param_grads = [self.input_.T @ grad, grad.sum(axis=0, keepdims=True)]
        return grad @ self.params[0].T


class BookLoop:
    """The book's NeuralNetwork + SoftmaxCrossEntropy + SGDMomentum(0.1, 0.9), in float64 NumPy."""

    def __init__(self, layers, seed=20190119, lr=0.1, momentum=0.9):
        self.layers, self.lr, self.momentum, self.velocities = layers, lr, momentum, None
        for layer in layers:
            layer.seed = seed

    def train_step(self, X, y):
        for layer in self.layers:
            X = layer.forward(X)
        e = np.exp(X - X.max(axis=1, keepdims=True))
        p = np.clip(e / e.sum(axis=1, keepdims=True), 1e-9, 1 - 1e-9)
        loss = np.sum(-y * np.log(p) - (1 - y) * np.log(1 - p)) / X.shape[0]
        grad = (p - y) / X.shape[0]
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        params = [p for layer in self.layers for p in layer.params]
        grads = [g for layer in self.layers for g in layer.param_grads]
        if self.velocities is None:
            self.velocities = [np.zeros_like(p) for p in params]
        for param, g, v in zip(params, grads, self.velocities):
            v *= self.momentum
            v += self.lr * g
            param -= v
        return loss


def _fastdl_dense(neurons, activation):
    from fastdl.activations import Linear, Tanh
    from fastdl.layers import Dense

    return Dense(neurons, Tanh() if activation == "tanh" else Linear(), weight_init="glorot")


def _fastdl_conv():
    from fastdl.activations import Tanh
    from fastdl.layers import Conv2D

    return Conv2D(16, 5, activation=Tanh(), weight_init="glorot", flatten=True)


def network_cases():
    """(network, layers, build) with build() -> (BookLoop, X, y): float64 data, batch 60."""
    def mlp(first, second):
        def build():
            rng = np.random.default_rng(0)
            X, y = rng.standard_normal((60, 784)), np.eye(10)[rng.integers(0, 10, 60)]
            return BookLoop([first("256", "tanh"), second("10", "linear")]), X, y
        return build

    numpy_dense = lambda n, act: NumpyDense(int(n), act)  # noqa: E731
    fastdl_dense = lambda n, act: _fastdl_dense(int(n), act)  # noqa: E731

    def cnn(second):
        def build():
            rng = np.random.default_rng(0)
            X, y = rng.standard_normal((60, 1, 28, 28)), np.eye(10)[rng.integers(0, 10, 60)]
            return BookLoop([_fastdl_conv(), second("10", "linear")]), X, y
        return build

    mlp_name = "MLP 784-256(tanh)-10, batch 60, float64"
    cnn_name = "CNN Conv2D(16, 5, tanh, flatten)-10, batch 60, 28x28, float64"
    return [(mlp_name, "NumPy Dense(256) + NumPy Dense(10)", mlp(numpy_dense, numpy_dense)),
            (mlp_name, "NumPy Dense(256) + fastdl Dense(10)", mlp(numpy_dense, fastdl_dense)),
            (mlp_name, "fastdl Dense(256) + NumPy Dense(10)", mlp(fastdl_dense, numpy_dense)),
            (mlp_name, "fastdl Dense(256) + fastdl Dense(10)", mlp(fastdl_dense, fastdl_dense)),
            (cnn_name, "fastdl Conv2D + fastdl Dense(10)", cnn(fastdl_dense)),
            (cnn_name, "fastdl Conv2D + NumPy Dense(10)", cnn(numpy_dense))]


def run_networks(quick=False, progress=print):
    """Median ms per training step of each network, blocks of steps alternating between the networks."""
    rounds, budget, pause = (3, 0.1, 0.2) if quick else (7, 0.25, 0.2)
    built = []
    with fastdl.use_backend("cpu"):
        for network, layers, build in network_cases():
            loop, X, y = build()
            step = (lambda loop=loop, X=X, y=y: loop.train_step(X, y))
            built.append((network, layers, step, max(3, int(budget / max(seconds_per_call(step, 0.0), 1e-7)))))
        times = {layers: [] for _, layers, _, _ in built}
        for _ in range(rounds):
            for network, layers, step, reps in built:
                time.sleep(pause)
                times[layers].append(_block(step, reps))
    rows = [StepRow(network, layers, float(np.median(times[layers])) * 1e3) for network, layers, _, _ in built]
    if progress:
        for row in rows:
            progress(format_step(row))
    return rows


STEP_HEADER = f"{'network (the book loop)':<62} {'layers':<38} {'ms/step':>8}"


def format_step(r):
    return f"{r.network:<62} {r.layers:<38} {r.step_ms:8.3f}"
