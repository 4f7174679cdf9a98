// narrow.hpp — GEMM for narrow results (at most one SIMD register of columns, e.g. a 10-class output
// layer): each row of c is one short vector accumulated over all of K, so no register-tile padding is
// wasted and nothing but B (a few columns) is copied.
#pragma once

#include "gemm/gemm.hpp"

namespace fastdl {

// The widest N the narrow kernel takes for T: 16 floats or 8 doubles (one 512-bit register).
template <typename T>
constexpr index_t narrow_max_columns() {
    return index_t(64 / sizeof(T));
}

// Same contract as gemm(), for 1 <= N <= narrow_max_columns<T>() and K >= 1; `avx512` picks the AVX-512
// build of the kernel, else the AVX2 + FMA one (call only on a CPU that has it). Rows are split over
// threads and each element sums K in order, so the result does not depend on the thread count.
template <typename T>
void gemm_narrow(bool avx512, index_t M, index_t N, index_t K, const T* a, index_t lda, bool trans_a, const T* b,
                 index_t ldb, bool trans_b, T* c, index_t ldc, const GemmEpilogue<T>& epilogue);

}  // namespace fastdl
