"""One training step of the book's chapter 5 CNN at batch 256, timed on the given backends.

    python benches/cnn_step.py --out benches/results/cnn_step_cpu_2core.json [--backends cpu numpy]

A step is what a user's loop runs: ``net.train_batch(X, y)`` then ``optim.step()``, with X a NumPy
batch of 256 1x28x28 images and y one-hot labels (on cuda the batch goes up and the loss comes back
each step). Each backend gets its own network with the same seed, is warmed up, then timed; the
figure is the median of the rounds. benches/gpu_suite.py runs the cuda step and divides this file's
cpu figure by it (the issue's goal compares the GPU with the cpu backend on the 2-core dev machine).
"""

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time

import numpy as np

if importlib.util.find_spec("fastdl") is None:    # not installed: run from the checkout
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

BATCH = 256


def cnn_step_ms(backend, rounds=15, warmup=3, batch=BATCH, sync=None):
    """Median milliseconds of one ch5 CNN training step on ``backend``; sync() runs before each clock read."""
    import fastdl
    from fastdl.cli.demos import build_cnn

    rng = np.random.default_rng(0)
    X = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, size=batch)]
    sync = sync or (lambda: None)
    with fastdl.use_backend(backend):
        net, optim = build_cnn()
        optim.net = net
        times = []
        for i in range(warmup + rounds):
            sync()
            t0 = time.perf_counter()
            loss = net.train_batch(X, y)
            optim.step()
            sync()
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1e3)
    assert np.isfinite(loss), f"{backend}: the loss is {loss}"
    return statistics.median(times), times


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="path of the JSON report")
    ap.add_argument("--backends", nargs="+", default=["cpu", "numpy"])
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()

    from fastdl.cli.bench import machine_info

    report = {"machine": machine_info(),
              "workload": f"ch5 CNN training step, batch {BATCH} of 1x28x28 (train_batch + optim.step)",
              "rows": []}
    for backend in args.backends:
        median, times = cnn_step_ms(backend, rounds=args.rounds)
        row = {"backend": backend, "median_ms": median, "min_ms": min(times), "max_ms": max(times),
               "rounds": len(times)}
        report["rows"].append(row)
        print(json.dumps(row), flush=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
