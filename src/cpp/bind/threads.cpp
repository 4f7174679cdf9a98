// threads.cpp — bind_threads(): the thread count and the pool's test hooks for Python, and a plain C entry point pair
// (fastdl_get_num_threads / fastdl_set_num_threads) through which threadpoolctl's controller for fastdl
// (fastdl/cpu/threadpoolctl_controller.py) finds and sets the pool, as it does for OpenBLAS or OpenMP.
#include <pybind11/pybind11.h>

#include "bind/bind_families.hpp"
#include "core/thread_pool.hpp"

extern "C" {
__attribute__((visibility("default"))) int fastdl_get_num_threads() { return fastdl::get_num_threads(); }
// Ignores n < 1 or above the maximum (threadpoolctl checks its limits itself; a C caller gets no exception).
__attribute__((visibility("default"))) void fastdl_set_num_threads(int n) {
    if (n >= 1 && n <= fastdl::kMaxThreads) fastdl::set_num_threads(n);
}
}

namespace fastdl::bind {

namespace py = pybind11;

void bind_threads(py::module_& m) {
    m.def("set_num_threads", &set_num_threads, py::arg("n"),
          "Use n threads (1 <= n <= 256) in fastdl's C++ kernels. The default is OMP_NUM_THREADS, else the "
          "CPUs this process may run on.");
    m.def("get_num_threads", &get_num_threads, "Number of threads fastdl's C++ kernels use.");
    m.def("_set_worker_delay_us", &set_worker_delay_us, py::arg("us"),
          "Test hook: pool worker 1 sleeps this many microseconds each time it wakes for a call, before it claims "
          "any work (0 turns it off). Results must not change and calls must not wait for it.");
    m.def("_set_spin_us", &set_spin_us, py::arg("us"),
          "Tuning hook: the longest an idle pool worker spins for the next call, in microseconds (it sleeps at "
          "once while another thread of the process wants a core).");
    m.def("_get_spin_us", &get_spin_us, "The longest an idle pool worker spins before it sleeps, in microseconds.");
}

}  // namespace fastdl::bind
