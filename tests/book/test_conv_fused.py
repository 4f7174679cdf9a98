"""The Conv2D layer's fused path (activation in the convolution's epilogue, dropout and activation gradients in
one pass) against the same layer run operation by operation, and its gradients against finite differences."""

import numpy as np
import pytest

import fastdl
from fastdl.activations import Linear, ReLU, Sigmoid, Tanh
from fastdl.layers import Conv2D, Layer

BACKENDS = ["numpy"] + (["cpu"] if fastdl.backend.cpu_available() else [])


def _layer(activation, flatten, dropout, dtype):
    layer = Conv2D(5, 3, activation=activation(), flatten=flatten, dropout=dropout, dtype=dtype)
    layer.seed = 7
    return layer


def _run(layer, x, grad_out, fused, need_input_grad=True):
    if not fused:  # the operations one by one, as the book runs them
        layer._forward_ops = lambda x, inference: Layer._forward_ops(layer, x, inference)
        layer._backward_ops = lambda g, need=True: Layer._backward_ops(layer, g, need)
    y = layer.forward(x)
    grad_x = layer.backward(grad_out(y), need_input_grad=need_input_grad)
    return y, grad_x, [g.copy() for g in layer.param_grads]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dropout", [1.0, 0.7])
@pytest.mark.parametrize("flatten", [False, True])
@pytest.mark.parametrize("activation", [Linear, Sigmoid, Tanh, ReLU])
def test_fused_conv_layer_equals_its_operations(backend, activation, flatten, dropout, dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2, 7, 11)).astype(dtype)
    grad_out = lambda y: np.random.default_rng(2).standard_normal(y.shape).astype(dtype)  # noqa: E731
    with fastdl.use_backend(backend):
        fused_layer = _layer(activation, flatten, dropout, dtype)
        assert fused_layer._fused_activation() is None  # not set up yet
        fused = _run(fused_layer, x, grad_out, True)
        assert fused_layer._fused_activation() == activation.__name__.lower()
        ops = _run(_layer(activation, flatten, dropout, dtype), x, grad_out, False)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    for a, b in zip([fused[0], fused[1]] + fused[2], [ops[0], ops[1]] + ops[2]):
        np.testing.assert_allclose(a, b, **tol)
    if dropout < 1:
        assert np.any(fused[0] == 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_first_layer_skips_the_input_gradient(backend):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 1, 6, 6))
    with fastdl.use_backend(backend):
        layer = _layer(Tanh, True, 0.8, np.float64)
        y, grad_x, grads = _run(layer, x, np.ones_like, True, need_input_grad=False)
        full = _run(_layer(Tanh, True, 0.8, np.float64), x, np.ones_like, True)
    assert grad_x is None
    np.testing.assert_allclose(grads[0], full[2][0], rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("activation", [Sigmoid, Tanh])
def test_fused_gradients_against_finite_differences(backend, activation):
    """float64, no dropout (a mask is redrawn each forward): d(sum(y * r))/dx and /dW by central differences."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 2, 5, 4))
    r = rng.standard_normal((2, 5 * 5 * 4))
    with fastdl.use_backend(backend):
        layer = _layer(activation, True, 1.0, np.float64)
        layer.forward(x)
        grad_x = layer.backward(r)
        grad_w = layer.param_grads[0].copy()
        W = layer.params[0]

        def loss():
            return float(np.sum(layer.forward(x) * r))

        for array, grad, indices in ((x, grad_x, [(0, 0, 1, 1), (1, 0, 2, 1), (1, 1, 4, 3)]),
                                     (W, grad_w, [(0, 0, 0, 0), (1, 4, 2, 1), (0, 2, 1, 2)])):
            for index in indices:
                assert grad[index] == pytest.approx(_central_difference(loss, array, index), rel=1e-6, abs=1e-8)


def _central_difference(loss, array, index, h=1e-6):
    array[index] += h
    up = loss()
    array[index] -= 2 * h
    down = loss()
    array[index] += h
    return (up - down) / (2 * h)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("flatten", [False, True])
def test_fused_dropout_draws_the_operations_mask_from_any_first_row(backend, flatten):
    """Chapter 5's first layer (one grey channel, 5x5, tanh, dropout 0.8): the dropout fused into the convolution
    draws the mask the Dropout operation draws, also for rows r0.. of a larger batch (first_row)."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 1, 28, 28)).astype(np.float32)
    grad_out = lambda y: np.random.default_rng(5).standard_normal(y.shape).astype(np.float32)  # noqa: E731
    runs = []
    with fastdl.use_backend(backend):
        for fused in (True, False):
            layer = Conv2D(16, 5, activation=Tanh(), flatten=flatten, dropout=0.8, dtype=np.float32)
            layer.seed = 11
            _run(layer, x, grad_out, fused)  # sets the layer up
            layer.operations[-1].first_row = 2
            runs.append(_run(layer, x, grad_out, fused) + (layer.operations[-1].mask,))
    (y, grad_x, grads, mask), (y_ops, grad_x_ops, grads_ops, mask_ops) = runs
    np.testing.assert_array_equal(mask, mask_ops)
    assert mask.shape == y.shape
    np.testing.assert_allclose(y, y_ops, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(grad_x, grad_x_ops, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grads[0], grads_ops[0], rtol=1e-4, atol=1e-4)
