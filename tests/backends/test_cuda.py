"""The Numba CUDA backend against the NumPy reference, forward and backward, both dtypes.

Runs on a real GPU or under the CUDA simulator (NUMBA_ENABLE_CUDASIM=1, set before numba is
imported); shapes are tiny and include 1, primes and sizes that are not multiples of the tiles.
"""

import importlib
import subprocess
import sys

import numpy as np
import pytest

import fastdl
from fastdl import kernels
from fastdl.cuda import _compat
from helpers import check_op, check_sequence_op, check_without_grad_x, random, to_host

pytestmark = pytest.mark.skipif(
    not _compat.available(),
    reason="fastdl cuda backend unavailable: " + str(_compat.reason()) + " (tests need a GPU or NUMBA_ENABLE_CUDASIM=1)")

ACTS = ["linear", "sigmoid", "tanh", "relu"]


@pytest.mark.parametrize("shape", [(1, 1, 1), (13, 7, 5), (3, 17, 11)])
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True), (True, True)])
def test_matmul(rng, dtype, shape, trans_a, trans_b):
    M, N, K = shape
    a = random(rng, (K, M) if trans_a else (M, K), dtype)
    b = random(rng, (N, K) if trans_b else (K, N), dtype)
    check_op("matmul", (a, b), "cuda", {"trans_a": trans_a, "trans_b": trans_b}, dtype=dtype)


def test_matmul_production_tiles(rng, dtype):
    """The GPU tile configurations (128x128 8x8 micro-tiles, skinny ones) on one edge tile each."""
    from fastdl.cuda._device import as_device, flat
    from fastdl.cuda.matmul import CONFIGS, gemm
    a, b = random(rng, (5, 19), dtype), random(rng, (19, 7), dtype)
    for cfg, _, _ in CONFIGS:
        c = as_device(np.zeros((5, 7), dtype))
        gemm(flat(as_device(a)), flat(as_device(b)), flat(c), 5, 7, 19, 19, 7, 7, cfg=cfg)
        np.testing.assert_allclose(c.copy_to_host(), a @ b, rtol=1e-5, atol=1e-5, err_msg=str(cfg))


@pytest.mark.parametrize("trans", [False, True])
def test_matmul_production_tiles_interior(rng, trans):
    """Each GPU tile configuration on a product with one whole tile (loaded without bounds checks), edge
    tiles along M and N, and a K tail, with both operands transposed or neither."""
    from fastdl.cuda._device import as_device, flat
    from fastdl.cuda.matmul import CONFIGS, gemm
    for cfg, _, _ in CONFIGS:
        BM, BN, BK = cfg[:3]
        M, N, K = BM + 3, BN + 1, 2 * BK + 3
        a = random(rng, (K, M) if trans else (M, K), np.float32)
        b = random(rng, (N, K) if trans else (K, N), np.float32)
        c = as_device(np.zeros((M, N), np.float32))
        gemm(flat(as_device(a)), flat(as_device(b)), flat(c), M, N, K, a.shape[1], b.shape[1], N, trans, trans,
             cfg=cfg)
        expected = (a.T if trans else a) @ (b.T if trans else b)
        np.testing.assert_allclose(c.copy_to_host(), expected, rtol=1e-5, atol=1e-5, err_msg=str(cfg))


def _im2col(x, K, stride, pad):
    """cols (C*K*K, Ho*Wo) of one image x (C, H, W), the matrix the implicit-im2col GEMM never stores."""
    C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    Ho, Wo = (H + 2 * pad - K) // stride + 1, (W + 2 * pad - K) // stride + 1
    cols = np.empty((C, K, K, Ho, Wo), x.dtype)
    for p in range(K):
        for q in range(K):
            cols[:, p, q] = xp[:, p:p + stride * Ho:stride, q:q + stride * Wo:stride]
    return cols.reshape(C * K * K, Ho * Wo), Wo


