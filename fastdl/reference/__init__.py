"""The NumPy reference backend: the oracle every other backend is tested against, and the baseline.

Every function takes clean, valid, C-contiguous float32/float64 arrays (the kernel layer validates),
computes in the input dtype and returns new arrays; inputs are never modified.
"""

from .activations import activation, activation_backward
from .conv import conv2d, conv2d_backward
from .matmul import linear, linear_backward, matmul
from .rnn import (gru_backward, gru_forward, lstm_backward, lstm_forward, rnn_backward,
                  rnn_forward)
from .softmax_xent import cross_entropy, softmax_cross_entropy

KERNELS = {
    "activation": activation,
    "activation_backward": activation_backward,
    "matmul": matmul,
    "linear": linear,
    "linear_backward": linear_backward,
    "conv2d": conv2d,
    "conv2d_backward": conv2d_backward,
    "softmax_cross_entropy": softmax_cross_entropy,
    "cross_entropy": cross_entropy,
    "rnn_forward": rnn_forward,
    "rnn_backward": rnn_backward,
    "lstm_forward": lstm_forward,
    "lstm_backward": lstm_backward,
    "gru_forward": gru_forward,
    "gru_backward": gru_backward,
}

__all__ = sorted(KERNELS) + ["KERNELS"]
