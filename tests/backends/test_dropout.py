"""The dropout kernels: the counter-hashed mask is the same on every backend, keeps the right fraction,
and depends only on (seed, shape, keep_prob); the Dropout operation on top of them."""

import numpy as np
import pytest

import fastdl
from fastdl import kernels
from fastdl.reference.dropout import hash_bits
from conftest import ACCELERATED
from helpers import numerical_grad, to_host

SEED = 0xDEADBEEF12345678


def _mix32_scalar(h):
    h ^= h >> 16
    h = (h * 0x7FEB352D) & 0xFFFFFFFF
    h ^= h >> 15
    h = (h * 0x846CA68B) & 0xFFFFFFFF
    return h ^ (h >> 16)


def _bits_scalar(i, key):
    """The hash of dropout_hash.hpp written out on Python ints."""
    k0, k1 = key & 0xFFFFFFFF, key >> 32
    lo, hi = i & 0xFFFFFFFF, i >> 32
    return _mix32_scalar((_mix32_scalar(lo ^ k0) + (hi ^ k1)) & 0xFFFFFFFF)


@pytest.mark.parametrize("key", [0, 1, SEED, 2**64 - 1])
def test_reference_hash_matches_the_written_out_recipe(key):
    index = [0, 1, 2, 63, 64, 1000003, 2**32 - 1, 2**32, 2**32 + 5, 2**40 + 17, 2**63 + 9]
    got = hash_bits(np.array(index, dtype=np.uint64), key)
    assert got.dtype == np.uint32
    assert got.tolist() == [_bits_scalar(i, key) for i in index]


@pytest.mark.parametrize("shape", [(1,), (7,), (3, 61), (2, 5, 127), (60, 16, 28, 28), (0, 3)])
@pytest.mark.parametrize("keep_prob", [0.1, 0.5, 0.8, 1.0])
def test_backend_masks_equal_the_reference(backend_name, dtype, shape, keep_prob, rng):
    x = rng.standard_normal(shape).astype(dtype)
    before = x.copy()
    with fastdl.use_backend("numpy"):
        y_ref, m_ref = kernels.dropout(x, keep_prob, SEED)
    with fastdl.use_backend(backend_name):
        y, m = (to_host(a) for a in kernels.dropout(x, keep_prob, SEED))
    np.testing.assert_array_equal(x, before)
    assert m.dtype == np.bool_ and m.shape == shape and y.dtype == dtype and y.shape == shape
    np.testing.assert_array_equal(m, m_ref)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(y, np.where(m_ref, x, 0))
    if keep_prob == 1.0:
        assert m.all()


@pytest.mark.parametrize("rows", [(0, 1), (0, 4), (3, 7), (5, 7), (2, 3)])
def test_first_gives_those_rows_of_the_whole_mask(backend_name, dtype, rows, rng):
    """A shard of rows r0:r1 with first = r0 * row size draws exactly those rows of the whole batch's mask."""
    x = rng.standard_normal((7, 3, 13)).astype(dtype)
    r0, r1 = rows
    with fastdl.use_backend("numpy"):
        y_all, m_all = kernels.dropout(x, 0.6, SEED)
    with fastdl.use_backend(backend_name):
        y, m = (to_host(a) for a in kernels.dropout(np.ascontiguousarray(x[r0:r1]), 0.6, SEED, first=r0 * 39))
    np.testing.assert_array_equal(m, m_all[r0:r1])
    np.testing.assert_array_equal(y, y_all[r0:r1])


def test_first_past_2_to_the_32(backend_name):
    """Indices past 2**32 use the key's high half: the offset mask is the reference's at those indices."""
    x = np.ones(1001, np.float32)
    first = 2**32 - 500
    with fastdl.use_backend(backend_name):
        m = to_host(kernels.dropout(x, 0.5, SEED, first=first)[1])
    want = (hash_bits(np.arange(first, first + 1001, dtype=np.uint64), SEED) >> np.uint32(8)) < np.uint32(2**23)
    np.testing.assert_array_equal(m, want)


@pytest.mark.parametrize("first", [-1, 1.5, "3", 2**64, None])
def test_bad_first_is_refused(first):
    with pytest.raises(ValueError, match="dropout: first must be an int"):
        kernels.dropout(np.ones(3), 0.5, SEED, first=first)


def test_first_plus_size_past_2_to_the_64_is_refused():
    with pytest.raises(ValueError, match="first \\+ x.size"):
        kernels.dropout(np.ones(3), 0.5, SEED, first=2**64 - 2)


