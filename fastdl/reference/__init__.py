"""The NumPy reference backend: the oracle every other backend is tested against, and the baseline.

Every function takes clean, valid, C-contiguous float32/float64 arrays (the kernel layer validates),
computes in the input dtype and returns new arrays; inputs are never modified. The two exceptions are
``parameter_update`` and ``take_rows`` (outside the kernel table): the optimizer step, which updates its
arguments in place, and the batch row gather, which writes into the caller's buffer.
"""

from .activations import activation, activation_backward
from .conv import conv2d, conv2d_backward, conv2d_dropout
from .dropout import dropout, dropout_backward
from .matmul import linear, linear_backward, matmul
from .parameter_update import parameter_update
from .rnn import (gru_backward, gru_forward, lstm_backward, lstm_forward, rnn_backward,
                  rnn_forward)
from .softmax_cross_entropy import cross_entropy, softmax_cross_entropy
from .take_rows import take_rows
from fastdl.contract import kernel_table

KERNELS = kernel_table(globals())

__all__ = sorted(KERNELS) + ["KERNELS", "parameter_update", "take_rows"]
