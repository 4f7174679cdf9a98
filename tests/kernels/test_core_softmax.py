"""fastdl._core's fused softmax cross-entropy and vectorised activations against the NumPy reference,
on every SIMD path this CPU can run (scalar, avx2, avx512, forced with force_vec_isa).
"""

import numpy as np
import pytest

from fastdl.reference import activation, activation_backward, cross_entropy, softmax_cross_entropy

core = pytest.importorskip("fastdl._core", reason="the C++ extension fastdl._core is not built")

TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}
LOSS_TOL = {np.float32: dict(rtol=2e-5, atol=1e-6), np.float64: dict(rtol=1e-11, atol=1e-13)}


def _runnable(name):
    try:
        core.force_vec_isa(name)
    except ValueError:
        return False
    finally:
        core.force_vec_isa("auto")
    return True


ISAS = [name for name in ("scalar", "avx2", "avx512") if _runnable(name)]


@pytest.fixture(params=ISAS)
def isa(request):
    core.force_vec_isa(request.param)
    assert core.vec_isa() == request.param
    yield request.param
    core.force_vec_isa("auto")


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(5)


def _onehot(labels, classes, dtype):
    return np.eye(classes, dtype=dtype)[labels]


def _check(logits, target, dtype, book, loss_scale=None, grad_scale=None):
    """core.softmax_cross_entropy against the reference (which divides by B); returns (loss, grad)."""
    batch = logits.shape[0]
    ls = 1.0 / batch if loss_scale is None else loss_scale
    gs = 1.0 / batch if grad_scale is None else grad_scale
    ref_fn = softmax_cross_entropy if book else cross_entropy
    ref_loss, ref_grad = ref_fn(logits, target)
    snapshot = logits.copy(), target.copy()
    loss, grad = core.softmax_cross_entropy(logits, target, 1e-9, book, ls, gs)
    np.testing.assert_array_equal(snapshot[0], logits)
    np.testing.assert_array_equal(snapshot[1], target)
    assert isinstance(loss, float)
    assert grad.dtype == dtype and grad.shape == logits.shape
    # the reference is the mean; rescale it to what was asked
    np.testing.assert_allclose(loss, ref_loss * batch * ls, **LOSS_TOL[dtype])
    np.testing.assert_allclose(grad, ref_grad * (batch * gs), **TOL[dtype])
    return loss, grad


SHAPES = [(1, 1), (1, 2), (3, 7), (5, 13), (7, 31), (2, 33), (17, 97), (33, 129), (64, 1000), (4, 4099)]


@pytest.mark.parametrize("book", [True, False], ids=["book", "ce"])
@pytest.mark.parametrize("kind", ["onehot", "labels"])
@pytest.mark.parametrize("batch,classes", SHAPES)
def test_softmax_cross_entropy_matches_reference(isa, dtype, rng, book, kind, batch, classes):
    logits = (rng.standard_normal((batch, classes)) * 3).astype(dtype)
    labels = rng.integers(0, classes, size=batch)
    target = labels.astype(np.int64) if kind == "labels" else _onehot(labels, classes, dtype)
    _check(logits, target, dtype, book)


@pytest.mark.parametrize("book", [True, False], ids=["book", "ce"])
def test_summed_variant(isa, dtype, rng, book):
    """Chapter 6: loss and grad summed, not divided by B (loss_scale = grad_scale = 1)."""
    logits = rng.standard_normal((40, 62)).astype(dtype)
    labels = rng.integers(0, 62, size=40)
    for target in (labels.astype(np.int64), _onehot(labels, 62, dtype)):
        loss, _ = _check(logits, target, dtype, book, loss_scale=1.0, grad_scale=1.0)
    if book:  # a uniform prediction gives ln V + (V-1)(-ln(1-1/V)) per row (the book's chapter 6 value)
        loss, grad = core.softmax_cross_entropy(np.zeros((32, 62), dtype), labels[:32].astype(np.int64), 1e-9, True, 1.0, 1.0)
        assert loss == pytest.approx(32 * 5.119, abs=0.01 * 32)


