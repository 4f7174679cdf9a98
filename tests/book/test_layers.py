"""Operations and layers against direct NumPy math and finite differences (float64), plus the
book API's state rules: in-place parameter updates, deepcopy, seeds, dtypes, lazy set-up."""

import copy

import numpy as np
import pytest
from helpers import numerical_grad

from fastdl.activations import Linear, ReLU, Sigmoid, Tanh
from fastdl.base import Operation
from fastdl.conv import Conv2D_Op
from fastdl.dense import BiasAdd, WeightMultiply
from fastdl.dropout import Dropout
from fastdl.layers import Conv2D, Dense, Layer
from fastdl.reshape import Flatten

F64 = np.float64
ACTS = {Linear: lambda z: z, Sigmoid: lambda z: 1 / (1 + np.exp(-z)), Tanh: np.tanh,
        ReLU: lambda z: np.maximum(z, 0)}


def check_layer_grads(layer, x, rng, atol=1e-6):
    """Analytic input and parameter gradients of sum(R * layer(x)) against finite differences."""
    out = layer.forward(x)
    R = rng.normal(size=out.shape)
    grad_x = layer.backward(R.copy())
    analytic = [grad_x] + [g.copy() for g in layer.param_grads]
    f = lambda: float(np.sum(R * layer.forward(x)))  # noqa: E731  (params change in place)
    for a, num in zip(analytic, [numerical_grad(f, x)] + [numerical_grad(f, p) for p in layer.params]):
        np.testing.assert_allclose(a, num, rtol=1e-5, atol=atol)


