"""The book's three models trained end to end, fastdl's cpu backend against PyTorch's CPU build, in ONE process.

    python benches/train_epoch.py [--data DIR] [--rounds N] [--only mlp|cnn|lstm] [--json PATH]

- ch4 MLP (784 -> 89 tanh -> 10, glorot) and ch5 CNN (Conv2D(16, 5, tanh, glorot, dropout 0.8, flatten) +
  Dense(10)): one epoch of batch 60 through the book's ``Trainer.fit`` (shuffle, batches, train_batch,
  SGDMomentum(0.1, momentum 0.9) step), against the same model in PyTorch eager with ``torch.optim.SGD``
  and an index-gathered batch per step.
- ch6 LSTM(256) + LSTM(256) model step at T 25, batch 32, vocabulary 62: ``single_step`` + ``optim.step``,
  against ``nn.LSTM`` + ``nn.Linear`` layers of the same sizes.

The data is Fashion-MNIST's 60,000 training images when ``--data`` (or the folder of Debian's package
``dataset-fashion-mnist``) holds its IDX files; otherwise a stand-in of random images of the same shape.
Both libraries run with the same thread count. Contenders alternate round by round; each timed call
follows a short pause, so the other library's spinning workers are gone (each is timed alone). The
figures are medians over the rounds; the ratio is the median of per-round ratios.
"""

import argparse
import json
import os
import statistics
import time

import numpy as np

import fastdl
from fastdl.cli.bench import machine_info
from fastdl.cli.profile import lstm_step

DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
PAUSE_S = 0.3


def load_data(folder, n_stand_in=60000):
    """(X_train (N, 784) float32, y_train one-hot (N, 10), source name)."""
    folder = folder or (DEBIAN_FASHION_MNIST if os.path.isdir(DEBIAN_FASHION_MNIST) else None)
    if folder:
        from fastdl.datasets import mnist

        X, y, _, _ = mnist(folder)
        return X, y, f"Fashion-MNIST from {folder}"
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n_stand_in, 784)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, size=n_stand_in)]
    return X, y, "random stand-in of Fashion-MNIST's shape"


# -- fastdl ------------------------------------------------------------------------------------------
def fastdl_epoch(model, X, y):
    """One epoch of batch 60 through the book's Trainer; returns a zero-argument callable."""
    from fastdl.activations import Linear, Tanh
    from fastdl.layers import Conv2D, Dense
    from fastdl.losses import SoftmaxCrossEntropy
    from fastdl.network import NeuralNetwork
    from fastdl.optimizers import SGDMomentum
    from fastdl.train import Trainer

    if model == "mlp":
        layers = [Dense(89, activation=Tanh(), weight_init="glorot"),
                  Dense(10, activation=Linear(), weight_init="glorot")]
    else:
        X = X.reshape(-1, 1, 28, 28)
        layers = [Conv2D(16, 5, dropout=0.8, weight_init="glorot", flatten=True, activation=Tanh()),
                  Dense(10, activation=Linear())]
    net = NeuralNetwork(layers, loss=SoftmaxCrossEntropy(), seed=20190402)
    trainer = Trainer(net, SGDMomentum(0.1, momentum=0.9))
    seeds = iter(range(10**6))

    def epoch():
        trainer.fit(X, y, X[:60], y[:60], epochs=1, eval_every=2, batch_size=60, seed=next(seeds),
                    restart=False, early_stopping=False)
    return epoch


