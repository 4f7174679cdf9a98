"""A user's script, type-checked by CI with mypy against the installed package (py.typed, the _core stub):
the book's training loop on fastdl, a few kernels called directly, and the data sets."""

import numpy as np
import numpy.typing as npt

from fastdl import kernels
from fastdl.activations import Linear, Tanh
from fastdl.datasets import one_hot
from fastdl.layers import Dense
from fastdl.losses import SoftmaxCrossEntropy
from fastdl.network import NeuralNetwork
from fastdl.optimizers import SGDMomentum
from fastdl.train import Trainer


def train_small() -> float:
    rng = np.random.default_rng(0)
    X: npt.NDArray[np.float32] = rng.standard_normal((120, 8)).astype(np.float32)
    y = one_hot((X[:, 0] > 0).astype(np.int64), 10)
    net = NeuralNetwork([Dense(16, activation=Tanh()), Dense(10, activation=Linear())],
                        loss=SoftmaxCrossEntropy(), seed=1)
    trainer = Trainer(net, SGDMomentum(0.05, momentum=0.9))
    history = trainer.fit(X[:90], y[:90], X[90:], y[90:], epochs=2, eval_every=1, batch_size=30, seed=1)
    return float(history[-1]["loss"])


def kernels_directly() -> float:
    a = np.ones((4, 3), np.float32)
    b = np.ones((3, 5), np.float32)
    c = kernels.matmul(a, b, trans_b=False)
    y = kernels.linear(a, b, None, "tanh")
    grad_x, grad_w, grad_b = kernels.linear_backward(a, b, y, np.ones_like(y), "tanh")
    loss, grad = kernels.softmax_cross_entropy(c, np.eye(5, dtype=np.float32)[[0, 1, 2, 3]])
    return float(np.sum(c)) + float(grad_w.sum()) + float(grad_b.sum()) + float(np.sum(loss)) + float(grad.sum()) \
        + (0.0 if grad_x is None else float(grad_x.sum()))


if __name__ == "__main__":
    print(train_small(), kernels_directly())
