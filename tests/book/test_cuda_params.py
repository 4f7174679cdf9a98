"""Layers keep device copies of their parameters on the cuda backend (fastdl/device/).

Training on the cuda backend must give what the numpy backend gives, while the parameters, activations
and gradients stay on the device: fastdl's optimizers update the device copies there, an outside
optimizer that changes ``net.params()`` in place is seen by the next forward, and deep copies and state
dicts see the current values. Runs on a real GPU or under the CUDA simulator (NUMBA_ENABLE_CUDASIM=1),
on tiny shapes.
"""

import copy
import pickle
import sys

import numpy as np
import pytest

import fastdl
import fastdl.io
from fastdl import device as dev
from fastdl.activations import Linear, ReLU, Sigmoid, Tanh
from fastdl.base import Operation
from fastdl.cuda import _compat
from fastdl.layers import Conv2D, Dense
from fastdl.losses import CrossEntropy, MeanSquaredError, SoftmaxCrossEntropy
from fastdl.network import NeuralNetwork
from fastdl.optimizers import SGD, AdaGrad, RegularizedSGD, SGDMomentum
from fastdl.train import Trainer
from book_standins import BookSGDMomentum

pytestmark = pytest.mark.skipif(
    not _compat.available(),
    reason="fastdl cuda backend unavailable: " + str(_compat.reason()) + " (tests need a GPU or NUMBA_ENABLE_CUDASIM=1)")

OPTIMIZERS = {
    "sgd": lambda: SGD(0.05),
    "momentum": lambda: SGDMomentum(0.05, momentum=0.9),
    "adagrad": lambda: AdaGrad(0.05),
    "regularized": lambda: RegularizedSGD(0.05, alpha=0.01),
}


def dense_net(loss=None):
    return NeuralNetwork([Dense(4, Tanh()), Dense(3, Linear())], loss=loss or SoftmaxCrossEntropy(), seed=7)


def conv_net(loss=None):
    return NeuralNetwork([Conv2D(2, 2, activation=ReLU(), flatten=True, dropout=0.8), Dense(3, Sigmoid())],
                         loss=loss or SoftmaxCrossEntropy(), seed=7)


def data(kind, n=None, seed=0):
    """A tiny batch for ``kind`` ('dense': (4, 5) features, 'conv': (2, 1, 4, 4) images; n rows when
    given) and labels (n,). The simulator runs convolutions slowly, so the images are very small."""
    rng = np.random.default_rng(seed)
    n = n or (4 if kind == "dense" else 2)
    shape = (n, 5) if kind == "dense" else (n, 1, 4, 4)
    return rng.standard_normal(shape).astype(np.float32), rng.integers(0, 3, n)


def train(backend, make_net, optim, X, y, steps=2):
    """``steps`` training steps with ``optim`` (fastdl's or an outside one) on ``backend``: (losses, host
    params, net)."""
    with fastdl.use_backend(backend):
        net = make_net()
        optim.net = net
        losses = []
        for _ in range(steps):
            losses.append(net.train_batch(X, y))
            optim.step()
        return losses, [p.copy() for p in net.params()], net


def assert_same_training(a, b):
    np.testing.assert_allclose(a[0], b[0], rtol=1e-5, atol=1e-6, err_msg="losses")
    assert len(a[1]) == len(b[1])
    for p, q in zip(a[1], b[1]):
        assert isinstance(q, np.ndarray) and q.dtype == p.dtype and q.shape == p.shape
        np.testing.assert_allclose(q, p, rtol=1e-4, atol=1e-5, err_msg="final params")


class Transfers:
    """Counts host <-> device copies at numba's level: new device arrays from host data
    (``cuda.to_device``), host data copied into device arrays, device arrays copied to the host.

    The simulator's device arrays wrap NumPy arrays and NumPy reads them without a copy, so there a
    NumPy view of a device array taken by fastdl's code (which would be a download on a GPU) fails."""

    def __init__(self, monkeypatch):
        cuda = _compat.cuda
        cls = type(cuda.to_device(np.zeros(1)))
        self.up = self.down = 0
        if _compat.simulator():
            for name in ("__array__", "__array_interface__", "__array_struct__"):
                monkeypatch.setattr(cls, name, _no_host_view(name), raising=False)
        to_device, copy_to_device, copy_to_host = cuda.to_device, cls.copy_to_device, cls.copy_to_host

        def counted_to_device(a, *args, **kwargs):
            self.up += 1
            return to_device(a, *args, **kwargs)

        def counted_copy_to_device(d, a, *args, **kwargs):
            self.up += isinstance(a, np.ndarray)
            return copy_to_device(d, a, *args, **kwargs)

        def counted_copy_to_host(d, *args, **kwargs):
            self.down += 1
            return copy_to_host(d, *args, **kwargs)

        monkeypatch.setattr(cuda, "to_device", counted_to_device)
        monkeypatch.setattr(cls, "copy_to_device", counted_copy_to_device)
        monkeypatch.setattr(cls, "copy_to_host", counted_copy_to_host)

    def reset(self):
        self.up = self.down = 0


