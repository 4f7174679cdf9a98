"""Training checkpoints: everything a run needs to continue exactly where it stopped, in one ``.npz``.

A checkpoint holds the network's ``state_dict()``, the optimizer's state (its learning rate and flags,
and its running arrays such as momentum velocities or AdaGrad sums), the position in the data (epoch,
next batch, the shuffled order and the shuffling generator's state), every dropout generator's state,
the early-stopping record (best loss, epoch and parameters) and the history so far. A run restarted
from it computes the very same weights as one that never stopped.

The file is written like ``fastdl.io.save``: NumPy arrays only (read back with ``allow_pickle=False``),
to a temporary file in the same folder and then renamed over the old one, so a crash while saving
leaves the previous checkpoint whole. Scalars, generator states and the history travel as one JSON
text entry.

``pack_state(obj)`` / ``unpack_state(arrays, meta)`` turn an object's attributes (numbers, strings,
flags, arrays, and lists or dicts of them) into named arrays plus JSON and back; attributes of any
other type (the network an optimizer points at, callables) are left out.
"""

import json
import os
import zipfile
from typing import Any, Dict, Tuple

import numpy as np

from fastdl import device as dev
from fastdl.utils.files import save_npz_atomically

__all__ = ["save_checkpoint", "load_checkpoint", "pack_state", "unpack_state", "FORMAT_VERSION"]

FORMAT_VERSION = 1
_META = "_checkpoint.json"
_ARRAY = "__array__"  # a JSON placeholder {"__array__": name} for an array stored beside the JSON


def _pack(value: Any, name: str, arrays: Dict[str, np.ndarray]) -> Tuple[bool, Any]:
    """(kept, JSON form) of one value; arrays go into ``arrays`` under ``name``."""
    if isinstance(value, np.ndarray):
        arrays[name] = np.array(value, copy=True)
        return True, {_ARRAY: name}
    if value is None or isinstance(value, (bool, int, float, str)):
        return True, value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return True, value.item()
    if isinstance(value, (list, tuple)):
        items = [_pack(item, f"{name}.{i}", arrays) for i, item in enumerate(value)]
        if all(kept for kept, _ in items):
            return True, {"__list__": [form for _, form in items]}
        return False, None
    if isinstance(value, dict) and all(isinstance(k, (str, int)) for k in value):
        items = {k: _pack(v, f"{name}.{k}", arrays) for k, v in value.items()}
        if all(kept for kept, _ in items.values()):
            return True, {"__dict__": [[k, form] for k, (_, form) in items.items()]}
        return False, None
    return False, None


def _unpack(form: Any, arrays: Dict[str, np.ndarray]) -> Any:
    if isinstance(form, dict):
        if _ARRAY in form:
            return arrays[form[_ARRAY]]
        if "__list__" in form:
            return [_unpack(item, arrays) for item in form["__list__"]]
        if "__dict__" in form:
            return {k: _unpack(v, arrays) for k, v in form["__dict__"]}
    return form


def pack_state(obj: Any, prefix: str, arrays: Dict[str, np.ndarray], skip=()) -> Dict[str, Any]:
    """The JSON form of ``obj``'s attributes (arrays added to ``arrays`` as ``prefix.<attribute>...``; device
    arrays, such as an optimizer's state on the cuda backend, as host copies)."""
    meta = {}
    for key, value in dev.host_state(vars(obj)).items():
        if key in skip:
            continue
        kept, form = _pack(value, f"{prefix}.{key}", arrays)
        if kept:
            meta[key] = form
    return meta


def unpack_state(obj: Any, meta: Dict[str, Any], arrays: Dict[str, np.ndarray]) -> None:
    """Set ``obj``'s attributes from ``pack_state``'s output; arrays already on ``obj`` with the same shape
    and dtype are filled in place (an optimizer's running arrays keep their identity)."""
    for key, form in meta.items():
        value = _unpack(form, arrays)
        current = getattr(obj, key, None)
        if isinstance(value, list) and isinstance(current, list) and len(current) == len(value):
            for i, (old, new) in enumerate(zip(current, value)):
                if isinstance(old, np.ndarray) and isinstance(new, np.ndarray) and old.shape == new.shape \
                        and old.dtype == new.dtype:
                    np.copyto(old, new)
                else:
                    current[i] = new
            continue
        setattr(obj, key, value)


def save_checkpoint(path, arrays: Dict[str, np.ndarray], meta: Dict[str, Any]) -> None:
    """Write ``arrays`` and the JSON ``meta`` to ``path`` atomically."""
    path = os.fspath(path)
    meta = dict(meta, format=FORMAT_VERSION)
    entries = dict(arrays)
    entries[_META] = np.array(json.dumps(meta))
    save_npz_atomically(path, entries, prefix=".fastdl-checkpoint-")


def load_checkpoint(path) -> Tuple[Dict[str, np.ndarray], Dict[str, Any]]:
    """``(arrays, meta)`` as given to ``save_checkpoint``. A file that is not a fastdl checkpoint raises
    ``ValueError`` naming it."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            entries = {name: archive[name] for name in archive.files}
        meta = json.loads(str(entries.pop(_META)))
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (ValueError, OSError, EOFError, KeyError, AttributeError, TypeError, zipfile.BadZipFile) as exc:
        raise ValueError(f"fastdl checkpoint: {path} is not a readable fastdl checkpoint (corrupt, truncated or "
                         f"not written by a fastdl trainer): {type(exc).__name__}: {exc}") from exc
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"fastdl checkpoint: {path} has format {meta.get('format')!r}; this fastdl reads "
                         f"format {FORMAT_VERSION}")
    return entries, meta
