"""End-to-end training on the bundled 8x8 digits (scikit-learn): accuracy, determinism, backends,
early stopping, decay, optimizers.

Accuracy threshold: the book's chapter-4 MLP (89 Tanh -> 10 Linear, glorot, SGDMomentum with
exponential decay) reaches 96.5-96.8% on MNIST in the book's chapter 4 table. On the digits fastdl
measured 98.4-98.7% over seeds 1-5 and 20190119 (450 test images). 0.95 is the project's bar and
leaves a margin of about 15 test images for platform rounding while still failing on any real
gradient or optimizer bug (a broken backward gives < 0.5; plain SGD without momentum ~0.93-0.96).
"""

import io
import contextlib

import numpy as np
import pytest

import fastdl
from fastdl import backend
from fastdl.activations import Linear, ReLU, Sigmoid, Tanh
from fastdl.layers import Conv2D, Dense
from fastdl.losses import CrossEntropy, MeanSquaredError, SoftmaxCrossEntropy
from fastdl.network import NeuralNetwork
from fastdl.optimizers import SGD, AdaGrad, RegularizedSGD, SGDMomentum
from fastdl.train import Trainer

pytest.importorskip("sklearn", reason="the digits data set needs scikit-learn (the `examples` extra)")

from fastdl.cli.demos import accuracy, train_mlp  # noqa: E402
from fastdl.datasets import digits  # noqa: E402

MLP_THRESHOLD = 0.95


@pytest.fixture(scope="module")
def data():
    return digits()


def quiet_fit(trainer, *args, **kwargs):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        trainer.fit(*args, **kwargs)
    return out.getvalue()


def test_digits_dataset_shape_and_scaling(data):
    X_train, y_train, X_test, y_test = data
    assert X_train.shape == (1347, 64) and X_test.shape == (450, 64) and y_train.shape == (1347, 10)
    assert X_train.dtype == np.float32 and y_test.dtype == np.float32
    assert abs(float(X_train.mean())) < 1e-4 and abs(float(X_train.std()) - 1) < 1e-4
    assert np.array_equal(y_train.sum(axis=1), np.ones(1347))
    assert np.array_equal(digits()[2], X_test)  # the split is fixed


def test_mlp_reaches_threshold():
    acc, seconds, trainer = train_mlp(epochs=20, eval_every=5)
    assert acc >= MLP_THRESHOLD, f"test accuracy {acc:.4f} < {MLP_THRESHOLD}"
    assert trainer.best_epoch is not None


def test_seed_determinism(data):
    def run(seed):
        net = NeuralNetwork([Dense(32, Tanh(), dropout=0.9), Dense(10, Linear())], SoftmaxCrossEntropy(), seed=seed)
        quiet_fit(Trainer(net, SGDMomentum(0.1)), *data, epochs=3, eval_every=3, batch_size=60, seed=seed)
        return [p.copy() for p in net.params()]

    state = np.random.get_state()[1].copy()
    a, b, c = run(3), run(3), run(4)
    assert np.array_equal(np.random.get_state()[1], state), "fit must not touch the global NumPy RNG"
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not np.array_equal(a[0], c[0])


@pytest.mark.skipif(not backend.cpu_available(), reason="the C++ extension fastdl._core is not built")
def test_same_accuracy_on_numpy_and_cpu():
    results = {}
    for name in ("numpy", "cpu"):
        with fastdl.use_backend(name):
            results[name] = train_mlp(epochs=10, eval_every=5)[0]
    # float32 sums in a different order may flip a prediction or two (1 image = 0.0022)
    assert abs(results["numpy"] - results["cpu"]) <= 0.01, results
    assert min(results.values()) >= MLP_THRESHOLD


class ScriptedLoss(SoftmaxCrossEntropy):
    """SoftmaxCrossEntropy whose value on the full test set follows a script; snapshots the net there."""

    def __init__(self, script, n_test, on_eval):
        super().__init__()
        self.script, self.n_test, self.on_eval, self.calls = list(script), n_test, on_eval, 0

    def _output(self):
        value = super()._output()
        if self.prediction.shape[0] != self.n_test:
            return value
        self.on_eval()
        self.calls += 1
        return self.script[self.calls - 1]


def test_early_stopping_restores_the_best_model(data):
    X_train, y_train, X_test, y_test = data
    snapshots = []
    net = NeuralNetwork([Dense(16, Tanh()), Dense(10)], seed=1)
    net.loss = ScriptedLoss([1.0, 0.5, 0.7, 0.1], len(X_test),
                            lambda: snapshots.append([p.copy() for p in net.params()]))
    trainer = Trainer(net, SGD(0.05))
    out = quiet_fit(trainer, X_train[:300], y_train[:300], X_test, y_test, epochs=6, eval_every=1, batch_size=50)
    assert "Loss increased after epoch 3, final loss was 0.500" in out and "from epoch 2" in out
    assert trainer.best_epoch == 2 and trainer.best_loss == 0.5 and len(snapshots) == 3
    assert trainer.net is net and trainer.optim.net is net  # restored in place: the user's object is best
    restored = list(net.params())
    assert all(np.array_equal(p, q) for p, q in zip(restored, snapshots[1]))
    assert not np.array_equal(restored[0], snapshots[2][0])
    assert net.forward(X_test).shape == (len(X_test), 10)  # and it still works


