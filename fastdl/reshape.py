"""``Flatten`` (lincoln ``reshape.py``): (batch, ...) -> (batch, prod(...)), C order.

Only ``reshape`` is used, so it runs unchanged on device arrays (a layer on the cuda backend).
"""

import numpy as np

from fastdl.base import Operation


class Flatten(Operation):
    """Reshape NCHW activations to ``(batch, C*H*W)`` for a following ``Dense`` layer."""

    def __init__(self):
        super().__init__()

    def _output(self, inference: bool = False) -> np.ndarray:
        return self.input_.reshape(self.input_.shape[0], -1)

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        return output_grad.reshape(self.input_.shape)
