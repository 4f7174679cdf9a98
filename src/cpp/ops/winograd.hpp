// winograd.hpp — 3x3, stride-1 convolutions by Winograd's minimal filtering: the forward pass with
// F(2x2, 3x3) and the weight gradient with F(3x3, 2x2) (tile transforms in winograd_tiles.hpp). Both
// do 16 multiplies per 2x2 block where im2col + GEMM does 36, as 16 GEMMs over the transformed tiles.
// The input gradient of a stride-1 convolution is itself a forward convolution (conv.cpp), so it runs
// on winograd_forward too.
#pragma once

#include <string>

#include "core/activation_scalar.hpp"
#include "ops/conv.hpp"

namespace fastdl {

// Which algorithm the 3x3 stride-1 convolutions use: "auto" (Winograd where it pays, see use_winograd),
// "im2col" (never Winograd) or "winograd" (wherever it fits). For tests and benchmarks.
void force_conv_algorithm(const std::string& name);
std::string forced_conv_algorithm();
// True while no algorithm is forced ("auto"): the shape-based choices (Winograd, the direct paths) apply.
bool conv_algorithm_automatic();

// Whether conv.cpp runs this convolution (forward, or weight gradient) with Winograd. It must fit (K = 3,
// stride 1, C_in and C_out >= 1, any padding); then it is forced, or (auto) C_in and C_out each fill a 64-byte
// vector (below that the 16 GEMMs, whose depth or width they are, run far from peak) and the batch has at
// least 96 tiles (below that the per-call set-up does not pay).
template <typename T>
bool use_winograd(const ConvShape& s);

// x is (B, C_in, H, W), wt is (C_out, C_in*9) with wt[o, c*9 + p*3 + q] = w[c, o, p, q]
//   -> y (B, C_out, H_out, W_out) = act(conv(x, w)); needs K = 3 and stride 1.
template <typename T>
void winograd_forward(const ConvShape& s, const T* x, const T* wt, T* y, Activation act);

// x is (B, C_in, H, W), grad_y is (B, C_out, H_out, W_out) -> grad_w (C_in, C_out, 3, 3); needs K = 3 and
// stride 1. The batch is summed in a fixed number of fixed-order chunks: the result does not depend on the
// thread count.
template <typename T>
void winograd_grad_w(const ConvShape& s, const T* x, const T* grad_y, T* grad_w);

}  // namespace fastdl
