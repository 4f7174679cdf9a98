// vec_avx512.hpp — AVX-512 (F + DQ) vector operations for float (16 lanes) and double (8 lanes),
// including a polynomial exp / expm1. Every function carries target("avx512f,avx512dq"), so this
// header compiles in a baseline x86-64 build; call it only when active_vec_isa() says avx512, from a
// function with the same target and `flatten`, which inlines them (they are not always_inline so
// that the generic kernel templates in softmax_rows.hpp / activations.cpp can call them).
#pragma once

#if defined(__x86_64__)
#include <immintrin.h>

#include <cstdint>
#include <limits>

#include "core/common.hpp"
#include "core/vec_exp.hpp"

namespace fastdl::avx512 {

template <typename T>
struct Ops;

// exp and expm1 are vec_exp.hpp's, over the primitives each Ops gives it (fnmadd, pow2_rounded, zero_below,
// set_below).

template <>
struct Ops<float> {
    using V = __m512;
    using D = __m512d;  // the double accumulators of the float path
    static constexpr index_t W = 16;
    using Mask = __mmask16;

    [[gnu::target("avx512f,avx512dq")]] static inline V set1(float a) { return _mm512_set1_ps(a); }
    [[gnu::target("avx512f,avx512dq")]] static inline V zero() { return _mm512_setzero_ps(); }
    [[gnu::target("avx512f,avx512dq")]] static inline V load(const float* p) { return _mm512_loadu_ps(p); }
    [[gnu::target("avx512f,avx512dq")]] static inline Mask first(index_t n) {
        return static_cast<Mask>((1u << n) - 1u);  // n < 16
    }
    // first n lanes from p, the others `fill`
    [[gnu::target("avx512f,avx512dq")]] static inline V load_n(const float* p, index_t n, V fill) {
        return _mm512_mask_loadu_ps(fill, first(n), p);
    }
    [[gnu::target("avx512f,avx512dq")]] static inline void store(float* p, V v) { _mm512_storeu_ps(p, v); }
    [[gnu::target("avx512f,avx512dq")]] static inline void store_n(float* p, V v, index_t n) {
        _mm512_mask_storeu_ps(p, first(n), v);
    }
    [[gnu::target("avx512f,avx512dq")]] static inline V add(V a, V b) { return _mm512_add_ps(a, b); }
    [[gnu::target("avx512f,avx512dq")]] static inline V sub(V a, V b) { return _mm512_sub_ps(a, b); }
    [[gnu::target("avx512f,avx512dq")]] static inline V mul(V a, V b) { return _mm512_mul_ps(a, b); }
    [[gnu::target("avx512f,avx512dq")]] static inline V div(V a, V b) { return _mm512_div_ps(a, b); }
    [[gnu::target("avx512f,avx512dq")]] static inline V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
    [[gnu::target("avx512f,avx512dq")]] static inline V max(V a, V b) { return _mm512_max_ps(a, b); }
    [[gnu::target("avx512f,avx512dq")]] static inline V min(V a, V b) { return _mm512_min_ps(a, b); }
    [[gnu::target("avx512f,avx512dq")]] static inline V abs(V a) { return _mm512_abs_ps(a); }
    // |a| with the sign of s
    [[gnu::target("avx512f,avx512dq")]] static inline V copysign(V a, V s) {
        const V sign = _mm512_castsi512_ps(_mm512_set1_epi32(INT32_MIN));
        return _mm512_or_ps(_mm512_andnot_ps(sign, a), _mm512_and_ps(sign, s));
    }
    // lanes where a >= 0 take t, the others f
    [[gnu::target("avx512f,avx512dq")]] static inline V select_nonneg(V a, V t, V f) {
        return _mm512_mask_mov_ps(f, _mm512_cmp_ps_mask(a, zero(), _CMP_GE_OQ), t);
    }
    // bit j set when lane j is non-zero
    [[gnu::target("avx512f,avx512dq")]] static inline unsigned nonzero(V a) {
        return _mm512_cmp_ps_mask(a, zero(), _CMP_NEQ_UQ);
    }
    [[gnu::target("avx512f,avx512dq")]] static inline float hmax(V a) { return _mm512_reduce_max_ps(a); }
    [[gnu::target("avx512f,avx512dq")]] static inline double hsum(V a) {
        D lo = _mm512_cvtps_pd(_mm512_castps512_ps256(a));
        D hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(a, 1));
        return _mm512_reduce_add_pd(_mm512_add_pd(lo, hi));
    }
    [[gnu::target("avx512f,avx512dq")]] static inline D set1d(double a) { return _mm512_set1_pd(a); }
    [[gnu::target("avx512f,avx512dq")]] static inline double hprod(D a) { return _mm512_reduce_mul_pd(a); }
    // (acc0, acc1) *= 1 - clip((double)p, lo, hi), lane by lane (double: acc0 only)
    [[gnu::target("avx512f,avx512dq")]] static inline void mul_one_minus_clipped(V p, D& acc0, D& acc1, D lo, D hi) {
        const D one = _mm512_set1_pd(1.0);
        D a = _mm512_min_pd(_mm512_max_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(p)), lo), hi);
        D b = _mm512_min_pd(_mm512_max_pd(_mm512_cvtps_pd(_mm512_extractf32x8_ps(p, 1)), lo), hi);
        acc0 = _mm512_mul_pd(acc0, _mm512_sub_pd(one, a));
        acc1 = _mm512_mul_pd(acc1, _mm512_sub_pd(one, b));
    }

    [[gnu::target("avx512f,avx512dq")]] static inline V fnmadd(V a, V b, V c) { return _mm512_fnmadd_ps(a, b, c); }
    // 2^n from t = n + 1.5 * 2^23: shift n into the exponent field and add the bias
    [[gnu::target("avx512f,avx512dq")]] static inline V pow2_rounded(V t) {
        return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_slli_epi32(_mm512_castps_si512(t), 23),
                                                    _mm512_set1_epi32(127 << 23)));
    }
    [[gnu::target("avx512f,avx512dq")]] static inline V zero_below(V x, V lo, V e) {
        return _mm512_mask_mov_ps(e, _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ), zero());
    }
    [[gnu::target("avx512f,avx512dq")]] static inline V set_below(V x, V lo, V v, V e) {
        return _mm512_mask_mov_ps(e, _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ), v);
    }
    [[gnu::target("avx512f,avx512dq")]] static inline V exp(V x) { return fastdl::exp<Ops, float>(x); }
    [[gnu::target("avx512f,avx512dq")]] static inline V expm1(V x) { return fastdl::expm1<Ops, float>(x); }
};

