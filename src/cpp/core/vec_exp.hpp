// vec_exp.hpp — the vector exp / expm1 of vec_avx2.hpp and vec_avx512.hpp, written once over their Ops class.
// The Ops functions that call it (Ops::exp, Ops::expm1) carry the target attribute; the kernels that reach them
// through `flatten` inline all of it.
//
// exp(x) = 2^n * (1 + q(r)), x = n ln2 + r, |r| <= ln2 / 2, q(r) = expm1(r) = r * p(r) by its Taylor series
// (degree 7 for float: truncation 5e-9 relative; degree 13 for double: 4e-18). Inputs below `lo` give
// exp = 0 (expm1 = -1); inputs are clamped to `hi` (the callers only exponentiate numbers <= 0). NaN
// propagates. Each Ops provides, besides its arithmetic, fnmadd (c - a b), pow2_rounded (2^n from
// t = n + round), zero_below and set_below (lanes with x < lo become 0, or v).
#pragma once

#include <type_traits>

// These helpers take and return vector registers without a target attribute of their own; they are always
// inlined into functions that have one, so GCC's note that such a signature would change the ABI is moot.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

namespace fastdl {

// p(r) = sum_{k=0}^{6} r^k / (k+1)!, by Horner's rule in float (q = r * p).
template <class Ops>
inline typename Ops::V expm1_poly_float(const typename Ops::V& r) {
    typename Ops::V p = Ops::set1(1.0f / 5040);
    p = Ops::fmadd(p, r, Ops::set1(1.0f / 720));
    p = Ops::fmadd(p, r, Ops::set1(1.0f / 120));
    p = Ops::fmadd(p, r, Ops::set1(1.0f / 24));
    p = Ops::fmadd(p, r, Ops::set1(1.0f / 6));
    p = Ops::fmadd(p, r, Ops::set1(0.5f));
    p = Ops::fmadd(p, r, Ops::set1(1.0f));
    return p;
}

// p(r) = sum_{k=0}^{12} r^k / (k+1)!, by Horner's rule in double (q = r * p).
template <class Ops>
inline typename Ops::V expm1_poly_double(const typename Ops::V& r) {
    typename Ops::V p = Ops::set1(1.0 / 6227020800.0);  // 1/13!
    p = Ops::fmadd(p, r, Ops::set1(1.0 / 479001600.0));
    p = Ops::fmadd(p, r, Ops::set1(1.0 / 39916800.0));
    p = Ops::fmadd(p, r, Ops::set1(1.0 / 3628800.0));
    p = Ops::fmadd(p, r, Ops::set1(1.0 / 362880.0));
    p = Ops::fmadd(p, r, Ops::set1(1.0 / 40320.0));
    p = Ops::fmadd(p, r, Ops::set1(1.0 / 5040.0));
    p = Ops::fmadd(p, r, Ops::set1(1.0 / 720.0));
    p = Ops::fmadd(p, r, Ops::set1(1.0 / 120.0));
    p = Ops::fmadd(p, r, Ops::set1(1.0 / 24.0));
    p = Ops::fmadd(p, r, Ops::set1(1.0 / 6.0));
    p = Ops::fmadd(p, r, Ops::set1(0.5));
    p = Ops::fmadd(p, r, Ops::set1(1.0));
    return p;
}

// The constants of exp / expm1 in float and in double.
template <typename T>
struct ExpConstants;

template <>
struct ExpConstants<float> {
    static constexpr float round = 12582912.0f;                 // 1.5 * 2^23: adding it rounds to an integer
    static constexpr float log2e = 1.44269504088896341f;
    static constexpr float ln2_hi = 0.693147182464599609f;      // ln2 rounded to float
    static constexpr float ln2_lo = -1.90465429995776804e-09f;  // ln2 - that
    static constexpr float lo = -87.3f, hi = 88.0f;
};

template <>
struct ExpConstants<double> {
    static constexpr double round = 6755399441055744.0;  // 1.5 * 2^52
    static constexpr double log2e = 1.4426950408889634;
    static constexpr double ln2_hi = 0.69314718055994529;
    static constexpr double ln2_lo = 2.3190468138462996e-17;
    static constexpr double lo = -708.3, hi = 709.0;
};

// Returns q with exp(x) = scale * (1 + q); x is already clamped to [lo, hi].
template <class Ops, typename T>
inline typename Ops::V exp_parts(const typename Ops::V& x, typename Ops::V* scale) {
    using C = ExpConstants<T>;
    const typename Ops::V magic = Ops::set1(C::round);
    typename Ops::V t = Ops::fmadd(x, Ops::set1(C::log2e), magic);
    typename Ops::V n = Ops::sub(t, magic);
    typename Ops::V r = Ops::fnmadd(n, Ops::set1(C::ln2_hi), x);
    r = Ops::fnmadd(n, Ops::set1(C::ln2_lo), r);
    typename Ops::V p;
    if constexpr (std::is_same_v<T, float>)
        p = expm1_poly_float<Ops>(r);
    else
        p = expm1_poly_double<Ops>(r);
    *scale = Ops::pow2_rounded(t);  // the low bits of t hold n
    return Ops::mul(p, r);
}

template <class Ops, typename T>
inline typename Ops::V exp(const typename Ops::V& x) {
    const typename Ops::V lo = Ops::set1(ExpConstants<T>::lo);
    typename Ops::V scale;
    typename Ops::V q = exp_parts<Ops, T>(Ops::max(lo, Ops::min(Ops::set1(ExpConstants<T>::hi), x)), &scale);
    typename Ops::V e = Ops::fmadd(scale, q, scale);
    return Ops::zero_below(x, lo, e);
}

template <class Ops, typename T>
inline typename Ops::V expm1(const typename Ops::V& x) {
    const typename Ops::V lo = Ops::set1(ExpConstants<T>::lo);
    typename Ops::V scale;
    typename Ops::V q = exp_parts<Ops, T>(Ops::max(lo, Ops::min(Ops::set1(ExpConstants<T>::hi), x)), &scale);
    typename Ops::V e = Ops::fmadd(scale, q, Ops::sub(scale, Ops::set1(T(1))));
    return Ops::set_below(x, lo, Ops::set1(T(-1)), e);
}

}  // namespace fastdl

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
