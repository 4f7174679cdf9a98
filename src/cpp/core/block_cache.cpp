// block_cache.cpp — the block cache of block_cache.hpp.
//
// Each block starts with a 64-byte header holding its capacity; the caller gets the address after it.
// Released blocks of at least kMinCached bytes go to a free list (at most kMaxCachedBytes in all, the
// oldest given back to the system first); acquire takes the smallest cached block that fits without
// wasting more than half of it. Blocks of kHugeMin bytes or more are aligned to, and sized in, whole 2 MiB
// pages and asked to be backed by transparent huge pages: the time loops touch B rows of several (B, T, .)
// arrays per step, and with 4 KiB pages those rows cost a TLB miss each.
#include "core/block_cache.hpp"

#if __has_include(<sys/mman.h>)
#include <sys/mman.h>  // madvise, for the huge-page hint (Linux); elsewhere the hint is left out
#endif

#include <mutex>
#include <new>
#include <vector>

namespace fastdl {

namespace {

constexpr std::size_t kAlign = 64;
constexpr std::size_t kHeader = kAlign;                         // bytes before the caller's address
constexpr std::size_t kMinCached = std::size_t(64) << 10;       // smaller blocks go straight back to malloc
constexpr std::size_t kMaxCachedBytes = std::size_t(256) << 20;  // cap on the memory kept for reuse
constexpr std::size_t kHugePage = std::size_t(2) << 20;
constexpr std::size_t kHugeMin = std::size_t(1) << 20;  // blocks from this size on use huge pages

struct BlockCache {
    std::mutex mutex;
    std::vector<char*> free_blocks;  // header addresses, oldest first
    std::size_t cached_bytes = 0;
};

BlockCache& cache() {
    static BlockCache* c = new BlockCache;  // never destroyed: capsules may release blocks during shutdown
    return *c;
}

std::size_t capacity_of(const char* header) { return *reinterpret_cast<const std::size_t*>(header); }

// The alignment a block of `bytes` (its capacity) was allocated with.
std::size_t alignment_of(std::size_t bytes) { return bytes + kHeader >= kHugeMin ? kHugePage : kAlign; }

void free_header(char* header) { ::operator delete[](header, std::align_val_t(alignment_of(capacity_of(header)))); }

}  // namespace

void* acquire_block(std::size_t bytes) {
    if (bytes >= kMinCached) {
        BlockCache& c = cache();
        std::lock_guard<std::mutex> lock(c.mutex);
        std::size_t best = c.free_blocks.size();
        for (std::size_t i = 0; i < c.free_blocks.size(); ++i) {
            const std::size_t cap = capacity_of(c.free_blocks[i]);
            const bool fits = cap >= bytes && cap / 2 <= bytes;
            if (fits && (best == c.free_blocks.size() || cap < capacity_of(c.free_blocks[best]))) best = i;
        }
        if (best < c.free_blocks.size()) {
            char* header = c.free_blocks[best];
            c.free_blocks.erase(c.free_blocks.begin() + static_cast<std::ptrdiff_t>(best));
            c.cached_bytes -= capacity_of(header);
            return header + kHeader;
        }
    }
    std::size_t total = bytes + kHeader;
    const std::size_t align = alignment_of(bytes);
    if (align == kHugePage) total = (total + kHugePage - 1) / kHugePage * kHugePage;
    char* header = static_cast<char*>(::operator new[](total, std::align_val_t(align)));
#ifdef MADV_HUGEPAGE
    if (align == kHugePage) madvise(header, total, MADV_HUGEPAGE);  // a hint; failure is harmless
#endif
    *reinterpret_cast<std::size_t*>(header) = total - kHeader;
    return header + kHeader;
}

void release_block(void* block) {
    if (!block) return;
    char* header = static_cast<char*>(block) - kHeader;
    const std::size_t cap = capacity_of(header);
    if (cap < kMinCached || cap > kMaxCachedBytes) {
        free_header(header);
        return;
    }
    BlockCache& c = cache();
    std::vector<char*> evicted;
    {
        std::lock_guard<std::mutex> lock(c.mutex);
        c.free_blocks.push_back(header);
        c.cached_bytes += cap;
        while (c.cached_bytes > kMaxCachedBytes) {
            evicted.push_back(c.free_blocks.front());
            c.cached_bytes -= capacity_of(c.free_blocks.front());
            c.free_blocks.erase(c.free_blocks.begin());
        }
    }
    for (char* h : evicted) free_header(h);
}

}  // namespace fastdl
