"""2-D convolution (cross-correlation, no flip) as implicit-im2col GEMMs, and its exact gradients.

x is (B, C_in, H, W), w is the book's (C_in, C_out, K, K), y is (B, C_out, H_out, W_out); CKK = C_in*K*K,
HW = H_out*W_out. cols[b] (CKK, HW) = im2col(x[b]) is never stored: the GEMM's B-tile loader gathers it
from x (matmul's ``gather``, one table entry per (c, p, q) row), so no pass writes or re-reads it.

  forward   y[b] (C_out, HW)     = wT (C_out, CKK) @ cols[b]       one batched GEMM (grid z = image),
                                                                  written straight into y (NCHW)
  backward  part[b] (C_out, CKK) = grad_y[b] @ cols[b]^T           batched NT GEMM, one partial per image
            grad_w[c, o, p, q]   = sum_b part[b, o, c*KK + p*K + q]  (reduce + layout in one kernel)
   stride 1 grad_x[b] (C_in, H*W) = w (C_in, C_out*KK) @ rot(cols)(grad_y[b])   the convolution of
                                  grad_y with the kernel rotated half a turn, padding K-1-pad (implicit)
   stride>1 dcols[b] (CKK, HW)    = wT^T @ grad_y[b] (batched TN GEMM), then grad_x = col2im(dcols), a
                                  gather: one thread per input pixel, no atomics, deterministic
wT (C_out, C_in*K*K) is the weight with its first two axes swapped (a tiny kernel).
"""

import functools

import numpy as np

from fastdl.contract.conv_geometry import conv_output_size, conv_padding
from fastdl.cuda._compat import cuda, int64 as I64, uint32 as U32, uint64 as U
from fastdl.cuda._device import Io, empty, flat, grid_1d, launch, threads_1d, workspace, zeros
from fastdl.cuda.activations import activation_backward_dev, activation_dev
from fastdl.cuda.dropout import dropout_backward_dev
from fastdl.cuda.matmul import gemm

COLS_LIMIT = 1 << 26  # elements of per-image scratch (partials, dcols) per chunk of images
MAX_GRID_Z = 65535    # images per launch: the batch is the grid's z axis


