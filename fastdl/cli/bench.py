"""``python -m fastdl bench``: time every kernel family against the NumPy reference, in one process.

Each case runs the same inputs through the ``numpy`` backend and the chosen backend. Timing
alternates BLOCKS of calls between the two, with a pause before each block: OpenBLAS and OpenMP
worker threads keep spinning for a while after a call and would slow a rival that starts at once.
The figure kept is the median over rounds of each block's mean time per call.
"""

import json
import platform
import time
from dataclasses import asdict, dataclass
from typing import Callable, Optional

import numpy as np

import fastdl
from fastdl import kernels


@dataclass
class Case:
    op: str
    shape: str
    make: Callable[[], Callable[[], object]]  # builds inputs, returns the call to time
    flop: Optional[float] = None             # floating-point operations per call
    nbytes: Optional[float] = None           # bytes a fused kernel must move per call
    quick: bool = True                       # part of --quick


@dataclass
class Row:
    op: str
    shape: str
    dtype: str
    backend: str
    numpy_ms: float
    fastdl_ms: float
    speedup: float
    gflops: Optional[float]
    gbytes_per_s: Optional[float]


def rand_f32(rng, shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _matmul(m, k, n, trans_a=False, trans_b=False):
    def make():
        rng = np.random.default_rng(0)
        a = rand_f32(rng, (k, m) if trans_a else (m, k))
        b = rand_f32(rng, (n, k) if trans_b else (k, n))
        return lambda: kernels.matmul(a, b, trans_a=trans_a, trans_b=trans_b)
    return make


def _dense(n, i, o, act):
    def make():
        rng = np.random.default_rng(0)
        x, w, b, g = rand_f32(rng, (n, i)), rand_f32(rng, (i, o), 0.05), rand_f32(rng, (o,)), rand_f32(rng, (n, o))

        def step():
            y = kernels.linear(x, w, b, act)
            return kernels.linear_backward(x, w, y, g, act)
        return step
    return make


def loss_step(name, batch, classes, labels):
    def make():
        rng = np.random.default_rng(0)
        logits = rand_f32(rng, (batch, classes), 3.0)
        target = rng.integers(0, classes, size=batch)
        if not labels:
            target = np.eye(classes, dtype=np.float32)[target]
        fn = getattr(kernels, name)
        return lambda: fn(logits, target)
    return make


def _activation(name, size):
    def make():
        rng = np.random.default_rng(0)
        x, g = rand_f32(rng, (size,)), rand_f32(rng, (size,))

        def step():
            return kernels.activation_backward(kernels.activation(x, name), g, name)
        return step
    return make


def _dropout(shape, keep_prob):
    def make():
        rng = np.random.default_rng(0)
        x, g = rand_f32(rng, shape), rand_f32(rng, shape)

        def step():
            _, mask = kernels.dropout(x, keep_prob, 12345)
            return kernels.dropout_backward(g, mask)
        return step
    return make


def conv_step(batch, c_in, c_out, hw, k):
    def make():
        rng = np.random.default_rng(0)
        x, w = rand_f32(rng, (batch, c_in, hw, hw)), rand_f32(rng, (c_in, c_out, k, k), 0.1)
        g = rand_f32(rng, (batch, c_out, hw, hw))

        def step():
            kernels.conv2d(x, w)
            return kernels.conv2d_backward(x, w, g)
        return step
    return make


def lstm_step(batch, steps, features, hidden):
    def make():
        rng = np.random.default_rng(0)
        x = rand_f32(rng, (batch, steps, features))
        h0, c0 = rand_f32(rng, (batch, hidden)), rand_f32(rng, (batch, hidden))
        w, b = rand_f32(rng, (features + hidden, 4 * hidden), 0.05), rand_f32(rng, (4 * hidden,))
        g = rand_f32(rng, (batch, steps, hidden))

        def step():
            _, _, cache = kernels.lstm_forward(x, h0, c0, w, b)
            return kernels.lstm_backward(g, cache)
        return step
    return make


#: the GEMM shapes that benches/bench_matmul.py times and bench_mixed pairs with NumPy:
#: (M, K, N, trans_a, trans_b), square sizes and deep-learning shapes
GEMM_SHAPES = [(512, 512, 512, False, False), (1024, 1024, 1024, False, False), (64, 784, 256, False, False),
               (256, 784, 256, False, False), (64, 256, 1024, False, False), (32, 4096, 4096, False, False),
               (64, 256, 784, False, True), (784, 64, 256, True, False)]


def cases():
    """The embedded default shapes (fp32). ``quick=False`` cases run only without --quick."""
    lstm_flop = lambda b, t, f, h: 3 * 2.0 * b * t * (f + h) * 4 * h  # noqa: E731  fwd + 2x bwd
    return [
        Case("matmul", "512x512x512", _matmul(512, 512, 512), 2.0 * 512 ** 3),
        Case("matmul", "1024x1024x1024", _matmul(1024, 1024, 1024), 2.0 * 1024 ** 3, quick=False),
        Case("matmul", "64x784x256", _matmul(64, 784, 256), 2.0 * 64 * 784 * 256),
        Case("matmul", "256x784x256", _matmul(256, 784, 256), 2.0 * 256 * 784 * 256, quick=False),
        Case("matmul", "32x4096x4096", _matmul(32, 4096, 4096), 2.0 * 32 * 4096 * 4096, quick=False),
        Case("matmul NT", "64x256x784", _matmul(64, 256, 784, trans_b=True), 2.0 * 64 * 256 * 784, quick=False),
        Case("matmul TN", "784x64x256", _matmul(784, 64, 256, trans_a=True), 2.0 * 784 * 64 * 256, quick=False),
        Case("linear+sigmoid fwd+bwd", "64x784->256", _dense(64, 784, 256, "sigmoid"), 3 * 2.0 * 64 * 784 * 256),
        Case("linear fwd+bwd", "60x12544->10", _dense(60, 12544, 10, "linear"), 3 * 2.0 * 60 * 12544 * 10,
             quick=False),
        Case("softmax_cross_entropy", "512x8192 one-hot", loss_step("softmax_cross_entropy", 512, 8192, False),
             nbytes=2 * 512 * 8192 * 4),
        Case("cross_entropy", "4096x1000 labels", loss_step("cross_entropy", 4096, 1000, True), nbytes=2 * 4096 * 1000 * 4),
        Case("cross_entropy", "2048x32000 labels", loss_step("cross_entropy", 2048, 32000, True),
             nbytes=2 * 2048 * 32000 * 4, quick=False),
        Case("sigmoid fwd+bwd", "4M", _activation("sigmoid", 4 << 20), nbytes=5 * 4 * (4 << 20)),
        Case("tanh fwd+bwd", "4M", _activation("tanh", 4 << 20), nbytes=5 * 4 * (4 << 20), quick=False),
        # x, y, g, grad_x (4 bytes each) and the mask twice (1 byte) per element
        Case("dropout fwd+bwd", "60x16x28x28 keep 0.8", _dropout((60, 16, 28, 28), 0.8), nbytes=18 * 60 * 16 * 784),
        Case("conv2d fwd+bwd", "32x1x28x28 k5 ->16", conv_step(32, 1, 16, 28, 5), 3 * 2.0 * 32 * 16 * 784 * 25),
        Case("conv2d fwd+bwd", "32x16x14x14 k3 ->32", conv_step(32, 16, 32, 14, 3), 3 * 2.0 * 32 * 32 * 196 * 16 * 9,
             quick=False),
        Case("lstm fwd+bwd", "B64 T35 F128 H256", lstm_step(64, 35, 128, 256), lstm_flop(64, 35, 128, 256), quick=False),
        Case("lstm fwd+bwd", "B32 T25 F62 H256", lstm_step(32, 25, 62, 256), lstm_flop(32, 25, 62, 256)),
    ]


def block_time(call, pause, budget):
    """Mean seconds per call over one block, after a pause and two warm-up calls."""
    time.sleep(pause)
    call()
    t0 = time.perf_counter()
    call()
    single = time.perf_counter() - t0
    n = max(2, int(budget / max(single, 1e-7)))
    t0 = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - t0) / n


