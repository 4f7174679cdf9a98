// rnn_steps.hpp — the shared machinery of rnn.cpp: scratch buffers (from the block cache), the split of the
// hidden units into per-thread slices, the phases of the time loop, weight re-layouts and per-slice packed
// weights, and the all-T input GEMMs of forward and backward.
#pragma once

#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "core/common.hpp"
#include "gemm/gemm.hpp"
#include "gemm/packed_b.hpp"
#include "core/block_cache.hpp"

namespace fastdl::rnn_detail {

// An uninitialised scratch array of n elements from the block cache (no zero-fill: most buffers are
// overwritten at once; cached memory is reused across calls instead of being faulted in afresh).
template <typename T>
PooledArray<T> scratch(index_t n) {
    return pooled<T>(n);
}

template <typename T>
PooledArray<T> zeros(index_t n) {
    auto p = scratch<T>(n);
    std::memset(p.get(), 0, static_cast<size_t>(std::max<index_t>(n, 1)) * sizeof(T));
    return p;
}

// Hidden units [j0, j0 + n) of slice p out of nt; boundaries are multiples of 16 (whole SIMD vectors).
struct UnitRange {
    index_t j0, n;
};

inline UnitRange unit_range(index_t H, int p, int nt) {
    constexpr index_t kAlign = 16;
    auto bound = [&](int q) { return q >= nt ? H : std::min(H, ceil_div(H * q / nt, kAlign) * kAlign); };
    return {bound(p), bound(p + 1) - bound(p)};
}

// Slices of hidden units for the time loop, one per thread: each slice's share of the recurrent weights is
// packed once and used for all T steps; small problems get one slice (whose GEMMs may still thread).
inline int step_threads(const index_t B, const index_t H, const index_t G) {
    const index_t by_units = ceil_div(H, index_t(16));
    return static_cast<int>(std::min<index_t>(threads_for(B * G * H * H, index_t(1) << 16), by_units));
}

// One phase of the time loop: phase(p, unit_range(H, p, nt)) for every slice p in [0, nt), one task each;
// returns when all are done, so consecutive phases are separated by a barrier. Slice p is participant p's
// own task, so with every thread present each thread keeps its slice (and its packed weights in its cache)
// from phase to phase; a slice whose thread the OS has parked is run by another one instead of waited for.
// GEMMs called inside a phase of nt > 1 run on their calling thread.
template <class Phase>
void for_each_slice(int nt, index_t H, Phase phase) {
    parallel_for(nt, nt, [&](index_t p) { phase(static_cast<int>(p), unit_range(H, static_cast<int>(p), nt)); });
}

// The recurrent weights of each slice, packed by its first phase and used by all the later ones.
template <typename T>
using SliceWeights = std::vector<std::optional<PackedB<T>>>;

// Storage for one PackedB per slice of nt: slice p, owning units u, packs K rows and the cols_per_unit * u.n
// columns of its units into of(p, u). The parts are placed by the units they hold, plus one panel of the
// widest tile (PackedB::panel_size) of slack per lower slice for its partial last panel (a narrow part may
// use a narrower tile).
template <typename T>
class SlicePanels {
public:
    SlicePanels(index_t H, int nt, index_t K, index_t cols_per_unit)
        : K_(K), cols_per_unit_(cols_per_unit), slack_(PackedB<T>::panel_size(K)) {
        storage_ = scratch<T>(PackedB<T>::storage_size(K, cols_per_unit * H) + nt * slack_ + 1);
    }
    T* of(int p, const UnitRange& u) {
        return storage_.get() + PackedB<T>::storage_size(K_, cols_per_unit_ * u.j0) + p * slack_;
    }

private:
    index_t K_, cols_per_unit_, slack_;
    PooledArray<T> storage_;
};

// wh is (rows, G*H) with row stride ld, gate g in columns [g*H, (g+1)*H) -> out (rows, G*H) where slice
// p's units [j0, j0 + n) of all G gates are adjacent: out[:, G*j0 + g*n + jj] = wh[:, g*H + j0 + jj]. Then
// one GEMM per slice per step yields all the gates of its units, in the same order.
// It does slice p's part only (out[:, G*j0 : G*(j0 + n)]), so the task that reads it lays it out.
template <typename T>
void group_slice_columns(const T* wh, index_t rows, index_t H, index_t G, index_t ld, int p, int nt, T* out) {
    const UnitRange u = unit_range(H, p, nt);
    for (index_t k = 0; k < rows; ++k)
        for (index_t g = 0; g < G; ++g)
            std::memcpy(out + k * G * H + G * u.j0 + g * u.n, wh + k * ld + g * H + u.j0,
                        static_cast<size_t>(u.n) * sizeof(T));
}

// src (B, H) with row stride ld_src -> dst (B, H) with row stride ld_dst
template <typename T>
void copy_rows(const T* src, index_t ld_src, T* dst, index_t ld_dst, index_t B, index_t H) {
    for (index_t b = 0; b < B; ++b)
        std::memcpy(dst + b * ld_dst, src + b * ld_src, static_cast<size_t>(H) * sizeof(T));
}

// out (B*T, GH) = x (B*T, F; row stride ldx) @ w[:F] (F, GH) + b: the input projection of every step, one GEMM.
template <typename T>
void input_projection(index_t BT, index_t F, index_t ldx, index_t GH, const T* x, const T* w, const T* b, T* out) {
    gemm<T>(BT, GH, F, x, ldx, false, w, GH, false, out, GH, GemmEpilogue<T>{b, Activation::linear});
}

// grad_b (n,) = column sums of dz (rows, n). Tasks own column chunks; each column is summed in row
// order, so the result does not depend on the thread count.
template <typename T>
void column_sum(const T* dz, index_t rows, index_t n, T* grad_b) {
    constexpr index_t kChunk = 64;
    const index_t chunks = ceil_div(n, kChunk);
    const int nt = static_cast<int>(std::max<index_t>(1, std::min<index_t>(threads_for(rows * n, 1 << 15), chunks)));
    parallel_for(chunks, nt, [&](index_t chunk) {
        const index_t j0 = chunk * kChunk, j1 = std::min(n, j0 + kChunk);
        for (index_t j = j0; j < j1; ++j) grad_b[j] = T(0);
        for (index_t i = 0; i < rows; ++i)
            for (index_t j = j0; j < j1; ++j) grad_b[j] += dz[i * n + j];
    });
}

// grad_b[0 : n] (n,) += dz.sum(0) for dz (rows, n) with row stride ld, summed row after row.
template <typename T>
void add_row_sums(const T* dz, index_t ld, index_t rows, index_t n, T* grad_b) {
    for (index_t i = 0; i < rows; ++i)
        for (index_t j = 0; j < n; ++j) grad_b[j] += dz[i * ld + j];
}

// The all-T gradients of the input rows: dz (B*T, GH), x (B*T, F), w (F + H, GH) ->
// grad_x (B*T, F) = dz @ w[:F]^T, grad_w[:F] (F, GH) = x^T @ dz, and grad_b (GH,) = dz.sum(0) unless
// grad_b is null (a caller that summed dz inside its time loop).
template <typename T>
void input_gradients(index_t BT, index_t F, index_t GH, const T* x, const T* w, const T* dz, T* grad_x, T* grad_w,
                     T* grad_b) {
    gemm<T>(BT, F, GH, dz, GH, false, w, GH, true, grad_x, F);
    gemm<T>(F, GH, BT, x, F, true, dz, GH, false, grad_w, GH);
    if (grad_b) column_sum(dz, BT, GH, grad_b);
}

}  // namespace fastdl::rnn_detail
