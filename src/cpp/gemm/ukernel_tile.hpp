// ukernel_tile.hpp — the register-tile microkernel (contract in microkernel.hpp) written once over a vector
// register type, and the packing entries built with it. ukernel_avx2.cpp and ukernel_avx512.cpp each define
// their register type Reg<T> and include this header inside their own `#pragma GCC target` region, so every
// function here is compiled for that file's instruction set (and only ever runs on a CPU that has it).
//
// Reg<T> provides: V (the register), Mask (what selects the low lanes), lanes, mask(count) (the low `count`
// lanes, count clamped to [0, lanes]), zero(), load(p), load(p, mask), broadcast(p), fma(a, b, c) = a*b + c,
// add(a, b), store(p, v), store(p, v, mask).
//
// Register tile: M rows x NR = 2 registers. Per k step: two B register loads, M broadcasts of A, 2*M FMAs into
// 2*M accumulators. Partial columns use masked loads and stores, partial rows a smaller-M instance of the
// same template. Everything lives in an unnamed namespace: each ISA file gets its own internal copy.
#pragma once

#include "core/common.hpp"
#include "core/transpose_avx.hpp"
#include "gemm/microkernel.hpp"
#include "gemm/pack_panels.hpp"

namespace fastdl {
namespace {

// c (M, nr) [+]= A (M, k) @ B (k, nr), nr <= 2 * lanes. FULL: nr == 2 * lanes (no masks).
// PACKED_MR > 0: A is packed with rs_a = 1, cs_a = PACKED_MR (compile-time strides).
template <template <typename> class Reg, typename T, int M, bool FULL, int PACKED_MR>
void tile(index_t k, const T* a, index_t rs_a, index_t cs_a, const T* b, index_t rs_b, T* c, index_t ldc,
          index_t nr, bool accumulate) {
    using R = Reg<T>;
    using V = typename R::V;
    constexpr int L = R::lanes;
    if constexpr (PACKED_MR > 0) {
        rs_a = 1;
        cs_a = PACKED_MR;
    }
    const typename R::Mask m0 = R::mask(nr);
    const typename R::Mask m1 = R::mask(nr - L);
    V acc0[M], acc1[M];
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i) {
        acc0[i] = R::zero();
        acc1[i] = R::zero();
    }
#pragma GCC unroll 2
    for (index_t p = 0; p < k; ++p) {
        const V b0 = FULL ? R::load(b) : R::load(b, m0);
        const V b1 = FULL ? R::load(b + L) : R::load(b + L, m1);
#pragma GCC unroll 16
        for (int i = 0; i < M; ++i) {
            const V ai = R::broadcast(a + i * rs_a);
            acc0[i] = R::fma(ai, b0, acc0[i]);
            acc1[i] = R::fma(ai, b1, acc1[i]);
        }
        a += cs_a;
        b += rs_b;
    }
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i) {
        T* ci = c + i * ldc;
        if (FULL) {
            if (accumulate) {
                acc0[i] = R::add(R::load(ci), acc0[i]);
                acc1[i] = R::add(R::load(ci + L), acc1[i]);
            }
            R::store(ci, acc0[i]);
            R::store(ci + L, acc1[i]);
        } else {
            if (accumulate) {
                acc0[i] = R::add(R::load(ci, m0), acc0[i]);
                acc1[i] = R::add(R::load(ci + L, m1), acc1[i]);
            }
            R::store(ci, acc0[i], m0);
            R::store(ci + L, acc1[i], m1);
        }
    }
}

// Dispatch on the edge row count mr (1..M) and on full/partial columns.
template <template <typename> class Reg, typename T, int MR, int M>
void tile_rows(index_t k, const T* a, index_t rs_a, index_t cs_a, const T* b, index_t rs_b, T* c, index_t ldc,
               index_t mr, index_t nr, bool accumulate) {
    if (mr == M) {
        const bool packed = rs_a == 1 && cs_a == MR;
        const bool full = nr == 2 * Reg<T>::lanes;
        if (packed && full) tile<Reg, T, M, true, MR>(k, a, rs_a, cs_a, b, rs_b, c, ldc, nr, accumulate);
        else if (packed) tile<Reg, T, M, false, MR>(k, a, rs_a, cs_a, b, rs_b, c, ldc, nr, accumulate);
        else if (full) tile<Reg, T, M, true, 0>(k, a, rs_a, cs_a, b, rs_b, c, ldc, nr, accumulate);
        else tile<Reg, T, M, false, 0>(k, a, rs_a, cs_a, b, rs_b, c, ldc, nr, accumulate);
        return;
    }
    if constexpr (M > 1) tile_rows<Reg, T, MR, M - 1>(k, a, rs_a, cs_a, b, rs_b, c, ldc, mr, nr, accumulate);
}

// The microkernel: a is A (mr, k), b is B (k, nr), c is (mr, nr); see microkernel.hpp.
template <template <typename> class Reg, typename T, int MR>
void register_tile_kernel(index_t k, const T* a, index_t rs_a, index_t cs_a, const T* b, index_t rs_b, T* c,
                          index_t ldc, index_t mr, index_t nr, bool accumulate) {
    tile_rows<Reg, T, MR, MR>(k, a, rs_a, cs_a, b, rs_b, c, ldc, mr, nr, accumulate);
}

// out (kc, MR) <- A (mr, kc): the shared packing loop, vectorised for this ISA.
template <typename T, int MR>
void pack_a_for_isa(index_t kc, index_t mr, const T* a, index_t rs_a, index_t cs_a, T* out) {
    pack_a_panel<T, MR>(kc, mr, a, rs_a, cs_a, out);
}

// out (kc, NR) <- B (kc, nr): columns of B contiguous (trans_b) take the in-register transposes.
template <typename T, int NR>
void pack_b_for_isa(index_t kc, index_t nr, const T* b, index_t rs_b, index_t cs_b, T* out) {
    if (nr == NR && rs_b == 1) {
        pack_b_panel_transposed<T, NR>(kc, b, cs_b, out);
        return;
    }
    pack_b_panel<T, NR>(kc, nr, b, rs_b, cs_b, out);
}

}  // namespace
}  // namespace fastdl
