"""Chapter 6's recurrent stack (SPEC Part B §11). Its loss sums over batch, time and vocabulary."""

from fastdl.rnn.losses import SoftmaxCrossEntropy

__all__ = ["SoftmaxCrossEntropy"]
