"""Losses (lincoln ``losses.py``): ``Loss``, ``MeanSquaredError``, ``SoftmaxCrossEntropy``, plus the
standard ``CrossEntropy``.

``forward(prediction, target) -> float`` stores ``prediction``, ``target`` and ``output``;
``backward() -> grad`` (the prediction's shape) stores ``input_grad``. Every loss divides by the batch
size N, so layer gradients are sums over the batch. Float targets are cast to the prediction's dtype.

The losses in ``DEVICE_LOSSES`` also take a device prediction (on the cuda backend, from
``NeuralNetwork.train_batch``): the target (NumPy) is uploaded, the value comes back as a float and the
gradient stays on the device. ``softmax_preds`` is always a NumPy array.
"""

import numpy as np

from fastdl import device as dev
from fastdl import kernels
from fastdl.base import as_float
from fastdl.utils.np_utils import ShapeMismatchError, assert_same_shape


class Loss:
    """Base class: subclasses implement ``_output() -> float`` and ``_input_grad() -> ndarray``.

    ``batch_reduction`` says how the value and the gradient combine a batch's rows: "mean" (divided by
    the batch size, every loss here) or "sum". Data-parallel training reads it to combine the ranks'
    gradients; a subclass that sums over the rows sets it to "sum"."""

    batch_reduction = "mean"

    def __init__(self):
        pass

    def forward(self, prediction: np.ndarray, target: np.ndarray) -> float:
        """Compute, store (``output``) and return the loss of ``prediction`` against ``target``."""
        self._check_target(prediction, target)
        self.prediction = prediction
        self.target = target
        self.output = self._output()
        return self.output

    def backward(self) -> np.ndarray:
        """The gradient of the loss with respect to the prediction (stored as ``input_grad``)."""
        self.input_grad = self._input_grad()
        assert_same_shape(self.prediction, self.input_grad)
        return self.input_grad

    def _check_target(self, prediction, target) -> None:
        assert_same_shape(prediction, target)

    def _output(self) -> float:
        raise NotImplementedError()

    def _input_grad(self) -> np.ndarray:
        raise NotImplementedError()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __getstate__(self):
        """What ``copy.deepcopy`` and pickle copy: the attributes, device arrays as host copies."""
        return dev.host_state(self.__dict__)


class MeanSquaredError(Loss):
    """``sum((pred - target)**2) / N`` (summed over columns, divided by the batch size only, as the
    book); gradient ``2 (pred - target) / N``.

    ``normalize=True`` keeps the book's behaviour: the prediction is first divided by its row sums and
    the gradient treats that normalised prediction as if it were the raw one.
    """

    def __init__(self, normalize: bool = False) -> None:
        super().__init__()
        self.normalize = normalize

    def _output(self) -> float:
        pred = as_float(self.prediction)
        if dev.is_device(pred) and self.normalize:
            pred = dev.to_host(pred)  # the book's row normalisation runs on the host
        if dev.is_device(pred):
            return self._device_output(pred)
        if self.normalize:
            pred = pred / pred.sum(axis=1, keepdims=True)
            self.prediction = pred
        self._diff = pred - as_float(self.target, pred.dtype)
        return float(np.sum(self._diff * self._diff)) / pred.shape[0]

    def _device_output(self, pred) -> float:
        """The loss of a device prediction, computed on the device; ``_diff`` stays there."""
        target = dev.to_device(as_float(self.target, pred.dtype))
        self._diff = dev.ops.subtract(pred, target)
        return dev.ops.sum_squares(self._diff) / pred.shape[0]

    def _input_grad(self) -> np.ndarray:
        if dev.is_device(self._diff):
            return dev.ops.scale(self._diff, 2.0 / self.prediction.shape[0])
        return (2.0 / self.prediction.shape[0]) * self._diff


def _labels_or_onehot(prediction, target):
    """The target in the form the kernels take: int64 labels (B,) or a float one-hot like prediction."""
    target = np.asarray(target)
    if target.ndim == 1 and np.issubdtype(target.dtype, np.integer):
        return target
    return as_float(target, prediction.dtype)


class _SoftmaxLoss(Loss):
    """Shared by the two softmax losses: target one-hot (B, C) or integer labels (B,)."""

    def _check_target(self, prediction, target) -> None:
        t = np.asarray(target)
        if t.ndim == 1 and np.issubdtype(t.dtype, np.integer):
            if np.ndim(prediction) != 2 or t.shape[0] != np.shape(prediction)[0]:
                raise ShapeMismatchError(f"{type(self).__name__}: labels of shape {t.shape} do not match "
                                         f"predictions of shape {np.shape(prediction)} (expected (B,) and (B, C))")
            return
        assert_same_shape(prediction, target)

    def _onehot(self) -> np.ndarray:
        t = np.asarray(self.target)
        if t.ndim == 1:
            onehot = np.zeros(np.shape(self.prediction), dtype=self._grad.dtype)
            onehot[np.arange(t.shape[0]), t] = 1
            return onehot
        return as_float(t, self._grad.dtype)

    def _input_grad(self) -> np.ndarray:
        if dev.is_device(self._grad):
            return dev.ops.copy(self._grad)
        return self._grad.copy()


class SoftmaxCrossEntropy(_SoftmaxLoss):
    """The book's softmax cross-entropy, on ``kernels.softmax_cross_entropy``.

    Reported value: ``sum_{n,k}[-y log p - (1 - y) log(1 - p)] / N`` with ``p`` the softmax clipped to
    ``[eps, 1 - eps]`` (the two-term formula). Gradient: ``(p - y) / N``. ``softmax_preds`` is the
    clipped softmax of the last forward.
    """

    def __init__(self, eps: float = 1e-9) -> None:
        super().__init__()
        self.eps = eps
        self.single_class = False

    def _output(self) -> float:
        pred = as_float(self.prediction)
        loss, self._grad = kernels.softmax_cross_entropy(pred, _labels_or_onehot(pred, self.target), eps=self.eps)
        return loss

    @property
    def softmax_preds(self) -> np.ndarray:
        """The clipped softmax ``p`` of the last forward (recovered from the gradient ``(p - y) / N``)."""
        n = self._grad.shape[0]
        return np.clip(dev.to_host(self._grad) * n + self._onehot(), self.eps, 1 - self.eps)


class CrossEntropy(_SoftmaxLoss):
    """Standard softmax cross-entropy (PyTorch's ``CrossEntropyLoss``): ``mean_n(-sum_k y log softmax)``,
    gradient ``(softmax - y) / N``; target one-hot (B, C) or integer labels (B,)."""

    def _output(self) -> float:
        pred = as_float(self.prediction)
        loss, self._grad = kernels.cross_entropy(pred, _labels_or_onehot(pred, self.target))
        return loss


#: the losses whose ``forward`` / ``backward`` run on a device prediction (see the module docstring)
DEVICE_LOSSES = (MeanSquaredError, SoftmaxCrossEntropy, CrossEntropy)
