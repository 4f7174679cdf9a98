"""Recurrent sequences (RNN, LSTM, GRU), forward and backward, in the Appleyard et al. layout.

x is (B, T, F), h0/c0 are (B, H), w is (F + H, G) with input rows first then hidden rows (G = H for
RNN, 4H for LSTM with gate blocks f, i, g, o, 3H for GRU with blocks r, u, n), b is (G,).

forward   Xp (B, T, G) = x @ w[:F] + b for all T at once (one GEMM, bias in the epilogue); then per
          step one recurrent GEMM h_{t-1} @ w[F:] whose epilogue adds Xp[:, t] (and applies tanh for
          the RNN). LSTM: two launches per step, the recurrent GEMM's K-slice partials (PartialGemm,
          shape and split chosen once) and one cell kernel that sums them, adds Xp[:, t] and applies
          all four gates and the cell. GRU: two GEMMs and two pointwise kernels (n needs r * h first).
backward  per step (last first) the gate-gradient kernel writes dZ[:, t] and a GEMM gives
          dh_{t-1} = dZ_t @ w[F:]^T + grad_h_seq[:, t-1]; for the LSTM the GEMM only writes its
          partials and the step t-1 cell-gradient kernel sums them (two launches per step). After
          the loop grad_x = dZ @ w[:F]^T, grad_w[:F] = x^T dZ and grad_w[F:] = H_prev^T dZ as single
          GEMMs over all B*T rows, and grad_b = column sums of dZ.
Caches are plain dicts of arrays (NumPy when the inputs were NumPy, device arrays otherwise).
"""

import functools
import math

import numpy as np

from fastdl.cuda._compat import cuda, int64 as I64, uint32 as U32, uint64 as U
from fastdl.cuda._device import Io, empty, flat, grid_1d, launch, threads_1d, zeros
from fastdl.cuda.matmul import PartialGemm, colsum, gemm


def _launch(kernel, n, *args):
    if n:
        t = threads_1d()
        launch(kernel, grid_1d(n, t), t, *args)


# ----------------------------------------------------------------------------------------------
# pointwise kernels (one thread per (b, j), grid-stride over B*H)

