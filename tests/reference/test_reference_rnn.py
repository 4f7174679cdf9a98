"""The NumPy reference itself: RNN / LSTM / GRU sequences, forward and backward through time.

Forwards are checked against step-by-step loops over t and the batch written from the book's formulas
(the book's [x, h] column stack, separate per-gate weights); every gradient (x, h0, c0, w, b, and the
LSTM's grad_c_last path) is checked against central finite differences in float64.
"""

import copy
import math

import numpy as np
import pytest
from helpers import numerical_grad

from fastdl.reference import (gru_backward, gru_forward, lstm_backward, lstm_forward,
                              rnn_backward, rnn_forward)

DTYPES = [np.float32, np.float64]
CASES = [(1, 1, 1, 1), (2, 3, 4, 5), (3, 5, 2, 3), (1, 7, 3, 2)]  # (B, T, F, H)
TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


def sig(v):
    return 1.0 / (1.0 + math.exp(-v))


# --- direct loops: every sample, every step, every unit -------------------------------------------

def loop_rnn(x, h0, w, b):
    B, T, F = x.shape
    H = h0.shape[1]
    out = np.zeros((B, T, H))
    for n in range(B):
        h = [float(v) for v in h0[n]]
        for t in range(T):
            z = list(x[n, t]) + h
            h = [math.tanh(sum(float(z[k]) * float(w[k, j]) for k in range(F + H)) + float(b[j]))
                 for j in range(H)]
            out[n, t] = h
    return out


def loop_lstm(x, h0, c0, w, b):
    B, T, F = x.shape
    H = h0.shape[1]
    out = np.zeros((B, T, H))
    c_last = np.zeros((B, H))
    for n in range(B):
        h = [float(v) for v in h0[n]]
        c = [float(v) for v in c0[n]]
        for t in range(T):
            z = list(x[n, t]) + h
            a = [sum(float(z[k]) * float(w[k, j]) for k in range(F + H)) + float(b[j])
                 for j in range(4 * H)]
            f = [sig(v) for v in a[:H]]
            i = [sig(v) for v in a[H:2 * H]]
            g = [math.tanh(v) for v in a[2 * H:3 * H]]
            o = [sig(v) for v in a[3 * H:]]
            c = [f[j] * c[j] + i[j] * g[j] for j in range(H)]
            h = [o[j] * math.tanh(c[j]) for j in range(H)]
            out[n, t] = h
        c_last[n] = c
    return out, c_last


def loop_gru(x, h0, w, b):
    B, T, F = x.shape
    H = h0.shape[1]
    wx, wh = w[:F].astype(np.float64), w[F:].astype(np.float64)
    out = np.zeros((B, T, H))

    def proj(vec, mat, col):  # vec @ mat[:, col]
        return sum(float(vec[k]) * mat[k, col] for k in range(len(vec)))

    for n in range(B):
        h = [float(v) for v in h0[n]]
        for t in range(T):
            xt = x[n, t]
            r = [sig(proj(xt, wx, j) + proj(h, wh, j) + float(b[j])) for j in range(H)]
            u = [sig(proj(xt, wx, H + j) + proj(h, wh, H + j) + float(b[H + j])) for j in range(H)]
            rh = [r[j] * h[j] for j in range(H)]
            nn = [math.tanh(proj(xt, wx, 2 * H + j) + proj(rh, wh, 2 * H + j) + float(b[2 * H + j]))
                  for j in range(H)]
            h = [u[j] * h[j] + (1 - u[j]) * nn[j] for j in range(H)]
            out[n, t] = h
    return out


def make(case, gates, dtype, seed=0, with_c=False):
    B, T, F, H = case
    rng = np.random.default_rng(seed)
    arrays = {"x": rng.standard_normal((B, T, F)), "h0": rng.standard_normal((B, H)) * 0.5}
    if with_c:
        arrays["c0"] = rng.standard_normal((B, H)) * 0.5
    arrays["w"] = rng.standard_normal((F + H, gates * H)) * 0.6
    arrays["b"] = rng.standard_normal(gates * H) * 0.3
    return {k: v.astype(dtype) for k, v in arrays.items()}


def check_cache(cache):
    assert type(cache) is dict
    assert all(isinstance(v, np.ndarray) for v in cache.values())
    return copy.deepcopy(cache)


def check_unchanged(arrays, before):
    for k in before:
        np.testing.assert_array_equal(arrays[k], before[k])


