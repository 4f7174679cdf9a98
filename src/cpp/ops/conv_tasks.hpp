// conv_tasks.hpp — how the convolution kernels (conv.cpp, winograd.cpp) share out their tasks and scratch.
#pragma once

#include <algorithm>
#include <array>
#include <memory>

#include "core/common.hpp"

namespace fastdl {
namespace conv_detail {

constexpr index_t kMinTasks = 8;                         // split images until there are this many tasks
constexpr index_t kMinWorkPerThread = index_t(1) << 15;  // multiply-adds
constexpr index_t kGradWChunks = 16;                     // weight-gradient partial sums, reduced in chunk order

// Threads for `tasks` tasks totalling `work` multiply-adds.
inline int conv_threads(index_t tasks, index_t work) {
    return static_cast<int>(std::max<index_t>(1, std::min<index_t>(threads_for(work, kMinWorkPerThread), tasks)));
}

// An uninitialised scratch array (every user writes before it reads; zero-filling it costs a pass).
template <typename T>
std::unique_ptr<T[]> scratch_array(index_t n) {
    return std::unique_ptr<T[]>(new T[static_cast<size_t>(std::max<index_t>(n, 1))]);
}

// One block of scratch per thread, laid out as N consecutive buffers of the given sizes (uninitialised).
template <typename T, size_t N>
class ThreadScratch {
  public:
    ThreadScratch(int threads, const std::array<index_t, N>& sizes) : sizes_(sizes) {
        for (index_t size : sizes) per_thread_ += size;
        data_ = scratch_array<T>(threads * per_thread_);
    }
    // The N buffers of the thread running the current task (worker_index() < threads).
    std::array<T*, N> buffers() const {
        std::array<T*, N> out;
        T* p = data_.get() + worker_index() * per_thread_;
        for (size_t i = 0; i < N; ++i) {
            out[i] = p;
            p += sizes_[i];
        }
        return out;
    }

  private:
    std::array<index_t, N> sizes_;
    index_t per_thread_ = 0;
    std::unique_ptr<T[]> data_;
};

// Bands of rows of one image: `rows` rows each (the last may be shorter), `count` per image.
struct RowBands {
    index_t rows, count;
};

// Bands of at most max_rows of an image's `total` rows (at least one row each), split further while a batch
// of B images gives fewer than kMinTasks tasks.
inline RowBands split_rows(index_t total, index_t max_rows, index_t B) {
    index_t rows = std::clamp<index_t>(max_rows, 1, std::max<index_t>(1, total));
    index_t count = ceil_div(total, rows);
    const index_t want = std::min(total, ceil_div(kMinTasks, std::max<index_t>(1, B)));
    if (count < want) {
        rows = ceil_div(total, want);
        count = ceil_div(total, rows);
    }
    return {rows, count};
}

}  // namespace conv_detail
}  // namespace fastdl
