"""The kernel layer itself: backend selection, show_config, validation before dispatch."""

import os
import subprocess
import sys

import numpy as np
import pytest

import fastdl
from fastdl import kernels


def test_every_kernel_has_every_backend_function():
    from fastdl import reference

    for name in kernels.KERNEL_NAMES:
        assert callable(getattr(reference, name)), name
        assert name in reference.KERNELS
    if fastdl.backend.cpu_available():
        from fastdl.cpu import kernels as _cpu

        assert set(_cpu.KERNELS) == set(kernels.KERNEL_NAMES)


def test_use_backend_restores_previous():
    before = fastdl.get_backend()
    with fastdl.use_backend("numpy") as name:
        assert name == "numpy" and fastdl.get_backend() == "numpy"
    assert fastdl.get_backend() == before


def test_set_backend_and_bad_name():
    before = fastdl.get_backend()
    try:
        fastdl.set_backend("numpy")
        assert fastdl.get_backend() == "numpy"
    finally:
        fastdl.set_backend(before)
    with pytest.raises(ValueError, match="backend must be one of"):
        fastdl.set_backend("tpu")


def test_auto_never_picks_cuda_without_real_gpu():
    with fastdl.use_backend("auto") as name:
        assert name in ("cpu", "numpy", "cuda")
        if not fastdl.backend.cuda_real_gpu():
            assert name != "cuda"


def test_env_var_selects_backend():
    env = dict(os.environ, FASTDL_BACKEND="numpy")
    out = subprocess.run([sys.executable, "-c", "import fastdl; print(fastdl.get_backend())"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "numpy"


def test_show_config_lists_every_kernel(capsys):
    fastdl.show_config()
    text = capsys.readouterr().out
    for name in kernels.KERNEL_NAMES:
        assert name in text
    if fastdl.get_backend() == "cpu":
        assert "C++" in text


def test_cuda_request_without_gpu_or_simulator_is_clear():
    code = ("import fastdl\ntry:\n    fastdl.set_backend('cuda')\nexcept RuntimeError as e:\n    print('ERR', e)\n"
            "else:\n    print('OK')")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    if not fastdl.backend.cuda_real_gpu():
        assert out.startswith("ERR") and "cuda" in out


@pytest.mark.parametrize("call,exc,pattern", [
    (lambda: kernels.matmul(np.ones((2, 3)), np.ones((4, 2))), ValueError, r"matmul: inner dimensions differ"),
    (lambda: kernels.matmul(np.ones(3), np.ones((3, 2))), ValueError, r"matmul: argument a must be 2-D"),
    (lambda: kernels.matmul(np.ones((2, 3)), np.ones((3, 2), np.float32)), TypeError, r"matmul: mixed dtypes"),
    (lambda: kernels.matmul(np.ones((2, 3), int), np.ones((3, 2), int)), TypeError, r"float32 or float64"),
    (lambda: kernels.linear(np.ones((2, 3)), np.ones((3, 4)), np.ones(5)), ValueError, r"linear: argument b"),
    (lambda: kernels.linear(np.ones((2, 3)), np.ones((3, 4)), activation="gelu"), ValueError, r"activation must"),
    (lambda: kernels.conv2d(np.ones((1, 2, 5, 5)), np.ones((3, 1, 3, 3))), ValueError, r"conv2d: channel mismatch"),
    (lambda: kernels.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), stride=0), ValueError, r"stride"),
    (lambda: kernels.conv2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3)), padding="valid"), ValueError,
     r"larger than the padded image"),
    (lambda: kernels.softmax_cross_entropy(np.ones((2, 3)), np.array([0, 3])), ValueError, r"labels must lie in"),
    (lambda: kernels.softmax_cross_entropy(np.ones((2, 3)), np.array([0.0, 1.0])), TypeError, r"integer"),
    (lambda: kernels.lstm_forward(np.ones((2, 3, 4)), np.ones((2, 5)), np.ones((2, 5)), np.ones((9, 19)),
                                  np.ones(20)), ValueError, r"lstm_forward: argument w"),
    (lambda: kernels.rnn_forward(np.ones((2, 3, 4)), np.ones((2, 0)), np.ones((4, 0)), np.ones(0)), ValueError,
     r"rnn_forward: h0 is \(2, 0\); the hidden size"),
])
def test_bad_input_is_a_clear_error(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_read_only_inputs_are_fine():
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    a.setflags(write=False)
    np.testing.assert_allclose(kernels.matmul(a, a, trans_b=True), a @ a.T)


def test_zero_dim_input_keeps_its_shape():
    for name in ("numpy", "cpu") if fastdl.backend.cpu_available() else ("numpy",):
        with fastdl.use_backend(name):
            out = kernels.activation(np.array(2.0), "tanh")
        assert out.shape == () and np.isclose(out, np.tanh(2.0))


def test_set_num_threads_accepts_numpy_integers():
    before = fastdl.get_num_threads()
    try:
        fastdl.set_num_threads(np.int64(1))
    finally:
        fastdl.set_num_threads(before)
    with pytest.raises(TypeError, match="set_num_threads: n must be an int"):
        fastdl.set_num_threads(True)
