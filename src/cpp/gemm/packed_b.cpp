// packed_b.cpp — PackedB (see packed_b.hpp).
//
// multiply() is the single-thread loop nest of blocked.cpp without the B packing:
//   pc over KC depth / ic over MC rows / [pack A block (mc, kc)] / jr over NR panels / ir over MR -> microkernel.
// A is packed under the same rule as there (packs_a in microkernel.hpp).

#include "gemm/packed_b.hpp"

#include "gemm/gemm.hpp"
#include "core/scratch_buffer.hpp"

namespace fastdl {

template <typename T>
index_t PackedB<T>::storage_size(index_t K, index_t N) {
    const MicroKernel<T>* uk = microkernel_for_columns<T>(N);
    const index_t padded_n = uk ? ceil_div(N, uk->nr) * uk->nr : N;
    return std::max<index_t>(1, K * padded_n);
}

template <typename T>
index_t PackedB<T>::panel_size(index_t K) {
    const MicroKernel<T>* uk = active_microkernel<T>();
    return std::max<index_t>(1, K * (uk ? uk->nr : 1));
}

template <typename T>
PackedB<T>::PackedB(index_t K, index_t N, const T* b, index_t rs_b, index_t cs_b, T* storage)
    : uk_(microkernel_for_columns<T>(N)), K_(K), N_(N), data_(storage) {
    // b: B (K, N) as above -> data_: ceil(N / NR) panels (K, NR), or (K, N) row-major for the naive kernel
    if (!uk_) {
        for (index_t p = 0; p < K; ++p)
            for (index_t j = 0; j < N; ++j) data_[p * N + j] = b[p * rs_b + j * cs_b];
        return;
    }
    const index_t NR = uk_->nr;
    for (index_t j0 = 0; j0 < N; j0 += NR)
        uk_->pack_b(K, std::min(NR, N - j0), b + j0 * cs_b, rs_b, cs_b, data_ + (j0 / NR) * K * NR);
}

template <typename T>
void PackedB<T>::multiply(index_t M, const T* a, index_t lda, T* c, index_t ldc) const {
    // a is (M, K), data_ holds B (K, N), c is (M, N)
    if (M == 0 || N_ == 0) return;
    if (!uk_ || K_ == 0) {
        gemm<T>(M, N_, K_, a, lda, false, data_, N_, false, c, ldc);
        return;
    }
    const MicroKernel<T>& uk = *uk_;
    const index_t MR = uk.mr, NR = uk.nr, MC = uk.mc, KC = uk.kc;
    const bool pack_a = packs_a(N_, NR);
    T* abuf = pack_a ? scratch_a<T>(ceil_div(std::min(MC, M), MR) * MR * std::min(KC, K_)) : nullptr;
    for (index_t pc = 0; pc < K_; pc += KC) {
        const index_t kc = std::min(KC, K_ - pc);
        for (index_t ic = 0; ic < M; ic += MC) {
            const index_t mc = std::min(MC, M - ic);
            const T* ablock = a + ic * lda + pc;  // A block (mc, kc) at (ic, pc)
            if (pack_a) {
                for (index_t ir = 0; ir < mc; ir += MR)
                    uk.pack_a(kc, std::min(MR, mc - ir), ablock + ir * lda, lda, 1, abuf + (ir / MR) * kc * MR);
            }
            for (index_t jr = 0; jr < N_; jr += NR) {
                const T* bp = data_ + (jr / NR) * K_ * NR + pc * NR;  // B micro-panel (kc, NR) at (pc, jr)
                for (index_t ir = 0; ir < mc; ir += MR) {
                    const T* ap = pack_a ? abuf + (ir / MR) * kc * MR : ablock + ir * lda;
                    uk.fn(kc, ap, pack_a ? 1 : lda, pack_a ? MR : 1, bp, NR, c + (ic + ir) * ldc + jr, ldc,
                          std::min(MR, mc - ir), std::min(NR, N_ - jr), pc > 0);
                }
            }
        }
    }
}

template class PackedB<float>;
template class PackedB<double>;

}  // namespace fastdl
