"""fastdl's optimizer update rules on the device: SGD, SGD with momentum, AdaGrad, RegularizedSGD.

``fastdl.optimizers`` calls these for parameters whose layers keep them on the device (the cuda
backend), so a training step never moves a parameter to the host. Every launcher updates ``param``
(and the rule's running state) IN PLACE from ``grad``; all arrays are Numba device arrays of one shape
and dtype, C-contiguous. The scalars (learning rate, momentum, ...) are cast to that dtype, so float32
parameters are updated in float32 arithmetic, in the same order of operations as the NumPy rules in
``fastdl/optimizers.py``. Kernels are compiled per dtype on first use: importing needs no numba.
"""

import functools
import math

import numpy as np

from fastdl.cuda import _serialised
from fastdl.cuda._compat import cuda
from fastdl.cuda._device import flat, grid_1d, launch, threads_1d


# ----------------------------------------------------------------------------------------------
# kernels (grid-stride loops over flat (n,) views; one compiled kernel per dtype)
# ----------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _sgd_kernel(dtype):
    def kernel(param, grad, lr, n):  # param -= lr * grad
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n:
            param[i] -= lr * grad[i]
            i += step
    return cuda.jit(kernel)


@functools.lru_cache(maxsize=None)
def _momentum_kernel(dtype):
    def kernel(param, grad, velocity, lr, momentum, n):  # v = momentum * v + lr * grad; param -= v
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n:
            v = velocity[i] * momentum
            v += lr * grad[i]
            velocity[i] = v
            param[i] -= v
            i += step
    return cuda.jit(kernel)


@functools.lru_cache(maxsize=None)
def _adagrad_kernel(dtype):
    def kernel(param, grad, sum_square, lr, eps, n):  # s += eps + grad**2; param -= lr / sqrt(s) * grad
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n:
            g = grad[i]
            s = sum_square[i] + (eps + g * g)
            sum_square[i] = s
            param[i] -= (lr / math.sqrt(s)) * g
            i += step
    return cuda.jit(kernel)


@functools.lru_cache(maxsize=None)
def _regularized_kernel(dtype):
    def kernel(param, grad, lr, alpha, n):  # param -= lr * grad + alpha * param
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n:
            p = param[i]
            param[i] = p - (lr * grad[i] + alpha * p)
            i += step
    return cuda.jit(kernel)


# ----------------------------------------------------------------------------------------------
# launchers
# ----------------------------------------------------------------------------------------------

def _check(param, **others):
    """Every array has param's shape and dtype (they are updated element by element)."""
    for name, a in others.items():
        if tuple(a.shape) != tuple(param.shape) or a.dtype != param.dtype:
            raise ValueError(f"optimizer step on the device: {name} is {tuple(a.shape)} {a.dtype} but the "
                             f"parameter is {tuple(param.shape)} {param.dtype}")
    return np.dtype(param.dtype)


def _launch_1d(kernel, n, *args):
    if n:
        t = threads_1d()
        launch(kernel, grid_1d(n, t), t, *args, n)


@_serialised
def sgd(param, grad, lr):
    """``param -= lr * grad``."""
    dt = _check(param, grad=grad)
    _launch_1d(_sgd_kernel(dt), param.size, flat(param), flat(grad), dt.type(lr))


@_serialised
def sgd_momentum(param, grad, velocity, lr, momentum):
    """``velocity = momentum * velocity + lr * grad; param -= velocity``."""
    dt = _check(param, grad=grad, velocity=velocity)
    _launch_1d(_momentum_kernel(dt), param.size, flat(param), flat(grad), flat(velocity), dt.type(lr),
               dt.type(momentum))


@_serialised
def adagrad(param, grad, sum_square, lr, eps):
    """``sum_square += eps + grad**2; param -= lr / sqrt(sum_square) * grad``."""
    dt = _check(param, grad=grad, sum_square=sum_square)
    _launch_1d(_adagrad_kernel(dt), param.size, flat(param), flat(grad), flat(sum_square), dt.type(lr),
               dt.type(eps))


@_serialised
def regularized_sgd(param, grad, lr, alpha):
    """``param -= lr * grad + alpha * param`` (weight decay not scaled by lr, as the book)."""
    dt = _check(param, grad=grad)
    _launch_1d(_regularized_kernel(dt), param.size, flat(param), flat(grad), dt.type(lr), dt.type(alpha))
