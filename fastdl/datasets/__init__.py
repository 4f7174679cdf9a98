"""Offline data sets for the book's experiments.

``digits()``: scikit-learn's bundled 8x8 handwritten digits (1,797 images, no download), prepared the
way the book prepares MNIST: one-hot float targets, and pixels centred and scaled
by the scalar mean and standard deviation of the TRAINING images. Needs scikit-learn, the
``examples`` extra: ``pip install "fastdl[examples]"``.

``text()``: the character-level corpus shipped inside the package (``fastdl/datasets/corpus.txt``, sixteen
of Shakespeare's sonnets, public domain, about 10 KB), for chapter 6's ``RNNTrainer``.
"""

from pathlib import Path

import numpy as np

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
            "Install the examples extra: pip install \"fastdl[examples]\" (or pip install scikit-learn)."
        ) from exc
    return load_digits, train_test_split


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


MNIST_FILES = {"X_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
               "X_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}


def _find_idx(folder, stem):
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        path = folder / name
        if path.exists():
            return path
    raise FileNotFoundError(f"mnist: no {stem}[.gz] in {folder}")


def mnist(path, dtype=np.float32, images: bool = False):
    """MNIST from the four IDX files in the folder ``path`` (gzip-compressed or not), as the book
    prepares it: ``(X_train, y_train, X_test, y_test)`` with X ``(N, 784)`` (or ``(N, 1, 28, 28)`` with
    ``images=True``) scaled by the training set's scalar mean and std, and one-hot ``(N, 10)`` labels.
    Nothing is downloaded: the files must already be on disk."""
    from pathlib import Path

    from fastdl.datasets.idx import read_idx

    folder = Path(path)
    raw = {key: read_idx(_find_idx(folder, stem)) for key, stem in MNIST_FILES.items()}
    for split in ("train", "test"):
        if raw[f"X_{split}"].shape[0] != raw[f"y_{split}"].shape[0]:
            raise ValueError(f"mnist: {split} images and labels differ in count: "
                             f"{raw[f'X_{split}'].shape[0]} vs {raw[f'y_{split}'].shape[0]}")
    X_train = raw["X_train"].reshape(len(raw["X_train"]), -1).astype(np.float64)
    X_test = raw["X_test"].reshape(len(raw["X_test"]), -1).astype(np.float64)
    mean, std = X_train.mean(), X_train.std()
    X_train, X_test = ((X_train - mean) / std).astype(dtype), ((X_test - mean) / std).astype(dtype)
    if images:
        side = int(round(np.sqrt(X_train.shape[1])))
        X_train, X_test = X_train.reshape(-1, 1, side, side), X_test.reshape(-1, 1, side, side)
    return X_train, one_hot(raw["y_train"], 10, dtype), X_test, one_hot(raw["y_test"], 10, dtype)
