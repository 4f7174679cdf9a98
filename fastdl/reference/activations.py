"""NumPy reference: elementwise activations and their gradients.

Names: "linear", "sigmoid", "tanh", "relu".  Math is done in the input dtype; results are new arrays.
The backward pass uses the activation OUTPUT y (not the input), as the fused kernels do.
"""

import numpy as np

ACTIVATIONS = ("linear", "sigmoid", "tanh", "relu")


def _sigmoid(x):
    # x is any shape; stable for large |x| (never exponentiates a positive number)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def activation(x, name):
    """y = act(x), same shape and dtype as x."""
    # x is any shape
    if name == "linear":
        return x.copy()
    if name == "sigmoid":
        return _sigmoid(x)
    if name == "tanh":
        return np.tanh(x)
    if name == "relu":
        return np.maximum(x, 0).astype(x.dtype, copy=False)
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


def activation_backward(y, grad_y, name, mask=None):
    """grad_x from the output y = act(x) and grad_y (both the same shape); 0 where the bool ``mask`` (a
    dropout's, of the same shape) is False."""
    # y, grad_y, mask are any shape (equal)
    grad_x = _activation_backward(y, grad_y, name)
    return grad_x if mask is None else np.where(mask, grad_x, 0).astype(grad_x.dtype, copy=False)


def _activation_backward(y, grad_y, name):
    if name == "linear":
        return grad_y.copy()
    if name == "sigmoid":
        return grad_y * y * (1 - y)
    if name == "tanh":
        return grad_y * (1 - y * y)
    if name == "relu":
        return np.where(y > 0, grad_y, 0).astype(grad_y.dtype, copy=False)
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")
