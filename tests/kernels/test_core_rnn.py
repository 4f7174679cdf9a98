"""fastdl._core's recurrent kernels (RNN, LSTM, GRU forward and backward through time) against the NumPy
reference, through the cpu adapter fastdl.cpu.rnn: both dtypes, shapes with 1s and primes (hidden sizes
that split unevenly over threads), grad_c_last None and given, every SIMD path of the gate math, 1 vs 2
threads bit-identical, a region given fewer threads than asked, every GEMM kernel under the per-step products, shape errors.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from fastdl import reference
from helpers import vec_isas

core = pytest.importorskip("fastdl._core", reason="the C++ extension fastdl._core is not built")

from fastdl.cpu import rnn as cpu  # noqa: E402

TOL = {np.float32: dict(rtol=3e-4, atol=3e-5), np.float64: dict(rtol=1e-9, atol=1e-11)}
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
# (B, T, F, H): 1s, primes, F = 0, and sizes large enough that the time loop runs on 2 threads with an
# uneven split of the hidden units (16 * 4 * 97^2 multiply-adds per step).
SHAPES = [(1, 1, 1, 1), (2, 3, 5, 7), (3, 7, 13, 17), (1, 2, 3, 33), (4, 5, 0, 3), (16, 6, 19, 97)]


def _inputs(rng, kind, shape, dtype):
    B, T, F, H = shape
    G = GATES[kind]
    scale = 1.0 / np.sqrt(F + H)
    return dict(
        x=rng.standard_normal((B, T, F)).astype(dtype),
        h0=rng.standard_normal((B, H)).astype(dtype),
        c0=rng.standard_normal((B, H)).astype(dtype),
        w=(rng.standard_normal((F + H, G * H)) * scale).astype(dtype),
        b=(rng.standard_normal(G * H) * 0.5).astype(dtype),
        grad_h=rng.standard_normal((B, T, H)).astype(dtype),
        grad_c=rng.standard_normal((B, H)).astype(dtype),
    )


def _run(backend, kind, a, grad_c=None):
    """forward + backward -> list of every output array"""
    if kind == "lstm":
        h_seq, c_last, cache = backend.lstm_forward(a["x"], a["h0"], a["c0"], a["w"], a["b"])
        return [h_seq, c_last, *backend.lstm_backward(a["grad_h"], cache, grad_c)]
    h_seq, cache = getattr(backend, kind + "_forward")(a["x"], a["h0"], a["w"], a["b"])
    return [h_seq, *getattr(backend, kind + "_backward")(a["grad_h"], cache)]


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return request.param


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_matches_reference(kind, shape, dtype):
    a = _inputs(np.random.default_rng(sum(shape)), kind, shape, dtype)
    before = {k: v.copy() for k, v in a.items()}
    got = _run(cpu, kind, a)
    want = _run(reference, kind, a)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == dtype and g.shape == w.shape and g.flags.c_contiguous
        np.testing.assert_allclose(g, w, **TOL[dtype])
    for k, v in a.items():  # inputs untouched
        np.testing.assert_array_equal(v, before[k])


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 4, 5, 17), (16, 6, 19, 97)], ids=lambda s: "x".join(map(str, s)))
def test_lstm_grad_c_last(shape, dtype):
    a = _inputs(np.random.default_rng(7), "lstm", shape, dtype)
    got = _run(cpu, "lstm", a, a["grad_c"])
    want = _run(reference, "lstm", a, a["grad_c"])
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, **TOL[dtype])


def test_cache_is_plain_dict_and_survives_input_changes():
    a = _inputs(np.random.default_rng(3), "lstm", (3, 4, 5, 6), np.float64)
    h_seq, c_last, cache = cpu.lstm_forward(a["x"], a["h0"], a["c0"], a["w"], a["b"])
    assert type(cache) is dict and all(isinstance(v, np.ndarray) for v in cache.values())
    want = cpu.lstm_backward(a["grad_h"], cache)
    a["x"][...] = 0.0
    a["w"][...] = 0.0
    h_seq[...] = 0.0
    for g, w in zip(cpu.lstm_backward(a["grad_h"], cache), want):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_one_and_two_threads_identical(kind, dtype):
    if not hasattr(core, "set_num_threads"):
        pytest.skip("no set_num_threads")
    a = _inputs(np.random.default_rng(11), kind, (16, 9, 23, 131), dtype)
    saved = core.get_num_threads()
    try:
        core.set_num_threads(1)
        one = _run(cpu, kind, a, a["grad_c"] if kind == "lstm" else None)
        core.set_num_threads(2)
        two = _run(cpu, kind, a, a["grad_c"] if kind == "lstm" else None)
    finally:
        core.set_num_threads(saved)
    for g1, g2 in zip(one, two):
        np.testing.assert_array_equal(g1, g2)


FEWER_THREADS = """
import numpy as np
from fastdl import _core, reference
from fastdl.cpu import rnn as cpu
_core.set_num_threads(2)
rng = np.random.default_rng(11)
B, T, F, H = 16, 9, 23, 131
for kind, G in (("rnn", 1), ("lstm", 4), ("gru", 3)):
    x, h0, c0 = rng.standard_normal((B, T, F)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    w, b = rng.standard_normal((F + H, G * H)) / np.sqrt(F + H), rng.standard_normal(G * H)
    grad_h = rng.standard_normal((B, T, H))
    outs = []
    for backend in (cpu, reference):
        if kind == "lstm":
            h_seq, c_last, cache = backend.lstm_forward(x, h0, c0, w, b)
            outs.append([h_seq, c_last, *backend.lstm_backward(grad_h, cache, None)])
        else:
            h_seq, cache = getattr(backend, kind + "_forward")(x, h0, w, b)
            outs.append([h_seq, *getattr(backend, kind + "_backward")(grad_h, cache)])
    for got, want in zip(*outs):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-11, err_msg=kind)
