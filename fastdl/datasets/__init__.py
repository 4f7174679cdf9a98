"""Offline data sets for the book's experiments.

``digits()``: scikit-learn's bundled 8x8 handwritten digits (1,797 images, no download), prepared the
way the book prepares MNIST: one-hot float targets, and pixels centred and scaled
by the scalar mean and standard deviation of the TRAINING images. Needs scikit-learn, the
``examples`` extra: ``pip install "fastdl-kernels[examples]"``.

``mnist()`` and ``fashion_mnist()``: the 70,000-image MNIST-format data sets, found on disk (an explicit
folder, ``$FASTDL_DATA``, the user cache folder, Debian's package folder) or downloaded once with pooch
(the ``data`` extra: ``pip install "fastdl-kernels[data]"``), checked against fixed SHA-256 hashes.

``text()``: the character-level corpus shipped inside the package (``fastdl/datasets/corpus.txt``, sixteen
of Shakespeare's sonnets, public domain, about 10 KB), for chapter 6's ``RNNTrainer``.
"""

from pathlib import Path

import numpy as np

from fastdl.datasets.sources import IDX_STEMS, DataNotFoundError, user_cache_dir

__all__ = ["DataNotFoundError", "MNIST_FILES", "TEXT_CORPUS_PATH", "digits", "fashion_mnist", "mnist", "one_hot", "raw",
           "text", "user_cache_dir"]

#: the bundled text corpus (read by ``text()`` and by ``fastdl.rnn.RNNTrainer`` when no file is given).
TEXT_CORPUS_PATH = Path(__file__).resolve().parent / "corpus.txt"

#: the fixed split: 25% test (450 images), stratified by class, with this random_state.
DIGITS_TEST_FRACTION = 0.25
DIGITS_SPLIT_SEED = 20190119


def _sklearn():
    """``(load_digits, train_test_split)`` from scikit-learn, or an ImportError that says what to install."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as exc:
        raise ImportError(
            "fastdl.datasets.digits() needs scikit-learn, which is not installed. "
            "Install the examples extra: pip install \"fastdl-kernels[examples]\" (or pip install scikit-learn)."
        ) from exc
    return load_digits, train_test_split


def _float_dtype(op: str, dtype) -> np.dtype:
    """``dtype`` as a NumPy floating-point dtype, or a TypeError naming the loader (scaled pixels and one-hot
    labels cast to an integer type would be silently truncated)."""
    kind = np.dtype(dtype)
    if kind.kind != "f":
        raise TypeError(f"{op}: dtype must be a floating-point type such as float32 or float64, got {kind}")
    return kind


def one_hot(labels: np.ndarray, num_classes: int, dtype=np.float32) -> np.ndarray:
    """``(N,)`` integer labels -> ``(N, num_classes)`` one-hot rows of ``dtype``."""
    labels = np.asarray(labels, dtype=np.int64)
    out = np.zeros((labels.shape[0], num_classes), dtype=dtype)
    out[np.arange(labels.shape[0]), labels] = 1
    return out


def digits(dtype=np.float32, images: bool = False):
    """The 8x8 digits as ``(X_train, y_train, X_test, y_test)``.

    X is ``(N, 64)`` (or ``(N, 1, 8, 8)`` NCHW with ``images=True``, for Conv2D), scaled as
    ``(X - mean(X_train)) / std(X_train)`` with scalar statistics, as the book scales MNIST; y is
    one-hot ``(N, 10)``. The split is fixed: 1,347 training and 450 test images, stratified by class.
    """
    dtype = _float_dtype("digits", dtype)
    load_digits, train_test_split = _sklearn()
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X.astype(np.float64), y, test_size=DIGITS_TEST_FRACTION, random_state=DIGITS_SPLIT_SEED, stratify=y)
    mean, std = X_train.mean(), X_train.std()
    X_train = ((X_train - mean) / std).astype(dtype)
    X_test = ((X_test - mean) / std).astype(dtype)
    if images:
        X_train, X_test = X_train.reshape(-1, 1, 8, 8), X_test.reshape(-1, 1, 8, 8)
    return X_train, one_hot(y_train, 10, dtype), X_test, one_hot(y_test, 10, dtype)


def text() -> str:
    """The bundled public-domain corpus (Shakespeare's sonnets) as one string; no download, no extra."""
    return TEXT_CORPUS_PATH.read_text(encoding="utf-8")


MNIST_FILES = IDX_STEMS  # {array key: IDX file stem}, kept under its first name


def mnist(path=None, dtype=np.float32, images: bool = False):
    """MNIST (70,000 handwritten digits 28x28) prepared as the book prepares it: ``(X_train, y_train,
    X_test, y_test)`` with X ``(N, 784)`` (or ``(N, 1, 28, 28)`` with ``images=True``, for Conv2D) scaled
    by the training set's scalar mean and standard deviation, and one-hot ``(N, 10)`` labels of ``dtype``.

    ``path``: a folder holding the four IDX files (gzip-compressed or not). Without it they are searched
    for in ``$FASTDL_DATA/mnist`` and the user cache folder, and else downloaded with pooch (the ``data``
    extra) from the data set's mirror, checked against fixed SHA-256 hashes; see ``fastdl.datasets.sources``.
    """
    return _prepared("mnist", path, _float_dtype("mnist", dtype), images)


def fashion_mnist(path=None, dtype=np.float32, images: bool = False):
    """Fashion-MNIST (70,000 clothing images 28x28, ten classes, MNIST's format), prepared as ``mnist``.

    Without ``path`` the files are searched for in ``$FASTDL_DATA/fashion-mnist``, the user cache folder
    and the folder of Debian's package ``dataset-fashion-mnist``, and else downloaded with pooch from
    Zalando Research's repository, checked against fixed SHA-256 hashes."""
    return _prepared("fashion-mnist", path, _float_dtype("fashion_mnist", dtype), images)


def raw(name: str, path=None, download: bool = True):
    """The data set's arrays as stored: ``(X_train, y_train, X_test, y_test)``, images uint8
    ``(N, rows, cols)`` and labels uint8 ``(N,)``; decoded once, then read from the decoded cache."""
    from fastdl.datasets.sources import find_or_fetch, load_arrays

    arrays = load_arrays(find_or_fetch(name, path, download), name)
    return arrays["X_train"], arrays["y_train"], arrays["X_test"], arrays["y_test"]


def _prepared(name, path, dtype, images):
    X_train, y_train, X_test, y_test = raw(name, path)
    # every pixel is one of 256 values: the scalar statistics come exactly from the histogram (float64), and
    # the scaling is one table look-up per pixel, (value - mean) / std computed in float64 then cast
    counts = np.bincount(X_train.reshape(-1), minlength=256).astype(np.float64)
    values = np.arange(256, dtype=np.float64)
    n = counts.sum()
    mean = float(counts @ values / n) if n else 0.0
    std = float(np.sqrt(counts @ (values - mean) ** 2 / n)) if n else 1.0
    table = ((values - mean) / (std if std > 0 else 1.0)).astype(dtype)
    X_train, X_test = table[X_train], table[X_test]
    if images:
        X_train, X_test = X_train[:, None], X_test[:, None]
    else:
        X_train, X_test = X_train.reshape(len(X_train), -1), X_test.reshape(len(X_test), -1)
    return X_train, one_hot(y_train, 10, dtype), X_test, one_hot(y_test, 10, dtype)
