"""The MNIST IDX reader on small files the test writes (plain and gzip), and its errors."""

import gzip

import numpy as np
import pytest

from fastdl.datasets.idx import read_idx, write_idx


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("dtype,shape", [(np.uint8, (5, 28, 28)), (np.uint8, (7,)), (np.int32, (3, 4)),
                                         (np.float32, (2, 3, 5)), (np.float64, (4,))])
def test_round_trip(tmp_path, compress, dtype, shape):
    data = (np.arange(np.prod(shape)) % 251).astype(dtype).reshape(shape)
    path = tmp_path / "x.idx"
    write_idx(path, data, compress=compress)
    out = read_idx(path)
    assert out.shape == shape and out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, data)


def test_hand_written_header(tmp_path):
    """Bytes laid out by hand as in the MNIST distribution: magic 0x00000803, then dims (2, 2, 3)."""
    raw = bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(12))
    (tmp_path / "imgs-idx3-ubyte.gz").write_bytes(gzip.compress(raw))
    out = read_idx(tmp_path / "imgs-idx3-ubyte.gz")
    np.testing.assert_array_equal(out, np.arange(12, dtype=np.uint8).reshape(2, 2, 3))


@pytest.mark.parametrize("raw,message", [
    (b"\x01\x02\x08\x01", "not an IDX file"),
    (bytes([0, 0, 8, 2, 0, 0]), "truncated IDX header"),
    (bytes([0, 0, 8, 1, 0, 0, 0, 5, 1, 2]), "holds 2 bytes"),
    (b"\x1f\x8b\x08\x00garbage", "corrupt gzip"),
])
def test_bad_files_raise_clear_errors(tmp_path, raw, message):
    path = tmp_path / "bad.idx"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=message):
        read_idx(path)


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_reader_on_small_files(tmp_path, compress):
    from fastdl.datasets import MNIST_FILES, mnist

    rng = np.random.default_rng(0)
    arrays = {"X_train": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8), "y_train": np.arange(6, dtype=np.uint8),
              "X_test": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8), "y_test": np.array([9, 0, 4], np.uint8)}
    for key, stem in MNIST_FILES.items():
        write_idx(tmp_path / (stem + (".gz" if compress else "")), arrays[key], compress=compress)
    X_train, y_train, X_test, y_test = mnist(tmp_path)
    assert X_train.shape == (6, 784) and X_test.shape == (3, 784) and X_train.dtype == np.float32
    np.testing.assert_allclose(X_train.mean(), 0, atol=1e-5)
    np.testing.assert_array_equal(y_test.argmax(axis=1), [9, 0, 4])
    imgs = mnist(tmp_path, images=True)[0]
    assert imgs.shape == (6, 1, 28, 28)


def test_mnist_missing_file_is_clear(tmp_path):
    from fastdl.datasets import mnist

    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        mnist(tmp_path)
