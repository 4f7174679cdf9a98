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

// exp(x) = 2^n * (1 + q(r)), x = n ln2 + r, |r| <= ln2 / 2, q(r) = expm1(r) by its Taylor series
// (degree 7 for float: truncation 5e-9 relative; degree 13 for double: 4e-18).
// Inputs below `lo` give exp = 0 (expm1 = -1); inputs are clamped to `hi` (the callers only
// exponentiate numbers <= 0). NaN propagates.

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

    // Returns q with exp(x) = scale * (1 + q); x is already clamped to [lo, hi].
    [[gnu::target("avx512f,avx512dq")]] static inline V exp_parts(V x, V* scale) {
        const V magic = set1(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
        V t = fmadd(x, set1(1.44269504088896341f), magic);
        V n = sub(t, magic);
        V r = _mm512_fnmadd_ps(n, set1(0.693147182464599609f), x);  // ln2 rounded to float
        r = _mm512_fnmadd_ps(n, set1(-1.90465429995776804e-09f), r);  // ln2 - that
        V p = expm1_poly_float<Ops<float>>(r);
        // 2^n: the low bits of t hold n; shift them into the exponent field and add the bias.
        __m512i bits = _mm512_slli_epi32(_mm512_castps_si512(t), 23);
        *scale = _mm512_castsi512_ps(_mm512_add_epi32(bits, _mm512_set1_epi32(127 << 23)));
        return mul(p, r);
    }
    [[gnu::target("avx512f,avx512dq")]] static inline V exp(V x) {
        const V lo = set1(-87.3f);
        V scale;
        V q = exp_parts(max(lo, min(set1(88.0f), x)), &scale);
        V e = fmadd(scale, q, scale);
        return _mm512_mask_mov_ps(e, _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ), zero());
    }
    [[gnu::target("avx512f,avx512dq")]] static inline V expm1(V x) {
        const V lo = set1(-87.3f);
        V scale;
        V q = exp_parts(max(lo, min(set1(88.0f), x)), &scale);
        V e = fmadd(scale, q, sub(scale, set1(1.0f)));
        return _mm512_mask_mov_ps(e, _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ), set1(-1.0f));
    }
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

    [[gnu::target("avx512f,avx512dq")]] static inline V exp_parts(V x, V* scale) {
        const V magic = set1(6755399441055744.0);  // 1.5 * 2^52
        V t = fmadd(x, set1(1.4426950408889634), magic);
        V n = sub(t, magic);
        V r = _mm512_fnmadd_pd(n, set1(0.69314718055994529), x);
        r = _mm512_fnmadd_pd(n, set1(2.3190468138462996e-17), r);
        V p = expm1_poly_double<Ops<double>>(r);
        __m512i bits = _mm512_slli_epi64(_mm512_castpd_si512(t), 52);
        *scale = _mm512_castsi512_pd(_mm512_add_epi64(bits, _mm512_set1_epi64(int64_t(1023) << 52)));
        return mul(p, r);
    }
    [[gnu::target("avx512f,avx512dq")]] static inline V exp(V x) {
        const V lo = set1(-708.3);
        V scale;
        V q = exp_parts(max(lo, min(set1(709.0), x)), &scale);
        V e = fmadd(scale, q, scale);
        return _mm512_mask_mov_pd(e, _mm512_cmp_pd_mask(x, lo, _CMP_LT_OQ), zero());
    }
    [[gnu::target("avx512f,avx512dq")]] static inline V expm1(V x) {
        const V lo = set1(-708.3);
        V scale;
        V q = exp_parts(max(lo, min(set1(709.0), x)), &scale);
        V e = fmadd(scale, q, sub(scale, set1(1.0)));
        return _mm512_mask_mov_pd(e, _mm512_cmp_pd_mask(x, lo, _CMP_LT_OQ), set1(-1.0));
    }
};

}  // namespace fastdl::avx512
#endif  // __x86_64__
