"""The only place fastdl imports numba. Importing this module never fails.

Exposes ``cuda`` (``numba.cuda`` or None), ``HAVE_NUMBA``, and the probes ``simulator()``,
``real_gpu()``, ``available()`` plus ``require()``, which raises a RuntimeError that says what is
missing. Set ``NUMBA_ENABLE_CUDASIM=1`` *before* the first numba import to use the simulator.
Importing it changes no other package (NumPy included): the versions that work together are declared
in the cuda extras instead.
"""

try:  # numba and numba-cuda are optional: pip install "fastdl-kernels[cuda]"
    import numba
    from numba import cuda
    from numba import int64, uint32, uint64  # index casts (unsigned: no negative-index wraparound code)
    HAVE_NUMBA = True
    _IMPORT_ERROR = None
except Exception as exc:  # ImportError, a NumPy too new for this numba-cuda, or a broken CUDA installation
    numba = None
    cuda = None
    int64 = uint32 = uint64 = None
    HAVE_NUMBA = False
    _IMPORT_ERROR = exc

#: what the cuda extras pin together (numba-cuda 0.30 registers numpy.row_stack, which NumPy 2.5 removed)
TESTED_RANGE = "numba-cuda >= 0.30, < 0.31 with numpy < 2.5"


def simulator():
    """True when numba runs CUDA kernels in its Python simulator (NUMBA_ENABLE_CUDASIM=1)."""
    return HAVE_NUMBA and bool(numba.config.ENABLE_CUDASIM)


def _gpu_visible():
    try:
        return bool(cuda.is_available())
    except Exception:
        return False


def real_gpu():
    """True when numba sees a real CUDA GPU (the simulator does not count)."""
    return HAVE_NUMBA and not simulator() and _gpu_visible()


def available():
    """True when fastdl.cuda kernels can run: a real GPU or the simulator."""
    return HAVE_NUMBA and (simulator() or _gpu_visible())


def reason():
    """Why the backend cannot run, or None when it can."""
    if not HAVE_NUMBA:
        return (f"numba with CUDA support could not be imported ({_IMPORT_ERROR}); install the tested versions "
                f'({TESTED_RANGE}) with pip install "fastdl-kernels[cuda]"')
    if not available():
        return ("no CUDA GPU is visible to numba and the simulator is off; run on a machine with an "
                "NVIDIA GPU and driver, or set NUMBA_ENABLE_CUDASIM=1 before importing numba/fastdl "
                "to use the (slow) CUDA simulator")
    return None


def require():
    """Raise RuntimeError('fastdl cuda backend: ...') unless kernels can run."""
    why = reason()
    if why is not None:
        raise RuntimeError(f"fastdl cuda backend: {why}")
