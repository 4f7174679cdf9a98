// activations.cpp — elementwise activations and their gradients on whole arrays: the span functions of
// core/activation_vector.hpp run over chunks by the thread pool.
#include "ops/activations.hpp"

#include "core/activation_vector.hpp"
#include "core/vec_math.hpp"

namespace fastdl {
namespace {

// a, b, mask, out are (n,) (b and mask may be null): split into contiguous, 64-element aligned chunks.
template <typename T>
void run_elementwise(Activation act, bool backward, const T* a, const T* b, const std::uint8_t* mask, T* out,
                     index_t n) {
    const ActivationSpanFn<T> fn = activation_span_for<T>(active_vec_isa());
    parallel_chunks(n, index_t(1) << 16, [&](index_t lo, index_t hi) {
        fn(act, backward, a + lo, b ? b + lo : nullptr, mask ? mask + lo : nullptr, out + lo, hi - lo);
    });
}

}  // namespace

template <typename T>
void activation_forward_kernel(Activation act, const T* x, T* y, index_t n) {
    run_elementwise<T>(act, false, x, nullptr, nullptr, y, n);
}

template <typename T>
void activation_backward_kernel(Activation act, const T* y, const T* grad_y, const std::uint8_t* mask, T* grad_x,
                                index_t n) {
    run_elementwise<T>(act, true, y, grad_y, mask, grad_x, n);
}

template <typename T>
void activation_backward_block(Activation act, const T* y, const T* grad_y, const std::uint8_t* mask, T* grad_x,
                               index_t n) {
    activation_span_for<T>(active_vec_isa())(act, true, y, grad_y, mask, grad_x, n);
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
