"""Process-wide settings: the thread count of fastdl's own C++ loops and the default dtype."""

import numbers

import numpy as np

DEFAULT_DTYPE = np.float32


def _core_or_none():
    try:
        from fastdl import _core
    except ImportError:
        return None
    return _core


def set_num_threads(n):
    """Use ``n`` threads in fastdl's C++ kernels (OMP_NUM_THREADS sets the default)."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"set_num_threads: n must be an int >= 1, got {n!r}")
    core = _core_or_none()
    if core is not None:
        core.set_num_threads(int(n))


def get_num_threads():
    """Threads fastdl's C++ kernels use (1 when the extension is missing)."""
    core = _core_or_none()
    return core.get_num_threads() if core is not None else 1
