"""Chapter 6's per-time-step "nodes": ``RNNNode``, ``LSTMNode``, ``GRUNode``.

These are the book's teaching classes: one node computes ONE time step. ``forward`` takes the step's
input ``(B, in)``, the incoming state(s) ``(B, h)`` and the layer's ``params_dict``
(``params[key]['value' / 'deriv']``), stores what its backward needs, and returns the step's output
``(B, out)`` and outgoing state(s). ``backward`` takes the gradients of those outputs, ADDS (``+=``)
the parameter gradients into ``params_dict[key]['deriv']`` and returns the gradients of its inputs.

The math runs on fastdl's kernels (``kernels.linear`` / ``linear_backward`` for every
``act(Z @ W + B)``, ``kernels.matmul`` and ``kernels.activation`` elsewhere), in the dtype of the
parameters. The layers in ``fastdl.rnn.layers`` do not loop over nodes: they run the fused sequence
kernels. The nodes stay as the readable per-step form, and the tests check both agree.

Fixes over the book: ``GRUNode``'s update gate uses its own weights ``W_xu``/``W_hu``
(the book reused the reset-gate projections), and its backward uses the full output-state gradient
and includes the direct ``u * dh`` path, so every GRU gradient is correct (the book's were zero).
"""

from typing import Dict, Tuple

import numpy as np

from fastdl import kernels
from fastdl.base import as_float
from fastdl.utils.np_utils import assert_same_shape

ParamsDict = Dict[str, Dict[str, np.ndarray]]


def _value(params_dict: ParamsDict, key: str) -> np.ndarray:
    return params_dict[key]["value"]


def _accumulate(params_dict: ParamsDict, key: str, grad: np.ndarray) -> None:
    """``params_dict[key]['deriv'] += grad`` in place (a ``(n,)`` bias gradient fills a ``(1, n)`` deriv)."""
    deriv = params_dict[key]["deriv"]
    deriv += np.reshape(grad, deriv.shape)


def _readout_backward(node, X_out_grad: np.ndarray, H_out_grad: np.ndarray, params_dict: ParamsDict) -> np.ndarray:
    """Accumulate the W_v, B_v derivs of ``X_out = H_out W_v + B_v``; return the whole gradient reaching
    ``H_out``: the read-out's plus the next step's ``H_out_grad`` (the book's GRU dropped the former, bug 26)."""
    dtype = node.X_out.dtype
    dh, dW_v, dB_v = kernels.linear_backward(node.H_out, _value(params_dict, "W_v"), node.X_out,
                                             as_float(X_out_grad, dtype))
    _accumulate(params_dict, "W_v", dW_v)
    _accumulate(params_dict, "B_v", dB_v)
    return dh + as_float(H_out_grad, dtype)


def _column_stack(x_in: np.ndarray, h_in: np.ndarray) -> np.ndarray:
    """``Z = [x, h]`` (B, in + h): input columns first, as the book stacks them."""
    return np.concatenate([x_in, h_in], axis=1)


class RNNNode:
    """One step of a vanilla RNN: ``H_out = tanh([x, H_in] @ W_f + B_f)``, ``X_out = H_out @ W_v + B_v``."""

    def forward(self, x_in: np.ndarray, H_in: np.ndarray,
                params_dict: ParamsDict) -> Tuple[np.ndarray, np.ndarray]:
        """x_in (B, in), H_in (B, h) -> (X_out (B, out), H_out (B, h))."""
        dtype = _value(params_dict, "W_f").dtype
        self.X_in = as_float(x_in, dtype)
        self.H_in = as_float(H_in, dtype)
        self.Z = _column_stack(self.X_in, self.H_in)
        self.H_out = kernels.linear(self.Z, _value(params_dict, "W_f"), _value(params_dict, "B_f"), "tanh")
        self.X_out = kernels.linear(self.H_out, _value(params_dict, "W_v"), _value(params_dict, "B_v"))
        return self.X_out, self.H_out

    def backward(self, X_out_grad: np.ndarray, H_out_grad: np.ndarray,
                 params_dict: ParamsDict) -> Tuple[np.ndarray, np.ndarray]:
        """Accumulate W_f, B_f, W_v, B_v derivs; return (X_in_grad (B, in), H_in_grad (B, h))."""
        assert_same_shape(X_out_grad, self.X_out)
        assert_same_shape(H_out_grad, self.H_out)
        dh = _readout_backward(self, X_out_grad, H_out_grad, params_dict)
        dZ, dW_f, dB_f = kernels.linear_backward(self.Z, _value(params_dict, "W_f"), self.H_out, dh, "tanh")
        _accumulate(params_dict, "W_f", dW_f)
        _accumulate(params_dict, "B_f", dB_f)
        n_in = self.X_in.shape[1]
        return dZ[:, :n_in], dZ[:, n_in:]


