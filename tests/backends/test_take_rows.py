"""The batch row gather (kernels.take_rows) against NumPy's take, on every backend, and its bad inputs."""

import numpy as np
import pytest

import fastdl
from fastdl import kernels

# (N, row shape, n picked): a single row, prime and odd sizes, rows of 1 byte up to several KiB, many rows
CASES = [(1, (), 1), (7, (3,), 5), (61, (784,), 60), (101, (1, 28, 28), 37), (1009, (13, 7), 1009), (5, (4,), 0),
         (3000, (257,), 599)]
DTYPES = [np.float32, np.float64, np.int64, np.uint8, np.bool_, np.int16]


def _table(N, row, dtype, rng):
    return (rng.standard_normal((N,) + row) * 100).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_take_rows_equals_numpy_take(backend_name, case, dtype, rng):
    N, row, n = case
    x = _table(N, row, dtype, rng)
    rows = rng.integers(0, N, size=n)  # repeats allowed
    before = x.copy()
    out = np.full((n,) + row, 7, dtype)
    with fastdl.use_backend(backend_name):
        got = kernels.take_rows(x, rows, out)
        fresh = kernels.take_rows(x, rows)
    assert got is out
    np.testing.assert_array_equal(out, np.take(x, rows, axis=0))
    np.testing.assert_array_equal(fresh, out)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_take_rows_is_the_same_on_any_thread_count(threads, restore_threads, rng):
    x = _table(60000 // 16, (784,), np.float32, rng)
    rows = rng.permutation(x.shape[0])[:97]
    fastdl.set_num_threads(threads)
    with fastdl.use_backend("cpu" if fastdl.backend.cpu_available() else "numpy"):
        np.testing.assert_array_equal(kernels.take_rows(x, rows), x[rows])


def test_take_rows_accepts_any_integer_rows_and_strided_tables(rng):
    x = _table(40, (6,), np.float64, rng)
    for rows in ([3, 0, 39], np.array([5, 5], np.uint16), np.array([1, 2, 3, 4], np.int32)[::2]):
        np.testing.assert_array_equal(kernels.take_rows(x, rows), x[np.asarray(rows)])
    strided = x[:, ::2]  # not C-contiguous: gathered by NumPy, not copied whole
    np.testing.assert_array_equal(kernels.take_rows(strided, [1, 7]), strided[[1, 7]])
    fortran = np.asfortranarray(x)
    np.testing.assert_array_equal(kernels.take_rows(fortran, [0, 39]), x[[0, 39]])


@pytest.mark.parametrize("rows, error, words", [
    ([0, 10], ValueError, "[0, 10)"),
    ([-1], ValueError, "[0, 10)"),
    ([1.0], TypeError, "integers"),
    ([[1]], TypeError, "1-D"),
    ([True], TypeError, "integers"),
])
def test_take_rows_rejects_bad_rows_before_writing(backend_name, rows, error, words):
    x = np.arange(30, dtype=np.float32).reshape(10, 3)
    out = np.full((len(rows), 3), -1, np.float32)
    with fastdl.use_backend(backend_name), pytest.raises(error, match="take_rows") as info:
        kernels.take_rows(x, rows, out if np.asarray(rows).ndim == 1 else None)
    assert words in str(info.value)
    assert (out == -1).all()


def test_take_rows_rejects_bad_tables_and_buffers():
    x = np.arange(30, dtype=np.float32).reshape(10, 3)
    bad = [
        (dict(x=x.tolist(), rows=[0]), TypeError, "host NumPy array"),
        (dict(x=np.array(1.0), rows=[0]), ValueError, "at least one dimension"),
        (dict(x=np.array([None, 1], dtype=object), rows=[0]), TypeError, "Python objects"),
        (dict(x=x, rows=[0], out=np.empty((2, 3), np.float32)), ValueError, "shape (1, 3)"),
        (dict(x=x, rows=[0], out=np.empty((1, 3), np.float64)), ValueError, "dtype float32"),
        (dict(x=x, rows=[0], out=np.empty((1, 6), np.float32)[:, ::2]), ValueError, "C-contiguous"),
        (dict(x=x, rows=[0], out=[[0.0, 0.0, 0.0]]), TypeError, "NumPy array"),
        (dict(x=x, rows=[0], out=x[:1]), ValueError, "shares memory"),
    ]
    for kwargs, error, words in bad:
        with pytest.raises(error, match="take_rows") as info:
            kernels.take_rows(**kwargs)
        assert words in str(info.value), (kwargs, str(info.value))
    frozen = np.empty((1, 3), np.float32)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        kernels.take_rows(x, [0], frozen)


@pytest.mark.skipif(not fastdl.backend.cpu_available(), reason="needs fastdl._core")
def test_core_take_rows_checks_what_it_would_read_out_of_bounds():
    from fastdl import _core

    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    out = np.full((2, 3), -1, np.float32)
    with pytest.raises(ValueError, match=r"rows\[1\] = 4 is outside \[0, 4\)"):
        _core.take_rows(x, np.array([0, 4]), out)
    assert (out == -1).all()
    with pytest.raises(ValueError, match="out must have shape"):
        _core.take_rows(x, np.array([0]), out)
    with pytest.raises(ValueError, match="dtype"):
        _core.take_rows(x, np.array([0, 1]), out.astype(np.float64))