def test_soft_targets(isa, dtype, rng):
    """A dense probability target takes the per-lane path for every element."""
    logits = rng.standard_normal((9, 45)).astype(dtype)
    target = rng.random((9, 45)).astype(dtype)
    target /= target.sum(axis=1, keepdims=True)
    for book in (True, False):
        _check(logits, target, dtype, book)


@pytest.mark.parametrize("book", [True, False], ids=["book", "ce"])
@pytest.mark.parametrize("fill", [1e4, -1e4, -1e30, 0.0])
def test_extreme_logits(isa, dtype, rng, book, fill):
    logits = rng.standard_normal((4, 37)).astype(dtype)
    logits[:, 2] = fill
    logits[1] = fill  # a row of equal values
    labels = np.array([2, 0, 36, 1])
    for target in (labels, _onehot(labels, 37, dtype)):
        loss, grad = _check(logits, target, dtype, book)
        assert np.isfinite(loss) and np.all(np.isfinite(grad))


def test_confident_rows(isa, dtype):
    """Every row right with a huge margin: the loss is tiny and must stay accurate (no cancellation)."""
    logits = np.zeros((6, 20), dtype)
    labels = np.arange(6) * 3
    logits[np.arange(6), labels] = 1e4
    for book in (True, False):
        for target in (labels, _onehot(labels, 20, dtype)):
            _check(logits, target, dtype, book)


def test_single_class(isa, dtype):
    logits = np.array([[3.0], [-1e30], [0.0]], dtype)
    for book in (True, False):
        loss, grad = _check(logits, np.zeros(3, np.int64), dtype, book)
        if not book:  # p = 1 exactly (the book's float64 clip leaves -eps / B)
            assert np.all(grad == 0) and loss == 0.0


def test_threads_do_not_change_the_result(isa, rng):
    """Rows split across threads, losses summed in a fixed order: bitwise the same every call."""
    logits = rng.standard_normal((300, 1000)).astype(np.float32)
    labels = rng.integers(0, 1000, size=300)
    first = core.softmax_cross_entropy(logits, labels, 1e-9, True, 1 / 300, 1 / 300)
    for _ in range(3):
        again = core.softmax_cross_entropy(logits, labels, 1e-9, True, 1 / 300, 1 / 300)
        assert again[0] == first[0]
        np.testing.assert_array_equal(again[1], first[1])


def test_softmax_cross_entropy_rejects_bad_input(dtype):
    logits = np.zeros((3, 4), dtype)
    with pytest.raises(ValueError):
        core.softmax_cross_entropy(logits, np.array([0, 4, 1]), 1e-9, True, 1.0, 1.0)  # label out of range
    with pytest.raises(ValueError):
        core.softmax_cross_entropy(logits, np.array([0, -1, 1]), 1e-9, True, 1.0, 1.0)
    with pytest.raises(ValueError):
        core.softmax_cross_entropy(logits, np.array([0, 1]), 1e-9, True, 1.0, 1.0)  # wrong batch
    with pytest.raises(ValueError):
        core.softmax_cross_entropy(logits, np.zeros((3, 5), dtype), 1e-9, True, 1.0, 1.0)  # wrong shape
    with pytest.raises(ValueError):
        core.softmax_cross_entropy(np.zeros((3, 0), dtype), np.zeros((3, 0), dtype), 1e-9, True, 1.0, 1.0)
    with pytest.raises(ValueError):
        core.softmax_cross_entropy(logits, np.array([0, 1, 2]), 0.0, True, 1.0, 1.0)  # eps
    with pytest.raises(TypeError):  # mixed dtypes are not converted
        core.softmax_cross_entropy(logits, np.zeros((3, 4), np.float32 if dtype == np.float64 else np.float64),
                          1e-9, True, 1.0, 1.0)
    with pytest.raises(TypeError):  # non-contiguous arrays are not copied
        core.softmax_cross_entropy(np.zeros((3, 8), dtype)[:, ::2], np.array([0, 1, 2]), 1e-9, True, 1.0, 1.0)