@pytest.mark.parametrize("trans_b,stride", [(False, 1), (False, 2), (True, 2)])
def test_gather_gemm_production_tiles(rng, trans_b, stride):
    """Each GPU tile configuration with the implicit-im2col B operand, on several tiles along M and N with
    edge tiles: cols (K = C*K*K, N = pixels) as the forward uses it, or cols^T (K = pixels, with a K
    tail) as grad_w does."""
    from fastdl.cuda._device import as_device, flat
    from fastdl.cuda.conv import _tap_table
    from fastdl.cuda.matmul import CONFIGS, gemm
    K, pad = 3, 1
    if trans_b:
        C, H, W = 8, 9, 8            # cols^T is (72 rows, 20 pixels): several tiles along N, a K tail
    else:
        C, H, W = (2, 13, 12) if stride == 1 else (2, 25, 22)   # 156 / 143 pixels: two tiles of 128
    x = random(rng, (C, H, W), np.float32)
    cols, Wo = _im2col(x, K, stride, pad)
    R, P = cols.shape
    M = 37
    N, depth = (R, P) if trans_b else (P, R)
    a = random(rng, (M, depth), np.float32)
    taps = (_tap_table(C, K, H, W, False, P), H, W, Wo, stride, pad)
    for cfg, _, _ in CONFIGS:
        c = as_device(np.zeros((M, N), np.float32))
        gemm(flat(as_device(a)), flat(as_device(x)), flat(c), M, N, depth, depth, 0, N, trans_b=trans_b,
             cfg=cfg, gather=taps)
        expected = a @ (cols.T if trans_b else cols)
        np.testing.assert_allclose(c.copy_to_host(), expected, rtol=1e-5, atol=1e-5, err_msg=str(cfg))


@pytest.mark.parametrize("act", ACTS)
def test_activation(rng, dtype, act):
    x = random(rng, (3, 7), dtype)
    y, _ = check_op("activation", (x, act), "cuda", dtype=dtype)
    check_op("activation_backward", (np.asarray(y), random(rng, (3, 7), dtype), act), "cuda", dtype=dtype)
    mask = rng.random((3, 7)) < 0.6
    check_op("activation_backward", (np.asarray(y), random(rng, (3, 7), dtype), act), "cuda", {"mask": mask},
             dtype=dtype)


@pytest.mark.parametrize("act", ACTS)
def test_conv2d_with_activation(rng, dtype, act):
    x, w = random(rng, (2, 2, 5, 4), dtype), random(rng, (2, 3, 3, 3), dtype)
    check_op("conv2d", (x, w), "cuda", {"activation": act}, dtype=dtype)


