// cpu_features.hpp — run-time CPU feature queries that pick the GEMM microkernel.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace fastdl {

struct CpuFeatures {
    bool avx2 = false;
    bool fma = false;
    bool avx512f = false;
};

// Queried once (cpuid via __builtin_cpu_supports); all false on non-x86 builds.
const CpuFeatures& cpu();

}  // namespace fastdl
