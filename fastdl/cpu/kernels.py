"""The ``cpu`` backend's kernels: a thin adapter from ``fastdl.kernels`` to the C++ extension ``fastdl._core``.

Inputs arrive validated and C-contiguous (``fastdl.kernels`` sees to it). Every kernel runs in C++, and so
do ``parameter_update``, the fused optimizer step, and ``take_rows``, the batch row gather (outside the kernel
table: they write into their arguments);
``SERVED_BY`` is what ``fastdl.show_config()`` prints for each.
"""

import numpy as np

import fastdl._core as _core
from fastdl.contract import kernel_table
from fastdl.cpu.conv import conv2d, conv2d_backward, conv2d_dropout  # noqa: F401  (C++ im2col + packed GEMM)
from fastdl.cpu.rnn import (gru_backward, gru_forward, lstm_backward, lstm_forward,  # noqa: F401
                             rnn_backward, rnn_forward)


def matmul(a, b, trans_a, trans_b):
    # a is (M, K) or (K, M); b is (K, N) or (N, K) -> (M, N)
    return _core.matmul(a, b, trans_a, trans_b)


def linear(x, w, b, activation):
    # x is (N, in), w is (in, out), b is (out,) or None -> (N, out)
    return _core.linear(x, w, b, activation)


def linear_backward(x, w, y, grad_y, activation, need_grad_x=True):
    # -> grad_x (N, in) or None, grad_w (in, out), grad_b (out,)
    return _core.linear_backward(x, w, y, grad_y, activation, bool(need_grad_x))


def activation(x, name):
    # x is any shape -> name(x), same shape
    return _core.activation_forward(x, name)


def activation_backward(y, grad_y, name, mask=None):
    # y, grad_y (and the bool mask) are any shape (alike) -> grad_x from the activation's output y, 0 where masked
    return _core.activation_backward(y, grad_y, name, mask)


def dropout(x, key, threshold, first=0):
    # x is any shape -> (y like x, mask bool like x); x's element i draws the mask's element first + i
    return _core.dropout_forward(x, key, threshold, first)


def dropout_backward(grad_y, mask):
    # grad_y is any shape, mask bool of that shape -> grad_x like grad_y
    return _core.dropout_backward(grad_y, mask)


def _scale(logits, reduction):
    # loss and gradient factor: 1/B for "mean", 1 for "sum"
    return 1.0 / max(logits.shape[0], 1) if reduction == "mean" else 1.0


def softmax_cross_entropy(logits, target, eps, reduction):
    # logits is (B, C); target is (B, C) one-hot or (B,) int64 -> (loss, grad (B, C))
    scale = _scale(logits, reduction)
    return _core.softmax_cross_entropy(logits, target, eps, True, scale, scale)


def cross_entropy(logits, target, reduction):
    # logits is (B, C); target is (B, C) one-hot or (B,) int64 -> (loss, grad (B, C))
    scale = _scale(logits, reduction)
    return _core.softmax_cross_entropy(logits, target, 1e-9, False, scale, scale)


#: parameter_update refuses (ValueError) every layout, shape and overlap it cannot take before it writes anything
STEP_CHECKS_ITS_ARRAYS = True

_UPDATE_BY_DTYPE = {np.dtype(np.float32): _core.parameter_update_float32,
                    np.dtype(np.float64): _core.parameter_update_float64}


def parameter_update(rule, params, grads, states, lr, hyper, clip):
    # params[i], grads[i], states[i] are arrays of one shape, updated in place; one C++ call per dtype
    dtypes = {p.dtype for p in params}
    if len(dtypes) == 1:  # the common case: one call with the lists as they are
        _UPDATE_BY_DTYPE[dtypes.pop()](rule, params, grads, states, float(lr), float(hyper), float(clip))
        return
    for dtype, update in ((np.float32, _core.parameter_update_float32), (np.float64, _core.parameter_update_float64)):
        picked = [i for i, p in enumerate(params) if p.dtype == dtype]
        if picked:
            update(rule, [params[i] for i in picked], [grads[i] for i in picked],
                   [states[i] for i in picked] if states else [], float(lr), float(hyper), float(clip))


def take_rows(x, rows, out):
    # x is (N, ...), rows is (n,) int64 in [0, N), out is (n,) + x.shape[1:] -> out[i] = x[rows[i]]
    return _core.take_rows(x, rows, out)


KERNELS = kernel_table(globals())
SERVED_BY = {name: "cpu (C++ _core)" for name in KERNELS}
