// matmul.cpp — bind_matmul(): matmul (op(a) @ op(b) on the packed GEMM) and the controls over which GEMM
// kernel runs.
#include <pybind11/stl.h>

#include <string>

#include "bind/array_checks.hpp"
#include "bind/bind_families.hpp"
#include "gemm/gemm.hpp"

namespace fastdl::bind {
namespace {

template <typename T>
carray<T> matmul(const carray<T>& a, const carray<T>& b, bool trans_a, bool trans_b) {
    // a is (M, K) or (K, M) when trans_a; b is (K, N) or (N, K) when trans_b -> c (M, N)
    require_ndim("matmul", "a", a, 2);
    require_ndim("matmul", "b", b, 2);
    const index_t M = trans_a ? a.shape(1) : a.shape(0);
    const index_t K = trans_a ? a.shape(0) : a.shape(1);
    const index_t Kb = trans_b ? b.shape(1) : b.shape(0);
    const index_t N = trans_b ? b.shape(0) : b.shape(1);
    require(K == Kb, [&] {
        return "matmul: inner dimensions differ: op(a) is (" + std::to_string(M) + ", " + std::to_string(K) +
               "), op(b) is (" + std::to_string(Kb) + ", " + std::to_string(N) + ")";
    });
    carray<T> c({M, N});
    const T* pa = a.data();
    const T* pb = b.data();
    T* pc = c.mutable_data();
    const index_t lda = a.shape(1), ldb = b.shape(1);
    without_gil([&] { gemm<T>(M, N, K, pa, lda, trans_a, pb, ldb, trans_b, pc, N); });
    return c;
}

template <typename T>
void bind_matmul_dtype(py::module_& m, const char* dtype) {
    const std::string suffix = std::string(" (") + dtype + " overload)";
    m.def("matmul", &matmul<T>, py::arg("a").noconvert(), py::arg("b").noconvert(), py::arg("trans_a") = false,
          py::arg("trans_b") = false,
          ("op(a) @ op(b) where op transposes when its flag is set. a is (M, K) or (K, M) when trans_a; b is "
           "(K, N) or (N, K) when trans_b; returns a new (M, N) array. Arrays must be C-contiguous and of one "
           "dtype" + suffix + ".").c_str());
}

}  // namespace

void bind_matmul(py::module_& m) {
    bind_matmul_dtype<float>(m, "float32");
    bind_matmul_dtype<double>(m, "float64");
    m.def("gemm_kernels", &gemm_kernels,
          "Names of the GEMM kernels this CPU can run: 'naive' (plain loop nest), 'generic' (packed GEMM with the "
          "plain C++ reference microkernel), then 'avx2' and 'avx512' where the CPU supports them.");
    m.def("selected_gemm_kernel", &selected_gemm_kernel,
          "Name of the GEMM kernel in use: the forced one, else 'avx512', 'avx2' or 'naive' (the first this CPU "
          "runs).");
    m.def("force_gemm_kernel", &force_gemm_kernel, py::arg("name"),
          "Force the GEMM kernel by name (for tests and benchmarks); 'auto' restores the automatic choice. "
          "Raises ValueError for an unknown kernel or one this CPU cannot run.");
    m.def(
        "cpu_features",
        []() {
            py::dict d;
            for (const auto& kv : fastdl::cpu_features()) d[py::str(kv.first)] = kv.second;
            return d;
        },
        "The CPU features that pick the GEMM microkernel, as {name: bool}.");
}

}  // namespace fastdl::bind
