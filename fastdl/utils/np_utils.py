"""lincoln's ``utils/np_utils.py`` helpers, same names and signatures.

Differences from the book, all fixes: ``generate_batch`` uses ``ndim`` (the book called torch's
``.dim()``), ``assert_same_shape`` names the shapes in the right order and raises even under
``python -O``, ``permute_data`` takes an optional ``rng`` (a ``numpy.random.Generator``) and
``softmax`` needs no SciPy.
"""

from typing import Tuple

import numpy as np

Batch = Tuple[np.ndarray, np.ndarray]


class ShapeMismatchError(AssertionError, ValueError):
    """Two arrays that must have the same shape do not.

    It is an ``AssertionError`` (what lincoln raised) and a ``ValueError`` (fastdl's convention).
    """


def to_2d(a: np.ndarray, type: str = "col") -> np.ndarray:
    """Turn a 1-D array into a column ``(-1, 1)`` (``type="col"``) or a row ``(1, -1)``."""
    if np.ndim(a) != 1:
        raise ShapeMismatchError(f"to_2d: input must be 1-dimensional, got shape {np.shape(a)}")
    if type == "col":
        return a.reshape(-1, 1)
    if type == "row":
        return a.reshape(1, -1)
    raise ValueError(f"to_2d: type must be 'col' or 'row', got {type!r}")


def normalize(a: np.ndarray) -> np.ndarray:
    """``[a, 1 - a]`` side by side (axis 1), as the book's single-output path builds it."""
    return np.concatenate([a, 1 - a], axis=1)


def unnormalize(a: np.ndarray) -> np.ndarray:
    """The book's ``a[np.newaxis, 0]``: the FIRST ROW, kept as is (the book's code is unreachable)."""
    return a[np.newaxis, 0]


def permute_data(X: np.ndarray, y: np.ndarray, rng=None):
    """``X`` and ``y`` shuffled by one random permutation of their rows (copies, as in the book).

    ``rng`` is a ``numpy.random.Generator``; without it the global NumPy RNG is used, like lincoln.
    """
    n = X.shape[0]
    perm = np.random.permutation(n) if rng is None else rng.permutation(n)
    return X[perm], y[perm]


def generate_batch(X: np.ndarray, y: np.ndarray, start: int = 0, batch_size: int = 10) -> Batch:
    """Rows ``start:start + batch_size`` of ``X`` and ``y`` (both 2-D), clipped at the end."""
    if X.ndim != 2 or y.ndim != 2:
        raise ShapeMismatchError(f"generate_batch: X and y must be 2-dimensional, got {X.shape} and {y.shape}")
    if start + batch_size > X.shape[0]:
        batch_size = X.shape[0] - start
    return X[start:start + batch_size], y[start:start + batch_size]


def assert_same_shape(output: np.ndarray, output_grad: np.ndarray) -> None:
    """Raise ``ShapeMismatchError`` unless both arrays have the same shape."""
    if type(output) is np.ndarray and type(output_grad) is np.ndarray and output.shape == output_grad.shape:
        return  # the common case, without np.shape's conversions
    if np.shape(output) != np.shape(output_grad):
        raise ShapeMismatchError(
            f"Two tensors should have the same shape; instead, the first tensor's shape is "
            f"{tuple(np.shape(output))} and the second tensor's shape is {tuple(np.shape(output_grad))}.")


def assert_dim(t: np.ndarray, dim: int) -> None:
    """Raise ``ShapeMismatchError`` unless ``t`` has ``dim`` dimensions."""
    if np.ndim(t) != dim:
        raise ShapeMismatchError(f"Tensor expected to have dimension {dim}, instead has dimension {np.ndim(t)}")


def softmax(x: np.ndarray, axis=None) -> np.ndarray:
    """``exp(x - logsumexp(x, axis))``; with ``axis=None`` it normalises over ALL elements (as the book)."""
    x = np.asarray(x)
    shifted = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)