# --- forward against the loops ---------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_rnn_forward_matches_loop(case, dtype):
    a = make(case, 1, dtype)
    before = copy.deepcopy(a)
    h_seq, cache = rnn_forward(a["x"], a["h0"], a["w"], a["b"])
    check_cache(cache)
    check_unchanged(a, before)
    assert h_seq.dtype == dtype and h_seq.shape == (case[0], case[1], case[3])
    np.testing.assert_allclose(h_seq, loop_rnn(a["x"], a["h0"], a["w"], a["b"]), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_lstm_forward_matches_loop(case, dtype):
    a = make(case, 4, dtype, with_c=True)
    before = copy.deepcopy(a)
    h_seq, c_last, cache = lstm_forward(a["x"], a["h0"], a["c0"], a["w"], a["b"])
    check_cache(cache)
    check_unchanged(a, before)
    assert h_seq.dtype == dtype and c_last.dtype == dtype
    exp_h, exp_c = loop_lstm(a["x"], a["h0"], a["c0"], a["w"], a["b"])
    np.testing.assert_allclose(h_seq, exp_h, **TOL[dtype])
    np.testing.assert_allclose(c_last, exp_c, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_gru_forward_matches_loop(case, dtype):
    a = make(case, 3, dtype)
    before = copy.deepcopy(a)
    h_seq, cache = gru_forward(a["x"], a["h0"], a["w"], a["b"])
    check_cache(cache)
    check_unchanged(a, before)
    assert h_seq.dtype == dtype
    np.testing.assert_allclose(h_seq, loop_gru(a["x"], a["h0"], a["w"], a["b"]), **TOL[dtype])


def test_gru_update_gate_uses_its_own_weights():
    # the book's bug computed u from the reset projections; here the u block must matter on its own
    a = make((2, 3, 2, 3), 3, np.float64)
    H = 3
    h1, _ = gru_forward(a["x"], a["h0"], a["w"], a["b"])
    w2 = a["w"].copy()
    w2[:, H:2 * H] += 0.5
    h2, _ = gru_forward(a["x"], a["h0"], w2, a["b"])
    assert not np.allclose(h1, h2)


# --- gradients against finite differences (float64) --------------------------------------------

def fd_check(loss, analytic, arrays):
    for name, grad in analytic.items():
        assert grad.shape == arrays[name].shape, name
        np.testing.assert_allclose(grad, numerical_grad(loss, arrays[name]), rtol=1e-6, atol=1e-8,
                                   err_msg=name)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_rnn_backward_finite_differences(case):
    a = make(case, 1, np.float64, seed=1)
    h_seq, cache = rnn_forward(a["x"], a["h0"], a["w"], a["b"])
    r = np.random.default_rng(9).standard_normal(h_seq.shape)
    cache_copy = check_cache(cache)
    r0 = r.copy()
    grads = rnn_backward(r, cache)
    np.testing.assert_array_equal(r, r0)
    for k in cache:
        np.testing.assert_array_equal(cache[k], cache_copy[k])
    for g2, g in zip(rnn_backward(r, cache_copy), grads):  # a deep-copied cache works the same
        np.testing.assert_array_equal(g2, g)

    def loss():
        return float((rnn_forward(a["x"], a["h0"], a["w"], a["b"])[0] * r).sum())

    fd_check(loss, dict(zip(["x", "h0", "w", "b"], grads)), a)


@pytest.mark.parametrize("with_grad_c", [False, True])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_lstm_backward_finite_differences(case, with_grad_c):
    a = make(case, 4, np.float64, seed=2, with_c=True)
    h_seq, c_last, cache = lstm_forward(a["x"], a["h0"], a["c0"], a["w"], a["b"])
    rng = np.random.default_rng(10)
    r = rng.standard_normal(h_seq.shape)
    rc = rng.standard_normal(c_last.shape) if with_grad_c else None
    cache_copy = check_cache(cache)
    grads = lstm_backward(r, cache, rc)
    for k in cache:
        np.testing.assert_array_equal(cache[k], cache_copy[k])
    assert all(g.dtype == np.float64 for g in grads)

    def loss():
        h, c, _ = lstm_forward(a["x"], a["h0"], a["c0"], a["w"], a["b"])
        total = float((h * r).sum())
        return total + (float((c * rc).sum()) if with_grad_c else 0.0)

    fd_check(loss, dict(zip(["x", "h0", "c0", "w", "b"], grads)), a)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_gru_backward_finite_differences(case):
    a = make(case, 3, np.float64, seed=3)
    h_seq, cache = gru_forward(a["x"], a["h0"], a["w"], a["b"])
    r = np.random.default_rng(11).standard_normal(h_seq.shape)
    cache_copy = check_cache(cache)
    grads = gru_backward(r, cache)
    for k in cache:
        np.testing.assert_array_equal(cache[k], cache_copy[k])

    def loss():
        return float((gru_forward(a["x"], a["h0"], a["w"], a["b"])[0] * r).sum())

    fd_check(loss, dict(zip(["x", "h0", "w", "b"], grads)), a)


@pytest.mark.parametrize("dtype", DTYPES)
def test_backward_dtypes(dtype):
    case = (2, 3, 2, 3)
    a = make(case, 1, dtype)
    h, cache = rnn_forward(a["x"], a["h0"], a["w"], a["b"])
    assert all(g.dtype == dtype for g in rnn_backward(np.ones_like(h), cache))
    a = make(case, 4, dtype, with_c=True)
    h, c, cache = lstm_forward(a["x"], a["h0"], a["c0"], a["w"], a["b"])
    assert all(g.dtype == dtype for g in lstm_backward(np.ones_like(h), cache, np.ones_like(c)))
    a = make(case, 3, dtype)
    h, cache = gru_forward(a["x"], a["h0"], a["w"], a["b"])
    assert all(g.dtype == dtype for g in gru_backward(np.ones_like(h), cache))
