// linear_readout.hpp — the backward products of a read-out layer: few outputs, many inputs (a Dense(10) after a
// convolution: 12544 -> 10), where x and grad_x are large and w's rows are shorter than one vector.
//
//   grad_w (in, out) = x^T @ dz      grad_x (n, in) = dz @ w^T
//
// Both run in one pass over blocks of input columns, vectorised along the inputs: every lane does useful work
// (a row of 10 outputs would fill 10 of 16 lanes), each thread reads its own columns of x and writes the same
// columns of grad_x, and every result is one fixed FMA chain (over the rows for grad_w, over the outputs for
// grad_x), so it does not depend on the thread count.
#pragma once

#include "core/common.hpp"

namespace fastdl {

// Whether readout_backward serves these shapes on this CPU (AVX2 or AVX-512; out * sizeof(T) <= 48 bytes;
// many inputs).
template <typename T>
bool readout_backward_fits(index_t n, index_t in, index_t out);

// x is (n, in), w is (in, out), dz is (n, out) -> grad_w (in, out) = x^T @ dz, grad_x (n, in) = dz @ w^T
// (grad_x may be null: not computed). Only where readout_backward_fits.
template <typename T>
void readout_backward(const T* x, const T* w, const T* dz, T* grad_x, T* grad_w, index_t n, index_t in,
                      index_t out);

}  // namespace fastdl
