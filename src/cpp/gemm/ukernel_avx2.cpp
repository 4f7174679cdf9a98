// ukernel_avx2.cpp — AVX2 + FMA microkernels (contract in microkernel.hpp): the register tile of
// ukernel_tile.hpp over ymm registers.
//
// Register tile: MR = 6 rows x NR = 2 vectors (16 floats / 8 doubles): 12 ymm accumulators, 2 B vectors
// and one broadcast use 15 of the 16 ymm registers. Partial columns use vmaskmov. Everything between
// push_options and pop_options is compiled for target("avx2,fma"), so this file builds with baseline flags
// and only runs when the CPU has AVX2 and FMA.

#include <immintrin.h>

#include "core/transpose_avx.hpp"
#include "gemm/microkernel.hpp"
#include "gemm/pack_panels.hpp"

#pragma GCC push_options
#pragma GCC target("avx2,fma")

namespace fastdl {
namespace {

// One ymm of T, with the handful of operations the microkernel needs.
template <typename T>
struct Ymm;

template <>
struct Ymm<float> {
    using V = __m256;
    using Mask = __m256i;
    static constexpr int lanes = 8;
    static Mask mask(index_t count) {  // lanes [0, count) set
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)), lane);
    }
    static V zero() { return _mm256_setzero_ps(); }
    static V load(const float* p) { return _mm256_loadu_ps(p); }
    static V load(const float* p, Mask m) { return _mm256_maskload_ps(p, m); }
    static V broadcast(const float* p) { return _mm256_broadcast_ss(p); }
    static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
    static V add(V a, V b) { return _mm256_add_ps(a, b); }
    static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
    static void store(float* p, V v, Mask m) { _mm256_maskstore_ps(p, m, v); }
};

template <>
struct Ymm<double> {
    using V = __m256d;
    using Mask = __m256i;
    static constexpr int lanes = 4;
    static Mask mask(index_t count) {  // lanes [0, count) set
        const __m256i lane = _mm256_setr_epi64x(0, 1, 2, 3);
        return _mm256_cmpgt_epi64(_mm256_set1_epi64x(count), lane);
    }
    static V zero() { return _mm256_setzero_pd(); }
    static V load(const double* p) { return _mm256_loadu_pd(p); }
    static V load(const double* p, Mask m) { return _mm256_maskload_pd(p, m); }
    static V broadcast(const double* p) { return _mm256_broadcast_sd(p); }
    static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
    static V add(V a, V b) { return _mm256_add_pd(a, b); }
    static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
    static void store(double* p, V v, Mask m) { _mm256_maskstore_pd(p, m, v); }
};

}  // namespace
}  // namespace fastdl

#include "gemm/ukernel_tile.hpp"

#pragma GCC pop_options

namespace fastdl {

namespace {
constexpr int kMR = 6;
}  // namespace

const MicroKernel<float>& avx2_microkernel_f32() {
    static const MicroKernel<float> k{&register_tile_kernel<Ymm, float, kMR>, &pack_a_for_isa<float, kMR>,
                                      &pack_b_for_isa<float, 16>, kMR, 16, 144, 256, 1024};
    return k;
}

const MicroKernel<double>& avx2_microkernel_f64() {
    static const MicroKernel<double> k{&register_tile_kernel<Ymm, double, kMR>, &pack_a_for_isa<double, kMR>,
                                       &pack_b_for_isa<double, 8>, kMR, 8, 72, 256, 512};
    return k;
}

}  // namespace fastdl
