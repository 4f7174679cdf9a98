"""Dropout on the GPU: the counter-hashed keep mask of ``src/cpp/ops/dropout_hash.hpp`` (the same mask as
every other backend for the same key), applied in the same pass; and its gradient.

The hash is 32-bit integer math carried in uint64 registers and masked back to 32 bits after every
multiply and add. Every constant is a NumPy uint64 so that Numba types all of it as uint64 (a plain
int literal is int64, and uint64 mixed with int64 becomes float64 in Numba).
"""

import functools

import numpy as np

from fastdl.cuda._compat import cuda
from fastdl.cuda._device import Io, empty, flat, grid_1d, launch, threads_1d

_LOW32 = np.uint64(0xFFFFFFFF)
_MUL1 = np.uint64(0x7FEB352D)
_MUL2 = np.uint64(0x846CA68B)
_S8, _S15, _S16, _S32 = np.uint64(8), np.uint64(15), np.uint64(16), np.uint64(32)


def make_keep(jit):
    """The keep test ``keep(i, k0, k1, threshold)`` compiled with ``jit`` (``cuda.jit(device=True)`` here;
    the tests compile the very same code with ``numba.njit`` to check Numba's integer typing on a CPU)."""
    def mix32(h):  # h holds a uint32 value in a uint64
        h ^= h >> _S16
        h = (h * _MUL1) & _LOW32
        h ^= h >> _S15
        h = (h * _MUL2) & _LOW32
        return h ^ (h >> _S16)

    mix32 = jit(mix32)

    def keep(i, k0, k1, threshold):  # i is a flat index; k0, k1 (key halves) and threshold are uint64
        index = np.uint64(i)
        bits = mix32((mix32((index & _LOW32) ^ k0) + ((index >> _S32) ^ k1)) & _LOW32)
        return (bits >> _S8) < threshold
    return jit(keep)


@functools.lru_cache(maxsize=None)
def _forward_kernel(dtype):
    zero = np.dtype(dtype).type(0)
    keep_dev = make_keep(cuda.jit(device=True))  # compiled on first use: importing needs no numba

    def kernel(x, y, mask, n, k0, k1, threshold, first):  # x, y, mask flat (n,); x[i] draws first + i
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n:
            keep = keep_dev(first + np.uint64(i), k0, k1, threshold)
            mask[i] = keep
            y[i] = x[i] if keep else zero
            i += step
    return cuda.jit(kernel)


@functools.lru_cache(maxsize=None)
def _backward_kernel(dtype):
    zero = np.dtype(dtype).type(0)

    def kernel(g, mask, out, n):  # g, mask, out flat (n,)
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n:
            out[i] = g[i] if mask[i] else zero
            i += step
    return cuda.jit(kernel)


def dropout(x, key, threshold, first=0):
    """(y, mask) with mask[i] = hash(first + i, key) >> 8 < threshold, y = x where kept, else 0."""
    io = Io(x)
    xd = io.arrays[0]
    y = empty(xd.shape, xd.dtype)
    mask = empty(xd.shape, np.bool_)
    n = xd.size
    if n:
        t = threads_1d()
        launch(_forward_kernel(xd.dtype), grid_1d(n, t), t, flat(xd), flat(y), flat(mask), n,
               np.uint64(key & 0xFFFFFFFF), np.uint64(key >> 32), np.uint64(threshold), np.uint64(first))
    return io.out(y), io.out(mask)


def dropout_backward_dev(gd, md):
    """A new device array: gd where md, else 0 (gd, md device arrays of one shape)."""
    out = empty(gd.shape, gd.dtype)
    n = gd.size
    if n:
        t = threads_1d()
        launch(_backward_kernel(gd.dtype), grid_1d(n, t), t, flat(gd), flat(md), flat(out), n)
    return out


def dropout_backward(grad_y, mask):
    """grad_y where mask, else 0."""
    io = Io(grad_y, mask)
    return io.out(dropout_backward_dev(*io.arrays))