def test_conv2d_dropout_draws_the_reference_mask(rng, dtype):
    from fastdl.cuda._device import as_device

    x, w = random(rng, (3, 1, 9, 8), dtype), random(rng, (1, 4, 5, 5), dtype)
    with fastdl.use_backend("numpy"):
        y_ref, mask_ref = kernels.conv2d_dropout(x, w, 0.7, 2**63 + 9, activation="tanh", first=40)
    with fastdl.use_backend("cuda"):
        host = kernels.conv2d_dropout(x, w, 0.7, 2**63 + 9, activation="tanh", first=40)
        device = kernels.conv2d_dropout(as_device(x), as_device(w), 0.7, 2**63 + 9, activation="tanh", first=40)
    for y, mask in (host, device):
        np.testing.assert_array_equal(to_host(mask), mask_ref)
        np.testing.assert_allclose(to_host(y), y_ref, rtol=1e-5, atol=1e-5)
    grad = random(rng, y_ref.shape, dtype)
    with fastdl.use_backend("numpy"):
        expected = kernels.conv2d_backward(x, w, grad, activation="tanh", y=y_ref, mask=mask_ref)
    with fastdl.use_backend("cuda"):
        got = kernels.conv2d_backward(x, w, grad, activation="tanh", y=y_ref, mask=mask_ref)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(to_host(a), b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("bias", [True, False])
def test_linear(rng, dtype, act, bias):
    x, w = random(rng, (5, 7), dtype), random(rng, (7, 3), dtype)
    b = random(rng, (3,), dtype) if bias else None
    y, _ = check_op("linear", (x, w, b, act), "cuda", dtype=dtype)
    check_op("linear_backward", (x, w, np.asarray(y), random(rng, (5, 3), dtype), act), "cuda", dtype=dtype)
    check_without_grad_x("linear_backward", (x, w, np.asarray(y), random(rng, (5, 3), dtype), act), "cuda",
                         dtype=dtype)


@pytest.mark.parametrize("geom", [
    # (B, C_in, C_out, H, W, K, stride, padding)
    (2, 3, 2, 5, 7, 3, 1, "same"),     # non-square
    (1, 2, 3, 6, 5, 2, 2, "same"),     # even K, stride 2
    (2, 1, 2, 7, 6, 3, 2, "valid"),
    (1, 2, 1, 4, 4, 3, 1, 1),          # int padding
    (1, 1, 1, 1, 1, 1, 1, "same"),     # all ones
    (9, 1, 2, 3, 2, 3, 1, "same"),     # batch > 8: the unrolled grad_w reduction over images
    (1, 2, 2, 5, 4, 2, 1, "same"),     # even K at stride 1: the rotated kernel's uneven padding
    (2, 1, 9, 5, 6, 3, 1, "valid"),    # C_out > the simulator's tile: several M tiles; valid at stride 1
    (1, 3, 2, 4, 3, 4, 1, 2),          # K > H: windows wider than the image
])
def test_conv2d(rng, dtype, geom):
    B, Ci, Co, H, W, K, s, p = geom
    x, w = random(rng, (B, Ci, H, W), dtype), random(rng, (Ci, Co, K, K), dtype)
    y, _ = check_op("conv2d", (x, w), "cuda", {"stride": s, "padding": p}, dtype=dtype)
    gy = random(rng, np.asarray(y).shape, dtype)
    check_op("conv2d_backward", (x, w, gy), "cuda", {"stride": s, "padding": p}, dtype=dtype)
    check_without_grad_x("conv2d_backward", (x, w, gy), "cuda", {"stride": s, "padding": p}, dtype=dtype)


@pytest.mark.parametrize("name", ["softmax_cross_entropy", "cross_entropy"])
@pytest.mark.parametrize("shape", [(1, 1), (3, 37), (2, 131)])
@pytest.mark.parametrize("labels", ["int", "onehot"])
def test_softmax_cross_entropy(rng, dtype, name, shape, labels):
    B, C = shape
    logits = (random(rng, shape, dtype) * 3).astype(dtype)
    lab = rng.integers(0, C, B)
    target = lab if labels == "int" else np.eye(C, dtype=dtype)[lab]
    check_op(name, (logits, target), "cuda", dtype=dtype)
    if shape == (3, 37):
        check_op(name, (logits, target), "cuda", {"reduction": "sum"}, dtype=dtype)


def test_softmax_cross_entropy_when_the_row_does_not_fit_shared_memory(rng, monkeypatch):
    """A row that would fit in shared memory still gets the right answer through the L2 kernel when the
    launch allows less dynamic shared memory than it needs."""
    import importlib
    softmax_ce = importlib.import_module("fastdl.cuda.softmax_cross_entropy")
    assert softmax_ce._config(131, np.dtype(np.float32), 1 << 16)[3]      # would keep the row on chip
    assert not softmax_ce._config(131, np.dtype(np.float32), 1024)[3]
    monkeypatch.setattr(softmax_ce, "max_shared_per_block", lambda: 1024)
    logits = (random(rng, (2, 131), np.float32) * 3).astype(np.float32)
    check_op("softmax_cross_entropy", (logits, rng.integers(0, 131, 2)), "cuda", dtype=np.float32)


@pytest.mark.parametrize("family", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("sizes", [(2, 3, 3, 5), (1, 1, 2, 1)])
def test_sequences(rng, dtype, family, sizes):
    B, T, F, H = sizes
    G = {"rnn": 1, "lstm": 4, "gru": 3}[family] * H
    x, h0 = random(rng, (B, T, F), dtype), random(rng, (B, H), dtype)
    w, b = (random(rng, (F + H, G), dtype) * 0.5).astype(dtype), random(rng, (G,), dtype)
    grads = [random(rng, (B, T, H), dtype)]
    if family == "lstm":
        args = (x, h0, random(rng, (B, H), dtype), w, b)
        grads.append(random(rng, (B, H), dtype))
    else:
        args = (x, h0, w, b)
    check_sequence_op(family, args, grads, "cuda", dtype=dtype)


def test_lstm_without_grad_c_last(rng):
    x, h0, c0 = random(rng, (2, 2, 3), np.float64), random(rng, (2, 4), np.float64), random(rng, (2, 4), np.float64)
    w, b = random(rng, (7, 16), np.float64) * 0.5, random(rng, (16,), np.float64)
    check_sequence_op("lstm", (x, h0, c0, w, b), [random(rng, (2, 2, 4), np.float64)], "cuda")


def test_device_arrays_in_device_arrays_out(rng, dtype):
    """Device inputs give Numba device outputs (no host round trip); NumPy inputs give NumPy."""
    import fastdl.cuda as fk
    from fastdl import reference
    cuda = _compat.cuda
    a, b = random(rng, (6, 5), dtype), random(rng, (5, 4), dtype)
    c = fk.matmul(cuda.to_device(a), cuda.to_device(b))
    assert not isinstance(c, np.ndarray) and hasattr(c, "copy_to_host")
    assert c.dtype == dtype and c.shape == (6, 4)
    np.testing.assert_allclose(c.copy_to_host(), a @ b, rtol=1e-5, atol=1e-6)
    assert isinstance(fk.matmul(a, b), np.ndarray)
    logits, lab = random(rng, (3, 7), dtype), rng.integers(0, 7, 3)
    loss, grad = fk.softmax_cross_entropy(cuda.to_device(logits), cuda.to_device(lab))
    ref_loss, ref_grad = reference.softmax_cross_entropy(logits, lab)
    assert isinstance(loss, float) and hasattr(grad, "copy_to_host")
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
    np.testing.assert_allclose(grad.copy_to_host(), ref_grad, rtol=1e-5, atol=1e-7)
    h, cache = fk.rnn_forward(*(cuda.to_device(v) for v in (random(rng, (2, 3, 2), dtype),
                                                             random(rng, (2, 3), dtype),
                                                             random(rng, (5, 3), dtype),
                                                             random(rng, (3,), dtype))))
    grads = fk.rnn_backward(cuda.to_device(random(rng, (2, 3, 3), dtype)), cache)
    assert all(hasattr(g, "copy_to_host") for g in (h,) + grads)


def test_clear_error_without_numba_or_gpu(monkeypatch):
    import fastdl.cuda as fk
    monkeypatch.setattr(_compat, "HAVE_NUMBA", False)
    with pytest.raises(RuntimeError, match=r"fastdl cuda backend: .*pip install \"fastdl-kernels\[cuda\]\""):
        fk.matmul(np.ones((2, 2)), np.ones((2, 2)))
    monkeypatch.setattr(_compat, "HAVE_NUMBA", True)
    monkeypatch.setattr(_compat, "simulator", lambda: False)
    monkeypatch.setattr(_compat, "_gpu_visible", lambda: False)
    with pytest.raises(RuntimeError, match="fastdl cuda backend: no CUDA GPU.*NUMBA_ENABLE_CUDASIM"):
        fk.conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 3, 3)))