def time_case(case, backend, rounds, pause, budget):
    """Median per-call times (numpy, backend) with alternating blocks."""
    with fastdl.use_backend("numpy"):
        ref_call = case.make()
    with fastdl.use_backend(backend):
        fast_call = case.make()
    ref, fast = [], []
    for _ in range(rounds):
        with fastdl.use_backend("numpy"):
            ref.append(block_time(ref_call, pause, budget))
        with fastdl.use_backend(backend):
            fast.append(block_time(fast_call, pause, budget))
    return float(np.median(ref)), float(np.median(fast))


def run(backend=None, quick=False, progress=print):
    """Time every case; returns a list of Row."""
    backend = backend or fastdl.get_backend()
    # the pause must outlast the spinning worker threads (~0.1 s) even in --quick, or the numbers lie
    rounds, pause, budget = (3, 0.2, 0.04) if quick else (5, 0.2, 0.1)
    rows = []
    for case in cases():
        if quick and not case.quick:
            continue
        ref_s, fast_s = time_case(case, backend, rounds, pause, budget)
        row = Row(case.op, case.shape, "float32", backend, ref_s * 1e3, fast_s * 1e3, ref_s / fast_s,
                  None if case.flop is None else case.flop / fast_s / 1e9,
                  None if case.nbytes is None else case.nbytes / fast_s / 1e9)
        rows.append(row)
        if progress:
            progress(format_row(row))
    return rows


