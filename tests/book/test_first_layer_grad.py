"""The input gradient that nothing reads is not computed.

``NeuralNetwork.train_batch`` tells its first fastdl layer to skip the gradient with respect to the batch
(``need_input_grad=False``), down to the kernels (``conv2d_backward`` / ``linear_backward`` with
``need_grad_x=False``). Checked here: the kernels' other results equal the full call's on every backend,
the parameter gradients after ``train_batch`` equal those of a full forward + backward, ``backward`` still
returns the input gradient, and a first layer that is not a fastdl layer is called as before. A flag that
is not a bool is in the bad-input catalogue (test_errors.py).
"""

import copy

import numpy as np
import pytest

import fastdl
from fastdl import kernels
from fastdl.activations import Linear, ReLU, Sigmoid, Tanh
from fastdl.layers import Conv2D, Dense
from fastdl.losses import SoftmaxCrossEntropy
from fastdl.network import NeuralNetwork
from helpers import check_without_grad_x, random


@pytest.mark.parametrize("act", ["linear", "sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("shape", [(1, 1, 1), (5, 7, 3), (64, 97, 13)])
def test_linear_backward_without_grad_x(backend_name, dtype, rng, act, shape):
    n, n_in, n_out = shape
    x, w = random(rng, (n, n_in), dtype), random(rng, (n_in, n_out), dtype)
    y = np.asarray(kernels.linear(x, w, None, act))
    check_without_grad_x("linear_backward", (x, w, y, random(rng, (n, n_out), dtype), act), backend_name,
                         dtype=dtype, scale=np.sqrt(n))


@pytest.mark.parametrize("geom", [
    # (B, C_in, C_out, H, W, K, stride, padding)
    (1, 1, 1, 1, 1, 1, 1, "same"), (3, 1, 16, 11, 7, 5, 1, "same"), (2, 3, 5, 9, 8, 4, 2, "valid"),
    (4, 17, 3, 6, 5, 3, 1, 1),
])
def test_conv2d_backward_without_grad_x(backend_name, dtype, rng, geom):
    B, c_in, c_out, H, W, K, stride, padding = geom
    x, w = random(rng, (B, c_in, H, W), dtype), random(rng, (c_in, c_out, K, K), dtype)
    kw = {"stride": stride, "padding": padding}
    gy = random(rng, np.asarray(kernels.conv2d(x, w, **kw)).shape, dtype)
    check_without_grad_x("conv2d_backward", (x, w, gy), backend_name, kw, dtype, scale=K * np.sqrt(c_out * B) * 4)


def _cnn():
    return NeuralNetwork([Conv2D(4, 3, activation=Tanh(), flatten=True), Dense(5, activation=Linear())],
                         SoftmaxCrossEntropy(), seed=3)


def _mlp(act):
    return NeuralNetwork([Dense(6, activation=act), Dense(5, activation=Linear())], SoftmaxCrossEntropy(), seed=3)


NETWORKS = {"cnn": (_cnn, (4, 2, 6, 5)), "mlp-sigmoid": (lambda: _mlp(Sigmoid()), (4, 9)),
            "mlp-relu": (lambda: _mlp(ReLU()), (4, 9)), "mlp-linear": (lambda: _mlp(Linear()), (4, 9))}


@pytest.mark.parametrize("name", list(NETWORKS))
@pytest.mark.parametrize("reference", [True, False], ids=["numpy", "accelerated"])
def test_train_batch_skips_only_the_first_input_grad(backend_name, rng, name, reference):
    backend_name = "numpy" if reference else backend_name
    build, x_shape = NETWORKS[name]
    X = rng.standard_normal(x_shape).astype(np.float32)
    y = np.eye(5, dtype=np.float32)[rng.integers(0, 5, size=x_shape[0])]
    with fastdl.use_backend(backend_name):
        net = build()
        net.forward(X)  # sets the layers up
        full = copy.deepcopy(net)
        loss = net.train_batch(X, y)
        prediction = full.forward(X)
        full_loss = full.loss.forward(prediction, y)
        input_grad = full.backward(full.loss.backward())
    assert loss == full_loss
    assert np.shape(input_grad) == X.shape  # backward() still returns the input gradient
    first_op = net.layers[0].operations[0]
    assert first_op.input_grad is None  # train_batch did not compute it
    assert full.layers[0].operations[0].input_grad is not None
    for layer, full_layer in zip(net.layers, full.layers):
        for got, want in zip(layer.param_grads, full_layer.param_grads):
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


class _PlainFirstLayer:
    """A lincoln-style layer (not a fastdl Layer): its backward takes no flag and is called as before."""

    def __init__(self):
        self.params, self.param_grads, self.first, self.calls = [], [], True, 0

    def forward(self, x, inference=False):
        self.input_ = x
        return x * 2.0

    def backward(self, grad):
        self.calls += 1
        return grad * 2.0


def test_a_foreign_first_layer_is_called_as_before(rng):
    first = _PlainFirstLayer()
    net = NeuralNetwork([first, Dense(5, activation=Linear())], SoftmaxCrossEntropy(), seed=3)
    X = rng.standard_normal((4, 9)).astype(np.float32)
    y = np.eye(5, dtype=np.float32)[rng.integers(0, 5, size=4)]
    net.train_batch(X, y)
    assert first.calls == 1
    assert net.layers[1].operations[0].input_grad is not None  # the second layer's input gradient is needed
