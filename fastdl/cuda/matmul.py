"""Tiled GEMM (SGEMM / DGEMM) and the Dense kernels built on it.

One kernel template, compiled per (dtype, tile config, trans_a, trans_b, activation, bias?, addend?):

    C[z] = act( op(A[z]) @ op(B[z]) + bias + D[z] )        op(A) is (M, K), op(B) is (K, N)

* Block tile BM x BN, K step BK; each thread owns a TM x TN register block of C made of groups of
  4 consecutive rows / columns (128-bit shared-memory reads, no bank conflicts). The A tile is
  stored transposed in shared memory (As[k, m]).
* The next K tile is fetched into registers while the current one is multiplied, then stored into
  the second of two shared-memory buffers, so each K tile costs one barrier. k advances two at a
  time, so one k's fragment loads overlap the other's FMAs.
* Tiles that lie wholly inside the operands load without bounds checks; a thread's loads of one
  tile sit a fixed stride apart, so each costs one 64-bit add.
* Registers are capped per configuration and dtype (``blocks_per_sm``) so that no configuration
  spills (checked with ptxas for sm_90, see tools/cuda_static.py).
* trans_a / trans_b only change the indexing (no transposed copies); loads are coalesced along the
  contiguous axis of each operand. Edge tiles are zero-filled on load and masked on store.
* All operands are flat 1-D device arrays with explicit offsets and leading dimensions, so row
  blocks, column blocks and time-step slices of bigger arrays are used in place.
* grid z indexes a batch (strides sa_z, sb_z, sc_z, sd_z); ``nred`` sums that many (A, B) pairs
  (strides sa_r, sb_r) into the same C tile (a batch-reduced GEMM).
* Implicit im2col (``gather``): B is read straight from an image X (C, H, W) as the column matrix
  cols (R, P) = im2col(X) that a convolution multiplies, never stored. Row r of cols (one (channel,
  kernel row p, kernel column q)) is a table entry packing (offset c*H*W + p*W + q, p, q); column P is an
  output pixel (i, j), whose window starts at (i*stride - pad, j*stride - pad); taps outside the image
  read as zero. B is cols (K = R, N = P) or, with trans_b, cols^T (N = R, K = P).
"""

import functools

import numpy as np

from fastdl.cuda._compat import cuda, int64 as I64, simulator, uint32 as U32, uint64 as U
from fastdl.cuda._device import Io, cdiv, dummy, empty, flat, grid_1d, jit_kernel, launch, threads_1d, workspace
from fastdl.cuda.activations import ACT_CODES, act_device, activation_backward_dev

# (BM, BN, BK, TM, TN, float32 blocks per SM, relative efficiency) for a real GPU.
CONFIGS = (
    ((128, 128, 8, 8, 8), 2, 1.00),   # 256 threads, 8x8 micro-tile: the big-GEMM workhorse
    ((64, 64, 8, 4, 4), 4, 0.62),     # 256 threads, 4x4
    ((32, 128, 8, 4, 4), 4, 0.55),    # skinny M
    ((128, 32, 8, 4, 4), 4, 0.55),    # skinny N
)
SIM_CONFIG = (8, 8, 4, 2, 2)          # 16 threads: keeps simulator runs tiny
_BLOCKS_PER_SM = {cfg: per_sm for cfg, per_sm, _ in CONFIGS}
NUM_SMS = 132


