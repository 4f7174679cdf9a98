"""Convolution geometry shared by every backend: padding and output sizes.

Padding: ``"same"`` keeps H×W at stride 1 (K//2 on each side for odd K; for even K,
(K-1)//2 before and K//2 after), ``"valid"`` is no padding, and an int pads that much on each side.
"""


def conv_padding(kernel_size, padding):
    """Return ``(pad_before, pad_after)`` for one spatial axis."""
    if isinstance(padding, str):
        if padding == "same":
            return (kernel_size - 1) // 2, kernel_size // 2
        if padding == "valid":
            return 0, 0
        raise ValueError(f"padding must be 'same', 'valid' or an int >= 0, got {padding!r}")
    return int(padding), int(padding)


def conv_output_size(size, kernel_size, stride, pad_before, pad_after):
    """Output length along one axis: floor((size + pads - K) / stride) + 1."""
    return (size + pad_before + pad_after - kernel_size) // stride + 1
