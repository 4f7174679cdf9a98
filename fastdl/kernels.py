"""The public kernel API: one function per kernel, the same on every backend.

Each function validates its inputs once (``fastdl.contract.checks``), makes the one explicit contiguous copy a
backend may need (``_contiguous``), and calls the current backend (``fastdl.backend``). Inputs are
never modified; results are new arrays of the inputs' dtype (float32 or float64).

The sequence kernels return a ``cache`` dict; it records the backend that made it, and the matching
``*_backward`` runs on that same backend.
"""

import numbers
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

from fastdl.contract import checks as chk
from fastdl import backend as _backend
from fastdl.contract import KERNEL_NAMES
from fastdl.contract.conv_geometry import conv_output_size, conv_padding

__all__ = [
    "activation", "activation_backward", "matmul", "linear", "linear_backward", "conv2d",
    "conv2d_backward", "conv2d_dropout", "softmax_cross_entropy", "cross_entropy", "rnn_forward", "rnn_backward",
    "lstm_forward", "lstm_backward", "gru_forward", "gru_backward", "dropout", "dropout_backward",
    "parameter_update", "try_parameter_update", "take_rows", "KERNEL_NAMES",
]


#: a float32 or float64 NumPy array (on the cuda backend the kernels also take and return device arrays,
#: which these annotations do not describe)
FloatArray = npt.NDArray[np.floating[Any]]
#: a dropout mask, True where the value is kept
BoolArray = npt.NDArray[np.bool_]
#: what a sequence kernel's forward saves for its backward (it records the backend that made it)
Cache = Dict[str, Any]
#: a convolution's padding: "same", "valid" or a number of pixels on every side
Padding = Union[str, int]


def _contiguous(op, *arrays, dtype=None):
    """C-contiguous views or copies of the arrays (cast to ``dtype`` when given: integer labels to
    int64); the only place a kernel input is copied or cast. Non-contiguous views, Fortran-order,
    negatively strided and read-only arrays all arrive here; the originals are never written to.

    Device arrays pass through untouched, but only the cuda backend may receive them.
    """
    out = []
    for a in arrays:
        if a is None:
            out.append(None)
        elif type(a) is np.ndarray and dtype is None and a.flags.c_contiguous:
            out.append(a)  # the common case: nothing to copy (np.asarray would return a itself)
        elif chk.is_device_array(a):
            name = _backend.get_backend()
            if name != "cuda":
                raise TypeError(f"{op}: got a device array (it has __cuda_array_interface__) but the backend "
                                f"is {name!r}; use fastdl.use_backend('cuda') or copy it to the host")
            chk.require_c_contiguous_device(op, a)
            out.append(a)
        else:
            out.append(np.asarray(a, dtype=dtype, order="C"))  # keeps 0-d arrays 0-d
    return out


def _impl(kernel, backend_name=None):
    return getattr(_backend.module(backend_name), kernel)


def _plain(*arrays):
    """True when every array is a C-contiguous host NumPy array of one dtype, float32 or float64: the common
    case, in which a kernel's checks come down to its shape rules and ``_contiguous`` has nothing to do. The
    kernels answer it first and leave everything else to their full checks."""
    first = arrays[0]
    if type(first) is not np.ndarray or first.dtype not in chk.FLOAT_DTYPES:
        return False
    dtype = first.dtype
    for a in arrays:
        if type(a) is not np.ndarray or a.dtype != dtype or not a.flags.c_contiguous:
            return False
    return True


# ----------------------------------------------------------------------------------------------
# activations
# ----------------------------------------------------------------------------------------------

def activation(x: FloatArray, name: str) -> FloatArray:
    """``name(x)`` elementwise; name is 'linear', 'sigmoid', 'tanh' or 'relu'."""
    chk.common_float_dtype("activation", x=x)
    chk.require_activation("activation", name)
    (x,) = _contiguous("activation", x)
    return _impl("activation")(x, name)


def activation_backward(y: FloatArray, grad_y: FloatArray, name: str, *,
                        mask: Optional[BoolArray] = None) -> FloatArray:
    """Input gradient of an activation, from its output ``y`` and the output gradient. With ``mask`` (the bool
    mask of a ``dropout`` applied to ``y``, of y's shape) the gradient is also 0 where the mask is False: the
    gradient through the activation and the dropout after it, in one pass over memory."""
    op = "activation_backward"
    chk.common_float_dtype(op, y=y, grad_y=grad_y)
    chk.require_activation(op, name)
    chk.require_shape(op, "grad_y", grad_y, chk.shape_of(y), "it must match y")
    if mask is not None:
        chk.require_bool_mask(op, mask, chk.shape_of(y))
    y, grad_y, mask = _contiguous(op, y, grad_y, mask)
    return _impl(op)(y, grad_y, name, mask)


