// conv_direct.hpp — the forward pass and the weight gradient of stride-1 convolutions with few input taps
// (C_in*K*K small: a first layer on grey images, 1 x 5 x 5), computed directly from the padded image instead
// of im2col + GEMM (whose patch matrix is K*K times the image, and whose GEMMs have a depth of only C_in*K*K).
#pragma once

#include "ops/conv.hpp"

namespace fastdl {

// Whether conv2d_backward takes the direct weight gradient: float32, the AVX-512 vector path active, stride 1,
// K <= 7, C_in*K*K <= 64, W_out >= 8, a batch of at least 2, and the algorithm not forced (force_conv_algorithm).
template <typename T>
bool use_direct_grad_w(const ConvShape& s);

// x is (B, C_in, H, W), grad_y is (B, C_out, H_out, W_out) -> grad_w (C_in, C_out, K, K). The batch is summed
// in a fixed number of fixed-order chunks: the result does not depend on the thread count.
void direct_grad_w(const ConvShape& s, const float* x, const float* grad_y, float* grad_w,
                   const OutputGrad<float>* through = nullptr);

// The same test for the forward pass (float32 only; any batch: its tasks are bands of rows).
bool use_direct_forward(const ConvShape& s);

// x is (B, C_in, H, W), w is (C_in, C_out, K, K) -> y (B, C_out, H_out, W_out) = act(conv(x, w)). Each output
// element is computed by one task: the result does not depend on the thread count.
void direct_forward(const ConvShape& s, const float* x, const float* w, float* y, Activation act,
                    const DropoutEpilogue* dropout);

}  // namespace fastdl
