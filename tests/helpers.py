"""Shared test helpers: run a kernel on the reference and on a backend and compare everything."""

import numpy as np

import fastdl
from fastdl import device, kernels

TOLERANCE = {np.dtype(np.float32): (2e-4, 2e-5), np.dtype(np.float64): (1e-10, 1e-12)}


def vec_isas(core):
    """The SIMD paths (scalar, avx2, avx512) that fastdl._core's force_vec_isa accepts on this CPU."""
    if not hasattr(core, "force_vec_isa"):
        return ["auto"]
    names = []
    for name in ("scalar", "avx2", "avx512"):
        try:
            core.force_vec_isa(name)
            names.append(name)
        except ValueError:
            pass
        finally:
            core.force_vec_isa("auto")
    return names


def to_host(a):
    """A NumPy copy of a device array (Numba, CuPy, PyTorch); host arrays and anything else unchanged."""
    return device.to_host(a)


def assert_same(actual, expected, dtype, what, scale=1.0):
    """Values, dtype and shape of one result against the reference's."""
    actual = to_host(actual)
    if isinstance(expected, float):
        rtol, atol = TOLERANCE[np.dtype(dtype)]
        assert isinstance(actual, float), f"{what}: expected a Python float, got {type(actual).__name__}"
        np.testing.assert_allclose(actual, expected, rtol=rtol * 10, atol=atol * 10 * scale, err_msg=what)
        return
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != reference {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != reference {expected.dtype}"
    rtol, atol = TOLERANCE[np.dtype(dtype)]
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * scale, err_msg=what)


def _results(out):
    return out if isinstance(out, tuple) else (out,)


def check_op(name, args, backend, kwargs=None, dtype=np.float64, scale=1.0, output_scales=None):
    """Run ``kernels.<name>(*args, **kwargs)`` on the numpy reference and on ``backend``; compare every
    output (value, dtype, shape). Dict outputs (sequence caches) are skipped. ``output_scales`` gives
    output i its own tolerance scale instead of ``scale``. Returns both results."""
    kwargs = kwargs or {}
    fn = getattr(kernels, name)
    snapshot = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    with fastdl.use_backend("numpy"):
        expected = fn(*args, **kwargs)
    with fastdl.use_backend(backend):
        actual = fn(*args, **kwargs)
    for before, after in zip(snapshot, args):
        if isinstance(before, np.ndarray):
            np.testing.assert_array_equal(before, after, err_msg=f"{name} modified its input")
    for i, (a, e) in enumerate(zip(_results(actual), _results(expected))):
        if isinstance(e, dict):
            continue
        assert_same(a, e, dtype, f"{name}[{backend}] output {i}", scale if output_scales is None else output_scales[i])
    return actual, expected


def check_without_grad_x(name, args, backend, kwargs=None, dtype=np.float64, scale=1.0):
    """``kernels.<name>(*args, need_grad_x=False, **kwargs)`` (a backward kernel whose first result is
    grad_x) on the reference and on ``backend``: grad_x is None on both, and every other result matches
    the reference's full call (the same gradients as when grad_x is computed)."""
    fn = getattr(kernels, name)
    with fastdl.use_backend("numpy"):
        full = fn(*args, **(kwargs or {}))
    for on in ("numpy", backend):
        with fastdl.use_backend(on):
            partial = fn(*args, need_grad_x=False, **(kwargs or {}))
        assert partial[0] is None, f"{name}[{on}] need_grad_x=False returned a grad_x"
        assert len(partial) == len(full)
        for i, (a, e) in enumerate(zip(partial[1:], full[1:]), start=1):
            assert_same(a, e, dtype, f"{name}[{on}] need_grad_x=False output {i}", scale)


def check_sequence_op(family, args, grads, backend, dtype=np.float64):
    """Forward then backward of a recurrent kernel family ('rnn', 'lstm', 'gru') on both backends.

    ``grads`` are the upstream gradients (grad_h_seq, and grad_c_last for lstm)."""
    forward = getattr(kernels, f"{family}_forward")
    backward = getattr(kernels, f"{family}_backward")
    outs = {}
    for name in ("numpy", backend):
        with fastdl.use_backend(name):
            fwd = forward(*args)
            bwd = backward(grads[0], fwd[-1], *grads[1:])
        outs[name] = (fwd[:-1], bwd)
    for i, (a, e) in enumerate(zip(outs[backend][0], outs["numpy"][0])):
        assert_same(a, e, dtype, f"{family}_forward[{backend}] output {i}")
    for i, (a, e) in enumerate(zip(outs[backend][1], outs["numpy"][1])):
        assert_same(a, e, dtype, f"{family}_backward[{backend}] output {i}")


def random(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def numerical_grad(f, arr, h=1e-6):
    """Central differences of the scalar f() w.r.t. every element of arr (perturbed in place)."""
    g = np.zeros_like(arr)
    for idx in np.ndindex(arr.shape):
        v = arr[idx]
        arr[idx] = v + h
        fp = f()
        arr[idx] = v - h
        fm = f()
        arr[idx] = v
        g[idx] = (fp - fm) / (2 * h)
    return g
