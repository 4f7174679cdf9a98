"""The book's ``lincoln.utils.mnist``: ``from fastdl.utils import mnist``, then
``X_train, y_train, X_test, y_test = mnist.load()``.

Same names and return values as the book's module: ``load()`` gives the raw images as uint8 rows
``(N, 784)`` and the labels as integers ``(N,)`` (60,000 training and 10,000 test images); ``init()``
fetches the files first. What differs: no pickle is written or read. The four IDX files are found the way
``fastdl.datasets.mnist`` finds them (``path``, ``$FASTDL_DATA/mnist``, the user cache folder) or
downloaded once with pooch (``pip install "fastdl-kernels[data]"``) and checked against fixed SHA-256 hashes; the
decoded arrays are cached beside them.
"""

from typing import Tuple

import numpy as np

from fastdl.datasets import raw

__all__ = ["download_mnist", "init", "load", "save_mnist"]


def download_mnist(path=None) -> None:
    """Make sure the four IDX files are on disk (downloading them into the user cache folder if needed)."""
    from fastdl.datasets.sources import find_or_fetch

    find_or_fetch("mnist", path)


def save_mnist(path=None) -> None:
    """Decode the IDX files once into fastdl's cache (a NumPy ``.npz``, not a pickle)."""
    raw("mnist", path)
    print("Save complete.")


def init(path=None) -> None:
    """The book's one-time set-up: fetch the files, then decode and cache them."""
    download_mnist(path)
    save_mnist(path)


def load(path=None) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(X_train (60000, 784) uint8, y_train (60000,) int64, X_test (10000, 784) uint8, y_test (10000,)
    int64)``, the raw pixels 0..255 and the digit labels 0..9, as the book's ``mnist.load()``."""
    X_train, y_train, X_test, y_test = raw("mnist", path)
    return (X_train.reshape(len(X_train), -1), y_train.astype(np.int64),
            X_test.reshape(len(X_test), -1), y_test.astype(np.int64))
