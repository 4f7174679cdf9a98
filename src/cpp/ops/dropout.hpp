// dropout.hpp — the dropout kernels: a counter-hashed keep mask (dropout_hash.hpp) applied to x, and
// the gradient through a saved mask; float32 and float64, any shape (treated as flat arrays).
#pragma once

#include <cstdint>

#include "core/common.hpp"

namespace fastdl {

// x, y, mask are (n,): mask[i] = keep(first + i), y[i] = mask[i] ? x[i] : 0. Threaded over chunks.
// `first` is the flat index of x[0] in the whole array the mask is drawn for (0 for all of it; a data-parallel
// rank holding rows r0.. of a batch passes r0 * row size, and draws exactly its rows of the whole mask).
template <typename T>
void dropout_forward_kernel(const T* x, T* y, std::uint8_t* mask, index_t n, std::uint64_t first,
                            std::uint64_t key, std::uint32_t threshold);

// grad_y, mask, grad_x are (n,): grad_x[i] = mask[i] ? grad_y[i] : 0.
template <typename T>
void dropout_backward_kernel(const T* grad_y, const std::uint8_t* mask, T* grad_x, index_t n);

}  // namespace fastdl
