"""Dense operations (lincoln ``dense.py``): ``WeightMultiply`` and ``BiasAdd``.

``WeightMultiply`` runs on ``fastdl.kernels.matmul``. The input is cast to the parameter's dtype.
(A ``Dense`` layer with a built-in activation does not call these one by one: it runs all three
operations as one fused ``kernels.linear`` call; see ``fastdl.layers.Dense``.) ``WeightMultiply`` also
runs on device arrays (the kernels take them, and ``device_param``); ``BiasAdd`` is host NumPy only.
"""

import numpy as np

from fastdl import kernels
from fastdl.base import ParamOperation, as_float


class WeightMultiply(ParamOperation):
    """``input_ @ W``. input_ is (batch, n_in), W is (n_in, n_out)."""

    def __init__(self, W: np.ndarray):
        super().__init__(W)

    def _x(self) -> np.ndarray:
        return as_float(self.input_, self.param.dtype)

    def _output(self, inference: bool = False) -> np.ndarray:
        return kernels.matmul(self._x(), self._kernel_param())

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        # (batch, n_out) @ W.T -> (batch, n_in)
        return kernels.matmul(as_float(output_grad, self.param.dtype), self._kernel_param(), trans_b=True)

    def _param_grad(self, output_grad: np.ndarray) -> np.ndarray:
        # input_.T @ (batch, n_out) -> (n_in, n_out); a sum over the batch (the loss divides by N)
        return kernels.matmul(self._x(), as_float(output_grad, self.param.dtype), trans_a=True)


class BiasAdd(ParamOperation):
    """``input_ + B``, B is (1, n_out) and broadcasts over the rows."""

    def __init__(self, B: np.ndarray):
        super().__init__(B)

    def _output(self, inference: bool = False) -> np.ndarray:
        return as_float(self.input_, self.param.dtype) + self.param

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        return np.array(output_grad, dtype=self.param.dtype)  # a new array, like the book's ones_like * g

    def _param_grad(self, output_grad: np.ndarray) -> np.ndarray:
        g = as_float(output_grad, self.param.dtype)
        return g.sum(axis=0).reshape(self.param.shape)
