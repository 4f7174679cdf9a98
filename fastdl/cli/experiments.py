"""``python -m fastdl experiments [--data digits|fashion-mnist|mnist]``: the book's chapter 4 experiment
table and its chapter 5 CNN, on the bundled 8x8 digits (default) or a 70,000-image MNIST-format data set.

Every chapter 4 run uses the book's settings (batch 60, eval every 10 epochs, early stopping, seed 20190119),
with fastdl's fixes: the ReLU gradient is right and early stopping keeps the best model. The chapter 5 row
is the book's notebook run: one epoch of batch 60, SGDMomentum(0.1, 0.9), the read-out layer's N(0, 1)
weights. Each row prints the test accuracy, the book's MNIST accuracy and the time per epoch.
"""

from dataclasses import dataclass
from typing import Callable, List

import numpy as np

from fastdl.activations import Linear, ReLU, Sigmoid, Tanh
from fastdl.layers import Dense
from fastdl.losses import MeanSquaredError, SoftmaxCrossEntropy
from fastdl.network import NeuralNetwork
from fastdl.optimizers import SGD, SGDMomentum

SEED = 20190119


@dataclass
class Experiment:
    number: int
    network: str
    loss: str
    optimizer: str
    book_mnist_accuracy: float  # the L2019 notebook's printed accuracy (%), for comparison
    layers: Callable[[], List[Dense]]
    make_loss: Callable[[], object]
    make_optim: Callable[[], object]
    epochs: int = 50


def _dense(n, act, glorot=False, dropout=1.0):
    return Dense(n, activation=act, weight_init="glorot" if glorot else "standard", dropout=dropout)


def _lin_decay():
    return SGDMomentum(0.15, momentum=0.9, final_lr=0.05, decay_type="linear")


def _exp_decay():
    return SGDMomentum(0.2, momentum=0.9, final_lr=0.05, decay_type="exponential")


def experiments():
    """The rows of the book's table that run on the L2019 code (experiment 2 differs only in MSE
    normalisation and is kept)."""
    sce, mse = SoftmaxCrossEntropy, MeanSquaredError
    sgd, mom = (lambda: SGD(0.1)), (lambda: SGDMomentum(0.1, momentum=0.9))
    return [
        Experiment(1, "89 Tanh -> 10 Sigmoid", "MSE", "SGD(0.1)", 72.80,
                   lambda: [_dense(89, Tanh()), _dense(10, Sigmoid())], mse, sgd),
        Experiment(2, "89 Tanh -> 10 Sigmoid", "MSE(normalize)", "SGD(0.1)", 41.73,
                   lambda: [_dense(89, Tanh()), _dense(10, Sigmoid())], lambda: mse(normalize=True), sgd),
        Experiment(3, "89 Sigmoid -> 10 Linear", "SCE", "SGD(0.1)", 91.04,
                   lambda: [_dense(89, Sigmoid()), _dense(10, Linear())], sce, sgd),
        Experiment(4, "89 ReLU -> 10 Linear", "SCE", "SGD(0.1)", 71.84,
                   lambda: [_dense(89, ReLU()), _dense(10, Linear())], sce, sgd),
        Experiment(5, "89 Tanh -> 10 Linear", "SCE", "SGD(0.1)", 90.92,
                   lambda: [_dense(89, Tanh()), _dense(10, Linear())], sce, sgd),
        Experiment(6, "89 Sigmoid -> 10 Linear", "SCE", "momentum", 91.97,
                   lambda: [_dense(89, Sigmoid()), _dense(10, Linear())], sce, mom),
        Experiment(7, "89 Tanh -> 10 Linear", "SCE", "momentum", 95.36,
                   lambda: [_dense(89, Tanh()), _dense(10, Linear())], sce, mom),
        Experiment(8, "89 Tanh -> 10 Linear", "SCE", "lin decay", 95.98,
                   lambda: [_dense(89, Tanh()), _dense(10, Linear())], sce, _lin_decay),
        Experiment(9, "89 Tanh -> 10 Linear", "SCE", "exp decay", 95.75,
                   lambda: [_dense(89, Tanh()), _dense(10, Linear())], sce, _exp_decay),
        Experiment(10, "89 Tanh -> 10 Linear, glorot", "SCE", "lin decay", 96.69,
                   lambda: [_dense(89, Tanh(), True), _dense(10, Linear(), True)], sce, _lin_decay),
        Experiment(11, "89 Tanh -> 10 Linear, glorot", "SCE", "exp decay", 96.48,
                   lambda: [_dense(89, Tanh(), True), _dense(10, Linear(), True)], sce, _exp_decay),
        Experiment(12, "89 Tanh (dropout 0.8) -> 10 Linear, glorot", "SCE", "exp decay", 96.77,
                   lambda: [_dense(89, Tanh(), True, 0.8), _dense(10, Linear(), True)], sce, _exp_decay),
        Experiment(13, "178 Tanh -> 46 Tanh (dropout 0.8) -> 10, glorot", "SCE", "exp decay", 97.34,
                   lambda: [_dense(178, Tanh(), True, 0.8), _dense(46, Tanh(), True, 0.8), _dense(10, Linear(), True)],
                   sce, _exp_decay, epochs=100),
        Experiment(14, "178 Tanh -> 46 Tanh -> 10, glorot", "SCE", "exp decay", 96.08,
                   lambda: [_dense(178, Tanh(), True), _dense(46, Tanh(), True), _dense(10, Linear(), True)],
                   sce, _exp_decay, epochs=100),
    ]


