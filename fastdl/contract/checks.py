"""Input validation for ``fastdl.kernels``: run once per call, before any backend.

Every failure raises ``TypeError`` (wrong kind or dtype) or ``ValueError`` (wrong shape or value) with a
message that names the op, the argument, what was received and the rule that was broken, e.g.
``matmul: inner dimensions differ: a is (3, 4) and b is (5, 2); need a.shape[1] == b.shape[0]``.

Arrays may be NumPy arrays or device arrays exposing ``__cuda_array_interface__`` (CuPy, PyTorch,
Numba); shapes and dtypes are read without touching device memory.
"""

import numbers

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
ACTIVATIONS = ("linear", "sigmoid", "tanh", "relu")
MAX_INT = 2**31 - 1  # strides and paddings must fit the C++ kernels' int indices


def is_device_array(a):
    """A GPU array: anything exposing ``__cuda_array_interface__`` (CuPy, PyTorch, Numba), or a Numba
    device array of the CUDA simulator (which has ``copy_to_host`` but no interface)."""
    if isinstance(a, np.ndarray):
        return False
    return hasattr(a, "__cuda_array_interface__") or hasattr(a, "copy_to_host")


# Every kernel call asks these of each argument, so a plain NumPy array (the common case) is answered first,
# without looking for the device interface.
def shape_of(a):
    if type(a) is np.ndarray:
        return a.shape
    if hasattr(a, "__cuda_array_interface__") and not isinstance(a, np.ndarray):
        return tuple(a.__cuda_array_interface__["shape"])
    return tuple(a.shape)


def dtype_of(a):
    if type(a) is np.ndarray:
        return a.dtype
    if hasattr(a, "__cuda_array_interface__") and not isinstance(a, np.ndarray):
        return np.dtype(a.__cuda_array_interface__["typestr"])
    return np.dtype(a.dtype)


def require_array(op, name, a):
    if type(a) is np.ndarray:
        return
    if not (isinstance(a, np.ndarray) or is_device_array(a)):
        raise TypeError(f"{op}: argument {name} must be a numpy array or a device array, "
                        f"got {type(a).__name__}")


def require_ndim(op, name, a, ndim, layout):
    require_array(op, name, a)
    shape = shape_of(a)
    if len(shape) != ndim:
        raise ValueError(f"{op}: argument {name} must be {ndim}-D {layout}, got shape {shape}")


def require_shape(op, name, a, expected, why):
    require_array(op, name, a)
    if shape_of(a) != tuple(expected):
        raise ValueError(f"{op}: argument {name} has shape {shape_of(a)}, expected {tuple(expected)} ({why})")


def common_float_dtype(op, **arrays):
    """All arrays share one dtype, float32 or float64; returns it."""
    first = next(iter(arrays.values()), None)
    if type(first) is np.ndarray and first.dtype in FLOAT_DTYPES:  # the common case, answered at once
        dt = first.dtype
        if all(type(a) is np.ndarray and a.dtype == dt for a in arrays.values()):
            return dt
    dtypes = {}
    for name, a in arrays.items():
        require_array(op, name, a)
        dt = dtype_of(a)
        if dt not in FLOAT_DTYPES:
            hint = ""
            if dt.kind == "f" and dt.newbyteorder("=") in FLOAT_DTYPES:
                hint = " in native byte order (this one is byte-swapped; use a.astype(a.dtype.newbyteorder('=')))"
            raise TypeError(f"{op}: argument {name} has dtype {dt}; fastdl kernels take float32 or float64{hint}")
        dtypes[name] = dt
    if len(set(dtypes.values())) > 1:
        got = ", ".join(f"{n}={d}" for n, d in dtypes.items())
        raise TypeError(f"{op}: mixed dtypes ({got}); cast all arrays to one of float32 or float64")
    return next(iter(dtypes.values()))


