"""The book's demo networks on the bundled 8x8 digits: chapter 4's MLP and chapter 5's CNN.

``train_mlp`` / ``train_cnn`` return ``(test_accuracy, seconds, trainer)``; ``python -m fastdl train``
prints them.
"""

import contextlib
import io
import time

import numpy as np

from fastdl.activations import Linear, Tanh
from fastdl.layers import Conv2D, Dense
from fastdl.losses import SoftmaxCrossEntropy
from fastdl.network import NeuralNetwork
from fastdl.optimizers import SGDMomentum
from fastdl.train import Trainer, predict


def build_mlp(seed: int = 20190119, dtype=None):
    """The chapter-4 network and optimizer: 89 Tanh (glorot) -> 10 Linear (glorot), SCE, exp decay."""
    dtype = np.float32 if dtype is None else dtype
    net = NeuralNetwork(
        layers=[Dense(neurons=89, activation=Tanh(), weight_init="glorot", dtype=dtype),
                Dense(neurons=10, activation=Linear(), weight_init="glorot", dtype=dtype)],
        loss=SoftmaxCrossEntropy(), seed=seed)
    optim = SGDMomentum(lr=0.2, momentum=0.9, final_lr=0.05, decay_type="exponential")
    return net, optim


def build_cnn(seed: int = 20190402, dtype=None, readout_init: str = "standard"):
    """The chapter-5 CNN: Conv2D(16, 5x5, Tanh, glorot, dropout 0.8, flatten) -> Dense(10), SCE,
    SGDMomentum(0.1, 0.9) (the book's notebook configuration). ``readout_init`` is the Dense layer's
    ``weight_init`` (the book's "standard" N(0, 1); on 28x28 images its 12,544 inputs make the first
    logits hundreds large, and "glorot" trains to a better accuracy)."""
    dtype = np.float32 if dtype is None else dtype
    net = NeuralNetwork(
        layers=[Conv2D(out_channels=16, param_size=5, dropout=0.8, weight_init="glorot", flatten=True,
                       activation=Tanh(), dtype=dtype),
                Dense(neurons=10, activation=Linear(), weight_init=readout_init, dtype=dtype)],
        loss=SoftmaxCrossEntropy(), seed=seed)
    return net, SGDMomentum(lr=0.1, momentum=0.9)


def accuracy(net, X, y_onehot) -> float:
    """Fraction of rows whose arg-max prediction (inference mode, ``fastdl.train.predict``: a chunk of rows
    at a time) matches the one-hot target."""
    return float(np.mean(np.argmax(predict(net, X), axis=1) == np.argmax(y_onehot, axis=1)))


def train_network(net, optim, data, epochs, eval_every, batch_size, seed, verbose=False, progress=False):
    """``Trainer(net, optim).fit`` on ``data`` = (X_train, y_train, X_test, y_test), printing the book's lines
    only when ``verbose``; returns ``(test_accuracy, seconds, trainer)``."""
    X_train, y_train, X_test, y_test = data
    trainer = Trainer(net, optim)
    sink = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    start = time.perf_counter()
    with sink:
        trainer.fit(X_train, y_train, X_test, y_test, epochs=epochs, eval_every=eval_every,
                    batch_size=batch_size, seed=seed, progress=progress)
    seconds = time.perf_counter() - start
    return accuracy(trainer.net, X_test, y_test), seconds, trainer


def train_mlp(epochs: int = 50, seed: int = 20190119, eval_every: int = 10, batch_size: int = 60,
              verbose: bool = False, dtype=None, progress: bool = False):
    """Train the chapter-4 MLP on the digits; returns ``(test_accuracy, seconds, trainer)``."""
    from fastdl.datasets import digits

    data = digits() if dtype is None else digits(dtype=dtype)
    net, optim = build_mlp(seed, dtype)
    return train_network(net, optim, data, epochs, eval_every, batch_size, seed, verbose, progress)


def train_cnn(epochs: int = 5, seed: int = 20190402, eval_every: int = 1, batch_size: int = 60,
              verbose: bool = False, dtype=None, progress: bool = False):
    """Train the chapter-5 CNN on the digits as (N, 1, 8, 8) images; returns ``(acc, seconds, trainer)``."""
    from fastdl.datasets import digits

    data = digits(images=True) if dtype is None else digits(dtype=dtype, images=True)
    net, optim = build_cnn(seed, dtype)
    return train_network(net, optim, data, epochs, eval_every, batch_size, seed, verbose, progress)


def train_lstm(iterations: int = 200, seed: int = 20190119, hidden: int = 64, sequence_length: int = 25,
               batch_size: int = 32, verbose: bool = False, progress: bool = False):
    """The chapter 6 char model (LSTMLayer(hidden, 128) -> LSTMLayer(hidden, V)), AdaGrad(0.01) with
    clipping, on the bundled corpus. Returns ``(mean loss per character over the last 50 steps, seconds,
    trainer)``; ``trainer.sample_output`` draws text."""
    from fastdl.rnn import LSTMLayer, RNNModel, RNNTrainer, load_text, vocabulary
    from fastdl.rnn.optimizers import AdaGrad

    vocab = len(vocabulary(load_text()))
    model = RNNModel([LSTMLayer(hidden, 128, weight_scale=0.1), LSTMLayer(hidden, vocab, weight_scale=0.01)],
                     sequence_length=sequence_length, vocab_size=vocab, seed=seed)
    trainer = RNNTrainer(None, model, AdaGrad(lr=0.01), batch_size=batch_size, seed=seed)
    start = time.perf_counter()
    losses = trainer.train(iterations, sample_every=100 if verbose else None, progress=progress)
    seconds = time.perf_counter() - start
    per_char = float(np.mean(losses[-50:])) / (batch_size * sequence_length)
    return per_char, seconds, trainer
