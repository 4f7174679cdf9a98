// naive.hpp — the stage-1 GEMM: a plain loop nest, the always-correct fallback and test oracle.
#pragma once

#include "gemm/gemm.hpp"

namespace fastdl {

// Same contract as gemm(): a is (M, K) [(K, M) if trans_a], b is (K, N) [(N, K) if trans_b], c is (M, N).
template <typename T>
void gemm_naive(index_t M, index_t N, index_t K, const T* a, index_t lda, bool trans_a, const T* b,
                index_t ldb, bool trans_b, T* c, index_t ldc, const GemmEpilogue<T>& epilogue);

}  // namespace fastdl
