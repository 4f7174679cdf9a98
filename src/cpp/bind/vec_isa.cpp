// vec_isa.cpp — bind_vec_isa(): which SIMD path (scalar, AVX2 or AVX-512) the softmax, activation and RNN cell
// kernels take, and forcing one for tests (core/vec_math.hpp).
#include <pybind11/pybind11.h>

#include <string>

#include "bind/bind_families.hpp"
#include "core/vec_math.hpp"

namespace fastdl::bind {

namespace py = pybind11;

void bind_vec_isa(py::module_& m) {
    m.def("vec_isa", [] { return std::string(vec_isa_name(active_vec_isa())); },
          "vec_isa() -> str: the SIMD path the softmax and activation kernels take now: 'avx512', 'avx2' or "
          "'scalar'.");
    m.def("force_vec_isa", &force_vec_isa, py::arg("name"),
          "force_vec_isa(name): make the softmax and activation kernels take the 'scalar', 'avx2' or 'avx512' "
          "path (ValueError if this CPU cannot run it); 'auto' restores the best one. For tests.");
}

}  // namespace fastdl::bind
