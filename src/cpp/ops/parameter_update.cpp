// parameter_update.cpp — the fused optimizer step: the parameters are cut into chunks of a few thousand
// elements, and the thread pool runs one plain loop per chunk that the compiler vectorises. This file is
// compiled with -ffp-contract=off: a fused multiply-add would round once where the book's NumPy rounds twice.
#include "ops/parameter_update.hpp"

#include <cmath>

namespace fastdl {
namespace {

constexpr index_t kChunk = index_t(1) << 14;  // elements per task: 64 KiB of float32 per stream

template <typename T>
inline T clipped(T g, T c) {  // NaN stays NaN, as np.clip keeps it
    return g < -c ? -c : (g > c ? c : g);
}

// p, g, v are (n,): one chunk of one parameter.
template <typename T>
void update_chunk(const UpdateSettings& s, T* p, T* g, T* v, index_t n) {
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

}  // namespace

template <typename T>
void parameter_update(const std::vector<ParamSlot<T>>& slots, const UpdateSettings& s) {
    // first[j]: the tasks (chunks) of the slots before slot j; first.back(): all of them
    std::vector<index_t> first(slots.size() + 1, 0);
    index_t total = 0;
    for (size_t j = 0; j < slots.size(); ++j) {
        first[j + 1] = first[j] + ceil_div(slots[j].n, kChunk);
        total += slots[j].n;
    }
    const index_t tasks = first.back();
    const int threads = threads_for(total, 2 * kChunk);
    parallel_for(tasks, threads, [&](index_t task) {
        size_t j = 0;
        while (first[j + 1] <= task) ++j;  // first[j] <= task < first[j + 1]
        const ParamSlot<T>& slot = slots[j];
        const index_t lo = (task - first[j]) * kChunk, n = std::min(kChunk, slot.n - lo);
        update_chunk(s, slot.param + lo, slot.grad + lo, slot.state ? slot.state + lo : nullptr, n);
    });
}

template void parameter_update<float>(const std::vector<ParamSlot<float>>&, const UpdateSettings&);
template void parameter_update<double>(const std::vector<ParamSlot<double>>&, const UpdateSettings&);

}  // namespace fastdl
