"""``fastdl.show_config()``: which backend serves each kernel, and the build facts."""

import numpy as np

from fastdl import backend
from fastdl.contract import KERNEL_NAMES


def _served_by(name):
    impl = backend.module(name)
    labels = getattr(impl, "SERVED_BY", None)
    if labels is None:
        default = {"numpy": "numpy reference", "cuda": "cuda (Numba)"}[name]
        return {k: default for k in KERNEL_NAMES}
    return labels


def config_text():
    from fastdl import __version__, config

    current = backend.get_backend()
    labels = _served_by(current)
    lines = [
        f"fastdl {__version__}  numpy {np.__version__}",
        f"backend: {current}  (cpu extension: {'yes' if backend.cpu_available() else 'no'}, "
        f"real GPU: {'yes' if backend.cuda_real_gpu() else 'no'}, threads: {config.get_num_threads()})",
        "kernel                  served by",
    ]
    lines += [f"  {k:<22}{labels[k]}" for k in KERNEL_NAMES]
    return "\n".join(lines)


def served_by():
    """{kernel name: what serves it} under the current backend."""
    return dict(_served_by(backend.get_backend()))


def show_config():
    """Print the backend serving each kernel of ``fastdl.kernels``."""
    print(config_text())
