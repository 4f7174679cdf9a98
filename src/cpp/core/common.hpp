// common.hpp — shared helpers for the fastdl C++ kernels: the index type, input checks, and how many
// threads and tasks a loop gets (thread_pool.hpp runs them).
#pragma once

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

#include "core/thread_pool.hpp"

namespace fastdl {

// All index arithmetic is 64-bit: M * K overflows 32 bits long before memory runs out.
using index_t = std::int64_t;

// Throws std::invalid_argument (the Python bindings turn it into ValueError) when `ok` is false.
inline void require(bool ok, const std::string& message) {
    if (!ok) throw std::invalid_argument(message);
}

// The same for a fixed message (no string is made unless the check fails).
inline void require(bool ok, const char* message) {
    if (!ok) throw std::invalid_argument(message);
}

// The same, with the message built by make_message() only when the check fails: for the checks a binding
// makes on every call, where building the text each time would cost more than the check.
template <class MakeMessage, class = decltype(std::string(std::declval<MakeMessage&>()()))>
inline void require(bool ok, MakeMessage make_message) {
    if (!ok) throw std::invalid_argument(make_message());
}

inline index_t ceil_div(index_t a, index_t b) { return (a + b - 1) / b; }

// Threads worth using for `work` units when one thread should get at least `min_work` of them.
inline int threads_for(index_t work, index_t min_work) {
    index_t useful = std::max<index_t>(1, work / std::max<index_t>(1, min_work));
    return static_cast<int>(std::min<index_t>(get_num_threads(), useful));
}

// Tasks per thread for loops whose results do not depend on how they are split (elementwise passes, rows,
// tiles of c): more than one, so that a thread that finishes early takes over the work of one that the OS
// has parked, instead of waiting for it.
constexpr index_t kTasksPerThread = 4;

// body(lo, hi) on [0, n) cut into ranges of whole `step`s, `per_thread` ranges per thread of nt.
template <class Body>
void parallel_ranges(index_t n, index_t step, int nt, index_t per_thread, Body body) {
    if (n <= 0) return;
    const index_t steps = ceil_div(n, step);
    const index_t pieces = std::min<index_t>(steps, nt > 1 ? nt * per_thread : 1);
    parallel_for(pieces, nt, [&](index_t t) {
        const index_t lo = std::min(n, steps * t / pieces * step), hi = std::min(n, steps * (t + 1) / pieces * step);
        if (lo < hi) body(lo, hi);
    });
}

// body(lo, hi) on contiguous, 64-element aligned chunks [lo, hi) covering [0, n), with one thread per
// `min_per_thread` elements at most (elementwise kernels: chunk boundaries never change a result).
template <class Body>
void parallel_chunks(index_t n, index_t min_per_thread, Body body) {
    parallel_ranges(n, 64, threads_for(n, min_per_thread), kTasksPerThread, body);
}

}  // namespace fastdl
