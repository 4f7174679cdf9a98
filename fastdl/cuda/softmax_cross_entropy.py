"""Fused softmax cross-entropy (the book's two-term clipped loss) and standard cross-entropy.

One launch of a persistent grid; each block loops over rows of logits (B, C):
  pass 1  online max and sum of exponentials (each thread over a strided slice, UNROLL loads in
          flight), then a shared-memory tree reduction of the (max, sum) pairs;
  pass 2  the row again, last chunk first (what pass 1 read last is still in L2): UNROLL loads are
          issued before any store, then the gradient (pc - y) / B is written and the row's loss
          accumulated (float32 per thread, float64 across threads);
On a GPU, a long row that fits the block's shared memory (50304 floats = 197 KiB on an H100) is
kept there by pass 1 and re-read from there by pass 2, so DRAM sees each logit read once and each
gradient written once, whatever the gradient's writes evict from L2;
the last block to finish (an atomic counter) sums the per-row losses (B,) float64 in a fixed order,
so the loss is deterministic. exp/log use the fast float32 intrinsics (fastmath) on a GPU.
target is int64 labels (B,) or a one-hot (B, C) array of the logits' dtype.
"""

import functools
import math

import numpy as np

from fastdl.cuda._compat import cuda, simulator, uint64 as U
from fastdl.cuda._device import (Io, block_sum_device, empty, flat, launch, max_shared_per_block, workspace,
                                 zeros)

BOOK, STANDARD = 0, 1


def _config(C, dtype, max_shared=None):
    """(threads per block, loads in flight per thread, resident blocks per SM, row in shared memory?)
    for rows of length C.

    Long rows use a persistent grid of (blocks per SM x SMs) blocks, each looping over rows, so only
    that many rows are in flight: their pass-1 reads then still sit in L2 when pass 2 re-reads them,
    or, where the row fits in ``max_shared`` bytes of dynamic shared memory beside the reduction arrays,
    in shared memory. Through numba-cuda's public launch ``max_shared`` is the 48 KiB a block gets without
    the driver's opt-in, so on today's GPUs rows of 8192 or more take the L2 path.
    """
    if simulator():
        nt = 8 if C <= 64 else 32
        fits = max_shared is not None and C * np.dtype(dtype).itemsize + 4096 <= max_shared
        return nt, 2, 1, C >= 100 and fits  # the tests' C = 131 runs the shared-memory row
    if C >= 8192:
        nt = 1024
        itemsize = np.dtype(dtype).itemsize
        reductions = nt * (2 * itemsize + 8) + 1024       # sm, ss, sl, last, and room for alignment
        fits = max_shared is not None and C * itemsize + reductions <= max_shared
        return nt, 8, 1, fits
    return ((256, 4, 4) if C >= 1024 else (64, 4, 8)) + (False,)


def _grid(B, per_sm):
    if simulator():
        return min(B, 2)                  # still exercises the row loop
    return min(B, per_sm * cuda.get_current_device().MULTIPROCESSOR_COUNT)


