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


def _cmd_bench(args) -> int:
    import importlib.util

    import fastdl
    from fastdl import bench

    if args.plot and importlib.util.find_spec("matplotlib") is None:
        print("error: --plot needs matplotlib: pip install 'fastdl[examples]' (or pip install matplotlib)",
              file=sys.stderr)
        return 2
    backend = args.backend or fastdl.get_backend()
    if backend == "auto":
        backend = fastdl.use_backend("auto").__enter__()
    print(f"fastdl bench: numpy reference vs {backend}, fp32, {fastdl.get_num_threads()} threads"
          f"{' (quick)' if args.quick else ''}")
    print(bench.HEADER)
    start = time.perf_counter()
    rows = bench.run(backend=backend, quick=args.quick)
    print(f"took {time.perf_counter() - start:.1f} s")
    if args.json:
        bench.write_json(rows, args.json)
        print(f"wrote {args.json}")
    if args.plot:
        bench.write_plot(rows, args.plot)
        print(f"wrote {args.plot}")
    return 0


def _cmd_info(args) -> int:
    import json

    import fastdl
    from fastdl import bench

    info = bench.machine_info()
    if fastdl.backend.cpu_available():
        from fastdl import _core

        info["cpu_features"] = {k: v for k, v in _core.cpu_features().items() if v}
        info["gemm_kernels_available"] = _core.gemm_kernels()
    try:
        from fastdl.cuda import _compat

        info["numba"] = _compat.HAVE_NUMBA
        info["cuda_simulator"] = bool(_compat.HAVE_NUMBA and _compat.simulator())
        info["real_gpu"] = bool(_compat.HAVE_NUMBA and _compat.real_gpu())
    except Exception as exc:  # the cuda package must never break `info`
        info["cuda"] = f"unavailable ({exc})"
    print(json.dumps(info, indent=2))
    fastdl.show_config()
    return 0


def make_parser() -> argparse.ArgumentParser:
    """The ``python -m fastdl`` argument parser (one sub-parser per command)."""
    parser = argparse.ArgumentParser(prog="python -m fastdl",
                                     description="fastdl command line: train the book's models, benchmark, inspect.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = commands.add_parser("train", help="train a book model on the bundled digits")
    train.add_argument("model", choices=["mlp"], help="mlp: the chapter-4 network")
    train.add_argument("--epochs", type=int, default=50, help="epochs (default 50)")
    train.add_argument("--backend", choices=["numpy", "cpu", "cuda", "auto"], default=None,
                       help="kernel backend (default: FASTDL_BACKEND or auto)")
    train.add_argument("--seed", type=int, default=20190119, help="network and fit seed")
    train.set_defaults(func=_cmd_train)

    bench = commands.add_parser("bench", help="time every kernel family against the NumPy reference")
    bench.add_argument("--quick", action="store_true", help="fewer shapes and rounds (under 30 s)")
    bench.add_argument("--json", metavar="PATH", help="write the rows and the machine facts as JSON")
    bench.add_argument("--plot", metavar="PATH", help="write a PNG bar chart of the speedups (needs matplotlib)")
    bench.add_argument("--backend", choices=["cpu", "cuda", "numpy", "auto"], default=None,
                       help="backend to compare with the reference (default: the current one)")
    bench.set_defaults(func=_cmd_bench)

    info = commands.add_parser("info", help="versions, CPU features, kernels chosen, threads, GPU")
    info.set_defaults(func=_cmd_info)
    return parser


def main(argv=None) -> int:
    args = make_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