# ----------------------------------------------------------------------------------------------
# dropout
# ----------------------------------------------------------------------------------------------

DROPOUT_BITS = 24  # the keep test compares 24 hashed bits with round(keep_prob * 2**24)


def dropout(x: FloatArray, keep_prob: float, seed: int, first: int = 0) -> Tuple[FloatArray, BoolArray]:
    """The book's dropout (no rescaling): returns ``(y, mask)``, ``mask`` a bool array of x's shape
    that keeps each element with probability ``keep_prob``, and ``y = x * mask``.

    The mask is a pure function of ``(seed, first, x.shape, keep_prob)``: a counter-based hash of each
    element's flat index (``src/cpp/ops/dropout_hash.hpp``), the same on every backend and thread count.
    ``seed`` is an int in [0, 2**64); draw a new one for every call to get fresh masks. ``first`` is the
    flat index of x's first element in a larger array the mask is drawn for: rows ``r0:r1`` of a batch
    with ``first = r0 * row_size`` get exactly those rows of the whole batch's mask (data-parallel ranks
    use it to draw, between them, the mask one process would draw).
    """
    op = "dropout"
    chk.common_float_dtype(op, x=x)
    threshold = _dropout_threshold(op, keep_prob, seed, first, "x", chk.shape_of(x))
    (x,) = _contiguous(op, x)
    return _impl(op)(x, int(seed), threshold, int(first))


def _dropout_threshold(op, keep_prob, seed, first, name, shape):
    """Checks a dropout's keep_prob, seed and first for the array ``name`` of ``shape`` the mask is drawn for;
    returns the keep threshold round(keep_prob * 2**24) that the backends compare the hashed bits with."""
    chk.require_probability(op, "keep_prob", keep_prob)
    chk.require_seed(op, seed)
    chk.require_seed(op, first, "first")
    if int(first) + int(np.prod(shape, dtype=np.int64)) > 2**64:
        raise ValueError(f"{op}: first + {name}.size must be at most 2**64, got first={first} and {name} of shape "
                         f"{tuple(shape)}")
    return int(round(float(keep_prob) * (1 << DROPOUT_BITS)))


def dropout_backward(grad_y: FloatArray, mask: BoolArray) -> FloatArray:
    """Input gradient of ``dropout``: ``grad_y`` where ``mask`` is True, else 0."""
    op = "dropout_backward"
    chk.common_float_dtype(op, grad_y=grad_y)
    chk.require_bool_mask(op, mask, chk.shape_of(grad_y))
    grad_y, mask = _contiguous(op, grad_y, mask)
    return _impl(op)(grad_y, mask)


# ----------------------------------------------------------------------------------------------
# matmul and the fused Dense kernel
# ----------------------------------------------------------------------------------------------

def matmul(a: FloatArray, b: FloatArray, *, trans_a: bool = False, trans_b: bool = False) -> FloatArray:
    """``op(a) @ op(b)`` where ``op`` transposes when its flag is set. a, b are 2-D."""
    op = "matmul"
    chk.require_ndim(op, "a", a, 2, "(M, K) or (K, M) with trans_a")
    chk.require_ndim(op, "b", b, 2, "(K, N) or (N, K) with trans_b")
    chk.common_float_dtype(op, a=a, b=b)
    chk.require_flag(op, "trans_a", trans_a)
    chk.require_flag(op, "trans_b", trans_b)
    ka = chk.shape_of(a)[0 if trans_a else 1]
    kb = chk.shape_of(b)[1 if trans_b else 0]
    if ka != kb:
        raise ValueError(f"{op}: inner dimensions differ: a is {chk.shape_of(a)} (trans_a={trans_a}) and b is "
                         f"{chk.shape_of(b)} (trans_b={trans_b}); need op(a).shape[1] == op(b).shape[0]")
    a, b = _contiguous(op, a, b)
    return _impl(op)(a, b, bool(trans_a), bool(trans_b))


def _check_dense(op, x, w):
    chk.require_ndim(op, "x", x, 2, "(N, in)")
    chk.require_ndim(op, "w", w, 2, "(in, out)")
    if chk.shape_of(x)[1] != chk.shape_of(w)[0]:
        raise ValueError(f"{op}: x is {chk.shape_of(x)} and w is {chk.shape_of(w)}; need x.shape[1] == w.shape[0]")
    return chk.shape_of(x)[0], chk.shape_of(w)[1]


def _dense_shapes_fit(x, w, activation):
    """The common case of a dense kernel's rules: x (N, in) and w (in, out), and a known activation name."""
    return (x.ndim == 2 and w.ndim == 2 and x.shape[1] == w.shape[0] and type(activation) is str
            and activation in chk.ACTIVATIONS)