@functools.lru_cache(maxsize=None)
def _xent_kernel(dtype, nt, unroll, per_sm, mode, onehot, cached=False):
    dtype = np.dtype(dtype)
    f = dtype.type
    fast = dtype == np.float32 and not simulator()
    zero, one, half = f(0), f(1), f(0.5)
    ninf = f(-np.inf)
    ONEHOT = bool(onehot)
    CACHED = bool(cached)                              # the row kept in dynamic shared memory
    UN = unroll
    CH = nt * unroll                                   # elements per chunk of the row
    dev = cuda.jit(device=True, fastmath=fast)
    block_sum = block_sum_device()

    @dev
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

    @dev
    def nlog_p(p, eps):
        # -log(clip(p, eps, 1 - eps))
        pc = p if p > eps else eps
        return -math.log(pc if pc < one - eps else one - eps)

    @dev
    def nlog_1mp(p, eps):
        # -log(1 - clip(p, eps, 1 - eps)); a short series for small p (most classes), exact 1 - p above 1/2
        pc = p if p > eps else eps
        if pc < TH:
            return pc * (one + pc * (c2 + pc * (c3 + pc * (c4 + pc * c5))))
        if pc >= half:
            q = one - pc
            return -math.log(q if q > eps else eps)
        return -math.log1p(-pc)

    @dev
    def element(x, y, M, inv, lse, invB, eps):
        # (gradient, loss contribution) of one element with target value y (0 or 1 unless soft)
        p = math.exp(x - M) * inv
        if mode == BOOK:
            pc = p if p > eps else eps
            pc = pc if pc < one - eps else one - eps
            if y == zero:                 # almost every element: one cheap series, no log
                l = nlog_1mp(p, eps)
            elif y == one:
                l = nlog_p(p, eps)
            else:
                l = y * nlog_p(p, eps) + (one - y) * nlog_1mp(p, eps)
            return (pc - y) * invB, l
        if ONEHOT:
            return (p - y) * invB, -y * (x - lse)
        return (p - y) * invB, zero

    def kernel(X, T, G, rowloss, counter, loss, B, C, invB, eps, scale):
        # X, G flat (B*C,); T is (B,) int64 labels or flat (B*C,) one-hot; rowloss (B,) float64;
        # counter (1,) int32 (zero between launches); loss (1,) float64 = scale * sum(rowloss)
        sm = cuda.shared.array(nt, dtype)
        ss = cuda.shared.array(nt, dtype)
        sl = cuda.shared.array(nt, np.float64)
        last = cuda.shared.array(1, np.int32)
        row_cache = cuda.shared.array(0, dtype)        # dynamic: C elements when CACHED, else unused
        xs = cuda.local.array(UN, dtype)
        ys = cuda.local.array(UN, dtype)
        tid = cuda.threadIdx.x
        row = cuda.blockIdx.x
        while row < B:
            base = row * C
            Xr = X[base:base + C]
            Gr = G[base:base + C]
            tb = base if ONEHOT else 0
            Tr = T[tb:tb + (C if ONEHOT else B)]
            # ---- pass 1: online max / sum(exp), UN loads in flight per thread
            m = ninf
            s = zero
            i = tid
            while i + (UN - 1) * nt < C:
                for k in range(UN):
                    xs[k] = Xr[U(i + k * nt)]
                if CACHED:
                    for k in range(UN):
                        row_cache[U(i + k * nt)] = xs[k]
                mx = xs[0]
                for k in range(1, UN):
                    mx = max(mx, xs[k])
                if mx > m:
                    s = s * math.exp(m - mx)
                    m = mx
                for k in range(UN):
                    s += math.exp(xs[k] - m)
                i += CH
            while i < C:
                x0 = Xr[U(i)]
                if CACHED:
                    row_cache[U(i)] = x0
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
            # ---- pass 2, last chunk first (still in L2): all loads of a chunk, then gradients and loss
            acc = zero
            c0 = ((C - 1) // CH) * CH
            while c0 >= 0:
                i = c0 + tid
                if i + (UN - 1) * nt < C:
                    for k in range(UN):
                        xs[k] = row_cache[U(i + k * nt)] if CACHED else Xr[U(i + k * nt)]
                        if ONEHOT:
                            ys[k] = Tr[U(i + k * nt)]
                    for k in range(UN):
                        if ONEHOT:
                            y = ys[k]
                        else:
                            y = one if i + k * nt == label else zero
                        g, l = element(xs[k], y, M, inv, lse, invB, eps)
                        Gr[U(i + k * nt)] = g
                        acc += l
                else:
                    for k in range(UN):
                        j = i + k * nt
                        if j < C:
                            if ONEHOT:
                                y = f(Tr[U(j)])
                            else:
                                y = one if j == label else zero
                            x = row_cache[U(j)] if CACHED else Xr[U(j)]
                            g, l = element(x, y, M, inv, lse, invB, eps)
                            Gr[U(j)] = g
                            acc += l
                c0 -= CH
            total = np.float64(acc)
            if mode == STANDARD and not ONEHOT and tid == 0:
                total = -np.float64(Xr[U(label)] - lse)
            sl[tid] = total
            block_sum(sl, tid, nt)
            if tid == 0:
                rowloss[row] = sl[0]
            row += cuda.gridDim.x
        # ---- the last block to finish sums the row losses in row order
        if tid == 0:
            cuda.threadfence()
            last[0] = 1 if cuda.atomic.add(counter, 0, 1) == cuda.gridDim.x - 1 else 0
        cuda.syncthreads()
        if last[0] == 1:
            a64 = np.float64(0)
            r = tid
            while r < B:
                a64 += rowloss[r]
                r += nt
            sl[tid] = a64
            block_sum(sl, tid, nt)
            if tid == 0:
                loss[0] = sl[0] * scale
                counter[0] = 0

    if simulator():
        return cuda.jit(kernel)
    return cuda.jit(kernel, launch_bounds=(nt, per_sm), fastmath=fast)


_counters = {}


def _counter():
    """The kernel's zero-initialised int32 block counter (the kernel resets it after each launch)."""
    d = _counters.get("xent")
    if d is None:
        d = _counters["xent"] = cuda.to_device(np.zeros(1, dtype=np.int32))
    return d


def _run(logits, target, eps, mode, reduction="mean", scratch_loss=False):
    """(loss device array (1,) float64, grad device array (B, C)); "mean" divides both by B, "sum" not."""
    B, C = logits.shape
    div = max(B, 1) if reduction == "mean" else 1
    dt = logits.dtype
    f = dt.type
    grad = empty((B, C), dt)
    if not (B and C):
        return zeros((1,), np.float64), grad
    loss = workspace("xent_loss", 1, np.float64) if scratch_loss else empty((1,), np.float64)
    rowloss = workspace("xent_rows", B, np.float64)
    nt, unroll, per_sm, cached = _config(C, dt, max_shared_per_block())
    args = (flat(logits), flat(target), flat(grad), rowloss, _counter(), loss, B, C, f(1.0 / div), f(eps),
            np.float64(1.0 / div))
    kern = _xent_kernel(dt, nt, unroll, per_sm, mode, target.ndim == 2, cached)
    shared = C * dt.itemsize if cached else 0  # _config kept it within max_shared_per_block()
    launch(kern, _grid(B, per_sm), nt, *args, shared=shared)
    return loss, grad


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
