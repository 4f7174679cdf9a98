// activation_vector.cpp — the elementwise activations over one span: generic kernels over the Ops of
// vec_math.hpp / vec_avx2.hpp / vec_avx512.hpp and one entry per ISA.
#include "core/activation_vector.hpp"

#include <cstring>

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

template <typename T>
inline void sigmoid_backward(const T* y, const T* g, T* out, index_t n) {  // all (n,)
    for (index_t k = 0; k < n; ++k) out[k] = g[k] * y[k] * (T(1) - y[k]);
}

template <typename T>
inline void tanh_backward(const T* y, const T* g, T* out, index_t n) {  // all (n,)
    for (index_t k = 0; k < n; ++k) out[k] = g[k] * (T(1) - y[k] * y[k]);
}

template <typename T>
inline void relu_backward(const T* y, const T* g, T* out, index_t n) {  // all (n,)
    for (index_t k = 0; k < n; ++k) out[k] = y[k] > T(0) ? g[k] : T(0);
}

// One chunk of one kernel: a (n,) [and b (n,)] -> out (n,). `backward` picks the gradient.
template <class Ops, typename T>
inline void run_chunk(Activation act, bool backward, const T* a, const T* b, T* out, index_t n) {
    if (!backward) {
        if (act == Activation::sigmoid) sigmoid_forward<Ops>(a, out, n);
        else if (act == Activation::tanh) tanh_forward<Ops>(a, out, n);
        else if (act == Activation::relu) relu_forward(a, out, n);
        else std::memcpy(out, a, static_cast<size_t>(n) * sizeof(T));
    } else {
        if (act == Activation::sigmoid) sigmoid_backward(a, b, out, n);
        else if (act == Activation::tanh) tanh_backward(a, b, out, n);
        else if (act == Activation::relu) relu_backward(a, b, out, n);
        else std::memcpy(out, b, static_cast<size_t>(n) * sizeof(T));
    }
}

// One entry per ISA; `flatten` inlines the generic code and that ISA's Ops into it.
template <typename T>
[[gnu::flatten]] void chunk_scalar(Activation act, bool backward, const T* a, const T* b, T* out, index_t n) {
    run_chunk<scalar::Ops<T>>(act, backward, a, b, out, n);
}

#if defined(__x86_64__)
template <typename T>
[[gnu::target("avx2,fma"), gnu::flatten]] void chunk_avx2(Activation act, bool backward, const T* a, const T* b,
                                                          T* out, index_t n) {
    run_chunk<avx2::Ops<T>>(act, backward, a, b, out, n);
}

template <typename T>
[[gnu::target("avx512f,avx512dq"), gnu::flatten]] void chunk_avx512(Activation act, bool backward, const T* a,
                                                                    const T* b, T* out, index_t n) {
    run_chunk<avx512::Ops<T>>(act, backward, a, b, out, n);
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
    activation_span_for<T>(active_vec_isa())(act, false, x, nullptr, y, n);
}

template ActivationSpanFn<float> activation_span_for<float>(VecIsa);
template ActivationSpanFn<double> activation_span_for<double>(VecIsa);
template void activation_forward_serial<float>(Activation, const float*, float*, index_t);
template void activation_forward_serial<double>(Activation, const double*, double*, index_t);

}  // namespace fastdl