def _flat_bias(op, b, n_out):
    """A bias of shape (out,) or the book's (1, out), as a 1-D (out,) array (a view when possible)."""
    shape = chk.shape_of(b)
    if shape not in ((n_out,), (1, n_out)):
        raise ValueError(f"{op}: argument b has shape {shape}, expected ({n_out},) or (1, {n_out})")
    return b.reshape(n_out) if len(shape) == 2 else b


def linear(x: FloatArray, w: FloatArray, b: Optional[FloatArray] = None, activation: str = "linear") -> FloatArray:
    """Dense forward ``act(x @ w + b)``. x is (N, in), w is (in, out), b is (out,), (1, out) or None."""
    op = "linear"
    if (_plain(x, w) if b is None else _plain(x, w, b)) and _dense_shapes_fit(x, w, activation):
        n_out = w.shape[1]
        if b is None or b.shape == (n_out,) or b.shape == (1, n_out):
            return _impl(op)(x, w, b if b is None or b.ndim == 1 else b.reshape(n_out), activation)
    _, n_out = _check_dense(op, x, w)
    arrays = {"x": x, "w": w} if b is None else {"x": x, "w": w, "b": b}
    chk.common_float_dtype(op, **arrays)
    chk.require_activation(op, activation)
    if b is not None:
        b = _flat_bias(op, b, n_out)
    x, w, b = _contiguous(op, x, w, b)
    return _impl(op)(x, w, b, activation)


def linear_backward(x: FloatArray, w: FloatArray, y: FloatArray, grad_y: FloatArray, activation: str = "linear", *,
                    need_grad_x: bool = True) -> Tuple[Optional[FloatArray], FloatArray, FloatArray]:
    """Dense backward: returns ``(grad_x (N, in), grad_w (in, out), grad_b (out,))`` from the saved y.
    With ``need_grad_x=False`` (the first layer of a network) grad_x is not computed and is None."""
    op = "linear_backward"
    if _plain(x, w, y, grad_y) and _dense_shapes_fit(x, w, activation) and type(need_grad_x) is bool:
        if y.shape == (x.shape[0], w.shape[1]) and grad_y.shape == y.shape:
            return _impl(op)(x, w, y, grad_y, activation, need_grad_x)
    n, n_out = _check_dense(op, x, w)
    chk.common_float_dtype(op, x=x, w=w, y=y, grad_y=grad_y)
    chk.require_shape(op, "y", y, (n, n_out), "the output of linear(x, w)")
    chk.require_shape(op, "grad_y", grad_y, (n, n_out), "it must match y")
    chk.require_activation(op, activation)
    chk.require_flag(op, "need_grad_x", need_grad_x)
    x, w, y, grad_y = _contiguous(op, x, w, y, grad_y)
    return _impl(op)(x, w, y, grad_y, activation, need_grad_x)


# ----------------------------------------------------------------------------------------------
# convolution
# ----------------------------------------------------------------------------------------------

def _conv_output_shape(op, x, w, stride, padding):
    chk.require_ndim(op, "x", x, 4, "(B, C_in, H, W)")
    chk.require_ndim(op, "w", w, 4, "(C_in, C_out, K, K)")
    chk.require_stride(op, stride)
    chk.require_padding(op, padding)
    batch, c_in, height, width = chk.shape_of(x)
    w_c_in, c_out, k, k2 = chk.shape_of(w)
    if k != k2:
        raise ValueError(f"{op}: kernel must be square, w is {chk.shape_of(w)} (C_in, C_out, K, K)")
    if k < 1:
        raise ValueError(f"{op}: kernel size must be >= 1, w is {chk.shape_of(w)}")
    if w_c_in != c_in:
        raise ValueError(f"{op}: channel mismatch: x is {chk.shape_of(x)} (B, C_in, H, W) and w is "
                         f"{chk.shape_of(w)} (C_in, C_out, K, K); need x.shape[1] == w.shape[0]")
    before, after = conv_padding(k, padding)
    h_out = conv_output_size(height, k, stride, before, after)
    w_out = conv_output_size(width, k, stride, before, after)
    if h_out < 1 or w_out < 1:
        raise ValueError(f"{op}: kernel {k}x{k} is larger than the padded image: x is {chk.shape_of(x)}, "
                         f"padding={padding!r} gives {height + before + after}x{width + before + after}")
    return batch, c_out, h_out, w_out


def conv2d(x: FloatArray, w: FloatArray, *, stride: int = 1, padding: Padding = "same",
           activation: str = "linear") -> FloatArray:
    """Cross-correlation. x is (B, C_in, H, W), w is (C_in, C_out, K, K) -> y (B, C_out, H_out, W_out), with
    ``activation`` ('linear', 'sigmoid', 'tanh', 'relu') applied to y as it is written (no second pass)."""
    op = "conv2d"
    _conv_output_shape(op, x, w, stride, padding)
    chk.common_float_dtype(op, x=x, w=w)
    chk.require_activation(op, activation)
    x, w = _contiguous(op, x, w)
    return _impl(op)(x, w, int(stride), padding if isinstance(padding, str) else int(padding), activation)


