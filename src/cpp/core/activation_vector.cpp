// activation_vector.cpp — the elementwise activations over one span: generic kernels over the Ops of
// vec_math.hpp / vec_avx2.hpp / vec_avx512.hpp and one entry per ISA.
#include "core/activation_vector.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "core/vec_avx2.hpp"
#include "core/vec_avx512.hpp"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"  // vector arguments of the Ops templates; always inlined
#endif

namespace fastdl {
namespace {

// x, y are (n,): y = 1 / (1 + exp(-x)), never exponentiating a positive number.
template <class Ops, typename T>
inline void sigmoid_forward(const T* x, T* y, index_t n) {
    constexpr index_t W = Ops::W;
    const auto one = Ops::set1(T(1));
    auto step = [&](auto xv) {
        auto e = Ops::exp(Ops::sub(Ops::zero(), Ops::abs(xv)));  // exp(-|x|) in (0, 1]
        return Ops::div(Ops::select_nonneg(xv, one, e), Ops::add(one, e));
    };
    index_t k = 0;
    for (; k + W <= n; k += W) Ops::store(y + k, step(Ops::load(x + k)));
    if (k < n) Ops::store_n(y + k, step(Ops::load_n(x + k, n - k, Ops::zero())), n - k);
}

// x, y are (n,): tanh(x) = sign(x) * -m / (2 + m), m = expm1(-2|x|) in (-1, 0] (accurate near 0,
// exactly +-1 for large |x|).
template <class Ops, typename T>
inline void tanh_forward(const T* x, T* y, index_t n) {
    constexpr index_t W = Ops::W;
    const auto two = Ops::set1(T(2)), minus_two = Ops::set1(T(-2));
    auto step = [&](auto xv) {
        auto m = Ops::expm1(Ops::mul(minus_two, Ops::abs(xv)));
        return Ops::copysign(Ops::div(Ops::sub(Ops::zero(), m), Ops::add(two, m)), xv);
    };
    index_t k = 0;
    for (; k + W <= n; k += W) Ops::store(y + k, step(Ops::load(x + k)));
    if (k < n) Ops::store_n(y + k, step(Ops::load_n(x + k, n - k, Ops::zero())), n - k);
}

// The rest are plain loops that the compiler vectorises for the entry's target.
template <typename T>
inline void relu_forward(const T* x, T* y, index_t n) {  // x, y are (n,)
    for (index_t k = 0; k < n; ++k) y[k] = !(x[k] <= T(0)) ? x[k] : T(0);  // NaN propagates
}

// The gradients: out = act'(x) * g from the output y. All (n,).
template <typename T>
inline void sigmoid_backward(const T* y, const T* g, T* out, index_t n) {
    for (index_t k = 0; k < n; ++k) out[k] = g[k] * y[k] * (T(1) - y[k]);
}

template <typename T>
inline void tanh_backward(const T* y, const T* g, T* out, index_t n) {
    for (index_t k = 0; k < n; ++k) out[k] = g[k] * (T(1) - y[k] * y[k]);
}

template <typename T>
inline void relu_backward(const T* y, const T* g, T* out, index_t n) {
    for (index_t k = 0; k < n; ++k) out[k] = y[k] > T(0) ? g[k] : T(0);
}

template <typename T>
inline void backward_loop(Activation act, const T* y, const T* g, T* out, index_t n) {
    if (act == Activation::sigmoid) sigmoid_backward(y, g, out, n);
    else if (act == Activation::tanh) tanh_backward(y, g, out, n);
    else if (act == Activation::relu) relu_backward(y, g, out, n);
    else std::memcpy(out, g, static_cast<size_t>(n) * sizeof(T));
}

// out, mask are (n,): out = 0 wherever mask is 0 (a dropped unit's gradient is 0 whatever y and g held). The
// select is written on the value's bits (all ones or all zeros), so the compiler vectorises it instead of
// branching on each of the mask's random bytes.
template <typename T>
inline void zero_dropped(const std::uint8_t* __restrict mask, T* __restrict out, index_t n) {
    using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
    for (index_t k = 0; k < n; ++k) {
        Bits bits;
        std::memcpy(&bits, out + k, sizeof(T));
        bits &= Bits(0) - Bits(mask[k] != 0);
        std::memcpy(out + k, &bits, sizeof(T));
    }
}

// The gradient [through a dropout's keep mask, not null]: each block is masked right after it is written, while
// it is in L1, so the values are the unmasked gradient's, bit for bit, then 0 where dropped.
template <typename T>
inline void backward_chunk(Activation act, const T* y, const T* g, const std::uint8_t* mask, T* out, index_t n) {
    if (mask == nullptr) return backward_loop(act, y, g, out, n);
    constexpr index_t kBlock = 2048;  // a multiple of every vector width: the blocks split no vector
    for (index_t b = 0; b < n; b += kBlock) {
        const index_t e = std::min(n, b + kBlock);
        backward_loop(act, y + b, g + b, out + b, e - b);
        zero_dropped(mask + b, out + b, e - b);
    }
}

// One chunk of one kernel: a (n,) [and b (n,), mask (n,) or null] -> out (n,). `backward` picks the gradient.
template <class Ops, typename T>
inline void run_chunk(Activation act, bool backward, const T* a, const T* b, const std::uint8_t* mask, T* out,
                      index_t n) {
    if (!backward) {
        if (act == Activation::sigmoid) sigmoid_forward<Ops>(a, out, n);
        else if (act == Activation::tanh) tanh_forward<Ops>(a, out, n);
        else if (act == Activation::relu) relu_forward(a, out, n);
        else std::memcpy(out, a, static_cast<size_t>(n) * sizeof(T));
    } else {
        backward_chunk(act, a, b, mask, out, n);
    }
}

// One entry per ISA; `flatten` inlines the generic code and that ISA's Ops into it.
template <typename T>
[[gnu::flatten]] void chunk_scalar(Activation act, bool backward, const T* a, const T* b, const std::uint8_t* mask,
                                   T* out, index_t n) {
    run_chunk<scalar::Ops<T>>(act, backward, a, b, mask, out, n);
}

#if defined(__x86_64__)
template <typename T>
[[gnu::target("avx2,fma"), gnu::flatten]] void chunk_avx2(Activation act, bool backward, const T* a, const T* b,
                                                          const std::uint8_t* mask, T* out, index_t n) {
    run_chunk<avx2::Ops<T>>(act, backward, a, b, mask, out, n);
}

template <typename T>
[[gnu::target("avx512f,avx512dq"), gnu::flatten]] void chunk_avx512(Activation act, bool backward, const T* a,
                                                                    const T* b, const std::uint8_t* mask, T* out,
                                                                    index_t n) {
    run_chunk<avx512::Ops<T>>(act, backward, a, b, mask, out, n);
}
#endif

}  // namespace

template <typename T>
ActivationSpanFn<T> activation_span_for(VecIsa isa) {
#if defined(__x86_64__)
    if (isa == VecIsa::avx512) return &chunk_avx512<T>;
    if (isa == VecIsa::avx2) return &chunk_avx2<T>;
#endif
    (void)isa;
    return &chunk_scalar<T>;
}

template <typename T>
void activation_forward_serial(Activation act, const T* x, T* y, index_t n) {
    activation_span_for<T>(active_vec_isa())(act, false, x, nullptr, nullptr, y, n);
}

template ActivationSpanFn<float> activation_span_for<float>(VecIsa);
template ActivationSpanFn<double> activation_span_for<double>(VecIsa);
template void activation_forward_serial<float>(Activation, const float*, float*, index_t);
template void activation_forward_serial<double>(Activation, const double*, double*, index_t);

}  // namespace fastdl
