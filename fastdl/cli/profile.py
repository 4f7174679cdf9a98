"""``fastdl bench --profile MODEL``: one training step of the book's mlp, cnn or lstm, kernel by kernel, on the
roofline of this machine.

Every call the step makes through ``fastdl.kernels`` is timed. Each kernel's work is counted from its
arguments: floating-point operations (GEMMs, convolutions, recurrent sequences) and the bytes it must read and
write at least (its inputs and outputs, once). Its roofline limit is ``min(peak, bytes-intensity x bandwidth)``
with the compute peak and the copy bandwidth measured here first (a large fp32 GEMM; a copy of an array far
larger than the caches), and the table gives the fraction of that limit each kernel reaches. What no kernel
accounts for (the layers' Python, the loss's bookkeeping) is the "other" row.
"""

import contextlib
import statistics
import time

import numpy as np

from fastdl import kernels

#: the kernels whose work is floating-point operations; every other kernel is counted in bytes only
_GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def _nbytes(values):
    total = 0
    for v in values:
        if isinstance(v, np.ndarray):
            total += v.nbytes
        elif isinstance(v, (list, tuple)):
            total += _nbytes(v)
        elif isinstance(v, dict):
            total += _nbytes(v.values())
    return total


def _flops(name, args, kwargs, result):
    """Floating-point operations of one call (0 for the memory-bound kernels)."""
    if name == "matmul":
        a, b = args[0], args[1]
        m, k = (a.shape[1], a.shape[0]) if kwargs.get("trans_a") else a.shape
        n = b.shape[0] if kwargs.get("trans_b") else b.shape[1]
        return 2 * m * k * n
    if name in ("linear", "linear_backward"):
        x, w = args[0], args[1]
        need_x = kwargs.get("need_grad_x", True)
        return 2 * x.shape[0] * w.shape[0] * w.shape[1] * (1 if name == "linear" else 2 if need_x else 1)
    if name in ("conv2d", "conv2d_dropout", "conv2d_backward"):
        x, w = args[0], args[1]
        y = result[0] if name == "conv2d_dropout" else result if name == "conv2d" else args[2]
        once = 2 * y.size * x.shape[1] * w.shape[2] * w.shape[3]
        need_x = kwargs.get("need_grad_x", True)
        return once * (2 if need_x else 1) if name == "conv2d_backward" else once
    family = name.split("_")[0]
    if family in _GATES:
        h_seq = result[0] if name.endswith("forward") else args[0]
        x_width = (args[0] if name.endswith("forward") else result[0]).shape[-1]  # x or grad_x: (B, T, I)
        B, T, H = h_seq.shape
        once = 2 * B * T * (x_width + H) * _GATES[family] * H
        return once if name.endswith("forward") else 2 * once
    return 0


class KernelTimer:
    """Wraps every function of ``fastdl.kernels`` while active; ``records`` gets (name, seconds, flops, bytes)."""

    NAMES = tuple(kernels.KERNEL_NAMES) + ("parameter_update", "try_parameter_update")

    def __init__(self):
        self.records = []

    def _wrap(self, name, fn):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            result = fn(*args, **kwargs)
            seconds = time.perf_counter() - t0
            moved = _nbytes(args) + _nbytes(kwargs.values()) + _nbytes([result])
            label = "parameter_update" if name == "try_parameter_update" else name
            self.records.append((label, seconds, _flops(name, args, kwargs, result), moved))
            return result
        return timed

    @contextlib.contextmanager
    def active(self):
        saved = {name: getattr(kernels, name) for name in self.NAMES}
        try:
            for name, fn in saved.items():
                setattr(kernels, name, self._wrap(name, fn))
            yield self
        finally:
            for name, fn in saved.items():
                setattr(kernels, name, fn)


def measure_limits(seconds=0.5):
    """(compute peak in FLOP/s: the best of a 768^3 fp32 GEMM; copy bandwidth in bytes/s: read + write of 256 MiB)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((768, 768)).astype(np.float32)
    kernels.matmul(a, a)
    best, end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        kernels.matmul(a, a)
        best = min(best, time.perf_counter() - t0)
    src = np.ones(1 << 26, np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    copy = min(_time(lambda: np.copyto(dst, src)) for _ in range(5))
    return 2 * 768 ** 3 / best, 2 * src.nbytes / copy


def _time(call):
    t0 = time.perf_counter()
    call()
    return time.perf_counter() - t0


# -- the three models' training steps ------------------------------------------------------------
def mlp_step(batch=60):
    """Chapter 4's MLP on 784-pixel images (Fashion-MNIST's shape): Dense(89, Tanh) -> Dense(10), SGD momentum."""
    from fastdl.activations import Linear, Tanh
    from fastdl.layers import Dense
    from fastdl.losses import SoftmaxCrossEntropy
    from fastdl.network import NeuralNetwork
    from fastdl.optimizers import SGDMomentum

    net = NeuralNetwork([Dense(89, activation=Tanh(), weight_init="glorot"),
                         Dense(10, activation=Linear(), weight_init="glorot")], loss=SoftmaxCrossEntropy(), seed=1)
    return _network_step(net, SGDMomentum(0.1, momentum=0.9), (batch, 784))


def cnn_step(batch=60):
    """Chapter 5's CNN on 1x28x28 images: Conv2D(16, 5, Tanh, dropout 0.8, flatten) -> Dense(10), SGD momentum."""
    from fastdl.cli.demos import build_cnn

    net, optim = build_cnn()
    return _network_step(net, optim, (batch, 1, 28, 28))


