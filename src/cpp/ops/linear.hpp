// linear.hpp — the fully connected layer's fused kernels: linear (GEMM + bias + activation epilogue) and its backward.
#pragma once

#include "core/activation_scalar.hpp"
#include "core/common.hpp"

namespace fastdl {

// x is (n, in), w is (in, out), b is (out,) or nullptr -> y is (n, out) = act(x @ w + b)
template <typename T>
void linear_forward(const T* x, const T* w, const T* b, T* y, index_t n, index_t in, index_t out, Activation act);

// x is (n, in), w is (in, out), y and grad_y are (n, out)
//   -> grad_x (n, in) = dz @ w^T, grad_w (in, out) = x^T @ dz, grad_b (out,) = column sums of dz,
// where dz = act'(y) * grad_y. grad_x may be null: it is then not computed.
template <typename T>
void linear_backward(const T* x, const T* w, const T* y, const T* grad_y, T* grad_x, T* grad_w, T* grad_b,
                     index_t n, index_t in, index_t out, Activation act);

}  // namespace fastdl
