// ukernel_generic.cpp — the reference microkernel: plain C++ with the same contract as the SIMD ones
// (see microkernel.hpp). Compiled for the baseline ISA; the compiler vectorises the j loops.

#include "gemm/microkernel.hpp"

#include "gemm/pack_panels.hpp"

namespace fastdl {

namespace {

constexpr int kMR = 4;
constexpr int kNR = 8;

// c (M, NR) [+]= A (M, k) @ B (k, NR), the full-width tile: fixed trip counts the compiler vectorises.
template <typename T, int M>
void full_tile(index_t k, const T* a, index_t rs_a, index_t cs_a, const T* b, index_t rs_b, T* c, index_t ldc,
               bool accumulate) {
    T acc[M][kNR] = {};
    for (index_t p = 0; p < k; ++p) {
        T bv[kNR];
#pragma GCC unroll 16
        for (int j = 0; j < kNR; ++j) bv[j] = b[p * rs_b + j];
#pragma GCC unroll 8
        for (int i = 0; i < M; ++i) {
            const T aip = a[i * rs_a + p * cs_a];
#pragma GCC unroll 16
            for (int j = 0; j < kNR; ++j) acc[i][j] += aip * bv[j];
        }
    }
    for (int i = 0; i < M; ++i) {
        T* ci = c + i * ldc;
        for (int j = 0; j < kNR; ++j) ci[j] = accumulate ? ci[j] + acc[i][j] : acc[i][j];
    }
}

// c (mr, nr) [+]= A (mr, k) @ B (k, nr); A(i, p) = a[i * rs_a + p * cs_a], B(p, j) = b[p * rs_b + j]
template <typename T>
void generic_tile(index_t k, const T* a, index_t rs_a, index_t cs_a, const T* b, index_t rs_b, T* c, index_t ldc,
                  index_t mr, index_t nr, bool accumulate) {
    if (mr == kMR && nr == kNR) {
        full_tile<T, kMR>(k, a, rs_a, cs_a, b, rs_b, c, ldc, accumulate);
        return;
    }
    // edge tile: same FMA order per element, with bounds on the rows and columns read
    T acc[kMR][kNR] = {};
    for (index_t p = 0; p < k; ++p) {
        const T* brow = b + p * rs_b;
        for (index_t i = 0; i < mr; ++i) {
            const T aip = a[i * rs_a + p * cs_a];
            for (index_t j = 0; j < nr; ++j) acc[i][j] += aip * brow[j];
        }
    }
    for (index_t i = 0; i < mr; ++i) {
        T* ci = c + i * ldc;
        for (index_t j = 0; j < nr; ++j) ci[j] = accumulate ? ci[j] + acc[i][j] : acc[i][j];
    }
}

// out (kc, MR) <- A (mr, kc)
template <typename T>
void generic_pack_a(index_t kc, index_t mr, const T* a, index_t rs_a, index_t cs_a, T* out) {
    pack_a_panel<T, kMR>(kc, mr, a, rs_a, cs_a, out);
}

// out (kc, NR) <- B (kc, nr)
template <typename T>
void generic_pack_b(index_t kc, index_t nr, const T* b, index_t rs_b, index_t cs_b, T* out) {
    pack_b_panel<T, kNR>(kc, nr, b, rs_b, cs_b, out);
}

}  // namespace

const MicroKernel<float>& generic_microkernel_f32() {
    static const MicroKernel<float> k{&generic_tile<float>, &generic_pack_a<float>, &generic_pack_b<float>, kMR, kNR, 128, 256, 1024};
    return k;
}

const MicroKernel<double>& generic_microkernel_f64() {
    static const MicroKernel<double> k{&generic_tile<double>, &generic_pack_a<double>, &generic_pack_b<double>, kMR,
                                       kNR, 128, 256, 512};
    return k;
}

}  // namespace fastdl
