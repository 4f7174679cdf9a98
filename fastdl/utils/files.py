"""Writing ``.npz`` files atomically: into a temporary file beside the target, then renamed over it, so a
crash while writing leaves the old file (or none) and never a partial one. The temporary file is created
like any new file (mode 0666 less the process's umask), so the result has the usual permissions."""

import os
import uuid
from typing import Dict

import numpy as np


def save_npz_atomically(path, arrays: Dict[str, np.ndarray], prefix: str = ".fastdl-") -> None:
    """``np.savez(path, **arrays)``, atomically (see the module docstring). Errors propagate; the
    temporary file is removed."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f"{prefix}{uuid.uuid4().hex}.npz.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
