"""Recurrent kernels fwd+bwd: numpy reference vs cpu (vs cuda), fp32, with a Linear read-out on every step.

The headline shape: input 128, hidden 256, batch 64, T = 35, read-out Linear(256, 128)
applied to every h_t (one GEMM over B*T rows). Each group holds one cell and shape; extra_info has the
GFLOP/s of the GEMM work (2 * multiply-adds: input and recurrent GEMMs forward; the same again twice in
backward for the input and weight gradients; plus the read-out).
"""

import numpy as np
import pytest

from conftest import record
from fastdl import kernels

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
# (B, T, F, H, O)
SHAPES = [(64, 35, 128, 256, 128), (32, 25, 64, 128, 64)]


def _flop(kind, B, T, F, H, O):
    gh = GATES[kind] * H
    cell = 2.0 * B * T * (F + H) * gh  # forward GEMMs
    return 3 * cell + 3 * 2.0 * B * T * H * O  # fwd + 2 backward GEMMs each, for the cell and the read-out


def _step(kind, rng, B, T, F, H, O):
    f = np.float32
    x = rng.standard_normal((B, T, F)).astype(f)
    h0 = np.zeros((B, H), f)
    c0 = np.zeros((B, H), f)
    w = (rng.standard_normal((F + H, GATES[kind] * H)) / np.sqrt(F + H)).astype(f)
    b = np.zeros(GATES[kind] * H, f)
    wr = (rng.standard_normal((H, O)) / np.sqrt(H)).astype(f)
    br = np.zeros(O, f)
    grad_y = rng.standard_normal((B * T, O)).astype(f)

    def step():
        if kind == "lstm":
            h_seq, _, cache = kernels.lstm_forward(x, h0, c0, w, b)
        else:
            h_seq, cache = getattr(kernels, kind + "_forward")(x, h0, w, b)
        h2 = h_seq.reshape(B * T, H)
        y = kernels.linear(h2, wr, br)
        grad_h, _, _ = kernels.linear_backward(h2, wr, y, grad_y)
        grad_h = grad_h.reshape(B, T, H)
        if kind == "lstm":
            return kernels.lstm_backward(grad_h, cache)
        return getattr(kernels, kind + "_backward")(grad_h, cache)

    return step


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}xT{}xF{}xH{}xO{}".format(*s))
def test_recurrent_fwd_bwd(benchmark, backend_name, rng, kind, shape):
    group = "{} + Linear fwd+bwd B{} T{} F{} H{} O{}".format(kind.upper(), *shape)
    benchmark.group = group
    benchmark(_step(kind, rng, *shape))
    record(benchmark, group, backend_name, flop=_flop(kind, *shape))