def require_flag(op, name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: argument {name} must be a bool, got {value!r}")


def require_activation(op, name):
    if not isinstance(name, str):
        raise TypeError(f"{op}: activation must be a str, one of {ACTIVATIONS}, got {type(name).__name__} {name!r}")
    if name not in ACTIVATIONS:
        raise ValueError(f"{op}: activation must be one of {ACTIVATIONS}, got {name!r}")


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def require_stride(op, stride):
    if not _is_int(stride) or not 1 <= stride <= MAX_INT:
        raise ValueError(f"{op}: stride must be an int >= 1 (and < 2**31), got {type(stride).__name__} {stride!r}")


def require_padding(op, padding):
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(f"{op}: padding must be 'same', 'valid' or an int >= 0, got {padding!r}")
        return
    if not _is_int(padding) or not 0 <= padding <= MAX_INT:
        raise ValueError(f"{op}: padding must be 'same', 'valid' or an int >= 0 (and < 2**31), "
                         f"got {type(padding).__name__} {padding!r}")


def require_probability(op, name, p):
    """A real number in (0, 1]."""
    if not isinstance(p, numbers.Real) or isinstance(p, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be a float in (0, 1], got {type(p).__name__} {p!r}")
    if not 0.0 < float(p) <= 1.0:
        raise ValueError(f"{op}: {name} must lie in (0, 1] (the probability of KEEPING a unit), got {p!r}")


def require_seed(op, seed, name="seed"):
    """An int in [0, 2**64)."""
    if not _is_int(seed) or not 0 <= seed < 2**64:
        raise ValueError(f"{op}: {name} must be an int in [0, 2**64), got {type(seed).__name__} {seed!r}")


def require_bool_mask(op, mask, shape):
    """A bool array of ``shape`` (the mask that ``dropout`` returned)."""
    require_array(op, "mask", mask)
    if dtype_of(mask) != np.dtype(bool):
        raise TypeError(f"{op}: argument mask must be the bool mask that dropout returned, got dtype "
                        f"{dtype_of(mask)}")
    require_shape(op, "mask", mask, shape, "it must match grad_y")


def require_labels(op, target, batch, classes):
    """Integer class labels ``(B,)`` in ``[0, classes)``."""
    dt = dtype_of(target)
    if dt.kind not in "iu":
        raise TypeError(f"{op}: argument target: 1-D target must hold integer class labels (or pass one-hot "
                        f"(B, C) floats), got dtype {dt}")
    if shape_of(target) != (batch,):
        raise ValueError(f"{op}: argument target: labels have shape {shape_of(target)}, expected ({batch},) "
                         f"for logits with {batch} rows")
    if batch == 0:
        return
    lo, hi = int(target.min()), int(target.max())
    if lo < 0 or hi >= classes:
        raise ValueError(f"{op}: argument target: labels must lie in [0, {classes}) for {classes} classes, "
                         f"got values in [{lo}, {hi}]")


def require_c_contiguous_device(op, a):
    """Device arrays are used in place, so they must already be C-contiguous (fastdl never copies on the
    device behind the caller's back); a Fortran-order or strided view raises."""
    shape = shape_of(a)
    cai = getattr(a, "__cuda_array_interface__", None)
    strides = cai.get("strides") if cai is not None else tuple(a.strides)
    if strides is None:
        return
    itemsize = dtype_of(a).itemsize
    expected, step = [], itemsize
    for extent in reversed(shape):
        expected.append(step)
        step *= extent
    if any(st != ex for st, ex, n in zip(strides, reversed(expected), shape) if n > 1):
        raise TypeError(f"{op}: device array of shape {shape} has strides {tuple(strides)}; fastdl's cuda "
                        f"kernels take C-contiguous device arrays (make a contiguous copy first)")


def require_device_labels(op, target, batch):
    """Integer labels on the device: int64 ``(B,)`` (their range is checked by ``require_labels`` on a host
    copy of the B ints, which the cuda backend makes)."""
    dt = dtype_of(target)
    if dt != np.dtype(np.int64):
        raise TypeError(f"{op}: labels on the device must be int64, got dtype {dt} (cast them on the device)")
    if shape_of(target) != (batch,):
        raise ValueError(f"{op}: labels have shape {shape_of(target)}, expected ({batch},) for logits with "
                         f"{batch} rows")
