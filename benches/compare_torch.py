"""fastdl's cpu backend against PyTorch's CPU build (oneDNN) on the issues' workloads, in ONE process.

    python benches/compare_torch.py [--rounds N] [--data DIR] [--only TEXT]
                                    [--json benches/results/torch_cpu_2core.json]

Kernel-sized workloads (one layer's forward and backward), then the book's three models end to end:
the ch4 MLP and ch5 CNN one whole epoch through ``Trainer.fit`` and the ch6 LSTM model step (the models
and their PyTorch twins are those of ``benches/train_epoch.py``), on Fashion-MNIST's 60,000 images when
``--data`` or the folder of Debian's ``dataset-fashion-mnist`` holds its IDX files, else on random
images of the same shape.

Both libraries run with 2 threads, fp32, on the same arrays. Timing alternates BLOCKS of calls between
the contenders, with a pause before each block: OpenBLAS's and OpenMP's worker threads spin for ~0.1 s
after a call and would slow down whichever library runs right after them. Each block (the same
``fastdl.cli.bench.block_time`` as ``fastdl bench``) has warm-up calls and then enough calls to fill ~50 ms.
The times are medians over the rounds of the per-call block
means; the ratio is the median over the rounds of torch's block mean over fastdl's in the same round
(neighbouring blocks share the machine's momentary load, which on a shared machine drifts by +-15% over
tens of seconds). PyTorch is only a rival here (``pip install torch``), never a fastdl dependency.
"""

import argparse
import json
import time

import numpy as np

import fastdl
from fastdl.activations import ReLU, Sigmoid, Tanh
from fastdl.cli.bench import block_time, machine_info
from fastdl.layers import Conv2D, Dense
from fastdl.rnn import GRULayer, LSTMLayer, RNNLayer

PAUSE_S = 0.25
BLOCK_S = 0.05


def one_call_time(call, pause, _budget):
    """Seconds of ONE call after a pause: a whole epoch is its own block."""
    time.sleep(pause)
    t0 = time.perf_counter()
    call()
    return time.perf_counter() - t0


def interleaved_times(contenders, rounds, whole_runs=False):
    """{name: [seconds per call, one per round]} for {name: zero-argument callable}, blocks alternating.
    ``whole_runs``: each call is a whole epoch, timed once per round after one untimed warm-up call."""
    times = {name: [] for name in contenders}
    for call in contenders.values():  # first calls set up caches, thread pools and autograd: not timed
        for _ in range(1 if whole_runs else 3):
            call()
    block = one_call_time if whole_runs else block_time
    for _ in range(rounds):
        for name, call in contenders.items():
            times[name].append(block(call, PAUSE_S, BLOCK_S))
    return {name: np.array(t) for name, t in times.items()}


def fastdl_layer_step(layer, x):
    """Forward then backward of a fastdl layer with a ones upstream gradient."""
    grad = np.ones_like(layer.forward(x))

    def step():
        layer.forward(x)
        return layer.backward(grad)
    return step


