"""Host/device plumbing shared by the cuda kernel families.

Every public kernel follows one pattern::

    io = Io(x, w)            # uploads NumPy inputs, wraps foreign device arrays (CuPy, PyTorch)
    xd, wd = io.arrays       # Numba device arrays, same shapes
    ... launch kernels on flat 1-D views (flat(xd)) ...
    return io.out(y)         # NumPy in -> NumPy out (copied back); device in -> Numba device array out

All launches go to the default stream, so results of PyTorch/CuPy work on their default stream are
seen without a synchronisation. Device arrays produced on another stream are synchronised on import.
"""

import functools
import weakref

import numpy as np

from fastdl.contract.checks import is_device_array as is_device  # one definition for the whole package
from fastdl.cuda._compat import cuda, require, simulator


def as_device(a):
    """A Numba device array for a NumPy array (copied) or any __cuda_array_interface__ object."""
    if isinstance(a, np.ndarray):
        return cuda.to_device(np.ascontiguousarray(a))
    if hasattr(a, "copy_to_host"):
        return a  # already a Numba device array
    if simulator():
        return cuda.as_cuda_array(a)
    stream = a.__cuda_array_interface__.get("stream")
    # None / 1 / 2: the legacy or per-thread default stream -> ordered with our launches already.
    return cuda.as_cuda_array(a, sync=stream not in (None, 1, 2))


def to_host_array(a):
    """A NumPy copy of a device array (any __cuda_array_interface__ object)."""
    return as_device(a).copy_to_host()


class Io:
    """Converts inputs once and converts outputs back the way the inputs came in."""

    def __init__(self, *arrays):
        require()
        self.on_device = any(is_device(a) for a in arrays if a is not None)
        self.arrays = [None if a is None else as_device(a) for a in arrays]

    def out(self, d):
        if d is None or self.on_device:
            return d
        return d.copy_to_host()


_flat_views = weakref.WeakKeyDictionary()


def flat(d):
    """1-D view of a C-contiguous device array (kernels index with explicit offsets); views are
    cached per array because numba's reshape costs ~20 us, too much inside recurrent loops."""
    if d.ndim == 1:
        return d
    try:
        v = _flat_views.get(d)
        if v is None:
            v = _flat_views[d] = d.reshape(d.size)
        return v
    except TypeError:              # not weak-referenceable
        return d.reshape(d.size)


def empty(shape, dtype):
    return cuda.device_array(shape, dtype=dtype)


_dummies = {}


def dummy(dtype):
    """A one-element device array standing in for an absent optional argument (bias, addend)."""
    key = np.dtype(dtype)
    d = _dummies.get(key)
    if d is None:
        d = _dummies[key] = cuda.to_device(np.zeros(1, dtype=key))
    return d


_workspaces = {}


def workspace(name, size, dtype):
    """A reusable flat device buffer of at least ``size`` elements (not thread-safe; scratch only)."""
    key = (name, np.dtype(dtype))
    d = _workspaces.get(key)
    if d is None or d.size < size:
        d = _workspaces[key] = cuda.device_array(max(int(size), 1), dtype=dtype)
    return d[:max(int(size), 1)]


def cdiv(a, b):
    return (a + b - 1) // b


def threads_1d():
    """Threads per block for elementwise kernels (small under the simulator)."""
    return 32 if simulator() else 256


def grid_1d(n, threads, cap=None):
    """Blocks for a grid-stride loop over n elements."""
    blocks = max(1, cdiv(n, threads))
    if cap is None:
        cap = 8 if simulator() else 132 * 32
    return min(blocks, cap)


def jit_kernel(fn, launch_bounds=None):
    """cuda.jit a kernel; launch_bounds=(threads, min_blocks_per_SM) caps registers on a real GPU."""
    if launch_bounds is None or simulator():
        return cuda.jit(fn)
    return cuda.jit(fn, launch_bounds=launch_bounds)


@functools.lru_cache(maxsize=None)
def block_sum_device():
    """Device function ``block_sum(shared, tid, n)``: shared[0] = sum of shared[:n] by a tree of pairwise
    sums in a fixed order (deterministic). Every thread of the block calls it after writing its own
    shared[tid]; it synchronises first and between levels; n is the block size, a power of two."""
    def block_sum(shared, tid, n):
        cuda.syncthreads()
        width = n // 2
        while width > 0:
            if tid < width:
                shared[tid] += shared[tid + width]
            cuda.syncthreads()
            width //= 2
    return cuda.jit(device=True)(block_sum)


@functools.lru_cache(maxsize=None)
def _fill_kernel(dtype):
    def kernel(a, value, n):
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n:
            a[i] = value
            i += step
    return cuda.jit(kernel)


def zeros(shape, dtype):
    """A new device array of zeros (filled on the device)."""
    d = cuda.device_array(shape, dtype=dtype)
    if d.size:
        t = threads_1d()
        launch(_fill_kernel(np.dtype(dtype)), grid_1d(d.size, t), t, flat(d), np.dtype(dtype).type(0), d.size)
    return d


# ----------------------------------------------------------------------------------------------
# Launches: numba-cuda's public launch only (``disp[grid, block, stream, shared](*args)``), which types
# and marshals the arguments on every call. numba's argument layout, its compiled library and the driver
# are never touched here: a numba-cuda release that changes them cannot make fastdl compute wrong
# answers. The price is the per-launch cost of that public path, which only a real GPU can measure
# (docs/cuda-backend.md says what the GPU run times and what it would take to lower it).


def launch(disp, grid, block, *args, shared=0):
    """``disp[grid, block](*args)`` on the default stream with ``shared`` bytes of dynamic shared memory
    (at most ``max_shared_per_block()``), through numba-cuda's public launch."""
    disp[grid, block, 0, shared](*args)


def max_shared_per_block():
    """Bytes of dynamic shared memory one block may ask for through the public launch: the device's
    per-block limit without the driver's opt-in (48 KiB on current GPUs). numba-cuda's launch has no public
    way to opt a kernel in to more (227 KiB on an H100), so fastdl plans within this limit."""
    if simulator():
        return 48 * 1024
    return int(cuda.get_current_device().MAX_SHARED_MEMORY_PER_BLOCK)
