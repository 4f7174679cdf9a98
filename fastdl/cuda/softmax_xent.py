"""Fused softmax cross-entropy (the book's two-term clipped loss) and standard cross-entropy.

One block per row of logits (B, C):
  pass 1  online max and sum of exponentials (each thread over a strided slice, 4 loads in flight),
          then a shared-memory tree reduction of the (max, sum) pairs;
  pass 2  the row again, last chunk first (what pass 1 read last is still in L2): the gradient
          (pc - y) / B is written and the row's loss is accumulated in float64;
the per-row losses (B,) float64 are summed on the device by a one-block reduction kernel.
target is int64 labels (B,) or a one-hot (B, C) array of the logits' dtype.
"""

import functools
import math

import numpy as np

from fastdl.cuda._compat import cuda, simulator, uint64 as U
from fastdl.cuda._device import Io, empty, flat, jit_kernel, launch, workspace

BOOK, STANDARD = 0, 1


def _threads(C):
    if simulator():
        return 8 if C <= 64 else 32
    if C >= 8192:
        return 1024
    return 256 if C >= 1024 else 64


@functools.lru_cache(maxsize=None)
def _xent_kernel(dtype, nt, mode, onehot):
    dtype = np.dtype(dtype)
    f = dtype.type
    zero, one, half = f(0), f(1), f(0.5)
    ninf = f(-np.inf)
    ONEHOT = bool(onehot)

    @cuda.jit(device=True)
    def combine(m1, s1, m2, s2):
        # merge two (max, sum of exp(x - max)) pairs
        if m2 == ninf:
            return m1, s1
        if m1 == ninf:
            return m2, s2
        if m1 >= m2:
            return m1, s1 + s2 * math.exp(m2 - m1)
        return m2, s2 + s1 * math.exp(m1 - m2)

    TH = f(1.0 / 64) if dtype == np.float32 else f(1.0 / 4096)
    c2, c3, c4, c5 = f(1.0 / 2), f(1.0 / 3), f(1.0 / 4), f(1.0 / 5)

    @cuda.jit(device=True)
    def nlog_p(p, eps):
        # -log(clip(p, eps, 1 - eps))
        pc = p if p > eps else eps
        return -math.log(pc if pc < one - eps else one - eps)

    @cuda.jit(device=True)
    def nlog_1mp(p, eps):
        # -log(1 - clip(p, eps, 1 - eps)); a short series for small p (most classes), exact 1 - p above 1/2
        pc = p if p > eps else eps
        if pc < TH:
            return pc * (one + pc * (c2 + pc * (c3 + pc * (c4 + pc * c5))))
        if pc >= half:
            q = one - pc
            return -math.log(q if q > eps else eps)
        return -math.log1p(-pc)

    @cuda.jit(device=True)
    def element(X, T, G, base, i, M, inv, lse, label, invB, eps):
        # gradient of element i of the row (written) and its loss contribution (returned)
        x = X[U(base + i)]
        p = math.exp(x - M) * inv
        if ONEHOT:
            y = T[U(base + i)]
        else:
            y = one if i == label else zero
        if mode == BOOK:
            pc = p if p > eps else eps
            pc = pc if pc < one - eps else one - eps
            G[U(base + i)] = (pc - y) * invB
            if ONEHOT:
                return y * nlog_p(p, eps) + (one - y) * nlog_1mp(p, eps)
            return nlog_p(p, eps) if i == label else nlog_1mp(p, eps)
        G[U(base + i)] = (p - y) * invB
        if ONEHOT:
            return -y * (x - lse)
        return zero

    def kernel(X, T, G, rowloss, C, invB, eps):
        # X, G flat (B*C,); T is (B,) int64 labels or flat (B*C,) one-hot; rowloss (B,) float64
        sm = cuda.shared.array(nt, dtype)
        ss = cuda.shared.array(nt, dtype)
        sl = cuda.shared.array(nt, np.float64)
        row = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        base = row * C
        # ---- pass 1: online max / sum(exp), 4 loads in flight per thread
        m = ninf
        s = zero
        i = tid
        while i + 3 * nt < C:
            x0 = X[U(base + i)]
            x1 = X[U(base + i + nt)]
            x2 = X[U(base + i + 2 * nt)]
            x3 = X[U(base + i + 3 * nt)]
            mx = max(max(x0, x1), max(x2, x3))
            if mx > m:
                s = s * math.exp(m - mx)
                m = mx
            s += math.exp(x0 - m) + math.exp(x1 - m) + math.exp(x2 - m) + math.exp(x3 - m)
            i += 4 * nt
        while i < C:
            x0 = X[U(base + i)]
            if x0 > m:
                s = s * math.exp(m - x0)
                m = x0
            s += math.exp(x0 - m)
            i += nt
        sm[tid] = m
        ss[tid] = s
        cuda.syncthreads()
        h = nt // 2
        while h > 0:
            if tid < h:
                m2, s2 = combine(sm[tid], ss[tid], sm[tid + h], ss[tid + h])
                sm[tid] = m2
                ss[tid] = s2
            cuda.syncthreads()
            h //= 2
        M = sm[0]
        inv = one / ss[0]
        lse = M + math.log(ss[0])
        label = -1
        if not ONEHOT:
            label = T[row]
        # ---- pass 2, last chunk first (still in L2): gradient and loss, 4 elements per thread at once
        acc = zero
        c0 = ((C - 1) // (4 * nt)) * (4 * nt)
        while c0 >= 0:
            i = c0 + tid
            if i + 3 * nt < C:
                acc += element(X, T, G, base, i + 3 * nt, M, inv, lse, label, invB, eps)
                acc += element(X, T, G, base, i + 2 * nt, M, inv, lse, label, invB, eps)
                acc += element(X, T, G, base, i + nt, M, inv, lse, label, invB, eps)
                acc += element(X, T, G, base, i, M, inv, lse, label, invB, eps)
            else:
                for k in range(3, -1, -1):
                    if i + k * nt < C:
                        acc += element(X, T, G, base, i + k * nt, M, inv, lse, label, invB, eps)
            c0 -= 4 * nt
        total = np.float64(acc)
        if mode == STANDARD and not ONEHOT and tid == 0:
            total = -np.float64(X[U(base + label)] - lse)
        sl[tid] = total
        cuda.syncthreads()
        h = nt // 2
        while h > 0:
            if tid < h:
                sl[tid] += sl[tid + h]
            cuda.syncthreads()
            h //= 2
        if tid == 0:
            rowloss[row] = sl[0]

    return jit_kernel(kernel, None if simulator() else (nt, 1))


@functools.lru_cache(maxsize=None)
def _sum_kernel(nt):
    def kernel(v, n, scale, out):  # out[0] = scale * sum(v[:n]); one block
        sh = cuda.shared.array(nt, np.float64)
        tid = cuda.threadIdx.x
        acc = np.float64(0)
        i = tid
        while i < n:
            acc += v[i]
            i += nt
        sh[tid] = acc
        cuda.syncthreads()
        h = nt // 2
        while h > 0:
            if tid < h:
                sh[tid] += sh[tid + h]
            cuda.syncthreads()
            h //= 2
        if tid == 0:
            out[0] = sh[0] * scale
    return cuda.jit(kernel)


def _run(logits, target, eps, mode, reduction="mean", scratch_loss=False):
    """(loss device array (1,) float64, grad device array (B, C)); "mean" divides both by B, "sum" not."""
    B, C = logits.shape
    div = max(B, 1) if reduction == "mean" else 1
    dt = logits.dtype
    f = dt.type
    grad = empty((B, C), dt)
    loss = workspace("xent_loss", 1, np.float64) if scratch_loss else cuda.device_array(1, dtype=np.float64)
    rowloss = workspace("xent_rows", B, np.float64)
    onehot = target.ndim == 2
    if B and C:
        nt = _threads(C)
        kern = _xent_kernel(dt, nt, mode, onehot)
        launch(kern, B, nt, flat(logits), flat(target), flat(grad), rowloss, C, f(1.0 / div), f(eps))
    snt = 32 if simulator() else 256
    launch(_sum_kernel(snt), 1, snt, rowloss, B if C else 0, np.float64(1.0 / div), loss)
    return loss, grad


def softmax_cross_entropy_dev(logits, target, eps=1e-9, reduction="mean"):
    """Device-only variant: (loss as a (1,) float64 device array, grad), no host synchronisation."""
    return _run(logits, target, eps, BOOK, reduction)


def cross_entropy_dev(logits, target, reduction="mean"):
    return _run(logits, target, 0.0, STANDARD, reduction)


def softmax_cross_entropy(logits, target, eps=1e-9, reduction="mean"):
    """(loss: Python float, grad (B, C)): the book's two-term clipped loss; logits is (B, C).
    reduction "mean" divides loss and grad by B, "sum" (the book's chapter 6) does not."""
    io = Io(logits, target)
    loss, grad = _run(*io.arrays, eps, BOOK, reduction, scratch_loss=True)
    return float(loss.copy_to_host()[0]), io.out(grad)


def cross_entropy(logits, target, reduction="mean"):
    """(loss: Python float, grad (B, C)): mean_n(-sum_k y log softmax), grad (softmax - y) / B."""
    io = Io(logits, target)
    loss, grad = _run(*io.arrays, 0.0, STANDARD, reduction, scratch_loss=True)
    return float(loss.copy_to_host()[0]), io.out(grad)
