"""The command line: ``fastdl`` / ``python -m fastdl COMMAND``.

``train mlp|cnn [--data digits|fashion-mnist|mnist]`` trains the book's chapter-4 MLP (Dense(89, Tanh) ->
Dense(10, Linear), both glorot) or chapter-5 CNN with SoftmaxCrossEntropy and SGDMomentum, and prints the
test accuracy, the time per epoch and the images per second (``fastdl.cli.training``); ``train lstm`` the
chapter-6 character model. ``bench``, ``info`` and ``experiments`` are the other sub-parsers. Bad input is
reported on stderr with exit status 2, without a traceback.
"""

import argparse
import math
import sys
import time

from fastdl.cli.demos import train_lstm
from fastdl.cli.errors import CommandError, require_matplotlib, use_backend


def _train_lstm(args) -> int:
    import fastdl

    iterations = args.epochs if args.epochs is not None else 200
    loss, seconds, trainer = train_lstm(iterations=iterations, seed=args.seed, verbose=not args.progress,
                                        progress=args.progress)
    print(f"backend: {fastdl.get_backend()}")
    print(f"model: lstm (LSTMLayer(64) -> LSTMLayer(V={trainer.vocab_size})), {iterations} iterations "
          f"of batch {trainer.batch_size} x {trainer.sequence_length} characters")
    print(f"loss per character (mean of the last 50 steps): {loss:.3f}  (uniform guessing: "
          f"{_uniform_loss(trainer.vocab_size):.3f})")
    print(f"sample: {trainer.sample_output(0, 120, seed=args.seed)!r}")
    print(f"training time: {seconds:.2f} s")
    return 0


def _uniform_loss(vocab):
    import math

    return math.log(vocab) - (vocab - 1) * math.log(1 - 1 / vocab)


def _cmd_train(args) -> int:
    from fastdl.cli import training

    if args.backend:
        use_backend(args.backend)
    if args.model == "lstm":
        for flag, value in (("--distributed", args.distributed), ("--threads-per-rank", args.threads_per_rank),
                            ("--checkpoint", args.checkpoint), ("--checkpoint-every", args.checkpoint_every)):
            if value:
                raise CommandError(f"{flag} applies to mlp and cnn")
        return _train_lstm(args)
    return training.train(args)


def _cmd_bench(args) -> int:
    import fastdl
    from fastdl.cli import bench, bench_mixed

    if args.profile:
        return _profile(args)
    if args.plot:
        require_matplotlib()
    if args.backend and args.backend != "numpy":
        use_backend(args.backend)  # refuses a backend this machine cannot run, before any timing
    backend = args.backend or fastdl.get_backend()
    if backend == "auto":
        backend = fastdl.backend._resolve("auto")
    start = time.perf_counter()
    rows, mixed = [], None
    if not args.mixed_only:
        print(f"fastdl bench: numpy reference vs {backend}, fp32, {fastdl.get_num_threads()} threads"
              f"{' (quick)' if args.quick else ''}")
        print(bench.HEADER)
        rows = bench.run(backend=backend, quick=args.quick)
    if fastdl.backend.cpu_available() and backend != "numpy" and not args.no_mixed:
        print(f"\nfastdl in a NumPy loop: cpu kernels taking turns with NumPy"
              f"{' and PyTorch' if bench_mixed.torch_available() else ''} (no pause between calls; "
              f"ideal/turns = (t_fastdl alone + t_rival alone) / t_turns, 1.00 = no slowdown)")
        print(bench_mixed.PAIR_HEADER)
        pairs = bench_mixed.run_pairs(quick=args.quick)
        print("\nthe book's loop (its network, softmax cross-entropy, SGD momentum in NumPy) per training step")
        print(bench_mixed.STEP_HEADER)
        mixed = {"pairs": pairs, "networks": bench_mixed.run_networks(quick=args.quick)}
    print(f"took {time.perf_counter() - start:.1f} s")
    if args.json:
        bench.write_json(rows, args.json, mixed)
        print(f"wrote {args.json}")
    if args.plot and rows:
        bench.write_plot(rows, args.plot)
        print(f"wrote {args.plot}")
    return 0


