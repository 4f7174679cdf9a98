"""Host/device plumbing shared by the cuda kernel families.

Every public kernel follows one pattern::

    io = Io(x, w)            # uploads NumPy inputs, wraps foreign device arrays (CuPy, PyTorch)
    xd, wd = io.arrays       # Numba device arrays, same shapes
    ... launch kernels on flat 1-D views (flat(xd)) ...
    return io.out(y)         # NumPy in -> NumPy out (copied back); device in -> Numba device array out

All launches go to the default stream, so results of PyTorch/CuPy work on their default stream are
seen without a synchronisation. Device arrays produced on another stream are synchronised on import.
"""

import ctypes
import functools
import struct
import weakref

import numpy as np

from fastdl.contract.checks import is_device_array as is_device  # one definition for the whole package
from fastdl.cuda._compat import cuda, require, simulator, types


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
# Fast launches. numba's dispatcher re-types and re-marshals every argument on every launch (about
# 80 us for the 23 arguments of the GEMM) and its launch call costs ~35 us more, which dominates
# step-by-step recurrent loops. After a kernel's first (normal) launch, launch() packs the
# flattened arguments of its one compiled overload into a reused buffer with one struct.pack_into
# and calls the driver's cuLaunchKernel through ctypes on the legacy default stream (what numba
# uses). Anything unexpected falls back to numba's own launch.

_fast = {}
_libcuda = []


def _cu_launch():
    if not _libcuda:
        lib = ctypes.CDLL("libcuda.so.1")
        f = lib.cuLaunchKernel
        f.argtypes = [ctypes.c_void_p] + [ctypes.c_uint] * 7 + [ctypes.c_void_p] * 3
        f.restype = ctypes.c_int
        _libcuda.append(f)
    return _libcuda[0]


class _FastKernel:
    """One compiled overload: its driver handle and a packer for its flattened parameters."""

    def __init__(self, disp):
        kern = next(iter(disp.overloads.values()))
        fmt, kinds = "<", []
        for ty in kern.argument_types:
            if isinstance(ty, types.Array) and ty.ndim == 1:
                fmt += "qqqqQqq"         # meminfo, parent, nitems, itemsize, data, shape, stride
                kinds.append(0)
            elif isinstance(ty, types.Integer):
                codes = {64: "q", 32: "i", 16: "h", 8: "b"}[ty.bitwidth]
                code = codes if ty.signed else codes.upper()
                fmt += code + ("" if ty.bitwidth == 64 else "%dx" % (8 - ty.bitwidth // 8))
                kinds.append(1)
            elif ty == types.float32:
                fmt += "f4x"
                kinds.append(1)
            elif ty == types.float64:
                fmt += "d"
                kinds.append(1)
            elif ty == types.boolean:
                fmt += "?7x"
                kinds.append(1)
            else:
                raise TypeError(f"no fast path for {ty}")
        self.packer = struct.Struct(fmt)
        nparams = self.packer.size // 8
        self.buf = ctypes.create_string_buffer(self.packer.size)
        base = ctypes.addressof(self.buf)
        self.params = (ctypes.c_void_p * nparams)(*[base + 8 * i for i in range(nparams)])
        self.kinds = kinds
        lib = kern._codelibrary.get_cufunc()
        self.handle = int(lib.handle)
        self.cu_launch = _cu_launch()

    def __call__(self, grid, block, args, shared=0):
        vals = []
        for k, a in zip(self.kinds, args):
            if k == 0:
                n = a.size
                isz = a.dtype.itemsize
                vals += (0, 0, n, isz, a.device_ctypes_pointer.value or 0, n, isz)
            else:
                vals.append(a)
        self.packer.pack_into(self.buf, 0, *vals)
        g = grid if isinstance(grid, tuple) else (grid,)
        b = block if isinstance(block, tuple) else (block,)
        g = g + (1,) * (3 - len(g))
        b = b + (1,) * (3 - len(b))
        return self.cu_launch(self.handle, g[0], g[1], g[2], b[0], b[1], b[2], shared, None, self.params, None)


def launch(disp, grid, block, *args, shared=0):
    """disp[grid, block](*args) with ``shared`` bytes of dynamic shared memory, through the cached fast
    path after the first launch."""
    entry = _fast.get(disp)
    if entry:
        if entry(grid, block, args, shared) == 0:
            return
        _fast[disp] = False          # e.g. no current context in this thread: use numba from now on
        entry = False
    if entry is None:
        disp[grid, block, 0, shared](*args)
        entry = False
        if not simulator() and len(disp.overloads) == 1:
            try:
                entry = _FastKernel(disp)
            except Exception:
                entry = False
        _fast[disp] = entry
        return
    disp[grid, block, 0, shared](*args)


_dynamic_shared = {}
_dynamic_shared_refused = {}


def allow_dynamic_shared(disp, args, nbytes):
    """Compile disp for args and let it launch with up to nbytes of dynamic shared memory; False where
    the driver refuses. Past 48 KB a kernel must opt in (CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES);
    the limit set only ever grows, so launches with fewer bytes stay allowed, and a refused size is
    remembered, so later calls with as many bytes or more are refused without asking the driver again."""
    if simulator():
        return True
    allowed = _dynamic_shared.get(disp, 0)
    if nbytes <= allowed:
        return True
    if nbytes >= _dynamic_shared_refused.get(disp, float("inf")):
        return False
    try:
        kernel = disp.compile(tuple(disp.typeof_pyval(a) for a in args))
        cufunc = kernel._codelibrary.get_cufunc()
        drv = cuda.cudadrv.driver
        attr = drv.binding.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
        drv.driver.cuKernelSetAttribute(attr, int(nbytes), cufunc.handle, cufunc.device.id)
    except Exception:
        _dynamic_shared_refused[disp] = int(nbytes)
        return False
    _dynamic_shared[disp] = int(nbytes)
    return True


def max_shared_per_block():
    """Bytes of shared memory one block may use after opting in (227 KiB on an H100)."""
    if simulator():
        return 48 * 1024
    return int(cuda.get_current_device().MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)