# the LSTM's gates: (name of the stored output, weight key, bias key, activation)
_LSTM_GATES = (("f", "W_f", "B_f", "sigmoid"), ("i", "W_i", "B_i", "sigmoid"),
               ("C_bar", "W_c", "B_c", "tanh"), ("o", "W_o", "B_o", "sigmoid"))


class LSTMNode:
    """One LSTM step (no peepholes, no forget-bias offset). With ``Z = [x, H_in]``:
    ``f, i, o = σ(Z W_* + B_*)``, ``C_bar = tanh(Z W_c + B_c)``, ``C_out = f C_in + i C_bar``,
    ``H_out = o tanh(C_out)``, ``X_out = H_out W_v + B_v``."""

    def forward(self, X_in: np.ndarray, H_in: np.ndarray, C_in: np.ndarray,
                params_dict: ParamsDict) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """X_in (B, in), H_in and C_in (B, h) -> (X_out (B, out), H_out (B, h), C_out (B, h))."""
        dtype = _value(params_dict, "W_f").dtype
        self.X_in = as_float(X_in, dtype)
        self.H_in = as_float(H_in, dtype)
        self.C_in = as_float(C_in, dtype)
        self.Z = _column_stack(self.X_in, self.H_in)
        for name, w_key, b_key, act in _LSTM_GATES:
            setattr(self, name, kernels.linear(self.Z, _value(params_dict, w_key), _value(params_dict, b_key), act))
        self.C_out = self.f * self.C_in + self.i * self.C_bar
        self.tanh_C_out = kernels.activation(self.C_out, "tanh")
        self.H_out = self.o * self.tanh_C_out
        self.X_out = kernels.linear(self.H_out, _value(params_dict, "W_v"), _value(params_dict, "B_v"))
        return self.X_out, self.H_out, self.C_out

    def backward(self, X_out_grad: np.ndarray, H_out_grad: np.ndarray, C_out_grad: np.ndarray,
                 params_dict: ParamsDict) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Accumulate every deriv; return (dX_in (B, in), dH_in (B, h), dC_in (B, h) = f * dC_out)."""
        assert_same_shape(X_out_grad, self.X_out)
        assert_same_shape(H_out_grad, self.H_out)
        assert_same_shape(C_out_grad, self.C_out)
        dtype = self.X_out.dtype
        dh_out = _readout_backward(self, X_out_grad, H_out_grad, params_dict)

        dC_out = kernels.activation_backward(self.tanh_C_out, dh_out * self.o, "tanh")
        dC_out = dC_out + as_float(C_out_grad, dtype)
        gate_grads = {"f": dC_out * self.C_in, "i": dC_out * self.C_bar,
                      "C_bar": dC_out * self.i, "o": dh_out * self.tanh_C_out}

        dZ = np.zeros_like(self.Z)
        for name, w_key, b_key, act in _LSTM_GATES:
            dZ_gate, dW, dB = kernels.linear_backward(self.Z, _value(params_dict, w_key), getattr(self, name),
                                                      gate_grads[name], act)
            _accumulate(params_dict, w_key, dW)
            _accumulate(params_dict, b_key, dB)
            dZ += dZ_gate
        n_in = self.X_in.shape[1]
        return dZ[:, :n_in], dZ[:, n_in:], self.f * dC_out


class GRUNode:
    """One GRU step, the book's intended math (bugs fixed)::

        r = σ(x W_xr + H_in W_hr + B_r)            reset gate
        u = σ(x W_xu + H_in W_hu + B_u)            update gate (its OWN weights; the book reused r's)
        h_bar = tanh(x W_xh + (r * H_in) W_hh + B_h)
        H_out = u * H_in + (1 - u) * h_bar
        X_out = H_out W_v + B_v
    """

    def forward(self, X_in: np.ndarray, H_in: np.ndarray,
                params_dict: ParamsDict) -> Tuple[np.ndarray, np.ndarray]:
        """X_in (B, in), H_in (B, h) -> (X_out (B, out), H_out (B, h))."""
        dtype = _value(params_dict, "W_xr").dtype
        self.X_in = X = as_float(X_in, dtype)
        self.H_in = H = as_float(H_in, dtype)
        mm = kernels.matmul
        self.r = kernels.activation(mm(X, _value(params_dict, "W_xr")) + mm(H, _value(params_dict, "W_hr"))
                                    + _value(params_dict, "B_r"), "sigmoid")
        self.u = kernels.activation(mm(X, _value(params_dict, "W_xu")) + mm(H, _value(params_dict, "W_hu"))
                                    + _value(params_dict, "B_u"), "sigmoid")
        self.h_reset = self.r * H
        self.h_bar = kernels.activation(mm(X, _value(params_dict, "W_xh"))
                                        + mm(self.h_reset, _value(params_dict, "W_hh"))
                                        + _value(params_dict, "B_h"), "tanh")
        self.H_out = self.u * H + (1 - self.u) * self.h_bar
        self.X_out = kernels.linear(self.H_out, _value(params_dict, "W_v"), _value(params_dict, "B_v"))
        return self.X_out, self.H_out

    def _project_back(self, d_int, x_key, h_key, b_key, h_used, params_dict):
        """Accumulate the derivs of ``x W_x + h_used W_h + B`` from its gradient ``d_int``;
        return the gradients reaching x and h_used."""
        mm = kernels.matmul
        _accumulate(params_dict, x_key, mm(self.X_in, d_int, trans_a=True))
        _accumulate(params_dict, h_key, mm(h_used, d_int, trans_a=True))
        _accumulate(params_dict, b_key, d_int.sum(axis=0))
        return (mm(d_int, _value(params_dict, x_key), trans_b=True),
                mm(d_int, _value(params_dict, h_key), trans_b=True))

    def backward(self, X_out_grad: np.ndarray, H_out_grad: np.ndarray,
                 params_dict: ParamsDict) -> Tuple[np.ndarray, np.ndarray]:
        """Accumulate every deriv; return (dX_in (B, in), dH_in (B, h))."""
        assert_same_shape(X_out_grad, self.X_out)
        assert_same_shape(H_out_grad, self.H_out)
        dh_out = _readout_backward(self, X_out_grad, H_out_grad, params_dict)

        dH_in = self.u * dh_out  # the direct path through u * H_in (missing in the book)
        du = dh_out * (self.H_in - self.h_bar)
        dh_bar_int = kernels.activation_backward(self.h_bar, (1 - self.u) * dh_out, "tanh")

        dX_in, dh_reset = self._project_back(dh_bar_int, "W_xh", "W_hh", "B_h", self.h_reset, params_dict)
        dH_in += dh_reset * self.r
        dr = dh_reset * self.H_in

        for d_gate, gate, keys in ((du, self.u, ("W_xu", "W_hu", "B_u")), (dr, self.r, ("W_xr", "W_hr", "B_r"))):
            d_int = kernels.activation_backward(gate, d_gate, "sigmoid")
            dx, dh = self._project_back(d_int, *keys, self.H_in, params_dict)
            dX_in += dx
            dH_in += dh
        return dX_in, dH_in
