"""Chapter 6's recurrent stack: per-step nodes, fused sequence layers, the model, the
trainer, and the summed per-step loss. Its optimizers (a different API from ``fastdl.optimizers``) are
in ``fastdl.rnn.optimizers``.
"""

from fastdl.rnn.layers import GRULayer, LSTMLayer, RNNLayer
from fastdl.rnn.losses import SoftmaxCrossEntropy
from fastdl.rnn.model import RNNModel
from fastdl.rnn.nodes import GRUNode, LSTMNode, RNNNode
from fastdl.rnn.trainer import RNNTrainer, load_text, vocabulary

#: short alias for the top level (``fastdl.LSTM``).
LSTM = LSTMLayer

__all__ = ["RNNNode", "LSTMNode", "GRUNode", "RNNLayer", "LSTMLayer", "GRULayer", "RNNModel", "RNNTrainer",
           "SoftmaxCrossEntropy", "LSTM", "load_text", "vocabulary"]
