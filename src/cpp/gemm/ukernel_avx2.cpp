// ukernel_avx2.cpp — AVX2 + FMA microkernels (contract in microkernel.hpp).
//
// Register tile: MR = 6 rows x NR = 2 vectors (16 floats / 8 doubles): 12 ymm accumulators, 2 B vectors
// and one broadcast use 15 of the 16 ymm registers. Partial columns use vmaskmov, partial rows a
// smaller-MR instance of the same template. Every function carries target("avx2,fma"), so this file
// builds with baseline flags and only runs when the CPU has AVX2 and FMA.

#include <immintrin.h>

#include "gemm/pack_panels.hpp"
#include "core/transpose_avx.hpp"
#include "gemm/microkernel.hpp"

namespace fastdl {

namespace {

#define FASTDL_AVX2 __attribute__((target("avx2,fma")))

// One ymm of T, with the handful of operations the microkernel needs.
template <typename T>
struct Ymm;

template <>
struct Ymm<float> {
    using V = __m256;
    static constexpr int lanes = 8;
    FASTDL_AVX2 static __m256i mask(index_t count) {  // lanes [0, count) set
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)), lane);
    }
    FASTDL_AVX2 static V zero() { return _mm256_setzero_ps(); }
    FASTDL_AVX2 static V load(const float* p) { return _mm256_loadu_ps(p); }
    FASTDL_AVX2 static V load(const float* p, __m256i m) { return _mm256_maskload_ps(p, m); }
    FASTDL_AVX2 static V broadcast(const float* p) { return _mm256_broadcast_ss(p); }
    FASTDL_AVX2 static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
    FASTDL_AVX2 static V add(V a, V b) { return _mm256_add_ps(a, b); }
    FASTDL_AVX2 static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
    FASTDL_AVX2 static void store(float* p, V v, __m256i m) { _mm256_maskstore_ps(p, m, v); }
};

template <>
struct Ymm<double> {
    using V = __m256d;
    static constexpr int lanes = 4;
    FASTDL_AVX2 static __m256i mask(index_t count) {  // lanes [0, count) set
        const __m256i lane = _mm256_setr_epi64x(0, 1, 2, 3);
        return _mm256_cmpgt_epi64(_mm256_set1_epi64x(count), lane);
    }
    FASTDL_AVX2 static V zero() { return _mm256_setzero_pd(); }
    FASTDL_AVX2 static V load(const double* p) { return _mm256_loadu_pd(p); }
    FASTDL_AVX2 static V load(const double* p, __m256i m) { return _mm256_maskload_pd(p, m); }
    FASTDL_AVX2 static V broadcast(const double* p) { return _mm256_broadcast_sd(p); }
    FASTDL_AVX2 static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
    FASTDL_AVX2 static V add(V a, V b) { return _mm256_add_pd(a, b); }
    FASTDL_AVX2 static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
    FASTDL_AVX2 static void store(double* p, V v, __m256i m) { _mm256_maskstore_pd(p, m, v); }
};

// c (M, nr) [+]= A (M, k) @ B (k, nr), nr <= 2 * lanes. FULL: nr == 2 * lanes (no masks).
// PACKED_MR > 0: A is packed with rs_a = 1, cs_a = PACKED_MR (compile-time strides).
template <typename T, int M, bool FULL, int PACKED_MR>
FASTDL_AVX2 void tile(index_t k, const T* a, index_t rs_a, index_t cs_a, const T* b, index_t rs_b, T* c,
                      index_t ldc, index_t nr, bool accumulate) {
    using Y = Ymm<T>;
    using V = typename Y::V;
    constexpr int L = Y::lanes;
    if constexpr (PACKED_MR > 0) {
        rs_a = 1;
        cs_a = PACKED_MR;
    }
    const __m256i m0 = Y::mask(nr);
    const __m256i m1 = Y::mask(nr - L);
    V acc0[M], acc1[M];
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) {
        acc0[i] = Y::zero();
        acc1[i] = Y::zero();
    }
