"""What dtype a fastdl layer hands back to code that is not fastdl: the caller's.

A float32 fastdl layer fed the book's float64 data computes in float32 and returns float64 outputs and
input gradients. The book's SoftmaxCrossEntropy clips its probabilities to [1e-9, 1 - 1e-9] in the
prediction's own dtype; in float32, 1 - 1e-9 is 1.0, so a confident float32 prediction gives log(0) and
a NaN loss, and the book's early stopping then throws the training away. The stand-ins below do exactly
what the book's loss, network and trainer do (lincoln is not a dependency).
"""

import copy

import numpy as np
import pytest

from fastdl.activations import Linear, Tanh
from fastdl.layers import Conv2D, Dense
from fastdl.losses import SoftmaxCrossEntropy
from fastdl.network import NeuralNetwork
from book_standins import BookNetwork, BookSGDMomentum

pytest.importorskip("sklearn", reason="the digits data set needs scikit-learn (the `examples` extra)")

from fastdl.datasets import digits  # noqa: E402


class BookSoftmaxCrossEntropy:
    """The book's loss as it is: softmax and clip in the prediction's dtype, no cast."""

    eps = 1e-9

    def forward(self, prediction, target):
        self.prediction, self.target = prediction, target
        e = np.exp(prediction - prediction.max(axis=1, keepdims=True))
        self.p = np.clip(e / e.sum(axis=1, keepdims=True), self.eps, 1 - self.eps)
        loss = -target * np.log(self.p) - (1.0 - target) * np.log(1 - self.p)
        return np.sum(loss) / prediction.shape[0]

    def backward(self):
        return (self.p - self.target) / self.prediction.shape[0]


def book_fit(net, optim, X_train, y_train, X_test, y_test, epochs, batch_size, seed):
    """The book's Trainer.fit with early stopping: after each epoch the test loss is computed; when it
    is not below the best so far, the model from the best epoch is put back and training stops.
    Returns (the epoch whose model is kept, the test losses)."""
    optim.net = net
    np.random.seed(seed)
    best_loss, best_epoch, best_model, losses = 1e9, 0, copy.deepcopy(net), []
    for epoch in range(1, epochs + 1):
        perm = np.random.permutation(X_train.shape[0])
        X_train, y_train = X_train[perm], y_train[perm]
        for i in range(0, X_train.shape[0], batch_size):
            net.train_batch(X_train[i:i + batch_size], y_train[i:i + batch_size])
            optim.step()
        loss = net.loss.forward(net.forward(X_test, inference=True), y_test)
        losses.append(loss)
        if not loss < best_loss:  # NaN counts as "loss increased", as in the book
            net.layers = best_model.layers
            break
        best_loss, best_epoch, best_model = loss, epoch, copy.deepcopy(net)
    return best_epoch, losses


def accuracy(net, X, y):
    return float(np.mean(np.argmax(net.forward(X, inference=True), axis=1) == np.argmax(y, axis=1)))


def test_float32_layer_hands_float64_back():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 7))  # the book's data: float64
    layer = Dense(3, Tanh(), dtype=np.float32)
    layer.seed = 1
    y = layer.forward(x)
    assert y.dtype == np.float64 and layer.output.dtype == np.float32
    grad_x = layer.backward(np.ones((5, 3)))
    assert grad_x.dtype == np.float64
    assert all(p.dtype == np.float32 for p in layer.params + layer.param_grads)
    # float32 in: float32 out, no conversion
    assert layer.forward(x.astype(np.float32)).dtype == np.float32
    assert layer.backward(np.ones((5, 3), np.float32)).dtype == np.float32


def test_book_loss_on_confident_predictions_stays_finite():
    """A float32 layer whose logits are far apart: its float64 output keeps the book's clip working."""
    layer = Dense(2, Linear(), dtype=np.float32)
    layer.seed = 0
    x = np.array([[1.0, 0.0], [0.0, 1.0]])
    layer.forward(x)
    layer.params[0][...] = [[40.0, -40.0], [-40.0, 40.0]]  # the book's optimizers update in place
    prediction = layer.forward(x)
    loss = BookSoftmaxCrossEntropy().forward(prediction, np.eye(2))
    assert np.isfinite(loss)
    # the same prediction in float32 is what made the book's loss NaN
    with np.errstate(divide="ignore", invalid="ignore"):
        assert np.isnan(BookSoftmaxCrossEntropy().forward(prediction.astype(np.float32), np.eye(2)))


def test_fastdl_network_hands_the_batch_dtype_back():
    rng = np.random.default_rng(1)
    net = NeuralNetwork([Dense(4, Tanh()), Dense(3)], loss=SoftmaxCrossEntropy(), seed=2)
    x = rng.standard_normal((6, 5))
    assert net.forward(x).dtype == np.float64
    assert net.backward(np.ones((6, 3))).dtype == np.float64
    assert net.forward(x.astype(np.float32)).dtype == np.float32
    # the book's loss inside fastdl's network gets float64 predictions for a float64 batch
    book_net = NeuralNetwork([Dense(4, Tanh()), Dense(3)], loss=BookSoftmaxCrossEntropy(), seed=2)
    book_net.train_batch(x, np.eye(3)[rng.integers(0, 3, 6)])
    assert book_net.loss.prediction.dtype == np.float64


def test_book_trainer_with_fastdl_cnn_keeps_its_training():
    """The digits CNN of the bug report: the book's loss, optimizer and early stopping on float64
    images, a float32 fastdl Conv2D + Dense. Every test loss is finite and the trained model is kept."""
    X_train, y_train, X_test, y_test = digits(images=True)
    X_train, X_test = X_train.astype(np.float64), X_test.astype(np.float64)
    net = BookNetwork([Conv2D(8, 3, activation=Tanh(), weight_init="glorot", flatten=True),
                       Dense(10, Linear(), weight_init="glorot")], BookSoftmaxCrossEntropy(), seed=20190119)
    best_epoch, losses = book_fit(net, BookSGDMomentum(0.1), X_train, y_train.astype(np.float64), X_test,
                                  y_test.astype(np.float64), epochs=4, batch_size=60, seed=20190119)
    assert all(np.isfinite(losses)), losses
    assert best_epoch >= 3, f"early stopping put back the model from epoch {best_epoch}: losses {losses}"
    assert accuracy(net, X_test, y_test) > 0.9


def test_book_trainer_accuracy_with_fastdl_layers_matches_numpy_layers():
    """The same MLP trained by the book's loop with float32 fastdl layers and with float64 ones
    (the book's own precision): the same accuracy within a few test images."""
    X_train, y_train, X_test, y_test = digits()
    X_train, X_test = X_train.astype(np.float64), X_test.astype(np.float64)
    y_train, y_test = y_train.astype(np.float64), y_test.astype(np.float64)
    results = {}
    for name, dtype in (("fastdl float32", np.float32), ("float64", np.float64)):
        net = BookNetwork([Dense(89, Tanh(), weight_init="glorot", dtype=dtype),
                           Dense(10, Linear(), weight_init="glorot", dtype=dtype)],
                          BookSoftmaxCrossEntropy(), seed=20190119)
        best_epoch, losses = book_fit(net, BookSGDMomentum(0.1), X_train, y_train, X_test, y_test,
                                      epochs=10, batch_size=60, seed=20190119)
        assert all(np.isfinite(losses)) and best_epoch > 1, (name, losses)
        results[name] = accuracy(net, X_test, y_test)
    assert results["fastdl float32"] > 0.9
    assert abs(results["fastdl float32"] - results["float64"]) <= 0.02, results
