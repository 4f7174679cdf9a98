// rnn.hpp — vanilla RNN, LSTM and GRU sequences, forward and backward through time, float32 and float64.
//
// Layouts (batch-major, C-contiguous): x is (B, T, F), h0 and c0 are (B, H), w is (F + H, G*H) with the input
// rows first, then the hidden rows, b is (G*H,); G = 1 (RNN), 4 (LSTM gates f, i, g, o), 3 (GRU r, u, n).
// Forward (GRU, RNN): one GEMM projects all T inputs (bias fused), then per step one recurrent GEMM and fused
// pointwise gate math. LSTM forward: per step ONE GEMM [x_t, h_{t-1}] @ w (the input rows add depth to the
// recurrent product, which ran faster than a separate all-T projection whose result the gate math had to
// read back from memory), then the fused gate math with the bias. The recurrent weights of every per-step
// GEMM are packed once per call (packed_b.hpp). Backward: fused pointwise gate gradients and the recurrent GEMM per step; grad_x, both halves of
// grad_w and grad_b are each one GEMM (or column sum) over all B*T rows.
// What forward saves for backward (all (B, T, .)):
//   LSTM: xh (B, T, F + H) = [x_t, h_{t-1}] (h_{-1} = h0), so that all of grad_w is ONE GEMM xh^T @ dz,
//   c_seq (B, T, H), gates (B, T, 4H) activated;
//   GRU and RNN: h_prev (B, T, H), the state entering step t (h_prev[:, 0] = h0), so that h_prev^T @ dz is
//   one GEMM; GRU: rh_seq (B, T, H) = r * h_{t-1}, gates (B, T, 3H) activated; RNN: h_seq itself.
// Results do not depend on the thread count. B, T, H must be >= 1; F may be 0.
#pragma once

#include "core/common.hpp"

namespace fastdl {

struct RnnShape {
    index_t B = 0, T = 0, F = 0, H = 0;
};

// -> h_seq (B, T, H), c_last (B, H); saved xh, c_seq, gates.
template <typename T>
void lstm_forward_kernel(const RnnShape& s, const T* x, const T* h0, const T* c0, const T* w, const T* b, T* h_seq,
                         T* c_last, T* xh, T* c_seq, T* gates);

// grad_h_seq (B, T, H), grad_c_last (B, H) or null -> grad_x (B, T, F), grad_h0, grad_c0 (B, H),
// grad_w (F + H, 4H), grad_b (4H,).
template <typename T>
void lstm_backward_kernel(const RnnShape& s, const T* grad_h_seq, const T* grad_c_last, const T* c0, const T* w,
                          const T* xh, const T* c_seq, const T* gates, T* grad_x, T* grad_h0, T* grad_c0, T* grad_w,
                          T* grad_b);

// -> h_seq (B, T, H); saved h_prev, rh_seq, gates.
template <typename T>
void gru_forward_kernel(const RnnShape& s, const T* x, const T* h0, const T* w, const T* b, T* h_seq, T* h_prev,
                        T* rh_seq, T* gates);

// grad_h_seq (B, T, H) -> grad_x (B, T, F), grad_h0 (B, H), grad_w (F + H, 3H), grad_b (3H,).
template <typename T>
void gru_backward_kernel(const RnnShape& s, const T* grad_h_seq, const T* x, const T* w, const T* h_prev,
                         const T* rh_seq, const T* gates, T* grad_x, T* grad_h0, T* grad_w, T* grad_b);

// -> h_seq (B, T, H); saved h_prev.
template <typename T>
void rnn_forward_kernel(const RnnShape& s, const T* x, const T* h0, const T* w, const T* b, T* h_seq, T* h_prev);

// grad_h_seq (B, T, H), h_seq from forward -> grad_x (B, T, F), grad_h0 (B, H), grad_w (F + H, H), grad_b (H,).
template <typename T>
void rnn_backward_kernel(const RnnShape& s, const T* grad_h_seq, const T* x, const T* w, const T* h_prev,
                         const T* h_seq, T* grad_x, T* grad_h0, T* grad_w, T* grad_b);

}  // namespace fastdl