def test_import_without_numba():
    code = ("import sys; sys.modules['numba'] = None\n"
            "import fastdl.cuda as c\n"
            "from fastdl.contract import KERNEL_NAMES\n"
            "assert not c.available() and not c.real_gpu() and set(c.KERNELS) == set(KERNEL_NAMES)\n"
            "try:\n    c.matmul(None, None)\nexcept RuntimeError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "fastdl cuda backend" in out.stdout and "pip install" in out.stdout


@pytest.mark.parametrize("trans_b", [False, True])
def test_gemm_split_k(rng, dtype, trans_b):
    """The split-K path (used on a GPU for lone GEMMs with few output tiles) with its fused epilogue."""
    from fastdl.cuda._device import as_device, flat
    from fastdl.cuda.matmul import SIM_CONFIG, _gemm_split, pick_config
    M, N, K = 3, 5, 23
    a, b = random(rng, (M, K), dtype), random(rng, (N, K) if trans_b else (K, N), dtype)
    bias, d = random(rng, (N,), dtype), random(rng, (M, N), dtype)
    c = as_device(np.zeros((M, N), dtype))
    cfg = pick_config(M, N) if _compat.simulator() else SIM_CONFIG
    _gemm_split(flat(as_device(a)), flat(as_device(b)), flat(c), M, N, K, K, K if trans_b else N, N, False,
                trans_b, as_device(bias), flat(as_device(d)), N, 2, 0, 0, 0, 0, cfg, 3)
    expected = np.tanh(a @ (b.T if trans_b else b) + bias + d)
    np.testing.assert_allclose(c.copy_to_host(), expected, rtol=1e-5, atol=1e-6)


def test_lstm_split_k_partials(rng, monkeypatch):
    """The LSTM steps with the recurrent GEMM split over K (as on a GPU): the cell kernels sum the slices."""
    import importlib
    matmul = importlib.import_module("fastdl.cuda.matmul")     # the module, not the kernel of that name
    monkeypatch.setattr(matmul, "_split_count", lambda M, N, K, cfg: 2)
    x, h0, c0 = random(rng, (2, 3, 3), np.float64), random(rng, (2, 5), np.float64), random(rng, (2, 5), np.float64)
    w, b = random(rng, (8, 20), np.float64) * 0.5, random(rng, (20,), np.float64)
    check_sequence_op("lstm", (x, h0, c0, w, b), [random(rng, (2, 3, 5), np.float64),
                                                   random(rng, (2, 5), np.float64)], "cuda")


@pytest.mark.parametrize("C,K,H,W,flip,pixels", [
    (1 << 16, 3, 256, 256, False, 1),     # C*H*W = 2**32
    (2047, 5, 1, 1 << 20, False, 1),      # C*H*W < 2**31, but the last channel's tap p = 2 (K > H) is not
    (2047, 5, 1, 1 << 20, True, 1),       # the same with the rotated kernel
    (1, 3, 4, 4, False, 1 << 32),         # more output pixels than a 32-bit index
])
def test_conv2d_images_too_big_for_the_tap_table(C, K, H, W, flip, pixels):
    """A geometry whose tap offsets or pixel indices overflow the table is refused with the shapes,
    before any launch."""
    from fastdl.cuda.conv import _tap_table
    with pytest.raises(ValueError, match=rf"\(C, H, W\) = \({C}, {H}, {W}\) with kernel size {K}.*< 2\*\*31"):
        _tap_table(C, K, H, W, flip, pixels)


def test_conv2d_largest_tap_offset_that_fits():
    """The packed table keeps the largest offset it allows, 2**31 - 1, intact (decoded as the kernel does)."""
    from fastdl.cuda.conv import _tap_table
    C, K, H, W = 2, 1, 1, (1 << 31) - 1          # channel 1 starts at offset 2**31 - 1
    tab = _tap_table(C, K, H, W, False, 1).copy_to_host()
    np.testing.assert_array_equal(tab >> 32, [0, (1 << 31) - 1])
    np.testing.assert_array_equal(tab & 0xFFFFFFFF, [0, 0])      # p = q = 0


@pytest.mark.parametrize("K,stride,padding", [(3, 1, "same"), (3, 2, "same"), (2, 1, "same"), (3, 1, "valid")])
def test_conv2d_one_image_split_k(rng, monkeypatch, K, stride, padding):
    """A lone image (batch 1) on a GPU splits its implicit-im2col GEMMs over K when they have few output
    tiles: the gathered columns are read slice by slice, then summed."""
    matmul = importlib.import_module("fastdl.cuda.matmul")     # the module, not the kernel of that name
    monkeypatch.setattr(matmul, "_split_count", lambda M, N, K, cfg: 3)
    x, w = random(rng, (1, 2, 5, 4), np.float64), random(rng, (2, 3, K, K), np.float64)
    kw = {"stride": stride, "padding": padding}
    y, _ = check_op("conv2d", (x, w), "cuda", kw)
    check_op("conv2d_backward", (x, w, random(rng, np.asarray(y).shape, np.float64)), "cuda", kw)


@pytest.mark.parametrize("stride", [1, 2])
def test_conv2d_in_chunks_of_images(rng, monkeypatch, stride):
    """Batches split into chunks (the grid's z limit, the scratch limit): later chunks' offsets, and
    grad_w accumulated over chunks."""
    conv = importlib.import_module("fastdl.cuda.conv")
    monkeypatch.setattr(conv, "MAX_GRID_Z", 2)
    monkeypatch.setattr(conv, "COLS_LIMIT", 200)   # scratch per image: 54 (stride 1), 162 (stride 2, dcols)
    x, w = random(rng, (5, 2, 4, 5), np.float64), random(rng, (2, 3, 3, 3), np.float64)
    y, _ = check_op("conv2d", (x, w), "cuda", {"stride": stride})
    check_op("conv2d_backward", (x, w, random(rng, np.asarray(y).shape, np.float64)), "cuda", {"stride": stride})


def test_device_arrays_through_the_public_kernel_api(rng):
    """fastdl.kernels takes device arrays on the cuda backend, checks them like host arrays (shape,
    dtype, contiguity, label dtype and range) and keeps the results on the device."""
    cuda = _compat.cuda
    a, b = random(rng, (6, 5), np.float32), random(rng, (5, 4), np.float32)
    with fastdl.use_backend("cuda"):
        c = kernels.matmul(cuda.to_device(a), cuda.to_device(b))
        assert hasattr(c, "copy_to_host")
        np.testing.assert_allclose(c.copy_to_host(), a @ b, rtol=1e-5, atol=1e-6)
        with pytest.raises(ValueError, match="matmul: inner dimensions differ"):
            kernels.matmul(cuda.to_device(a), cuda.to_device(a))
        with pytest.raises(TypeError, match="strides"):
            kernels.matmul(cuda.to_device(np.asfortranarray(a)), cuda.to_device(b))
        logits = cuda.to_device(random(rng, (3, 7), np.float32))
        with pytest.raises(TypeError, match="int64"):
            kernels.cross_entropy(logits, cuda.to_device(np.array([1, 2, 3], np.int32)))
        with pytest.raises(ValueError, match=r"labels must lie in \[0, 7\)"):
            kernels.cross_entropy(logits, cuda.to_device(np.array([1, 2, 7], np.int64)))
    with fastdl.use_backend("numpy"), pytest.raises(TypeError, match="device array"):
        kernels.matmul(cuda.to_device(a), b)


@pytest.mark.parametrize("shape", [(1,), (3, 61), (2, 5, 7)])
def test_dropout(rng, dtype, shape):
    """The counter-hashed mask: bit for bit the reference's, and the gradient through it."""
    x = random(rng, shape, dtype)
    outs = {}
    for backend in ("numpy", "cuda"):
        with fastdl.use_backend(backend):
            y, mask = (to_host(a) for a in kernels.dropout(x, 0.7, 2**63 + 99))
            outs[backend] = (y, mask, to_host(kernels.dropout_backward(x, mask)))
    for a, e in zip(outs["cuda"], outs["numpy"]):
        assert a.dtype == e.dtype
        np.testing.assert_array_equal(a, e)