#: the book's chapter 5 notebook run (its MNIST accuracy after one epoch)
CNN_BOOK_MNIST_ACCURACY = 90.31


def run_one(exp, data, timing=None):
    """Train one configuration; returns the test accuracy in %. ``timing`` (a dict) receives the epochs
    trained and the training seconds (evaluations not counted)."""
    net = NeuralNetwork(exp.layers(), loss=exp.make_loss(), seed=SEED)
    return _run(net, exp.make_optim(), data, exp.epochs, 10, SEED, timing)


def run_cnn(data, timing=None):
    """The book's chapter 5 run: one epoch of the CNN (batch 60, SGDMomentum 0.1, seed 20190402); test accuracy %."""
    from fastdl.cli.demos import build_cnn

    net, optim = build_cnn()
    return _run(net, optim, data, 1, 1, 20190402, timing)


def _run(net, optim, data, epochs, eval_every, seed, timing):
    from fastdl.cli.demos import train_network

    acc, _, trainer = train_network(net, optim, data, epochs, eval_every, 60, seed)
    if timing is not None:
        timing.update(epochs=trainer.epochs_trained, seconds=trainer.train_seconds)
    return 100.0 * acc


def run_all(progress=print, data_name="digits", data_dir=None):
    """Run every experiment, then the chapter 5 CNN, on ``data_name``; returns a list of row dicts
    (number, network, loss, optimizer, accuracy %, book's MNIST accuracy %, epochs, seconds per epoch)."""
    from fastdl.cli.training import load_data

    flat = load_data(data_name, data_dir, images=False)
    rows = []
    if progress:
        progress(f"{'#':>3}  {'network':<48} {'loss':<15} {'optimizer':<10} {data_name:>13} {'book MNIST':>10} "
                 f"{'epochs':>6} {'s/epoch':>8}")

    def report(row):
        rows.append(row)
        if progress:
            progress(f"{row['number']:>3}  {row['network']:<48} {row['loss']:<15} {row['optimizer']:<10} "
                     f"{row['accuracy']:12.2f}% {row['book_mnist_accuracy']:9.2f}% {row['epochs']:6d} "
                     f"{row['seconds_per_epoch']:8.2f}")

    for exp in experiments():
        timing = {}
        acc = run_one(exp, flat, timing)
        report({"number": exp.number, "network": exp.network, "loss": exp.loss, "optimizer": exp.optimizer,
                "accuracy": acc, "book_mnist_accuracy": exp.book_mnist_accuracy, "epochs": timing["epochs"],
                "seconds_per_epoch": timing["seconds"] / max(timing["epochs"], 1)})
    side = int(round(np.sqrt(flat[0].shape[1])))
    images = tuple(a.reshape(-1, 1, side, side) if i % 2 == 0 else a for i, a in enumerate(flat))
    timing = {}
    acc = run_cnn(images, timing)
    report({"number": "ch5", "network": "Conv2D(16, 5x5, Tanh, dropout 0.8) -> 10", "loss": "SCE",
            "optimizer": "momentum", "accuracy": acc, "book_mnist_accuracy": CNN_BOOK_MNIST_ACCURACY,
            "epochs": timing["epochs"], "seconds_per_epoch": timing["seconds"] / max(timing["epochs"], 1)})
    return rows
