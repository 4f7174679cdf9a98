"""Save and load network parameters as ``.npz`` files, without pickle.

``save(net, path)`` writes ``net.state_dict()`` (names ``"layers.<i>.params.<j>"``) plus two small
metadata entries (``"_meta.format"`` and ``"_meta.layers"``, the layer class names) to ``path``
atomically (a temporary file in the same folder, then a rename). ``load(net, path)`` reads it with
``allow_pickle=False`` and calls ``net.load_state_dict(state, strict)``, which checks names, shapes and
dtypes; layers that have not seen a batch are set up from the saved shapes.

Errors: a missing file raises ``FileNotFoundError``; a file that is not a readable fastdl ``.npz``
(corrupt, truncated, pickled objects, another program's archive) raises ``ValueError`` naming the file;
a network that does not match the file raises ``ValueError`` explaining the mismatch.
``net`` may also be a single layer (anything with ``state_dict`` / ``load_state_dict``).
"""

import os
import tempfile
import zipfile

import numpy as np

__all__ = ["save", "load", "FORMAT_VERSION"]

FORMAT_VERSION = 1
_META = "_meta."


def _layer_names(net):
    layers = getattr(net, "layers", None)
    return None if layers is None else np.array([type(layer).__name__ for layer in layers], dtype=np.str_)


def save(net, path):
    """Write ``net``'s parameters to ``path`` (the exact path: no ``.npz`` is appended)."""
    state = net.state_dict()
    meta = {_META + "format": np.array(FORMAT_VERSION, dtype=np.int64)}
    names = _layer_names(net)
    if names is not None:
        meta[_META + "layers"] = names
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".fastdl-", suffix=".npz.tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **state, **meta)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _read(path):
    """Every array in the file, read eagerly so that corruption shows up here."""
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single array, not an .npz archive of named arrays")
        with archive:
            return {name: archive[name] for name in archive.files}
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise ValueError(f"fastdl.io.load: {path} is not a readable fastdl .npz file (corrupt, truncated or "
                         f"not written by fastdl.io.save): {type(exc).__name__}: {exc}") from exc


def load(net, path, strict=True):
    """Load parameters saved by ``save`` into ``net`` (in place) and return ``net``."""
    path = os.fspath(path)
    arrays = _read(path)
    meta = {k[len(_META):]: v for k, v in arrays.items() if k.startswith(_META)}
    state = {k: v for k, v in arrays.items() if not k.startswith(_META)}
    if "format" not in meta:
        raise ValueError(f"fastdl.io.load: {path} has no '_meta.format' entry; it was not written by "
                         f"fastdl.io.save")
    version = int(meta["format"])
    if version > FORMAT_VERSION:
        raise ValueError(f"fastdl.io.load: {path} has format version {version}; this fastdl reads up to "
                         f"{FORMAT_VERSION}")
    saved_layers = meta.get("layers")
    names = _layer_names(net)
    if strict and saved_layers is not None and names is not None and list(saved_layers) != list(names):
        raise ValueError(f"fastdl.io.load: {path} holds a network of layers {list(map(str, saved_layers))} "
                         f"but the network to load into has {list(map(str, names))}")
    try:
        net.load_state_dict(state, strict=strict)
    except ValueError as exc:
        raise ValueError(f"fastdl.io.load: {path} does not fit the network: {exc}") from exc
    return net
