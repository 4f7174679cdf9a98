"""Fused softmax cross-entropy and the elementwise activations: numpy reference vs cpu (vs cuda), fp32.

Throughput counts the bytes a fused kernel must move: logits read + grad written (softmax), and
x read + y written, then y, grad_y read + grad_x written (activation fwd+bwd).
"""

import numpy as np
import pytest

from conftest import record
from fastdl import kernels

# (B, C, target kind, kernel): the issue-5 shapes.
SOFTMAX = [(512, 8192, "onehot", "softmax_cross_entropy"), (4096, 1000, "labels", "softmax_cross_entropy"),
           (4096, 1000, "labels", "cross_entropy"), (2048, 32000, "labels", "cross_entropy"),
           (64, 10, "onehot", "softmax_cross_entropy")]


def _softmax_label(b, c, kind, name):
    return f"{name} {b}x{c} {kind}"


@pytest.mark.parametrize("case", SOFTMAX, ids=lambda s: _softmax_label(*s))
def test_softmax_cross_entropy(benchmark, backend_name, rng, case):
    b, c, kind, name = case
    logits = (rng.standard_normal((b, c)) * 3).astype(np.float32)
    labels = rng.integers(0, c, size=b)
    target = labels if kind == "labels" else np.eye(c, dtype=np.float32)[labels]
    group = _softmax_label(*case)
    benchmark.group = group
    benchmark(getattr(kernels, name), logits, target)
    record(benchmark, group, backend_name, nbytes=2 * logits.nbytes)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu"])
def test_activation_fwd_bwd(benchmark, backend_name, rng, name):
    x = rng.standard_normal(4 << 20).astype(np.float32)
    grad_y = rng.standard_normal(4 << 20).astype(np.float32)

    def step():
        y = kernels.activation(x, name)
        return kernels.activation_backward(y, grad_y, name)

    group = f"activation {name} fwd+bwd 4M"
    benchmark.group = group
    benchmark(step)
    record(benchmark, group, backend_name, nbytes=5 * x.nbytes)
