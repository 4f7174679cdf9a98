"""NumPy reference: 2-D cross-correlation (no kernel flip) and its exact gradients.

im2col is a strided view (sliding_window_view) contracted with the weights by tensordot;
col2im scatter-adds over the K*K kernel offsets.  Geometry comes from fastdl.contract.conv_geometry.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from fastdl.contract.conv_geometry import conv_output_size, conv_padding
from fastdl.reference.activations import activation, activation_backward
from fastdl.reference.dropout import dropout


def _geometry(x, w, stride, padding):
    # x is (B, C_in, H, W), w is (C_in, C_out, K, K)
    K = w.shape[2]
    before, after = conv_padding(K, padding)
    H_out = conv_output_size(x.shape[2], K, stride, before, after)
    W_out = conv_output_size(x.shape[3], K, stride, before, after)
    return K, before, after, H_out, W_out


def _patches(x, K, stride, before, after, H_out, W_out):
    """Strided im2col view of the zero-padded input."""
    # x is (B, C_in, H, W) -> view (B, C_in, H_out, W_out, K, K)
    xpad = np.pad(x, ((0, 0), (0, 0), (before, after), (before, after)))
    win = sliding_window_view(xpad, (K, K), axis=(2, 3))
    return win[:, :, : (H_out - 1) * stride + 1 : stride, : (W_out - 1) * stride + 1 : stride]


def conv2d(x, w, stride=1, padding="same", activation_name="linear"):
    """y[b,o,i,j] = act(sum_{c,p,q} w[c,o,p,q] * xpad[b, c, i*stride+p, j*stride+q])."""
    # x is (B, C_in, H, W), w is (C_in, C_out, K, K) -> y is (B, C_out, H_out, W_out)
    K, before, after, H_out, W_out = _geometry(x, w, stride, padding)
    cols = _patches(x, K, stride, before, after, H_out, W_out)
    y = np.tensordot(cols, w, axes=([1, 4, 5], [0, 2, 3]))  # (B, H_out, W_out, C_out)
    y = np.ascontiguousarray(y.transpose(0, 3, 1, 2))
    return y if activation_name == "linear" else activation(y, activation_name)


def conv2d_backward(x, w, grad_y, stride=1, padding="same", need_grad_x=True, activation_name="linear", y=None,
                    mask=None):
    """Exact gradients of conv2d: (grad_x, grad_w); grad_x is None when need_grad_x is false. With an activation
    (y its output) or a dropout mask, grad_y is first taken through them (activation_backward)."""
    # x is (B, C_in, H, W), w is (C_in, C_out, K, K), grad_y is (B, C_out, H_out, W_out)
    # -> grad_x (B, C_in, H, W), grad_w (C_in, C_out, K, K)
    if activation_name != "linear" or mask is not None:
        grad_y = activation_backward(grad_y if y is None else y, grad_y, activation_name, mask)
    B, C_in, H, W = x.shape
    K, before, after, H_out, W_out = _geometry(x, w, stride, padding)

    cols = _patches(x, K, stride, before, after, H_out, W_out)
    grad_w = np.tensordot(cols, grad_y, axes=([0, 2, 3], [0, 2, 3]))  # (C_in, K, K, C_out)
    grad_w = np.ascontiguousarray(grad_w.transpose(0, 3, 1, 2))
    if not need_grad_x:
        return None, grad_w

    # col2im: gradient of every patch element, then scatter-add each kernel offset (p, q)
    grad_cols = np.tensordot(grad_y, w, axes=([1], [1]))  # (B, H_out, W_out, C_in, K, K)
    grad_cols = grad_cols.transpose(0, 3, 1, 2, 4, 5)  # (B, C_in, H_out, W_out, K, K)
    grad_xpad = np.zeros((B, C_in, H + before + after, W + before + after), dtype=x.dtype)
    i_end = (H_out - 1) * stride + 1
    j_end = (W_out - 1) * stride + 1
    for p in range(K):
        for q in range(K):
            grad_xpad[:, :, p : p + i_end : stride, q : q + j_end : stride] += grad_cols[..., p, q]
    grad_x = np.ascontiguousarray(grad_xpad[:, :, before : before + H, before : before + W])
    return grad_x, grad_w


def conv2d_dropout(x, w, stride, padding, activation_name, key, threshold, first=0):
    """(y, mask) = dropout(conv2d(x, w, stride, padding, activation_name), key, threshold, first)."""
    # x is (B, C_in, H, W), w is (C_in, C_out, K, K) -> y, mask (B, C_out, H_out, W_out)
    return dropout(conv2d(x, w, stride, padding, activation_name), key, threshold, first)
