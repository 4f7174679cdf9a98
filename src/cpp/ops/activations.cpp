// activations.cpp — elementwise activations and their gradients on whole arrays: the span functions of
// core/activation_vector.hpp run over chunks by the thread pool.
#include "ops/activations.hpp"

#include "core/activation_vector.hpp"
#include "core/vec_math.hpp"

namespace fastdl {
namespace {

// a, b, out are (n,): split into one contiguous, 64-element aligned chunk per thread.
template <typename T>
void run_elementwise(Activation act, bool backward, const T* a, const T* b, T* out, index_t n) {
    const ActivationSpanFn<T> fn = activation_span_for<T>(active_vec_isa());
    parallel_chunks(n, index_t(1) << 16, [&](index_t lo, index_t hi) {
        fn(act, backward, a + lo, b ? b + lo : nullptr, out + lo, hi - lo);
    });
}

}  // namespace

template <typename T>
void activation_forward_kernel(Activation act, const T* x, T* y, index_t n) {
    run_elementwise<T>(act, false, x, nullptr, y, n);
}

template <typename T>
void activation_backward_kernel(Activation act, const T* y, const T* grad_y, const std::uint8_t* mask, T* grad_x,
                                index_t n) {
    if (!mask) {
        run_elementwise<T>(act, true, y, grad_y, grad_x, n);
        return;
    }
    parallel_chunks(n, index_t(1) << 16, [&](index_t lo, index_t hi) {
        activation_backward_block<T>(act, y + lo, grad_y + lo, mask + lo, grad_x + lo, hi - lo);
    });
}

template <typename T>
void activation_backward_block(Activation act, const T* y, const T* grad_y, const std::uint8_t* mask, T* grad_x,
                               index_t n) {
    const ActivationSpanFn<T> fn = activation_span_for<T>(active_vec_isa());
    if (!mask) {
        fn(act, true, y, grad_y, grad_x, n);
        return;
    }
    // each block is masked right after it is written, while it is still in L1
    constexpr index_t kBlock = 2048;
    for (index_t b = 0; b < n; b += kBlock) {
        const index_t e = std::min(n, b + kBlock);
        fn(act, true, y + b, grad_y + b, grad_x + b, e - b);
        for (index_t k = b; k < e; ++k) grad_x[k] = mask[k] ? grad_x[k] : T(0);
    }
}

template void activation_forward_kernel<float>(Activation, const float*, float*, index_t);
template void activation_forward_kernel<double>(Activation, const double*, double*, index_t);
template void activation_backward_kernel<float>(Activation, const float*, const float*, const std::uint8_t*, float*,
                                                index_t);
template void activation_backward_kernel<double>(Activation, const double*, const double*, const std::uint8_t*,
                                                 double*, index_t);
template void activation_backward_block<float>(Activation, const float*, const float*, const std::uint8_t*, float*,
                                               index_t);
template void activation_backward_block<double>(Activation, const double*, const double*, const std::uint8_t*,
                                                double*, index_t);

}  // namespace fastdl