def conv_loops(x, w, stride, before, after):
    """Direct cross-correlation: y[b,o,i,j] = sum_{c,p,q} w[c,o,p,q] xpad[b,c,i*s+p,j*s+q]."""
    xp = np.pad(x, ((0, 0), (0, 0), (before, after), (before, after)))
    K = w.shape[2]
    Ho = (xp.shape[2] - K) // stride + 1
    Wo = (xp.shape[3] - K) // stride + 1
    y = np.zeros((x.shape[0], w.shape[1], Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            patch = xp[:, :, i * stride:i * stride + K, j * stride:j * stride + K]
            y[:, :, i, j] = np.einsum("bcpq,copq->bo", patch, w)
    return y


# ----------------------------------------------------------------------------------------------
# operations
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", list(ACTS))
def test_activation_forward_backward(cls, rng):
    x = rng.normal(size=(4, 5))
    x[0, 0] = -0.5  # ReLU's book bug passed gradient through negative inputs
    op = cls()
    np.testing.assert_allclose(op.forward(x), ACTS[cls](x), rtol=1e-12, atol=1e-15)
    g = rng.normal(size=x.shape)
    grad = op.backward(g)
    f = lambda: float(np.sum(g * cls().forward(x)))  # noqa: E731
    np.testing.assert_allclose(grad, numerical_grad(f, x), rtol=1e-5, atol=1e-7)
    if cls is ReLU:
        assert grad[0, 0] == 0.0 and np.array_equal(grad, g * (x > 0))


def test_weight_multiply_and_bias_add_match_numpy(rng):
    x, W, B, g = rng.normal(size=(3, 4)), rng.normal(size=(4, 2)), rng.normal(size=(1, 2)), rng.normal(size=(3, 2))
    wm, ba = WeightMultiply(W), BiasAdd(B)
    np.testing.assert_allclose(wm.forward(x), x @ W, rtol=1e-12)
    np.testing.assert_allclose(wm.backward(g), g @ W.T, rtol=1e-12)
    np.testing.assert_allclose(wm.param_grad, x.T @ g, rtol=1e-12)
    np.testing.assert_allclose(ba.forward(x @ W), x @ W + B, rtol=1e-12)
    np.testing.assert_allclose(ba.backward(g), g)
    np.testing.assert_allclose(ba.param_grad, g.sum(axis=0, keepdims=True), rtol=1e-12)


def test_flatten_and_operation_shape_checks(rng):
    x = rng.normal(size=(2, 3, 4, 5))
    op = Flatten()
    assert np.array_equal(op.forward(x), x.reshape(2, 60))
    assert np.array_equal(op.backward(np.arange(120.0).reshape(2, 60)), np.arange(120.0).reshape(x.shape))
    with pytest.raises(AssertionError):
        op.backward(np.zeros((2, 59)))


def test_head_style_operation_without_inference_argument(rng):
    class Double(Operation):  # lincoln HEAD / ch.3 style: _output(self)
        def _output(self):
            return 2 * self.input_

        def _input_grad(self, output_grad):
            return 2 * output_grad

    x = rng.normal(size=(2, 3))
    assert np.array_equal(Double().forward(x, inference=True), 2 * x)


def test_dropout_keep_prob_semantics_and_seeding():
    x = np.ones((200, 50))
    op = Dropout(0.8, seed=3)
    y = op.forward(x)
    assert set(np.unique(y)) <= {0.0, 1.0} and abs(y.mean() - 0.8) < 0.02  # no 1/keep_prob rescaling
    assert np.array_equal(op.backward(np.full(x.shape, 2.0)), 2.0 * op.mask)
    assert np.array_equal(op.forward(x, inference=True), 0.8 * x)
    assert np.array_equal(Dropout(0.8, seed=3).forward(x), y)  # the mask generator is seeded
    state = np.random.get_state()[1].copy()
    Dropout(0.5).forward(x)
    assert np.array_equal(np.random.get_state()[1], state), "dropout must not use the global NumPy RNG"


# ----------------------------------------------------------------------------------------------
# Dense
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", list(ACTS))
def test_dense_forward_and_gradients_float64(cls, rng):
    layer = Dense(3, cls(), dtype=F64)
    layer.seed = 5
    x = rng.normal(size=(4, 6))
    out = layer.forward(x)
    W, B = layer.params
    assert W.shape == (6, 3) and B.shape == (1, 3) and W.dtype == F64
    np.testing.assert_allclose(out, ACTS[cls](x @ W + B), rtol=1e-12, atol=1e-14)
    check_layer_grads(layer, x, rng)
    assert layer.param_grads[1].shape == (1, 3)


class TanhSubclass(Tanh):
    """Not one of fastdl's own classes, so Dense runs its operations one by one (no fusion)."""


def test_dense_fused_path_equals_operation_by_operation(rng):
    x = rng.normal(size=(5, 4))
    g = rng.normal(size=(5, 3))
    fused, plain = Dense(3, Tanh(), dtype=F64), Dense(3, TanhSubclass(), dtype=F64)
    fused.seed = plain.seed = 11
    np.testing.assert_allclose(fused.forward(x), plain.forward(x), rtol=1e-13)
    np.testing.assert_allclose(fused.backward(g), plain.backward(g), rtol=1e-12)
    for a, b in zip(fused.param_grads, plain.param_grads):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    assert [type(op) for op in fused.operations] == [WeightMultiply, BiasAdd, Tanh]
    assert fused.operations[0].param is fused.params[0] and fused.operations[1].param is fused.params[1]
    assert fused.operations[0].param_grad is fused.param_grads[0]


def test_dense_with_dropout_gradients(rng):
    layer = Dense(4, Sigmoid(), dropout=0.7, dtype=F64)
    layer.seed = 2
    x = rng.normal(size=(6, 3))
    out = layer.forward(x)
    drop = layer.operations[-1]
    assert isinstance(drop, Dropout)
    W, B = layer.params
    np.testing.assert_allclose(out, ACTS[Sigmoid](x @ W + B) * drop.mask, rtol=1e-12)
    np.testing.assert_allclose(layer.forward(x, inference=True), 0.7 * ACTS[Sigmoid](x @ W + B), rtol=1e-12)
    g = rng.normal(size=out.shape)
    layer.forward(x)
    gx = layer.backward(g)
    dz = g * layer.operations[-1].mask * layer.operations[2].output * (1 - layer.operations[2].output)
    np.testing.assert_allclose(gx, dz @ W.T, rtol=1e-11)
    np.testing.assert_allclose(layer.param_grads[0], x.T @ dz, rtol=1e-11)


def test_in_place_updates_are_used_by_the_next_forward(rng):
    layer = Dense(3, Tanh())
    layer.seed = 1
    x = rng.normal(size=(2, 4)).astype(np.float32)
    before = layer.forward(x)
    W, B = layer.params
    W -= 0.5  # what every optimizer does
    B *= 0.0
    after = layer.forward(x)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, np.tanh(x @ W + B), rtol=1e-5, atol=1e-6)
    assert layer.params[0] is W  # forward never replaces the parameter arrays


def test_dense_seeds_dtype_and_lazy_setup(rng):
    x = rng.normal(size=(3, 4))  # float64 input, float32 layer
    a, b, c = Dense(5), Dense(5), Dense(5)
    a.seed = b.seed = 42
    c.seed = 43
    state = np.random.get_state()[1].copy()
    ya = a.forward(x)
    assert np.array_equal(np.random.get_state()[1], state), "no global np.random.seed side effect"
    # computed in the layer's float32, handed back in the caller's float64
    assert a.output.dtype == np.float32 and a.params[0].dtype == np.float32 and a.input_.dtype == np.float32
    assert ya.dtype == np.float64 and np.array_equal(ya, a.output)
    b.forward(x)
    c.forward(x)
    assert np.array_equal(a.params[0], b.params[0]) and not np.array_equal(a.params[0], c.params[0])
    unseeded = Dense(5)  # falsy / missing seed: no crash (book bug)
    unseeded.seed = 0
    unseeded.forward(x)
    Dense(2).forward(x)
    first_W = a.params[0]
    a.first = True  # the Trainer's restart: re-initialise from the same seed
    a.forward(x)
    assert a.params[0] is not first_W and np.array_equal(a.params[0], first_W)


def test_glorot_scale_and_random_bias():
    layer = Dense(300, weight_init="glorot", dtype=F64)
    layer.seed = 0
    layer.forward(np.zeros((1, 500)))
    W, B = layer.params
    assert abs(W.std() - 2 / 800) < 0.05 * 2 / 800  # L2019: std = 2 / (in + out), not square-rooted
    assert np.all(B != 0) and abs(B.std() - 2 / 800) < 0.2 * 2 / 800


def test_output_grad_shape_is_checked(rng):
    layer = Dense(3)
    layer.forward(rng.normal(size=(2, 4)))
    with pytest.raises(AssertionError):
        layer.backward(np.zeros((2, 4)))


# ----------------------------------------------------------------------------------------------
# Conv2D
# ----------------------------------------------------------------------------------------------

def test_conv_op_matches_loops_and_finite_differences(rng):
    x = rng.normal(size=(2, 2, 5, 5))
    W = rng.normal(size=(2, 3, 3, 3))  # non-symmetric kernel, batch 2: both book bugs would show
    op = Conv2D_Op(W)
    assert (op.param_size, op.param_pad) == (3, 1)
    y = op.forward(x)
    np.testing.assert_allclose(y, conv_loops(x, W, 1, 1, 1), rtol=1e-12, atol=1e-12)
    R = rng.normal(size=y.shape)
    gx = op.backward(R)
    f = lambda: float(np.sum(R * Conv2D_Op(W).forward(x)))  # noqa: E731
    np.testing.assert_allclose(gx, numerical_grad(f, x), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(op.param_grad, numerical_grad(f, W), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("stride,padding,K,hw", [(2, "same", 3, (6, 5)), (1, "valid", 2, (4, 6)), (2, 1, 4, (7, 7))])
def test_conv2d_layer_generalised(stride, padding, K, hw, rng):
    layer = Conv2D(2, K, activation=Tanh(), flatten=True, stride=stride, padding=padding, dtype=F64)
    layer.seed = 9
    x = rng.normal(size=(2, 3, *hw))
    out = layer.forward(x)
    W = layer.params[0]
    assert W.shape == (3, 2, K, K) and len(layer.params) == 1
    before, after = {"same": ((K - 1) // 2, K // 2), "valid": (0, 0)}.get(padding, (padding, padding))
    np.testing.assert_allclose(out, np.tanh(conv_loops(x, W, stride, before, after)).reshape(2, -1),
                               rtol=1e-12, atol=1e-12)
    check_layer_grads(layer, x, rng)


def test_conv2d_layer_operations_and_dropout(rng):
    layer = Conv2D(4, 3, dropout=0.5, weight_init="glorot", activation=ReLU(), flatten=True)
    layer.seed = 3
    out = layer.forward(rng.normal(size=(2, 1, 6, 6)))
    assert out.shape == (2, 4 * 36) and out.dtype == np.float64 and layer.output.dtype == np.float32
    assert [type(op) for op in layer.operations] == [Conv2D_Op, ReLU, Flatten, Dropout]
    assert layer.operations[0].param is layer.params[0]
    layer.backward(np.ones_like(out))
    assert layer.param_grads[0].shape == (1, 4, 3, 3)


# ----------------------------------------------------------------------------------------------
# deepcopy and custom layers
# ----------------------------------------------------------------------------------------------

def test_deepcopy_gives_an_independent_working_layer(rng):
    layer = Dense(3, ReLU(), dropout=0.9)
    layer.seed = 4
    x = rng.normal(size=(5, 2)).astype(np.float32)
    layer.forward(x)
    clone = copy.deepcopy(layer)
    np.testing.assert_array_equal(clone.forward(x, inference=True), layer.forward(x, inference=True))
    assert clone.params[0] is not layer.params[0]
    assert clone.operations[0].param is clone.params[0]  # the shared-array link survives the copy
    clone.params[0] += 1.0
    assert not np.allclose(clone.forward(x, inference=True), layer.forward(x, inference=True))
    conv = Conv2D(2, 3)
    conv.forward(rng.normal(size=(1, 1, 4, 4)))
    copy.deepcopy(conv).forward(rng.normal(size=(1, 1, 4, 4)))


def test_base_layer_keeps_dtype_and_runs_custom_operations(rng):
    class Scale(Layer):
        def _setup_layer(self, input_):
            self.operations = [Sigmoid()]

    layer = Scale(0)
    x = rng.normal(size=(2, 2))
    y = layer.forward(x)
    assert y.dtype == F64  # the base class does not cast
    np.testing.assert_allclose(layer.backward(np.ones_like(y)), y * (1 - y))
    assert layer.param_grads == []


# ----------------------------------------------------------------------------------------------
# losses (the book's conventions)
# ----------------------------------------------------------------------------------------------

def test_softmax_cross_entropy_book_value_and_gradient(rng):
    from fastdl.losses import SoftmaxCrossEntropy

    z = rng.normal(size=(5, 4))
    y = np.eye(4)[rng.integers(0, 4, 5)]
    loss = SoftmaxCrossEntropy()
    value = loss.forward(z, y)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p = np.clip(p / p.sum(axis=1, keepdims=True), 1e-9, 1 - 1e-9)
    np.testing.assert_allclose(value, np.sum(-y * np.log(p) - (1 - y) * np.log(1 - p)) / 5, rtol=1e-12)
    np.testing.assert_allclose(loss.backward(), (p - y) / 5, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(loss.softmax_preds, p, rtol=1e-12)
    assert loss.prediction is z and loss.target is y and loss.output == value
    # integer labels give the same numbers; float64 targets are cast to float32 predictions
    np.testing.assert_allclose(SoftmaxCrossEntropy().forward(z, np.argmax(y, axis=1)), value, rtol=1e-12)
    assert SoftmaxCrossEntropy().forward(z.astype(np.float32), y) == pytest.approx(value, rel=1e-5)


def test_cross_entropy_and_mse(rng):
    from fastdl.losses import CrossEntropy, MeanSquaredError

    z = rng.normal(size=(6, 3))
    labels = rng.integers(0, 3, 6)
    ce = CrossEntropy()
    value = ce.forward(z, labels)
    logp = z - z.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(value, -logp[np.arange(6), labels].mean(), rtol=1e-12)
    np.testing.assert_allclose(ce.backward(), (np.exp(logp) - np.eye(3)[labels]) / 6, rtol=1e-12, atol=1e-15)

    t = rng.normal(size=(6, 3))
    mse = MeanSquaredError()
    np.testing.assert_allclose(mse.forward(z, t), np.sum((z - t) ** 2) / 6, rtol=1e-12)  # / N only
    np.testing.assert_allclose(mse.backward(), 2 * (z - t) / 6, rtol=1e-12)
    with pytest.raises(AssertionError):
        mse.forward(z, t[:, :2])


def test_dropout_inference_on_integer_input_scales_not_truncates():
    from fastdl.dropout import Dropout

    out = Dropout(0.5).forward(np.array([2, 4]), inference=True)
    np.testing.assert_allclose(out, [1.0, 2.0])
