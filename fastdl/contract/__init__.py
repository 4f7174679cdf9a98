"""The contract between ``fastdl.kernels`` and its backends: the kernel names, the signature every backend
implements, and the rules every input must satisfy (``fastdl.contract.checks``).

This package imports nothing else from fastdl, so everything may import it: the public kernel API, the three
backends (``fastdl.reference``, ``fastdl.cpu``, ``fastdl.cuda``) and the tests. A backend receives arrays
that ``fastdl.kernels`` has already validated and made C-contiguous; it computes in the inputs' dtype and
returns new arrays.
"""

#: every kernel a backend implements, and the signature it implements it with (the public wrappers in
#: ``fastdl.kernels`` take keyword arguments and defaults, and turn ``keep_prob``/``seed`` into ``key``/``threshold``)
BACKEND_SIGNATURES = {
    "activation": "(x, name) -> y",
    "activation_backward": "(y, grad_y, name, mask) -> grad_x",
    "matmul": "(a, b, trans_a, trans_b) -> c",
    "linear": "(x, w, b, activation) -> y",
    "linear_backward": "(x, w, y, grad_y, activation, need_grad_x) -> (grad_x, grad_w, grad_b)",
    "conv2d": "(x, w, stride, padding, activation) -> y",
    "conv2d_backward": "(x, w, grad_y, stride, padding, need_grad_x, activation, y, mask) -> (grad_x, grad_w)",
    "conv2d_dropout": "(x, w, stride, padding, activation, key, threshold, first) -> (y, mask)",
    "softmax_cross_entropy": "(logits, target, eps, reduction) -> (loss, grad_logits)",
    "cross_entropy": "(logits, target, reduction) -> (loss, grad_logits)",
    "rnn_forward": "(x, h0, w, b) -> (h_seq, cache)",
    "rnn_backward": "(grad_h_seq, cache) -> (grad_x, grad_h0, grad_w, grad_b)",
    "lstm_forward": "(x, h0, c0, w, b) -> (h_seq, c_last, cache)",
    "lstm_backward": "(grad_h_seq, cache, grad_c_last) -> (grad_x, grad_h0, grad_c0, grad_w, grad_b)",
    "gru_forward": "(x, h0, w, b) -> (h_seq, cache)",
    "gru_backward": "(grad_h_seq, cache) -> (grad_x, grad_h0, grad_w, grad_b)",
    "dropout": "(x, key, threshold) -> (y, mask)",
    "dropout_backward": "(grad_y, mask) -> grad_x",
}

KERNEL_NAMES = tuple(BACKEND_SIGNATURES)


def kernel_table(namespace):
    """``{name: function}`` for every kernel, taken from a backend module's ``namespace`` (its ``globals()``);
    a KeyError names the first kernel the backend lacks."""
    return {name: namespace[name] for name in KERNEL_NAMES}
