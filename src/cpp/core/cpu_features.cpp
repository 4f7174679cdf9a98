// cpu_features.cpp — cpuid-backed feature flags, read once per process.

#include "core/cpu_features.hpp"

namespace fastdl {

namespace {
CpuFeatures detect() {
    CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    f.avx2 = __builtin_cpu_supports("avx2");
    f.fma = __builtin_cpu_supports("fma");
    f.avx512f = __builtin_cpu_supports("avx512f");
#endif
    return f;
}
}  // namespace

const CpuFeatures& cpu() {
    static const CpuFeatures features = detect();
    return features;
}

}  // namespace fastdl
