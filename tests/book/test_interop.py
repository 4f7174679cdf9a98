"""Interoperability both ways.

1. A minimal lincoln-style NeuralNetwork / loss / SGD / training loop, written here in plain NumPy
   exactly as the book's loop uses its objects, drives fastdl layers.
2. lincoln-style layers and operations written here (plain NumPy, float64, one of them HEAD-style
   without an ``inference`` argument) run inside fastdl's NeuralNetwork / Trainer / optimizers.
"""

import contextlib
import copy
import io

import numpy as np
import pytest

from fastdl.activations import Linear, Tanh
from fastdl.base import Operation
from fastdl.layers import Conv2D, Dense
from fastdl.losses import SoftmaxCrossEntropy
from fastdl.network import NeuralNetwork
from fastdl.optimizers import SGDMomentum
from fastdl.train import Trainer
from book_standins import BookNetwork

pytest.importorskip("sklearn", reason="the digits data set needs scikit-learn (the `examples` extra)")

from fastdl.datasets import digits  # noqa: E402


@pytest.fixture(scope="module")
def data():
    return digits()


def accuracy(net, X, y):
    return float(np.mean(np.argmax(net.forward(X, inference=True), axis=1) == np.argmax(y, axis=1)))


# ----------------------------------------------------------------------------------------------
# 1. lincoln-style loop (stand-ins written in the test) driving fastdl layers
# ----------------------------------------------------------------------------------------------

class BookSoftmaxCrossEntropy:
    """lincoln's loss in float64 NumPy (so float64 gradients flow into float32 fastdl layers)."""

    def forward(self, prediction, target):
        z = prediction.astype(np.float64)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        self.p = np.clip(e / e.sum(axis=1, keepdims=True), 1e-9, 1 - 1e-9)
        self.target = target
        return float(np.sum(-target * np.log(self.p) - (1 - target) * np.log(1 - self.p)) / z.shape[0])

    def backward(self):
        return (self.p - self.target) / self.p.shape[0]


class BookSGD:
    def __init__(self, lr):
        self.lr = lr

    def step(self):
        for param, grad in zip(self.net.params(), self.net.param_grads()):
            param -= self.lr * grad  # in place, as every lincoln optimizer


def book_fit(net, optim, X, y, epochs, batch_size, seed):
    """lincoln's Trainer loop in miniature (global RNG shuffling, a deepcopy per epoch)."""
    optim.net = net
    np.random.seed(seed)
    for layer in net.layers:
        layer.first = True
    for _ in range(epochs):
        snapshot = copy.deepcopy(net)
        perm = np.random.permutation(X.shape[0])
        X, y = X[perm], y[perm]
        for i in range(0, X.shape[0], batch_size):
            net.train_batch(X[i:i + batch_size], y[i:i + batch_size])
            optim.step()
    return snapshot


def test_book_loop_trains_fastdl_dense_layers(data):
    X_train, y_train, X_test, y_test = data
    net = BookNetwork([Dense(32, Tanh(), weight_init="glorot"), Dense(10, Linear(), weight_init="glorot")],
                      BookSoftmaxCrossEntropy(), seed=20190119)
    snapshot = book_fit(net, BookSGD(0.5), X_train, y_train.astype(np.float64), epochs=8, batch_size=32, seed=1)
    assert accuracy(net, X_test, y_test) > 0.9
    assert all(p.dtype == np.float32 for p in net.params())  # in-place float64 updates kept the layer dtype
    assert accuracy(snapshot, X_test, y_test) > 0.85  # the per-epoch deepcopies are working networks


def test_book_loop_trains_fastdl_conv_layer(data):
    Xi_train, yi_train, Xi_test, yi_test = digits(images=True)
    net = BookNetwork([Conv2D(4, 3, weight_init="glorot", activation=Tanh(), flatten=True),
                       Dense(10, Linear(), weight_init="glorot")], BookSoftmaxCrossEntropy(), seed=3)
    book_fit(net, BookSGD(0.2), Xi_train, yi_train, epochs=3, batch_size=32, seed=2)
    assert accuracy(net, Xi_test, yi_test) > 0.85
    assert [p.shape for p in net.params()] == [(1, 4, 3, 3), (256, 10), (1, 10)]


# ----------------------------------------------------------------------------------------------
# 2. lincoln-style layers (written in the test) inside fastdl's network, trainer and optimizer
# ----------------------------------------------------------------------------------------------

class BookDense:
    """A lincoln-style Dense layer in float64 NumPy: lazy set-up from `first`/`seed`, params lists."""

    def __init__(self, neurons):
        self.neurons, self.first, self.params, self.param_grads = neurons, True, [], []

    def forward(self, input_, inference=False):
        if self.first:
            rng = np.random.RandomState(self.seed)
            scale = 2 / (input_.shape[1] + self.neurons)
            self.params = [rng.normal(0, scale, (input_.shape[1], self.neurons)),
                           rng.normal(0, scale, (1, self.neurons))]
            self.first = False
        self.input_ = input_
        self.output = input_ @ self.params[0] + self.params[1]
        return self.output

    def backward(self, output_grad):
        assert output_grad.shape == self.output.shape
        self.param_grads = [self.input_.T @ output_grad, output_grad.sum(axis=0, keepdims=True)]
        return output_grad @ self.params[0].T


class HeadStyleTanh:
    """A parameter-free layer with the HEAD-style `forward(input_)` (no inference argument)."""

    def __init__(self):
        self.first, self.params, self.param_grads = True, [], []

    def forward(self, input_):
        self.output = np.tanh(input_)
        return self.output

    def backward(self, output_grad):
        return output_grad * (1 - self.output ** 2)


def test_fastdl_trainer_drives_book_style_layers(data):
    X_train, y_train, X_test, y_test = data
    first = BookDense(32)
    net = NeuralNetwork([first, HeadStyleTanh(), Dense(10, Linear(), weight_init="glorot")],
                        SoftmaxCrossEntropy(), seed=7)
    assert first.seed == 7
    trainer = Trainer(net, SGDMomentum(0.1, momentum=0.9))
    with contextlib.redirect_stdout(io.StringIO()):
        trainer.fit(X_train, y_train, X_test, y_test, epochs=10, eval_every=2, batch_size=32, seed=3)
    assert trainer.net is net
    assert accuracy(net, X_test, y_test) > 0.9
    assert net.layers[0].params[0].dtype == np.float64 and net.layers[2].params[0].dtype == np.float32
    assert len(list(net.params())) == len(list(net.param_grads())) == 4


class BookLeakyReLU(Operation):
    """A lincoln-style activation operation written against fastdl.base.Operation in NumPy."""

    def _output(self, inference):
        return np.where(self.input_ > 0, self.input_, 0.1 * self.input_)

    def _input_grad(self, output_grad):
        return output_grad * np.where(self.input_ > 0, 1.0, 0.1)


def test_book_style_operation_as_dense_activation(data):
    X_train, y_train, X_test, y_test = data
    layer = Dense(32, BookLeakyReLU(), weight_init="glorot")
    net = NeuralNetwork([layer, Dense(10, weight_init="glorot")], SoftmaxCrossEntropy(), seed=1)
    with contextlib.redirect_stdout(io.StringIO()):
        Trainer(net, SGDMomentum(0.1)).fit(X_train, y_train, X_test, y_test, epochs=5, eval_every=5, seed=1)
    assert accuracy(net, X_test, y_test) > 0.9
    assert isinstance(layer.operations[2], BookLeakyReLU) and layer.operations[2].output is not None
