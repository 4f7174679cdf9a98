"""The NumPy reference itself: softmax_cross_entropy (the book's loss) and cross_entropy.

Checked against direct Python loops (both dtypes), finite differences (float64), the book's stored
uniform-prediction value (chapter 6) and extreme logits.
"""

import math

import numpy as np
import pytest
from helpers import numerical_grad

from fastdl.reference import cross_entropy, softmax_cross_entropy

DTYPES = [np.float32, np.float64]
SHAPES = [(1, 1), (1, 2), (3, 5), (7, 3), (2, 11)]


def loop_softmax(row):
    m = max(float(v) for v in row)
    e = [math.exp(float(v) - m) for v in row]
    s = sum(e)
    return [v / s for v in e]


def loop_book_loss(logits, y, eps=1e-9):
    """The book's two-term loss and its clipped-softmax gradient, one element at a time."""
    B, C = logits.shape
    total = 0.0
    grad = np.zeros((B, C))
    for n in range(B):
        p = loop_softmax(logits[n])
        for k in range(C):
            pc = min(max(p[k], eps), 1 - eps)
            t = float(y[n, k])
            total += -t * math.log(pc) - (1 - t) * math.log(1 - pc)
            grad[n, k] = (pc - t) / B
    return total / B, grad


def loop_ce(logits, y):
    B, C = logits.shape
    total = 0.0
    grad = np.zeros((B, C))
    for n in range(B):
        p = loop_softmax(logits[n])
        for k in range(C):
            total -= float(y[n, k]) * math.log(p[k])
            grad[n, k] = (p[k] - float(y[n, k])) / B
    return total / B, grad


def make(shape, dtype, seed=0, scale=2.0):
    B, C = shape
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((B, C)) * scale).astype(dtype)
    labels = rng.integers(0, C, size=B).astype(np.int64)
    onehot = np.eye(C, dtype=dtype)[labels]
    return logits, labels, onehot


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("fn,loop", [(softmax_cross_entropy, loop_book_loss), (cross_entropy, loop_ce)],
                         ids=["book", "ce"])
def test_matches_loop_both_target_forms(fn, loop, shape, dtype):
    logits, labels, onehot = make(shape, dtype)
    before = [a.copy() for a in (logits, labels, onehot)]
    exp_loss, exp_grad = loop(logits, onehot)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    for target in (onehot, labels):
        loss, grad = fn(logits, target)
        assert type(loss) is float
        assert grad.dtype == dtype and grad.shape == shape
        assert not np.shares_memory(grad, logits)
        assert loss == pytest.approx(exp_loss, rel=tol["rtol"], abs=tol["atol"])
        np.testing.assert_allclose(grad, exp_grad, **tol)
    for a, a0 in zip((logits, labels, onehot), before):
        np.testing.assert_array_equal(a, a0)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_cross_entropy_gradient_finite_differences(shape):
    logits, _, onehot = make(shape, np.float64, seed=1)
    _, grad = cross_entropy(logits, onehot)
    numeric = numerical_grad(lambda: cross_entropy(logits, onehot)[0], logits)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_book_gradient_is_the_ce_gradient_when_unclipped(shape):
    # the book trains with (softmax - y)/B, the gradient of standard CE (not of its two-term value)
    logits, _, onehot = make(shape, np.float64, seed=2, scale=1.0)
    _, grad = softmax_cross_entropy(logits, onehot)
    numeric = numerical_grad(lambda: cross_entropy(logits, onehot)[0], logits)
    if shape[1] == 1:  # one class: p == 1 is clipped to 1 - eps
        np.testing.assert_allclose(grad, -1e-9 / shape[0], atol=1e-15)
    else:
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


def test_book_uniform_prediction_value():
    # the book's chapter 6 value: a uniform prediction over V = 62 costs ln V + (V-1)(-ln(1 - 1/V)) = 5.119 per row
    V = 62
    expected = math.log(V) - (V - 1) * math.log(1 - 1 / V)
    assert round(expected, 3) == 5.119
    for dtype in DTYPES:
        logits = np.zeros((4, V), dtype=dtype)
        labels = np.array([0, 5, 61, 7], dtype=np.int64)
        loss, _ = softmax_cross_entropy(logits, labels)
        assert loss == pytest.approx(expected, rel=1e-6)
        ce, _ = cross_entropy(logits, labels)
        assert ce == pytest.approx(math.log(V), rel=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_logits_are_stable(dtype):
    logits = np.array([[1000.0, 0.0, -1000.0], [-50.0, 50.0, 0.0], [3.0, 3.0, 3.0]], dtype=dtype)
    y = np.array([0, 0, 2], dtype=np.int64)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, grad = softmax_cross_entropy(logits, y)
        ce, ce_grad = cross_entropy(logits, y)
    assert np.isfinite(loss) and np.isfinite(grad).all()
    assert np.isfinite(ce) and np.isfinite(ce_grad).all()
    # the float64 book value: clipping bounds every log term at -ln(1e-9)
    ref, _ = loop_book_loss(logits.astype(np.float64), np.eye(3)[y])
    assert loss == pytest.approx(ref, rel=1e-5)
    # standard CE: row 2 misses by 100 nats, row 3 is uniform
    assert ce == pytest.approx((0.0 + 100.0 + math.log(3)) / 3, rel=1e-5)


def test_custom_eps_clips_gradient():
    logits = np.array([[20.0, 0.0]])
    _, grad = softmax_cross_entropy(logits, np.array([[1.0, 0.0]]), eps=1e-3)
    np.testing.assert_allclose(grad, [[(1 - 1e-3) - 1, 1e-3]], rtol=1e-12)