def blocks_per_sm(cfg, dtype):
    """Resident blocks per SM a configuration is compiled for, which caps its registers at
    65536 / (threads x blocks). A double takes two registers, so float64 gets half the blocks: with
    the float32 cap its 8x8 accumulators alone fill the 128 registers and ptxas spills ~700 bytes per
    thread. None (no cap) for configurations outside CONFIGS."""
    per_sm = _BLOCKS_PER_SM.get(cfg)
    if per_sm is None or np.dtype(dtype).itemsize <= 4:
        return per_sm
    return max(1, per_sm // 2)


def pick_config(M, N, batch=1, dtype=np.float32):
    """Tile configuration with the least estimated time for an (M, N) output, batch tiles in z."""
    if simulator():
        return SIM_CONFIG
    best, best_cost = None, None
    for cfg, _, eff in CONFIGS:
        per_sm = blocks_per_sm(cfg, dtype)
        tiles = cdiv(M, cfg[0]) * cdiv(N, cfg[1]) * batch
        waves = cdiv(tiles, NUM_SMS * per_sm)
        cost = waves * per_sm * cfg[0] * cfg[1] / eff
        if best_cost is None or cost < best_cost:
            best, best_cost = cfg, cost
    return best


def _tile_loader(BO, BK, NT, L, k_major, zero):
    """(coords, load) device functions for one operand's BO x BK tile (O is M for A, N for B), which each
    of the NT threads loads L elements of per K tile. The operand is stored (K, O) when ``k_major``, else
    (O, K); a thread's elements share the contiguous-axis index tid % extent and step STEP rows apart."""
    EXT = BO if k_major else BK           # tile extent along the contiguous axis: it must divide the block
    assert NT % EXT == 0
    STEP = NT // EXT

    @cuda.jit(device=True)
    def coords(tid, l):
        """(o, k) inside the tile of the l-th element this thread loads."""
        if k_major:
            return tid % BO, tid // BO + l * STEP
        return tid // BK + l * STEP, tid % BK

    @cuda.jit(device=True)
    def load(X, r, base, ld, o0, k0, O, K, tid, inside):
        # r[l] = op(X)[o0 + o, k0 + k] of the l-th element, zero outside (O, K). inside: the whole tile
        # lies within (O, K), so no element needs a bounds check. Element l sits STEP rows after l - 1.
        oo, kk = coords(tid, 0)
        if k_major:
            idx = base + (k0 + kk) * ld + o0 + oo
        else:
            idx = base + (o0 + oo) * ld + k0 + kk
        stride = STEP * ld
        for l in range(L):
            if inside:
                r[l] = X[U(idx)]
            else:
                oo, kk = coords(tid, l)
                r[l] = X[U(idx)] if o0 + oo < O and k0 + kk < K else zero
            idx += stride

    return coords, load


@functools.lru_cache(maxsize=None)
def _gemm_kernel(dtype, cfg, trans_a, trans_b, act, has_bias, has_add, min_blocks=None, split=False,
                 gather=False):
    dtype = np.dtype(dtype)
    BM, BN, BK, TM, TN = cfg
    SM, SN = BM // TM, BN // TN          # threads along M and along N
    NT = SM * SN
    LA, LB = BM * BK // NT, BK * BN // NT  # elements each thread loads per K tile
    assert LA * NT == BM * BK and LB * NT == BK * BN and BK % 2 == 0
    BMP = BM + (0 if trans_a else 4)      # padding breaks bank conflicts of transposing stores
    BNP = BN + (4 if trans_b else 0)
    TMN = TM * TN
    ASZ, BSZ = BK * BMP, BK * BNP         # one buffer of each tile; shared memory holds two of each
    ASZ2, BSZ2 = 2 * ASZ, 2 * BSZ
    # Register-block layout: a thread's TM rows are GM groups of VM consecutive rows (row =
    # g*(BM/GM) + ty*VM + r), likewise for columns, so NVVM can merge each group's shared-memory
    # reads into one 128-bit load (ld.shared.v4) and a warp's reads stay free of bank conflicts.
    VM, VN = min(4, TM), min(4, TN)
    GM, GN = TM // VM, TN // VN
    SGM, SGN = BM // GM, BN // GN
    ALIGN = None if simulator() else 16
    zero = dtype.type(0)
    HAS_BIAS, HAS_ADD, SPLIT, GATHER = bool(has_bias), bool(has_add), bool(split), bool(gather)
    OUTSIDE = -(1 << 30)                  # a window row that fails every bounds check (pixel past the end)
    actf = act_device(dtype, act)
    # A is (M, K), stored k-major ((K, M)) when trans_a; B is (K, N), stored k-major unless trans_b
    a_coords, load_a = _tile_loader(BM, BK, NT, LA, trans_a, zero)    # a_coords -> (m, k)
    b_coords, load_b = _tile_loader(BN, BK, NT, LB, not trans_b, zero)  # b_coords -> (n, k)

    @cuda.jit(device=True)
    def window(pix, npix, gWo, gs, gpad):
        """(top row, left column) of output pixel pix's window in the image; OUTSIDE past the last pixel."""
        if pix >= npix:
            return OUTSIDE, OUTSIDE
        i = I64(U32(pix) // U32(gWo))    # 32-bit division: a 64-bit one costs several times more
        return i * gs - gpad, (pix - i * gWo) * gs - gpad

    @cuda.jit(device=True)
    def tap(X, base, tab, r, wy, wx, gH, gW):
        """cols[r, pixel] for the pixel whose window starts at (wy, wx): X (C, H, W) from base.
        tab[r] packs the row's tap: offset << 32 | p << 16 | q."""
        t = tab[U(r)]
        yy = wy + ((t >> 16) & 0xFFFF)
        xx = wx + (t & 0xFFFF)
        if yy >= 0 and yy < gH and xx >= 0 and xx < gW:
            return X[U(base + (t >> 32) + wy * gW + wx)]
        return zero

    @cuda.jit(device=True)
    def gather_b(X, rb, base, tab, n0, k0, N, K, tid, wy, wx, gH, gW, gWo, gs, gpad):
        # B is cols (K, N) (rows r = k, pixels n; this thread's pixel is fixed, its window (wy, wx)
        # computed once) or, with trans_b, cols^T (N, K) (rows r = n, pixels k: one window per tile).
        if trans_b:
            _, kk = b_coords(tid, 0)
            wy, wx = window(k0 + kk, K, gWo, gs, gpad)
        for l in range(LB):
            nn, kk = b_coords(tid, l)
            r = n0 + nn if trans_b else k0 + kk
            rows = N if trans_b else K
            rb[l] = tap(X, base, tab, r, wy, wx, gH, gW) if r < rows else zero

    @cuda.jit(device=True)
    def fetch_b(B, rb, base, ldb, n0, k0, N, K, tid, inside, tab, wy, wx, gH, gW, gWo, gs, gpad):
        if GATHER:
            gather_b(B, rb, base, tab, n0, k0, N, K, tid, wy, wx, gH, gW, gWo, gs, gpad)
        else:
            load_b(B, rb, base, ldb, n0, k0, N, K, tid, inside)

    @cuda.jit(device=True)
    def store_tiles(As, Bs, ra, rb, tid, buf):
        for l in range(LA):
            mm, kk = a_coords(tid, l)
            As[U(buf * ASZ + kk * BMP + mm)] = ra[l]
        for l in range(LB):
            nn, kk = b_coords(tid, l)
            Bs[U(buf * BSZ + kk * BNP + nn)] = rb[l]

    @cuda.jit(device=True)
    def load_fragments(As, Bs, af, bf, a0, b0, ty, tx):
        # af, bf: this thread's TM rows of As and TN columns of Bs at flat offsets a0 / b0 (one k)
        for i in range(TM):
            af[i] = As[U(a0 + (i // VM) * SGM + ty * VM + i % VM)]
        for j in range(TN):
            bf[j] = Bs[U(b0 + (j // VN) * SGN + tx * VN + j % VN)]

    @cuda.jit(device=True)
    def outer_product(acc, af, bf):
        for i in range(TM):
            for j in range(TN):
                acc[i * TN + j] += af[i] * bf[j]

    def kernel(A, B, C, bias, D, M, N, K, lda, ldb, ldc, ldd, a_off, b_off, c_off, d_off,
               sa_z, sb_z, sc_z, sd_z, nred, sa_r, sb_r, tab, gH, gW, gWo, gs, gpad):
        As = cuda.shared.array(ASZ2, dtype, alignment=ALIGN)   # two A tiles, transposed: As[buf][k*BMP + m]
        Bs = cuda.shared.array(BSZ2, dtype, alignment=ALIGN)   # two B tiles: Bs[buf][k*BNP + n]
        acc = cuda.local.array(TMN, dtype)
        ra = cuda.local.array(LA, dtype)
        rb = cuda.local.array(LB, dtype)
        af = cuda.local.array(TM, dtype)
        bf = cuda.local.array(TN, dtype)
        af2 = cuda.local.array(TM, dtype)
        bf2 = cuda.local.array(TN, dtype)
        tid = cuda.threadIdx.x
        tx = tid % SN
        ty = tid // SN
        m0 = cuda.blockIdx.y * BM
        n0 = cuda.blockIdx.x * BN
        z = cuda.blockIdx.z
        for i in range(TMN):
            acc[i] = zero
        kbeg = 0
        kend = K
        if SPLIT:                         # split-K: z picks K range [z*sa_r, (z+1)*sa_r)
            kbeg = z * sa_r
            kend = min(K, kbeg + sa_r)
        ktiles = (kend - kbeg + BK - 1) // BK
        full_k = (kend - kbeg) // BK      # K tiles with no K tail
        rows_in = m0 + BM <= M
        cols_in = n0 + BN <= N
        wy, wx = OUTSIDE, OUTSIDE         # gather, B = cols: this thread's output pixel's window
        if GATHER and not trans_b:
            nn, _ = b_coords(tid, 0)
            wy, wx = window(n0 + nn, N, gWo, gs, gpad)
        for r in range(nred):
            abase = a_off + z * sa_z + r * sa_r
            bbase = b_off + z * sb_z + r * sb_r
            if SPLIT:
                abase = a_off
                bbase = b_off
            # double-buffered tiles: tile kt is multiplied from buffer kt % 2 while tile kt + 1 goes
            # from registers into the other buffer, so one barrier per K tile suffices
            load_a(A, ra, abase, lda, m0, kbeg, M, kend, tid, rows_in and full_k > 0)
            fetch_b(B, rb, bbase, ldb, n0, kbeg, N, kend, tid, cols_in and full_k > 0,
                    tab, wy, wx, gH, gW, gWo, gs, gpad)
            store_tiles(As, Bs, ra, rb, tid, 0)
            cuda.syncthreads()
            for kt in range(ktiles):
                cur = kt % 2
                if kt + 1 < ktiles:       # fetch the next tile into registers while this one is multiplied
                    k1 = kbeg + (kt + 1) * BK
                    load_a(A, ra, abase, lda, m0, k1, M, kend, tid, rows_in and kt + 1 < full_k)
                    fetch_b(B, rb, bbase, ldb, n0, k1, N, kend, tid, cols_in and kt + 1 < full_k,
                            tab, wy, wx, gH, gW, gWo, gs, gpad)
                a_tile = cur * ASZ
                b_tile = cur * BSZ
                for kk in range(0, BK, 2):    # two k per pass: the second fragment's loads overlap the first's FMAs
                    load_fragments(As, Bs, af, bf, a_tile + kk * BMP, b_tile + kk * BNP, ty, tx)
                    load_fragments(As, Bs, af2, bf2, a_tile + (kk + 1) * BMP, b_tile + (kk + 1) * BNP, ty, tx)
                    outer_product(acc, af, bf)
                    outer_product(acc, af2, bf2)
                if kt + 1 < ktiles:
                    store_tiles(As, Bs, ra, rb, tid, 1 - cur)
                cuda.syncthreads()
        cbase = c_off + z * sc_z
        dbase = d_off + z * sd_z
        for i in range(TM):
            gm = m0 + (i // VM) * SGM + ty * VM + i % VM
            if gm < M:
                for j in range(TN):
                    gn = n0 + (j // VN) * SGN + tx * VN + j % VN
                    if gn < N:
                        v = acc[i * TN + j]
                        if HAS_BIAS:
                            v += bias[U(gn)]
                        if HAS_ADD:
                            v += D[U(dbase + gm * ldd + gn)]
                        C[U(cbase + gm * ldc + gn)] = actf(v)

    return jit_kernel(kernel, None if min_blocks is None else (NT, min_blocks)), NT


@functools.lru_cache(maxsize=None)
def _splitk_reduce_kernel(dtype, act, has_bias, has_add):
    dtype = np.dtype(dtype)
    zero = dtype.type(0)
    HAS_BIAS, HAS_ADD = bool(has_bias), bool(has_add)
    actf = act_device(dtype, act)

    def kernel(P, S, C, bias, D, M, N, ldc, ldd, c_off, d_off):
        # C[m, n] = act(sum_s P[s, m, n] + bias[n] + D[m, n]); P flat (S, M, N)
        e = cuda.grid(1)
        step = cuda.gridsize(1)
        while e < M * N:
            m = e // N
            n = e - m * N
            v = zero
            for s in range(S):
                v += P[U(s * M * N + e)]
            if HAS_BIAS:
                v += bias[U(n)]
            if HAS_ADD:
                v += D[U(d_off + m * ldd + n)]
            C[U(c_off + m * ldc + n)] = actf(v)
            e += step
    return cuda.jit(kernel)


def _split_count(M, N, K, cfg):
    """How many K slices a lone (batch 1) GEMM with too few output tiles for the GPU gets."""
    if simulator():
        return 1
    tiles = cdiv(M, cfg[0]) * cdiv(N, cfg[1])
    if tiles * 2 >= NUM_SMS or K < 512:
        return 1
    return max(1, min(cdiv(NUM_SMS, tiles), K // 256, 16))


def gather_args(gather=None):
    """The six trailing GEMM kernel arguments: (table, H, W, W_out, stride, pad) of an implicit im2col
    (see the module docstring), or placeholders for a plain GEMM."""
    if gather is None:
        return (dummy(np.int64), 0, 0, 1, 1, 0)
    return tuple(gather)


def gemm(A, B, C, M, N, K, lda, ldb, ldc, trans_a=False, trans_b=False, bias=None, D=None, ldd=0,
         act=0, a_off=0, b_off=0, c_off=0, d_off=0, batch=1, sa_z=0, sb_z=0, sc_z=0, sd_z=0,
         nred=1, sa_r=0, sb_r=0, cfg=None, gather=None):
    """Launch C = act(op(A) @ op(B) + bias + D) on flat device arrays (see the module docstring).

    A is (M, K) with row stride lda (or (K, M) if trans_a), B is (K, N) with row stride ldb (or
    (N, K) if trans_b), C and D are (M, N) with row strides ldc / ldd; *_off are element offsets.
    gather = (table, H, W, W_out, stride, pad): B is the implicit im2col of the image(s) in B instead
    (ldb unused; b_off, sb_z, sb_r locate images).
    """
    if M <= 0 or N <= 0 or batch <= 0:
        return
    if cfg is None:
        cfg = pick_config(M, N, batch, C.dtype)
    dt = C.dtype
    if batch == 1 and nred == 1:
        S = _split_count(M, N, K, cfg)
        if S > 1:
            _gemm_split(A, B, C, M, N, K, lda, ldb, ldc, trans_a, trans_b, bias, D, ldd, act,
                        a_off, b_off, c_off, d_off, cfg, S, gather)
            return
    kern, nt = _gemm_kernel(dt, cfg, bool(trans_a), bool(trans_b), act, bias is not None, D is not None,
                             blocks_per_sm(cfg, dt), False, gather is not None)
    grid = (cdiv(N, cfg[1]), cdiv(M, cfg[0]), batch)
    dmy = dummy(dt)
    launch(kern, grid, nt, A, B, C, dmy if bias is None else bias, dmy if D is None else D,
           M, N, K, lda, ldb, ldc, ldd, a_off, b_off, c_off, d_off, sa_z, sb_z, sc_z, sd_z, nred, sa_r, sb_r,
           *gather_args(gather))


def _gemm_split(A, B, C, M, N, K, lda, ldb, ldc, trans_a, trans_b, bias, D, ldd, act,
                a_off, b_off, c_off, d_off, cfg, S, gather=None):
    # S partial products over K slices into a scratch (S, M, N), then one reduce + epilogue kernel
    dt = C.dtype
    kslice = cdiv(cdiv(K, S), cfg[2]) * cfg[2]
    S = cdiv(K, kslice)
    part = workspace("gemm_splitk", S * M * N, dt)
    dmy = dummy(dt)
    kern, nt = _gemm_kernel(dt, cfg, bool(trans_a), bool(trans_b), 0, False, False, blocks_per_sm(cfg, dt), True,
                            gather is not None)
    launch(kern, (cdiv(N, cfg[1]), cdiv(M, cfg[0]), S), nt, A, B, part, dmy, dmy,
           M, N, K, lda, ldb, N, 0, a_off, b_off, 0, 0, 0, 0, M * N, 0, 1, kslice, 0, *gather_args(gather))
    red = _splitk_reduce_kernel(dt, act, bias is not None, D is not None)
    t = threads_1d()
    launch(red, grid_1d(M * N, t), t, part, S, C, dmy if bias is None else bias, dmy if D is None else D,
           M, N, ldc, ldd, c_off, d_off)


class PartialGemm:
    """P (S, M, N) = the S K-slice partial products of op(A) @ op(B), for a fused consumer kernel.

    Recurrent loops launch the same GEMM shape every step: the tile config, the split count S and
    the compiled kernel are chosen once here, and each step's launch only changes the offsets.
    The consumer (e.g. an LSTM cell kernel) sums the S slices and applies its own epilogue.
    """

    def __init__(self, dtype, M, N, K, trans_a=False, trans_b=False, name="partials"):
        cfg = pick_config(M, N, dtype=dtype)
        self.S = max(1, _split_count(M, N, K, cfg))
        self.kslice = cdiv(cdiv(K, self.S), cfg[2]) * cfg[2] if K else cfg[2]
        self.S = max(1, cdiv(K, self.kslice))
        self.kern, self.nt = _gemm_kernel(np.dtype(dtype), cfg, bool(trans_a), bool(trans_b), 0, False, False,
                                          blocks_per_sm(cfg, dtype), True)
        self.grid = (cdiv(N, cfg[1]), cdiv(M, cfg[0]), self.S)
        self.M, self.N, self.K = M, N, K
        self.P = workspace(name, self.S * M * N, dtype)
        self.dmy = dummy(dtype)
        self.no_gather = gather_args()

    def __call__(self, A, B, lda, ldb, a_off=0, b_off=0):
        """Launch; returns P (flat, slice s at s*M*N)."""
        M, N = self.M, self.N
        if M * N == 0:
            return self.P
        launch(self.kern, self.grid, self.nt, A, B, self.P, self.dmy, self.dmy, M, N, self.K, lda, ldb, N, 0,
               a_off, b_off, 0, 0, 0, 0, M * N, 0, 1, self.kslice, 0, *self.no_gather)
        return self.P


# ----------------------------------------------------------------------------------------------
# column sum (grad_b): out[n] = sum_r X[r, n], a (32 x RT) block per 32 columns, shared reduction

@functools.lru_cache(maxsize=None)
def _colsum_kernel(dtype, rt):
    dtype = np.dtype(dtype)
    zero = dtype.type(0)

    def kernel(X, out, R, N, ldx, x_off):  # X flat, rows of length ldx; out (N,)
        part = cuda.shared.array((rt, 32), dtype)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        col = cuda.blockIdx.x * 32 + tx
        s = zero
        if col < N:
            r = ty
            while r < R:
                s += X[x_off + r * ldx + col]
                r += rt
        part[ty, tx] = s
        cuda.syncthreads()
        half = rt // 2
        while half > 0:
            if ty < half:
                part[ty, tx] += part[ty + half, tx]
            cuda.syncthreads()
            half //= 2
        if ty == 0 and col < N:
            out[col] = part[0, tx]
    return cuda.jit(kernel)


def colsum(X, out, R, N, ldx=None, x_off=0):
    """out (N,) = sum over R rows of the (R, N) matrix in flat X (row stride ldx)."""
    rt = 4 if simulator() else 32
    ldx = N if ldx is None else ldx
    launch(_colsum_kernel(out.dtype, rt), cdiv(N, 32), (32, rt), X, out, R, N, ldx, x_off)


# ----------------------------------------------------------------------------------------------
# public kernels

def matmul_dev(a, b, trans_a=False, trans_b=False):
    """op(a) @ op(b) for 2-D device arrays; a is (M, K) or (K, M) if trans_a."""
    M, K = (a.shape[1], a.shape[0]) if trans_a else a.shape
    N = b.shape[0] if trans_b else b.shape[1]
    c = empty((M, N), a.dtype)
    if K == 0:
        return _zeros_like_dev(c)
    gemm(flat(a), flat(b), flat(c), M, N, K, a.shape[1], b.shape[1], N, trans_a, trans_b)
    return c


def _zeros_like_dev(c):
    # K == 0: the product is all zeros; a GEMM with no K tiles writes exactly that.
    M, N = c.shape
    if c.size:
        gemm(flat(c), flat(c), flat(c), M, N, 0, 1, 1, N)
    return c


def matmul(a, b, trans_a=False, trans_b=False):
    """op(a) @ op(b) with a, b 2-D (a is (M, K), b is (K, N) before the transposes)."""
    io = Io(a, b)
    return io.out(matmul_dev(*io.arrays, trans_a=trans_a, trans_b=trans_b))


def linear_dev(x, w, b=None, activation="linear"):
    N_, IN = x.shape
    OUT = w.shape[1]
    y = empty((N_, OUT), x.dtype)
    if y.size:
        gemm(flat(x), flat(w), flat(y), N_, OUT, IN, IN, OUT, OUT, bias=b, act=ACT_CODES[activation])
    return y


def linear(x, w, b=None, activation="linear"):
    """y = act(x @ w + b): x (N, in), w (in, out), b (out,) or None; bias and act fused in the epilogue."""
    io = Io(x, w, b)
    return io.out(linear_dev(*io.arrays, activation=activation))


def linear_backward_dev(x, w, y, grad_y, activation="linear", need_grad_x=True):
    N_, IN = x.shape
    OUT = w.shape[1]
    dz = activation_backward_dev(y, grad_y, activation)          # dz is (N, out)
    gx = empty((N_, IN) if need_grad_x else (0,), x.dtype)
    gw = empty((IN, OUT), x.dtype)
    gb = empty((OUT,), x.dtype)
    if gx.size:
        if OUT:
            gemm(flat(dz), flat(w), flat(gx), N_, IN, OUT, OUT, OUT, IN, trans_b=True)   # dz @ w.T (NT)
        else:
            _zeros_like_dev(gx)
    if gw.size:
        if N_:
            gemm(flat(x), flat(dz), flat(gw), IN, OUT, N_, IN, OUT, OUT, trans_a=True)   # x.T @ dz (TN)
        else:
            _zeros_like_dev(gw)
    if OUT:
        colsum(flat(dz) if dz.size else dummy(x.dtype), gb, N_, OUT)
    return (gx if need_grad_x else None), gw, gb


def linear_backward(x, w, y, grad_y, activation="linear", need_grad_x=True):
    """(grad_x (N, in), grad_w (in, out), grad_b (out,)) with dz = activation_backward(y, grad_y); grad_x is
    None when need_grad_x is false."""
    io = Io(x, w, y, grad_y)
    grads = linear_backward_dev(*io.arrays, activation=activation, need_grad_x=need_grad_x)
    return tuple(None if g is None else io.out(g) for g in grads)
