// linear.cpp — linear forward/backward on top of gemm(). Forward fuses bias + activation into the GEMM
// epilogue; backward forms dz once, then runs an NT and a TN GEMM (no transposed copies) and a
// fixed-order column sum.

#include "ops/linear.hpp"

#include "core/block_cache.hpp"
#include "gemm/gemm.hpp"
#include "ops/activations.hpp"
#include "ops/linear_readout.hpp"

namespace fastdl {

namespace {

// grad_b (out,) = sum over rows of dz (n, out). Threads own column chunks; each column is summed in row
// order, so the result does not depend on the thread count.
template <typename T>
void column_sum(const T* dz, T* grad_b, index_t n, index_t out) {
    constexpr index_t kChunk = 256;
    const index_t chunks = ceil_div(out, kChunk);
    const int nt = static_cast<int>(std::min<index_t>(threads_for(n * out, index_t(1) << 15), chunks));
    parallel_for(chunks, std::max(nt, 1), [&](index_t chunk) {
        const index_t j0 = chunk * kChunk;
        const index_t j1 = std::min(out, j0 + kChunk);
        for (index_t j = j0; j < j1; ++j) grad_b[j] = T(0);
        for (index_t i = 0; i < n; ++i) {
            const T* row = dz + i * out;
            for (index_t j = j0; j < j1; ++j) grad_b[j] += row[j];
        }
    });
}

}  // namespace

template <typename T>
void linear_forward(const T* x, const T* w, const T* b, T* y, index_t n, index_t in, index_t out, Activation act) {
    // x is (n, in), w is (in, out), b is (out,) or null -> y is (n, out)
    gemm<T>(n, out, in, x, in, false, w, out, false, y, out, GemmEpilogue<T>{b, act});
}

template <typename T>
void linear_backward(const T* x, const T* w, const T* y, const T* grad_y, T* grad_x, T* grad_w, T* grad_b,
                     index_t n, index_t in, index_t out, Activation act) {
    // x is (n, in), w is (in, out), y and grad_y are (n, out)
    PooledArray<T> dz_buffer;
    const T* dz = grad_y;  // linear: dz is grad_y itself
    if (act != Activation::linear) {
        dz_buffer = pooled<T>(n * out);
        activation_backward_kernel<T>(act, y, grad_y, nullptr, dz_buffer.get(), n * out);  // the SIMD pass
        dz = dz_buffer.get();
    }
    if (readout_backward_fits<T>(n, in, out)) {
        // few outputs, many inputs: both products in one pass over the columns of x (linear_readout.hpp)
        readout_backward<T>(x, w, dz, grad_x, grad_w, n, in, out);
    } else {
        // grad_x (n, in) = dz (n, out) @ w^T, w is (in, out): an NT GEMM with K = out
        if (grad_x) gemm<T>(n, in, out, dz, out, false, w, out, true, grad_x, in);
        // grad_w (in, out) = x^T @ dz, x is (n, in): a TN GEMM with K = n
        gemm<T>(in, out, n, x, in, true, dz, out, false, grad_w, out);
    }
    column_sum(dz, grad_b, n, out);
}

template void linear_forward<float>(const float*, const float*, const float*, float*, index_t, index_t, index_t,
                                    Activation);
template void linear_forward<double>(const double*, const double*, const double*, double*, index_t, index_t,
                                     index_t, Activation);
template void linear_backward<float>(const float*, const float*, const float*, const float*, float*, float*,
                                     float*, index_t, index_t, index_t, Activation);
template void linear_backward<double>(const double*, const double*, const double*, const double*, double*,
                                      double*, double*, index_t, index_t, index_t, Activation);

}  // namespace fastdl
