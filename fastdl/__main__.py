"""Command line: ``python -m fastdl train mlp [--epochs N] [--backend NAME] [--seed S]``.

``train mlp`` runs the book's chapter-4 MLP (Dense(89, Tanh) -> Dense(10, Linear), both glorot,
SoftmaxCrossEntropy, SGDMomentum with exponential decay) on the 8x8 digits and prints the test
accuracy and the training time. Subcommands are argparse sub-parsers, so more (``bench``, ``info``)
can be added beside ``train``.
"""

import argparse
import sys
import time


def build_mlp(seed: int = 20190119, dtype=None):
    """The chapter-4 network and optimizer: 89 Tanh (glorot) -> 10 Linear (glorot), SCE, exp decay."""
    import numpy as np

    from fastdl.activations import Linear, Tanh
    from fastdl.layers import Dense
    from fastdl.losses import SoftmaxCrossEntropy
    from fastdl.network import NeuralNetwork
    from fastdl.optimizers import SGDMomentum

    dtype = np.float32 if dtype is None else dtype
    net = NeuralNetwork(
        layers=[Dense(neurons=89, activation=Tanh(), weight_init="glorot", dtype=dtype),
                Dense(neurons=10, activation=Linear(), weight_init="glorot", dtype=dtype)],
        loss=SoftmaxCrossEntropy(), seed=seed)
    optim = SGDMomentum(lr=0.2, momentum=0.9, final_lr=0.05, decay_type="exponential")
    return net, optim


def accuracy(net, X, y_onehot) -> float:
    """Fraction of rows whose arg-max prediction (inference mode) matches the one-hot target."""
    import numpy as np

    preds = np.argmax(net.forward(X, inference=True), axis=1)
    return float(np.mean(preds == np.argmax(y_onehot, axis=1)))


def train_mlp(epochs: int = 50, seed: int = 20190119, eval_every: int = 10, batch_size: int = 60,
              verbose: bool = False, dtype=None):
    """Train the chapter-4 MLP on the digits; returns ``(test_accuracy, seconds, trainer)``."""
    import contextlib
    import io

    from fastdl.datasets import digits
    from fastdl.train import Trainer

    X_train, y_train, X_test, y_test = digits() if dtype is None else digits(dtype=dtype)
    net, optim = build_mlp(seed, dtype)
    trainer = Trainer(net, optim)
    sink = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    start = time.perf_counter()
    with sink:
        trainer.fit(X_train, y_train, X_test, y_test, epochs=epochs, eval_every=eval_every,
                    batch_size=batch_size, seed=seed)
    seconds = time.perf_counter() - start
    return accuracy(trainer.net, X_test, y_test), seconds, trainer


def _cmd_train(args) -> int:
    import fastdl

    if args.backend:
        fastdl.set_backend(args.backend)
    acc, seconds, trainer = train_mlp(epochs=args.epochs, seed=args.seed, verbose=True)
    print(f"backend: {fastdl.get_backend()}")
    print(f"model: {args.model} (64 -> 89 Tanh -> 10), best epoch {trainer.best_epoch}")
    print(f"test accuracy: {acc:.4f}")
    print(f"training time: {seconds:.2f} s")
    return 0


def make_parser() -> argparse.ArgumentParser:
    """The ``python -m fastdl`` argument parser (one sub-parser per command)."""
    parser = argparse.ArgumentParser(prog="python -m fastdl",
                                     description="fastdl command line: train the book's models.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = commands.add_parser("train", help="train a book model on the bundled digits")
    train.add_argument("model", choices=["mlp"], help="mlp: the chapter-4 network")
    train.add_argument("--epochs", type=int, default=50, help="epochs (default 50)")
    train.add_argument("--backend", choices=["numpy", "cpu", "cuda", "auto"], default=None,
                       help="kernel backend (default: FASTDL_BACKEND or auto)")
    train.add_argument("--seed", type=int, default=20190119, help="network and fit seed")
    train.set_defaults(func=_cmd_train)
    return parser


def main(argv=None) -> int:
    args = make_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
