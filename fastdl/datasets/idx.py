"""Reader for the IDX files MNIST ships in (``train-images-idx3-ubyte[.gz]`` and friends).

IDX layout: two zero bytes, a type code, the number of dimensions, then one big-endian uint32 per
dimension, then the data in C order (big-endian for multi-byte types).
"""

import gzip
import os
import zlib

import numpy as np

_TYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
          0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path):
    """The array stored in an IDX file (gzip-compressed or not, told apart by its magic bytes)."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{os.fspath(path)}: corrupt gzip data ({exc})") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _TYPES:
        raise ValueError(f"{os.fspath(path)}: not an IDX file (bad magic {raw[:4]!r})")
    dtype, ndim = _TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{os.fspath(path)}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    count = int(np.prod(shape, dtype=np.int64))
    if len(raw) - header != count * dtype.itemsize:
        raise ValueError(f"{os.fspath(path)}: IDX header says shape {shape} ({count * dtype.itemsize} bytes) "
                         f"but the file holds {len(raw) - header} bytes of data")
    return np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path, array, compress=False):
    """Write ``array`` (uint8, int8, int16, int32, float32 or float64) as an IDX file (for tests and tools)."""
    array = np.asarray(array)
    kind = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    type_code = next(k for k, v in _TYPES.items() if v == kind)
    header = bytes([0, 0, type_code, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    data = header + np.ascontiguousarray(array, dtype=kind).tobytes()
    with open(path, "wb") as f:
        f.write(gzip.compress(data) if compress else data)
