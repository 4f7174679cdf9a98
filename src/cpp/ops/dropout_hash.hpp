// dropout_hash.hpp — the counter-based dropout mask shared by every backend.
//
// Element i (flat C-order index) of a call with 64-bit `key` is KEPT when
//     bits(i, key) >> 8  <  threshold            (threshold = round(keep_prob * 2^24), in [0, 2^24])
// where, with k0/k1 the low/high 32 bits of key and i_lo/i_hi those of i (all arithmetic mod 2^32),
//     bits(i, key) = mix32(mix32(i_lo ^ k0) + (i_hi ^ k1))
//     mix32(h): h ^= h >> 16; h *= 0x7feb352d; h ^= h >> 15; h *= 0x846ca68b; h ^= h >> 16
// The same integer recipe runs in the NumPy reference and the CUDA kernel, so every backend draws the
// very same mask for the same key, and any element's draw is independent of how the work is split.
#pragma once

#include <cstdint>

namespace fastdl {

inline std::uint32_t dropout_mix32(std::uint32_t h) {
    h ^= h >> 16;
    h *= 0x7feb352du;
    h ^= h >> 15;
    h *= 0x846ca68bu;
    h ^= h >> 16;
    return h;
}

// True when element i is kept.
inline bool dropout_keep(std::uint64_t i, std::uint64_t key, std::uint32_t threshold) {
    const std::uint32_t k0 = static_cast<std::uint32_t>(key), k1 = static_cast<std::uint32_t>(key >> 32);
    const std::uint32_t lo = static_cast<std::uint32_t>(i), hi = static_cast<std::uint32_t>(i >> 32);
    const std::uint32_t bits = dropout_mix32(dropout_mix32(lo ^ k0) + (hi ^ k1));
    return (bits >> 8) < threshold;
}

}  // namespace fastdl