def conv_case(torch, c_in, c_out, k, hw, act_name, rng):
    act = {"tanh": Tanh, "relu": ReLU}[act_name]
    layer = Conv2D(c_out, k, activation=act())
    layer.seed = 1
    x = rng.standard_normal((32, c_in, hw, hw)).astype(np.float32)
    ours = fastdl_layer_step(layer, x)
    weight = torch.from_numpy(np.ascontiguousarray(layer.params[0].transpose(1, 0, 2, 3)))  # (C_out, C_in, K, K)
    xt = torch.from_numpy(x)
    t_act = getattr(torch, act_name)

    def theirs():
        xx, ww = xt.detach().requires_grad_(True), weight.detach().requires_grad_(True)
        y = t_act(torch.nn.functional.conv2d(xx, ww, padding=k // 2))
        y.backward(torch.ones_like(y))
    return f"Conv2D {c_in}->{c_out} k{k} {hw}x{hw} b32 {act_name} fwd+bwd", ours, theirs


def recurrent_case(torch, kind, rng):
    """fastdl.rnn.<Kind>Layer(256, 128) (cell + Linear read-out) vs nn.<Kind>(128, 256) + nn.Linear(256, 128)."""
    B, T, F, H, O = 64, 35, 128, 256, 128
    layer = {"LSTM": LSTMLayer, "GRU": GRULayer, "RNN": RNNLayer}[kind](H, O, weight_scale=0.05, dtype=np.float32)
    layer.seed = 1
    x = rng.standard_normal((B, T, F)).astype(np.float32)

    def ours_step():
        layer.reset_state()
        layer.forward(x)
        return layer.backward(grad)
    grad = np.ones((B, T, O), np.float32)
    cell = getattr(torch.nn, kind)(F, H, batch_first=True)
    readout = torch.nn.Linear(H, O)
    xt, gt = torch.from_numpy(x), torch.from_numpy(grad)

    def theirs():
        xx = xt.detach().requires_grad_(True)
        out, _ = cell(xx)
        readout(out).backward(gt)
    return f"{kind}Layer(256, 128) fwd+bwd B{B} T{T} F{F}", ours_step, theirs


def dense_case(torch, rng):
    layer = Dense(256, activation=Sigmoid())
    layer.seed = 1
    x = rng.standard_normal((64, 784)).astype(np.float32)
    ours = fastdl_layer_step(layer, x)
    linear = torch.nn.Linear(784, 256)
    xt = torch.from_numpy(x)

    def theirs():
        xx = xt.detach().requires_grad_(True)
        y = torch.sigmoid(linear(xx))
        y.backward(torch.ones_like(y))
    return "Dense(256, Sigmoid) fwd+bwd 64x784", ours, theirs


def cross_entropy_case(torch, rng):
    logits = (rng.standard_normal((4096, 1000)) * 3).astype(np.float32)
    labels = rng.integers(0, 1000, size=4096)
    lt, yt = torch.from_numpy(logits), torch.from_numpy(labels)

    def theirs():
        leaf = lt.detach().requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(leaf, yt)
        loss.backward()
        return loss.item()
    return "cross_entropy 4096x1000 labels, loss+grad", lambda: fastdl.kernels.cross_entropy(logits, labels), theirs


def model_cases(torch, data, rng, only=None):
    """The book's three models end to end: (name, fastdl call, torch call), one epoch or one step per call."""
    from train_epoch import fastdl_epoch, load_data, torch_epoch, torch_lstm_step

    from fastdl.cli.profile import lstm_step

    names = {"mlp": "ch4 MLP 784-89-10, one epoch b60", "cnn": "ch5 CNN conv16k5+dense10, one epoch b60",
             "lstm": "ch6 LSTM256x2 model step T25 b32 V62"}
    wanted = [model for model, name in names.items() if not only or only in name]
    if not wanted:
        return []
    X, y, source = load_data(data) if set(wanted) - {"lstm"} else (None, None, "")
    suffix = " (Fashion-MNIST)" if source.startswith("Fashion") else " (stand-in)"
    cases = []
    for model in wanted:
        if model == "lstm":
            cases.append((names[model], lstm_step(), torch_lstm_step(torch, rng)))
        else:
            cases.append((names[model] + suffix, fastdl_epoch(model, X, y), torch_epoch(torch, model, X, y)))
    return cases


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--json", help="write the table here")
    parser.add_argument("--only", help="run only the workloads whose name contains this")
    parser.add_argument("--data", help="folder of Fashion-MNIST's IDX files for the model rows "
                                       "(default: Debian's package folder when present, else a random stand-in)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    fastdl.set_num_threads(2)
    fastdl.set_backend("cpu")
    rng = np.random.default_rng(0)
    cases = [conv_case(torch, 1, 16, 5, 28, "tanh", rng), conv_case(torch, 16, 32, 3, 14, "relu", rng),
             recurrent_case(torch, "LSTM", rng), recurrent_case(torch, "GRU", rng),
             recurrent_case(torch, "RNN", rng), dense_case(torch, rng), cross_entropy_case(torch, rng)]
    cases += model_cases(torch, args.data, rng, args.only)
    rows = []
    print(f"{'workload':<56} {'fastdl ms':>10} {'torch ms':>10} {'torch/fastdl':>13} {'(min-max)':>12}")
    for name, ours, theirs in cases:
        if args.only and args.only not in name:
            continue
        t = interleaved_times({"fastdl": ours, "torch": theirs}, args.rounds, whole_runs="one epoch" in name)
        per_round = t["torch"] / t["fastdl"]
        rows.append({"workload": name, "fastdl_ms": float(np.median(t["fastdl"])) * 1e3,
                     "torch_ms": float(np.median(t["torch"])) * 1e3, "ratio": float(np.median(per_round)),
                     "ratio_min": float(per_round.min()), "ratio_max": float(per_round.max())})
        row = rows[-1]
        print(f"{name:<56} {row['fastdl_ms']:10.3f} {row['torch_ms']:10.3f} {row['ratio']:12.2f}x "
              f"({row['ratio_min']:.2f}-{row['ratio_max']:.2f})", flush=True)
    if args.json:
        result = {"machine": dict(machine_info(), torch=torch.__version__), "dtype": "float32", "rounds": args.rounds,
                  "method": "interleaved blocks, 0.25 s pause before each; times: medians of per-round block "
                            "means; ratio: median of per-round torch/fastdl",
                  "rows": rows}
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
