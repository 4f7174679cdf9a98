"""Chapter 6's loss: softmax cross-entropy per time step over (B, T, V), SUMMED (no 1/B, no 1/T).

The same fused kernel as the chapter 4 loss (``kernels.softmax_cross_entropy``) on the (B*T, V) view,
with ``reduction="sum"``: the value is the book's two-term clipped formula summed over batch, time and
vocabulary, and the gradient is ``clip(softmax) - target`` per element.
"""

import numpy as np

from fastdl import kernels
from fastdl import losses
from fastdl.base import as_float
from fastdl.utils.np_utils import ShapeMismatchError, assert_same_shape


class SoftmaxCrossEntropy(losses.SoftmaxCrossEntropy):
    """prediction is (B, T, V) logits; target is one-hot (B, T, V) or integer labels (B, T)."""

    batch_reduction = "sum"  # summed over the batch and the time steps

    def _check_target(self, prediction, target) -> None:
        t = np.asarray(target)
        if np.ndim(prediction) != 3:
            raise ShapeMismatchError(f"rnn.SoftmaxCrossEntropy: prediction must be (B, T, V), "
                                     f"got shape {np.shape(prediction)}")
        if t.ndim == 2 and np.issubdtype(t.dtype, np.integer):
            if t.shape != np.shape(prediction)[:2]:
                raise ShapeMismatchError(f"rnn.SoftmaxCrossEntropy: labels of shape {t.shape} do not match "
                                         f"predictions of shape {np.shape(prediction)} (expected (B, T))")
            return
        assert_same_shape(prediction, target)

    def _output(self) -> float:
        pred = as_float(self.prediction)
        vocab = pred.shape[-1]
        t = np.asarray(self.target)
        rows = t.reshape(-1) if t.ndim == 2 else as_float(t, pred.dtype).reshape(-1, vocab)
        loss, grad = kernels.softmax_cross_entropy(pred.reshape(-1, vocab), rows, eps=self.eps, reduction="sum")
        self._grad = grad.reshape(pred.shape)
        return loss

    def _onehot(self) -> np.ndarray:
        t = np.asarray(self.target)
        if t.ndim == 2:
            return np.eye(self._grad.shape[-1], dtype=self._grad.dtype)[t]
        return as_float(t, self._grad.dtype)

    @property
    def softmax_preds(self) -> np.ndarray:
        """The clipped softmax of the last forward, (B, T, V) (recovered from the summed gradient)."""
        return np.clip(self._grad + self._onehot(), self.eps, 1 - self.eps)
