"""The batch row gather in NumPy: the oracle of the C++ gather and the numpy backend's gather.

Like ``parameter_update`` it sits outside the kernel table: it writes into the caller's ``out`` (the reused
batch buffer of a training loop) instead of returning a new array.
"""

import numpy as np


def take_rows(x, rows, out):
    # x is (N, ...), rows is (n,) int64 in [0, N), out is (n,) + x.shape[1:] -> out[i] = x[rows[i]]
    np.take(x, rows, axis=0, out=out)
    return out
