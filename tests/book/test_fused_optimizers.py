"""The book's optimizers, whose four rules now run as one fused step, against the same optimizers forced
onto the book's per-parameter loop (a subclass with its own ``_update_rule``): the same weights, bit for bit,
over several epochs with learning-rate decay, and for chapter 6's optimizers with gradient clipping."""

import numpy as np
import pytest

import fastdl
from fastdl import kernels
from fastdl import optimizers as opt
from fastdl.activations import Linear, Tanh
from fastdl.layers import Dense
from fastdl.losses import SoftmaxCrossEntropy
from fastdl.network import NeuralNetwork
from fastdl.rnn import optimizers as rnn_opt
from fastdl.train import Trainer

BACKENDS = ["numpy"] + (["cpu"] if fastdl.backend.cpu_available() else [])


def _looped(cls):
    """``cls`` with its own copy of the rule: the optimizer then updates one parameter at a time."""
    return type(f"Looped{cls.__name__}", (cls,), {"_update_rule": lambda self, **kw: cls._update_rule(self, **kw)})


OPTIMIZERS = [
    (opt.SGD, dict(lr=0.05, final_lr=0.01, decay_type="linear")),
    (opt.SGDMomentum, dict(lr=0.1, momentum=0.9, final_lr=0.05, decay_type="exponential")),
    (opt.AdaGrad, dict(lr=0.05, final_lr_exp=0.01)),
    (opt.RegularizedSGD, dict(lr=0.05, alpha=0.001)),
]


def _train(optimizer, dtype, backend):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((90, 11)).astype(dtype)
    y = np.eye(3, dtype=dtype)[rng.integers(0, 3, size=90)]
    net = NeuralNetwork([Dense(7, activation=Tanh(), dtype=dtype), Dense(3, activation=Linear(), dtype=dtype)],
                        loss=SoftmaxCrossEntropy(), seed=4)
    with fastdl.use_backend(backend):
        Trainer(net, optimizer).fit(X, y, X, y, epochs=4, eval_every=10, batch_size=16, seed=2)
    return net.params()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cls,kwargs", OPTIMIZERS, ids=lambda v: getattr(v, "__name__", ""))
def test_fused_optimizer_equals_the_books_loop(cls, kwargs, dtype, backend, monkeypatch):
    ran = []
    real = kernels.try_parameter_update
    monkeypatch.setattr(kernels, "try_parameter_update", lambda *a, **k: ran.append(real(*a, **k)) or ran[-1])
    fused = _train(cls(**kwargs), dtype, backend)
    assert ran and all(ran), "the fused step did not run"
    ran.clear()
    looped = _train(_looped(cls)(**kwargs), dtype, backend)
    assert not ran, "the looped optimizer took the fused step"
    for a, b in zip(fused, looped):
        np.testing.assert_array_equal(a, b)


class _Model:
    """Chapter 6's optimizer interface: ``model.layers[i].params[key] = {'value', 'deriv'}``."""

    def __init__(self, dtype, rng):
        class Layer:
            pass
        self.layers = []
        for shape_set in ([(5, 8), (1, 8)], [(8, 3)]):
            layer = Layer()
            layer.params = {f"W{i}": {"value": rng.standard_normal(s).astype(dtype), "deriv": np.zeros(s, dtype)}
                            for i, s in enumerate(shape_set)}
            self.layers.append(layer)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("clipping", [True, False])
@pytest.mark.parametrize("cls", [rnn_opt.SGD, rnn_opt.AdaGrad])
def test_rnn_optimizers_with_clipping_equal_the_books_loop(cls, clipping, dtype, backend):
    results = []
    for klass in (cls, _looped(cls)):
        rng = np.random.default_rng(3)
        model = _Model(dtype, rng)
        optimizer = klass(lr=0.05, gradient_clipping=clipping)
        optimizer.model = model
        with fastdl.use_backend(backend):
            for _ in range(4):
                for layer in model.layers:
                    for entry in layer.params.values():
                        entry["deriv"][...] = 4 * rng.standard_normal(entry["deriv"].shape)
                optimizer.step()
        results.append([e[k] for layer in model.layers for e in layer.params.values() for k in ("value", "deriv")])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    if clipping:
        assert max(np.abs(a).max() for a in results[0][1::2]) <= 2.0
