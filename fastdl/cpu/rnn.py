"""CPU backend (C++ ``fastdl._core``) of the recurrent kernels: RNN, LSTM and GRU forward/backward.

Same signatures as ``fastdl.reference``; the arrays arrive validated and C-contiguous (fastdl.kernels). The
cache is a plain dict of arrays: private copies of the inputs backward needs, plus what the C++ forward
saved (``h_prev``: the state entering each step, for the LSTM ``xh`` = [x_t, h_{t-1}] per step; the activated
gates; LSTM ``c_seq``, GRU ``rh_seq``, RNN ``h_seq``).
"""

import fastdl._core as _core


def _cache(saved, **inputs):
    """What forward saved plus private copies of the inputs backward needs (so that changing an input after
    forward cannot change the gradients)."""
    cache = {k: v.copy() for k, v in inputs.items()}
    cache.update(saved)
    return cache


def rnn_forward(x, h0, w, b):
    """Returns (h_seq, cache). x (B, T, F), h0 (B, H), w (F + H, H), b (H,) -> h_seq (B, T, H)."""
    h_seq, saved = _core.rnn_forward(x, h0, w, b)
    return h_seq, _cache(saved, x=x, h0=h0, w=w)


def rnn_backward(grad_h_seq, cache):
    """Returns (grad_x, grad_h0, grad_w, grad_b)."""
    saved = {k: cache[k] for k in ("h_prev", "h_seq")}
    return _core.rnn_backward(grad_h_seq, saved, cache["x"], cache["h0"], cache["w"])


def lstm_forward(x, h0, c0, w, b):
    """Returns (h_seq, c_last, cache). w (F + H, 4H), gate blocks f, i, g, o."""
    h_seq, c_last, saved = _core.lstm_forward(x, h0, c0, w, b)
    cache = _cache(saved, h0=h0, c0=c0, w=w)
    cache["x"] = x  # no copy: saved["xh"] already holds x's values, backward reads only x's shape
    return h_seq, c_last, cache


def lstm_backward(grad_h_seq, cache, grad_c_last=None):
    """Returns (grad_x, grad_h0, grad_c0, grad_w, grad_b)."""
    saved = {k: cache[k] for k in ("xh", "c_seq", "gates")}
    return _core.lstm_backward(grad_h_seq, grad_c_last, saved, cache["x"], cache["h0"], cache["c0"], cache["w"])


def gru_forward(x, h0, w, b):
    """Returns (h_seq, cache). w (F + H, 3H), blocks r, u, n."""
    h_seq, saved = _core.gru_forward(x, h0, w, b)
    return h_seq, _cache(saved, x=x, h0=h0, w=w)


def gru_backward(grad_h_seq, cache):
    """Returns (grad_x, grad_h0, grad_w, grad_b)."""
    saved = {k: cache[k] for k in ("h_prev", "rh_seq", "gates")}
    return _core.gru_backward(grad_h_seq, saved, cache["x"], cache["h0"], cache["w"])

