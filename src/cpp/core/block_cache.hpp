// block_cache.hpp — a process-wide cache of large, 64-byte aligned memory blocks, reused from call to call.
//
// Every call of an RNN / LSTM / GRU kernel needs several large arrays (the saved activations, the (B, T, G*H)
// gate gradients, the outputs). Taken from malloc, each is usually fresh memory from the OS, and first touching
// it (page faults and zeroing) costs as much as the arithmetic at training sizes. Blocks released here are kept
// and handed out again, so a training loop reuses the same memory every step. Thread-safe.
#pragma once

#include <cstddef>
#include <memory>

#include "core/common.hpp"

namespace fastdl {

// A block of at least `bytes` bytes (uninitialised), 64-byte aligned; give it back with release_block.
void* acquire_block(std::size_t bytes);
// Returns a block from acquire_block to the cache (or to the system when the cache is full). Null is ignored.
void release_block(void* block);

struct BlockRelease {
    void operator()(void* block) const { release_block(block); }
};

template <typename T>
using PooledArray = std::unique_ptr<T[], BlockRelease>;

// An uninitialised array of max(n, 1) elements from the cache.
template <typename T>
PooledArray<T> pooled(index_t n) {
    const std::size_t count = static_cast<std::size_t>(std::max<index_t>(n, 1));
    return PooledArray<T>(static_cast<T*>(acquire_block(count * sizeof(T))));
}

}  // namespace fastdl
