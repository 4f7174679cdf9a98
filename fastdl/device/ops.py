"""The few device-array operations the book API needs besides the kernels: the mean-squared-error and
dropout arithmetic, zeros for optimizer state, and the optimizers' update rules. Each takes device arrays
(Numba, CuPy, PyTorch) and imports the cuda backend's helpers on first use."""


def scale(x, s):
    """``s * x`` as a new device array."""
    from fastdl.cuda import elementwise

    return elementwise.scale(x, s)


def subtract(a, b):
    """``a - b`` as a new device array."""
    from fastdl.cuda import elementwise

    return elementwise.subtract(a, b)


def copy(x):
    """A new device array equal to ``x``."""
    from fastdl.cuda import elementwise

    return elementwise.copy(x)


def sum_squares(x):
    """``sum(x * x)`` as a Python float."""
    from fastdl.cuda import elementwise

    return elementwise.sum_squares(x)


def zeros(shape, dtype):
    """A new device array of zeros."""
    from fastdl.cuda._device import zeros as device_zeros

    return device_zeros(shape, dtype)


def _rules():
    from fastdl.cuda import optimizers

    return optimizers


def sgd(param, grad, lr):
    """``param -= lr * grad`` in place."""
    _rules().sgd(param, grad, lr)


def sgd_momentum(param, grad, velocity, lr, momentum):
    """``velocity = momentum * velocity + lr * grad; param -= velocity`` in place."""
    _rules().sgd_momentum(param, grad, velocity, lr, momentum)


def adagrad(param, grad, sum_square, lr, eps):
    """AdaGrad in place: ``sum_square += eps + grad**2; param -= lr / sqrt(sum_square) * grad``."""
    _rules().adagrad(param, grad, sum_square, lr, eps)


def regularized_sgd(param, grad, lr, alpha):
    """``param -= lr * grad + alpha * param`` in place (alpha not scaled by lr, as the book)."""
    _rules().regularized_sgd(param, grad, lr, alpha)
