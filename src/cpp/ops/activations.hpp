// activations.hpp — vectorised elementwise activations ("linear", "sigmoid", "tanh", "relu") and
// their gradients from the OUTPUT y, float32 and float64, any shape (treated as flat arrays).
#pragma once

#include <cstdint>

#include "core/activation_scalar.hpp"
#include "core/common.hpp"

namespace fastdl {

// x, y are (n,) -> y = act(x). Threaded over chunks for large n.
template <typename T>
void activation_forward_kernel(Activation act, const T* x, T* y, index_t n);

// y, grad_y, grad_x are (n,) -> grad_x = act'(x) * grad_y written through y = act(x):
// sigmoid y(1-y)g, tanh (1-y^2)g, relu g*(y>0), linear g. With a dropout mask (n,) (null: none), grad_x is
// also 0 wherever mask is 0: the gradient through act followed by dropout, in one pass.
template <typename T>
void activation_backward_kernel(Activation act, const T* y, const T* grad_y, const std::uint8_t* mask, T* grad_x,
                                index_t n);

// The same on the calling thread only (inside another kernel's task), with the very same results.
template <typename T>
void activation_backward_block(Activation act, const T* y, const T* grad_y, const std::uint8_t* mask, T* grad_x,
                               index_t n);

}  // namespace fastdl
