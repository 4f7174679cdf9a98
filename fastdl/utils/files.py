"""Writing ``.npz`` files atomically: into a temporary file beside the target, then renamed over it, so a
crash while writing leaves the old file (or none) and never a partial one. The new file gets the
permissions a plain ``open(path, "w")`` would give (the process's umask), not the temporary file's 0600."""

import os
import tempfile
from typing import Dict

import numpy as np


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save_npz_atomically(path, arrays: Dict[str, np.ndarray], prefix: str = ".fastdl-") -> None:
    """``np.savez(path, **arrays)``, atomically (see the module docstring). Errors propagate; the
    temporary file is removed."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".npz.tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
