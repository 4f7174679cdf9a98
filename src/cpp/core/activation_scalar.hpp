// activation_scalar.hpp — the four activations (the Activation enum), as scalar functions, and their
// derivatives expressed through the activation OUTPUT y (as the backward kernels need them).
#pragma once

#include <cmath>
#include <string>

#include "core/common.hpp"

namespace fastdl {

enum class Activation { linear, sigmoid, tanh, relu };

inline Activation parse_activation(const std::string& name) {
    if (name == "linear") return Activation::linear;
    if (name == "sigmoid") return Activation::sigmoid;
    if (name == "tanh") return Activation::tanh;
    if (name == "relu") return Activation::relu;
    throw std::invalid_argument("activation must be one of 'linear', 'sigmoid', 'tanh', 'relu'; got '" +
                                name + "'");
}

// y = act(z) for one element. Sigmoid never exponentiates a positive number (stable for large |z|).
template <Activation A, typename T>
inline T activate(T z) {
    if constexpr (A == Activation::sigmoid) {
        if (z >= T(0)) return T(1) / (T(1) + std::exp(-z));
        T e = std::exp(z);
        return e / (T(1) + e);
    } else if constexpr (A == Activation::tanh) {
        return std::tanh(z);
    } else if constexpr (A == Activation::relu) {
        return !(z <= T(0)) ? z : T(0);  // NaN propagates, as in NumPy
    } else {
        return z;
    }
}

}  // namespace fastdl
