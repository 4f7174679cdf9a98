"""``Dropout`` (lincoln ``dropout.py``, L2019): the book's convention, kept.

``keep_prob`` is the probability of KEEPING a unit. Training multiplies by a 0/1 mask (no
``1/keep_prob`` rescaling); inference multiplies by ``keep_prob`` instead. Masks come from the
operation's own ``numpy.random.Generator`` (``seed``), never from the global NumPy RNG; the layers
seed it from the layer's seed and ``Trainer.fit`` re-seeds it from fit's ``seed``.
"""

import numpy as np

from fastdl.base import Operation, as_float


class Dropout(Operation):
    """Multiply by a Bernoulli(keep_prob) mask in training, by ``keep_prob`` in inference."""

    def __init__(self, keep_prob: float = 0.8, seed=None):
        super().__init__()
        if not 0.0 < keep_prob <= 1.0:
            raise ValueError(f"Dropout: keep_prob must be in (0, 1], got {keep_prob!r}")
        self.keep_prob = keep_prob
        self.reseed(seed)

    def reseed(self, seed=None) -> None:
        """Restart the mask generator from ``seed`` (None: fresh OS entropy)."""
        self.rng = np.random.default_rng(seed)

    def _output(self, inference: bool = False) -> np.ndarray:
        x = as_float(self.input_)
        if inference:
            return x * np.asarray(self.keep_prob, dtype=x.dtype)
        self.mask = (self.rng.random(x.shape) < self.keep_prob).astype(x.dtype)
        return x * self.mask

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        return output_grad * self.mask.astype(np.result_type(output_grad), copy=False)