def _no_host_view(name):
    """A property of the simulator's device arrays that fails when code in fastdl reads it."""
    def get(device_array):
        caller = sys._getframe(1).f_globals.get("__name__", "")
        assert not caller.startswith("fastdl"), f"{caller} made a NumPy view of a device array"
        return getattr(device_array._ary, name)
    return property(get)


# ----------------------------------------------------------------------------------------------
# fastdl's optimizers on the device copies
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_dense_training_matches_numpy(name):
    X, y = data("dense")
    assert_same_training(train("numpy", dense_net, OPTIMIZERS[name](), X, y),
                         train("cuda", dense_net, OPTIMIZERS[name](), X, y))


@pytest.mark.parametrize("name", ["momentum", "adagrad"])
def test_conv_training_matches_numpy(name):
    """Conv2D (ReLU, flatten, dropout) + Dense: the dropout masks are the same on both backends."""
    X, y = data("conv")
    assert_same_training(train("numpy", conv_net, OPTIMIZERS[name](), X, y),
                         train("cuda", conv_net, OPTIMIZERS[name](), X, y))


@pytest.mark.parametrize("loss", [MeanSquaredError, CrossEntropy])
def test_other_losses_match_numpy(loss):
    X, y = data("dense")
    target = np.eye(3, dtype=np.float32)[y]
    make = lambda: dense_net(loss())  # noqa: E731
    assert_same_training(train("numpy", make, SGDMomentum(0.05), X, target),
                         train("cuda", make, SGDMomentum(0.05), X, target))