def conv2d_dropout(x: FloatArray, w: FloatArray, keep_prob: float, seed: int, *, stride: int = 1,
                   padding: Padding = "same", activation: str = "linear",
                   first: int = 0) -> Tuple[FloatArray, BoolArray]:
    """``dropout(conv2d(x, w, stride=, padding=, activation=), keep_prob, seed, first)`` in one kernel: returns
    ``(y, mask)``, both (B, C_out, H_out, W_out), the very values of the two calls. The cpu backend applies the
    mask to each band of output rows while it is still in cache (the direct convolution of a first layer on
    grey images), so the convolution's output is written once instead of written, read and written again."""
    op = "conv2d_dropout"
    out_shape = _conv_output_shape(op, x, w, stride, padding)
    chk.common_float_dtype(op, x=x, w=w)
    chk.require_activation(op, activation)
    threshold = _dropout_threshold(op, keep_prob, seed, first, "y", out_shape)
    x, w = _contiguous(op, x, w)
    return _impl(op)(x, w, int(stride), padding if isinstance(padding, str) else int(padding), activation,
                     int(seed), threshold, int(first))


def conv2d_backward(x: FloatArray, w: FloatArray, grad_y: FloatArray, *, stride: int = 1, padding: Padding = "same",
                    need_grad_x: bool = True, activation: str = "linear", y: Optional[FloatArray] = None,
                    mask: Optional[BoolArray] = None) -> Tuple[Optional[FloatArray], FloatArray]:
    """Gradients of conv2d: returns ``(grad_x like x, grad_w like w)``. With ``need_grad_x=False``
    (the first layer of a network, whose input needs no gradient) only grad_w is computed and
    ``None`` takes grad_x's place.

    With ``activation`` (and ``y``, the output of ``conv2d(..., activation=)``, or of ``conv2d_dropout``, and
    that dropout's ``mask``), ``grad_y`` is the gradient of that output: the result is
    ``conv2d_backward(x, w, activation_backward(y, grad_y, activation, mask=mask))``, and the cpu backend takes
    each image's gradient through the activation and the mask inside the weight gradient, without writing it
    out (the direct convolution of a first layer on grey images, when only grad_w is asked for)."""
    op = "conv2d_backward"
    out_shape = _conv_output_shape(op, x, w, stride, padding)
    chk.common_float_dtype(op, x=x, w=w, grad_y=grad_y)
    chk.require_shape(op, "grad_y", grad_y, out_shape, "the shape of conv2d(x, w)")
    chk.require_flag(op, "need_grad_x", need_grad_x)
    chk.require_activation(op, activation)
    if y is None and activation != "linear":
        raise ValueError(f"{op}: activation={activation!r} needs y, the output of conv2d(x, w, activation=...)")
    if y is not None:
        chk.common_float_dtype(op, x=x, y=y)
        chk.require_shape(op, "y", y, out_shape, "the output of conv2d(x, w)")
    if mask is not None:
        chk.require_bool_mask(op, mask, out_shape)
    x, w, grad_y, y, mask = _contiguous(op, x, w, grad_y, y, mask)
    return _impl(op)(x, w, grad_y, int(stride), padding if isinstance(padding, str) else int(padding),
                     need_grad_x, activation, y, mask)


# ----------------------------------------------------------------------------------------------
# softmax cross-entropy
# ----------------------------------------------------------------------------------------------

def _check_target(op, logits, target):
    chk.require_ndim(op, "logits", logits, 2, "(B, C)")
    batch, classes = chk.shape_of(logits)
    if classes < 1:
        raise ValueError(f"{op}: logits must have at least one class, got shape {(batch, classes)}")
    chk.require_array(op, "target", target)
    if len(chk.shape_of(target)) == 1:
        chk.common_float_dtype(op, logits=logits)
        on_device = chk.is_device_array(target)
        if on_device:
            chk.require_device_labels(op, target, batch)
        else:
            chk.require_labels(op, target, batch, classes)
        (logits,) = _contiguous(op, logits)
        (target,) = _contiguous(op, target, dtype=np.int64)
        if on_device and batch:  # the range, on a host copy of the B labels (the backend is cuda here)
            chk.require_labels(op, _impl("labels_on_host")(target), batch, classes)
        return logits, target
    chk.require_shape(op, "target", target, (batch, classes), "one-hot (B, C) like logits, or labels (B,)")
    chk.common_float_dtype(op, logits=logits, target=target)
    return tuple(_contiguous(op, logits, target))


