// conv.hpp — 2-D convolution (cross-correlation, no kernel flip) forward and backward, float32/float64.
//
//   y[b,o,i,j] = sum_{c,p,q} w[c,o,p,q] * xpad[b, c, i*stride+p, j*stride+q]
//
// x is NCHW (B, C_in, H, W), w is the book's layout (C_in, C_out, K, K), y is (B, C_out, H_out, W_out);
// xpad is x zero-padded by pad_top/pad_bottom rows and pad_left/pad_right columns. A 3x3 stride-1 convolution
// whose channel counts fill a vector runs on Winograd's minimal filtering (winograd.hpp); every other one is an
// im2col of one band of output rows of one image into a per-thread, cache-sized buffer followed by a GEMM
// (stride 1: on a wide grid, see conv_wide.hpp); no im2col buffer for the whole batch is ever built.
#pragma once

#include "core/activation_scalar.hpp"
#include "core/common.hpp"
#include "ops/dropout.hpp"

namespace fastdl {

// Geometry of one conv2d call (all sizes >= 0, stride >= 1, H_out and W_out >= 1 once validated).
struct ConvShape {
    index_t B = 0, C_in = 0, H = 0, W = 0;  // x is (B, C_in, H, W)
    index_t C_out = 0, K = 0;               // w is (C_in, C_out, K, K)
    index_t stride = 1;
    index_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
    index_t H_out = 0, W_out = 0;           // y is (B, C_out, H_out, W_out)

    index_t kk() const { return K * K; }
    index_t ckk() const { return C_in * K * K; }  // rows of an im2col buffer
    index_t pixels_out() const { return H_out * W_out; }
};

// Fills H_out, W_out from the rest; throws std::invalid_argument when the geometry is impossible.
ConvShape make_conv_shape(index_t B, index_t C_in, index_t H, index_t W, index_t C_out, index_t K, index_t stride,
                          index_t pad_top, index_t pad_bottom, index_t pad_left, index_t pad_right);

// x is (B, C_in, H, W), w is (C_in, C_out, K, K) -> y (B, C_out, H_out, W_out) = act(conv(x, w)).
// With `dropout`, y is then multiplied by its keep mask (written to dropout->mask, (B, C_out, H_out, W_out)):
// the very values dropout_forward_kernel gives on act(conv(x, w)), applied to each block of y while it is in
// cache where the algorithm allows (the direct convolution), else in a pass after it.
template <typename T>
void conv2d_forward(const ConvShape& s, const T* x, const T* w, T* y, Activation act,
                    const DropoutEpilogue* dropout = nullptr);

// What the gradient given to conv2d_backward still has to pass through: it is the gradient of
// y = act(conv(x, w)) [* mask], so the convolution's own output gradient is act'(y) * grad_y [* mask]
// (activation_backward_kernel, from the output y, which after a dropout holds the dropped units as 0).
template <typename T>
struct OutputGrad {
    Activation act = Activation::linear;
    const T* y = nullptr;                // (B, C_out, H_out, W_out)
    const std::uint8_t* mask = nullptr;  // like y, or null: no dropout
};

// x is (B, C_in, H, W), w is (C_in, C_out, K, K), grad_y is (B, C_out, H_out, W_out)
//   -> grad_x (B, C_in, H, W), grad_w (C_in, C_out, K, K): the true gradients of conv2d_forward with
//      act = linear. grad_x does not depend on the thread count; grad_w sums the batch in a fixed
//      number of fixed-order chunks, so it does not either. grad_x may be null: only grad_w is computed.
// With `through`, grad_y is first taken through the activation and the mask (see OutputGrad): image by image
// inside the direct weight gradient (only grad_w asked for), else in one pass before; the same values.
template <typename T>
void conv2d_backward(const ConvShape& s, const T* x, const T* w, const T* grad_y, T* grad_x, T* grad_w,
                     const OutputGrad<T>* through = nullptr);

}  // namespace fastdl
