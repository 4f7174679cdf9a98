"""Chapter 6's sequence layers: ``RNNLayer``, ``LSTMLayer``, ``GRULayer``.

A layer maps ``(B, T, in)`` to ``(B, T, out)``: a recurrence over T followed by the output projection
``H W_v + B_v`` at every step. The book's interface is kept:

* ``params[key]['value']`` / ``params[key]['deriv']``, with the book's keys and shapes (the stacked
  weights ``W_f``, ``W_i``, ... are ``(in + h, h)`` with the input rows first, as ``Z = [x, h]``);
* ``_init_params(input_)`` runs lazily on the first ``forward`` (``first``), taking ``in`` from
  ``input_.shape[2]``; the weights are ``N(0, weight_scale)`` drawn from
  ``np.random.default_rng(self.seed)`` (``seed`` may be set from outside; no global RNG is touched);
* ``backward`` ADDS into the ``'deriv'`` arrays, and ``_clear_gradients()`` zeroes them (``single_step``
  does both in one pass: it writes each gradient into its deriv);
* ``start_H`` (and ``start_C``) carry the final state to the next batch as its batch mean
  ``(1, h)``; no gradient flows through it (truncated BPTT, the backward starts from zero).

What is different: the recurrence does not loop over per-step nodes. ``forward`` packs the dict
parameters into the kernel contract's stacked ``w (in + h, G*h)`` / ``b (G*h,)`` and runs one fused
sequence kernel (``kernels.rnn_forward`` / ``lstm_forward`` / ``gru_forward``), then the output
projection over all ``B*T`` rows at once with ``kernels.linear``. The packing is redone on every
forward (into arrays the layer reuses), so optimizers may update the ``'value'`` arrays in place, or
replace them.
There is no ``cells`` list, so any sequence length works after the first batch. Layers compute in
``dtype`` (float32 by default, float64 for the book's exact numbers); inputs are cast to it.

Fix over the book: ``GRULayer`` initialises ``B_h``, ``W_v`` and ``B_v`` with
``weight_scale`` like every other parameter (the book used scale 1.0 for those three).
"""

from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from fastdl import kernels
from fastdl.base import as_float
from fastdl.config import DEFAULT_DTYPE
from fastdl.utils.np_utils import assert_same_shape

# A gate's weight block: one key holding the (in + h, h) block, or an (input key, hidden key) pair.
GateWeights = Union[str, Tuple[str, str]]


