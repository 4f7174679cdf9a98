"""The few elementwise steps the book's layers and losses take on device arrays outside the kernel
contract: a dtype cast, a scale, a difference, a copy, and a sum of squares.

They serve ``fastdl.device`` (layers that keep their parameters and activations on the
device): Dropout's inference scaling, ``MeanSquaredError`` on a device prediction, a batch cast to a
layer's dtype. Inputs are C-contiguous device arrays (Numba's, or any ``__cuda_array_interface__``
object); results are new Numba device arrays (the sum of squares is a Python float). Kernels are
compiled per dtype on first use, so importing this module needs no numba.
"""

import functools

import numpy as np

from fastdl.cuda import _serialised
from fastdl.cuda._compat import cuda, simulator
from fastdl.cuda._device import as_device, block_sum_device, empty, flat, grid_1d, launch, threads_1d


# ----------------------------------------------------------------------------------------------
# kernels (grid-stride loops over flat (n,) views)
# ----------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _cast_kernel(src, dst):
    def kernel(x, y, n):  # x (n,) of src, y (n,) of dst: the store converts
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n:
            y[i] = x[i]
            i += step
    return cuda.jit(kernel)


@functools.lru_cache(maxsize=None)
def _scale_kernel(dtype):
    def kernel(x, s, y, n):  # y = s * x, all (n,); s has the arrays' dtype
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n:
            y[i] = s * x[i]
            i += step
    return cuda.jit(kernel)


@functools.lru_cache(maxsize=None)
def _subtract_kernel(dtype):
    def kernel(a, b, y, n):  # y = a - b, all (n,)
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n:
            y[i] = a[i] - b[i]
            i += step
    return cuda.jit(kernel)


@functools.lru_cache(maxsize=None)
def _sum_squares_kernel(dtype, threads):
    block_sum = block_sum_device()

    def kernel(x, out, n):  # x (n,), out (1,) float64; ONE block of `threads` threads
        partial = cuda.shared.array(threads, np.float64)
        t = cuda.threadIdx.x
        acc = np.float64(0)
        i = t
        while i < n:                      # each thread sums a strided slice, in float64
            v = np.float64(x[i])
            acc += v * v
            i += threads
        partial[t] = acc
        block_sum(partial, t, threads)    # a tree in a fixed order: deterministic
        if t == 0:
            out[0] = partial[0]
    return cuda.jit(kernel)


# ----------------------------------------------------------------------------------------------
# launchers
# ----------------------------------------------------------------------------------------------

def _launch_1d(kernel, n, *args):
    if n:
        t = threads_1d()
        launch(kernel, grid_1d(n, t), t, *args, n)


@_serialised
def cast(x, dtype):
    """x (any shape) converted to ``dtype``: a new device array of x's shape."""
    x, dtype = as_device(x), np.dtype(dtype)
    y = empty(x.shape, dtype)
    _launch_1d(_cast_kernel(np.dtype(x.dtype), dtype), x.size, flat(x), flat(y))
    return y


@_serialised
def scale(x, s):
    """``s * x`` (s a Python number, taken in x's dtype): a new device array of x's shape."""
    x = as_device(x)
    y = empty(x.shape, x.dtype)
    _launch_1d(_scale_kernel(np.dtype(x.dtype)), x.size, flat(x), np.dtype(x.dtype).type(s), flat(y))
    return y


@_serialised
def subtract(a, b):
    """``a - b`` for two device arrays of one shape and dtype: a new device array."""
    a, b = as_device(a), as_device(b)
    if tuple(a.shape) != tuple(b.shape) or a.dtype != b.dtype:
        raise ValueError(f"subtract: arrays differ: {tuple(a.shape)} {a.dtype} and {tuple(b.shape)} {b.dtype}")
    y = empty(a.shape, a.dtype)
    _launch_1d(_subtract_kernel(np.dtype(a.dtype)), a.size, flat(a), flat(b), flat(y))
    return y


def copy(x):
    """A new device array holding x's values (a device-to-device copy)."""
    x = as_device(x)
    y = empty(x.shape, x.dtype)
    if x.size:
        y.copy_to_device(x)
    return y


@_serialised
def sum_squares(x):
    """``sum(x * x)`` over every element, accumulated in float64 in a fixed order: a Python float."""
    x = as_device(x)
    out = empty((1,), np.float64)
    threads = 32 if simulator() else 256
    launch(_sum_squares_kernel(np.dtype(x.dtype), threads), 1, threads, flat(x), out, x.size)
    return float(out.copy_to_host()[0])
