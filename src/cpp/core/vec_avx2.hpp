// vec_avx2.hpp — AVX2 + FMA vector operations for float (8 lanes) and double (4 lanes), with the
// same names and meaning as vec_avx512.hpp (exp / expm1: vec_exp.hpp). Every function
// carries target("avx2,fma"); call it only when active_vec_isa() says avx2.
#pragma once

#if defined(__x86_64__)
#include <immintrin.h>

#include <cstdint>

#include "core/common.hpp"
#include "core/vec_exp.hpp"

namespace fastdl::avx2 {

template <typename T>
struct Ops;

template <>
struct Ops<float> {
    using V = __m256;
    using D = __m256d;
    static constexpr index_t W = 8;

    [[gnu::target("avx2,fma")]] static inline V set1(float a) { return _mm256_set1_ps(a); }
    [[gnu::target("avx2,fma")]] static inline V zero() { return _mm256_setzero_ps(); }
    [[gnu::target("avx2,fma")]] static inline V load(const float* p) { return _mm256_loadu_ps(p); }
    [[gnu::target("avx2,fma")]] static inline __m256i first(index_t n) {  // n < 8
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    }
    // first n lanes from p, the others `fill`
    [[gnu::target("avx2,fma")]] static inline V load_n(const float* p, index_t n, V fill) {
        __m256i m = first(n);
        return _mm256_blendv_ps(fill, _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
    }
    [[gnu::target("avx2,fma")]] static inline void store(float* p, V v) { _mm256_storeu_ps(p, v); }
    [[gnu::target("avx2,fma")]] static inline void store_n(float* p, V v, index_t n) {
        _mm256_maskstore_ps(p, first(n), v);
    }
    [[gnu::target("avx2,fma")]] static inline V add(V a, V b) { return _mm256_add_ps(a, b); }
    [[gnu::target("avx2,fma")]] static inline V sub(V a, V b) { return _mm256_sub_ps(a, b); }
    [[gnu::target("avx2,fma")]] static inline V mul(V a, V b) { return _mm256_mul_ps(a, b); }
    [[gnu::target("avx2,fma")]] static inline V div(V a, V b) { return _mm256_div_ps(a, b); }
    [[gnu::target("avx2,fma")]] static inline V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
    [[gnu::target("avx2,fma")]] static inline V max(V a, V b) { return _mm256_max_ps(a, b); }
    [[gnu::target("avx2,fma")]] static inline V min(V a, V b) { return _mm256_min_ps(a, b); }
    [[gnu::target("avx2,fma")]] static inline V sign_bit() {
        return _mm256_castsi256_ps(_mm256_set1_epi32(INT32_MIN));
    }
    [[gnu::target("avx2,fma")]] static inline V abs(V a) { return _mm256_andnot_ps(sign_bit(), a); }
    [[gnu::target("avx2,fma")]] static inline V copysign(V a, V s) {
        return _mm256_or_ps(abs(a), _mm256_and_ps(sign_bit(), s));
    }
    [[gnu::target("avx2,fma")]] static inline V select_nonneg(V a, V t, V f) {
        return _mm256_blendv_ps(f, t, _mm256_cmp_ps(a, zero(), _CMP_GE_OQ));
    }
    [[gnu::target("avx2,fma")]] static inline unsigned nonzero(V a) {
        return static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(a, zero(), _CMP_NEQ_UQ)));
    }
    [[gnu::target("avx2,fma")]] static inline float hmax(V a) {
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
        return _mm_cvtss_f32(m);
    }
    [[gnu::target("avx2,fma")]] static inline double hsum_d(D d) {
        __m128d s = _mm_add_pd(_mm256_castpd256_pd128(d), _mm256_extractf128_pd(d, 1));
        return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
    }
    [[gnu::target("avx2,fma")]] static inline double hsum(V a) {
        return hsum_d(_mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a)),
                                    _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1))));
    }
    [[gnu::target("avx2,fma")]] static inline D set1d(double a) { return _mm256_set1_pd(a); }
    [[gnu::target("avx2,fma")]] static inline double hprod(D a) {
        __m128d s = _mm_mul_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
        return _mm_cvtsd_f64(_mm_mul_sd(s, _mm_unpackhi_pd(s, s)));
    }
    // (acc0, acc1) *= 1 - clip((double)p, lo, hi), lane by lane (double: acc0 only)
    [[gnu::target("avx2,fma")]] static inline void mul_one_minus_clipped(V p, D& acc0, D& acc1, D lo, D hi) {
        const D one = _mm256_set1_pd(1.0);
        D a = _mm256_min_pd(_mm256_max_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(p)), lo), hi);
        D b = _mm256_min_pd(_mm256_max_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(p, 1)), lo), hi);
        acc0 = _mm256_mul_pd(acc0, _mm256_sub_pd(one, a));
        acc1 = _mm256_mul_pd(acc1, _mm256_sub_pd(one, b));
    }

    [[gnu::target("avx2,fma")]] static inline V fnmadd(V a, V b, V c) { return _mm256_fnmadd_ps(a, b, c); }
    // 2^n from t = n + 1.5 * 2^23: shift n into the exponent field and add the bias
    [[gnu::target("avx2,fma")]] static inline V pow2_rounded(V t) {
        return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_slli_epi32(_mm256_castps_si256(t), 23),
                                                    _mm256_set1_epi32(127 << 23)));
    }
    [[gnu::target("avx2,fma")]] static inline V zero_below(V x, V lo, V e) {
        return _mm256_andnot_ps(_mm256_cmp_ps(x, lo, _CMP_LT_OQ), e);
    }
    [[gnu::target("avx2,fma")]] static inline V set_below(V x, V lo, V v, V e) {
        return _mm256_blendv_ps(e, v, _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
    }
    [[gnu::target("avx2,fma")]] static inline V exp(V x) { return fastdl::exp<Ops, float>(x); }
    [[gnu::target("avx2,fma")]] static inline V expm1(V x) { return fastdl::expm1<Ops, float>(x); }
};