class _SequenceLayer:
    """Shared machinery; subclasses set the class attributes and ``_run`` / ``_run_backward``.

    ``GATE_WEIGHTS[g]`` and ``GATE_BIASES[g]`` name the parameters of column block ``g`` of the packed
    kernel weights; ``PARAM_SHAPES`` lists every key in the book's order with its shape (symbols
    ``in``, ``h``, ``out``); ``STATES`` names the carried states.
    """

    GATE_WEIGHTS: Sequence[GateWeights] = ()
    GATE_BIASES: Sequence[str] = ()
    PARAM_SHAPES: Sequence[Tuple[str, Tuple[str, str]]] = ()
    STATES: Sequence[str] = ("start_H",)

    def __init__(self, hidden_size: int, output_size: int, weight_scale: Optional[float] = 0.01,
                 dtype=DEFAULT_DTYPE) -> None:
        self.hidden_size = hidden_size
        self.output_size = output_size
        self.weight_scale = weight_scale
        self.dtype = np.dtype(dtype)
        self.first = True
        self.seed: Optional[int] = None
        self.reset_state()

    # -- set-up ---------------------------------------------------------------------------------
    def reset_state(self) -> None:
        """Zero the carried state(s) ``start_H`` (and ``start_C``), each ``(1, hidden_size)``."""
        for name in self.STATES:
            setattr(self, name, np.zeros((1, self.hidden_size), dtype=self.dtype))

    def _scale(self) -> float:
        return self.weight_scale

    def _init_params(self, input_: np.ndarray) -> None:
        """Create ``params`` from the first batch: ``vocab_size`` (really the input width) is
        ``input_.shape[2]``; every parameter is ``N(0, weight_scale)``, every deriv zeros."""
        self.vocab_size = input_.shape[2]
        scale = self._scale()
        sizes = {"1": 1, "in": self.vocab_size, "h": self.hidden_size, "out": self.output_size}
        rng = np.random.default_rng(self.seed)
        self.params: Dict[str, Dict[str, np.ndarray]] = {}
        for key, (rows, cols) in self.PARAM_SHAPES:
            shape = (_sum_of(rows, sizes), sizes[cols])
            value = rng.normal(0.0, scale, size=shape).astype(self.dtype)
            self.params[key] = {"value": value, "deriv": np.zeros_like(value)}

    def _clear_gradients(self) -> None:
        """Reset every ``params[key]['deriv']`` to zeros (in place when it still has its value's shape)."""
        for entry in self.params.values():
            deriv, value = entry["deriv"], entry["value"]
            if isinstance(deriv, np.ndarray) and deriv.shape == value.shape and deriv.dtype == value.dtype:
                deriv.fill(0)
            else:
                entry["deriv"] = np.zeros_like(value)

    # -- packing between the book's dict and the kernels' stacked layout -----------------------------
    def _pack(self) -> Tuple[np.ndarray, np.ndarray]:
        """``(w (in + h, G*h), b (G*h,))`` from the dict values, in the layer's dtype, written into two
        arrays the layer keeps from call to call (no fresh memory per step; the sequence kernels keep
        their own copy of what backward needs)."""
        h, n_in = self.hidden_size, self.vocab_size
        shape = (n_in + h, len(self.GATE_WEIGHTS) * h)
        w, b = getattr(self, "_packed", (None, None))
        if w is None or w.shape != shape or w.dtype != self.dtype:
            w, b = np.empty(shape, self.dtype), np.empty(shape[1], self.dtype)
            self._packed = (w, b)
        for g, (weights, b_key) in enumerate(zip(self.GATE_WEIGHTS, self.GATE_BIASES)):
            cols = slice(g * h, (g + 1) * h)
            if isinstance(weights, str):
                w[:, cols] = self.params[weights]["value"]
            else:
                w[:n_in, cols] = self.params[weights[0]]["value"]
                w[n_in:, cols] = self.params[weights[1]]["value"]
            b[cols] = self.params[b_key]["value"].reshape(-1)
        return w, b

    def _unpack_grads(self, grad_w: np.ndarray, grad_b: np.ndarray, add: bool) -> None:
        """Add the kernel's stacked gradients into the dict derivs (``add`` false: write them there)."""
        h, n_in = self.hidden_size, self.vocab_size
        for g, (weights, b_key) in enumerate(zip(self.GATE_WEIGHTS, self.GATE_BIASES)):
            cols = slice(g * h, (g + 1) * h)
            if isinstance(weights, str):
                _store(self.params[weights], grad_w[:, cols], add)
            else:
                _store(self.params[weights[0]], grad_w[:n_in, cols], add)
                _store(self.params[weights[1]], grad_w[n_in:, cols], add)
            _store(self.params[b_key], grad_b[cols], add)

    # -- forward / backward ----------------------------------------------------------------------
    def forward(self, x_seq_in: np.ndarray) -> np.ndarray:
        """x_seq_in (B, T, in) -> x_seq_out (B, T, out); carries the final state(s) as batch means."""
        x = as_float(x_seq_in, self.dtype)
        if x.ndim != 3:
            raise ValueError(f"{type(self).__name__}: input must be (batch, time, features), got shape {x.shape}")
        if self.first:
            self._init_params(x)
            self.first = False
        if x.shape[2] != self.vocab_size:
            raise ValueError(f"{type(self).__name__}: input has {x.shape[2]} features but the layer was set up "
                             f"for {self.vocab_size}; set first = True to re-initialise")
        batch, steps = x.shape[:2]
        starts = [np.repeat(as_float(getattr(self, s), self.dtype), batch, axis=0) for s in self.STATES]
        w, b = self._pack()
        h_seq, finals = self._run(x, starts, w, b)
        for name, final in zip(self.STATES, finals):
            setattr(self, name, final.mean(axis=0, keepdims=True))
        self._h_flat = h_seq.reshape(batch * steps, self.hidden_size)
        out = kernels.linear(self._h_flat, as_float(self.params["W_v"]["value"], self.dtype),
                             as_float(self.params["B_v"]["value"], self.dtype))
        self._out_flat = out
        self.input_ = x
        self.output = out.reshape(batch, steps, self.output_size)
        return self.output

    def backward(self, x_seq_out_grad: np.ndarray) -> np.ndarray:
        """x_seq_out_grad (B, T, out) -> input gradient (B, T, in); adds into every ``'deriv'``."""
        return self._backward(x_seq_out_grad, add=True)

    def _backward_into_cleared(self, x_seq_out_grad: np.ndarray) -> np.ndarray:
        """``_clear_gradients()`` then ``backward``, in one pass over the derivs: each gradient is written
        into its ``'deriv'`` instead of added to zeros (``RNNModel.single_step``)."""
        return self._backward(x_seq_out_grad, add=False)

    def _backward(self, x_seq_out_grad, add):
        assert_same_shape(self.output, x_seq_out_grad)
        grad = as_float(x_seq_out_grad, self.dtype).reshape(self._out_flat.shape)
        w_v = as_float(self.params["W_v"]["value"], self.dtype)
        dh, dW_v, dB_v = kernels.linear_backward(self._h_flat, w_v, self._out_flat, grad)
        _store(self.params["W_v"], dW_v, add)
        _store(self.params["B_v"], dB_v, add)
        grad_x, grad_w, grad_b = self._run_backward(dh.reshape(self.output.shape[:2] + (self.hidden_size,)))
        self._unpack_grads(grad_w, grad_b, add)
        return grad_x

    def _run(self, x, starts: List[np.ndarray], w, b):
        """Run the sequence kernel; return ``(h_seq (B, T, h), [final state per STATES])``."""
        raise NotImplementedError

    def _run_backward(self, grad_h_seq):
        """Return ``(grad_x, grad_w, grad_b)`` from the sequence kernel's backward."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(hidden_size={self.hidden_size}, output_size={self.output_size}, "
                f"weight_scale={self.weight_scale}, dtype={self.dtype.name})")


def _sum_of(spec: str, sizes: Dict[str, int]) -> int:
    """'h+in' -> sizes['h'] + sizes['in']; 'h' -> sizes['h']."""
    return sum(sizes[part] for part in spec.split("+"))


def _store(entry: Dict[str, np.ndarray], grad: np.ndarray, add: bool) -> None:
    """``entry['deriv'] += grad`` in place (a ``(n,)`` gradient fills a ``(1, n)`` bias); with ``add`` false
    ``entry['deriv'] = grad`` instead, in place when the deriv is an array of its value's shape and dtype (as
    ``_clear_gradients`` leaves it), else as a new array."""
    deriv, value = entry["deriv"], entry["value"]
    if add:
        deriv += np.reshape(grad, deriv.shape)
    elif isinstance(deriv, np.ndarray) and deriv.shape == value.shape and deriv.dtype == value.dtype:
        np.copyto(deriv, np.reshape(grad, deriv.shape))
    else:
        entry["deriv"] = np.array(np.reshape(grad, np.shape(value)), dtype=value.dtype)


class RNNLayer(_SequenceLayer):
    """Vanilla RNN: ``H_t = tanh([x_t, H_{t-1}] W_f + B_f)``, ``out_t = H_t W_v + B_v``.

    ``weight_scale=None`` (the default, as the book) becomes ``2 / (in + output_size)`` at set-up.
    Parameters: ``W_f (h+in, h)``, ``B_f (1, h)``, ``W_v (h, out)``, ``B_v (1, out)``.
    """

    GATE_WEIGHTS = ("W_f",)
    GATE_BIASES = ("B_f",)
    PARAM_SHAPES = (("W_f", ("h+in", "h")), ("B_f", ("1", "h")), ("W_v", ("h", "out")), ("B_v", ("1", "out")))

    def __init__(self, hidden_size: int, output_size: int, weight_scale: Optional[float] = None,
                 dtype=DEFAULT_DTYPE) -> None:
        super().__init__(hidden_size, output_size, weight_scale, dtype)

    def _scale(self) -> float:
        if not self.weight_scale:  # as the book: the resolved scale is stored on the layer
            self.weight_scale = 2 / (self.vocab_size + self.output_size)
        return self.weight_scale

    def _run(self, x, starts, w, b):
        h_seq, self._cache = kernels.rnn_forward(x, starts[0], w, b)
        return h_seq, [h_seq[:, -1]]

    def _run_backward(self, grad_h_seq):
        grad_x, _, grad_w, grad_b = kernels.rnn_backward(grad_h_seq, self._cache)
        return grad_x, grad_w, grad_b


class LSTMLayer(_SequenceLayer):
    """LSTM (gates f, i, c, o; see ``LSTMNode``), carrying both ``start_H`` and ``start_C``.

    Parameters: ``W_f, W_i, W_c, W_o (h+in, h)``, ``B_f, B_i, B_c, B_o (1, h)``, ``W_v (h, out)``,
    ``B_v (1, out)``; packed as ``w = [W_f | W_i | W_c | W_o]`` for ``kernels.lstm_forward``.
    """

    GATE_WEIGHTS = ("W_f", "W_i", "W_c", "W_o")
    GATE_BIASES = ("B_f", "B_i", "B_c", "B_o")
    PARAM_SHAPES = tuple(item for g in "fico" for item in ((f"W_{g}", ("h+in", "h")), (f"B_{g}", ("1", "h"))))
    PARAM_SHAPES += (("W_v", ("h", "out")), ("B_v", ("1", "out")))
    STATES = ("start_H", "start_C")

    def _run(self, x, starts, w, b):
        h_seq, c_last, self._cache = kernels.lstm_forward(x, starts[0], starts[1], w, b)
        return h_seq, [h_seq[:, -1], c_last]

    def _run_backward(self, grad_h_seq):
        grad_x, _, _, grad_w, grad_b = kernels.lstm_backward(grad_h_seq, self._cache)
        return grad_x, grad_w, grad_b


class GRULayer(_SequenceLayer):
    """GRU (the book's intended math, see ``GRUNode``; the book's forward/backward bugs are fixed).

    Parameters: ``W_xr, W_xu, W_xh (in, h)``, ``W_hr, W_hu, W_hh (h, h)``, ``B_r, B_u, B_h (1, h)``,
    ``W_v (h, out)``, ``B_v (1, out)``, all ``N(0, weight_scale)`` (the book drew ``B_h``, ``W_v``,
    ``B_v`` with scale 1.0). Packed for ``kernels.gru_forward`` as column blocks r, u, h̄, each with
    the ``W_x*`` rows above the ``W_h*`` rows.
    """

    GATE_WEIGHTS = (("W_xr", "W_hr"), ("W_xu", "W_hu"), ("W_xh", "W_hh"))
    GATE_BIASES = ("B_r", "B_u", "B_h")
    PARAM_SHAPES = tuple(item for g in "ruh" for item in ((f"W_x{g}", ("in", "h")), (f"W_h{g}", ("h", "h")),
                                                          (f"B_{g}", ("1", "h"))))
    PARAM_SHAPES += (("W_v", ("h", "out")), ("B_v", ("1", "out")))

    def _run(self, x, starts, w, b):
        h_seq, self._cache = kernels.gru_forward(x, starts[0], w, b)
        return h_seq, [h_seq[:, -1]]

    def _run_backward(self, grad_h_seq):
        grad_x, _, grad_w, grad_b = kernels.gru_backward(grad_h_seq, self._cache)
        return grad_x, grad_w, grad_b
