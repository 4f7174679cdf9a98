// scratch_buffer.hpp — the per-thread packing buffers of the GEMM drivers (blocked.cpp, packed_b.cpp, narrow.cpp).
#pragma once

#include <memory>
#include <new>

#include "core/common.hpp"

namespace fastdl {

// A 64-byte aligned scratch array that only grows; one per thread, dtype and role (thread_local).
template <typename T>
class ScratchBuffer {
public:
    T* get(index_t count) {
        if (count > capacity_) {
            data_.reset(static_cast<T*>(::operator new[](static_cast<size_t>(count) * sizeof(T), std::align_val_t(64))));
            capacity_ = count;
        }
        return data_.get();
    }

private:
    struct Free {
        void operator()(T* p) const { ::operator delete[](p, std::align_val_t(64)); }
    };
    std::unique_ptr<T, Free> data_;
    index_t capacity_ = 0;
};

// The calling thread's buffer for packed A blocks.
template <typename T>
T* scratch_a(index_t count) {
    thread_local ScratchBuffer<T> buffer;
    return buffer.get(count);
}

// The calling thread's buffer for packed B blocks.
template <typename T>
T* scratch_b(index_t count) {
    thread_local ScratchBuffer<T> buffer;
    return buffer.get(count);
}

// The calling thread's buffer for the narrow GEMM's padded copy of B.
template <typename T>
T* scratch_narrow_b(index_t count) {
    thread_local ScratchBuffer<T> buffer;
    return buffer.get(count);
}

}  // namespace fastdl