#pragma GCC unroll 2
    for (index_t p = 0; p < k; ++p) {
        const V b0 = FULL ? Y::load(b) : Y::load(b, m0);
        const V b1 = FULL ? Y::load(b + L) : Y::load(b + L, m1);
#pragma GCC unroll 8
        for (int i = 0; i < M; ++i) {
            const V ai = Y::broadcast(a + i * rs_a);
            acc0[i] = Y::fma(ai, b0, acc0[i]);
            acc1[i] = Y::fma(ai, b1, acc1[i]);
        }
        a += cs_a;
        b += rs_b;
    }
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) {
        T* ci = c + i * ldc;
        if (FULL) {
            if (accumulate) {
                acc0[i] = Y::add(Y::load(ci), acc0[i]);
                acc1[i] = Y::add(Y::load(ci + L), acc1[i]);
            }
            Y::store(ci, acc0[i]);
            Y::store(ci + L, acc1[i]);
        } else {
            if (accumulate) {
                acc0[i] = Y::add(Y::load(ci, m0), acc0[i]);
                acc1[i] = Y::add(Y::load(ci + L, m1), acc1[i]);
            }
            Y::store(ci, acc0[i], m0);
            Y::store(ci + L, acc1[i], m1);
        }
    }
}

// Dispatch on the edge row count mr (1..M) and on full/partial columns.
template <typename T, int MR, int M>
FASTDL_AVX2 void tile_rows(index_t k, const T* a, index_t rs_a, index_t cs_a, const T* b, index_t rs_b, T* c,
                           index_t ldc, index_t mr, index_t nr, bool accumulate) {
    if (mr == M) {
        const bool packed = rs_a == 1 && cs_a == MR;
        const bool full = nr == 2 * Ymm<T>::lanes;
        if (packed && full) tile<T, M, true, MR>(k, a, rs_a, cs_a, b, rs_b, c, ldc, nr, accumulate);
        else if (packed) tile<T, M, false, MR>(k, a, rs_a, cs_a, b, rs_b, c, ldc, nr, accumulate);
        else if (full) tile<T, M, true, 0>(k, a, rs_a, cs_a, b, rs_b, c, ldc, nr, accumulate);
        else tile<T, M, false, 0>(k, a, rs_a, cs_a, b, rs_b, c, ldc, nr, accumulate);
        return;
    }
    if constexpr (M > 1) tile_rows<T, MR, M - 1>(k, a, rs_a, cs_a, b, rs_b, c, ldc, mr, nr, accumulate);
}

template <typename T, int MR>
FASTDL_AVX2 void avx2_kernel(index_t k, const T* a, index_t rs_a, index_t cs_a, const T* b, index_t rs_b, T* c,
                             index_t ldc, index_t mr, index_t nr, bool accumulate) {
    // a: A (mr, k), b: B (k, nr), c: (mr, nr); see microkernel.hpp
    tile_rows<T, MR, MR>(k, a, rs_a, cs_a, b, rs_b, c, ldc, mr, nr, accumulate);
}

// out (kc, MR) <- A (mr, kc); out (kc, NR) <- B (kc, nr): the shared packing loops, vectorised for this ISA.
template <typename T, int MR>
FASTDL_AVX2 void avx2_pack_a(index_t kc, index_t mr, const T* a, index_t rs_a, index_t cs_a, T* out) {
    pack_a_panel<T, MR>(kc, mr, a, rs_a, cs_a, out);
}

template <typename T, int NR>
FASTDL_AVX2 void avx2_pack_b(index_t kc, index_t nr, const T* b, index_t rs_b, index_t cs_b, T* out) {
    if (nr == NR && rs_b == 1) {
        pack_b_panel_transposed<T, NR>(kc, b, cs_b, out);
        return;
    }
    pack_b_panel<T, NR>(kc, nr, b, rs_b, cs_b, out);
}

#undef FASTDL_AVX2

constexpr int kMR = 6;

}  // namespace

const MicroKernel<float>& avx2_microkernel_f32() {
    static const MicroKernel<float> k{&avx2_kernel<float, kMR>, &avx2_pack_a<float, kMR>, &avx2_pack_b<float, 16>,
                                      kMR, 16, 144, 256, 1024};
    return k;
}

const MicroKernel<double>& avx2_microkernel_f64() {
    static const MicroKernel<double> k{&avx2_kernel<double, kMR>, &avx2_pack_a<double, kMR>, &avx2_pack_b<double, 8>,
                                       kMR, 8, 72, 256, 512};
    return k;
}

}  // namespace fastdl