# -- PyTorch -----------------------------------------------------------------------------------------
def torch_epoch(torch, model, X, y):
    nn = torch.nn
    torch.manual_seed(0)
    if model == "mlp":
        net = nn.Sequential(nn.Linear(784, 89), nn.Tanh(), nn.Linear(89, 10))
        Xt = torch.from_numpy(X)
    else:
        net = nn.Sequential(nn.Conv2d(1, 16, 5, padding=2, bias=False), nn.Tanh(), nn.Dropout(0.2),
                            nn.Flatten(), nn.Linear(16 * 28 * 28, 10))
        Xt = torch.from_numpy(X.reshape(-1, 1, 28, 28))
    labels = torch.from_numpy(np.argmax(y, axis=1))
    optim = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def epoch():
        perm = torch.randperm(Xt.shape[0])
        for i in range(0, Xt.shape[0], 60):
            idx = perm[i:i + 60]
            optim.zero_grad(set_to_none=True)
            loss_fn(net(Xt[idx]), labels[idx]).backward()
            optim.step()
    return epoch


def torch_lstm_step(torch, rng):
    nn = torch.nn
    vocab, steps, batch = 62, 25, 32
    torch.manual_seed(0)
    lstm1, out1 = nn.LSTM(vocab, 256, batch_first=True), nn.Linear(256, 128)
    lstm2, out2 = nn.LSTM(128, 256, batch_first=True), nn.Linear(256, vocab)
    params = [p for m in (lstm1, out1, lstm2, out2) for p in m.parameters()]
    optim = torch.optim.SGD(params, lr=0.01)
    x = torch.from_numpy(np.eye(vocab, dtype=np.float32)[rng.integers(0, vocab, size=(batch, steps))])
    target = torch.from_numpy(rng.integers(0, vocab, size=(batch * steps,)))

    def step():
        optim.zero_grad(set_to_none=True)
        h = out1(lstm1(x)[0])
        logits = out2(lstm2(h)[0]).reshape(-1, vocab)
        nn.functional.cross_entropy(logits, target).backward()
        torch.nn.utils.clip_grad_value_(params, 2.0)
        optim.step()
    return step


# -- timing ------------------------------------------------------------------------------------------
def timed(call):
    time.sleep(PAUSE_S)
    t0 = time.perf_counter()
    call()
    return time.perf_counter() - t0


def compare(contenders, rounds, calls_per_round):
    """{name: [seconds per call]} with the contenders alternating round by round."""
    for call in contenders.values():
        call()  # set-up, caches and thread pools: not timed
    times = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, call in contenders.items():
            times[name].append(statistics.median(timed(call) for _ in range(calls_per_round)))
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="folder of the MNIST-format IDX files (default: Debian's Fashion-MNIST)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", choices=["mlp", "cnn", "lstm"])
    parser.add_argument("--json", help="write the table here")
    args = parser.parse_args(argv)

    import torch

    threads = fastdl.get_num_threads()
    torch.set_num_threads(threads)
    X, y, source = load_data(args.data)
    rng = np.random.default_rng(0)
    rows = []
    for model in ("mlp", "cnn", "lstm"):
        if args.only and model != args.only:
            continue
        with fastdl.use_backend("cpu"):
            if model == "lstm":
                contenders = {"fastdl": lstm_step(), "torch": torch_lstm_step(torch, rng)}
                times = compare(contenders, args.rounds, 9)
            else:
                contenders = {"fastdl": fastdl_epoch(model, X, y), "torch": torch_epoch(torch, model, X, y)}
                times = compare(contenders, args.rounds, 1)
        ratios = [t / f for f, t in zip(times["fastdl"], times["torch"])]
        row = {"model": model, "unit": "s per epoch" if model != "lstm" else "s per step",
               "fastdl_s": statistics.median(times["fastdl"]), "torch_s": statistics.median(times["torch"]),
               "torch_over_fastdl": statistics.median(ratios), "rounds": args.rounds}
        rows.append(row)
        print(f"{model:5s} fastdl {row['fastdl_s']:.4f} s  torch {row['torch_s']:.4f} s  "
              f"ratio {row['torch_over_fastdl']:.2f}x", flush=True)
    if args.json:
        report = {"machine": machine_info(), "data": source, "threads": threads,
                  "torch": torch.__version__, "rows": rows}
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
