"""conv2d / conv2d_backward of the ``cpu`` backend, over the C++ kernels of ``src/cpp/ops/conv.cpp`` (im2col + GEMM)
and ``src/cpp/ops/winograd.cpp`` (3x3 stride-1 convolutions whose channel counts fill a vector).

Inputs arrive validated and C-contiguous (``fastdl.kernels`` sees to it). Padding is turned into
(before, after) ints with the shared ``fastdl.contract.conv_geometry``.
"""

import fastdl._core as _core
from fastdl.contract.conv_geometry import conv_padding


def conv2d(x, w, stride=1, padding="same", activation="linear"):
    # x is (B, C_in, H, W), w is (C_in, C_out, K, K) -> y (B, C_out, H_out, W_out) = act(conv(x, w))
    before, after = conv_padding(w.shape[2], padding)
    return _core.conv2d(x, w, int(stride), before, after, activation)


def conv2d_dropout(x, w, stride, padding, activation, key, threshold, first=0):
    # x is (B, C_in, H, W), w is (C_in, C_out, K, K) -> (y, mask), y = act(conv(x, w)) * mask, both
    # (B, C_out, H_out, W_out); the mask applied to each band of output rows while it is in cache
    before, after = conv_padding(w.shape[2], padding)
    return _core.conv2d_dropout(x, w, int(stride), before, after, activation, key, threshold, first)


def conv2d_backward(x, w, grad_y, stride=1, padding="same", need_grad_x=True, activation="linear", y=None,
                    mask=None):
    # x is (B, C_in, H, W), w is (C_in, C_out, K, K), grad_y (and y, mask) are (B, C_out, H_out, W_out)
    # -> (grad_x (B, C_in, H, W) or None, grad_w (C_in, C_out, K, K)); grad_y first through act'(y) and the mask
    before, after = conv_padding(w.shape[2], padding)
    return _core.conv2d_backward(x, w, grad_y, int(stride), before, after, bool(need_grad_x), activation, y, mask)
