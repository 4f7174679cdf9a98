// take_rows.cpp — the row gather of take_rows.hpp: memcpy per row, the next source row prefetched while the
// current one is copied (random rows of a large table each start with a cache miss).
#include "ops/take_rows.hpp"

#include <cstring>

namespace fastdl {

namespace {

constexpr index_t kLine = 64;
// Below this many bytes in all, one thread copies everything (waking a second costs more than it saves).
constexpr index_t kBytesPerThread = index_t(1) << 15;

// Asks for every cache line of one row (into L2), ahead of its copy.
void prefetch_row(const std::uint8_t* row, index_t row_bytes) {
    for (index_t b = 0; b < row_bytes; b += kLine) __builtin_prefetch(row + b, 0, 2);
}

}  // namespace

void take_rows_kernel(const std::uint8_t* src, index_t row_bytes, const std::int64_t* rows, index_t n,
                      std::uint8_t* out) {
    // src is (N, row_bytes), rows is (n,), out is (n, row_bytes)
    if (n <= 0 || row_bytes <= 0) return;
    const int nt = static_cast<int>(std::min<index_t>(threads_for(n * row_bytes, kBytesPerThread), n));
    parallel_for(nt, nt, [&](index_t p) {
        const index_t i0 = n * p / nt, i1 = n * (p + 1) / nt;  // this block: out rows [i0, i1)
        for (index_t i = i0; i < i1; ++i) {
            if (i + 1 < i1) prefetch_row(src + rows[i + 1] * row_bytes, row_bytes);
            std::memcpy(out + i * row_bytes, src + rows[i] * row_bytes, static_cast<size_t>(row_bytes));
        }
    });
}

}  // namespace fastdl
