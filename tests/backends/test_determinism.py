"""Same seed, same everything: initial weights, every training loss and the final weights are
bit-for-bit identical across two runs on the CPU, Dropout included, in one process or in two."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastdl
from fastdl import io
from fastdl.activations import ReLU, Tanh
from fastdl.layers import Conv2D, Dense
from fastdl.losses import SoftmaxCrossEntropy
from fastdl.network import NeuralNetwork
from fastdl.optimizers import SGDMomentum
from fastdl.train import Trainer
from conftest import ACCELERATED

BACKENDS = ["numpy"] + [b for b in ACCELERATED if b == "cpu"]


def _data(n=48):
    rng = np.random.default_rng(2024)  # the data is fixed; only the model seed varies
    x = rng.standard_normal((n, 1, 6, 6)).astype(np.float32)
    labels = (x.reshape(n, -1).sum(axis=1) > 0).astype(int) + 2 * (x[:, 0, 0, 0] > 0)
    return x, np.eye(4, dtype=np.float32)[labels]


def _net(seed):
    return NeuralNetwork([Conv2D(2, 3, activation=Tanh(), flatten=True, dropout=0.8),
                          Dense(16, ReLU(), dropout=0.7), Dense(4)], loss=SoftmaxCrossEntropy(), seed=seed)


def run(seed, backend):
    """Train for 3 epochs of shuffled mini-batches; returns (initial params, losses, final params)."""
    x, y = _data()
    with fastdl.use_backend(backend):
        net = _net(seed)
        optim = SGDMomentum(lr=0.05, momentum=0.9)
        optim.net = net
        net.forward(x[:1])
        initial = [p.copy() for p in net.params()]
        order_rng = np.random.default_rng(seed)
        losses = []
        for _ in range(3):
            order = order_rng.permutation(len(x))
            for start in range(0, len(x), 8):
                idx = order[start:start + 8]
                losses.append(net.train_batch(x[idx], y[idx]))
                optim.step()
        return initial, np.array(losses), [p.copy() for p in net.params()]


def _same(a, b):
    return len(a) == len(b) and all(np.array_equal(p, q) for p, q in zip(a, b))


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_seed_same_run(backend):
    init1, losses1, final1 = run(7, backend)
    init2, losses2, final2 = run(7, backend)
    assert _same(init1, init2), "initial weights differ"
    np.testing.assert_array_equal(losses1, losses2)
    assert _same(final1, final2), "final weights differ"
    assert np.all(np.isfinite(losses1)) and losses1[-1] < losses1[0] * 1.5


def test_different_seed_different_run():
    init1, losses1, _ = run(7, BACKENDS[-1])
    init2, losses2, _ = run(8, BACKENDS[-1])
    assert not _same(init1, init2)
    assert not np.array_equal(losses1, losses2)


def test_dropout_masks_follow_the_seed():
    x = np.ones((4, 10), np.float32)
    masks = []
    for seed in (3, 3, 4):
        layer = Dense(10, dropout=0.5)
        layer.seed = seed
        layer.forward(x)
        masks.append(layer.operations[-1].mask.copy())
    np.testing.assert_array_equal(masks[0], masks[1])
    assert not np.array_equal(masks[0], masks[2])


def test_trainer_fit_is_deterministic(capsys):
    x, y = _data()
    finals = []
    for _ in range(2):
        net = _net(seed=5)
        Trainer(net, SGDMomentum(lr=0.05, momentum=0.9)).fit(x[:40], y[:40], x[40:], y[40:], epochs=4,
                                                             eval_every=2, batch_size=8, seed=11,
                                                             early_stopping=False)
        finals.append([p.copy() for p in net.params()])
    log = capsys.readouterr().out.splitlines()
    assert _same(finals[0], finals[1])
    assert log[: len(log) // 2] == log[len(log) // 2:], "the two fits printed different validation losses"


def test_same_result_in_another_process(tmp_path):
    """A fresh interpreter (new hash seed, new allocator state) trains to the very same weights."""
    backend = BACKENDS[-1]
    script = textwrap.dedent(f"""
        import sys
        sys.path[:0] = [{os.path.dirname(__file__)!r}, {os.path.dirname(os.path.dirname(__file__))!r}]
        import numpy as np
        from test_determinism import run
        init, losses, final = run(7, {backend!r})
        np.savez({str(tmp_path / 'other.npz')!r}, losses=losses, *final)
    """)
    env = dict(os.environ, PYTHONHASHSEED="123")
    subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=os.path.dirname(__file__), timeout=120)
    _, losses, final = run(7, backend)
    with np.load(tmp_path / "other.npz") as other:
        np.testing.assert_array_equal(other["losses"], losses)
        assert _same([other[f"arr_{i}"] for i in range(len(final))], final)
    net = _net(seed=7)
    net.forward(_data()[0][:1])
    io.save(net, tmp_path / "w.npz")  # and the saved file is the same bytes twice
    io.save(net, tmp_path / "w2.npz")
    assert (tmp_path / "w.npz").read_bytes() == (tmp_path / "w2.npz").read_bytes()
