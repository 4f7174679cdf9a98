// epilogue.hpp — bias + activation applied to a finished (m, n) tile of c, in place.
#pragma once

#include "core/activation_scalar.hpp"
#include "core/activation_vector.hpp"
#include "core/common.hpp"

namespace fastdl {

// sigmoid and tanh cost an exp per element: add the bias, then apply the vectorised activation to
// the row while it is still in L1. c is (m, n) with row stride ldc; bias is (n,) or nullptr.
template <typename T>
inline void apply_vectorised_epilogue(T* c, index_t ldc, index_t m, index_t n, const T* bias, Activation act) {
    for (index_t i = 0; i < m; ++i) {
        T* row = c + i * ldc;
        if (bias != nullptr) {
            for (index_t j = 0; j < n; ++j) row[j] += bias[j];
        }
        activation_forward_serial<T>(act, row, row, n);
    }
}

// c is (m, n) with row stride ldc; bias is (n,) or nullptr.
template <Activation A, typename T>
inline void apply_epilogue_as(T* c, index_t ldc, index_t m, index_t n, const T* bias) {
    if (A == Activation::linear && bias == nullptr) return;
    for (index_t i = 0; i < m; ++i) {
        T* row = c + i * ldc;
        if (bias != nullptr) {
            for (index_t j = 0; j < n; ++j) row[j] = activate<A>(row[j] + bias[j]);
        } else {
            for (index_t j = 0; j < n; ++j) row[j] = activate<A>(row[j]);
        }
    }
}

// c is (m, n) with row stride ldc; bias is (n,) or nullptr (already offset to the tile's first column).
template <typename T>
inline void apply_epilogue(T* c, index_t ldc, index_t m, index_t n, const T* bias, Activation act) {
    switch (act) {
        case Activation::linear: apply_epilogue_as<Activation::linear>(c, ldc, m, n, bias); break;
        case Activation::sigmoid:
        case Activation::tanh: apply_vectorised_epilogue(c, ldc, m, n, bias, act); break;
        case Activation::relu: apply_epilogue_as<Activation::relu>(c, ldc, m, n, bias); break;
    }
}

}  // namespace fastdl
