// rnn_cell.hpp — the fused, vectorised pointwise gate math of one RNN / LSTM / GRU time step, over a
// block of rows (the batch) and a contiguous range of hidden units, float32 and float64, with run-time
// SIMD dispatch (scalar, AVX2+FMA, AVX-512) as in activations.cpp.
//
// Every operand is a 2-D view `Rows`: element (b, j) is p[b * ld + j], b < rows, j < units. The views are
// already offset to the first hidden unit of the range, so one call handles units [j0, j0 + units) of
// every gate. In-place use (an output view equal to an input view) is allowed where noted.
#pragma once

#include "core/common.hpp"

namespace fastdl {

template <typename T>
struct In {
    const T* p = nullptr;
    index_t ld = 0;
};

template <typename T>
struct Out {
    T* p = nullptr;
    index_t ld = 0;
};

// Which step kernel to run; the operands each one reads and writes are listed beside it.
enum class Cell {
    // LSTM forward. in: zx[0..3] (bias of f, i, g, o, with ld 0), zr[0..3] ([x_t, h_{t-1}] @ w),
    //   c_prev. out: gate_out[0..3] (f, i, g, o activated; may alias zx), c_out, h_out, h_copy (may be null).
    lstm_forward,
    // LSTM backward. in: gate[0..3] (f, i, g, o), c (c_t), c_prev, grad_h, dh_next. inout: dc (dc_{t+1} in,
    //   dc_t * f out). out: dz[0..3] (pre-activation gradients).
    lstm_backward,
    // GRU forward, first half. in: zx[0..1], zr[0..1], h_prev. out: gate_out[0..1] (r, u; may alias zx), rh.
    gru_forward_ru,
    // GRU forward, second half. in: zx[2], zr[2] ((r*h) @ Wh_n), gate[1] (u), h_prev.
    //   out: gate_out[2] (n; may alias zx[2]), h_out, h_copy (may be null).
    gru_forward_n,
    // GRU backward, first half. in: grad_h, dh_next, dh_extra, gate[1] (u), gate[2] (n).
    //   out: dh = grad_h + dh_next + dh_extra (dh_next, dh_extra: the two parts arriving from step t+1),
    //   dz[2] (candidate gradient).
    gru_backward_n,
    // GRU backward, second half. in: dh_in (dh_t), drh (dz_n @ Wh_n^T), gate[0..2] (r, u, n), h_prev.
    //   out: dz[0], dz[1] (r, u gradients), dh_partial (dh * u + drh * r, the part of dh_{t-1} outside the GEMM).
    gru_backward_ru,
    // vanilla RNN forward. in: zx[0], zr[0]. out: h_out = tanh(zx + zr) (may alias zx[0]), h_copy (may be null).
    rnn_forward,
    // vanilla RNN backward. in: gate[0] (h_t), grad_h, dh_next. out: dz[0] = (grad_h + dh_next) * (1 - h_t^2).
    rnn_backward,
};

template <typename T>
struct CellArgs {
    index_t rows = 0, units = 0;
    In<T> zx[4], zr[4], gate[4];
    Out<T> gate_out[4], dz[4];
    In<T> c, c_prev, h_prev, grad_h, dh_next, dh_extra, drh, dh_in;
    Out<T> c_out, h_out, h_copy, rh, dc, dh, dh_partial;
};

// Runs one step kernel on the calling thread with the best SIMD path (active_vec_isa()).
template <typename T>
void run_cell(Cell cell, const CellArgs<T>& args);

}  // namespace fastdl
