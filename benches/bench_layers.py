"""Whole book layers, forward + backward, on the numpy reference vs cpu (vs cuda): fp32."""

import numpy as np
import pytest

from conftest import record
from fastdl.activations import ReLU, Sigmoid, Tanh
from fastdl.layers import Conv2D, Dense


def _layer_step(layer, x):
    out = layer.forward(x)
    grad = np.ones_like(out)

    def step():
        layer.forward(x)
        return layer.backward(grad)
    return step


@pytest.mark.parametrize("batch", [64])
def test_dense_sigmoid(benchmark, backend_name, rng, batch):
    layer = Dense(256, activation=Sigmoid())
    layer.seed = 1
    x = rng.standard_normal((batch, 784)).astype(np.float32)
    group = f"Dense(256, Sigmoid) fwd+bwd {batch}x784"
    benchmark.group = group
    benchmark(_layer_step(layer, x))
    record(benchmark, group, backend_name, flop=3 * 2.0 * batch * 784 * 256)


@pytest.mark.parametrize("c_in,c_out,k,hw,act", [(1, 16, 5, 28, Tanh), (16, 32, 3, 14, ReLU)],
                         ids=["1->16 k5 28x28 tanh", "16->32 k3 14x14 relu"])
def test_conv2d(benchmark, backend_name, rng, c_in, c_out, k, hw, act):
    layer = Conv2D(c_out, k, activation=act())
    layer.seed = 1
    x = rng.standard_normal((32, c_in, hw, hw)).astype(np.float32)
    group = f"Conv2D {c_in}->{c_out} k{k} {hw}x{hw} b32 {act.__name__}"
    benchmark.group = group
    benchmark(_layer_step(layer, x))
    record(benchmark, group, backend_name, flop=3 * 2.0 * 32 * c_in * c_out * k * k * hw * hw)
