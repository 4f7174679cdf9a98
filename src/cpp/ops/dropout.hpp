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

// The same draw as dropout_forward_kernel on the calling thread only: for a kernel that applies dropout to
// each block of its output while the block is in cache (x may equal y).
template <typename T>
void dropout_forward_block(const T* x, T* y, std::uint8_t* mask, index_t n, std::uint64_t first,
                           std::uint64_t key, std::uint32_t threshold);

// What a kernel needs to apply dropout to its output as it writes it: the output's element i (flat C order)
// draws mask element `first + i` with `key` and `threshold` (as dropout_forward_kernel); mask is (n,) like y.
struct DropoutEpilogue {
    std::uint64_t key = 0;
    std::uint32_t threshold = 0;
    std::uint64_t first = 0;
    std::uint8_t* mask = nullptr;
};

// grad_y, mask, grad_x are (n,): grad_x[i] = mask[i] ? grad_y[i] : 0.
template <typename T>
void dropout_backward_kernel(const T* grad_y, const std::uint8_t* mask, T* grad_x, index_t n);

}  // namespace fastdl