print("ok")
"""


def test_fewer_threads_than_asked():
    """A time loop asked for 2 threads that OpenMP runs on 1 (OMP_THREAD_LIMIT=1): the one thread owns
    every unit, and the weight layouts and packed panels follow the threads it got, not those asked for."""
    if not hasattr(core, "set_num_threads"):
        pytest.skip("no set_num_threads")
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    # run from this tests folder (as test_errors.py does), so that `import fastdl` finds the installed package, not the
    # source tree of the current directory
    done = subprocess.run([sys.executable, "-c", FEWER_THREADS], env=env, capture_output=True, text=True, timeout=300,
                          cwd=os.path.dirname(__file__))
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


@pytest.mark.parametrize("isa", vec_isas(core))
@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_every_simd_path(kind, isa, dtype):
    a = _inputs(np.random.default_rng(5), kind, (3, 5, 7, 37), dtype)
    if hasattr(core, "force_vec_isa"):
        core.force_vec_isa(isa)
    try:
        got = _run(cpu, kind, a, a["grad_c"] if kind == "lstm" else None)
    finally:
        if hasattr(core, "force_vec_isa"):
            core.force_vec_isa("auto")
    want = _run(reference, kind, a, a["grad_c"] if kind == "lstm" else None)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, **TOL[dtype])


@pytest.mark.parametrize("kernel", core.gemm_kernels())
@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("shape", [(16, 4, 19, 97), (197, 2, 200, 40), (16, 3, 5, 96)],
                         ids=lambda s: "x".join(map(str, s)))
def test_every_gemm_kernel(kind, kernel, shape, dtype):
    """The per-step GEMMs run on weights packed once per call for the active GEMM kernel: every kernel,
    with hidden sizes that leave partial column panels, 2 threads (16x4x19x97), and more rows than one
    row block and more depth than one depth block (197x2x200x40: B > MC, F + H and 4H > KC). With 16x3x5x96
    each of the two threads holds 48 units of the recurrent weights: in float32 both fill one and a half
    32-wide panels, so the per-thread panel buffer needs a whole widest panel of slack per thread (the
    sanitizer lane sees an overflow otherwise)."""
    a = _inputs(np.random.default_rng(3), kind, shape, dtype)
    core.force_gemm_kernel(kernel)
    try:
        got = _run(cpu, kind, a, a["grad_c"] if kind == "lstm" else None)
    finally:
        core.force_gemm_kernel("auto")
    want = _run(reference, kind, a, a["grad_c"] if kind == "lstm" else None)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, **TOL[dtype])


def test_shape_and_dtype_errors():
    f = np.float32
    x, h0, c0 = np.zeros((2, 3, 4), f), np.zeros((2, 5), f), np.zeros((2, 5), f)
    w, b = np.zeros((9, 20), f), np.zeros(20, f)
    with pytest.raises(ValueError, match="w must have shape"):
        core.lstm_forward(x, h0, c0, np.zeros((9, 15), f), b)
    with pytest.raises(ValueError, match="b must have shape"):
        core.lstm_forward(x, h0, c0, w, np.zeros(19, f))
    with pytest.raises(ValueError, match="c0"):
        core.lstm_forward(x, h0, np.zeros((3, 5), f), w, b)
    with pytest.raises(ValueError, match="x must be"):
        core.gru_forward(np.zeros((2, 3), f), h0, np.zeros((9, 15), f), np.zeros(15, f))
    with pytest.raises(ValueError, match="must be >= 1"):
        core.rnn_forward(np.zeros((2, 0, 4), f), h0, np.zeros((9, 5), f), np.zeros(5, f))
    with pytest.raises(TypeError):  # mixed dtypes: no overload matches, nothing is converted
        core.lstm_forward(x.astype(np.float64), h0, c0, w, b)
    h_seq, c_last, saved = core.lstm_forward(x, h0, c0, w, b)
    with pytest.raises(ValueError, match="saved"):
        core.lstm_backward(np.zeros((2, 3, 5), f), None, {"xh": saved["xh"]}, x, h0, c0, w)
    with pytest.raises(ValueError, match="grad_h_seq"):
        core.lstm_backward(np.zeros((2, 4, 5), f), None, saved, x, h0, c0, w)
    bad = dict(saved, gates=saved["gates"].astype(np.float64))
    with pytest.raises(ValueError, match="dtype"):
        core.lstm_backward(np.zeros((2, 3, 5), f), None, bad, x, h0, c0, w)
