// packed_b.hpp — a B operand packed once and then multiplied many times: the recurrent weights of the
// sequence kernels, which every time step multiplies by its new state, and the transformed filters of the
// Winograd convolutions, which every band of tiles multiplies.
//
// PackedB lays B (K, N) out as the micro-panels of the microkernel for N columns (microkernel_for_columns),
// panel j holding columns [j NR, (j + 1) NR) as a contiguous (K, NR) block (zero-padded past N), in storage
// the caller owns.
// multiply() then reads every B panel with unit stride: no re-packing per product, and none of the cache
// conflicts that a long row stride (a gate block of a (H, 4H) weight is 4H floats = 4 KiB apart) causes
// when the microkernel reads B in place.
#pragma once

#include "core/common.hpp"
#include "gemm/microkernel.hpp"

namespace fastdl {

template <typename T>
class PackedB {
public:
    // Elements of storage that a (K, N) operand needs.
    static index_t storage_size(index_t K, index_t N);
    // Elements of one (K, NR) micro-panel of the widest tile any PackedB may use now (the active kernel's;
    // narrow operands may use a narrower one): the most that padding can add to storage_size(K, N).
    static index_t panel_size(index_t K);

    // B (K, N) with B(p, j) = b[p * rs_b + j * cs_b]: a row-major (K, N) block has rs_b = its row stride and
    // cs_b = 1; the transpose of a row-major (N, K) block has rs_b = 1 and cs_b = its row stride.
    // storage holds storage_size(K, N) elements and must outlive this object. Runs on the calling thread.
    PackedB(index_t K, index_t N, const T* b, index_t rs_b, index_t cs_b, T* storage);

    // c (M, N) = a (M, K; row stride lda) @ B, on the calling thread (c has row stride ldc).
    void multiply(index_t M, const T* a, index_t lda, T* c, index_t ldc) const;

private:
    const MicroKernel<T>* uk_;  // null while the naive kernel is active: storage then holds B as (K, N)
    index_t K_, N_;
    T* data_;
};

}  // namespace fastdl
