// vec_math.hpp — which SIMD path the softmax and activation kernels take (scalar, AVX2+FMA or
// AVX-512), chosen once at run time with __builtin_cpu_supports and overridable for tests, plus the
// portable scalar math that the scalar path and the lane fix-ups share.
//
// The vector math itself lives in vec_avx2.hpp and vec_avx512.hpp, in functions that carry their own
// target attribute, so the default (baseline x86-64) build runs on any x86-64 machine.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>

#include "core/common.hpp"

namespace fastdl {

enum class VecIsa : int { scalar = 0, avx2 = 1, avx512 = 2 };

inline const char* vec_isa_name(VecIsa isa) {
    switch (isa) {
        case VecIsa::avx512: return "avx512";
        case VecIsa::avx2: return "avx2";
        default: return "scalar";
    }
}

// The best path this CPU (and OS) supports; the x86 paths need x86.
inline VecIsa detect_vec_isa() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")) return VecIsa::avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return VecIsa::avx2;
#endif
    return VecIsa::scalar;
}

inline VecIsa best_vec_isa() {
    static const VecIsa best = detect_vec_isa();
    return best;
}

// -1: automatic (the best path); otherwise a forced VecIsa value.
inline std::atomic<int>& forced_vec_isa_state() {
    static std::atomic<int> state{-1};
    return state;
}

inline VecIsa active_vec_isa() {
    int forced = forced_vec_isa_state().load();
    return forced < 0 ? best_vec_isa() : static_cast<VecIsa>(forced);
}

// name is "auto", "scalar", "avx2" or "avx512"; a path this CPU cannot run is refused.
inline void force_vec_isa(const std::string& name) {
    if (name == "auto") {
        forced_vec_isa_state().store(-1);
        return;
    }
    VecIsa isa;
    if (name == "scalar") isa = VecIsa::scalar;
    else if (name == "avx2") isa = VecIsa::avx2;
    else if (name == "avx512") isa = VecIsa::avx512;
    else throw std::invalid_argument("force_vec_isa: name must be 'auto', 'scalar', 'avx2' or 'avx512'; got '" +
                                     name + "'");
    require(static_cast<int>(isa) <= static_cast<int>(best_vec_isa()),
            "force_vec_isa: this CPU cannot run the '" + name + "' path (best is '" +
                vec_isa_name(best_vec_isa()) + "')");
    forced_vec_isa_state().store(static_cast<int>(isa));
}

// ---------------------------------------------------------------------------------------------
// Scalar math shared by every path (the scalar path, and the vector paths' per-lane fix-ups).
// ---------------------------------------------------------------------------------------------

// Stable sigmoid: never exponentiates a positive number.
template <typename T>
inline T sigmoid_scalar(T x) {
    T e = std::exp(-std::fabs(x));
    return (x >= T(0) ? T(1) : e) / (T(1) + e);
}

template <typename T>
inline T clip_scalar(T v, T lo, T hi) {
    return std::min(std::max(v, lo), hi);
}

}  // namespace fastdl

// ---------------------------------------------------------------------------------------------
// The scalar path: the same interface as avx2::Ops / avx512::Ops with one lane, so the kernels
// are written once (softmax_rows.hpp, activations.cpp) and run on any CPU.
// ---------------------------------------------------------------------------------------------
namespace fastdl::scalar {

template <typename T>
struct Ops {
    using V = T;
    using D = double;
    static constexpr index_t W = 1;

    static V set1(T a) { return a; }
    static V zero() { return T(0); }
    static V load(const T* p) { return *p; }
    static V load_n(const T* p, index_t n, V fill) { return n > 0 ? *p : fill; }
    static void store(T* p, V v) { *p = v; }
    static void store_n(T* p, V v, index_t n) {
        if (n > 0) *p = v;
    }
    static V add(V a, V b) { return a + b; }
    static V sub(V a, V b) { return a - b; }
    static V mul(V a, V b) { return a * b; }
    static V div(V a, V b) { return a / b; }
    static V fmadd(V a, V b, V c) { return a * b + c; }
    static V max(V a, V b) { return a < b ? b : a; }
    static V min(V a, V b) { return b < a ? b : a; }
    static V abs(V a) { return std::fabs(a); }
    static V copysign(V a, V s) { return std::copysign(a, s); }
    static V select_nonneg(V a, V t, V f) { return a >= T(0) ? t : f; }
    static unsigned nonzero(V a) { return a != T(0) ? 1u : 0u; }
    static T hmax(V a) { return a; }
    static double hsum(V a) { return static_cast<double>(a); }
    static D set1d(double a) { return a; }
    static double hprod(D a) { return a; }
    static void mul_one_minus_clipped(V p, D& acc0, D& /*acc1*/, D lo, D hi) {
        acc0 *= 1.0 - clip_scalar(static_cast<double>(p), lo, hi);
    }
    static V exp(V x) { return std::exp(x); }
    static V expm1(V x) { return std::expm1(x); }
};

}  // namespace fastdl::scalar
