// gemm.cpp — the GEMM entry point: degenerate shapes, kernel choice (forced or from CPU features),
// narrow results to the narrow kernel, and dispatch to the chosen kernel.

#include "gemm/gemm.hpp"

#include <atomic>
#include <type_traits>

#include "core/cpu_features.hpp"
#include "gemm/blocked.hpp"
#include "gemm/epilogue.hpp"
#include "gemm/naive.hpp"
#include "gemm/narrow.hpp"
#include "gemm/microkernel.hpp"

namespace fastdl {

namespace {

// Every GEMM kernel, slowest first.
enum class Kernel : int { naive = 0, generic = 1, avx2 = 2, avx512 = 3 };
const char* const kKernelNames[] = {"naive", "generic", "avx2", "avx512"};
constexpr int kKernelCount = 4;

// FASTDL_X86_KERNELS: the AVX2 / AVX-512 microkernel files are compiled in (x86-64 builds; see CMakeLists.txt).
#if defined(FASTDL_X86_KERNELS)
constexpr bool kX86Kernels = true;
#else
constexpr bool kX86Kernels = false;
#endif

bool kernel_available(int id) {
    switch (static_cast<Kernel>(id)) {
        case Kernel::avx2: return kX86Kernels && cpu().avx2 && cpu().fma;
        case Kernel::avx512: return kX86Kernels && cpu().avx512f;
        default: return true;
    }
}

// The microkernel (and its cache blocking) behind each packed kernel.
template <typename T>
const MicroKernel<T>& microkernel_for(Kernel kernel);

template <>
const MicroKernel<float>& microkernel_for<float>(Kernel kernel) {
    switch (kernel) {
#if defined(FASTDL_X86_KERNELS)
        case Kernel::avx512: return avx512_microkernel_f32();
        case Kernel::avx2: return avx2_microkernel_f32();
#endif
        default: return generic_microkernel_f32();
    }
}

template <>
const MicroKernel<double>& microkernel_for<double>(Kernel kernel) {
    switch (kernel) {
#if defined(FASTDL_X86_KERNELS)
        case Kernel::avx512: return avx512_microkernel_f64();
        case Kernel::avx2: return avx2_microkernel_f64();
#endif
        default: return generic_microkernel_f64();
    }
}

// The kernel's microkernel for a product of M rows. The AVX-512 float tile is 12 rows tall; a product of at most
// 128 rows that 8-row tiles cover exactly and 12-row tiles do not (64 rows: five tiles of 12 and one of 4, whose
// 4-row tile runs at half speed and leaves the two threads' row ranges uneven) takes the 8-row tile instead.
// Every element is the same FMA chain in either tile, so the choice never changes a result.
template <typename T>
const MicroKernel<T>& microkernel_for_rows(Kernel kernel, index_t M) {
#if defined(FASTDL_X86_KERNELS)
    if constexpr (std::is_same_v<T, float>) {
        if (kernel == Kernel::avx512 && M <= 128 && M % 8 == 0 && M % 12 != 0) return avx512_microkernel_f32_8_rows();
    }
#endif
    (void)M;
    return microkernel_for<T>(kernel);
}

std::atomic<int>& forced_kernel() {
    static std::atomic<int> forced{-1};  // -1: automatic choice
    return forced;
}

// The automatic choice: the widest SIMD microkernel the CPU runs. Without AVX2 the plain loop nest
// ("naive", which the compiler vectorises along N) beats the packed path with the scalar reference
// microkernel ("generic", kept as the reference implementation of the microkernel contract).
int best_kernel() {
    if (kernel_available(static_cast<int>(Kernel::avx512))) return static_cast<int>(Kernel::avx512);
    if (kernel_available(static_cast<int>(Kernel::avx2))) return static_cast<int>(Kernel::avx2);
    return static_cast<int>(Kernel::naive);
}

int active_kernel() {
    int forced = forced_kernel().load();
    return forced >= 0 ? forced : best_kernel();
}

}  // namespace

std::vector<std::string> gemm_kernels() {
    std::vector<std::string> names;
    for (int id = 0; id < kKernelCount; ++id)
        if (kernel_available(id)) names.emplace_back(kKernelNames[id]);
    return names;
}

std::string selected_gemm_kernel() { return kKernelNames[active_kernel()]; }

void force_gemm_kernel(const std::string& name) {
    if (name.empty() || name == "auto") {
        forced_kernel().store(-1);
        return;
    }
    for (int id = 0; id < kKernelCount; ++id) {
        if (name == kKernelNames[id]) {
            require(kernel_available(id), "force_gemm_kernel: kernel '" + name + "' is not supported by this CPU");
            forced_kernel().store(id);
            return;
        }
    }
    std::string known;
    for (int id = 0; id < kKernelCount; ++id) known += std::string(id ? ", " : "") + kKernelNames[id];
    throw std::invalid_argument("force_gemm_kernel: unknown kernel '" + name + "' (known: auto, " + known + ")");
}

std::vector<std::pair<std::string, bool>> cpu_features() {
    const CpuFeatures& f = cpu();
    return {{"avx2", f.avx2}, {"fma", f.fma}, {"avx512f", f.avx512f}};
}

template <typename T>
const MicroKernel<T>* active_microkernel() {
    const Kernel kernel = static_cast<Kernel>(active_kernel());
    return kernel == Kernel::naive ? nullptr : &microkernel_for<T>(kernel);
}

template <typename T>
const MicroKernel<T>* microkernel_for_columns(index_t N) {
    const Kernel kernel = static_cast<Kernel>(active_kernel());
    if (kernel == Kernel::avx512 && N <= microkernel_for<T>(Kernel::avx2).nr && kernel_available(int(Kernel::avx2)))
        return &microkernel_for<T>(Kernel::avx2);
    return active_microkernel<T>();
}

// Whether the narrow kernel computes an (M, N) result over K: up to one vector of columns from 2^15 rows x
// depth on, and down to 2^12 when the result is at most 40 bytes wide (10 floats, 5 doubles; there the
// register tile of the blocked kernel idles on most of its 32 or 16 columns). Never for K < 16, where the
// blocked kernel is 1.3-7x faster. (Measured on a Sapphire Rapids-class Xeon; 60 x 89 x 10 1.4-2x faster.)
template <typename T>
bool takes_narrow(index_t M, index_t N, index_t K) {
    if (N > narrow_max_columns<T>() || K < 16) return false;
    return M * K >= (index_t(1) << 15) || (M * K >= (index_t(1) << 12) && N * index_t(sizeof(T)) <= 40);
}

template <typename T>
void gemm(index_t M, index_t N, index_t K, const T* a, index_t lda, bool trans_a, const T* b, index_t ldb,
          bool trans_b, T* c, index_t ldc, const GemmEpilogue<T>& epilogue) {
    // a is (M, K) [(K, M) if trans_a], b is (K, N) [(N, K) if trans_b], c is (M, N)
    require(M >= 0 && N >= 0 && K >= 0, "gemm: negative dimension");
    if (M == 0 || N == 0) return;
    if (K == 0) {  // empty reduction: c = act(0 + bias)
        for (index_t i = 0; i < M; ++i)
            for (index_t j = 0; j < N; ++j) c[i * ldc + j] = T(0);
        apply_epilogue(c, ldc, M, N, epilogue.bias, epilogue.act);
        return;
    }
    const Kernel kernel = static_cast<Kernel>(active_kernel());
    if (kernel == Kernel::naive) {
        gemm_naive(M, N, K, a, lda, trans_a, b, ldb, trans_b, c, ldc, epilogue);
        return;
    }
    if (kernel != Kernel::generic && takes_narrow<T>(M, N, K)) {
        gemm_narrow(kernel == Kernel::avx512, M, N, K, a, lda, trans_a, b, ldb, trans_b, c, ldc, epilogue);
        return;
    }
    gemm_blocked(microkernel_for_rows<T>(kernel, M), M, N, K, a, lda, trans_a, b, ldb, trans_b, c, ldc, epilogue);
}

template const MicroKernel<float>* active_microkernel<float>();
template const MicroKernel<double>* active_microkernel<double>();
template const MicroKernel<float>* microkernel_for_columns<float>(index_t);
template const MicroKernel<double>* microkernel_for_columns<double>(index_t);
template void gemm<float>(index_t, index_t, index_t, const float*, index_t, bool, const float*, index_t, bool,
                          float*, index_t, const GemmEpilogue<float>&);
template void gemm<double>(index_t, index_t, index_t, const double*, index_t, bool, const double*, index_t,
                           bool, double*, index_t, const GemmEpilogue<double>&);

}  // namespace fastdl