def _check_reduction(op, reduction):
    if not isinstance(reduction, str) or reduction not in ("mean", "sum"):
        raise ValueError(f"{op}: reduction must be 'mean' or 'sum', got {reduction!r}")


def softmax_cross_entropy(logits: FloatArray, target: npt.ArrayLike, *, eps: float = 1e-9,
                          reduction: str = "mean") -> Tuple[float, FloatArray]:
    """The book's SoftmaxCrossEntropy: ``(loss, grad)`` with the two-term clipped loss / B and
    ``grad = (clip(softmax) - onehot) / B``. target is one-hot (B, C) or integer labels (B,).
    ``reduction="sum"`` drops the 1/B (the book's chapter 6 per-time-step summed loss)."""
    op = "softmax_cross_entropy"
    if not isinstance(eps, numbers.Real) or isinstance(eps, bool) or not 0.0 < float(eps) < 0.5:
        raise ValueError(f"{op}: eps must be a float in (0, 0.5), got {eps!r}")
    _check_reduction(op, reduction)
    if not (_plain(logits, target) and logits.ndim == 2 and target.shape == logits.shape and logits.shape[1] >= 1):
        logits, target = _check_target(op, logits, target)  # a one-hot target like logits is the common case
    return _impl(op)(logits, target, float(eps), reduction)


def cross_entropy(logits: FloatArray, target: npt.ArrayLike, *,
                  reduction: str = "mean") -> Tuple[float, FloatArray]:
    """Standard mean negative log-likelihood: ``(loss, grad = (softmax - onehot) / B)``;
    ``reduction="sum"`` sums over rows instead."""
    op = "cross_entropy"
    _check_reduction(op, reduction)
    logits, target = _check_target(op, logits, target)
    return _impl(op)(logits, target, reduction)


# ----------------------------------------------------------------------------------------------
# recurrent sequences
# ----------------------------------------------------------------------------------------------

def _check_sequence(op, x, h0, w, b, gates, c0=None):
    """x is (B, T, F), h0 (and c0) (B, H), w is (F + H, gates * H), b is (gates * H,) or (1, gates * H)."""
    chk.require_ndim(op, "x", x, 3, "(B, T, F)")
    chk.require_ndim(op, "h0", h0, 2, "(B, H)")
    chk.require_ndim(op, "w", w, 2, f"(F + H, {gates}H)")
    batch, steps, features = chk.shape_of(x)
    hidden = chk.shape_of(h0)[1]
    if steps < 1:
        raise ValueError(f"{op}: x is {chk.shape_of(x)}; the sequence needs at least one time step")
    if hidden < 1:
        raise ValueError(f"{op}: h0 is {chk.shape_of(h0)}; the hidden size h0.shape[1] must be >= 1")
    if chk.shape_of(h0)[0] != batch:
        raise ValueError(f"{op}: h0 is {chk.shape_of(h0)} but x is {chk.shape_of(x)}; need h0.shape[0] == x.shape[0]")
    chk.require_shape(op, "w", w, (features + hidden, gates * hidden),
                      f"(F + H, {gates}H) with F={features} from x and H={hidden} from h0, input rows first")
    arrays = {"x": x, "h0": h0, "w": w, "b": b}
    if c0 is not None:
        chk.require_shape(op, "c0", c0, (batch, hidden), "it must match h0")
        arrays["c0"] = c0
    chk.common_float_dtype(op, **arrays)
    return _flat_bias(op, b, gates * hidden)


def _tag(cache, op, h_seq):
    """Record which backend and which forward kernel made ``cache``, and its output (a reference, not
    a copy), so the backward can check the backend, the kernel and the gradient's shape and dtype."""
    cache["backend"] = _backend.get_backend()
    cache["kernel"] = op
    cache.setdefault("h_seq", h_seq)
    return cache


def _check_cache(op, cache, grad_h_seq):
    forward = op.replace("_backward", "_forward")
    if not isinstance(cache, dict) or "backend" not in cache or "h_seq" not in cache:
        raise TypeError(f"{op}: argument cache must be the dict returned by {forward}, got {type(cache).__name__}")
    if cache.get("kernel", forward) != forward:
        raise ValueError(f"{op}: argument cache was made by {cache['kernel']}, expected the cache of {forward}")
    h_seq = cache["h_seq"]
    chk.require_shape(op, "grad_h_seq", grad_h_seq, chk.shape_of(h_seq), "the shape of the forward h_seq")
    chk.common_float_dtype(op, grad_h_seq=grad_h_seq, h_seq=h_seq)
    return cache["backend"]


