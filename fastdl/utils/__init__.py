"""Helpers mirroring ``lincoln.utils`` (``from fastdl.utils import np_utils`` or
``from fastdl.utils.np_utils import permute_data``, and ``from fastdl.utils import mnist`` for the book's
``mnist.load()``; that module is imported on first use, so importing fastdl never touches the data)."""

from fastdl.utils import np_utils

__all__ = ["mnist", "np_utils"]


def __getattr__(name):
    if name == "mnist":
        import importlib

        return importlib.import_module("fastdl.utils.mnist")
    raise AttributeError(f"module 'fastdl.utils' has no attribute {name!r}")
