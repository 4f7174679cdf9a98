// softmax_rows.hpp — the fused, numerically stable softmax cross-entropy of one row, written once
// over a vector-ops class (scalar::Ops, avx2::Ops, avx512::Ops; see vec_math.hpp). softmax_cross_entropy.cpp
// instantiates it inside one function per ISA carrying that ISA's target attribute and `flatten`,
// which inlines these templates and the Ops functions into it.
//
// One row, three sweeps over C elements (the second and third hit L1/L2):
//   1. m = max_k x_k
//   2. e_k = exp(x_k - m) written into the grad row, s = sum_k e_k (double)
//   3. p_k = e_k / s; grad and loss written/accumulated once.
// Elements whose target is non-zero (one per row for one-hot or labels) take a scalar fix-up after
// the third sweep.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "core/common.hpp"
#include "ops/softmax_cross_entropy.hpp"
#include "core/vec_math.hpp"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"  // vector arguments of the Ops templates; always inlined
#endif

namespace fastdl {

// What the third sweep of one row needs.
template <typename T>
struct CrossEntropyRow {
    T* g;            // grad row (C,), holds e_k on entry
    const T* x;      // logits row (C,)
    const T* y;      // target row (C,) or nullptr (labels)
    index_t label;   // the label, or -1 with a target row
    index_t n;       // C
    T m, inv, gs;    // row max, 1/s, grad_scale
    double logs;     // log s (standard loss only)
    T lo, hi;        // clip bounds in T (book loss)
    double lo64, hi64;
};

// Standard CE, one element with target yk != 0: grad, and -yk * log_softmax.
template <typename T>
inline double standard_lane(const CrossEntropyRow<T>& r, index_t k, T p, T yk) {
    r.g[k] = (p - yk) * r.gs;
    return static_cast<double>(yk) * (r.logs - (static_cast<double>(r.x[k]) - static_cast<double>(r.m)));
}

// Book loss, one element with target yk != 0: grad from the clipped p, the two-term loss in double,
// and its (1 - pc) factor collected in `excl` so the product over the row can drop it.
template <typename T>
inline double book_lane(const CrossEntropyRow<T>& r, index_t k, T p, T yk, double* excl) {
    r.g[k] = (clip_scalar(p, r.lo, r.hi) - yk) * r.gs;
    double pc = clip_scalar(static_cast<double>(p), r.lo64, r.hi64);
    double y = static_cast<double>(yk);
    *excl *= 1.0 - pc;
    if (y == 1.0) return -std::log(pc);  // a one-hot target: the second term is exactly zero
    return -y * std::log(pc) - (1.0 - y) * std::log(1.0 - pc);
}

// x is (n,) -> max_k x_k
template <class Ops, typename T>
inline T row_max(const T* x, index_t n) {
    constexpr index_t W = Ops::W;
    const auto ninf = Ops::set1(-std::numeric_limits<T>::infinity());
    auto a0 = ninf, a1 = ninf;
    index_t k = 0;
    for (; k + 2 * W <= n; k += 2 * W) {
        a0 = Ops::max(a0, Ops::load(x + k));
        a1 = Ops::max(a1, Ops::load(x + k + W));
    }
    for (; k + W <= n; k += W) a0 = Ops::max(a0, Ops::load(x + k));
    if (k < n) a0 = Ops::max(a0, Ops::load_n(x + k, n - k, ninf));
    return Ops::hmax(Ops::max(a0, a1));
}

// x, e are (n,): e = exp(x - m); returns sum_k e_k, summed in T within blocks of 256 and in double
// across blocks.
template <class Ops, typename T>
inline double exp_sum(const T* x, T m, T* e, index_t n) {
    constexpr index_t W = Ops::W;
    constexpr index_t block = 256;
    const auto mv = Ops::set1(m);
    const index_t full = n - n % W;
    double total = 0.0;
    for (index_t b = 0; b < full; b += block) {
        const index_t end = std::min(b + block, full);
        auto acc = Ops::zero();
        for (index_t k = b; k < end; k += W) {
            auto ev = Ops::exp(Ops::sub(Ops::load(x + k), mv));
            Ops::store(e + k, ev);
            acc = Ops::add(acc, ev);
        }
        total += Ops::hsum(acc);
    }
    if (full < n) {  // the tail: padding lanes are -inf, so exp gives 0
        auto xv = Ops::load_n(x + full, n - full, Ops::set1(-std::numeric_limits<T>::infinity()));
        auto ev = Ops::exp(Ops::sub(xv, mv));
        Ops::store_n(e + full, ev, n - full);
        total += Ops::hsum(ev);
    }
    return total;
}

// p_k exactly as the sweeps computed it (exp is lane by lane, so a broadcast gives the same value).
template <class Ops, typename T>
inline T lane_p(const CrossEntropyRow<T>& r, index_t k) {
    T lanes[Ops::W];
    Ops::store(lanes, Ops::mul(Ops::exp(Ops::sub(Ops::set1(r.x[k]), Ops::set1(r.m))), Ops::set1(r.inv)));
    return lanes[0];
}

// Calls fn(k, y_k) for every non-zero target of the row: the label, or a vector scan of y.
// Run after a sweep, so that the sweep's loop holds no calls (its accumulators stay in registers).
template <class Ops, typename T, class Fn>
inline void for_each_target(const CrossEntropyRow<T>& r, Fn fn) {
    if (!r.y) {
        fn(r.label, T(1));
        return;
    }
    constexpr index_t W = Ops::W;
    const index_t full = r.n - r.n % W;
    for (index_t k = 0; k < full; k += W) {
        unsigned nz = Ops::nonzero(Ops::load(r.y + k));
        for (; nz != 0; nz &= nz - 1) {
            index_t j = __builtin_ctz(nz);
            fn(k + j, r.y[k + j]);
        }
    }
    for (index_t k = full; k < r.n; ++k)
        if (r.y[k] != T(0)) fn(k, r.y[k]);
}

// Standard CE sweep: grad = (p - y) * gs; returns -sum_k y_k log softmax_k of the row.
template <class Ops, typename T>
inline double finish_standard(const CrossEntropyRow<T>& r) {
    constexpr index_t W = Ops::W;
    const auto inv = Ops::set1(r.inv), gs = Ops::set1(r.gs);
    const index_t full = r.n - r.n % W;
    for (index_t k = 0; k < full; k += W) {
        auto p = Ops::mul(Ops::load(r.g + k), inv);
        auto yv = r.y ? Ops::load(r.y + k) : Ops::zero();
        Ops::store(r.g + k, Ops::mul(Ops::sub(p, yv), gs));
    }
    for (index_t k = full; k < r.n; ++k) {  // the tail, element by element (same arithmetic)
        T p = r.g[k] * r.inv;
        r.g[k] = (p - (r.y ? r.y[k] : T(0))) * r.gs;
    }
    double loss = 0.0;
    for_each_target<Ops>(r, [&](index_t k, T yk) { loss += standard_lane(r, k, lane_p<Ops>(r, k), yk); });
    return loss;
}

// Book sweep: pc = clip(p, lo, hi), grad = (pc - y) * gs; returns
// sum_k[-y log pc - (1 - y) log(1 - pc)] with the pc of the loss clipped in double. The terms with
// y = 0 are -log of the product of their (1 - pc): one log per row (the product runs over every k,
// and the factors of the non-zero targets are divided out again). It cannot underflow: the p_k sum
// to 1, so it is at least about eps.
template <class Ops, typename T>
inline double finish_book(const CrossEntropyRow<T>& r) {
    constexpr index_t W = Ops::W;
    const auto inv = Ops::set1(r.inv), gs = Ops::set1(r.gs);
    const auto lo = Ops::set1(r.lo), hi = Ops::set1(r.hi);
    const auto lo64 = Ops::set1d(r.lo64), hi64 = Ops::set1d(r.hi64);
    auto prod0 = Ops::set1d(1.0), prod1 = Ops::set1d(1.0);  // float uses both (its two halves)
    const index_t full = r.n - r.n % W;
    for (index_t k = 0; k < full; k += W) {
        auto p = Ops::mul(Ops::load(r.g + k), inv);
        auto yv = r.y ? Ops::load(r.y + k) : Ops::zero();
        Ops::store(r.g + k, Ops::mul(Ops::sub(Ops::min(Ops::max(p, lo), hi), yv), gs));
        Ops::mul_one_minus_clipped(p, prod0, prod1, lo64, hi64);
    }
    double tail = 1.0;
    for (index_t k = full; k < r.n; ++k) {  // the tail, element by element (same arithmetic)
        T p = r.g[k] * r.inv;
        r.g[k] = (clip_scalar(p, r.lo, r.hi) - (r.y ? r.y[k] : T(0))) * r.gs;
        tail *= 1.0 - clip_scalar(static_cast<double>(p), r.lo64, r.hi64);
    }
    double loss = 0.0, excl = 1.0;
    for_each_target<Ops>(r, [&](index_t k, T yk) { loss += book_lane(r, k, lane_p<Ops>(r, k), yk, &excl); });
    double all = Ops::hprod(prod0) * Ops::hprod(prod1) * tail;
    return loss - std::log(all / excl);
}

// logits row `row` of a -> grad row written, returns the row's loss (before loss_scale).
template <class Ops, typename T>
inline double cross_entropy_row(const CrossEntropyArgs<T>& a, index_t row) {
    CrossEntropyRow<T> r;
    r.n = a.C;
    r.x = a.logits + row * a.C;
    r.g = a.grad + row * a.C;
    r.y = a.target ? a.target + row * a.C : nullptr;
    r.label = a.labels ? a.labels[row] : -1;
    r.m = row_max<Ops>(r.x, r.n);
    double s = exp_sum<Ops>(r.x, r.m, r.g, r.n);  // s >= 1: the max element gives exp(0)
    r.inv = static_cast<T>(1.0 / s);
    r.logs = a.book ? 0.0 : std::log(s);  // only the standard loss reads it
    r.gs = a.grad_scale;
    r.lo = a.lo;
    r.hi = a.hi;
    r.lo64 = a.lo64;
    r.hi64 = a.hi64;
    return a.book ? finish_book<Ops>(r) : finish_standard<Ops>(r);
}

// Rows [r0, r1) of a; each row's loss goes to a.row_loss[row].
template <class Ops, typename T>
inline void cross_entropy_rows(const CrossEntropyArgs<T>& a, index_t r0, index_t r1) {
    for (index_t row = r0; row < r1; ++row) a.row_loss[row] = cross_entropy_row<Ops>(a, row);
}

}  // namespace fastdl
