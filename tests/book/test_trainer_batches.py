"""The Trainer's gathered batches against the book's copy-and-slice path: the same rows in every batch, so
the same weights after training, bit for bit; evaluation in chunks gives the whole-set loss."""

import numpy as np
import pytest

from fastdl import train
from fastdl.activations import Linear, Tanh
from fastdl.layers import Dense
from fastdl.losses import SoftmaxCrossEntropy
from fastdl.network import NeuralNetwork
from fastdl.optimizers import SGDMomentum
from fastdl.train import Trainer


class BookPathTrainer(Trainer):
    """Overrides generate_batches with the same body: the Trainer then takes the book's copying path."""

    def generate_batches(self, X, y, size=32):
        for ii in range(0, X.shape[0], size):
            yield X[ii:ii + size], y[ii:ii + size]


class RecordingNet(NeuralNetwork):
    def train_batch(self, X_batch, y_batch, inference=False):
        self.seen.append((X_batch.copy(), y_batch.copy()))
        return super().train_batch(X_batch, y_batch, inference)


def _fit(trainer_class, dtype, batch_size, n=97):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((n, 13)).astype(dtype)
    y = np.eye(4, dtype=dtype)[rng.integers(0, 4, size=n)]
    net = RecordingNet([Dense(7, activation=Tanh(), dtype=dtype), Dense(4, activation=Linear(), dtype=dtype)],
                       loss=SoftmaxCrossEntropy(), seed=5)
    net.seen = []
    trainer = trainer_class(net, SGDMomentum(0.1, momentum=0.9))
    trainer.fit(X, y, X[:20], y[:20], epochs=3, eval_every=1, batch_size=batch_size, seed=11,
                early_stopping=False)
    return net, X.copy(), y.copy(), X, y


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_size", [1, 10, 97, 200])
def test_gathered_batches_equal_the_books(dtype, batch_size):
    ours, X0, y0, X, y = _fit(Trainer, dtype, batch_size)
    book, *_ = _fit(BookPathTrainer, dtype, batch_size)
    assert len(ours.seen) == len(book.seen) == 3 * -(-97 // batch_size)
    for (xa, ya), (xb, yb) in zip(ours.seen, book.seen):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    for pa, pb in zip(ours.params(), book.params()):
        np.testing.assert_array_equal(pa, pb)
    np.testing.assert_array_equal(X, X0)  # the caller's arrays are not changed
    np.testing.assert_array_equal(y, y0)


def test_only_a_subclass_with_its_own_generate_batches_takes_the_copying_path():
    X, y = np.zeros((4, 2)), np.zeros((4, 3))
    net = NeuralNetwork([Dense(3)], loss=SoftmaxCrossEntropy(), seed=1)
    assert not train._ShuffledBatches(Trainer(net, SGDMomentum()), X, y, 2).book_path
    assert train._ShuffledBatches(BookPathTrainer(net, SGDMomentum()), X, y, 2).book_path


def test_every_row_once_per_epoch():
    net, X, *_ = _fit(Trainer, np.float64, 10)
    per_epoch = len(net.seen) // 3
    for e in range(3):
        rows = np.concatenate([b[0] for b in net.seen[e * per_epoch:(e + 1) * per_epoch]])
        assert sorted(map(tuple, rows)) == sorted(map(tuple, X))


def test_mismatched_rows_raise_before_training():
    net = NeuralNetwork([Dense(3)], loss=SoftmaxCrossEntropy(), seed=1)
    with pytest.raises(ValueError, match="same number of rows"):
        Trainer(net, SGDMomentum()).fit(np.zeros((5, 2)), np.zeros((4, 3)), np.zeros((1, 2)), np.zeros((1, 3)))
    assert net.layers[0].first  # nothing ran


def test_evaluation_in_chunks_matches_the_whole_set(monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 6))
    y = np.eye(3)[rng.integers(0, 3, size=50)]
    net = NeuralNetwork([Dense(5, activation=Tanh(), dtype=np.float64), Dense(3, dtype=np.float64)],
                        loss=SoftmaxCrossEntropy(), seed=2)
    trainer = Trainer(net, SGDMomentum())
    trainer.fit(X, y, X, y, epochs=1, eval_every=1, batch_size=10)
    whole = net.loss.forward(net.forward(X, inference=True), y)
    chunked = net.loss.forward(trainer._predict(X, 7), y)
    np.testing.assert_allclose(chunked, whole, rtol=1e-12)
    assert trainer._predict(X, 7).shape == (50, 3)
    monkeypatch.setattr(train, "EVAL_ROWS", 7)
    trainer.fit(X, y, X, y, epochs=1, eval_every=1, batch_size=5, early_stopping=True)
    assert trainer.best_loss == pytest.approx(net.loss.forward(net.forward(X, inference=True), y), rel=1e-12)
