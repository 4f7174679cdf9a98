"""The MNIST IDX reader on small files the test writes (plain and gzip), and its errors."""

import gzip

import numpy as np
import pytest

from fastdl._idx import read_idx, write_idx


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