template <>
struct Ops<double> {
    using V = __m256d;
    using D = __m256d;
    static constexpr index_t W = 4;

    [[gnu::target("avx2,fma")]] static inline V set1(double a) { return _mm256_set1_pd(a); }
    [[gnu::target("avx2,fma")]] static inline V zero() { return _mm256_setzero_pd(); }
    [[gnu::target("avx2,fma")]] static inline V load(const double* p) { return _mm256_loadu_pd(p); }
    [[gnu::target("avx2,fma")]] static inline __m256i first(index_t n) {  // n < 4
        return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
    }
    [[gnu::target("avx2,fma")]] static inline V load_n(const double* p, index_t n, V fill) {
        __m256i m = first(n);
        return _mm256_blendv_pd(fill, _mm256_maskload_pd(p, m), _mm256_castsi256_pd(m));
    }
    [[gnu::target("avx2,fma")]] static inline void store(double* p, V v) { _mm256_storeu_pd(p, v); }
    [[gnu::target("avx2,fma")]] static inline void store_n(double* p, V v, index_t n) {
        _mm256_maskstore_pd(p, first(n), v);
    }
    [[gnu::target("avx2,fma")]] static inline V add(V a, V b) { return _mm256_add_pd(a, b); }
    [[gnu::target("avx2,fma")]] static inline V sub(V a, V b) { return _mm256_sub_pd(a, b); }
    [[gnu::target("avx2,fma")]] static inline V mul(V a, V b) { return _mm256_mul_pd(a, b); }
    [[gnu::target("avx2,fma")]] static inline V div(V a, V b) { return _mm256_div_pd(a, b); }
    [[gnu::target("avx2,fma")]] static inline V fmadd(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
    [[gnu::target("avx2,fma")]] static inline V max(V a, V b) { return _mm256_max_pd(a, b); }
    [[gnu::target("avx2,fma")]] static inline V min(V a, V b) { return _mm256_min_pd(a, b); }
    [[gnu::target("avx2,fma")]] static inline V sign_bit() {
        return _mm256_castsi256_pd(_mm256_set1_epi64x(INT64_MIN));
    }
    [[gnu::target("avx2,fma")]] static inline V abs(V a) { return _mm256_andnot_pd(sign_bit(), a); }
    [[gnu::target("avx2,fma")]] static inline V copysign(V a, V s) {
        return _mm256_or_pd(abs(a), _mm256_and_pd(sign_bit(), s));
    }
    [[gnu::target("avx2,fma")]] static inline V select_nonneg(V a, V t, V f) {
        return _mm256_blendv_pd(f, t, _mm256_cmp_pd(a, zero(), _CMP_GE_OQ));
    }
    [[gnu::target("avx2,fma")]] static inline unsigned nonzero(V a) {
        return static_cast<unsigned>(_mm256_movemask_pd(_mm256_cmp_pd(a, zero(), _CMP_NEQ_UQ)));
    }
    [[gnu::target("avx2,fma")]] static inline double hmax(V a) {
        __m128d m = _mm_max_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
        return _mm_cvtsd_f64(_mm_max_sd(m, _mm_unpackhi_pd(m, m)));
    }
    [[gnu::target("avx2,fma")]] static inline double hsum(V a) {
        __m128d s = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
        return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
    }
    [[gnu::target("avx2,fma")]] static inline D set1d(double a) { return _mm256_set1_pd(a); }
    [[gnu::target("avx2,fma")]] static inline double hprod(D a) {
        __m128d s = _mm_mul_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
        return _mm_cvtsd_f64(_mm_mul_sd(s, _mm_unpackhi_pd(s, s)));
    }
    [[gnu::target("avx2,fma")]] static inline void mul_one_minus_clipped(V p, D& acc0, D& /*acc1*/, D lo, D hi) {
        acc0 = _mm256_mul_pd(acc0, _mm256_sub_pd(set1(1.0), _mm256_min_pd(_mm256_max_pd(p, lo), hi)));
    }

    [[gnu::target("avx2,fma")]] static inline V fnmadd(V a, V b, V c) { return _mm256_fnmadd_pd(a, b, c); }
    // 2^n from t = n + 1.5 * 2^52: shift n into the exponent field and add the bias
    [[gnu::target("avx2,fma")]] static inline V pow2_rounded(V t) {
        return _mm256_castsi256_pd(_mm256_add_epi64(_mm256_slli_epi64(_mm256_castpd_si256(t), 52),
                                                    _mm256_set1_epi64x(int64_t(1023) << 52)));
    }
    [[gnu::target("avx2,fma")]] static inline V zero_below(V x, V lo, V e) {
        return _mm256_andnot_pd(_mm256_cmp_pd(x, lo, _CMP_LT_OQ), e);
    }
    [[gnu::target("avx2,fma")]] static inline V set_below(V x, V lo, V v, V e) {
        return _mm256_blendv_pd(e, v, _mm256_cmp_pd(x, lo, _CMP_LT_OQ));
    }
    [[gnu::target("avx2,fma")]] static inline V exp(V x) { return fastdl::exp<Ops, double>(x); }
    [[gnu::target("avx2,fma")]] static inline V expm1(V x) { return fastdl::expm1<Ops, double>(x); }
};

}  // namespace fastdl::avx2
#endif  // __x86_64__