def rnn_forward(x: FloatArray, h0: FloatArray, w: FloatArray, b: FloatArray) -> Tuple[FloatArray, Cache]:
    """Vanilla RNN: ``h_t = tanh([x_t, h_{t-1}] @ w + b)``. Returns ``(h_seq (B, T, H), cache)``."""
    op = "rnn_forward"
    b = _check_sequence(op, x, h0, w, b, 1)
    x, h0, w, b = _contiguous(op, x, h0, w, b)
    h_seq, cache = _impl(op)(x, h0, w, b)
    return h_seq, _tag(cache, op, h_seq)


def rnn_backward(grad_h_seq: FloatArray, cache: Cache) -> Tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Returns ``(grad_x, grad_h0, grad_w, grad_b)``."""
    op = "rnn_backward"
    name = _check_cache(op, cache, grad_h_seq)
    (grad_h_seq,) = _contiguous(op, grad_h_seq)
    return _impl(op, name)(grad_h_seq, cache)


def lstm_forward(x: FloatArray, h0: FloatArray, c0: FloatArray, w: FloatArray,
                 b: FloatArray) -> Tuple[FloatArray, FloatArray, Cache]:
    """LSTM, gates (forget, input, candidate, output). Returns ``(h_seq (B, T, H), c_last (B, H), cache)``."""
    op = "lstm_forward"
    b = _check_sequence(op, x, h0, w, b, 4, c0=c0)
    x, h0, c0, w, b = _contiguous(op, x, h0, c0, w, b)
    h_seq, c_last, cache = _impl(op)(x, h0, c0, w, b)
    return h_seq, c_last, _tag(cache, op, h_seq)


def lstm_backward(grad_h_seq: FloatArray, cache: Cache, grad_c_last: Optional[FloatArray] = None
                  ) -> Tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Returns ``(grad_x, grad_h0, grad_c0, grad_w, grad_b)``."""
    op = "lstm_backward"
    name = _check_cache(op, cache, grad_h_seq)
    if grad_c_last is not None:
        shape = chk.shape_of(cache["h_seq"])
        chk.require_shape(op, "grad_c_last", grad_c_last, (shape[0], shape[2]), "(B, H) like c_last")
        chk.common_float_dtype(op, grad_h_seq=grad_h_seq, grad_c_last=grad_c_last)
    grad_h_seq, grad_c_last = _contiguous(op, grad_h_seq, grad_c_last)
    return _impl(op, name)(grad_h_seq, cache, grad_c_last)


def gru_forward(x: FloatArray, h0: FloatArray, w: FloatArray, b: FloatArray) -> Tuple[FloatArray, Cache]:
    """GRU, gates (reset, update, candidate). Returns ``(h_seq (B, T, H), cache)``."""
    op = "gru_forward"
    b = _check_sequence(op, x, h0, w, b, 3)
    x, h0, w, b = _contiguous(op, x, h0, w, b)
    h_seq, cache = _impl(op)(x, h0, w, b)
    return h_seq, _tag(cache, op, h_seq)


def gru_backward(grad_h_seq: FloatArray, cache: Cache) -> Tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Returns ``(grad_x, grad_h0, grad_w, grad_b)``."""
    op = "gru_backward"
    name = _check_cache(op, cache, grad_h_seq)
    (grad_h_seq,) = _contiguous(op, grad_h_seq)
    return _impl(op, name)(grad_h_seq, cache)


# ----------------------------------------------------------------------------------------------
# the optimizer step: the one kernel that updates its arguments in place
# ----------------------------------------------------------------------------------------------

UPDATE_RULES = {"sgd": False, "sgd_momentum": True, "adagrad": True, "regularized_sgd": False}  # rule: keeps a state


def _update_problem(rule, params, grads, states):
    """None when ``parameter_update`` can take these arrays (memory overlap aside: ``_overlap_problem``), else
    ``(exception type, message)``. Runs on every optimizer step, so it stays cheap."""
    op = "parameter_update"
    if rule not in UPDATE_RULES:
        return ValueError, f"{op}: rule must be one of {sorted(UPDATE_RULES)}, got {rule!r}"
    want_states = len(params) if UPDATE_RULES[rule] else 0
    if not _counts_fit(rule, params, grads, states):
        return ValueError, (f"{op}: got {len(params)} params, {len(grads)} grads and {len(states)} states; rule "
                            f"{rule!r} needs one grad per param and {want_states} states")
    if _plain_update(params, grads, states):
        return None
    for i, param in enumerate(params):
        group = (("params", param), ("grads", grads[i])) + ((("states", states[i]),) if want_states else ())
        for name, a in group:
            if type(a) is not np.ndarray:
                return TypeError, f"{op}: {name}[{i}] must be a NumPy array (updated in place), got {type(a).__name__}"
            if a.dtype != param.dtype or a.dtype not in _FLOAT_DTYPES:
                return TypeError, (f"{op}: {name}[{i}] has dtype {a.dtype}; params[{i}] and its grad and state "
                                   f"must share one dtype, float32 or float64")
            if a.shape != param.shape:
                return ValueError, (f"{op}: {name}[{i}] has shape {a.shape}, params[{i}] has {param.shape}; "
                                    f"they must match")
            flags = a.flags
            if not (flags.c_contiguous and flags.writeable):
                return ValueError, f"{op}: {name}[{i}] must be C-contiguous and writeable (it is updated in place)"
    return None


def _plain_update(params, grads, states):
    """The common case, answered in one pass: every array a C-contiguous, writeable host NumPy array of one dtype,
    float32 or float64, and every grad and state of its parameter's shape (the counts are checked already)."""
    if not _one_float_dtype(params, grads, states):
        return False
    for group in (params, grads, states):
        for a in group:
            flags = a.flags
            if not (flags.c_contiguous and flags.writeable):
                return False
    return (all(g.shape == p.shape for p, g in zip(params, grads))
            and all(s.shape == p.shape for p, s in zip(params, states)))


