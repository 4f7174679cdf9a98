// ukernel_avx512.cpp — AVX-512F microkernels (contract in microkernel.hpp).
//
// Register tile: MR rows x NR = 2 vectors (32 floats / 16 doubles). Per k step: two B vector loads,
// MR broadcasts of A, 2*MR FMAs into 2*MR zmm accumulators. Partial columns use AVX-512 masks,
// partial rows a smaller-MR instance of the same template. Every function carries
// target("avx512f"), so this file builds with baseline flags and only runs when the CPU has AVX-512.

#include <immintrin.h>

#include "gemm/pack_panels.hpp"
#include "core/transpose_avx.hpp"
#include "gemm/microkernel.hpp"

namespace fastdl {

namespace {

#define FASTDL_AVX512 __attribute__((target("avx512f,avx2,fma")))

// One zmm of T, with the handful of operations the microkernel needs.
template <typename T>
struct Zmm;

template <>
struct Zmm<float> {
    using V = __m512;
    using Mask = __mmask16;
    static constexpr int lanes = 16;
    FASTDL_AVX512 static V zero() { return _mm512_setzero_ps(); }
    FASTDL_AVX512 static V load(const float* p) { return _mm512_loadu_ps(p); }
    FASTDL_AVX512 static V load(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
    FASTDL_AVX512 static V broadcast(const float* p) { return _mm512_set1_ps(*p); }
    FASTDL_AVX512 static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
    FASTDL_AVX512 static V add(V a, V b) { return _mm512_add_ps(a, b); }
    FASTDL_AVX512 static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
    FASTDL_AVX512 static void store(float* p, V v, Mask m) { _mm512_mask_storeu_ps(p, m, v); }
};

template <>
struct Zmm<double> {
    using V = __m512d;
    using Mask = __mmask8;
    static constexpr int lanes = 8;
    FASTDL_AVX512 static V zero() { return _mm512_setzero_pd(); }
    FASTDL_AVX512 static V load(const double* p) { return _mm512_loadu_pd(p); }
    FASTDL_AVX512 static V load(const double* p, Mask m) { return _mm512_maskz_loadu_pd(m, p); }
    FASTDL_AVX512 static V broadcast(const double* p) { return _mm512_set1_pd(*p); }
    FASTDL_AVX512 static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
    FASTDL_AVX512 static V add(V a, V b) { return _mm512_add_pd(a, b); }
    FASTDL_AVX512 static void store(double* p, V v) { _mm512_storeu_pd(p, v); }
    FASTDL_AVX512 static void store(double* p, V v, Mask m) { _mm512_mask_storeu_pd(p, m, v); }
};

template <typename T>
typename Zmm<T>::Mask lane_mask(index_t count) {
    // the low `count` lanes (count clamped to [0, lanes])
    constexpr int lanes = Zmm<T>::lanes;
    if (count <= 0) return 0;
    if (count >= lanes) return static_cast<typename Zmm<T>::Mask>((1u << lanes) - 1u);
    return static_cast<typename Zmm<T>::Mask>((1u << count) - 1u);
}

// c (M, nr) [+]= A (M, k) @ B (k, nr), nr <= 2 * lanes. FULL: nr == 2 * lanes (no masks).
// PACKED_MR > 0: A is packed with rs_a = 1, cs_a = PACKED_MR (compile-time strides).
template <typename T, int M, bool FULL, int PACKED_MR>
FASTDL_AVX512 void tile(index_t k, const T* a, index_t rs_a, index_t cs_a, const T* b, index_t rs_b, T* c,
                        index_t ldc, index_t nr, bool accumulate) {
    using Z = Zmm<T>;
    using V = typename Z::V;
    constexpr int L = Z::lanes;
    if constexpr (PACKED_MR > 0) {
        rs_a = 1;
        cs_a = PACKED_MR;
    }
    const typename Z::Mask m0 = lane_mask<T>(nr);
    const typename Z::Mask m1 = lane_mask<T>(nr - L);
    V acc0[M], acc1[M];
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i) {
        acc0[i] = Z::zero();
        acc1[i] = Z::zero();
    }
#pragma GCC unroll 2
    for (index_t p = 0; p < k; ++p) {
        const V b0 = FULL ? Z::load(b) : Z::load(b, m0);
        const V b1 = FULL ? Z::load(b + L) : Z::load(b + L, m1);
#pragma GCC unroll 16
        for (int i = 0; i < M; ++i) {
            const V ai = Z::broadcast(a + i * rs_a);
            acc0[i] = Z::fma(ai, b0, acc0[i]);
            acc1[i] = Z::fma(ai, b1, acc1[i]);
        }
        a += cs_a;
        b += rs_b;
    }
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i) {
        T* ci = c + i * ldc;
        if (FULL) {
            if (accumulate) {
                acc0[i] = Z::add(Z::load(ci), acc0[i]);
                acc1[i] = Z::add(Z::load(ci + L), acc1[i]);
            }
            Z::store(ci, acc0[i]);
            Z::store(ci + L, acc1[i]);
        } else {
            if (accumulate) {
                acc0[i] = Z::add(Z::load(ci, m0), acc0[i]);
                acc1[i] = Z::add(Z::load(ci + L, m1), acc1[i]);
            }
            Z::store(ci, acc0[i], m0);
            Z::store(ci + L, acc1[i], m1);
        }
    }
}

// Dispatch on the edge row count mr (1..M) and on full/partial columns.
template <typename T, int MR, int M>
FASTDL_AVX512 void tile_rows(index_t k, const T* a, index_t rs_a, index_t cs_a, const T* b, index_t rs_b, T* c,
                             index_t ldc, index_t mr, index_t nr, bool accumulate) {
    if (mr == M) {
        const bool packed = rs_a == 1 && cs_a == MR;
        const bool full = nr == 2 * Zmm<T>::lanes;
        if (packed && full) tile<T, M, true, MR>(k, a, rs_a, cs_a, b, rs_b, c, ldc, nr, accumulate);
        else if (packed) tile<T, M, false, MR>(k, a, rs_a, cs_a, b, rs_b, c, ldc, nr, accumulate);
        else if (full) tile<T, M, true, 0>(k, a, rs_a, cs_a, b, rs_b, c, ldc, nr, accumulate);
        else tile<T, M, false, 0>(k, a, rs_a, cs_a, b, rs_b, c, ldc, nr, accumulate);
        return;
    }
    if constexpr (M > 1) tile_rows<T, MR, M - 1>(k, a, rs_a, cs_a, b, rs_b, c, ldc, mr, nr, accumulate);
}

template <typename T, int MR>
FASTDL_AVX512 void avx512_kernel(index_t k, const T* a, index_t rs_a, index_t cs_a, const T* b, index_t rs_b, T* c,
                                 index_t ldc, index_t mr, index_t nr, bool accumulate) {
    // a: A (mr, k), b: B (k, nr), c: (mr, nr); see microkernel.hpp
    tile_rows<T, MR, MR>(k, a, rs_a, cs_a, b, rs_b, c, ldc, mr, nr, accumulate);
}

// out (kc, MR) <- A (mr, kc); out (kc, NR) <- B (kc, nr): the shared packing loops, vectorised for this ISA.
template <typename T, int MR>
FASTDL_AVX512 void avx512_pack_a(index_t kc, index_t mr, const T* a, index_t rs_a, index_t cs_a, T* out) {
    pack_a_panel<T, MR>(kc, mr, a, rs_a, cs_a, out);
}

template <typename T, int NR>
FASTDL_AVX512 void avx512_pack_b(index_t kc, index_t nr, const T* b, index_t rs_b, index_t cs_b, T* out) {
    if (nr == NR && rs_b == 1) {
        pack_b_panel_transposed<T, NR>(kc, b, cs_b, out);
        return;
    }
    pack_b_panel<T, NR>(kc, nr, b, rs_b, cs_b, out);
}

#undef FASTDL_AVX512

constexpr int kMR32 = 8;  // 8 x 32 floats: 16 accumulators
constexpr int kMR64 = 8;  // 8 x 16 doubles: 16 accumulators

}  // namespace

const MicroKernel<float>& avx512_microkernel_f32() {
    static const MicroKernel<float> k{&avx512_kernel<float, kMR32>, &avx512_pack_a<float, kMR32>,
                                      &avx512_pack_b<float, 32>, kMR32, 32, 192, 256, 1024};
    return k;
}

const MicroKernel<double>& avx512_microkernel_f64() {
    static const MicroKernel<double> k{&avx512_kernel<double, kMR64>, &avx512_pack_a<double, kMR64>,
                                       &avx512_pack_b<double, 16>, kMR64, 16, 96, 256, 512};
    return k;
}

}  // namespace fastdl