HEADER = f"{'op':<24} {'shape':<22} {'dtype':<8} {'numpy ms':>10} {'fastdl ms':>10} {'speedup':>8} {'GFLOP/s':>8} {'GB/s':>6}"


def format_row(r):
    gf = f"{r.gflops:8.1f}" if r.gflops is not None else f"{'':>8}"
    gb = f"{r.gbytes_per_s:6.1f}" if r.gbytes_per_s is not None else f"{'':>6}"
    return f"{r.op:<24} {r.shape:<22} {r.dtype:<8} {r.numpy_ms:10.3f} {r.fastdl_ms:10.3f} {r.speedup:7.2f}x {gf} {gb}"


def machine_info():
    """Machine and versions recorded with every result."""
    info = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "fastdl": fastdl.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "machine": platform.machine(), "processor": platform.processor(),
            "threads": fastdl.get_num_threads()}
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        info["cpu"], info["cpu_count"] = (names[0] if names else ""), len(names)
    except OSError:
        pass
    if fastdl.backend.cpu_available():
        import fastdl._core as _core

        info["gemm_kernel"] = _core.selected_gemm_kernel()
        info["vec_isa"] = _core.vec_isa()
    return info


def write_json(rows, path, mixed=None):
    """The rows, the machine facts and, when given, the mixed section ({"pairs": [...], "networks": [...]})."""
    out = {"machine": machine_info(), "rows": [asdict(r) for r in rows]}
    if mixed is not None:
        out["mixed"] = {name: [asdict(r) for r in section] for name, section in mixed.items()}
    with open(path, "w") as f:
        json.dump(out, f, indent=2)


def write_plot(rows, path):
    """A bar chart of the speedups against the NumPy reference (needs matplotlib)."""
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError("the speedup chart needs matplotlib: pip install matplotlib") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r.op}\n{r.shape}" for r in rows]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(rows)), 4.5))
    ax.bar(range(len(rows)), [r.speedup for r in rows], color="#3b7dd8")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("speedup vs numpy reference (log)")
    ax.set_title(f"fastdl {rows[0].backend if rows else ''} backend vs the NumPy reference (fp32, {fastdl.get_num_threads()} threads)")
    for i, r in enumerate(rows):
        ax.text(i, r.speedup, f"{r.speedup:.1f}x", ha="center", va="bottom", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
