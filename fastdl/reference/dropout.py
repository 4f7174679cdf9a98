"""NumPy reference: dropout with the counter-hashed keep mask (the recipe of src/cpp/ops/dropout_hash.hpp).

Element i (flat C order) of a call with 64-bit ``key`` is kept when ``bits(i, key) >> 8 < threshold``,
``threshold = round(keep_prob * 2**24)``. Every backend draws the same mask for the same key and shape.
"""

import numpy as np

_MUL1 = np.uint32(0x7FEB352D)
_MUL2 = np.uint32(0x846CA68B)


def _mix32(h):
    # h is any-shape uint32; wrapping multiplies (NumPy uint32 arithmetic is mod 2**32)
    h = h ^ (h >> np.uint32(16))
    h = h * _MUL1
    h = h ^ (h >> np.uint32(15))
    h = h * _MUL2
    return h ^ (h >> np.uint32(16))


def hash_bits(index, key):
    """The 32 hashed bits of each flat element index (a uint64 array) for ``key`` (an int < 2**64)."""
    k0, k1 = np.uint32(key & 0xFFFFFFFF), np.uint32(key >> 32)
    lo = index.astype(np.uint32)  # wraps to the low 32 bits
    hi = (index >> np.uint64(32)).astype(np.uint32)
    return _mix32(_mix32(lo ^ k0) + (hi ^ k1))


def keep_mask(shape, key, threshold, first=0):
    """The bool keep mask of ``shape`` for ``key`` (an int < 2**64) and ``threshold`` (0..2**24), its
    elements those of flat indices ``first``, ``first + 1``, ... of the whole mask."""
    index = np.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.uint64) + np.uint64(first)
    return ((hash_bits(index, key) >> np.uint32(8)) < np.uint32(threshold)).reshape(shape)


def dropout(x, key, threshold, first=0):
    """(y, mask): mask the keep mask of x's shape (from flat index ``first`` on), y = x where kept, else 0."""
    # x is any shape
    mask = keep_mask(x.shape, key, threshold, first)
    return np.where(mask, x, x.dtype.type(0)), mask


def dropout_backward(grad_y, mask):
    """grad_x = grad_y where mask, else 0."""
    # grad_y is any shape, mask bool of that shape
    return np.where(mask, grad_y, grad_y.dtype.type(0))
