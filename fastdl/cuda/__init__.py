"""fastdl's Numba CUDA backend: every kernel of the contract, on a GPU or the CUDA simulator.

Inputs may be NumPy arrays (copied to the device; results come back as NumPy arrays, losses as
Python floats) or device arrays exposing ``__cuda_array_interface__`` (Numba, CuPy, PyTorch), in
which case results are Numba device arrays and stay on the GPU. Importing this package works
without numba or a GPU; calling a kernel then raises RuntimeError('fastdl cuda backend: ...').

Kernels launch on the default stream. Compiled kernels are cached per dtype and configuration,
so only the first call of each variant pays the (about a second) compile. The kernels share device
scratch buffers and launch-parameter buffers, so calls from several Python threads are serialised by
one lock (``_serialised``).
"""

import functools
import threading

from fastdl.contract import kernel_table
from fastdl.cuda._compat import available, real_gpu, require, simulator
from fastdl.cuda._device import to_host_array
from fastdl.cuda.activations import activation, activation_backward
from fastdl.cuda.conv import conv2d, conv2d_backward
from fastdl.cuda.dropout import dropout, dropout_backward
from fastdl.cuda.matmul import linear, linear_backward, matmul
from fastdl.cuda.rnn import (gru_backward, gru_forward, lstm_backward, lstm_forward, rnn_backward,
                             rnn_forward)
from fastdl.cuda.softmax_cross_entropy import cross_entropy, softmax_cross_entropy
from fastdl.reference.parameter_update import parameter_update  # noqa: F401  (host arrays: updated on the host)
from fastdl.reference.take_rows import take_rows  # noqa: F401  (host arrays: the training data lives on the host)

_LOCK = threading.RLock()


def _serialised(fn):
    """``fn`` holding the backend's lock: the shared workspaces are not safe for concurrent calls."""
    @functools.wraps(fn)
    def call(*args, **kwargs):
        with _LOCK:
            return fn(*args, **kwargs)
    return call


activation, activation_backward = _serialised(activation), _serialised(activation_backward)
matmul, linear, linear_backward = _serialised(matmul), _serialised(linear), _serialised(linear_backward)
conv2d, conv2d_backward = _serialised(conv2d), _serialised(conv2d_backward)
dropout, dropout_backward = _serialised(dropout), _serialised(dropout_backward)
softmax_cross_entropy, cross_entropy = _serialised(softmax_cross_entropy), _serialised(cross_entropy)
rnn_forward, rnn_backward = _serialised(rnn_forward), _serialised(rnn_backward)
lstm_forward, lstm_backward = _serialised(lstm_forward), _serialised(lstm_backward)
gru_forward, gru_backward = _serialised(gru_forward), _serialised(gru_backward)


@_serialised
def conv2d_dropout(x, w, stride, padding, activation, key, threshold, first=0):
    """conv2d, then dropout of its output: two kernels on the GPU, the mask drawn as on every backend."""
    return dropout(conv2d(x, w, stride, padding, activation), key, threshold, first)


KERNELS = kernel_table(globals())


def labels_on_host(labels):
    """A NumPy copy of device labels ``(B,)``: ``fastdl.kernels`` checks their range on it before a launch."""
    return to_host_array(labels)


__all__ = list(KERNELS) + ["KERNELS", "labels_on_host", "available", "real_gpu", "require", "simulator"]