@pytest.mark.parametrize("shape", [(1,), (3, 61), (2, 5, 127)])
def test_backward_equals_the_reference(backend_name, dtype, shape, rng):
    g = rng.standard_normal(shape).astype(dtype)
    mask = rng.random(shape) < 0.7
    with fastdl.use_backend(backend_name):
        gx = to_host(kernels.dropout_backward(g, mask))
    assert gx.dtype == dtype
    np.testing.assert_array_equal(gx, np.where(mask, g, 0))


def test_gradient_by_finite_differences(rng):
    """dropout is linear in x for a fixed seed: its gradient is the mask, checked numerically (float64)."""
    x = rng.standard_normal((4, 9))
    g = rng.standard_normal((4, 9))
    for backend in ["numpy"] + ACCELERATED:
        with fastdl.use_backend(backend):
            _, mask = kernels.dropout(x, 0.6, SEED)
            analytic = to_host(kernels.dropout_backward(g, to_host(mask)))

            def loss():
                return float(np.sum(to_host(kernels.dropout(x, 0.6, SEED)[0]) * g))
            np.testing.assert_allclose(analytic, numerical_grad(loss, x), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("keep_prob", [0.05, 0.5, 0.8, 0.99])
def test_keep_fraction(backend_name, keep_prob):
    n = 1_000_003
    with fastdl.use_backend(backend_name):
        _, mask = kernels.dropout(np.ones(n, np.float32), keep_prob, SEED)
    kept = to_host(mask).mean()
    sigma = np.sqrt(keep_prob * (1 - keep_prob) / n)
    assert abs(kept - keep_prob) < 5 * sigma, (kept, keep_prob)


def test_masks_look_independent():
    """Neighbouring elements, neighbouring seeds and the two halves of the key give unrelated masks."""
    n = 200_000
    x = np.ones(n)
    m = {key: kernels.dropout(x, 0.5, key)[1] for key in (SEED, SEED + 1, SEED ^ (1 << 40), 0, 1)}
    for a, b in [(SEED, SEED + 1), (SEED, SEED ^ (1 << 40)), (0, 1)]:
        agree = np.mean(m[a] == m[b])
        assert abs(agree - 0.5) < 5 * np.sqrt(0.25 / n), (a, b, agree)
    lag = np.mean(m[SEED][1:] == m[SEED][:-1])
    assert abs(lag - 0.5) < 5 * np.sqrt(0.25 / n)


@pytest.mark.skipif("cpu" not in ACCELERATED, reason="needs the C++ extension")
def test_cpu_mask_independent_of_thread_count(restore_threads):
    x = np.ones((3, 100_003), np.float32)
    masks = []
    for threads in (1, 2, 3):
        fastdl.set_num_threads(threads)
        with fastdl.use_backend("cpu"):
            masks.append(kernels.dropout(x, 0.8, SEED)[1])
    for m in masks[1:]:
        np.testing.assert_array_equal(m, masks[0])


def test_dropout_operation_same_on_every_backend(rng):
    """The book's Dropout op with a seed: the same masks, outputs and gradients on every backend."""
    from fastdl.dropout import Dropout

    x = rng.standard_normal((6, 11)).astype(np.float32)
    g = rng.standard_normal((6, 11)).astype(np.float32)
    results = {}
    for backend in ["numpy"] + ACCELERATED:
        with fastdl.use_backend(backend):
            op = Dropout(0.7, seed=42)
            outs = [to_host(op.forward(x)) for _ in range(3)]  # a new mask every call
            grad = to_host(op.backward(g))
            results[backend] = (outs, grad, to_host(op.mask))
            inference = op.forward(x, inference=True)
            np.testing.assert_allclose(inference, x * np.float32(0.7))
    outs, grad, mask = results["numpy"]
    assert not np.array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(grad, np.where(mask, g, 0))
    for backend, (o, gr, m) in results.items():
        for a, b in zip(o, outs):
            np.testing.assert_array_equal(a, b, err_msg=backend)
        np.testing.assert_array_equal(gr, grad, err_msg=backend)


def test_cuda_keep_test_types_as_uint64_under_numba():
    """The CUDA kernel's keep test, compiled by Numba's CPU JIT (same integer typing as on a GPU):
    bit for bit the reference for indices past 2**32 (uint64 mixed with int64 would turn into floats)."""
    numba = pytest.importorskip("numba")
    from fastdl.cuda.dropout import make_keep

    keep = make_keep(numba.njit)
    index = [0, 5, 1000003, 2**32 - 1, 2**32 + 5, 2**40 + 17]
    for key in (0, SEED, 2**64 - 1):
        for threshold in (1, 2**23, 2**24 - 1):
            got = [keep(i, np.uint64(key & 0xFFFFFFFF), np.uint64(key >> 32), np.uint64(threshold)) for i in index]
            want = [(_bits_scalar(i, key) >> 8) < threshold for i in index]
            assert got == want, (key, threshold)