template <>
struct Ops<double> {
    using V = __m512d;
    using D = __m512d;
    static constexpr index_t W = 8;
    using Mask = __mmask8;

    [[gnu::target("avx512f,avx512dq")]] static inline V set1(double a) { return _mm512_set1_pd(a); }
    [[gnu::target("avx512f,avx512dq")]] static inline V zero() { return _mm512_setzero_pd(); }
    [[gnu::target("avx512f,avx512dq")]] static inline V load(const double* p) { return _mm512_loadu_pd(p); }
    [[gnu::target("avx512f,avx512dq")]] static inline Mask first(index_t n) {
        return static_cast<Mask>((1u << n) - 1u);  // n < 8
    }
    [[gnu::target("avx512f,avx512dq")]] static inline V load_n(const double* p, index_t n, V fill) {
        return _mm512_mask_loadu_pd(fill, first(n), p);
    }
    [[gnu::target("avx512f,avx512dq")]] static inline void store(double* p, V v) { _mm512_storeu_pd(p, v); }
    [[gnu::target("avx512f,avx512dq")]] static inline void store_n(double* p, V v, index_t n) {
        _mm512_mask_storeu_pd(p, first(n), v);
    }
    [[gnu::target("avx512f,avx512dq")]] static inline V add(V a, V b) { return _mm512_add_pd(a, b); }
    [[gnu::target("avx512f,avx512dq")]] static inline V sub(V a, V b) { return _mm512_sub_pd(a, b); }
    [[gnu::target("avx512f,avx512dq")]] static inline V mul(V a, V b) { return _mm512_mul_pd(a, b); }
    [[gnu::target("avx512f,avx512dq")]] static inline V div(V a, V b) { return _mm512_div_pd(a, b); }
    [[gnu::target("avx512f,avx512dq")]] static inline V fmadd(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
    [[gnu::target("avx512f,avx512dq")]] static inline V max(V a, V b) { return _mm512_max_pd(a, b); }
    [[gnu::target("avx512f,avx512dq")]] static inline V min(V a, V b) { return _mm512_min_pd(a, b); }
    [[gnu::target("avx512f,avx512dq")]] static inline V abs(V a) { return _mm512_abs_pd(a); }
    [[gnu::target("avx512f,avx512dq")]] static inline V copysign(V a, V s) {
        const V sign = _mm512_castsi512_pd(_mm512_set1_epi64(INT64_MIN));
        return _mm512_or_pd(_mm512_andnot_pd(sign, a), _mm512_and_pd(sign, s));
    }
    [[gnu::target("avx512f,avx512dq")]] static inline V select_nonneg(V a, V t, V f) {
        return _mm512_mask_mov_pd(f, _mm512_cmp_pd_mask(a, zero(), _CMP_GE_OQ), t);
    }
    [[gnu::target("avx512f,avx512dq")]] static inline unsigned nonzero(V a) {
        return _mm512_cmp_pd_mask(a, zero(), _CMP_NEQ_UQ);
    }
    [[gnu::target("avx512f,avx512dq")]] static inline double hmax(V a) { return _mm512_reduce_max_pd(a); }
    [[gnu::target("avx512f,avx512dq")]] static inline double hsum(V a) { return _mm512_reduce_add_pd(a); }
    [[gnu::target("avx512f,avx512dq")]] static inline D set1d(double a) { return _mm512_set1_pd(a); }
    [[gnu::target("avx512f,avx512dq")]] static inline double hprod(D a) { return _mm512_reduce_mul_pd(a); }
    [[gnu::target("avx512f,avx512dq")]] static inline void mul_one_minus_clipped(V p, D& acc0, D& /*acc1*/, D lo, D hi) {
        acc0 = _mm512_mul_pd(acc0, _mm512_sub_pd(set1(1.0), _mm512_min_pd(_mm512_max_pd(p, lo), hi)));
    }

    [[gnu::target("avx512f,avx512dq")]] static inline V fnmadd(V a, V b, V c) { return _mm512_fnmadd_pd(a, b, c); }
    // 2^n from t = n + 1.5 * 2^52: shift n into the exponent field and add the bias
    [[gnu::target("avx512f,avx512dq")]] static inline V pow2_rounded(V t) {
        return _mm512_castsi512_pd(_mm512_add_epi64(_mm512_slli_epi64(_mm512_castpd_si512(t), 52),
                                                    _mm512_set1_epi64(int64_t(1023) << 52)));
    }
    [[gnu::target("avx512f,avx512dq")]] static inline V zero_below(V x, V lo, V e) {
        return _mm512_mask_mov_pd(e, _mm512_cmp_pd_mask(x, lo, _CMP_LT_OQ), zero());
    }
    [[gnu::target("avx512f,avx512dq")]] static inline V set_below(V x, V lo, V v, V e) {
        return _mm512_mask_mov_pd(e, _mm512_cmp_pd_mask(x, lo, _CMP_LT_OQ), v);
    }
    [[gnu::target("avx512f,avx512dq")]] static inline V exp(V x) { return fastdl::exp<Ops, double>(x); }
    [[gnu::target("avx512f,avx512dq")]] static inline V expm1(V x) { return fastdl::expm1<Ops, double>(x); }
};

}  // namespace fastdl::avx512
#endif  // __x86_64__
