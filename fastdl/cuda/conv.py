"""2-D convolution (cross-correlation, no flip) as im2col + batched GEMM, and its exact gradients.

x is (B, C_in, H, W), w is the book's (C_in, C_out, K, K), y is (B, C_out, H_out, W_out); CKK = C_in*K*K.
Images are processed in chunks of Bc (the whole batch when the column buffer fits in ~256 MB):

  forward   cols (Bc, CKK, HoWo) = im2col(x)            one kernel, zero padding folded in
            y[b] (C_out, HoWo)  = wT (C_out, CKK) @ cols[b]   one batched GEMM (grid z = image),
                                                            written straight into y (NCHW)
  backward  part[b] (C_out, CKK) = grad_y[b] @ cols[b]^T    batched NT GEMM, one partial per image
            grad_w[c, o, p, q]  = sum_b part[b, o, c*KK + p*K + q]   (reduce + layout in one kernel)
            dcols[b] (CKK, HoWo) = wT^T @ grad_y[b]        batched TN GEMM (reuses the cols buffer)
            grad_x = col2im(dcols)                          a gather: one thread per input pixel,
                                                            no atomics, deterministic
wT (C_out, C_in*K*K) is the weight with its first two axes swapped (a tiny kernel).
"""

import functools

import numpy as np

from fastdl._conv_geometry import conv_output_size, conv_padding
from fastdl.cuda._compat import cuda, int64 as I64, simulator, uint32 as U32, uint64 as U
from fastdl.cuda._device import Io, empty, flat, grid_1d, launch, threads_1d, workspace, zeros
from fastdl.cuda.matmul import gemm

COLS_LIMIT = 1 << 26  # elements of the column buffer per chunk


@functools.lru_cache(maxsize=None)
def _im2col_kernel(dtype):
    zero = np.dtype(dtype).type(0)

    def kernel(x, cols, x_off, n, C, H, W, K, stride, pad, Ho, Wo):
        # x flat (B, C, H, W) from element x_off; cols flat (Bc, C*K*K, Ho*Wo); n = Bc*C*Ho*Wo.
        # One thread per (image, channel, output pixel) writes its K*K column entries: four uint32
        # divisions per K*K outputs (64-bit integer division is many times slower on a GPU).
        e = cuda.grid(1)
        step = cuda.gridsize(1)
        HW32, Wo32 = U32(Ho * Wo), U32(Wo)
        HW = Ho * Wo
        KK = K * K
        while e < n:
            e32 = U32(e)
            pix = e32 % HW32
            bc = I64(e32 // HW32)               # b * C + c
            i = I64(pix // Wo32)
            j = I64(pix % Wo32)
            xb = x_off + bc * H * W
            ob = bc * KK * HW + I64(pix)
            for p in range(K):
                yy = i * stride + p - pad
                rowok = yy >= 0 and yy < H
                for q in range(K):
                    xx = j * stride + q - pad
                    v = zero
                    if rowok and xx >= 0 and xx < W:
                        v = x[U(xb + yy * W + xx)]
                    cols[U(ob + (p * K + q) * HW)] = v
            e += step
    return cuda.jit(kernel)


@functools.lru_cache(maxsize=None)
def _col2im_kernel(dtype, unit_stride):
    zero = np.dtype(dtype).type(0)
    UNIT = bool(unit_stride)

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
                    if UNIT:
                        i = t
                    else:
                        i = I64(U32(t) // s32)
                    if i * stride == t and i < Ho:
                        for q in range(K):
                            u = xx + pad - q
                            if u >= 0:
                                if UNIT:
                                    jj = u
                                else:
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


def _im2col(xf, cols, b0, nb, C_in, H, W, K, stride, pad, Ho, Wo):
    # cols (nb, C_in*K*K, Ho*Wo) from images b0 .. b0+nb-1 of x
    n = nb * C_in * Ho * Wo
    _launch_1d(_im2col_kernel(cols.dtype), n, xf, cols, b0 * C_in * H * W, n, C_in, H, W, K, stride, pad, Ho, Wo)


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


def _chunk(B, CKK, HW):
    return max(1, min(B, COLS_LIMIT // max(1, CKK * HW)))


def conv2d_dev(x, w, stride=1, padding="same"):
    B, C_in, H, W, C_out, K, pad, Ho, Wo = _geometry(x.shape, w.shape, stride, padding)
    dt = x.dtype
    y = empty((B, C_out, Ho, Wo), dt)
    CKK, HW = C_in * K * K, Ho * Wo
    if y.size == 0:
        return y
    if CKK == 0:
        return _fill_zero(y)
    wt = _weight_t(w)
    xf, yf = flat(x), flat(y)
    bc = _chunk(B, CKK, HW)
    for b0 in range(0, B, bc):
        nb = min(bc, B - b0)
        cols = workspace("conv_cols", nb * CKK * HW, dt)
        _im2col(xf, cols, b0, nb, C_in, H, W, K, stride, pad, Ho, Wo)
        gemm(wt, cols, yf, C_out, HW, CKK, CKK, HW, HW, c_off=b0 * C_out * HW,
             batch=nb, sb_z=CKK * HW, sc_z=C_out * HW)
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
    wt = _weight_t(w)
    xf, gyf, gxf, gwf = flat(x), flat(grad_y), flat(gx), flat(gw)
    bc = _chunk(B, CKK, HW)
    for b0 in range(0, B, bc):
        nb = min(bc, B - b0)
        cols = workspace("conv_cols", nb * CKK * HW, dt)
        part = workspace("conv_part", nb * C_out * CKK, dt)
        _im2col(xf, cols, b0, nb, C_in, H, W, K, stride, pad, Ho, Wo)
        # part[b] (C_out, CKK) = grad_y[b] (C_out, HW) @ cols[b]^T (HW, CKK)
        gemm(gyf, cols, part, C_out, CKK, HW, HW, HW, CKK, trans_b=True, a_off=b0 * C_out * HW,
             batch=nb, sa_z=C_out * HW, sb_z=CKK * HW, sc_z=C_out * CKK)
        _launch_1d(_gradw_kernel(dt), gw.size, part, gwf, nb, C_in, C_out, KK, b0 > 0,
                   threads=min(threads_1d(), 64))   # few outputs: small blocks spread over the SMs
        if not need_grad_x:
            continue
        # dcols[b] (CKK, HW) = wT^T (CKK, C_out) @ grad_y[b] (C_out, HW), into the cols buffer
        gemm(wt, gyf, cols, CKK, HW, C_out, CKK, HW, HW, trans_a=True, b_off=b0 * C_out * HW,
             batch=nb, sb_z=C_out * HW, sc_z=CKK * HW)
        n = nb * C_in * H * W
        _launch_1d(_col2im_kernel(dt, stride == 1), n, cols, gxf, b0 * C_in * H * W, n, C_in, H, W, K, stride, pad, Ho, Wo)
    return (gx if need_grad_x else None), gw


def conv2d(x, w, stride=1, padding="same"):
    """y (B, C_out, H_out, W_out) = cross-correlation of x (B, C_in, H, W) with w (C_in, C_out, K, K)."""
    io = Io(x, w)
    return io.out(conv2d_dev(*io.arrays, stride=stride, padding=padding))


def conv2d_backward(x, w, grad_y, stride=1, padding="same", need_grad_x=True):
    """(grad_x like x or None when need_grad_x is false, grad_w like w), the exact gradients of conv2d."""
    io = Io(x, w, grad_y)
    grads = conv2d_backward_dev(*io.arrays, stride=stride, padding=padding, need_grad_x=need_grad_x)
    return tuple(None if g is None else io.out(g) for g in grads)
