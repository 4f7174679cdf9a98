"""``RNNModel``: chapter 6's stack of sequence layers plus the summed loss."""

from typing import List, Optional

import numpy as np

from fastdl.rnn.layers import _SequenceLayer
from fastdl.rnn.losses import SoftmaxCrossEntropy


def _clears_in_backward(layer) -> bool:
    """Whether ``layer`` is one of fastdl's sequence layers with the book's backward and gradient clearing
    (not a subclass's own), so that ``_backward_into_cleared`` does both in one pass."""
    cls = type(layer)
    return (isinstance(layer, _SequenceLayer) and cls.backward is _SequenceLayer.backward
            and cls._clear_gradients is _SequenceLayer._clear_gradients)


class RNNModel:
    """Layers run in order on ``(B, T, V)`` one-hot batches; the last layer's ``output_size`` must be V.

    ``vocab_size`` is informational (as in the book); ``sequence_length`` is also set on every layer.
    ``seed`` (a fastdl addition, default None) gives layer ``k`` the seed ``seed + k`` for its initial
    weights; without it each layer keeps its own ``seed`` attribute (None: fresh entropy).
    ``LSTMModel`` from the book is not provided: it was unused, ``RNNModel`` takes LSTM layers.
    """

    def __init__(self, layers: List, sequence_length: int, vocab_size: int,
                 loss: Optional[SoftmaxCrossEntropy] = None, seed: Optional[int] = None) -> None:
        self.layers = layers
        self.vocab_size = vocab_size
        self.sequence_length = sequence_length
        self.loss = SoftmaxCrossEntropy() if loss is None else loss
        for layer in self.layers:
            setattr(layer, "sequence_length", sequence_length)
        if seed is not None:
            for k, layer in enumerate(self.layers):
                setattr(layer, "seed", seed + k)

    def forward(self, x_batch: np.ndarray) -> np.ndarray:
        """x_batch (B, T, V) -> logits (B, T, output_size of the last layer)."""
        for layer in self.layers:
            x_batch = layer.forward(x_batch)
        return x_batch

    def backward(self, loss_grad: np.ndarray) -> np.ndarray:
        """Run every layer's backward in reverse order; returns the gradient of the model input."""
        for layer in reversed(self.layers):
            loss_grad = layer.backward(loss_grad)
        return loss_grad

    def single_step(self, x_batch: np.ndarray, y_batch: np.ndarray) -> float:
        """Forward, loss, loss gradient, clear every layer's derivs, backward; returns the loss.

        The parameter update is the optimizer's ``step()`` (called by ``RNNTrainer``), as in the book.
        """
        x_batch_out = self.forward(x_batch)
        loss = self.loss.forward(x_batch_out, y_batch)
        loss_grad = self.loss.backward()
        clears_in_backward = [_clears_in_backward(layer) for layer in self.layers]
        for layer, skip in zip(self.layers, clears_in_backward):
            if not skip:
                layer._clear_gradients()
        for layer, fused in zip(reversed(self.layers), reversed(clears_in_backward)):
            loss_grad = layer._backward_into_cleared(loss_grad) if fused else layer.backward(loss_grad)
        return loss

    def reset_state(self) -> None:
        """Zero every layer's carried state (``start_H`` / ``start_C``)."""
        for layer in self.layers:
            if hasattr(layer, "reset_state"):
                layer.reset_state()

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"RNNModel(\n  {inner},\n  sequence_length={self.sequence_length}, vocab_size={self.vocab_size})"
