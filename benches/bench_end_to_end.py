"""End-to-end steps of the book's models: the chapter 4 MLP epoch and the chapter 5 CNN training step."""

import numpy as np

from conftest import record
from fastdl.cli.demos import build_cnn, build_mlp


def _train_step(net, optim, X, y):
    def step():
        net.train_batch(X, y)
        optim.step()
    return step


def test_mlp_epoch_digits(benchmark, backend_name):
    """One epoch (23 batches of 60) of the chapter 4 MLP on the digits."""
    from fastdl.datasets import digits

    X, y, _, _ = digits()
    net, optim = build_mlp()
    optim.net = net
    optim.max_epochs = 1

    def epoch():
        for i in range(0, len(X), 60):
            net.train_batch(X[i:i + 60], y[i:i + 60])
            optim.step()

    group = "ch4 MLP epoch (digits)"
    benchmark.group = group
    benchmark(epoch)
    record(benchmark, group, backend_name)


def test_cnn_step_mnist_shape(benchmark, backend_name, rng):
    """One training step of the chapter 5 CNN at the book's shape: batch 60 of 1x28x28 (the book: 0.22 s)."""
    X = rng.standard_normal((60, 1, 28, 28)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, size=60)]
    net, optim = build_cnn()
    optim.net = net
    net.train_batch(X, y)
    group = "ch5 CNN train step b60 28x28"
    benchmark.group = group
    benchmark(_train_step(net, optim, X, y))
    record(benchmark, group, backend_name)


def test_lstm_model_step(benchmark, backend_name, rng):
    """The book's LSTM+LSTM model step (single_step + optim.step), T=25, batch 32, hidden 256, V=62
    (the book's NumPy code: about 87 ms here)."""
    from fastdl.cli.profile import lstm_step

    step = lstm_step()
    group = "ch6 LSTM+LSTM step T25 B32 H256"
    benchmark.group = group
    benchmark(step)
    record(benchmark, group, backend_name)