def test_float64_layers_match_numpy():
    X, y = data("dense")
    make = lambda: NeuralNetwork([Dense(4, Tanh(), dtype=np.float64), Dense(3, dtype=np.float64)],  # noqa: E731
                                 loss=SoftmaxCrossEntropy(), seed=7)
    a, b = train("numpy", make, SGDMomentum(0.05), X, y), train("cuda", make, SGDMomentum(0.05), X, y)
    np.testing.assert_allclose(b[0], a[0], rtol=1e-10)
    for p, q in zip(a[1], b[1]):
        assert q.dtype == np.float64
        np.testing.assert_allclose(q, p, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("make_net,kind,loss", [(dense_net, "dense", SoftmaxCrossEntropy),
                                                (dense_net, "dense", MeanSquaredError),
                                                (conv_net, "conv", SoftmaxCrossEntropy)])
def test_a_step_moves_only_the_batch_and_the_loss(monkeypatch, make_net, kind, loss):
    """After the first step (which uploads the parameters), a step uploads the batch and the target,
    downloads the loss, and nothing else: parameters, velocities, activations and gradients stay."""
    X, y = data(kind)
    target = y if loss is SoftmaxCrossEntropy else np.eye(3, dtype=np.float32)[y]
    transfers = Transfers(monkeypatch)
    with fastdl.use_backend("cuda"):
        net, optim = make_net(loss()), SGDMomentum(0.05)
        optim.net = net
        net.train_batch(X, target)
        optim.step()
        for _ in range(2 if kind == "dense" else 1):
            transfers.reset()
            net.train_batch(X, target)
            optim.step()
            assert (transfers.up, transfers.down) == (2, 1)
        assert all(dev.is_device(v) for v in optim.velocities)
        assert all(dev.is_device(layer.output) for layer in net.layers)
        transfers.reset()
        net.forward_loss(X, target)
        assert (transfers.up, transfers.down) == (2, 1)
        transfers.reset()
        assert isinstance(net.forward(X), np.ndarray)
        assert (transfers.up, transfers.down) == (1, 1)


def test_the_optimizer_updates_the_device_copy_and_reading_params_syncs_the_host():
    X, y = data("dense")
    with fastdl.use_backend("cuda"):
        net, optim = dense_net(), SGD(0.1)
        optim.net = net
        net.train_batch(X, y)
        layer = net.layers[0]
        W_host = layer._param_arrays[0]            # the host array, read without syncing
        before = W_host.copy()
        W_device_before = layer._device.params.device[0].copy_to_host()
        optim.step()
        np.testing.assert_array_equal(W_host, before)   # the step did not touch the host array ...
        W_device = layer._device.params.device[0].copy_to_host()
        assert not np.array_equal(W_device, W_device_before)  # ... it updated the device copy
        W = layer.params[0]                        # the public accessor brings the host up to date
        assert W is W_host                         # in place: the same array as before
        np.testing.assert_array_equal(W, W_device)
        grad = layer.param_grads[0]
        assert isinstance(grad, np.ndarray) and grad.shape == W.shape
        np.testing.assert_allclose(W, before - np.float32(0.1) * grad, rtol=1e-6, atol=1e-7)


# ----------------------------------------------------------------------------------------------
# outside code changes the host arrays
# ----------------------------------------------------------------------------------------------

class OutsideMomentum(BookSGDMomentum):
    """A lincoln-style optimizer: it must be handed host NumPy arrays, which it updates in place."""

    def step(self):
        for param, grad in zip(self.net.params(), self.net.param_grads()):
            assert isinstance(param, np.ndarray) and isinstance(grad, np.ndarray)
        super().step()


@pytest.mark.parametrize("make_net,kind", [(dense_net, "dense"), (conv_net, "conv")])
def test_an_outside_optimizer_changing_params_in_place_is_seen(make_net, kind):
    X, y = data(kind)
    assert_same_training(train("numpy", make_net, OutsideMomentum(0.05), X, y, steps=3),
                         train("cuda", make_net, OutsideMomentum(0.05), X, y, steps=3))


def test_held_host_arrays_changed_in_place_are_uploaded_before_every_forward():
    """Arrays handed out once stay live: changing them later (without reading params again) still
    reaches the device, as long as no fastdl optimizer has written the device copies since."""
    X, _ = data("dense")
    with fastdl.use_backend("cuda"):
        net = dense_net()
        net.forward(X)
        W = net.layers[0].params[0]
        for scale in (0.5, 2.0):
            W *= scale
            with fastdl.use_backend("numpy"):
                expected = copy.deepcopy(net).forward(X)
            np.testing.assert_allclose(net.forward(X), expected, rtol=1e-5, atol=1e-6)


def test_fastdl_optimizer_after_outside_changes_and_gradient_clipping():
    """Host params changed in place and host gradients clipped in place are uploaded before a fastdl
    optimizer's step on the device."""
    X, y = data("dense")
    results = {}
    for backend in ("numpy", "cuda"):
        with fastdl.use_backend(backend):
            net, optim = dense_net(), SGDMomentum(0.05)
            optim.net = net
            losses = []
            for _ in range(2):
                losses.append(net.train_batch(X, y))
                for p in net.params():
                    p *= 0.99
                for g in net.param_grads():
                    np.clip(g, -0.1, 0.1, out=g)
                optim.step()
            results[backend] = (losses, [p.copy() for p in net.params()])
    assert_same_training(results["numpy"], results["cuda"])


def test_subclass_with_its_own_rule_updates_the_host_arrays():
    class HalfSGD(SGD):
        def _update_rule(self, **kwargs):
            assert isinstance(kwargs["param"], np.ndarray)
            kwargs["param"] -= 0.5 * self.lr * kwargs["grad"]

    X, y = data("dense")
    assert_same_training(train("numpy", dense_net, HalfSGD(0.1), X, y), train("cuda", dense_net, HalfSGD(0.1), X, y))


def test_lincoln_style_network_over_fastdl_layers():
    """A network that is not fastdl's calls layer.forward / backward with NumPy: NumPy comes back."""
    X, y = data("dense")
    onehot = np.eye(3, dtype=np.float32)[y]
    results = {}
    for backend in ("numpy", "cuda"):
        with fastdl.use_backend(backend):
            layers = [Dense(4, Tanh()), Dense(3)]
            for layer in layers:
                layer.seed = 7
            for _ in range(2):
                out = X
                for layer in layers:
                    out = layer.forward(out)
                    assert isinstance(out, np.ndarray)
                grad = 2 * (out - onehot) / X.shape[0]
                for layer in reversed(layers):
                    grad = layer.backward(grad)
                    assert isinstance(grad, np.ndarray)
                for layer in layers:
                    for p, g in zip(layer.params, layer.param_grads):
                        p -= 0.1 * g
            results[backend] = [p.copy() for layer in layers for p in layer.params]
    for p, q in zip(results["numpy"], results["cuda"]):
        np.testing.assert_allclose(q, p, rtol=1e-4, atol=1e-5)


class HostDense:
    """A lincoln-style layer in float64 NumPy (not a fastdl layer): it must be given host arrays."""

    def __init__(self, neurons):
        self.neurons, self.first, self.params, self.param_grads = neurons, True, [], []

    def forward(self, input_, inference=False):
        assert isinstance(input_, np.ndarray)
        if self.first:
            rng = np.random.default_rng(self.seed)
            self.params = [rng.normal(0, 0.5, (input_.shape[1], self.neurons)), np.zeros((1, self.neurons))]
            self.first = False
        self.input_ = input_
        return input_ @ self.params[0] + self.params[1]

    def backward(self, output_grad):
        assert isinstance(output_grad, np.ndarray)
        self.param_grads = [self.input_.T @ output_grad, output_grad.sum(axis=0, keepdims=True)]
        return output_grad @ self.params[0].T


class LeakyReLU(Operation):
    """A user's NumPy activation: a Dense layer with it runs on its host arrays on the cuda backend."""

    def _output(self, inference):
        assert isinstance(self.input_, np.ndarray)
        return np.where(self.input_ > 0, self.input_, 0.1 * self.input_)

    def _input_grad(self, output_grad):
        return output_grad * np.where(self.input_ > 0, 1.0, 0.1)


def test_layers_that_need_host_arrays_inside_a_device_network():
    """A lincoln-style layer and a Dense with a NumPy activation between device-resident layers."""
    X, y = data("dense")
    make = lambda: NeuralNetwork([Dense(4, Tanh()), HostDense(4), Dense(4, LeakyReLU()), Dense(3)],  # noqa: E731
                                 loss=SoftmaxCrossEntropy(), seed=7)
    a, b = train("numpy", make, SGDMomentum(0.05), X, y), train("cuda", make, SGDMomentum(0.05), X, y)
    assert_same_training(a, b)
    layers = b[2].layers
    assert layers[0]._device is not None and layers[2]._device is None and layers[3]._device is not None


# ----------------------------------------------------------------------------------------------
# predictions, Trainer, copies and state
# ----------------------------------------------------------------------------------------------

def test_forward_gives_numpy_for_numpy_and_device_for_device():
    X, y = data("conv")
    with fastdl.use_backend("cuda"):
        net = conv_net()
        prediction = net.forward(X, inference=True)
        assert isinstance(prediction, np.ndarray) and prediction.shape == (2, 3)
        on_device = net.forward(_compat.cuda.to_device(X), inference=True)
        assert dev.is_device(on_device)
        np.testing.assert_allclose(on_device.copy_to_host(), prediction, rtol=1e-6)
        net.forward_loss(X, y)
        assert isinstance(net.loss.softmax_preds, np.ndarray)
    with fastdl.use_backend("numpy"):
        np.testing.assert_allclose(net.forward(X, inference=True), prediction, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make_net,kind,fits", [(dense_net, "dense", 2), (conv_net, "conv", 1)])
def test_trainer_fit_matches_numpy(make_net, kind, fits, capsys):
    """Two epochs of shuffled batches with learning-rate decay, an evaluation after each (the dense
    net is fitted twice: the second fit re-initialises the layers and the optimizer)."""
    X, y = data(kind, seed=1)
    X_test, y_test = data(kind, n=2, seed=2)
    onehot, onehot_test = np.eye(3, dtype=np.float32)[y], np.eye(3, dtype=np.float32)[y_test]
    results = {}
    for backend in ("numpy", "cuda"):
        with fastdl.use_backend(backend):
            net = make_net()
            trainer = Trainer(net, SGDMomentum(0.05, final_lr=0.01, decay_type="exponential"))
            for _ in range(fits):
                trainer.fit(X, onehot, X_test, onehot_test, epochs=2, eval_every=1, batch_size=X.shape[0], seed=5)
            preds = net.forward(X_test, inference=True)
            assert isinstance(preds, np.ndarray)
            results[backend] = (trainer.best_loss, trainer.best_epoch, preds, [p.copy() for p in net.params()])
    np.testing.assert_allclose(results["cuda"][0], results["numpy"][0], rtol=1e-5)
    assert results["cuda"][1] == results["numpy"][1]
    np.testing.assert_allclose(results["cuda"][2], results["numpy"][2], rtol=1e-4, atol=1e-5)
    for p, q in zip(results["numpy"][3], results["cuda"][3]):
        np.testing.assert_allclose(q, p, rtol=1e-4, atol=1e-5)


def test_early_stopping_restores_the_best_model_on_the_device(capsys):
    """Stop at the first evaluation that does not improve (a huge learning rate makes it happen), and
    the restored parameters are what the next forward on the device uses."""
    X, y = data("dense", seed=1)
    onehot = np.eye(3, dtype=np.float32)[y]
    with fastdl.use_backend("cuda"):
        net = dense_net()
        trainer = Trainer(net, SGD(50.0))
        trainer.fit(X, onehot, X, onehot, epochs=3, eval_every=1, batch_size=4, seed=5)
        assert "Loss increased" in capsys.readouterr().out
        best = trainer._best_model
        assert all(not dev.is_device(v) for layer in best.layers for op in layer.operations
                   for v in vars(op).values())
        np.testing.assert_allclose(net.forward_loss(X, onehot), trainer.best_loss, rtol=1e-5)
        for p, q in zip(net.params(), best.params()):
            np.testing.assert_array_equal(p, q)


def test_deepcopy_and_state_dict_see_device_updates(tmp_path):
    X, y = data("conv")
    with fastdl.use_backend("cuda"):
        net, optim = conv_net(), SGDMomentum(0.05)
        optim.net = net
        for _ in range(1):
            net.train_batch(X, y)
            optim.step()
        state = net.state_dict()
        copied = copy.deepcopy(net)
        pickled = pickle.loads(pickle.dumps(net))
        fastdl.io.save(net, tmp_path / "net.npz")
        current = [p.copy() for p in net.params()]
    assert [np.asarray(v).tolist() for v in state.values()] == [p.tolist() for p in current]
    assert all(layer._device is None for layer in copied.layers)
    for layer in copied.layers:
        assert all(not dev.is_device(v) for v in vars(layer).values())
        assert all(not dev.is_device(v) for op in layer.operations for v in vars(op).values())
    assert all(not dev.is_device(v) for v in vars(copied.loss).values())
    for p, q, r in zip(copied.params(), pickled.params(), current):
        np.testing.assert_array_equal(p, r)
        np.testing.assert_array_equal(q, r)
    with fastdl.use_backend("numpy"):
        reloaded = fastdl.io.load(conv_net(), tmp_path / "net.npz")
        for p, q in zip(reloaded.params(), current):
            np.testing.assert_array_equal(p, q)


def test_load_state_dict_reaches_the_device_copies():
    X, y = data("dense")
    with fastdl.use_backend("numpy"):
        other = dense_net()
        other.forward(X)
        expected = other.forward(X)
        state = other.state_dict()
    with fastdl.use_backend("cuda"):
        net, optim = NeuralNetwork([Dense(4, Tanh()), Dense(3)], loss=SoftmaxCrossEntropy(), seed=99), SGD(0.1)
        optim.net = net
        net.train_batch(X, y)
        optim.step()
        net.load_state_dict(state)
        np.testing.assert_allclose(net.forward(X), expected, rtol=1e-5, atol=1e-6)


def test_switching_backends_keeps_training_going():
    """Steps on cuda, then on numpy (the device copies come back to the host), then on cuda again."""
    X, y = data("dense")
    reference = train("numpy", dense_net, SGDMomentum(0.05), X, y, steps=4)
    net, optim = dense_net(), SGDMomentum(0.05)
    optim.net = net
    losses = []
    for backend in ("cuda", "numpy", "numpy", "cuda"):
        with fastdl.use_backend(backend):
            losses.append(net.train_batch(X, y))
            optim.step()
    assert_same_training(reference, (losses, [p.copy() for p in net.params()]))


def test_dropout_inference_scaling_on_the_device():
    X, _ = data("conv")
    outs = {}
    for backend in ("numpy", "cuda"):
        with fastdl.use_backend(backend):
            outs[backend] = conv_net().forward(X, inference=True)
    np.testing.assert_allclose(outs["cuda"], outs["numpy"], rtol=1e-5, atol=1e-6)


def test_device_helpers_import_without_numba():
    import subprocess
    import sys

    code = ("import sys; sys.modules['numba'] = None\n"
            "import fastdl, fastdl.cuda, fastdl.cuda.optimizers, fastdl.cuda.elementwise, fastdl.device\n"
            "from fastdl.optimizers import SGD\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
