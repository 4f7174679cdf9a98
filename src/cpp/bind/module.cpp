// module.cpp — PYBIND11_MODULE(_core): one registration call per kernel family (the other files of this folder),
// and the machine's facts (which GEMM microkernel runs, the CPU features that chose it).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bind/families.hpp"
#include "core/cpu_features.hpp"
#include "gemm/gemm.hpp"

namespace py = pybind11;

namespace fastdl {

void bind_machine(py::module_& m) {
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
            for (const auto& kv : cpu_features()) d[py::str(kv.first)] = kv.second;
            return d;
        },
        "The CPU features that pick the GEMM microkernel, as {name: bool}.");
}

}  // namespace fastdl

PYBIND11_MODULE(_core, m) {
    m.doc() = "fastdl._core: compiled CPU kernels (packed GEMM with fused epilogues, Dense forward/backward, "
              "im2col and Winograd convolution, fused softmax cross-entropy, vectorised activations, dropout, "
              "RNN/LSTM/GRU sequences), all on one thread pool.";
    fastdl::bind_linear(m);
    fastdl::bind_machine(m);
    fastdl::bind_threads(m);
    fastdl::bind_conv(m);
    fastdl::bind_rnn(m);
    fastdl::bind_softmax_cross_entropy(m);
    fastdl::bind_activations(m);
    fastdl::bind_dropout(m);
}
