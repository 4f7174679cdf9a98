"""The host <-> device moves of the book API on the cuda backend.

Every host -> device copy the book API makes goes through ``upload`` and every device -> host copy through
``download`` (the kernels' own ``Io`` moves NumPy arguments such as labels). Nothing here imports numba at
import time: the cuda helpers are imported when a device array is first met.
"""

from typing import Optional

import numpy as np

from fastdl import backend
from fastdl.contract.checks import dtype_of, is_device_array as is_device

__all__ = ["cuda_backend", "is_device", "upload", "download", "to_device", "to_host", "same_side", "as_float",
           "host_state"]


def cuda_backend() -> bool:
    """True when the cuda backend serves ``fastdl.kernels`` now."""
    return backend.get_backend() == "cuda"


# ----------------------------------------------------------------------------------------------
# host <-> device moves
# ----------------------------------------------------------------------------------------------

def upload(host: np.ndarray, into=None):
    """Host -> device: copy ``host`` into the device array ``into`` (same shape and dtype), or into a new
    device array when ``into`` is None or does not fit. Returns the device array."""
    from fastdl.cuda._device import as_device

    host = np.ascontiguousarray(host)
    if into is None or tuple(into.shape) != host.shape or np.dtype(into.dtype) != host.dtype:
        return as_device(host)
    if host.size:
        into.copy_to_device(host)
    return into


def download(device, into: Optional[np.ndarray] = None) -> np.ndarray:
    """Device -> host: copy ``device`` into the ndarray ``into`` (same shape and dtype, C-contiguous), or
    into a new ndarray when ``into`` is None or does not fit. Returns the ndarray."""
    from fastdl.cuda._device import as_device

    device = as_device(device)
    fits = (into is not None and into.shape == tuple(device.shape) and into.dtype == np.dtype(device.dtype)
            and into.flags.c_contiguous and into.flags.writeable)
    if not fits:
        return device.copy_to_host()
    if into.size:
        device.copy_to_host(into)
    return into


def to_device(a):
    """``a`` as a device array: device arrays pass through, anything else is uploaded."""
    return a if is_device(a) else upload(np.asarray(a))


def to_host(a):
    """``a`` as a host array: device arrays are downloaded, anything else passes through."""
    return download(a) if is_device(a) else a


def same_side(result, given):
    """``result`` on the side ``given`` is on: NumPy in, NumPy out; device array in, device array out."""
    return to_device(result) if is_device(given) else to_host(result)


def as_float(x, dtype=None):
    """``fastdl.base.as_float`` for a device array: kept when it already has the dtype (float32/float64
    when ``dtype`` is None), else cast on the device."""
    have = dtype_of(x)
    if dtype is None:
        dtype = have if have in (np.dtype(np.float32), np.dtype(np.float64)) else np.dtype(np.float64)
    if have == np.dtype(dtype):
        return x
    from fastdl.cuda import elementwise

    return elementwise.cast(x, dtype)


def host_state(attributes: dict) -> dict:
    """A copy of an object's ``__dict__`` for ``copy.deepcopy`` / pickle, with every device array (also
    inside a list, such as an optimizer's velocities) replaced by a host copy: device arrays do not
    survive a deep copy on a real GPU."""
    state = {}
    for name, value in attributes.items():
        if isinstance(value, list) and any(is_device(v) for v in value):
            value = [to_host(v) for v in value]
        state[name] = to_host(value)
    return state
