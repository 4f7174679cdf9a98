// pack_panels.hpp — packing of one A or B micro-panel into the layout the microkernels read.
// Packing absorbs the transposes: the same layout comes out whatever the source strides are.
//
// These templates are always inlined into the per-ISA wrappers (ukernel_*.cpp), so each copy is
// vectorised for its own instruction set. They live in an unnamed namespace: every file gets its own
// internal copy, and no out-of-line copy built for one ISA can be picked up by another file.
#pragma once

#include "core/common.hpp"

namespace fastdl {
namespace {

// A micro-panel: A (mr, kc) with A(i, p) = a[i * rs_a + p * cs_a]  ->  out (kc, MR),
//   out[p * MR + i] = A(i, p); rows mr..MR-1 are zero.
template <typename T, int MR>
[[gnu::always_inline]] inline void pack_a_panel(index_t kc, index_t mr, const T* a, index_t rs_a, index_t cs_a,
                                                T* out) {
    if (mr == MR && rs_a == 1) {  // columns of op(A) are contiguous (trans_a): one vector copy per p
        for (index_t p = 0; p < kc; ++p)
            for (int i = 0; i < MR; ++i) out[p * MR + i] = a[p * cs_a + i];
        return;
    }
    if (mr == MR && cs_a == 1) {  // rows of op(A) are contiguous: MR row streams, one column per p
        for (index_t p = 0; p < kc; ++p)
            for (int i = 0; i < MR; ++i) out[p * MR + i] = a[i * rs_a + p];
        return;
    }
    for (index_t p = 0; p < kc; ++p)
        for (int i = 0; i < MR; ++i) out[p * MR + i] = i < mr ? a[i * rs_a + p * cs_a] : T(0);
}

// A B micro-panel: B (kc, nr) with B(p, j) = b[p * rs_b + j * cs_b]  ->  out (kc, NR),
//   out[p * NR + j] = B(p, j); columns nr..NR-1 are zero.
template <typename T, int NR>
[[gnu::always_inline]] inline void pack_b_panel(index_t kc, index_t nr, const T* b, index_t rs_b, index_t cs_b,
                                                T* out) {
    if (nr == NR && cs_b == 1) {  // rows of B are contiguous: one vector copy per p
        for (index_t p = 0; p < kc; ++p)
            for (int j = 0; j < NR; ++j) out[p * NR + j] = b[p * rs_b + j];
        return;
    }
    if (nr == NR && rs_b == 1) {  // columns of B are contiguous (trans_b): transpose 8 x 8 blocks
        constexpr index_t kStep = 8;
        index_t p0 = 0;
        for (; p0 + kStep <= kc; p0 += kStep)
            for (int j = 0; j < NR; ++j)
                for (index_t p = 0; p < kStep; ++p) out[(p0 + p) * NR + j] = b[j * cs_b + p0 + p];
        for (; p0 < kc; ++p0)
            for (int j = 0; j < NR; ++j) out[p0 * NR + j] = b[j * cs_b + p0];
        return;
    }
    for (index_t p = 0; p < kc; ++p)
        for (int j = 0; j < NR; ++j) out[p * NR + j] = j < nr ? b[p * rs_b + j * cs_b] : T(0);
}

}  // namespace
}  // namespace fastdl
