"""Process-wide settings: the thread count of fastdl's C++ kernels and the default dtype.

fastdl's kernels run on one thread pool of their own (see ``src/cpp/core/thread_pool.hpp``). Its size is
``set_num_threads(n)``, else ``OMP_NUM_THREADS``, else the CPUs this process may run on. ``threads(n)``
sets it for a ``with`` block, and ``threadpoolctl.threadpool_limits`` limits it like OpenBLAS's or
OpenMP's pools (fastdl registers a controller for it when threadpoolctl is installed).
"""

import numbers

import numpy as np

DEFAULT_DTYPE = np.float32

#: the largest thread count the pool accepts
MAX_THREADS = 256


def _core_or_none():
    try:
        import fastdl._core as _core
    except ImportError:
        return None
    return _core


def _checked_count(n, where):
    """``n`` as an int in [1, MAX_THREADS], else TypeError / ValueError naming ``where`` and ``n``."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral):
        raise TypeError(f"{where}: n must be an int (a thread count), got {type(n).__name__} {n!r}")
    if not 1 <= n <= MAX_THREADS:
        raise ValueError(f"{where}: n must be between 1 and {MAX_THREADS} threads, got {n}")
    return int(n)


def set_num_threads(n):
    """Use ``n`` threads (1 to 256) in fastdl's C++ kernels. ``OMP_NUM_THREADS`` sets the default,
    else the CPUs this process may run on. Bad ``n`` raises and changes nothing."""
    n = _checked_count(n, "set_num_threads")
    core = _core_or_none()
    if core is not None:
        core.set_num_threads(n)


def get_num_threads():
    """Threads fastdl's C++ kernels use (1 when the extension is missing)."""
    core = _core_or_none()
    return core.get_num_threads() if core is not None else 1


class threads:
    """``with fastdl.threads(n): ...`` runs fastdl's kernels on ``n`` threads inside the block and
    restores the previous count after it, also when the block raises. The count is process-wide, as
    ``threadpoolctl.threadpool_limits`` is."""

    def __init__(self, n):
        self.n = _checked_count(n, "threads")
        self._before = None

    def __enter__(self):
        self._before = get_num_threads()
        set_num_threads(self.n)
        return self

    def __exit__(self, *exc):
        set_num_threads(self._before)
        return False
