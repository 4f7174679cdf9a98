// softmax_cross_entropy.cpp — the per-ISA entry points of the fused softmax cross-entropy (softmax_rows.hpp)
// and the threaded kernel.
#include "ops/softmax_cross_entropy.hpp"

#include "ops/softmax_rows.hpp"
#include "core/vec_avx2.hpp"
#include "core/vec_avx512.hpp"
#include "core/vec_math.hpp"

namespace fastdl {
namespace {

// One function per ISA; `flatten` inlines the generic row code and that ISA's Ops into it.
template <typename T>
[[gnu::flatten]] void cross_entropy_rows_scalar(const CrossEntropyArgs<T>& a, index_t r0, index_t r1) {
    cross_entropy_rows<scalar::Ops<T>>(a, r0, r1);
}

#if defined(__x86_64__)
template <typename T>
[[gnu::target("avx2,fma"), gnu::flatten]] void cross_entropy_rows_avx2(const CrossEntropyArgs<T>& a, index_t r0, index_t r1) {
    cross_entropy_rows<avx2::Ops<T>>(a, r0, r1);
}

template <typename T>
[[gnu::target("avx512f,avx512dq"), gnu::flatten]] void cross_entropy_rows_avx512(const CrossEntropyArgs<T>& a, index_t r0,
                                                                        index_t r1) {
    cross_entropy_rows<avx512::Ops<T>>(a, r0, r1);
}
#endif

template <typename T>
using RowsFn = void (*)(const CrossEntropyArgs<T>&, index_t, index_t);

template <typename T>
RowsFn<T> rows_for(VecIsa isa) {
#if defined(__x86_64__)
    if (isa == VecIsa::avx512) return &cross_entropy_rows_avx512<T>;
    if (isa == VecIsa::avx2) return &cross_entropy_rows_avx2<T>;
#endif
    (void)isa;
    return &cross_entropy_rows_scalar<T>;
}

}  // namespace

template <typename T>
double softmax_cross_entropy_kernel(const CrossEntropyArgs<T>& a) {
    // logits, target, grad are (B, C); labels, row_loss are (B,)
    const RowsFn<T> rows = rows_for<T>(active_vec_isa());
    // a row costs about as much as kRowCost elements more than its C (max, sum, logs): short rows of a
    // large batch are worth a second thread too
    constexpr index_t kRowCost = 128;
    const int nt = threads_for(a.B * (a.C + kRowCost), index_t(1) << 12);
    const index_t B = a.B;
    parallel_ranges(B, 1, nt, kTasksPerThread, [&](index_t r0, index_t r1) { rows(a, r0, r1); });
    double total = 0.0;
    for (index_t r = 0; r < B; ++r) total += a.row_loss[r];  // fixed order: deterministic
    return total;
}

template double softmax_cross_entropy_kernel<float>(const CrossEntropyArgs<float>&);
template double softmax_cross_entropy_kernel<double>(const CrossEntropyArgs<double>&);

}  // namespace fastdl
