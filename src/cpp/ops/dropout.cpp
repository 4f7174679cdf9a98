// dropout.cpp — dropout forward (mask drawn by the counter hash, applied in the same pass) and
// backward, one plain loop per ISA entry that the compiler vectorises, run over chunks by the thread pool.
#include "ops/dropout.hpp"

#include "ops/dropout_hash.hpp"
#include "core/vec_math.hpp"

namespace fastdl {
namespace {

// x, y, mask are (n,) starting at flat index `first` of the whole array.
template <typename T>
inline void forward_chunk(const T* x, T* y, std::uint8_t* mask, index_t n, std::uint64_t first,
                          std::uint64_t key, std::uint32_t threshold) {
    for (index_t k = 0; k < n; ++k) {
        const bool keep = dropout_keep(first + static_cast<std::uint64_t>(k), key, threshold);
        mask[k] = keep;
        y[k] = keep ? x[k] : T(0);
    }
}

template <typename T>
inline void backward_chunk(const T* g, const std::uint8_t* mask, T* out, index_t n) {  // all (n,)
    for (index_t k = 0; k < n; ++k) out[k] = mask[k] ? g[k] : T(0);
}

template <typename T>
[[gnu::flatten]] void forward_scalar(const T* x, T* y, std::uint8_t* m, index_t n, std::uint64_t first,
                                     std::uint64_t key, std::uint32_t threshold) {
    forward_chunk(x, y, m, n, first, key, threshold);
}

template <typename T>
[[gnu::flatten]] void backward_scalar(const T* g, const std::uint8_t* m, T* out, index_t n) {
    backward_chunk(g, m, out, n);
}

#if defined(__x86_64__)
template <typename T>
[[gnu::target("avx2"), gnu::flatten]] void forward_avx2(const T* x, T* y, std::uint8_t* m, index_t n,
                                                         std::uint64_t first, std::uint64_t key,
                                                         std::uint32_t threshold) {
    forward_chunk(x, y, m, n, first, key, threshold);
}

template <typename T>
[[gnu::target("avx512f,avx512bw,avx512dq"), gnu::flatten]] void forward_avx512(
    const T* x, T* y, std::uint8_t* m, index_t n, std::uint64_t first, std::uint64_t key,
    std::uint32_t threshold) {
    forward_chunk(x, y, m, n, first, key, threshold);
}

template <typename T>
[[gnu::target("avx2"), gnu::flatten]] void backward_avx2(const T* g, const std::uint8_t* m, T* out, index_t n) {
    backward_chunk(g, m, out, n);
}

template <typename T>
[[gnu::target("avx512f,avx512bw,avx512dq"), gnu::flatten]] void backward_avx512(const T* g, const std::uint8_t* m,
                                                                                 T* out, index_t n) {
    backward_chunk(g, m, out, n);
}
#endif

template <typename T>
using ForwardFn = void (*)(const T*, T*, std::uint8_t*, index_t, std::uint64_t, std::uint64_t, std::uint32_t);

template <typename T>
ForwardFn<T> forward_for(VecIsa isa) {
#if defined(__x86_64__)
    if (isa == VecIsa::avx512) return &forward_avx512<T>;
    if (isa == VecIsa::avx2) return &forward_avx2<T>;
#endif
    (void)isa;
    return &forward_scalar<T>;
}

template <typename T>
using BackwardFn = void (*)(const T*, const std::uint8_t*, T*, index_t);

template <typename T>
BackwardFn<T> backward_for(VecIsa isa) {
#if defined(__x86_64__)
    if (isa == VecIsa::avx512) return &backward_avx512<T>;
    if (isa == VecIsa::avx2) return &backward_avx2<T>;
#endif
    (void)isa;
    return &backward_scalar<T>;
}

}  // namespace

template <typename T>
void dropout_forward_kernel(const T* x, T* y, std::uint8_t* mask, index_t n, std::uint64_t first,
                            std::uint64_t key, std::uint32_t threshold) {
    const ForwardFn<T> fn = forward_for<T>(active_vec_isa());
    parallel_chunks(n, index_t(1) << 15, [&](index_t lo, index_t hi) {
        fn(x + lo, y + lo, mask + lo, hi - lo, first + static_cast<std::uint64_t>(lo), key, threshold);
    });
}

template <typename T>
void dropout_forward_block(const T* x, T* y, std::uint8_t* mask, index_t n, std::uint64_t first,
                           std::uint64_t key, std::uint32_t threshold) {
    forward_for<T>(active_vec_isa())(x, y, mask, n, first, key, threshold);
}

template <typename T>
void dropout_backward_kernel(const T* grad_y, const std::uint8_t* mask, T* grad_x, index_t n) {
    const BackwardFn<T> fn = backward_for<T>(active_vec_isa());
    parallel_chunks(n, index_t(1) << 15,
                    [&](index_t lo, index_t hi) { fn(grad_y + lo, mask + lo, grad_x + lo, hi - lo); });
}

template void dropout_forward_kernel<float>(const float*, float*, std::uint8_t*, index_t, std::uint64_t,
                                            std::uint64_t, std::uint32_t);
template void dropout_forward_kernel<double>(const double*, double*, std::uint8_t*, index_t, std::uint64_t,
                                             std::uint64_t, std::uint32_t);
template void dropout_forward_block<float>(const float*, float*, std::uint8_t*, index_t, std::uint64_t,
                                           std::uint64_t, std::uint32_t);
template void dropout_forward_block<double>(const double*, double*, std::uint8_t*, index_t, std::uint64_t,
                                            std::uint64_t, std::uint32_t);
template void dropout_backward_kernel<float>(const float*, const std::uint8_t*, float*, index_t);
template void dropout_backward_kernel<double>(const double*, const std::uint8_t*, double*, index_t);

}  // namespace fastdl
