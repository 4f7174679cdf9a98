// common.hpp — shared helpers for the fastdl C++ kernels: the index type, input checks, and the
// process-wide thread count that fastdl's own OpenMP loops use.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>

#ifdef FASTDL_OPENMP
#include <omp.h>
#endif

namespace fastdl {

// All index arithmetic is 64-bit: M * K overflows 32 bits long before memory runs out.
using index_t = std::int64_t;

// Throws std::invalid_argument (pybind11 turns it into ValueError) when `ok` is false.
inline void require(bool ok, const std::string& message) {
    if (!ok) throw std::invalid_argument(message);
}

inline index_t ceil_div(index_t a, index_t b) { return (a + b - 1) / b; }

// ---------------------------------------------------------------------------------------------
// Thread count. 0 means "not set yet": the first query takes OpenMP's default (OMP_NUM_THREADS).
// ---------------------------------------------------------------------------------------------
inline std::atomic<int>& thread_count_state() {
    static std::atomic<int> state{0};
    return state;
}

inline int get_num_threads() {
    int n = thread_count_state().load();
    if (n > 0) return n;
#ifdef FASTDL_OPENMP
    return std::max(1, omp_get_max_threads());
#else
    return 1;
#endif
}

inline void set_num_threads(int n) {
    require(n >= 1, "set_num_threads: n must be >= 1, got " + std::to_string(n));
    thread_count_state().store(n);
}

// Threads worth using for `work` units when one thread should get at least `min_work` of them.
inline int threads_for(index_t work, index_t min_work) {
    index_t useful = std::max<index_t>(1, work / std::max<index_t>(1, min_work));
    return static_cast<int>(std::min<index_t>(get_num_threads(), useful));
}

// body(lo, hi) on one contiguous, 64-element aligned chunk [lo, hi) of [0, n) per thread, with one thread per
// `min_per_thread` elements at most (elementwise kernels: chunk boundaries never change a result).
template <class Body>
void parallel_chunks(index_t n, index_t min_per_thread, Body body) {
    const int nt = threads_for(n, min_per_thread);
    const index_t chunk = ceil_div(ceil_div(n, nt), 64) * 64;
#ifdef FASTDL_OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int t = 0; t < nt; ++t) {
        const index_t lo = std::min(n, chunk * t), hi = std::min(n, chunk * (t + 1));
        if (lo < hi) body(lo, hi);
    }
}

}  // namespace fastdl
