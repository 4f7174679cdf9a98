"""NumPy reference: RNN, LSTM and GRU sequences, forward and backward through time.

Weights stack the input rows first, then the hidden rows: w is (F + H, G*H) acting on [x_t, h].
The input projection of all T steps is one GEMM; the recurrence loops over t.  In backward, the
gradients of the input rows (and of x) are one GEMM over all T.  cache is a plain dict of arrays.
"""

import numpy as np

from .activations import _sigmoid


def _input_projection(x, w, b):
    # x is (B, T, F), w is (F + H, G*H), b is (G*H,) -> (B, T, G*H) = x @ w[:F] + b
    B, T, F = x.shape
    return (x.reshape(B * T, F) @ w[:F]).reshape(B, T, w.shape[1]) + b


def _previous_states(h0, h_seq):
    # h0 is (B, H), h_seq is (B, T, H) -> states entering each step, (B, T, H)
    return np.concatenate([h0[:, None, :], h_seq[:, :-1, :]], axis=1)


def _input_grads(x, w, dz):
    # x is (B, T, F), w is (F + H, G*H), dz is (B, T, G*H) pre-activation grads
    # -> grad_x (B, T, F), grad_w_input_rows (F, G*H), grad_b (G*H,)
    B, T, F = x.shape
    dz2 = dz.reshape(B * T, dz.shape[2])
    grad_x = (dz2 @ w[:F].T).reshape(B, T, F)
    return grad_x, x.reshape(B * T, F).T @ dz2, dz2.sum(axis=0)


def _flat(a):
    # a is (B, T, N) -> (B*T, N)
    return a.reshape(a.shape[0] * a.shape[1], a.shape[2])


# ----------------------------------------------------------------------------------------------
# vanilla RNN: h_t = tanh([x_t, h_{t-1}] @ w + b)

def rnn_forward(x, h0, w, b):
    """Returns (h_seq, cache)."""
    # x is (B, T, F), h0 is (B, H), w is (F + H, H), b is (H,) -> h_seq (B, T, H)
    B, T, F = x.shape
    wh = w[F:]
    zx = _input_projection(x, w, b)
    h_seq = np.empty((B, T, h0.shape[1]), dtype=x.dtype)
    h = h0
    for t in range(T):
        h = np.tanh(zx[:, t] + h @ wh)
        h_seq[:, t] = h
    cache = {"x": x.copy(), "h0": h0.copy(), "w": w.copy(), "h_seq": h_seq.copy()}
    return h_seq, cache


def rnn_backward(grad_h_seq, cache):
    """Returns (grad_x, grad_h0, grad_w, grad_b)."""
    # grad_h_seq is (B, T, H) -> grad_x (B, T, F), grad_h0 (B, H), grad_w (F + H, H), grad_b (H,)
    x, h0, w, h_seq = cache["x"], cache["h0"], cache["w"], cache["h_seq"]
    B, T, F = x.shape
    wh = w[F:]
    dz = np.empty_like(h_seq)
    dh_next = np.zeros_like(h0)
    for t in reversed(range(T)):
        h = h_seq[:, t]
        dz_t = (grad_h_seq[:, t] + dh_next) * (1 - h * h)
        dz[:, t] = dz_t
        dh_next = dz_t @ wh.T
    grad_x, gw_x, grad_b = _input_grads(x, w, dz)
    gw_h = _flat(_previous_states(h0, h_seq)).T @ _flat(dz)
    return grad_x, dh_next, np.concatenate([gw_x, gw_h], axis=0), grad_b


# ----------------------------------------------------------------------------------------------
# LSTM, gate blocks f, i, g, o: c_t = f*c + i*g, h_t = o*tanh(c_t)

def lstm_forward(x, h0, c0, w, b):
    """Returns (h_seq, c_last, cache)."""
    # x is (B, T, F), h0 and c0 are (B, H), w is (F + H, 4H), b is (4H,)
    # -> h_seq (B, T, H), c_last (B, H)
    B, T, F = x.shape
    H = h0.shape[1]
    wh = w[F:]
    zx = _input_projection(x, w, b)
    gates = np.empty((B, T, 4 * H), dtype=x.dtype)  # activated f, i, g, o
    c_seq = np.empty((B, T, H), dtype=x.dtype)
    h_seq = np.empty((B, T, H), dtype=x.dtype)
    h, c = h0, c0
    for t in range(T):
        z = zx[:, t] + h @ wh
        sig = _sigmoid(z)
        f, i, o = sig[:, :H], sig[:, H : 2 * H], sig[:, 3 * H :]
        g = np.tanh(z[:, 2 * H : 3 * H])
        c = f * c + i * g
        h = o * np.tanh(c)
        gates[:, t, : 2 * H] = sig[:, : 2 * H]
        gates[:, t, 2 * H : 3 * H] = g
        gates[:, t, 3 * H :] = o
        c_seq[:, t] = c
        h_seq[:, t] = h
    cache = {"x": x.copy(), "h0": h0.copy(), "c0": c0.copy(), "w": w.copy(), "gates": gates,
             "c_seq": c_seq, "h_seq": h_seq.copy()}
    return h_seq, c.copy(), cache