def _profile(args) -> int:
    import json

    import fastdl
    from fastdl.cli import bench, profile

    if args.backend:
        use_backend(args.backend)
    report = profile.profile(args.profile, steps=10 if args.quick else 30)
    print(f"backend: {fastdl.get_backend()}, fp32, {fastdl.get_num_threads()} threads")
    print(profile.format_profile(report))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": bench.machine_info(), "profile": report}, f, indent=2)
        print(f"wrote {args.json}")
    return 0


def _cmd_info(args) -> int:
    import json

    import fastdl
    from fastdl.cli import bench
    from fastdl.cli.show_config import config_text, served_by

    info = bench.machine_info()
    if fastdl.backend.cpu_available():
        import fastdl._core as _core

        info["cpu_features"] = {k: v for k, v in _core.cpu_features().items() if v}
        info["gemm_kernels_available"] = _core.gemm_kernels()
    try:
        from fastdl.cuda import _compat

        info["numba"] = _compat.HAVE_NUMBA
        info["cuda_simulator"] = bool(_compat.HAVE_NUMBA and _compat.simulator())
        info["real_gpu"] = bool(_compat.HAVE_NUMBA and _compat.real_gpu())
    except Exception as exc:  # the cuda package must never break `info`
        info["cuda"] = f"unavailable ({exc})"
    if args.json:
        info["kernels_served_by"] = served_by()
        print(json.dumps(info, indent=2))
        return 0
    width = max(len(k) for k in info)
    for key, value in info.items():
        print(f"{key:<{width}}  {', '.join(map(str, value)) if isinstance(value, (list, dict)) else value}")
    print(config_text())
    return 0


def _cmd_experiments(args) -> int:
    import json

    from fastdl.cli import experiments

    start = time.perf_counter()
    rows = experiments.run_all(data_name=args.data, data_dir=args.data_dir)
    print(f"took {time.perf_counter() - start:.1f} s (the book's accuracies are on MNIST)")
    if args.json:
        from fastdl.cli import bench

        with open(args.json, "w") as f:
            json.dump({"machine": bench.machine_info(), "data": args.data, "rows": rows}, f, indent=2)
        print(f"wrote {args.json}")
    return 0


