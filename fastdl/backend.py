"""Backend registry: which implementation serves ``fastdl.kernels``.

Backends:
    ``numpy`` the NumPy reference in ``fastdl.reference`` (the oracle; always present),
    ``cpu``   the C++ extension ``fastdl._core`` through the adapter ``fastdl.cpu.kernels``,
    ``cuda``  Numba CUDA kernels in ``fastdl.cuda`` (optional: needs numba and a GPU or the simulator),
    ``auto``  cuda on a real GPU, else cpu, else numpy (with a warning).

The default comes from the environment variable ``FASTDL_BACKEND`` (``auto`` when unset).
``set_backend`` changes it for the process; ``use_backend`` changes it inside a ``with`` block
(per thread / per asyncio task, through a context variable).
"""

import contextlib
import contextvars
import importlib
import os
import warnings

BACKEND_NAMES = ("numpy", "cpu", "cuda", "auto")

_process_default = None  # resolved lazily from FASTDL_BACKEND
_override = contextvars.ContextVar("fastdl_backend_override", default=None)
_modules = {}


def _check_name(name):
    if not isinstance(name, str) or name not in BACKEND_NAMES:
        raise ValueError(f"fastdl backend must be one of {BACKEND_NAMES}, got {name!r}")
    return name


def _load_numpy():
    return importlib.import_module("fastdl.reference")


def _source_checkout_hint():
    """A hint when fastdl is imported from an unbuilt source checkout (e.g. `python -m` in the repo)."""
    package = os.path.dirname(os.path.abspath(__file__))
    if os.path.exists(os.path.join(package, os.pardir, "CMakeLists.txt")):
        return (f" fastdl was imported from the source checkout {os.path.dirname(package)}, which holds no "
                "compiled extension: run from another directory, use the `fastdl` command, or install "
                "in editable mode (pip install --no-build-isolation -e .).")
    return " Reinstall fastdl with `pip install .` from a source checkout."


def _load_cpu():
    try:
        return importlib.import_module("fastdl.cpu.kernels")
    except ImportError as exc:
        raise RuntimeError(
            f"fastdl backend 'cpu' needs the compiled extension fastdl._core, which failed to import ({exc})."
            + _source_checkout_hint()
        ) from exc


def _load_cuda():
    try:
        from fastdl.cuda import _compat
    except ImportError as exc:
        raise RuntimeError(f"fastdl backend 'cuda' could not be imported ({exc})") from exc
    _compat.require()
    return importlib.import_module("fastdl.cuda")


_LOADERS = {"numpy": _load_numpy, "cpu": _load_cpu, "cuda": _load_cuda}


def cpu_available():
    """True when the C++ extension imports."""
    try:
        _load_cpu()
    except RuntimeError:
        return False
    return True


def cuda_real_gpu():
    """True when Numba sees a real GPU (the simulator does not count)."""
    try:
        from fastdl.cuda import _compat
    except ImportError:
        return False
    return _compat.real_gpu()


def _resolve_auto():
    if cuda_real_gpu():
        return "cuda"
    if cpu_available():
        return "cpu"
    warnings.warn("fastdl: neither a GPU nor the C++ extension is available; using the slow numpy backend."
                  + _source_checkout_hint(), RuntimeWarning, stacklevel=3)
    return "numpy"


def _resolve(name):
    return _resolve_auto() if name == "auto" else name


def _default():
    global _process_default
    if _process_default is None:
        env = os.environ.get("FASTDL_BACKEND", "auto").strip().lower() or "auto"
        if env not in BACKEND_NAMES:
            raise ValueError(f"FASTDL_BACKEND must be one of {BACKEND_NAMES}, got {env!r}")
        _process_default = _resolve(env)
    return _process_default


def get_backend():
    """The name of the backend now serving ``fastdl.kernels``: 'numpy', 'cpu' or 'cuda'."""
    override = _override.get()
    if override is not None:
        return override
    return _process_default if _process_default is not None else _default()


def set_backend(name):
    """Make ``name`` ('numpy', 'cpu', 'cuda' or 'auto') the process-wide backend."""
    global _process_default
    resolved = _resolve(_check_name(name))
    module(resolved)  # fail now, with a clear message, if it cannot load
    _process_default = resolved


@contextlib.contextmanager
def use_backend(name):
    """``with fastdl.use_backend('numpy'): ...`` runs the block on that backend."""
    resolved = _resolve(_check_name(name))
    module(resolved)
    token = _override.set(resolved)
    try:
        yield resolved
    finally:
        _override.reset(token)


def module(name=None):
    """The implementation module of a backend (the current one by default)."""
    name = get_backend() if name is None else name
    impl = _modules.get(name)
    if impl is None:
        impl = _modules[name] = _LOADERS[name]()
    return impl
