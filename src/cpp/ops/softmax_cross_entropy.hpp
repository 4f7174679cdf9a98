// softmax_cross_entropy.hpp — fused, numerically stable softmax cross-entropy (loss and gradient in one pass
// per row), float32 and float64, one-hot / probability targets or int64 labels.
#pragma once

#include <cstdint>

#include "core/common.hpp"

namespace fastdl {

// Everything one call needs. logits, target and grad are (B, C) row-major; labels is (B,).
template <typename T>
struct CrossEntropyArgs {
    const T* logits = nullptr;           // (B, C)
    const T* target = nullptr;           // (B, C), or nullptr when labels is given
    const std::int64_t* labels = nullptr;  // (B,) in [0, C), or nullptr when target is given
    T* grad = nullptr;                   // (B, C) output
    double* row_loss = nullptr;          // (B,) output: each row's loss before loss_scale
    index_t B = 0, C = 0;
    bool book = false;  // true: the book's two-term clipped loss and clipped gradient
    T grad_scale = T(1);
    T lo = T(0), hi = T(1);              // clip bounds (eps, 1 - eps) rounded to T: the gradient's
    double lo64 = 0.0, hi64 = 1.0;       // and in double: the loss's
};

// Fills grad (B, C) and returns sum over rows of the row losses (in double, rows summed in order,
// so the result does not depend on the thread count). Ranges of rows are claimed by the pool's threads.
// Labels must already be in range.
template <typename T>
double softmax_cross_entropy_kernel(const CrossEntropyArgs<T>& args);

}  // namespace fastdl