@functools.lru_cache(maxsize=None)
def _prev_kernel(dtype):
    def kernel(h0, hseq, out, B, T, H):
        # out (B, T, H): out[:, 0] = h0, out[:, t] = hseq[:, t-1]
        e = cuda.grid(1)
        step = cuda.gridsize(1)
        while e < B * T * H:
            j = e % H
            t = (e // H) % T
            b = e // (T * H)
            out[U(e)] = h0[U(b * H + j)] if t == 0 else hseq[U(e - H)]
            e += step
    return cuda.jit(kernel)


@functools.lru_cache(maxsize=None)
def _lstm_cell_kernel(dtype):
    one = np.dtype(dtype).type(1)

    def kernel(P, S, xp, xp_off, xp_ld, cp, cp_off, cp_ld, gates, cseq, hseq, t, B, T, H):
        # z (B, 4H) = sum_s P[s] (the recurrent GEMM's K-slice partials) + Xp rows at xp_off + b*xp_ld;
        # cp: c_{t-1} rows at cp_off + b*cp_ld; writes gates[:, t] (f, i, g, o activated), cseq[:, t], hseq[:, t]
        e = cuda.grid(1)
        step = cuda.gridsize(1)
        G = 4 * H
        BG = B * G
        while e < B * H:
            b = I64(U32(e) // U32(H))
            j = e - b * H
            zb = b * G + j
            xb = xp_off + b * xp_ld + j
            zf = xp[U(xb)]
            zi = xp[U(xb + H)]
            zg = xp[U(xb + 2 * H)]
            zo = xp[U(xb + 3 * H)]
            for s in range(S):
                pb = s * BG + zb
                zf += P[U(pb)]
                zi += P[U(pb + H)]
                zg += P[U(pb + 2 * H)]
                zo += P[U(pb + 3 * H)]
            f = one / (one + math.exp(-zf))
            i = one / (one + math.exp(-zi))
            g = math.tanh(zg)
            o = one / (one + math.exp(-zo))
            c = f * cp[U(cp_off + b * cp_ld + j)] + i * g
            gb = (b * T + t) * G + j
            gates[U(gb)] = f
            gates[U(gb + H)] = i
            gates[U(gb + 2 * H)] = g
            gates[U(gb + 3 * H)] = o
            sb = (b * T + t) * H + j
            cseq[U(sb)] = c
            hseq[U(sb)] = o * math.tanh(c)
            e += step
    return cuda.jit(kernel)


@functools.lru_cache(maxsize=None)
def _lstm_cell_back_kernel(dtype):
    one = np.dtype(dtype).type(1)

    def kernel(P, S, dh, dh_off, dh_ld, dc, gates, cseq, cp, cp_off, cp_ld, dz, t, B, T, H):
        # dh_t = sum_s P[s] (S partials (B, H) of dz_{t+1} @ Wh^T; none when S == 0) + rows of dh at
        # dh_off + b*dh_ld (grad_h_seq[:, t]); dc (B, H) running cell gradient, updated in place to dc*f;
        # writes dz[:, t] = (dz_f, dz_i, dz_g, dz_o)
        e = cuda.grid(1)
        step = cuda.gridsize(1)
        G = 4 * H
        BH = B * H
        while e < BH:
            b = I64(U32(e) // U32(H))
            j = e - b * H
            gb = (b * T + t) * G + j
            f = gates[U(gb)]
            i = gates[U(gb + H)]
            g = gates[U(gb + 2 * H)]
            o = gates[U(gb + 3 * H)]
            tc = math.tanh(cseq[U((b * T + t) * H + j)])
            d = dh[U(dh_off + b * dh_ld + j)]
            for s in range(S):
                d += P[U(s * BH + e)]
            dct = dc[U(e)] + d * o * (one - tc * tc)
            dz[U(gb)] = dct * cp[U(cp_off + b * cp_ld + j)] * f * (one - f)
            dz[U(gb + H)] = dct * g * i * (one - i)
            dz[U(gb + 2 * H)] = dct * i * (one - g * g)
            dz[U(gb + 3 * H)] = d * tc * o * (one - o)
            dc[U(e)] = dct * f
            e += step
    return cuda.jit(kernel)


@functools.lru_cache(maxsize=None)
def _tanh_back_kernel(dtype):
    one = np.dtype(dtype).type(1)

    def kernel(dh, dh_off, dh_ld, hseq, dz, t, B, T, H):
        # dz[:, t] = dh * (1 - h_t^2)
        e = cuda.grid(1)
        step = cuda.gridsize(1)
        while e < B * H:
            b = I64(U32(e) // U32(H))
            j = e - b * H
            s = (b * T + t) * H + j
            h = hseq[U(s)]
            dz[U(s)] = dh[U(dh_off + b * dh_ld + j)] * (one - h * h)
            e += step
    return cuda.jit(kernel)


@functools.lru_cache(maxsize=None)
def _gru_ru_kernel(dtype):
    one = np.dtype(dtype).type(1)

    def kernel(zru, hp, hp_off, hp_ld, gates, rh, t, B, T, H):
        # zru (B, 2H) pre-activations of r and u; writes gates[:, t, :2H] = (r, u), rh[:, t] = r * h_{t-1}
        e = cuda.grid(1)
        step = cuda.gridsize(1)
        G = 3 * H
        while e < B * H:
            b = I64(U32(e) // U32(H))
            j = e - b * H
            r = one / (one + math.exp(-zru[U(b * 2 * H + j)]))
            u = one / (one + math.exp(-zru[U(b * 2 * H + H + j)]))
            gb = (b * T + t) * G + j
            gates[U(gb)] = r
            gates[U(gb + H)] = u
            rh[U((b * T + t) * H + j)] = r * hp[U(hp_off + b * hp_ld + j)]
            e += step
    return cuda.jit(kernel)


@functools.lru_cache(maxsize=None)
def _gru_h_kernel(dtype):
    one = np.dtype(dtype).type(1)

    def kernel(gates, hp, hp_off, hp_ld, hseq, t, B, T, H):
        # h_t = u * h_{t-1} + (1 - u) * n
        e = cuda.grid(1)
        step = cuda.gridsize(1)
        G = 3 * H
        while e < B * H:
            b = I64(U32(e) // U32(H))
            j = e - b * H
            gb = (b * T + t) * G + j
            u = gates[U(gb + H)]
            n = gates[U(gb + 2 * H)]
            hseq[U((b * T + t) * H + j)] = u * hp[U(hp_off + b * hp_ld + j)] + (one - u) * n
            e += step
    return cuda.jit(kernel)


@functools.lru_cache(maxsize=None)
def _gru_back1_kernel(dtype):
    one = np.dtype(dtype).type(1)

    def kernel(dh, dh_off, dh_ld, gates, hp, hp_off, hp_ld, dz, p, t, B, T, H):
        # dz[:, t, H:2H] = dz_u, dz[:, t, 2H:] = dz_n; p (B, H) = dh * u (direct part of dh_{t-1})
        e = cuda.grid(1)
        step = cuda.gridsize(1)
        G = 3 * H
        while e < B * H:
            b = I64(U32(e) // U32(H))
            j = e - b * H
            gb = (b * T + t) * G + j
            u = gates[U(gb + H)]
            n = gates[U(gb + 2 * H)]
            d = dh[U(dh_off + b * dh_ld + j)]
            hprev = hp[U(hp_off + b * hp_ld + j)]
            dz[U(gb + H)] = d * (hprev - n) * u * (one - u)
            dz[U(gb + 2 * H)] = d * (one - u) * (one - n * n)
            p[U(e)] = d * u
            e += step
    return cuda.jit(kernel)


@functools.lru_cache(maxsize=None)
def _gru_back2_kernel(dtype):
    one = np.dtype(dtype).type(1)

    def kernel(drh, gates, hp, hp_off, hp_ld, dz, p, gh, gh_off, gh_ld, add_gh, t, B, T, H):
        # dz[:, t, :H] = dz_r; p += drh * r (+ grad_h_seq[:, t-1] when add_gh)
        e = cuda.grid(1)
        step = cuda.gridsize(1)
        G = 3 * H
        while e < B * H:
            b = I64(U32(e) // U32(H))
            j = e - b * H
            gb = (b * T + t) * G + j
            r = gates[U(gb)]
            d = drh[U(e)]
            dz[U(gb)] = d * hp[U(hp_off + b * hp_ld + j)] * r * (one - r)
            v = p[U(e)] + d * r
            if add_gh:
                v += gh[U(gh_off + b * gh_ld + j)]
            p[U(e)] = v
            e += step
    return cuda.jit(kernel)


# ----------------------------------------------------------------------------------------------
# shared pieces

def _projection(x, w, b, G):
    # x is (B, T, F), w is (F + H, G) -> Xp (B, T, G) = x @ w[:F] + b
    B, T, F = x.shape
    xp = empty((B, T, G), x.dtype)
    gemm(flat(x), flat(w), flat(xp), B * T, G, F, F, G, G, bias=b)
    return xp


def _prev_states(h0, hseq):
    B, T, H = hseq.shape
    out = empty((B, T, H), hseq.dtype)
    _launch(_prev_kernel(hseq.dtype), B * T * H, flat(h0), flat(hseq), flat(out), B, T, H)
    return out


def _state(t, h0, seq, T, H):
    """(array, offset, row stride) of the state before step t: h0 or seq[:, t-1]."""
    if t == 0:
        return flat(h0), 0, H
    return flat(seq), (t - 1) * H, T * H


def _weight_grads(x, w, dz, hprev, G, gw_hidden=None):
    """grad_x = dz @ w[:F]^T, grad_w = [x^T dz ; hprev^T dz], grad_b = colsum(dz); dz is (B, T, G)."""
    B, T, F = x.shape
    H = hprev.shape[2]
    R = B * T
    gx = empty((B, T, F), x.dtype)
    gw = empty((F + H, G), x.dtype)
    gb = empty((G,), x.dtype)
    dzf, gwf = flat(dz), flat(gw)
    gemm(dzf, flat(w), flat(gx), R, F, G, G, G, F, trans_b=True)
    gemm(flat(x), dzf, gwf, F, G, R, F, G, G, trans_a=True)
    if gw_hidden is None:
        gemm(flat(hprev), dzf, gwf, H, G, R, H, G, G, trans_a=True, c_off=F * G)
    else:
        gw_hidden(gwf)
    colsum(dzf, gb, R, G)
    return gx, gw, gb


def _host_cache(io, cache):
    return cache if io.on_device else {k: io.out(v) if hasattr(v, "copy_to_host") else v
                                       for k, v in cache.items()}


# ----------------------------------------------------------------------------------------------
# RNN: h_t = tanh([x_t, h_{t-1}] @ w + b)

def rnn_forward(x, h0, w, b):
    """(h_seq (B, T, H), cache)."""
    io = Io(x, h0, w, b)
    x, h0, w, b = io.arrays
    B, T, F = x.shape
    H = h0.shape[1]
    hseq = empty((B, T, H), x.dtype)
    if B and T and H:
        xp = _projection(x, w, b, H)
        for t in range(T):
            hp, off, ld = _state(t, h0, hseq, T, H)
            # h_t = tanh(h_{t-1} @ w[F:] + Xp[:, t]) written straight into h_seq[:, t]
            gemm(hp, flat(w), flat(hseq), B, H, H, ld, H, T * H, a_off=off, b_off=F * H,
                 c_off=t * H, D=flat(xp), d_off=t * H, ldd=T * H, act=2)
    cache = {"x": x, "h0": h0, "w": w, "h_seq": hseq}
    return io.out(hseq), _host_cache(io, cache)


def rnn_backward(grad_h_seq, cache):
    """(grad_x, grad_h0, grad_w, grad_b)."""
    io = Io(grad_h_seq, cache["x"], cache["h0"], cache["w"], cache["h_seq"])
    gh, x, h0, w, hseq = io.arrays
    B, T, F = x.shape
    H = h0.shape[1]
    dt = x.dtype
    dz = empty((B, T, H), dt)
    gh0 = empty((B, H), dt)
    dh = empty((B, H), dt)
    ghf, dzf, wf = flat(gh), flat(dz), flat(w)
    for t in range(T - 1, -1, -1):
        src, off, ld = (ghf, t * H, T * H) if t == T - 1 else (flat(dh), 0, H)
        _launch(_tanh_back_kernel(dt), B * H, src, off, ld, flat(hseq), dzf, t, B, T, H)
        # dh_{t-1} = dz_t @ w[F:]^T (+ grad_h_seq[:, t-1])
        if t > 0:
            gemm(dzf, wf, flat(dh), B, H, H, T * H, H, H, trans_b=True, a_off=t * H, b_off=F * H,
                 D=ghf, d_off=(t - 1) * H, ldd=T * H)
        else:
            gemm(dzf, wf, flat(gh0), B, H, H, T * H, H, H, trans_b=True, b_off=F * H)
    if T == 0:
        gh0 = zeros(h0.shape, h0.dtype)
    gx, gw, gb = _weight_grads(x, w, dz, _prev_states(h0, hseq), H)
    return io.out(gx), io.out(gh0), io.out(gw), io.out(gb)




# ----------------------------------------------------------------------------------------------
# LSTM: gates f, i, g, o; c_t = f*c_{t-1} + i*g; h_t = o*tanh(c_t)

def lstm_forward(x, h0, c0, w, b):
    """(h_seq (B, T, H), c_last (B, H), cache)."""
    io = Io(x, h0, c0, w, b)
    x, h0, c0, w, b = io.arrays
    B, T, F = x.shape
    H = h0.shape[1]
    G = 4 * H
    dt = x.dtype
    hseq = empty((B, T, H), dt)
    cseq = empty((B, T, H), dt)
    gates = empty((B, T, G), dt)
    if B and T and H:
        xp = _projection(x, w, b, G)
        rec = PartialGemm(dt, B, G, H, name="lstm_fwd_partials")   # P = h_{t-1} @ w[F:], per step
        kern = _lstm_cell_kernel(dt)
        wf, xpf, gf, cf, hf = flat(w), flat(xp), flat(gates), flat(cseq), flat(hseq)
        for t in range(T):
            hp, off, ld = _state(t, h0, hseq, T, H)
            P = rec(hp, wf, ld, G, a_off=off, b_off=F * G)
            cp, coff, cld = _state(t, c0, cseq, T, H)
            _launch(kern, B * H, P, rec.S, xpf, t * G, T * G, cp, coff, cld, gf, cf, hf, t, B, T, H)
    c_last = _last(cseq, c0)
    cache = {"x": x, "h0": h0, "c0": c0, "w": w, "gates": gates, "c_seq": cseq, "h_seq": hseq}
    return io.out(hseq), io.out(c_last), _host_cache(io, cache)


def _last(seq, s0):
    # seq (B, T, H) -> seq[:, T-1] as a new (B, H) array (s0 when T == 0)
    B, T, H = seq.shape
    if T == 0 or B * H == 0:
        return _copy_dev(s0)
    out = empty((B, H), seq.dtype)
    copy_rows(flat(seq), (T - 1) * H, T * H, flat(out), B, H)
    return out


@functools.lru_cache(maxsize=None)
def _copy_rows_kernel(dtype):
    def kernel(src, off, ld, dst, B, H):
        e = cuda.grid(1)
        step = cuda.gridsize(1)
        while e < B * H:
            dst[U(e)] = src[U(off + (e // H) * ld + e % H)]
            e += step
    return cuda.jit(kernel)


def copy_rows(src, off, ld, dst, B, H):
    """dst (B, H) = the B rows of length H at src[off + b*ld]."""
    _launch(_copy_rows_kernel(dst.dtype), B * H, src, off, ld, dst, B, H)


def lstm_backward(grad_h_seq, cache, grad_c_last=None):
    """(grad_x, grad_h0, grad_c0, grad_w, grad_b)."""
    io = Io(grad_h_seq, grad_c_last, cache["x"], cache["h0"], cache["c0"], cache["w"], cache["gates"],
            cache["c_seq"], cache["h_seq"])
    gh, gcl, x, h0, c0, w, gates, cseq, hseq = io.arrays
    B, T, F = x.shape
    H = h0.shape[1]
    G = 4 * H
    dt = x.dtype
    dz = empty((B, T, G), dt)
    gh0 = empty((B, H), dt)
    dc = zeros(c0.shape, c0.dtype) if gcl is None else _copy_dev(gcl)
    ghf, dzf, wf = flat(gh), flat(dz), flat(w)
    kern = _lstm_cell_back_kernel(dt)
    gf, cf, dcf = flat(gates), flat(cseq), flat(dc)
    if T:
        cp, coff, cld = _state(T - 1, c0, cseq, T, H)
        _launch(kern, B * H, dcf, 0, ghf, (T - 1) * H, T * H, dcf, gf, cf, cp, coff, cld, dzf, T - 1, B, T, H)
        rec = PartialGemm(dt, B, H, G, trans_b=True, name="lstm_bwd_partials")   # P = dz_t @ w[F:]^T
    for t in range(T - 1, 0, -1):
        # dh_{t-1} = dz_t @ w[F:]^T + grad_h_seq[:, t-1], summed inside the step t-1 cell kernel
        P = rec(dzf, wf, T * G, G, a_off=t * G, b_off=F * G)
        cp, coff, cld = _state(t - 1, c0, cseq, T, H)
        _launch(kern, B * H, P, rec.S, ghf, (t - 1) * H, T * H, dcf, gf, cf, cp, coff, cld, dzf, t - 1, B, T, H)
    if T:
        gemm(dzf, wf, flat(gh0), B, H, G, T * G, G, H, trans_b=True, b_off=F * G)
    else:
        gh0 = zeros(h0.shape, h0.dtype)
    gx, gw, gb = _weight_grads(x, w, dz, _prev_states(h0, hseq), G)
    return io.out(gx), io.out(gh0), io.out(dc), io.out(gw), io.out(gb)


def _copy_dev(a):
    out = empty(a.shape, a.dtype)
    if a.size:
        copy_rows(flat(a), 0, a.size, flat(out), 1, a.size)
    return out


# ----------------------------------------------------------------------------------------------
# GRU: r, u = sigmoid(...), n = tanh(x Wx_n + (r*h) Wh_n + b_n), h_t = u*h + (1-u)*n

def gru_forward(x, h0, w, b):
    """(h_seq (B, T, H), cache)."""
    io = Io(x, h0, w, b)
    x, h0, w, b = io.arrays
    B, T, F = x.shape
    H = h0.shape[1]
    G = 3 * H
    dt = x.dtype
    hseq = empty((B, T, H), dt)
    gates = empty((B, T, G), dt)
    rh = empty((B, T, H), dt)
    if B and T and H:
        xp = _projection(x, w, b, G)
        zru = empty((B, 2 * H), dt)
        wf, xpf, gf = flat(w), flat(xp), flat(gates)
        for t in range(T):
            hp, off, ld = _state(t, h0, hseq, T, H)
            # (z_r, z_u) = h_{t-1} @ Wh[:, :2H] + Xp[:, t, :2H]
            gemm(hp, wf, flat(zru), B, 2 * H, H, ld, G, 2 * H, a_off=off, b_off=F * G,
                 D=xpf, d_off=t * G, ldd=T * G)
            _launch(_gru_ru_kernel(dt), B * H, flat(zru), hp, off, ld, gf, flat(rh), t, B, T, H)
            # n = tanh((r*h) @ Wh_n + Xp[:, t, 2H:]) written straight into gates[:, t, 2H:]
            gemm(flat(rh), wf, gf, B, H, H, T * H, G, T * G, a_off=t * H, b_off=F * G + 2 * H,
                 c_off=t * G + 2 * H, D=xpf, d_off=t * G + 2 * H, ldd=T * G, act=2)
            _launch(_gru_h_kernel(dt), B * H, gf, hp, off, ld, flat(hseq), t, B, T, H)
    cache = {"x": x, "h0": h0, "w": w, "gates": gates, "rh": rh, "h_seq": hseq}
    return io.out(hseq), _host_cache(io, cache)


def gru_backward(grad_h_seq, cache):
    """(grad_x, grad_h0, grad_w, grad_b)."""
    io = Io(grad_h_seq, cache["x"], cache["h0"], cache["w"], cache["gates"], cache["rh"], cache["h_seq"])
    gh, x, h0, w, gates, rh, hseq = io.arrays
    B, T, F = x.shape
    H = h0.shape[1]
    G = 3 * H
    dt = x.dtype
    dz = empty((B, T, G), dt)
    gh0 = empty((B, H), dt)
    dh = empty((B, H), dt)
    p = empty((B, H), dt)
    drh = empty((B, H), dt)
    ghf, dzf, wf, gf = flat(gh), flat(dz), flat(w), flat(gates)
    for t in range(T - 1, -1, -1):
        src, off, ld = (ghf, t * H, T * H) if t == T - 1 else (flat(dh), 0, H)
        hp, hoff, hld = _state(t, h0, hseq, T, H)
        _launch(_gru_back1_kernel(dt), B * H, src, off, ld, gf, hp, hoff, hld, dzf, flat(p), t, B, T, H)
        # d(r*h) = dz_n @ Wh_n^T
        gemm(dzf, wf, flat(drh), B, H, H, T * G, G, H, trans_b=True, a_off=t * G + 2 * H,
             b_off=F * G + 2 * H)
        _launch(_gru_back2_kernel(dt), B * H, flat(drh), gf, hp, hoff, hld, dzf, flat(p),
                ghf, (t - 1) * H, T * H, t > 0, t, B, T, H)
        # dh_{t-1} = (dz_r, dz_u) @ Wh[:, :2H]^T + p
        gemm(dzf, wf, flat(dh) if t > 0 else flat(gh0), B, H, 2 * H, T * G, G, H, trans_b=True,
             a_off=t * G, b_off=F * G, D=flat(p), ldd=H)
    if T == 0:
        gh0 = zeros(h0.shape, h0.dtype)
    hprev = _prev_states(h0, hseq)
    R = B * T

    def hidden(gwf):
        # grad_w[F:, :2H] = H_prev^T dz[:, :, :2H];  grad_w[F:, 2H:] = (r*h)^T dz[:, :, 2H:]
        gemm(flat(hprev), dzf, gwf, H, 2 * H, R, H, G, G, trans_a=True, c_off=F * G)
        gemm(flat(rh), dzf, gwf, H, H, R, H, G, G, trans_a=True, b_off=2 * H, c_off=F * G + 2 * H)

    gx, gw, gb = _weight_grads(x, w, dz, hprev, G, gw_hidden=hidden)
    return io.out(gx), io.out(gh0), io.out(gw), io.out(gb)
