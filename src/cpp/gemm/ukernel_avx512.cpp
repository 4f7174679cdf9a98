// ukernel_avx512.cpp — AVX-512F microkernels (contract in microkernel.hpp): the register tile of
// ukernel_tile.hpp over zmm registers.
//
// Register tile: MR rows x NR = 2 vectors (float 12 x 32, or 8 x 32 for the few products that 8-row tiles cover
// better; double 8 x 16): 24 or 16 zmm accumulators. Partial columns use AVX-512 masks. Everything between
// push_options and pop_options is compiled for target("avx512f,avx2,fma"), so this file builds with baseline
// flags and only runs when the CPU has AVX-512.

#include <immintrin.h>

#include "core/transpose_avx.hpp"
#include "gemm/microkernel.hpp"
#include "gemm/pack_panels.hpp"

#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")

namespace fastdl {
namespace {

// The low `count` lanes of a mask of `lanes` bits (count clamped to [0, lanes]).
template <typename Mask, int lanes>
Mask low_lanes(index_t count) {
    if (count <= 0) return 0;
    if (count >= lanes) return static_cast<Mask>((1u << lanes) - 1u);
    return static_cast<Mask>((1u << count) - 1u);
}

// One zmm of T, with the handful of operations the microkernel needs.
template <typename T>
struct Zmm;

template <>
struct Zmm<float> {
    using V = __m512;
    using Mask = __mmask16;
    static constexpr int lanes = 16;
    static Mask mask(index_t count) { return low_lanes<Mask, lanes>(count); }
    static V zero() { return _mm512_setzero_ps(); }
    static V load(const float* p) { return _mm512_loadu_ps(p); }
    static V load(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
    static V broadcast(const float* p) { return _mm512_set1_ps(*p); }
    static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
    static V add(V a, V b) { return _mm512_add_ps(a, b); }
    static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
    static void store(float* p, V v, Mask m) { _mm512_mask_storeu_ps(p, m, v); }
};

template <>
struct Zmm<double> {
    using V = __m512d;
    using Mask = __mmask8;
    static constexpr int lanes = 8;
    static Mask mask(index_t count) { return low_lanes<Mask, lanes>(count); }
    static V zero() { return _mm512_setzero_pd(); }
    static V load(const double* p) { return _mm512_loadu_pd(p); }
    static V load(const double* p, Mask m) { return _mm512_maskz_loadu_pd(m, p); }
    static V broadcast(const double* p) { return _mm512_set1_pd(*p); }
    static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
    static V add(V a, V b) { return _mm512_add_pd(a, b); }
    static void store(double* p, V v) { _mm512_storeu_pd(p, v); }
    static void store(double* p, V v, Mask m) { _mm512_mask_storeu_pd(p, m, v); }
};

}  // namespace
}  // namespace fastdl

#include "gemm/ukernel_tile.hpp"

#pragma GCC pop_options

namespace fastdl {

namespace {
constexpr int kMR32 = 12;       // 12 x 32 floats: 24 accumulators, 24 FMAs per 14 loads
constexpr int kMR32Short = 8;   // 8 x 32 floats: 16 accumulators
constexpr int kMR64 = 8;        // 8 x 16 doubles: 16 accumulators
}  // namespace

// Blocking (MC, KC, NC). The 12-row float tile takes KC = 384: fewer passes over c, whose rows 4 KiB apart share
// L1 sets (1024^3 on a Sapphire Rapids-class Xeon, paired runs: 0.97 -> 1.01 of NumPy's speed; KC 192 0.96,
// 512 no better).

const MicroKernel<float>& avx512_microkernel_f32() {
    static const MicroKernel<float> k{&register_tile_kernel<Zmm, float, kMR32>, &pack_a_for_isa<float, kMR32>,
                                      &pack_b_for_isa<float, 32>, kMR32, 32, 192, 384, 1024};
    return k;
}

const MicroKernel<float>& avx512_microkernel_f32_8_rows() {
    static const MicroKernel<float> k{&register_tile_kernel<Zmm, float, kMR32Short>,
                                      &pack_a_for_isa<float, kMR32Short>, &pack_b_for_isa<float, 32>, kMR32Short,
                                      32, 192, 256, 1024};
    return k;
}

const MicroKernel<double>& avx512_microkernel_f64() {
    static const MicroKernel<double> k{&register_tile_kernel<Zmm, double, kMR64>, &pack_a_for_isa<double, kMR64>,
                                       &pack_b_for_isa<double, 16>, kMR64, 16, 96, 256, 512};
    return k;
}

}  // namespace fastdl
