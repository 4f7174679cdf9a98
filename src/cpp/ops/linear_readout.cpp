// linear_readout.cpp — the read-out layer's backward products of linear_readout.hpp, written once over the Ops
// of vec_avx2.hpp / vec_avx512.hpp, with the number of outputs a template argument (so every accumulator is a
// register) and one entry per ISA.
//
// A thread's columns go in panels of PV vectors of W input columns:
//   grad_w: blocks of IB vectors, acc[j][v] (lanes: inputs) += x[r, block] * dz[r, j] over the rows r, then
//           written transposed;
//   grad_x: wt[j] = w[panel, j] (a transposed copy of the panel's rows of w, on the stack), then for each row r,
//           grad_x[r, panel] = sum over j of dz[r, j] * wt[j].
#include "ops/linear_readout.hpp"

#include <algorithm>

#include "core/vec_avx2.hpp"
#include "core/vec_avx512.hpp"
#include "core/vec_math.hpp"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"  // vector arguments of the Ops templates; always inlined
#endif

namespace fastdl {

namespace {

constexpr index_t kMaxOutputBytes = 48;  // out * sizeof(T): 12 floats or 6 doubles
constexpr index_t kMinInputs = 1024;     // fewer inputs: the two GEMMs
constexpr index_t kPrefetchBlocks = 4;   // how far ahead of the block x is fetched

// grad_w[i + c, j] = sum over r of x[r, i + c] * dz[r, j] for the block of columns [i, i + cols), cols <= IB * W:
// IB vectors of inputs per j, chained over the rows, then written transposed.
// x is (n, in), dz is (n, OUT), grad_w is (in, OUT).
template <class Ops, typename T, int OUT, int IB>
inline void grad_w_block(const T* x, const T* dz, T* grad_w, index_t n, index_t in, index_t i, index_t cols) {
    using V = typename Ops::V;
    constexpr index_t W = Ops::W, kLine = 64 / index_t(sizeof(T));
    index_t lanes[IB];  // vector v holds columns [i + v*W, i + v*W + lanes[v])
    for (int v = 0; v < IB; ++v) lanes[v] = std::clamp<index_t>(cols - v * W, 0, W);
    V acc[OUT][IB];
    for (int j = 0; j < OUT; ++j)
        for (int v = 0; v < IB; ++v) acc[j][v] = Ops::zero();
    for (index_t r = 0; r < n; ++r) {
        // the rows of x are far apart (one stream per row): fetch this row's columns a few blocks ahead
        if (i + (kPrefetchBlocks + 1) * IB * W <= in) {
            const T* ahead = x + r * in + i + kPrefetchBlocks * IB * W;
            for (index_t line = 0; line < IB * W; line += kLine) __builtin_prefetch(ahead + line);
        }
        V xv[IB];
        for (int v = 0; v < IB; ++v) {
            const T* p = x + r * in + i + v * W;
            xv[v] = lanes[v] == W ? Ops::load(p) : Ops::load_n(p, lanes[v], Ops::zero());
        }
        for (int j = 0; j < OUT; ++j) {
            const V d = Ops::set1(dz[r * OUT + j]);
            for (int v = 0; v < IB; ++v) acc[j][v] = Ops::fmadd(d, xv[v], acc[j][v]);
        }
    }
    alignas(64) T block[OUT][IB * W];
    for (int j = 0; j < OUT; ++j)
        for (int v = 0; v < IB; ++v) Ops::store(&block[j][v * W], acc[j][v]);
    for (index_t c = 0; c < cols; ++c)
        for (int j = 0; j < OUT; ++j) grad_w[(i + c) * OUT + j] = block[j][c];
}

// grad_x[r, i + c] = sum over j of dz[r, j] * w[i + c, j] (chained in j) for the panel of columns [i, i + cols),
// cols <= PV * W: w's rows of the panel transposed on the stack, then grad_x row by row (PV independent chains,
// one contiguous run of the row written at a time). w is (in, OUT), dz is (n, OUT), grad_x is (n, in).
template <class Ops, typename T, int OUT, int PV>
inline void grad_x_panel(const T* w, const T* dz, T* grad_x, index_t n, index_t in, index_t i, index_t cols) {
    using V = typename Ops::V;
    constexpr index_t W = Ops::W;
    alignas(64) T wt[OUT][PV * W];
    for (index_t c = 0; c < PV * W; ++c)
        for (int j = 0; j < OUT; ++j) wt[j][c] = c < cols ? w[(i + c) * OUT + j] : T(0);
    const index_t full = cols / W, tail = cols % W;
    for (index_t r = 0; r < n; ++r) {
        V d[OUT];
        for (int j = 0; j < OUT; ++j) d[j] = Ops::set1(dz[r * OUT + j]);
        V sum[PV];
        for (int v = 0; v < PV; ++v) sum[v] = Ops::zero();
        for (int j = 0; j < OUT; ++j)
            for (int v = 0; v < PV; ++v) sum[v] = Ops::fmadd(d[j], Ops::load(&wt[j][v * W]), sum[v]);
        T* row = grad_x + r * in + i;
        for (index_t v = 0; v < full; ++v) Ops::store(row + v * W, sum[v]);
        if (tail > 0) Ops::store_n(row + full * W, sum[full], tail);
    }
}

// Columns [i0, i1) of x: panels of PV * W columns, each first read for grad_w (blocks of IB * W), then written
// in grad_x.
template <class Ops, typename T, int OUT, int IB, int PV>
inline void readout_columns(const T* x, const T* w, const T* dz, T* grad_x, T* grad_w, index_t n, index_t in,
                            index_t i0, index_t i1) {
    constexpr index_t block = IB * Ops::W, panel = PV * Ops::W;
    static_assert(panel % block == 0, "a panel is whole blocks");
    for (index_t p = i0; p < i1; p += panel) {
        const index_t p1 = std::min(i1, p + panel);
        for (index_t i = p; i < p1; i += block)
            grad_w_block<Ops, T, OUT, IB>(x, dz, grad_w, n, in, i, std::min(block, p1 - i));
        if (grad_x != nullptr) grad_x_panel<Ops, T, OUT, PV>(w, dz, grad_x, n, in, p, p1 - p);
    }
}

template <typename T>
using Range = void (*)(const T* x, const T* w, const T* dz, T* grad_x, T* grad_w, index_t n, index_t in, index_t i0,
                       index_t i1);

#if defined(__x86_64__)
// Vectors of inputs per grad_w block (OUT x IB accumulators) and per grad_x panel: AVX-512 has 32 registers,
// AVX2 16.
constexpr int kBlockVectorsAvx512 = 2, kPanelVectorsAvx512 = 8;
constexpr int kBlockVectorsAvx2 = 1, kPanelVectorsAvx2 = 4;

template <typename T, int OUT>
[[gnu::target("avx512f,avx512dq"), gnu::flatten]] void range_avx512(const T* x, const T* w, const T* dz, T* grad_x,
                                                                     T* grad_w, index_t n, index_t in, index_t i0,
                                                                     index_t i1) {
    readout_columns<avx512::Ops<T>, T, OUT, kBlockVectorsAvx512, kPanelVectorsAvx512>(x, w, dz, grad_x, grad_w, n,
                                                                                      in, i0, i1);
}

template <typename T, int OUT>
[[gnu::target("avx2,fma"), gnu::flatten]] void range_avx2(const T* x, const T* w, const T* dz, T* grad_x, T* grad_w,
                                                           index_t n, index_t in, index_t i0, index_t i1) {
    readout_columns<avx2::Ops<T>, T, OUT, kBlockVectorsAvx2, kPanelVectorsAvx2>(x, w, dz, grad_x, grad_w, n, in,
                                                                                i0, i1);
}

// The entry for `out` outputs (1 <= out <= kMaxOutputBytes / sizeof(T)).
template <typename T, int OUT = 1>
Range<T> range_for(VecIsa isa, index_t out) {
    if constexpr (OUT * index_t(sizeof(T)) <= kMaxOutputBytes) {
        if (out == OUT) return isa == VecIsa::avx512 ? &range_avx512<T, OUT> : &range_avx2<T, OUT>;
        return range_for<T, OUT + 1>(isa, out);
    } else {
        return nullptr;
    }
}
#endif

}  // namespace

template <typename T>
bool readout_backward_fits(index_t n, index_t in, index_t out) {
#if defined(__x86_64__)
    return active_vec_isa() != VecIsa::scalar && out >= 1 && out * index_t(sizeof(T)) <= kMaxOutputBytes &&
           in >= kMinInputs && n >= 1;
#else
    (void)n, (void)in, (void)out;
    return false;
#endif
}

template <typename T>
void readout_backward(const T* x, const T* w, const T* dz, T* grad_x, T* grad_w, index_t n, index_t in,
                      index_t out) {
    // x is (n, in), w is (in, out), dz is (n, out) -> grad_w (in, out), grad_x (n, in) or null
#if defined(__x86_64__)
    const VecIsa isa = active_vec_isa();
    const Range<T> range = range_for<T>(isa, out);
    // one panel's columns: whole panels per range
    const index_t step = isa == VecIsa::avx512 ? kPanelVectorsAvx512 * avx512::Ops<T>::W
                                               : kPanelVectorsAvx2 * avx2::Ops<T>::W;
    const int nt = threads_for(n * in * out, index_t(1) << 15);
    parallel_ranges(in, step, nt, kTasksPerThread,
                    [&](index_t i0, index_t i1) { range(x, w, dz, grad_x, grad_w, n, in, i0, i1); });
#else
    (void)x, (void)w, (void)dz, (void)grad_x, (void)grad_w, (void)n, (void)in, (void)out;
#endif
}

template bool readout_backward_fits<float>(index_t, index_t, index_t);
template bool readout_backward_fits<double>(index_t, index_t, index_t);
template void readout_backward<float>(const float*, const float*, const float*, float*, float*, index_t, index_t,
                                      index_t);
template void readout_backward<double>(const double*, const double*, const double*, double*, double*, index_t,
                                       index_t, index_t);

}  // namespace fastdl
