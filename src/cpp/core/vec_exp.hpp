// vec_exp.hpp — the polynomial at the heart of the vector exp / expm1 of vec_avx2.hpp and vec_avx512.hpp,
// written once over their Ops class. The Ops functions that call it carry the target attribute; the kernels
// that reach them through `flatten` inline all of it.
//
// exp(x) = 2^n * (1 + q(r)), x = n ln2 + r, |r| <= ln2 / 2, q(r) = expm1(r) = r * p(r) by its Taylor series
// (degree 7 for float: truncation 5e-9 relative; degree 13 for double: 4e-18).
#pragma once

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

}  // namespace fastdl

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
