"""Activation operations (lincoln ``activations.py``): ``Linear``, ``Sigmoid``, ``Tanh``, ``ReLU``.

Each one calls ``fastdl.kernels.activation`` / ``activation_backward`` with its ``kernel_name``. The
backward pass uses the stored output; ReLU's gradient is masked by ``output > 0`` (equivalently
``input > 0``), which fixes the book's always-true ``output >= 0`` mask. Inside a layer on the cuda
backend they run on device arrays (the kernels take them and return device arrays).
"""

import numpy as np

from fastdl import kernels
from fastdl.base import Operation, as_float


class _Activation(Operation):
    """An elementwise activation served by the kernel named ``kernel_name``."""

    kernel_name = "linear"

    def __init__(self) -> None:
        super().__init__()

    def _output(self, inference: bool = False) -> np.ndarray:
        return kernels.activation(as_float(self.input_), self.kernel_name)

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        y = self.output
        return kernels.activation_backward(y, as_float(output_grad, y.dtype), self.kernel_name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Linear(_Activation):
    """Identity activation; the gradient passes through."""

    kernel_name = "linear"


class Sigmoid(_Activation):
    """``1 / (1 + exp(-x))``; gradient ``output * (1 - output) * output_grad``."""

    kernel_name = "sigmoid"


class Tanh(_Activation):
    """Hyperbolic tangent; gradient ``output_grad * (1 - output**2)``."""

    kernel_name = "tanh"


class ReLU(_Activation):
    """Rectified linear unit ``max(x, 0)``; gradient ``output_grad * (input > 0)`` (the book's bug fixed)."""

    kernel_name = "relu"


#: activation class -> kernel name, for layers that fuse their activation into one kernel call.
FUSABLE = {Linear: "linear", Sigmoid: "sigmoid", Tanh: "tanh", ReLU: "relu"}