def test_no_early_stopping_and_decay_schedule(data):
    X_train, y_train, X_test, y_test = data
    net = NeuralNetwork([Dense(10, Sigmoid())], SoftmaxCrossEntropy(), seed=2)
    opt = SGD(0.2, final_lr=0.05, decay_type="linear")
    out = quiet_fit(Trainer(net, opt), X_train[:200], y_train[:200], X_test, y_test, epochs=4, eval_every=2,
                    early_stopping=False)
    assert out.count("Validation loss after") == 2
    assert abs(opt.lr - (0.05 - 0.05)) < 1e-12  # decayed once per epoch, four times: 0.2 -> 0.05 -> 0.0
    opt1 = SGDMomentum(0.1, final_lr=0.01, decay_type="exponential")
    quiet_fit(Trainer(net, opt1), X_train[:60], y_train[:60], X_test, y_test, epochs=1, eval_every=1)  # no 1/0


@pytest.mark.parametrize("make", [lambda: SGD(0.1), lambda: SGDMomentum(0.05, momentum=0.9),
                                  lambda: AdaGrad(0.05, final_lr_exp=0.01), lambda: RegularizedSGD(0.1, 1e-4)],
                         ids=["SGD", "SGDMomentum", "AdaGrad", "RegularizedSGD"])
def test_every_optimizer_learns(make, data):
    X_train, y_train, X_test, y_test = data
    net = NeuralNetwork([Dense(32, ReLU(), weight_init="glorot"), Dense(10)], CrossEntropy(), seed=5)
    quiet_fit(Trainer(net, make()), X_train, y_train, X_test, y_test, epochs=5, eval_every=5, batch_size=32)
    assert accuracy(net, X_test, y_test) > 0.85


def test_mse_and_cnn_train(data):
    X_train, y_train, X_test, y_test = data
    mse_net = NeuralNetwork([Dense(32, Tanh()), Dense(10, Sigmoid())], MeanSquaredError(), seed=1)
    quiet_fit(Trainer(mse_net, SGD(1.0)), X_train, y_train, X_test, y_test, epochs=6, eval_every=6)
    assert accuracy(mse_net, X_test, y_test) > 0.6

    Xi_train, yi_train, Xi_test, yi_test = digits(images=True)
    cnn = NeuralNetwork([Conv2D(4, 3, weight_init="glorot", activation=Tanh(), flatten=True, dropout=0.9),
                         Dense(10, Linear())], SoftmaxCrossEntropy(), seed=20190402)
    quiet_fit(Trainer(cnn, SGDMomentum(0.05, momentum=0.9)), Xi_train, yi_train, Xi_test, yi_test,
              epochs=3, eval_every=3, batch_size=60)
    assert accuracy(cnn, Xi_test, yi_test) > 0.85


def test_restart_false_continues_and_progress_flag(data):
    X_train, y_train, X_test, y_test = data
    net = NeuralNetwork([Dense(16, Tanh()), Dense(10)], SoftmaxCrossEntropy(), seed=1)
    trainer = Trainer(net, SGDMomentum(0.05))
    quiet_fit(trainer, X_train, y_train, X_test, y_test, epochs=1, eval_every=1)
    W = net.layers[0].params[0]
    quiet_fit(trainer, X_train, y_train, X_test, y_test, epochs=1, eval_every=1, restart=False, progress=True)
    assert net.layers[0].params[0] is W  # not re-initialised


class _Net:
    """Just enough network for an optimizer: one parameter and its gradient."""

    def __init__(self, param, grad):
        self.p, self.g = param, grad

    def params(self):
        yield self.p

    def param_grads(self):
        yield self.g


def test_optimizer_update_rules_in_place():
    g = np.array([0.5, -1.0])
    p = np.array([1.0, 2.0])
    opt = SGDMomentum(0.1, momentum=0.9)
    opt.net = _Net(p, g)
    opt.step()
    opt.step(epoch=1)
    np.testing.assert_allclose(p, [1.0, 2.0] - (0.1 * g) - (0.9 * 0.1 * g + 0.1 * g))
    p2 = np.array([1.0, 2.0])
    ada = AdaGrad(0.1)
    ada.net = _Net(p2, g)
    ada.step()
    np.testing.assert_allclose(p2, [1.0, 2.0] - 0.1 / np.sqrt(1e-7 + g ** 2) * g)
    p3 = np.array([1.0, 2.0])
    reg = RegularizedSGD(0.1, alpha=0.01)
    reg.net = _Net(p3, g)
    reg.step()
    np.testing.assert_allclose(p3, [1.0, 2.0] - (0.1 * g + 0.01 * np.array([1.0, 2.0])))
    exp = SGD(0.2, final_lr=0.05, decay_type="exponential")
    exp.max_epochs = 3
    exp._setup_decay()
    exp._decay_lr()
    exp._decay_lr()
    assert exp.lr == pytest.approx(0.05) and isinstance(exp.lr, float)


def test_early_stopping_restores_the_best_weights_into_the_callers_layers():
    """The restore copies the best values into the live arrays: the caller's layer objects and the
    optimizer's parameters end up with the best model's weights (not a detached copy)."""
    from fastdl.datasets import digits
    from fastdl.cli.demos import build_mlp
    from fastdl.train import Trainer

    X_train, y_train, X_test, y_test = digits()
    net, optim = build_mlp()
    first_layer = net.layers[0]
    trainer = Trainer(net, optim)
    trainer.fit(X_train, y_train, X_test, y_test, epochs=50, eval_every=10, batch_size=60, seed=20190119)
    assert trainer.net is net and net.layers[0] is first_layer
    first_w = first_layer.params[0]
    assert first_w is first_layer.operations[0].param  # the op still shares the array the optimizer updates
    assert trainer.best_epoch == 30  # this seed's loss rises at epoch 40, so the model of epoch 30 is restored
    np.testing.assert_array_equal(first_layer.params[0], trainer._best_model.layers[0].params[0])