def lstm_backward(grad_h_seq, cache, grad_c_last=None):
    """Returns (grad_x, grad_h0, grad_c0, grad_w, grad_b)."""
    # grad_h_seq is (B, T, H), grad_c_last is (B, H) or None
    # -> grad_x (B, T, F), grad_h0 (B, H), grad_c0 (B, H), grad_w (F + H, 4H), grad_b (4H,)
    x, h0, c0, w = cache["x"], cache["h0"], cache["c0"], cache["w"]
    gates, c_seq, h_seq = cache["gates"], cache["c_seq"], cache["h_seq"]
    B, T, F = x.shape
    H = h0.shape[1]
    wh = w[F:]
    dz = np.empty_like(gates)
    dh_next = np.zeros_like(h0)
    dc_next = np.zeros_like(c0) if grad_c_last is None else grad_c_last.copy()
    for t in reversed(range(T)):
        f, i = gates[:, t, :H], gates[:, t, H : 2 * H]
        g, o = gates[:, t, 2 * H : 3 * H], gates[:, t, 3 * H :]
        c_prev = c_seq[:, t - 1] if t > 0 else c0
        tc = np.tanh(c_seq[:, t])
        dh = grad_h_seq[:, t] + dh_next
        dc = dc_next + dh * o * (1 - tc * tc)
        dz[:, t, :H] = dc * c_prev * f * (1 - f)
        dz[:, t, H : 2 * H] = dc * g * i * (1 - i)
        dz[:, t, 2 * H : 3 * H] = dc * i * (1 - g * g)
        dz[:, t, 3 * H :] = dh * tc * o * (1 - o)
        dc_next = dc * f
        dh_next = dz[:, t] @ wh.T
    grad_x, gw_x, grad_b = _input_grads(x, w, dz)
    gw_h = _flat(_previous_states(h0, h_seq)).T @ _flat(dz)
    return grad_x, dh_next, dc_next, np.concatenate([gw_x, gw_h], axis=0), grad_b


# ----------------------------------------------------------------------------------------------
# GRU, blocks r, u, n: n = tanh(x Wx_n + (r*h) Wh_n + b_n), h_t = u*h + (1-u)*n

def gru_forward(x, h0, w, b):
    """Returns (h_seq, cache)."""
    # x is (B, T, F), h0 is (B, H), w is (F + H, 3H), b is (3H,) -> h_seq (B, T, H)
    B, T, F = x.shape
    H = h0.shape[1]
    wh_ru, wh_n = w[F:, : 2 * H], w[F:, 2 * H :]
    zx = _input_projection(x, w, b)
    gates = np.empty((B, T, 3 * H), dtype=x.dtype)  # activated r, u, n
    rh_seq = np.empty((B, T, H), dtype=x.dtype)  # r * h_{t-1}
    h_seq = np.empty((B, T, H), dtype=x.dtype)
    h = h0
    for t in range(T):
        ru = _sigmoid(zx[:, t, : 2 * H] + h @ wh_ru)
        r, u = ru[:, :H], ru[:, H:]
        rh = r * h
        n = np.tanh(zx[:, t, 2 * H :] + rh @ wh_n)
        h = u * h + (1 - u) * n
        gates[:, t, : 2 * H] = ru
        gates[:, t, 2 * H :] = n
        rh_seq[:, t] = rh
        h_seq[:, t] = h
    cache = {"x": x.copy(), "h0": h0.copy(), "w": w.copy(), "gates": gates, "rh_seq": rh_seq,
             "h_seq": h_seq.copy()}
    return h_seq, cache


def gru_backward(grad_h_seq, cache):
    """Returns (grad_x, grad_h0, grad_w, grad_b)."""
    # grad_h_seq is (B, T, H) -> grad_x (B, T, F), grad_h0 (B, H), grad_w (F + H, 3H), grad_b (3H,)
    x, h0, w = cache["x"], cache["h0"], cache["w"]
    gates, rh_seq, h_seq = cache["gates"], cache["rh_seq"], cache["h_seq"]
    B, T, F = x.shape
    H = h0.shape[1]
    wh_ru, wh_n = w[F:, : 2 * H], w[F:, 2 * H :]
    dz = np.empty_like(gates)
    dh_next = np.zeros_like(h0)
    for t in reversed(range(T)):
        r, u, n = gates[:, t, :H], gates[:, t, H : 2 * H], gates[:, t, 2 * H :]
        h_prev = h_seq[:, t - 1] if t > 0 else h0
        dh = grad_h_seq[:, t] + dh_next
        dzn = dh * (1 - u) * (1 - n * n)
        drh = dzn @ wh_n.T
        dz[:, t, :H] = drh * h_prev * r * (1 - r)
        dz[:, t, H : 2 * H] = dh * (h_prev - n) * u * (1 - u)
        dz[:, t, 2 * H :] = dzn
        dh_next = dh * u + drh * r + dz[:, t, : 2 * H] @ wh_ru.T
    grad_x, gw_x, grad_b = _input_grads(x, w, dz)
    h_prev_all = _flat(_previous_states(h0, h_seq))
    gw_h = np.concatenate([h_prev_all.T @ _flat(dz[:, :, : 2 * H]),
                           _flat(rh_seq).T @ _flat(dz[:, :, 2 * H :])], axis=1)
    return grad_x, dh_next, np.concatenate([gw_x, gw_h], axis=0), grad_b