@functools.lru_cache(maxsize=None)
def _col2im_kernel(dtype):
    zero = np.dtype(dtype).type(0)

    def kernel(dcols, gx, gx_off, n, C, H, W, K, stride, pad, Ho, Wo):
        # dcols flat (Bc, C*K*K, Ho*Wo); gx flat (B, C, H, W) from gx_off; n = Bc*C*H*W
        e = cuda.grid(1)
        step = cuda.gridsize(1)
        KK = K * K
        HW = Ho * Wo
        W32, H32, HW32, s32 = U32(W), U32(H), U32(H * W), U32(stride)
        while e < n:
            e32 = U32(e)
            xx = I64(e32 % W32)
            yy = I64((e32 // W32) % H32)
            bc = I64(e32 // HW32)        # b * C + c
            s = zero
            for p in range(K):
                t = yy + pad - p          # = i * stride for the output row i that reads (yy, xx)
                if t >= 0:
                    i = I64(U32(t) // s32)
                    if i * stride == t and i < Ho:
                        for q in range(K):
                            u = xx + pad - q
                            if u >= 0:
                                jj = I64(U32(u) // s32)
                                if jj * stride == u and jj < Wo:
                                    s += dcols[U((bc * KK + p * K + q) * HW + i * Wo + jj)]
            gx[U(gx_off + e)] = s
            e += step
    return cuda.jit(kernel)


@functools.lru_cache(maxsize=None)
def _swap01_kernel(dtype):
    def kernel(a, out, A0, A1, A2):
        # a flat (A0, A1, A2) -> out flat (A1, A0, A2)
        e = cuda.grid(1)
        step = cuda.gridsize(1)
        n = A0 * A1 * A2
        while e < n:
            k = e % A2
            i1 = (e // A2) % A1
            i0 = e // (A1 * A2)
            out[U((i1 * A0 + i0) * A2 + k)] = a[U(e)]
            e += step
    return cuda.jit(kernel)


@functools.lru_cache(maxsize=None)
def _gradw_kernel(dtype):
    zero = np.dtype(dtype).type(0)
    UN = 8                                  # independent partial loads in flight per thread

    def kernel(part, gw, nz, C_in, C_out, KK, accumulate):
        # part flat (nz, C_out, C_in*KK); gw flat (C_in, C_out, KK): gw[c,o,pq] (+)= sum_z part[z,o,c*KK+pq]
        acc = cuda.local.array(UN, dtype)
        e = cuda.grid(1)
        step = cuda.gridsize(1)
        n = C_in * C_out * KK
        while e < n:
            pq = e % KK
            o = (e // KK) % C_out
            c = e // (C_out * KK)
            src = o * C_in * KK + c * KK + pq
            for k in range(UN):
                acc[k] = zero
            z = 0
            while z + UN <= nz:
                for k in range(UN):
                    acc[k] += part[U((z + k) * n + src)]
                z += UN
            while z < nz:
                acc[0] += part[U(z * n + src)]
                z += 1
            s = gw[U(e)] if accumulate else zero
            for k in range(UN):
                s += acc[k]
            gw[U(e)] = s
            e += step
    return cuda.jit(kernel)


def _launch_1d(kernel, n, *args, threads=None):
    t = threads or threads_1d()
    launch(kernel, grid_1d(n, t), t, *args)


def _geometry(x_shape, w_shape, stride, padding):
    B, C_in, H, W = x_shape
    _, C_out, K, _ = w_shape
    pad, after = conv_padding(K, padding)
    Ho = conv_output_size(H, K, stride, pad, after)
    Wo = conv_output_size(W, K, stride, pad, after)
    return B, C_in, H, W, C_out, K, pad, Ho, Wo


def _weight_t(w):
    # w is (C_in, C_out, K, K) -> wT flat (C_out, C_in*K*K)
    C_in, C_out, K, _ = w.shape
    wt = workspace("conv_wT", w.size, w.dtype)
    _launch_1d(_swap01_kernel(w.dtype), w.size, flat(w), wt, C_in, C_out, K * K)
    return wt


def _chunk(B, per_image):
    """Images per launch: a scratch of per_image elements each stays under COLS_LIMIT, and the batch
    fits the grid's z extent."""
    return max(1, min(B, MAX_GRID_Z, COLS_LIMIT // max(1, per_image)))


_tables = {}


def _too_big(C, K, H, W, pixels):
    raise ValueError(f"conv2d on cuda: an image is (C, H, W) = ({C}, {H}, {W}) with kernel size {K} and "
                     f"{pixels} output pixels; the implicit im2col needs every tap offset c*H*W + p*W + q "
                     f"< 2**31, K < 65536 and fewer than 2**32 output pixels")


def _tap_table(C, K, H, W, flip, pixels):
    """The implicit-im2col table of a (C, H, W) image (matmul's ``gather``) for an output grid of
    ``pixels`` pixels, on the device: row r = c*K*K + p*K + q of cols is the tap
    offset << 32 | p' << 16 | q' with offset c*H*W + p'*W + q', where (p', q') is (p, q), or
    (K-1-p, K-1-q) with ``flip`` (the kernel rotated half a turn, for the input gradient)."""
    if K >= 1 << 16 or pixels >= 1 << 32:
        _too_big(C, K, H, W, pixels)
    key = (C, K, H, W, bool(flip))
    tab = _tables.get(key)
    if tab is None:
        c, p, q = np.meshgrid(np.arange(C, dtype=np.int64), np.arange(K, dtype=np.int64),
                              np.arange(K, dtype=np.int64), indexing="ij")
        if flip:
            p, q = K - 1 - p, K - 1 - q
        offsets = c * H * W + p * W + q
        if offsets.max() >= 1 << 31:
            _too_big(C, K, H, W, pixels)
        host = (offsets << 32 | p << 16 | q).reshape(-1)
        tab = _tables[key] = cuda.to_device(host)
    return tab


def conv2d_dev(x, w, stride=1, padding="same"):
    B, C_in, H, W, C_out, K, pad, Ho, Wo = _geometry(x.shape, w.shape, stride, padding)
    dt = x.dtype
    y = empty((B, C_out, Ho, Wo), dt)
    CKK, HW = C_in * K * K, Ho * Wo
    if y.size == 0:
        return y
    if CKK == 0:
        return _fill_zero(y)
    taps = (_tap_table(C_in, K, H, W, False, HW), H, W, Wo, stride, pad)
    wt = _weight_t(w)
    xf, yf = flat(x), flat(y)
    bc = _chunk(B, 0)
    for b0 in range(0, B, bc):
        nb = min(bc, B - b0)
        # y[b] (C_out, HW) = wT (C_out, CKK) @ im2col(x[b]) (CKK, HW), the columns gathered on the fly
        gemm(wt, xf, yf, C_out, HW, CKK, CKK, 0, HW, b_off=b0 * C_in * H * W, c_off=b0 * C_out * HW,
             batch=nb, sb_z=C_in * H * W, sc_z=C_out * HW, gather=taps)
    return y


def _fill_zero(a):
    return zeros(a.shape, a.dtype)


def conv2d_backward_dev(x, w, grad_y, stride=1, padding="same", need_grad_x=True):
    B, C_in, H, W, C_out, K, pad, Ho, Wo = _geometry(x.shape, w.shape, stride, padding)
    dt = x.dtype
    gx = empty(x.shape if need_grad_x else (0,), dt)
    gw = empty(w.shape, dt)
    CKK, HW, KK = C_in * K * K, Ho * Wo, K * K
    if B == 0 or HW == 0 or C_out == 0 or CKK == 0:
        if gx.size:
            gx = _fill_zero(gx)
        if gw.size:
            gw = _fill_zero(gw)
        return (gx if need_grad_x else None), gw
    xf, gyf, gxf, gwf = flat(x), flat(grad_y), flat(gx), flat(gw)
    taps = (_tap_table(C_in, K, H, W, False, HW), H, W, Wo, stride, pad)
    # stride 1: grad_x is the convolution of grad_y with the kernel rotated half a turn, its rows
    # and columns swapped, and padding K-1-pad (an implicit GEMM too). Otherwise: dcols, then col2im.
    as_conv = stride == 1
    per_image = C_out * CKK + (0 if as_conv or not need_grad_x else CKK * HW)
    bc = _chunk(B, per_image)
    wt = None if as_conv or not need_grad_x else _weight_t(w)
    back_taps = None
    if as_conv and need_grad_x:
        back_taps = (_tap_table(C_out, K, Ho, Wo, True, H * W), Ho, Wo, W, 1, K - 1 - pad)
    for b0 in range(0, B, bc):
        nb = min(bc, B - b0)
        part = workspace("conv_part", nb * C_out * CKK, dt)
        # part[b] (C_out, CKK) = grad_y[b] (C_out, HW) @ im2col(x[b])^T (HW, CKK)
        gemm(gyf, xf, part, C_out, CKK, HW, HW, 0, CKK, trans_b=True, a_off=b0 * C_out * HW,
             b_off=b0 * C_in * H * W, batch=nb, sa_z=C_out * HW, sb_z=C_in * H * W, sc_z=C_out * CKK,
             gather=taps)
        _launch_1d(_gradw_kernel(dt), gw.size, part, gwf, nb, C_in, C_out, KK, b0 > 0,
                   threads=min(threads_1d(), 64))   # few outputs: small blocks spread over the SMs
        if not need_grad_x:
            continue
        if as_conv:
            # grad_x[b] (C_in, H*W) = w (C_in, C_out*KK) @ im2col_rotated(grad_y[b]) (C_out*KK, H*W)
            gemm(flat(w), gyf, gxf, C_in, H * W, C_out * KK, C_out * KK, 0, H * W, b_off=b0 * C_out * HW,
                 c_off=b0 * C_in * H * W, batch=nb, sb_z=C_out * HW, sc_z=C_in * H * W, gather=back_taps)
            continue
        # dcols[b] (CKK, HW) = wT^T (CKK, C_out) @ grad_y[b] (C_out, HW), then a col2im gather
        cols = workspace("conv_cols", nb * CKK * HW, dt)
        gemm(wt, gyf, cols, CKK, HW, C_out, CKK, HW, HW, trans_a=True, b_off=b0 * C_out * HW,
             batch=nb, sb_z=C_out * HW, sc_z=CKK * HW)
        n = nb * C_in * H * W
        _launch_1d(_col2im_kernel(dt), n, cols, gxf, b0 * C_in * H * W, n, C_in, H, W, K, stride, pad, Ho, Wo)
    return (gx if need_grad_x else None), gw


def conv2d(x, w, stride=1, padding="same", activation="linear"):
    """y (B, C_out, H_out, W_out) = act(cross-correlation of x (B, C_in, H, W) with w (C_in, C_out, K, K)); the
    activation is a second launch over y (the GEMM epilogue does not apply it yet)."""
    io = Io(x, w)
    y = conv2d_dev(*io.arrays, stride=stride, padding=padding)
    return io.out(y if activation == "linear" else activation_dev(y, activation))


def conv2d_backward(x, w, grad_y, stride=1, padding="same", need_grad_x=True, activation="linear", y=None,
                    mask=None):
    """(grad_x like x or None when need_grad_x is false, grad_w like w), the exact gradients of conv2d. With an
    activation (y its output) or a dropout mask, grad_y is first taken through them (one more launch or two)."""
    io = Io(x, w, grad_y, y, mask)
    xd, wd, gd, yd, md = io.arrays
    if activation != "linear" or md is not None:
        gd = activation_backward_dev(gd if yd is None else yd, gd, activation)  # linear reads no y
        if md is not None:
            gd = dropout_backward_dev(gd, md)
    grads = conv2d_backward_dev(xd, wd, gd, stride=stride, padding=padding, need_grad_x=need_grad_x)
    return tuple(None if g is None else io.out(g) for g in grads)
