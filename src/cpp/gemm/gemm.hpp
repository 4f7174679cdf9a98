// gemm.hpp — the public GEMM of fastdl's C++ kernels and the controls over which microkernel runs.
//
//   c = act(op(a) @ op(b) + bias),  op(a) is (M, K), op(b) is (K, N), c is (M, N), bias is (N,) or null.
//
// Transposes are handled by indexing/packing, never by copying the transposed operand. The K reduction
// is never split across threads, so a result depends only on the kernel chosen, not on the thread count.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/activation_scalar.hpp"
#include "core/common.hpp"

namespace fastdl {

// What the GEMM applies to each finished output tile while it is still in cache.
template <typename T>
struct GemmEpilogue {
    const T* bias = nullptr;             // (N,) or nullptr
    Activation act = Activation::linear;
};

// a is (M, K) with row stride lda, or (K, M) when trans_a; b is (K, N) with row stride ldb, or (N, K)
// when trans_b; c is (M, N) with row stride ldc. Any of M, N, K may be 0.
template <typename T>
void gemm(index_t M, index_t N, index_t K, const T* a, index_t lda, bool trans_a, const T* b, index_t ldb,
          bool trans_b, T* c, index_t ldc, const GemmEpilogue<T>& epilogue = {});

// Names of the kernels this CPU can run: "naive" (the plain stage-1 loop nest), "generic" (packed GEMM
// with the plain C++ reference microkernel), then "avx2" and "avx512" where the CPU has them.
std::vector<std::string> gemm_kernels();
// The kernel gemm() uses now: the forced one, else avx512, avx2 or naive (the first the CPU runs).
std::string selected_gemm_kernel();
// Force one kernel by name (tests, benchmarks); "auto" or "" restores the automatic choice.
void force_gemm_kernel(const std::string& name);
// The CPU features that drive the choice, e.g. {"avx2", true}.
std::vector<std::pair<std::string, bool>> cpu_features();

}  // namespace fastdl