def _positive(kind):
    """An argparse type: ``kind`` (int or float) greater than zero."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a{'n integer' if kind is int else ' number'}") from None
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be a finite number greater than 0, got {text}")
        return value
    parse.__name__ = kind.__name__
    return parse


def make_parser() -> argparse.ArgumentParser:
    """The ``python -m fastdl`` argument parser (one sub-parser per command)."""
    from fastdl import __version__

    parser = argparse.ArgumentParser(prog="fastdl",
                                     description="fastdl command line: train the book's models, benchmark, inspect.")
    parser.add_argument("--version", action="version",
                        version=f"fastdl {__version__} (distribution fastdl-kernels)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = commands.add_parser("train", help="train a book model on the bundled digits, a 70,000-image data set, "
                                              "or the bundled text")
    train.add_argument("model", choices=["mlp", "cnn", "lstm"],
                       help="mlp: the chapter-4 network; cnn: the chapter-5 CNN; lstm: the chapter-6 char model")
    train.add_argument("--data", choices=["digits", "fashion-mnist", "mnist"], default=None,
                       help="mlp and cnn: the data set (default digits, bundled with scikit-learn; fashion-mnist and "
                            "mnist are found on disk or downloaded once, see --data-dir)")
    train.add_argument("--data-dir", metavar="DIR", default=None,
                       help="folder holding the data set's four IDX files (default: $FASTDL_DATA/<data>, the user "
                            "cache folder, Debian's dataset-fashion-mnist folder, else a download with pooch)")
    train.add_argument("--epochs", type=_positive(int), default=None,
                       help="epochs (default: the recipe's, e.g. 50 for mlp and 5 for cnn on the digits, 20 and "
                            "14 on the 28x28 data sets); for lstm, iterations (default 200)")
    train.add_argument("--batch-size", type=_positive(int), default=None,
                       help="mini-batch size (default 60 on the digits, 120 on the 28x28 data sets)")
    train.add_argument("--lr", type=_positive(float), default=None,
                       help="starting learning rate (the recipe's schedule is scaled to it)")
    train.add_argument("--json", metavar="PATH", help="write the run (settings, history, timings) as JSON")
    train.add_argument("--plot", metavar="PATH", help="draw the test loss and accuracy curves as a PNG (matplotlib)")
    train.add_argument("--progress", action="store_true",
                       help="per-batch progress bar (tqdm); shown anyway when the output is a terminal")
    train.add_argument("--backend", choices=["numpy", "cpu", "cuda", "auto"], default=None,
                       help="kernel backend (default: FASTDL_BACKEND or auto)")
    train.add_argument("--seed", type=int, default=20190119, help="network and fit seed")
    train.add_argument("--distributed", action="store_true",
                       help="mlp and cnn: data-parallel on every MPI rank (start with mpiexec -n N fastdl train ...; "
                            "needs the mpi extra); the batch size is the global one, divided among the ranks")
    train.add_argument("--threads-per-rank", type=_positive(int), default=None, metavar="N",
                       help="with --distributed: fastdl threads in each rank (default: OMP_NUM_THREADS, else the "
                            "CPUs a rank may use divided among the ranks on its machine that share them)")
    train.add_argument("--checkpoint", metavar="PATH", default=None,
                       help="mlp and cnn: save the whole training state here every --checkpoint-every batches and "
                            "at the end; a run started again with the same settings continues from it")
    train.add_argument("--checkpoint-every", type=_positive(int), default=None, metavar="K",
                       help="batches between checkpoints (default: one epoch's batches)")
    train.set_defaults(func=_cmd_train)

    bench = commands.add_parser("bench", help="time every kernel family against the NumPy reference")
    bench.add_argument("--quick", action="store_true", help="fewer shapes and rounds (under 30 s)")
    bench.add_argument("--json", metavar="PATH", help="write the rows and the machine facts as JSON")
    bench.add_argument("--plot", metavar="PATH", help="write a PNG bar chart of the speedups (needs matplotlib)")
    bench.add_argument("--backend", choices=["cpu", "cuda", "numpy", "auto"], default=None,
                       help="backend to compare with the reference (default: the current one)")
    section = bench.add_mutually_exclusive_group()
    section.add_argument("--mixed-only", action="store_true",
                         help="only the section where fastdl takes turns with NumPy / PyTorch (cpu backend)")
    section.add_argument("--no-mixed", action="store_true", help="only the kernels against the NumPy reference")
    section.add_argument("--profile", choices=["mlp", "cnn", "lstm"],
                         help="one training step of a book model, kernel by kernel, against this machine's "
                              "measured compute peak and copy bandwidth (the roofline)")
    bench.set_defaults(func=_cmd_bench)

    info = commands.add_parser("info", help="versions, CPU features, kernels chosen, threads, GPU")
    info.add_argument("--json", action="store_true", help="print only JSON (machine facts and kernels served by)")
    info.set_defaults(func=_cmd_info)

    experiments = commands.add_parser("experiments", help="the book's chapter 4 experiment table and chapter 5 "
                                                          "CNN, on the digits or a 70,000-image data set")
    experiments.add_argument("--data", choices=["digits", "fashion-mnist", "mnist"], default="digits",
                             help="the data set (default digits; the others as for train)")
    experiments.add_argument("--data-dir", metavar="DIR", default=None, help="folder of the data set's IDX files")
    experiments.add_argument("--json", metavar="PATH", help="write the table as JSON")
    experiments.set_defaults(func=_cmd_experiments)
    return parser


def main(argv=None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.command == "train" and args.model == "lstm":
        for flag, value in (("--data", args.data), ("--data-dir", args.data_dir), ("--batch-size", args.batch_size),
                            ("--lr", args.lr), ("--json", args.json), ("--plot", args.plot)):
            if value is not None:
                parser.error(f"train lstm: {flag} applies to mlp and cnn (lstm trains on the bundled text)")
    try:
        return args.func(args)
    except CommandError as exc:
        print(f"fastdl: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`fastdl info | head`): stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
