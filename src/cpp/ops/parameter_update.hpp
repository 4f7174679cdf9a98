// parameter_update.hpp — one optimizer step over every parameter of a network in one call: the book's SGD,
// SGD with momentum, AdaGrad and weight-decayed SGD update rules, with optional gradient clipping (chapter 6),
// float32 and float64. Each rule is computed in the parameters' dtype, one rounding per operation in the
// book's NumPy order, so the result is bit-identical to the book's update.
#pragma once

#include <vector>

#include "core/common.hpp"

namespace fastdl {

enum class UpdateRule { sgd, sgd_momentum, adagrad, regularized_sgd };

// One parameter: param, grad and (momentum, adagrad) state are (n,), distinct memory.
template <typename T>
struct ParamSlot {
    T* param;
    T* grad;   // written only when clipping: the book clips the gradient in place
    T* state;  // the velocity (sgd_momentum) or the running sum of squares (adagrad); null otherwise
    index_t n;
};

struct UpdateSettings {
    UpdateRule rule = UpdateRule::sgd;
    double lr = 0.01;
    double hyper = 0.0;  // momentum (sgd_momentum), eps (adagrad), alpha (regularized_sgd)
    double clip = 0.0;   // > 0: clip every gradient to [-clip, clip] in place first
};

// Every slot updated in place by s.rule:
//   sgd              param -= lr * grad
//   sgd_momentum     v = v * momentum; v += lr * grad; param -= v
//   adagrad          s += eps + grad * grad; param -= (lr / sqrt(s)) * grad
//   regularized_sgd  param -= lr * grad + alpha * param
// Threaded over equal ranges of all slots' elements together; elementwise, so no result depends on the
// thread count.
template <typename T>
void parameter_update(const std::vector<ParamSlot<T>>& slots, const UpdateSettings& s);

}  // namespace fastdl
