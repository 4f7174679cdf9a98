// activation_vector.hpp — the elementwise activations and their gradients over one contiguous span, on the
// calling thread, vectorised for a SIMD path: what the threaded activation kernels (ops/activations.hpp) run
// on each chunk and what the GEMM epilogue (gemm/epilogue.hpp) runs on each finished row.
#pragma once

#include <cstdint>

#include "core/activation_scalar.hpp"
#include "core/common.hpp"
#include "core/vec_math.hpp"

namespace fastdl {

// a, b, out are (n,). Forward (backward false): out = act(a), b and mask unused. Backward: a is the output
// y = act(x), b is grad_y, out = act'(x) * grad_y (sigmoid y(1-y)g, tanh (1-y^2)g, relu g*(y>0), linear g), and
// with a dropout's keep mask (n,) (not null) 0 wherever the mask is 0.
template <typename T>
using ActivationSpanFn = void (*)(Activation act, bool backward, const T* a, const T* b, const std::uint8_t* mask,
                                  T* out, index_t n);

// The span function built for one SIMD path (call it only when this CPU runs that path).
template <typename T>
ActivationSpanFn<T> activation_span_for(VecIsa isa);

// x, y are (n,) -> y = act(x) on the calling thread only, on the active SIMD path (for use inside parallel
// regions, e.g. the GEMM epilogue). x == y (in place) is allowed; act must not be linear.
template <typename T>
void activation_forward_serial(Activation act, const T* x, T* y, index_t n);

}  // namespace fastdl
