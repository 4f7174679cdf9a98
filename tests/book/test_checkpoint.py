"""Trainer.fit's checkpoints: a run stopped at any batch and restarted from its checkpoint reaches exactly the
weights, optimizer state, history and early-stopping record of a run that never stopped; bad arguments and
files are refused."""

import numpy as np
import pytest

from fastdl import checkpoint
from fastdl.activations import Linear, Tanh
from fastdl.layers import Conv2D, Dense
from fastdl.losses import SoftmaxCrossEntropy
from fastdl.network import NeuralNetwork
from fastdl.optimizers import SGD, AdaGrad, SGDMomentum
from fastdl.train import Trainer


class Stop(Exception):
    pass


class StoppingTrainer(Trainer):
    """Raises after ``stop_after`` batches: a run killed in the middle."""

    def __init__(self, net, optim, stop_after):
        super().__init__(net, optim)
        self.stop_after, self.done = stop_after, 0

    def _train_step(self, X_batch, y_batch, batches):
        if self.done == self.stop_after:
            raise Stop()
        self.done += 1
        return super()._train_step(X_batch, y_batch, batches)


def _data(n=101, conv=False):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((n, 1, 6, 6) if conv else (n, 12)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, size=n)]
    return X, y


def _net(conv=False):
    if conv:
        layers = [Conv2D(2, 3, dropout=0.8, flatten=True, activation=Tanh()), Dense(3, activation=Linear())]
    else:
        layers = [Dense(9, activation=Tanh(), dropout=0.7), Dense(3, activation=Linear())]
    return NeuralNetwork(layers, loss=SoftmaxCrossEntropy(), seed=3)


OPTIMIZERS = {"sgd": lambda: SGD(0.05, final_lr=0.01, decay_type="linear"),
              "momentum": lambda: SGDMomentum(0.05, momentum=0.9, final_lr=0.005, decay_type="exponential"),
              "adagrad": lambda: AdaGrad(0.05)}
FIT = dict(epochs=4, eval_every=1, batch_size=10, seed=5)


def _run(trainer, X, y, **kwargs):
    return trainer.fit(X, y, X[:30], y[:30], **dict(FIT, **kwargs))


def _assert_same_state(a, b):
    for pa, pb in zip(a.net.params(), b.net.params()):
        np.testing.assert_array_equal(pa, pb)
    np.testing.assert_array_equal(a.optim.lr, b.optim.lr)
    for name in ("velocities", "sum_squares"):
        for va, vb in zip(getattr(a.optim, name, []), getattr(b.optim, name, [])):
            np.testing.assert_array_equal(va, vb)


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("stop_after", [1, 10, 11, 23, 30])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_resumed_run_equals_an_uninterrupted_one(tmp_path, optimizer, stop_after, early_stopping):
    X, y = _data()
    whole = Trainer(_net(), OPTIMIZERS[optimizer]())
    history = _run(whole, X, y, early_stopping=early_stopping)

    path = tmp_path / "run.npz"
    first = StoppingTrainer(_net(), OPTIMIZERS[optimizer](), stop_after)
    with pytest.raises(Stop):
        _run(first, X, y, early_stopping=early_stopping, checkpoint_every=1, checkpoint_path=path)
    again = Trainer(_net(), OPTIMIZERS[optimizer]())  # a new process: fresh objects, the same code
    resumed = _run(again, X, y, early_stopping=early_stopping, checkpoint_every=1, checkpoint_path=path)

    _assert_same_state(again, whole)
    assert [(h["epoch"], h["loss"], h["accuracy"]) for h in resumed] == \
        [(h["epoch"], h["loss"], h["accuracy"]) for h in history]
    assert (again.best_epoch, again.best_loss) == (whole.best_epoch, whole.best_loss)
    assert again.epochs_trained == whole.epochs_trained


