"""fastdl.rnn.SoftmaxCrossEntropy: chapter 6's per-time-step summed loss over (B, T, V)."""

import numpy as np
import pytest

import fastdl
from fastdl.rnn import SoftmaxCrossEntropy


def _direct(logits, onehot, eps=1e-9):
    e = np.exp(logits - logits.max(axis=2, keepdims=True))
    p = np.clip(e / e.sum(axis=2, keepdims=True), eps, 1 - eps)
    return float((-onehot * np.log(p) - (1 - onehot) * np.log(1 - p)).sum()), p - onehot


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("labels_form", [False, True])
def test_summed_loss_matches_direct_formula(backend, labels_form):
    if backend == "cpu" and not fastdl.backend.cpu_available():
        pytest.skip("the C++ extension is not built")
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((3, 5, 7))
    labels = rng.integers(0, 7, size=(3, 5))
    onehot = np.eye(7)[labels]
    want_loss, want_grad = _direct(logits, onehot)
    loss_fn = SoftmaxCrossEntropy()
    with fastdl.use_backend(backend):
        loss = loss_fn.forward(logits, labels if labels_form else onehot)
        grad = loss_fn.backward()
    np.testing.assert_allclose(loss, want_loss, rtol=1e-10)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-9, atol=1e-12)
    assert grad.shape == logits.shape


def test_uniform_prediction_gives_the_books_5_119_per_position():
    loss = SoftmaxCrossEntropy().forward(np.zeros((2, 4, 62)), np.eye(62)[np.zeros((2, 4), int)])
    np.testing.assert_allclose(loss / 8, np.log(62) - 61 * np.log(1 - 1 / 62), rtol=1e-9)
    assert abs(loss / 8 - 5.119) < 1e-3
