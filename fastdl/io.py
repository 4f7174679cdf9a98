"""Parameters in and out: a layer's state dict loaded in place (``load_params``), and networks saved to and
loaded from ``.npz`` files, without pickle.

``load_params(layer, state, strict)`` is what every ``load_state_dict`` runs: it checks names, shapes and
dtypes first and then copies into the layer's own arrays, so operations and optimizers keep them; on any
mismatch it raises and changes nothing (a layer it had to set up first is put back as it was).

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
import zipfile

from typing import List, Mapping

import numpy as np

from fastdl.utils.files import save_npz_atomically

__all__ = ["save", "load", "load_params", "FORMAT_VERSION"]

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
    save_npz_atomically(path, {**state, **meta})


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


def _is_fastdl_layer(layer) -> bool:
    """True for a ``fastdl.layers.Layer`` (it keeps its parameters behind ``_current_params``), False for a
    lincoln-style layer (a plain ``params`` list)."""
    return callable(getattr(layer, "_current_params", None))


def _host_params(layer) -> List[np.ndarray]:
    """A layer's host parameters for fastdl's own use: ``_current_params()`` of a fastdl layer (current
    values, device copies kept valid), ``params`` of any other layer."""
    return layer._current_params() if _is_fastdl_layer(layer) else layer.params


def load_params(layer, state: Mapping[str, np.ndarray], strict: bool = True, prefix: str = "") -> None:
    """``load_state_dict`` for any lincoln-style layer (``params`` list, ``first`` flag): check everything,
    then copy in place. ``prefix`` (e.g. ``"layers.2."``) only decorates the names in error messages."""
    if not isinstance(state, Mapping):
        raise TypeError(f"load_state_dict: state must be a mapping of names to arrays, got {type(state).__name__}")
    saved = (getattr(layer, "first", False), list(_host_params(layer)), list(getattr(layer, "operations", [])))
    if getattr(layer, "first", False) and _is_fastdl_layer(layer) and state:
        if "params.0" not in state:
            raise ValueError(f"load_state_dict: {layer!r} is not set up and the state has no {prefix}params.0 "
                             f"to set it up from (names: {sorted(prefix + k for k in state)})")
        layer._setup_layer(layer._cast(layer._setup_input(state)))
        layer.first = False
    try:
        _check_and_copy(layer, state, strict, prefix)
    except Exception:
        if _is_fastdl_layer(layer):  # undo a set-up done above
            layer.first, layer.params, layer.operations = saved
        raise


def _check_and_copy(layer, state, strict, prefix):
    params = _host_params(layer)
    expected = [f"params.{i}" for i in range(len(params))]
    missing = [prefix + k for k in expected if k not in state]
    unexpected = [prefix + k for k in state if k not in expected]
    if strict and (missing or unexpected):
        raise ValueError(f"load_state_dict: names do not match {layer!r}: missing {missing}, unexpected "
                         f"{unexpected} (pass strict=False to load the names that do match)")
    values = []
    for name, param in zip(expected, params):
        if name not in state:
            continue
        value = state[name]
        if not isinstance(value, np.ndarray):
            raise TypeError(f"load_state_dict: {prefix}{name} must be a numpy array, got {type(value).__name__}")
        if value.shape != param.shape:
            raise ValueError(f"load_state_dict: {prefix}{name} has shape {value.shape} but {layer!r} has a "
                             f"parameter of shape {param.shape} there")
        if value.dtype != param.dtype:
            raise ValueError(f"load_state_dict: {prefix}{name} has dtype {value.dtype} but {layer!r} has a "
                             f"{param.dtype} parameter there (build the layer with dtype={value.dtype.name})")
        values.append((param, value))
    for param, value in values:
        np.copyto(param, value)
    if _is_fastdl_layer(layer):
        layer._params_written()