def test_checkpoint_every_k_batches_resumes_from_the_last_one(tmp_path):
    """With K = 7 a run stopped after 19 batches resumes from batch 14 and redoes 14..18 identically."""
    X, y = _data(conv=True)
    whole = Trainer(_net(conv=True), SGDMomentum(0.05, momentum=0.9))
    _run(whole, X, y)
    path = tmp_path / "conv.npz"
    first = StoppingTrainer(_net(conv=True), SGDMomentum(0.05, momentum=0.9), 19)
    with pytest.raises(Stop):
        _run(first, X, y, checkpoint_every=7, checkpoint_path=path)
    _, meta = checkpoint.load_checkpoint(path)
    assert (meta["epoch"], meta["batch"], meta["finished"]) == (1, 3, False)  # 11 batches per epoch: 14 = 11 + 3
    again = Trainer(_net(conv=True), SGDMomentum(0.05, momentum=0.9))
    _run(again, X, y, checkpoint_every=7, checkpoint_path=path)
    _assert_same_state(again, whole)
    _, meta = checkpoint.load_checkpoint(path)
    assert meta["finished"] and meta["epoch"] == 4


def test_finished_checkpoint_starts_a_fresh_run(tmp_path):
    X, y = _data()
    path = tmp_path / "done.npz"
    a = Trainer(_net(), SGD(0.05))
    _run(a, X, y, checkpoint_every=5, checkpoint_path=path)
    b = Trainer(_net(), SGD(0.05))
    _run(b, X, y, checkpoint_every=5, checkpoint_path=path)
    _assert_same_state(a, b)  # b trained all 4 epochs again from its own start, not 0 more from a's end


def test_checkpoint_of_another_run_is_refused(tmp_path):
    X, y = _data()
    path = tmp_path / "run.npz"
    with pytest.raises(Stop):
        _run(StoppingTrainer(_net(), SGD(0.05), 5), X, y, checkpoint_every=1, checkpoint_path=path)
    with pytest.raises(ValueError, match="checkpoint .* is of another run.*batch_size"):
        _run(Trainer(_net(), SGD(0.05)), X, y, batch_size=20, checkpoint_every=1, checkpoint_path=path)


def test_resume_message_is_printed(tmp_path, capsys):
    X, y = _data()
    path = tmp_path / "run.npz"
    with pytest.raises(Stop):
        _run(StoppingTrainer(_net(), SGD(0.05), 13), X, y, checkpoint_every=4, checkpoint_path=path)
    capsys.readouterr()
    _run(Trainer(_net(), SGD(0.05)), X, y, checkpoint_every=4, checkpoint_path=path)
    assert f"Resuming from {path}: epoch 2, batch 2" in capsys.readouterr().out


@pytest.mark.parametrize("every", [-1, 1.5, "3", True])
def test_bad_checkpoint_every(tmp_path, every):
    X, y = _data()
    with pytest.raises(ValueError, match="checkpoint_every must be an int >= 0"):
        _run(Trainer(_net(), SGD(0.05)), X, y, checkpoint_every=every, checkpoint_path=tmp_path / "x.npz")


def test_checkpoint_every_needs_a_path():
    X, y = _data()
    with pytest.raises(ValueError, match="needs a checkpoint_path"):
        _run(Trainer(_net(), SGD(0.05)), X, y, checkpoint_every=3)


@pytest.mark.parametrize("content", [b"", b"not a zip", b"PK\x03\x04 truncated"])
def test_damaged_checkpoint_is_refused(tmp_path, content):
    X, y = _data()
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a readable fastdl checkpoint"):
        _run(Trainer(_net(), SGD(0.05)), X, y, checkpoint_every=3, checkpoint_path=path)


def test_checkpoint_holds_no_pickled_objects(tmp_path):
    X, y = _data()
    path = tmp_path / "run.npz"
    _run(Trainer(_net(), AdaGrad(0.05)), X, y, checkpoint_every=3, checkpoint_path=path)
    with np.load(path, allow_pickle=False) as archive:  # raises on any object array
        for name in archive.files:
            assert archive[name].dtype != object


def test_fit_without_checkpoints_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    X, y = _data()
    _run(Trainer(_net(), SGD(0.05)), X, y)
    assert list(tmp_path.iterdir()) == []
