"""``Conv2D_Op`` (lincoln ``conv.py``): 2-D cross-correlation on ``fastdl.kernels.conv2d``.

Layouts as in the book: input and output NCHW ``(batch, channels, H, W)``, parameter
``W (in_channels, out_channels, K, K)``, no kernel flip, no bias. Generalised with
``stride`` and ``padding`` ("same" by default as in the book, "valid", or an int), non-square images
and even K. The gradients come from ``kernels.conv2d_backward``, which fixes the book's missing kernel
flip (input gradient) and batch mis-ordering (weight gradient). Inside a layer on the cuda backend the
input and gradients are device arrays and the kernels get the layer's device copy of ``W``.
"""

import numpy as np

from fastdl import kernels
from fastdl.base import ParamOperation, as_float


class Conv2D_Op(ParamOperation):
    """Convolution with parameter ``W`` of shape (in_channels, out_channels, K, K)."""

    def __init__(self, W: np.ndarray, stride: int = 1, padding="same"):
        super().__init__(W)
        self.param_size = W.shape[2]
        self.param_pad = self.param_size // 2
        self.stride = stride
        self.padding = padding
        self._grads = None  # (output_grad, grad_x, grad_w) of the last backward: one kernel call for both

    def _x(self) -> np.ndarray:
        return as_float(self.input_, self.param.dtype)

    def _output(self, inference: bool = False) -> np.ndarray:
        # input_ is (B, C_in, H, W) -> (B, C_out, H_out, W_out)
        return kernels.conv2d(self._x(), self._kernel_param(), stride=self.stride, padding=self.padding)

    def _kernel_grads(self, output_grad: np.ndarray, need_grad_x: bool):
        """``(grad_x or None, grad_w)`` from one ``conv2d_backward`` call."""
        grad_y = as_float(output_grad, self.param.dtype)
        return kernels.conv2d_backward(self._x(), self._kernel_param(), grad_y, stride=self.stride,
                                       padding=self.padding, need_grad_x=need_grad_x)

    def _both_grads(self, output_grad: np.ndarray):
        cached = self._grads
        if cached is not None and cached[0] is output_grad:
            return cached[1], cached[2]
        grad_x, grad_w = self._kernel_grads(output_grad, need_grad_x=True)
        self._grads = (output_grad, grad_x, grad_w)
        return grad_x, grad_w

    def backward(self, output_grad: np.ndarray, need_input_grad: bool = True):
        """Both gradients from one ``conv2d_backward`` call; stores ``input_grad`` and ``param_grad``."""
        try:
            return super().backward(output_grad, need_input_grad)
        finally:
            self._grads = None  # do not keep the gradients alive (or in deep copies) longer than needed

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        return self._both_grads(output_grad)[0]

    def _param_grad(self, output_grad: np.ndarray) -> np.ndarray:
        return self._both_grads(output_grad)[1]

    def _param_grad_alone(self, output_grad: np.ndarray) -> np.ndarray:
        return self._kernel_grads(output_grad, need_grad_x=False)[1]
