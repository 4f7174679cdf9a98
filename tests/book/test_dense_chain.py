"""NeuralNetwork.train_batch on a network of plain Dense layers runs them as one chain of fused kernels; it must
leave exactly what the layer-by-layer path leaves: losses, weights after several optimizer steps, and every
attribute of the layers, their operations and the loss, bit for bit."""

import numpy as np
import pytest

import fastdl
from fastdl.activations import Linear, ReLU, Sigmoid, Tanh
from fastdl.layers import Dense
from fastdl.losses import CrossEntropy, MeanSquaredError, SoftmaxCrossEntropy
from fastdl.network import NeuralNetwork, _dense_chain
from fastdl.optimizers import SGDMomentum
from conftest import ACCELERATED

BACKENDS = ["numpy"] + [b for b in ACCELERATED if b == "cpu"]


class LayerByLayer(NeuralNetwork):
    """The same network with its own (identical) forward: train_batch runs the layers one by one."""

    def _forward(self, X_batch, inference):
        return super()._forward(X_batch, inference)


def _train(net_cls, layers, loss, dtype, backend, steps=4, batch_dtype=None):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((steps, 13, 7)).astype(batch_dtype or dtype)
    y = np.eye(5, dtype=dtype)[rng.integers(0, 5, size=(steps, 13))]
    with fastdl.use_backend(backend):
        net = net_cls(layers(dtype), loss=loss(), seed=5)
        optim = SGDMomentum(0.1, momentum=0.9)
        optim.net = net
        losses = []
        for k in range(steps):
            losses.append(net.train_batch(x[k], y[k]))
            optim.step()
    return net, losses


def _state(net):
    """Every array the step leaves on the layers, their operations and the loss, by name."""
    state = {}
    for i, layer in enumerate(net.layers):
        for name in ("input_", "output"):
            state[f"{i}.{name}"] = getattr(layer, name)
        state[f"{i}.input_ is its WeightMultiply's"] = layer.input_ is layer.operations[0].input_
        state[f"{i}.output is its activation's"] = layer.output is layer.operations[2].output
        state[f"{i}.caller dtype"] = layer._caller_dtype
        for j, (p, g) in enumerate(zip(layer.params, layer.param_grads)):
            state[f"{i}.params.{j}"], state[f"{i}.param_grads.{j}"] = p, g
        for j, op in enumerate(layer.operations):
            for name in ("input_", "output", "input_grad", "param_grad"):
                state[f"{i}.op{j}.{name}"] = getattr(op, name, "unset")
    for name in ("prediction", "target", "output", "input_grad"):
        state[f"loss.{name}"] = getattr(net.loss, name)
    return state


NETWORKS = {
    "mlp": lambda dt: [Dense(9, activation=Tanh(), weight_init="glorot", dtype=dt), Dense(5, activation=Linear(), dtype=dt)],
    "three": lambda dt: [Dense(11, activation=ReLU(), dtype=dt), Dense(6, activation=Sigmoid(), dtype=dt),
                         Dense(5, activation=Linear(), dtype=dt)],
    "one": lambda dt: [Dense(5, activation=Sigmoid(), dtype=dt)],
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype,batch_dtype", [(np.float32, np.float32), (np.float64, np.float64),
                                               (np.float32, np.float64)], ids=["f32", "f64", "f64-batch-f32-layers"])
@pytest.mark.parametrize("loss", [SoftmaxCrossEntropy, CrossEntropy, MeanSquaredError])
@pytest.mark.parametrize("network", sorted(NETWORKS))
def test_chain_leaves_what_the_layers_leave(backend, dtype, batch_dtype, loss, network):
    args = (NETWORKS[network], loss, dtype, backend)
    chain_net, chain_losses = _train(NeuralNetwork, *args, batch_dtype=batch_dtype)
    assert _dense_chain(chain_net, np.zeros((2, 7), batch_dtype)) is not None  # the chain ran
    by_layers, layer_losses = _train(LayerByLayer, *args, batch_dtype=batch_dtype)
    assert chain_losses == layer_losses
    assert chain_net._batch_dtype == by_layers._batch_dtype == np.dtype(batch_dtype)
    ours, theirs = _state(chain_net), _state(by_layers)
    assert ours.keys() == theirs.keys()
    for key in ours:
        a, b = ours[key], theirs[key]
        if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
            assert type(a) is type(b) and a.dtype == b.dtype, key
            np.testing.assert_array_equal(a, b, err_msg=key)
        else:
            assert a == b, key


class Float64Gradient(MeanSquaredError):
    """A loss whose gradient comes back in float64 whatever the prediction's dtype: the layers cast it."""

    def _input_grad(self):
        return super()._input_grad().astype(np.float64)


@pytest.mark.parametrize("backend", BACKENDS)
def test_chain_casts_a_loss_gradient_of_another_dtype(backend):
    args = (NETWORKS["mlp"], Float64Gradient, np.float32, backend)
    chain_net, chain_losses = _train(NeuralNetwork, *args)
    by_layers, layer_losses = _train(LayerByLayer, *args)
    assert chain_losses == layer_losses
    for a, b in zip(chain_net.params(), by_layers.params()):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, b)


def test_chain_is_not_taken_where_the_layers_differ():
    x = np.zeros((3, 7), np.float32)
    net = NeuralNetwork(NETWORKS["mlp"](np.float32), loss=SoftmaxCrossEntropy(), seed=1)
    assert _dense_chain(net, x) is None  # not set up yet
    net.forward(x)
    assert _dense_chain(net, x) is not None
    assert _dense_chain(net, x.astype(np.float64)) is not None  # cast once, as the first layer would
    assert _dense_chain(net, x.astype(np.int64)) is None
    assert _dense_chain(net, np.zeros((3, 8), np.float32)) is None  # the first layer reports the width
    assert _dense_chain(net, np.zeros((3, 7, 1), np.float32)) is None
    assert _dense_chain(LayerByLayer(net.layers, loss=SoftmaxCrossEntropy()), x) is None
    mixed = NeuralNetwork([Dense(4, activation=Tanh()), Dense(3, dtype=np.float64)], loss=SoftmaxCrossEntropy())
    mixed.forward(x)
    assert _dense_chain(mixed, x) is None

    class MyDense(Dense):
        pass

    other = NeuralNetwork([MyDense(4, activation=Tanh())], loss=SoftmaxCrossEntropy(), seed=1)
    other.forward(x)
    assert _dense_chain(other, x) is None
    dropout = NeuralNetwork([Dense(4, activation=Tanh(), dropout=0.8)], loss=SoftmaxCrossEntropy(), seed=1)
    dropout.forward(x)
    assert _dense_chain(dropout, x) is None
