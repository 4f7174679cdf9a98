// microkernel.hpp — the contract every GEMM microkernel implements (BLIS-style), and the registry of
// the microkernels that are compiled in (generic C++, AVX2+FMA, AVX-512).
//
// One call computes one register tile:
//   c (mr, nr) = [c +] A (mr, k) @ B (k, nr)      mr <= MR, nr <= NR
// with
//   A(i, p) = a[i * rs_a + p * cs_a]   packed A: rs_a = 1, cs_a = MR;  unpacked: the original strides
//   B(p, j) = b[p * rs_b + j]          packed B: rs_b = NR;           unpacked: rs_b = ldb
//   c has row stride ldc; accumulate == false overwrites c, true adds to it.
// A microkernel never reads A rows >= mr or B columns >= nr, so it can run on unpacked operands and
// on edge tiles. For a given k, the value of each c element does not depend on mr, nr or the tile's
// position (one fixed FMA chain over p), which keeps results independent of the thread count.
#pragma once

#include "core/common.hpp"

namespace fastdl {

template <typename T>
using MicroKernelFn = void (*)(index_t k, const T* a, index_t rs_a, index_t cs_a, const T* b, index_t rs_b, T* c,
                               index_t ldc, index_t mr, index_t nr, bool accumulate);

// Packs one A micro-panel: A (mr, kc), A(i, p) = a[i * rs_a + p * cs_a] -> out (kc, MR), zero-padded.
template <typename T>
using PackAFn = void (*)(index_t kc, index_t mr, const T* a, index_t rs_a, index_t cs_a, T* out);
// Packs one B micro-panel: B (kc, nr), B(p, j) = b[p * rs_b + j * cs_b] -> out (kc, NR), zero-padded.
template <typename T>
using PackBFn = void (*)(index_t kc, index_t nr, const T* b, index_t rs_b, index_t cs_b, T* out);

// A microkernel, its packing routines (built for the same ISA) and the cache blocking tuned for it.
template <typename T>
struct MicroKernel {
    MicroKernelFn<T> fn = nullptr;
    PackAFn<T> pack_a = nullptr;
    PackBFn<T> pack_b = nullptr;
    index_t mr = 0;  // register tile rows (MR)
    index_t nr = 0;  // register tile columns (NR)
    index_t mc = 0;  // rows of the packed A block (kept in L2)
    index_t kc = 0;  // depth of one packed block (a B micro-panel kc x NR stays in L1)
    index_t nc = 0;  // columns of the packed B block (kept in L3)
};

// Plain C++, compiled for the baseline ISA (ukernel_generic.cpp).
const MicroKernel<float>& generic_microkernel_f32();
const MicroKernel<double>& generic_microkernel_f64();
// AVX2 + FMA (ukernel_avx2.cpp); only call when the CPU has avx2 and fma.
const MicroKernel<float>& avx2_microkernel_f32();
const MicroKernel<double>& avx2_microkernel_f64();
// AVX-512F (ukernel_avx512.cpp); only call when the CPU has avx512f. The float kernel's tile is 12 rows tall; the
// 8-row one serves the products whose rows 8-row tiles cover and 12-row tiles do not (microkernel_for_rows).
const MicroKernel<float>& avx512_microkernel_f32();
const MicroKernel<float>& avx512_microkernel_f32_8_rows();
const MicroKernel<double>& avx512_microkernel_f64();

// Whether a GEMM of N columns packs A: only when at least 8 column tiles of width nr reuse each packed A
// panel (with fewer, reading A in place measured 4-18% faster: the per-step recurrent and convolution GEMMs).
inline bool packs_a(index_t N, index_t nr) { return N >= 8 * nr; }

// The microkernel gemm() uses now (forced or chosen from the CPU), or null while the plain loop nest
// ("naive") is the active kernel.
template <typename T>
const MicroKernel<T>* active_microkernel();

// The microkernel for a product of N columns: the active one, except that the AVX-512 kernel hands products of
// at most 16 float (8 double) columns to the AVX2 kernel, whose tile is that wide; half of every AVX-512 tile's
// FMAs would be masked off.
template <typename T>
const MicroKernel<T>* microkernel_for_columns(index_t N);

}  // namespace fastdl
