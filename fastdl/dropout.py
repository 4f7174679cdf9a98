"""``Dropout`` (lincoln ``dropout.py``, L2019): the book's convention, kept.

``keep_prob`` is the probability of KEEPING a unit. Training multiplies by a 0/1 mask (no
``1/keep_prob`` rescaling); inference multiplies by ``keep_prob`` instead. Training runs the
``kernels.dropout`` / ``dropout_backward`` kernels: each forward draws one 64-bit key from the
operation's own ``numpy.random.Generator`` (``seed``, never the global NumPy RNG) and the mask is a
counter hash of that key, so a seed gives the same masks on every backend. The layers seed the
generator from the layer's seed and ``Trainer.fit`` re-seeds it from fit's ``seed``. ``mask`` is a
bool array (a device array when the input is one: inside a layer on the cuda backend).

``first_row``: the input's first row in the whole batch the mask is drawn for (0: the input is the
whole batch). A data-parallel rank that holds rows ``r0:r1`` of a global batch sets it to ``r0`` and
draws exactly those rows of the mask one process would draw for the whole batch.
"""

import numpy as np

from fastdl import device as dev
from fastdl import kernels
from fastdl.contract.checks import require_probability
from fastdl.base import Operation, as_float


class Dropout(Operation):
    """Multiply by a Bernoulli(keep_prob) mask in training, by ``keep_prob`` in inference."""

    def __init__(self, keep_prob: float = 0.8, seed=None):
        super().__init__()
        require_probability("Dropout", "keep_prob", keep_prob)
        self.keep_prob = keep_prob
        self.first_row = 0
        self.reseed(seed)

    def reseed(self, seed=None) -> None:
        """Restart the mask generator from ``seed`` (None: fresh OS entropy)."""
        self.rng = np.random.default_rng(seed)

    def _output(self, inference: bool = False) -> np.ndarray:
        x = as_float(self.input_)
        if inference:
            if dev.is_device(x):
                return dev.ops.scale(x, self.keep_prob)
            return x * np.asarray(self.keep_prob, dtype=x.dtype)
        key = self._next_key()
        first = self.first_row * int(np.prod(np.shape(x)[1:], dtype=np.int64))
        y, self.mask = kernels.dropout(x, self.keep_prob, key, first)
        return y

    def _next_key(self) -> int:
        return int(self.rng.integers(0, 2**64, dtype=np.uint64))

    def skip_batch(self) -> None:
        """Advance the mask generator as one training forward does, without input (a data-parallel rank
        with no rows of a batch keeps its generator in step with the others)."""
        self._next_key()

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        return kernels.dropout_backward(as_float(output_grad, self.output.dtype), self.mask)