def test_force_vec_isa_rejects_unknown_names():
    with pytest.raises(ValueError):
        core.force_vec_isa("sse9")
    assert core.vec_isa() in ("scalar", "avx2", "avx512")


# ------------------------------------------------------------------------------------------------
# activations
# ------------------------------------------------------------------------------------------------

NAMES = ["linear", "sigmoid", "tanh", "relu"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(1,), (7,), (3, 5), (2, 3, 17), (1000,), (257, 129)])
def test_activation_matches_reference(isa, dtype, rng, name, shape):
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    grad_y = rng.standard_normal(shape).astype(dtype)
    x_before = x.copy()
    y = core.activation_forward(x, name)
    np.testing.assert_array_equal(x, x_before)
    ref_y = activation(x, name)
    assert y.dtype == dtype and y.shape == x.shape
    np.testing.assert_allclose(y, ref_y, **TOL[dtype])
    g = core.activation_backward(ref_y, grad_y, name)
    assert g.dtype == dtype and g.shape == x.shape
    np.testing.assert_allclose(g, activation_backward(ref_y, grad_y, name), **TOL[dtype])


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_activation_accuracy_in_ulp(isa, dtype, name):
    """The polynomial exp paths stay within a few ulp of NumPy, near 0 and in the tails alike."""
    x = np.concatenate([np.linspace(-30, 30, 20001), np.geomspace(1e-8, 1, 2001), -np.geomspace(1e-8, 1, 2001),
                        [0.0, -0.0, 1e4, -1e4, 80.0, -80.0, 700.0, -700.0]]).astype(dtype)
    y = core.activation_forward(x, name)
    ref = activation(x, name)
    ulp = np.spacing(np.abs(ref).astype(dtype))
    err = np.abs(y - ref) / ulp
    tiny = np.abs(ref) < (1e-30 if dtype == np.float32 else 1e-300)  # flushed tails: absolute error only
    assert np.max(err[~tiny]) <= 4, f"max error {np.max(err[~tiny]):.1f} ulp"
    assert np.all(np.abs(y[tiny]) <= 1e-30)
    assert np.all(np.abs(y) <= 1) and np.all(np.isfinite(y))
    assert np.array_equal(np.signbit(y[x == 0]), np.signbit(ref[x == 0]))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("size", [1, 15, 16, 17, 131, 4099, 300_001])
def test_activation_gradient_through_a_mask(isa, dtype, rng, name, size):
    """With a dropout's keep mask, a dropped unit's gradient is exactly 0, even where y or grad_y hold inf or
    NaN; a kept one is the unmasked gradient, bit for bit."""
    y = activation((rng.standard_normal(size) * 3).astype(dtype), name)
    g = rng.standard_normal(size).astype(dtype)
    mask = rng.random(size) < 0.7
    dropped = np.flatnonzero(~mask)
    g[dropped[::2]] = np.nan
    y[dropped[1::2]] = np.inf
    inputs = [a.copy() for a in (y, g, mask)]
    got = core.activation_backward(y, g, name, mask)
    np.testing.assert_array_equal(got[mask], core.activation_backward(y, g, name)[mask])
    assert np.all(got[~mask] == 0) and not np.any(np.signbit(got[~mask]))
    np.testing.assert_allclose(got, activation_backward(y, g, name, mask=mask), **TOL[dtype])
    for a, b in zip((y, g, mask), inputs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_activation_large_threaded(isa, rng, name):
    x = (rng.standard_normal(300_001) * 5).astype(np.float32)
    g = rng.standard_normal(300_001).astype(np.float32)
    y = core.activation_forward(x, name)
    np.testing.assert_allclose(y, activation(x, name), **TOL[np.float32])
    np.testing.assert_allclose(core.activation_backward(y, g, name), activation_backward(y, g, name),
                               **TOL[np.float32])


def test_activation_rejects_bad_input():
    x = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError):
        core.activation_forward(x, "softplus")
    with pytest.raises(ValueError):
        core.activation_backward(x, np.zeros((4, 3), np.float32), "tanh")
    with pytest.raises(TypeError):
        core.activation_backward(x, np.zeros((3, 4), np.float64), "tanh")