def _network_step(net, optim, shape):
    rng = np.random.default_rng(0)
    X = rng.standard_normal(shape).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, size=shape[0])]
    optim.net = net

    def step():
        net.train_batch(X, y)
        optim.step()
    return step


def lstm_step(batch=32, steps=25, vocab=62, hidden=256):
    """Chapter 6's LSTM(256) + LSTM(256) character model: single_step + SGD with clipping."""
    from fastdl.rnn import LSTMLayer, RNNModel
    from fastdl.rnn.optimizers import SGD

    model = RNNModel([LSTMLayer(hidden, 128, weight_scale=0.1), LSTMLayer(hidden, vocab, weight_scale=0.01)],
                     sequence_length=steps, vocab_size=vocab, seed=1)
    optim = SGD(lr=0.01)
    optim.model = model
    rng = np.random.default_rng(0)
    eye = np.eye(vocab, dtype=np.float32)
    x, y = eye[rng.integers(0, vocab, size=(batch, steps))], eye[rng.integers(0, vocab, size=(batch, steps))]

    def step():
        model.single_step(x, y)
        optim.step()
    return step


MODELS = {"mlp": (mlp_step, "ch4 MLP 784 -> 89 tanh -> 10, batch 60"),
          "cnn": (cnn_step, "ch5 CNN Conv2D(16, 5, tanh, dropout 0.8, flatten) -> 10, batch 60 of 1x28x28"),
          "lstm": (lstm_step, "ch6 LSTM(256) + LSTM(256), T 25, batch 32, vocabulary 62")}


def profile(model, steps=30, warmup=5):
    """Rows per kernel (median over ``steps`` steps run back to back, as in training) plus the limits and the
    step time; see the module docstring."""
    peak, bandwidth = measure_limits()
    step = MODELS[model][0]()
    for _ in range(warmup):
        step()
    timer = KernelTimer()
    per_step, totals = [], []
    with timer.active():
        for _ in range(steps):
            timer.records.clear()
            t0 = time.perf_counter()
            step()
            totals.append(time.perf_counter() - t0)
            per_step.append(list(timer.records))
    rows = {}
    for records in per_step:
        seen = {}
        for name, seconds, flops, moved in records:
            s = seen.setdefault(name, [0.0, 0, 0, 0])
            s[0] += seconds
            s[1] += flops
            s[2] += moved
            s[3] += 1
        for name, s in seen.items():
            rows.setdefault(name, []).append(s)
    table = []
    for name, samples in rows.items():
        seconds = statistics.median(s[0] for s in samples)
        flops, moved, calls = samples[0][1], samples[0][2], samples[0][3]
        limit_s = max(flops / peak, moved / bandwidth)
        table.append({"kernel": name, "calls": calls, "ms": seconds * 1e3,
                      "gflops": flops / seconds / 1e9 if flops else None, "gbytes_s": moved / seconds / 1e9,
                      "bound": "compute" if flops / peak >= moved / bandwidth else "memory",
                      "limit_ms": limit_s * 1e3, "of_limit": limit_s / seconds if seconds else None})
    table.sort(key=lambda r: -r["ms"])
    step_ms = statistics.median(totals) * 1e3
    # per step, what its kernels left unaccounted (medians of the parts would not add up to the median step)
    other_ms = statistics.median(total - sum(r[1] for r in records) for total, records in zip(totals, per_step)) * 1e3
    return {"model": model, "workload": MODELS[model][1], "step_ms": step_ms,
            "other_ms": other_ms, "peak_gflops": peak / 1e9,
            "copy_gbytes_s": bandwidth / 1e9, "rows": table}


def format_profile(report):
    lines = [f"{report['workload']}: one training step {report['step_ms']:.3f} ms",
             f"limits measured here: compute {report['peak_gflops']:.0f} GFLOP/s (768^3 fp32 GEMM), "
             f"copy {report['copy_gbytes_s']:.1f} GB/s (read + write of 256 MiB)",
             f"{'kernel':<24}{'calls':>6}{'ms':>9}{'GFLOP/s':>10}{'GB/s':>8}  {'bound':<8}{'limit ms':>9}{'of limit':>9}"]
    for r in report["rows"]:
        gflops = f"{r['gflops']:.1f}" if r["gflops"] else "-"
        lines.append(f"{r['kernel']:<24}{r['calls']:>6}{r['ms']:>9.3f}{gflops:>10}{r['gbytes_s']:>8.1f}  "
                     f"{r['bound']:<8}{r['limit_ms']:>9.3f}{r['of_limit']:>9.2f}")
    lines.append(f"{'other (Python, copies)':<24}{'':>6}{report['other_ms']:>9.3f}")
    return "\n".join(lines)
