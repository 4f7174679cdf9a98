// take_rows.hpp — gathering rows of a table by index: each training batch from the shuffled order of the rows.
#pragma once

#include <cstdint>

#include "core/common.hpp"

namespace fastdl {

// src is (N, row_bytes) bytes, rows is (n,) with every rows[i] in [0, N) (the caller checks), out is
// (n, row_bytes): out[i] = src[rows[i]]. The rows are cut into one contiguous block per thread, the first
// block on the calling thread, as the GEMMs cut the rows of a batch: the rows a thread copies are the ones
// it multiplies next, already in its core's cache.
void take_rows_kernel(const std::uint8_t* src, index_t row_bytes, const std::int64_t* rows, index_t n,
                      std::uint8_t* out);

}  // namespace fastdl