def _one_float_dtype(params, grads, states):
    """Every array a host NumPy array of the first parameter's dtype, float32 or float64."""
    if not params or type(params[0]) is not np.ndarray or params[0].dtype not in _FLOAT_DTYPES:
        return False
    dtype = params[0].dtype
    return all(type(a) is np.ndarray and a.dtype == dtype for group in (params, grads, states) for a in group)


def _counts_fit(rule, params, grads, states):
    """A known rule, one grad per param, and one state per param for the rules that keep one (else none)."""
    return (rule in UPDATE_RULES and len(grads) == len(params)
            and len(states) == (len(params) if UPDATE_RULES[rule] else 0))


def _one_host_float_dtype(rule, params, grads, states):
    """The kinds a backend that checks its arrays cannot tell apart itself: the rule, the counts, and every
    array a host NumPy array of the first parameter's dtype, float32 or float64 (layouts, shapes and overlaps
    it checks)."""
    return _counts_fit(rule, params, grads, states) and _one_float_dtype(params, grads, states)


def _as_list(arrays):
    return arrays if type(arrays) is list else list(arrays)


def _overlap_problem(params, grads, states):
    """``(ValueError, message)`` when two of the arrays share memory, else None."""
    named = [(f"params[{i}]", a) for i, a in enumerate(params)] + [(f"grads[{i}]", a) for i, a in enumerate(grads)]
    named += [(f"states[{i}]", a) for i, a in enumerate(states)]
    spans = sorted((a.ctypes.data, a.ctypes.data + a.nbytes, name) for name, a in named if a.size)
    for (_, end, first), (start, _, second) in zip(spans, spans[1:]):
        if start < end:
            return ValueError, f"parameter_update: {first} and {second} share memory; every array must be distinct"
    return None


_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def parameter_update(rule: str, params: Sequence[FloatArray], grads: Sequence[FloatArray],
                     states: Sequence[FloatArray] = (), *, lr: float, hyper: float = 0.0, clip: float = 0.0) -> None:
    """One optimizer step over every parameter, IN PLACE, in the parameters' dtype, by the book's rule:

    - ``'sgd'``: ``param -= lr * grad``
    - ``'sgd_momentum'``: ``v *= hyper; v += lr * grad; param -= v`` (``states`` are the velocities v)
    - ``'adagrad'``: ``s += hyper + grad**2; param -= lr / sqrt(s) * grad`` (``states`` are the sums s)
    - ``'regularized_sgd'``: ``param -= lr * grad + hyper * param``

    With ``clip > 0`` every gradient is first clipped to ``[-clip, clip]`` in place (chapter 6). ``params``,
    ``grads`` and ``states`` are lists of host NumPy arrays, C-contiguous and writeable, in distinct
    memory, each grad and state of its parameter's shape and dtype. On the cpu backend every parameter is
    updated by ONE C++ call (per dtype); the result equals the NumPy rule bit for bit.
    """
    problem = _update_problem(rule, params, grads, states) or _overlap_problem(params, grads, states)
    if problem is not None:
        raise problem[0](problem[1])
    _impl("parameter_update")(rule, list(params), list(grads), list(states), float(lr), float(hyper), float(clip))


