"""The book's optimizer update rules, in NumPy: the oracle of the fused C++ step and the numpy backend's step.

Unlike the kernels, this updates its arguments IN PLACE (as the book's optimizers do): every parameter, the
states (velocities, AdaGrad's running sums) and, when ``clip > 0``, the gradients (the book clips them in
place). Each operation rounds in the parameters' dtype, in the book's order.
"""

import numpy as np


def parameter_update(rule, params, grads, states, lr, hyper, clip):
    # params[i], grads[i], states[i] are arrays of one shape; states is [] for 'sgd' and 'regularized_sgd'
    for i, (param, grad) in enumerate(zip(params, grads)):
        if clip > 0:
            np.clip(grad, -clip, clip, out=grad)
        if rule == "sgd":
            param -= lr * grad
        elif rule == "sgd_momentum":
            velocity = states[i]
            velocity *= hyper
            velocity += lr * grad
            param -= velocity
        elif rule == "adagrad":
            sum_square = states[i]
            sum_square += hyper + grad * grad
            param -= (lr / np.sqrt(sum_square)) * grad
        else:  # regularized_sgd
            param -= lr * grad + hyper * param
