"""NumPy reference: matmul and the Dense layer's fused linear (GEMM + bias + activation)."""

from .activations import activation as _activation
from .activations import activation_backward as _activation_backward


def matmul(a, b, trans_a=False, trans_b=False):
    """op(a) @ op(b), op = transpose when the flag is set."""
    # op(a) is (M, K), op(b) is (K, N) -> (M, N)
    a = a.T if trans_a else a
    b = b.T if trans_b else b
    return a @ b


def linear(x, w, b=None, activation="linear"):
    """y = act(x @ w + b)."""
    # x is (N, in), w is (in, out), b is (out,) or None -> y is (N, out)
    z = x @ w
    if b is not None:
        z += b
    if activation == "linear":
        return z
    return _activation(z, activation)


def linear_backward(x, w, y, grad_y, activation="linear", need_grad_x=True):
    """Gradients of linear(): (grad_x, grad_w, grad_b); grad_x is None when need_grad_x is false."""
    # x is (N, in), w is (in, out), y and grad_y are (N, out)
    # -> grad_x (N, in), grad_w (in, out), grad_b (out,)
    dz = _activation_backward(y, grad_y, activation)
    grad_x = dz @ w.T if need_grad_x else None
    grad_w = x.T @ dz
    grad_b = dz.sum(axis=0)
    return grad_x, grad_w, grad_b
