// parameter_update.cpp — the fused optimizer step: the elements of all the parameters are cut into equal
// ranges, and the thread pool runs one plain loop per piece of a parameter that the compiler vectorises.
// This file is compiled with -ffp-contract=off: a fused multiply-add would round once where the book's
// NumPy rounds twice.
#include "ops/parameter_update.hpp"

#include <algorithm>
#include <cmath>

#include "core/vec_math.hpp"

namespace fastdl {
namespace {

constexpr index_t kMinPerThread = index_t(1) << 14;  // elements: a second thread pays off from 2 x 64 KiB

template <typename T>
inline T clipped(T g, T c) {  // NaN stays NaN, as np.clip keeps it
    return g < -c ? -c : (g > c ? c : g);
}

// p, g, v are (n,): one piece of one parameter. Plain loops: each build below vectorises them for its ISA.
template <typename T>
inline void update_span(const UpdateSettings& s, T* p, T* g, T* v, index_t n) {
    const T lr = T(s.lr), hyper = T(s.hyper), clip = T(s.clip);
    if (s.clip > 0)
        for (index_t i = 0; i < n; ++i) g[i] = clipped(g[i], clip);
    switch (s.rule) {
        case UpdateRule::sgd:
            for (index_t i = 0; i < n; ++i) p[i] = p[i] - lr * g[i];
            break;
        case UpdateRule::sgd_momentum:
            for (index_t i = 0; i < n; ++i) {
                const T velocity = v[i] * hyper + lr * g[i];
                v[i] = velocity;
                p[i] = p[i] - velocity;
            }
            break;
        case UpdateRule::adagrad:
            for (index_t i = 0; i < n; ++i) {
                const T sum = v[i] + (hyper + g[i] * g[i]);
                v[i] = sum;
                p[i] = p[i] - (lr / std::sqrt(sum)) * g[i];
            }
            break;
        case UpdateRule::regularized_sgd:
            for (index_t i = 0; i < n; ++i) p[i] = p[i] - (lr * g[i] + hyper * p[i]);
            break;
    }
}

template <typename T>
[[gnu::flatten]] void update_baseline(const UpdateSettings& s, T* p, T* g, T* v, index_t n) {
    update_span(s, p, g, v, n);
}

#if defined(__x86_64__)
// The same loops with 256- and 512-bit vectors (2x and 4x the elements of the baseline's 128-bit ones per
// instruction: the step is bound by loads and stores from L2). No FMA: this file is built without contraction.
template <typename T>
[[gnu::target("avx2"), gnu::flatten]] void update_avx2(const UpdateSettings& s, T* p, T* g, T* v, index_t n) {
    update_span(s, p, g, v, n);
}

template <typename T>
[[gnu::target("avx512f"), gnu::flatten]] void update_avx512(const UpdateSettings& s, T* p, T* g, T* v, index_t n) {
    update_span(s, p, g, v, n);
}
#endif

template <typename T>
using UpdateFn = void (*)(const UpdateSettings&, T*, T*, T*, index_t);

template <typename T>
UpdateFn<T> update_for(VecIsa isa) {
#if defined(__x86_64__)
    if (isa == VecIsa::avx512) return &update_avx512<T>;
    if (isa == VecIsa::avx2) return &update_avx2<T>;
#endif
    (void)isa;
    return &update_baseline<T>;
}

}  // namespace

template <typename T>
void parameter_update(const std::vector<ParamSlot<T>>& slots, const UpdateSettings& s) {
    // The slots' elements, one after the other, are cut into equal ranges whatever the slot boundaries, so
    // that each thread gets the same share (a network's first weight is most of its elements) and the same
    // range on every step (it stays in that thread's cache). start[j]: the elements of the slots before j.
    std::vector<index_t> start(slots.size() + 1, 0);
    for (size_t j = 0; j < slots.size(); ++j) start[j + 1] = start[j] + slots[j].n;
    const index_t total = start.back();
    const UpdateFn<T> update_chunk = update_for<T>(active_vec_isa());
    parallel_ranges(total, 64, threads_for(total, kMinPerThread), kTasksPerThread, [&](index_t lo, index_t hi) {
        size_t j = static_cast<size_t>(std::upper_bound(start.begin(), start.end(), lo) - start.begin()) - 1;
        for (; lo < hi; ++j) {  // [lo, hi) within slot j, then on into the next slots
            const index_t end = std::min(hi, start[j + 1]);
            if (end <= lo) continue;  // an empty slot
            const ParamSlot<T>& slot = slots[j];
            const index_t at = lo - start[j];
            update_chunk(s, slot.param + at, slot.grad + at, slot.state ? slot.state + at : nullptr, end - lo);
            lo = end;
        }
    });
}

template void parameter_update<float>(const std::vector<ParamSlot<float>>&, const UpdateSettings&);
template void parameter_update<double>(const std::vector<ParamSlot<double>>&, const UpdateSettings&);

}  // namespace fastdl
