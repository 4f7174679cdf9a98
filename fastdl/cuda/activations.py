"""Elementwise activations and their gradients (from the OUTPUT y), plus the device functions that
the GEMM epilogues and recurrent gate kernels inline.

Kernels are compiled per (dtype, activation) by cached factories; constants are typed per dtype so
float32 math never silently promotes to float64.
"""

import functools
import math

import numpy as np

from fastdl.cuda._compat import cuda
from fastdl.cuda._device import Io, empty, flat, grid_1d, launch, threads_1d
from fastdl.cuda.dropout import dropout_backward_dev

ACT_CODES = {"linear": 0, "sigmoid": 1, "tanh": 2, "relu": 3}


@functools.lru_cache(maxsize=None)
def act_device(dtype, code):
    """Device function v -> act(v) for one dtype and activation code."""
    one = np.dtype(dtype).type(1)
    zero = np.dtype(dtype).type(0)

    if code == 1:
        def f(v):
            return one / (one + math.exp(-v))
    elif code == 2:
        def f(v):
            return math.tanh(v)
    elif code == 3:
        def f(v):
            return v if v > zero else zero
    else:
        def f(v):
            return v
    return cuda.jit(device=True)(f)


@functools.lru_cache(maxsize=None)
def act_grad_device(dtype, code):
    """Device function (y, g) -> dL/dx from the activation OUTPUT y and upstream gradient g."""
    one = np.dtype(dtype).type(1)
    zero = np.dtype(dtype).type(0)

    if code == 1:
        def f(y, g):
            return y * (one - y) * g
    elif code == 2:
        def f(y, g):
            return (one - y * y) * g
    elif code == 3:
        def f(y, g):
            return g if y > zero else zero
    else:
        def f(y, g):
            return g
    return cuda.jit(device=True)(f)


@functools.lru_cache(maxsize=None)
def _act_kernel(dtype, code):
    fn = act_device(dtype, code)

    def kernel(x, y, n):  # x, y flat (n,)
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n:
            y[i] = fn(x[i])
            i += step
    return cuda.jit(kernel)


@functools.lru_cache(maxsize=None)
def _act_grad_kernel(dtype, code):
    fn = act_grad_device(dtype, code)

    def kernel(y, g, out, n):  # y, g, out flat (n,)
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < n:
            out[i] = fn(y[i], g[i])
            i += step
    return cuda.jit(kernel)


def activation_dev(xd, name):
    """act(x) for a device array, returning a new device array."""
    y = empty(xd.shape, xd.dtype)
    n = xd.size
    if n:
        t = threads_1d()
        launch(_act_kernel(xd.dtype, ACT_CODES[name]), grid_1d(n, t), t, flat(xd), flat(y), n)
    return y


def activation_backward_dev(yd, gd, name):
    out = empty(yd.shape, yd.dtype)
    n = yd.size
    if n:
        t = threads_1d()
        launch(_act_grad_kernel(yd.dtype, ACT_CODES[name]), grid_1d(n, t), t, flat(yd), flat(gd), flat(out), n)
    return out


def activation(x, name):
    """y = act(x), same shape and dtype as x."""
    io = Io(x)
    return io.out(activation_dev(io.arrays[0], name))


def activation_backward(y, grad_y, name, mask=None):
    """grad_x from the activation output y and grad_y (sigmoid y(1-y)g, tanh (1-y^2)g, relu g*(y>0)); 0 where
    the bool ``mask`` (a dropout's) is False, in a second launch."""
    io = Io(y, grad_y, mask)
    yd, gd, md = io.arrays
    grad_x = activation_backward_dev(yd, gd, name)
    return io.out(grad_x if md is None else dropout_backward_dev(grad_x, md))