def try_parameter_update(rule: str, params: Sequence[FloatArray], grads: Sequence[FloatArray],
                         states: Sequence[FloatArray] = (), *, lr: float, hyper: float = 0.0,
                         clip: float = 0.0) -> bool:
    """``parameter_update`` when it accepts these arrays (returns True); otherwise changes nothing and
    returns False, so that the caller updates them its own way (device arrays, views, shared memory).

    This is the optimizers' path, run every step: the memory-overlap check is left to the backend, where it
    costs nothing. The C++ step checks it before it writes anything (and says so with a ValueError, taken
    here as "not accepted"); the NumPy rule updates aliased arrays one after the other, as the book's loop.
    A backend whose step checks every array before it writes (``STEP_CHECKS_ITS_ARRAYS``, the cpu backend's)
    is called at once for host arrays of one float dtype; only when it refuses are the arrays examined here."""
    backend = _backend.module()
    if getattr(backend, "STEP_CHECKS_ITS_ARRAYS", False) and _one_host_float_dtype(rule, params, grads, states):
        try:
            backend.parameter_update(rule, _as_list(params), _as_list(grads), _as_list(states), float(lr),
                                     float(hyper), float(clip))
            return True
        except ValueError:
            pass  # nothing was written: the checks below say whether to refuse, or raise the backend's error
    if _update_problem(rule, params, grads, states) is not None:
        return False
    if len({p.dtype for p in params}) > 1 and _overlap_problem(params, grads, states) is not None:
        return False  # one backend call per dtype: the second must not find an overlap after the first wrote
    try:
        _impl("parameter_update")(rule, list(params), list(grads), list(states), float(lr), float(hyper), float(clip))
    except ValueError:
        if _overlap_problem(params, grads, states) is None:
            raise
        return False
    return True


# ----------------------------------------------------------------------------------------------
# the batch row gather: writes into the caller's buffer
# ----------------------------------------------------------------------------------------------

def take_rows(x: np.ndarray, rows: npt.ArrayLike, out: Optional[np.ndarray] = None) -> np.ndarray:
    """``out[i] = x[rows[i]]``: the rows of ``x`` (N, ...) that ``rows`` picks, written into ``out`` (or into a
    new array when ``out`` is None) and returned. This is how the Trainer gathers each batch from the shuffled
    order of the training rows into one reused buffer.

    It is ``np.take(x, rows, axis=0, out=out)`` with every row in ``[0, N)`` (no negative indices). On the cpu
    backend it runs in C++ on the kernels' threads, each copying the block of rows that the same thread
    multiplies next, with the next source row prefetched. ``x`` is a host NumPy array of any numeric dtype;
    ``rows`` 1-D integers; ``out`` a C-contiguous, writeable array of x's dtype and shape
    ``(len(rows),) + x.shape[1:]`` that does not overlap ``x``. A non-contiguous ``x`` is gathered by NumPy
    (never copied whole).
    """
    op = "take_rows"
    if type(x) is not np.ndarray:
        raise TypeError(f"{op}: x must be a host NumPy array, got {type(x).__name__}")
    if x.ndim < 1:
        raise ValueError(f"{op}: x must have at least one dimension (rows), got a 0-d array")
    if x.dtype.hasobject:
        raise TypeError(f"{op}: x has dtype {x.dtype}; it must hold numbers, not Python objects")
    rows = np.asarray(rows)
    if rows.ndim != 1 or rows.dtype.kind not in "iu":
        raise TypeError(f"{op}: rows must be a 1-D array of integers, got shape {rows.shape} and dtype {rows.dtype}")
    n_rows = x.shape[0]
    if rows.size and (rows.min() < 0 or rows.max() >= n_rows):
        raise ValueError(f"{op}: rows must lie in [0, {n_rows}) for x of shape {x.shape}, got values from "
                         f"{rows.min()} to {rows.max()}")
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    shape = (rows.shape[0],) + x.shape[1:]
    if out is None:
        out = np.empty(shape, x.dtype)
    else:
        if type(out) is not np.ndarray:
            raise TypeError(f"{op}: out must be a NumPy array (it is written in place), got {type(out).__name__}")
        if out.dtype != x.dtype or out.shape != shape:
            raise ValueError(f"{op}: out has shape {out.shape} and dtype {out.dtype}; it must have shape {shape} "
                             f"and x's dtype {x.dtype} (one row of x per entry of rows)")
        if not (out.flags.c_contiguous and out.flags.writeable):
            raise ValueError(f"{op}: out must be C-contiguous and writeable (it is written in place)")
        if np.may_share_memory(out, x):
            raise ValueError(f"{op}: out shares memory with x; it must be a separate buffer")
    if not x.flags.c_contiguous:
        return _impl(op, "numpy")(x, rows, out)
    return _impl(op)(x, rows, out)


def _take_rows_known_good(x: np.ndarray, rows: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``take_rows`` without the argument checks, for a caller whose arguments are right by construction: ``x`` a
    C-contiguous host array of numbers, ``rows`` 1-D int64 within ``[0, len(x))``, ``out`` a C-contiguous buffer
    of ``x``'s dtype and shape ``(len(rows),) + x.shape[1:]`` apart from ``x``. The Trainer gathers every batch
    this way: its rows are a slice of a permutation of the training rows, its buffers its own. (The cpu
    backend's binding still refuses what would read or write out of bounds.)"""
    return _impl("take_rows")(x, rows, out)

