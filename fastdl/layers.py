"""Layers (lincoln ``layers.py``): ``Layer``, ``Dense``, ``Conv2D``.

A layer is a list of operations set up lazily from the first batch it sees (``first``), seeded from
``seed`` (set by ``NeuralNetwork``) through its own ``numpy.random.default_rng``. ``params`` and
``param_grads`` are lists of host NumPy arrays in the book's order (Dense: ``[W (in, out), B (1, out)]``,
Conv2D: ``[W (C_in, C_out, K, K)]``). Optimizers may update ``params`` in place; the next forward uses
the new values, because the operations hold the very same arrays.

On the cuda backend a layer whose operations all run on device arrays (``DEVICE_OPS``: Dense and
Conv2D with fastdl's activations, Flatten and Dropout) keeps device copies of its parameters and
gradients and runs on them (``fastdl.device.DeviceResident``, which ``Layer`` inherits, keeps the two
sides in step). ``params`` and ``param_grads`` still give the host arrays, brought up to date first, and
in-place changes to them reach the device before the next forward. A layer's output is on the side its
input came from (NumPy in, NumPy out; device array in, device array out), and so is ``backward``'s
input gradient.

Parameters can be saved and restored with ``state_dict()`` / ``load_state_dict(state, strict=True)``
(names ``"params.0"``, ``"params.1"``, …; see ``fastdl.io`` for files). Loading into a layer that has
not seen a batch yet sets it up from the state's shapes first (Dense and Conv2D; any other layer raises a
clear ``ValueError`` asking for one forward pass first). After set-up a layer checks every batch: a Dense
or Conv2D fed a different feature / channel width than it was built for raises ``ValueError``.

Fixes over the book: every layer owns its activation (the default is a new ``Linear()`` per layer,
not one shared instance), a missing or falsy seed is fine, and ReLU / conv gradients are correct.
"""

from typing import Dict, List, Mapping, Optional

import numpy as np

from fastdl import io, kernels
from fastdl.activations import FUSABLE, Linear
from fastdl.base import Operation, ParamOperation, as_caller_dtype, as_float, caller_dtype
from fastdl.config import DEFAULT_DTYPE
from fastdl.contract.conv_geometry import conv_output_size, conv_padding
from fastdl.conv import Conv2D_Op
from fastdl.device import DeviceResident
from fastdl.dense import BiasAdd, WeightMultiply
from fastdl.dropout import Dropout
from fastdl.reshape import Flatten
from fastdl.utils.np_utils import assert_same_shape

_DROPOUT_STREAM = 0xD50  # mixes the layer seed into a separate stream for dropout masks

#: operations that run on device arrays (their kernels take them); on the cuda backend a layer made of
#: these alone keeps its parameters, activations and gradients on the device
DEVICE_OPS = frozenset(FUSABLE) | {WeightMultiply, Conv2D_Op, Flatten, Dropout}


class Layer(DeviceResident):
    """A stack of operations with lazy set-up.

    ``dtype``: inputs (and output gradients) are cast to it and the layer computes in it; ``None`` (the
    default for this base class) leaves them as they come, as lincoln did. What the layer hands back
    has the caller's dtype: a float32 or float64 host input gives an output of that dtype, and
    ``backward`` returns the input gradient in the input's dtype (other inputs get the layer's dtype).
    So a float32 layer inside float64 code (the book's own losses clip at ``1 - 1e-9``, which is 1.0
    in float32) sees float64 in and out, computed in float32. Subclasses implement ``_setup_layer``.

    Device residency on the cuda backend (``params`` / ``param_grads`` as properties over host arrays and
    device copies) comes from ``fastdl.device.DeviceResident``.
    """

    _caller_dtype = None  # caller_dtype of the last input: what forward and backward hand back

    def __init__(self, neurons: int, dtype=None) -> None:
        self.neurons = neurons
        self.first = True
        self.params: List[np.ndarray] = []
        self.param_grads: List[np.ndarray] = []
        self.operations: List[Operation] = []
        self.seed: Optional[int] = None
        self.dropout_seed: Optional[int] = None
        self.dtype = None if dtype is None else np.dtype(dtype)

    # -- set-up helpers ------------------------------------------------------------------------
    def _setup_layer(self, input_: np.ndarray) -> None:
        """Create ``params`` and ``operations`` from the first batch (no-op in the base class)."""

    def _rng(self) -> np.random.Generator:
        """The generator for initial weights: ``default_rng(seed)`` (unseeded when seed is None)."""
        return np.random.default_rng(self.seed)

    def _dropout_seed(self):
        """Seed of this layer's dropout masks: fit's (``dropout_seed``), else derived from ``seed``."""
        if self.dropout_seed is not None:
            return self.dropout_seed
        return None if self.seed is None else [_DROPOUT_STREAM, self.seed]

    def _cast(self, x):
        return x if self.dtype is None else as_float(x, self.dtype)

    def _runs_on_device(self) -> bool:
        """True when every operation takes device arrays (``DEVICE_OPS``)."""
        return all(type(op) in DEVICE_OPS for op in self.operations)

    def _param_operations(self) -> List[ParamOperation]:
        """The operations that hold a parameter, in order."""
        return [op for op in self.operations if isinstance(op, ParamOperation)]

    # -- forward / backward ----------------------------------------------------------------------
    def forward(self, input_: np.ndarray, inference: bool = False) -> np.ndarray:
        """Set up on the first call, then run the operations in order; store and return ``output``.
        On the cuda backend the result is on the side ``input_`` came from (see the module docstring).
        The result has ``input_``'s dtype (see the class docstring); ``output`` keeps the layer's."""
        self._caller_dtype = caller_dtype(input_)
        input_ = self._cast(input_)
        if self.first:
            self._setup_layer(input_)
            self.first = False
        else:
            self._check_input(input_)
        self.input_ = input_
        self.output = self._run_forward(input_, inference)
        return as_caller_dtype(self.output, self._caller_dtype)

    def backward(self, output_grad: np.ndarray, need_input_grad: bool = True):
        """Run the operations backwards, refresh ``param_grads`` and return the input gradient. With
        ``need_input_grad=False`` (the first layer in ``NeuralNetwork.train_batch``) the input gradient is
        not computed and None is returned."""
        assert_same_shape(self.output, output_grad)
        output_grad = self._cast(output_grad)
        input_grad = self._run_backward(output_grad, need_input_grad)
        if need_input_grad:
            assert_same_shape(self.input_, input_grad)
        self._param_grads()
        return as_caller_dtype(input_grad, self._caller_dtype)

    def _check_input(self, input_: np.ndarray) -> None:
        """Check a batch against the set-up layer (no-op in the base class)."""

    def _width_error(self, input_, expected: str, rule: str) -> ValueError:
        return ValueError(f"{self!r}: was set up for input batches of shape {expected} and was fed a batch of "
                          f"shape {np.shape(input_)}; {rule}")

    def _setup_input(self, state: Mapping[str, np.ndarray]) -> np.ndarray:
        """An empty batch from which ``_setup_layer`` builds parameters shaped like ``state``'s."""
        raise ValueError(f"{self!r} has not been set up yet and cannot be set up from a state dict; run one "
                         f"forward pass (it creates the parameters) before load_state_dict")

    # -- state -----------------------------------------------------------------------------------
    def state_dict(self) -> Dict[str, np.ndarray]:
        """Copies of ``params`` as ``{"params.0": ..., "params.1": ...}`` (empty before set-up)."""
        return {f"params.{i}": np.array(p, copy=True) for i, p in enumerate(self._current_params())}

    def load_state_dict(self, state: Mapping[str, np.ndarray], strict: bool = True) -> None:
        """Copy ``state`` (from ``state_dict``) into ``params`` IN PLACE, so operations and optimizers keep
        their arrays. Names, shapes and dtypes must match (``strict=False`` skips missing and unexpected
        names, never bad shapes or dtypes); any mismatch raises ``ValueError`` and changes nothing.
        An un-set-up layer is first set up from the state's shapes."""
        io.load_params(self, state, strict)

    def _forward_ops(self, x, inference):
        return self._forward_ops_from(0, x, inference)

    def _forward_ops_from(self, start, x, inference):
        """Run ``operations[start:]`` on x: what follows a fused kernel (Flatten, Dropout)."""
        for operation in self.operations[start:]:
            x = operation.forward(x, inference)
        return x

    def _backward_ops(self, grad, need_input_grad=True):
        for operation in reversed(self.operations[1:]):
            grad = operation.backward(grad)
        if not self.operations:
            return grad
        if need_input_grad:
            return self.operations[0].backward(grad)
        return self.operations[0].backward(grad, need_input_grad=False)

    def _param_grads(self) -> None:
        """Rebuild ``param_grads`` (a new list) from the parameterised operations, in order."""
        self.param_grads = [op.param_grad for op in self._param_operations()]

    def _params(self) -> None:
        """Rebuild ``params`` from the parameterised operations, in order."""
        self.params = [op.param for op in self._param_operations()]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(neurons={self.neurons})"


def _init_scale(weight_init: str, fan_in: int, fan_out: int) -> float:
    """The L2019 scale: ``2 / (in + out)`` for "glorot" (a standard deviation, not square-rooted), else 1."""
    return 2.0 / (fan_in + fan_out) if weight_init == "glorot" else 1.0


class Dense(Layer):
    """Fully connected layer ``activation(x @ W + B)``, optionally followed by Dropout.

    Operations are ``[WeightMultiply(W), BiasAdd(B), activation]`` (+ ``Dropout(dropout)`` when
    ``dropout < 1``; ``dropout`` is the keep probability). When the activation is one of fastdl's
    ``Linear``/``Sigmoid``/``Tanh``/``ReLU``, forward and backward run as ONE fused kernel call
    (``kernels.linear`` / ``kernels.linear_backward``) on the operations' own ``W`` and ``B``; the
    results (``output``, ``param_grads``, each operation's ``param_grad``) are what the operations
    would have produced. In that fused path the intermediate ``x @ W`` and ``x @ W + B`` are never
    formed, so only ``operations[0].input_`` and the activation's ``output`` are recorded.
    """

    def __init__(self, neurons: int, activation: Optional[Operation] = None, conv_in: bool = False,
                 dropout: float = 1.0, weight_init: str = "standard", dtype=DEFAULT_DTYPE) -> None:
        super().__init__(neurons, dtype)
        self.activation = Linear() if activation is None else activation
        self.conv_in = conv_in
        self.dropout = dropout
        self.weight_init = weight_init

    def _setup_layer(self, input_: np.ndarray) -> None:
        if input_.ndim != 2:
            raise ValueError(f"Dense: input must be 2-D (batch, features), got shape {input_.shape}")
        rng = self._rng()
        num_in = input_.shape[1]
        scale = _init_scale(self.weight_init, num_in, self.neurons)
        W = rng.normal(0.0, scale, size=(num_in, self.neurons)).astype(self.dtype)
        B = rng.normal(0.0, scale, size=(1, self.neurons)).astype(self.dtype)  # random bias, as the book
        self.params = [W, B]
        self.operations = [WeightMultiply(W), BiasAdd(B), self.activation]
        if self.dropout < 1.0:
            self.operations.append(Dropout(self.dropout, seed=self._dropout_seed()))

    def _check_input(self, input_: np.ndarray) -> None:
        if not self._param_arrays:
            return
        n_in = self._param_arrays[0].shape[0]
        shape = input_.shape if type(input_) is np.ndarray else np.shape(input_)
        if len(shape) != 2 or shape[1] != n_in:
            raise self._width_error(input_, f"(batch, {n_in})",
                                    f"a Dense layer keeps the feature width ({n_in}) of the first batch it saw")

    def _setup_input(self, state):
        return np.zeros((0, np.shape(state["params.0"])[0]))

    def _fused_activation(self) -> Optional[str]:
        """The kernel activation name when operations are [WeightMultiply, BiasAdd, act(, Dropout)]."""
        ops = self.operations
        if len(ops) not in (3, 4) or type(ops[0]) is not WeightMultiply or type(ops[1]) is not BiasAdd:
            return None
        if len(ops) == 4 and type(ops[3]) is not Dropout:
            return None
        return FUSABLE.get(type(ops[2]))

    def _runs_on_device(self) -> bool:
        """The fused path runs on device arrays (its BiasAdd is never called on its own)."""
        if self._fused_activation() is not None:
            return all(type(op) in DEVICE_OPS for op in self.operations[3:])
        return super()._runs_on_device()

    def _forward_ops(self, x, inference):
        name = self._fused_activation()
        if name is None:
            return super()._forward_ops(x, inference)
        y = self._fused_forward(as_float(x, self.operations[0].param.dtype), name)
        return self._forward_ops_from(3, y, inference)

    def _fused_forward(self, x, name):
        """``act(x @ W + B)`` in one ``kernels.linear`` call on x (the parameters' dtype), leaving
        [WeightMultiply, BiasAdd, act] as the fused path does (see the class docstring)."""
        w_op, b_op, act = self.operations[:3]
        y = kernels.linear(x, w_op._kernel_param(), b_op._kernel_param(), name)
        w_op.input_, w_op.output = x, None
        b_op.input_, b_op.output = None, None
        act.input_, act.output = None, y
        return y

    def _backward_ops(self, grad, need_input_grad=True):
        name = self._fused_activation()
        if name is None:
            return super()._backward_ops(grad, need_input_grad)
        for op in reversed(self.operations[3:]):
            grad = op.backward(grad)
        return self._fused_backward(as_float(grad, self.operations[2].output.dtype), name, need_input_grad)

    def _fused_backward(self, grad, name, need_input_grad):
        """The gradients of ``_fused_forward``'s output in one ``kernels.linear_backward`` call on grad (the
        output's dtype): every operation's gradients set, the input gradient returned (None when not needed)."""
        w_op, b_op, act = self.operations[:3]
        grad_x, grad_w, grad_b = kernels.linear_backward(w_op.input_, w_op._kernel_param(), act.output, grad, name,
                                                         need_grad_x=need_input_grad)
        act.input_grad = b_op.input_grad = None
        w_op.input_grad = grad_x
        w_op.param_grad = grad_w
        b_op.param_grad = grad_b.reshape(b_op.param.shape)
        return grad_x


class Conv2D(Layer):
    """2-D convolution layer: ``Conv2D_Op(W)`` → activation (→ Flatten) (→ Dropout), no bias.

    ``W`` is (in_channels, out_channels, param_size, param_size), created from the first batch's
    channel count. ``stride`` and ``padding`` generalise the book's stride-1 "same" convolution.

    When the activation is one of fastdl's ``Linear``/``Sigmoid``/``Tanh``/``ReLU``, the activation is
    applied by the convolution kernel as it writes its output (``kernels.conv2d(..., activation=)``), the
    flatten is a view, and backward takes the gradient through the dropout and the activation inside
    ``kernels.conv2d_backward(..., activation=, y=, mask=)``. The results (output,
    ``param_grads``, each operation's ``param_grad``) are what the operations would have produced; the
    convolution's own output before the activation is never formed, so ``operations[0].output`` is None.
    In training with dropout, the dropout runs in the same kernel too (``kernels.conv2d_dropout``: the mask
    is the one the ``Dropout`` operation would draw, applied as the output is written), so the activation's
    output is only formed after the dropout: ``operations[1].output`` holds it with the dropped units zeroed
    (the backward pass needs nothing else), and the ``Dropout`` operation's ``input_`` is None.
    """

    def __init__(self, out_channels: int, param_size: int, dropout: float = 1.0, weight_init: str = "normal",
                 activation: Optional[Operation] = None, flatten: bool = False, stride: int = 1,
                 padding="same", dtype=DEFAULT_DTYPE) -> None:
        super().__init__(out_channels, dtype)
        self.out_channels = out_channels
        self.param_size = param_size
        self.activation = Linear() if activation is None else activation
        self.flatten = flatten
        self.dropout = dropout
        self.weight_init = weight_init
        self.stride = stride
        self.padding = padding

    def _check_input(self, input_: np.ndarray) -> None:
        if not self._param_arrays:
            return
        c_in = self._param_arrays[0].shape[0]
        shape = input_.shape if type(input_) is np.ndarray else np.shape(input_)
        if len(shape) != 4 or shape[1] != c_in:
            raise self._width_error(input_, f"(batch, {c_in}, H, W)",
                                    f"a Conv2D layer keeps the channel count ({c_in}) of the first batch it saw")

    def _setup_input(self, state):
        return np.zeros((0, np.shape(state["params.0"])[0], 1, 1))

    def _setup_layer(self, input_: np.ndarray) -> None:
        if input_.ndim != 4:
            raise ValueError(f"Conv2D: input must be 4-D (batch, channels, H, W), got shape {input_.shape}")
        rng = self._rng()
        in_channels = input_.shape[1]
        scale = _init_scale(self.weight_init, in_channels, self.out_channels)
        W = rng.normal(0.0, scale, size=(in_channels, self.out_channels, self.param_size, self.param_size))
        W = W.astype(self.dtype)
        self.params = [W]
        self.operations = [Conv2D_Op(W, stride=self.stride, padding=self.padding), self.activation]
        if self.flatten:
            self.operations.append(Flatten())
        if self.dropout < 1.0:
            self.operations.append(Dropout(self.dropout, seed=self._dropout_seed()))

    def _fused_activation(self) -> Optional[str]:
        """The kernel activation name when operations are [Conv2D_Op, act(, Flatten)(, Dropout)]."""
        ops = self.operations
        if len(ops) < 2 or type(ops[0]) is not Conv2D_Op:
            return None
        if [type(op) for op in ops[2:]] not in ([], [Flatten], [Dropout], [Flatten, Dropout]):
            return None
        return FUSABLE.get(type(ops[1]))

    def _forward_ops(self, x, inference):
        name = self._fused_activation()
        if name is None:
            return super()._forward_ops(x, inference)
        conv, act = self.operations[:2]
        conv.input_ = x
        dropout = self.operations[-1] if not inference and type(self.operations[-1]) is Dropout else None
        if dropout is not None:
            return self._forward_with_dropout(conv, act, dropout, name)
        # x is (B, C_in, H, W) -> y = act(conv(x)) (B, C_out, H_out, W_out)
        y = kernels.conv2d(conv._x(), conv._kernel_param(), stride=conv.stride, padding=conv.padding,
                           activation=name)
        conv.output, act.input_, act.output = None, None, y
        return self._forward_ops_from(2, y, inference)

    def _forward_with_dropout(self, conv, act, dropout, name):
        """Training forward of [Conv2D_Op, act(, Flatten), Dropout] in one kernel, leaving every operation as
        the separate ones would (see the class docstring for the two that differ)."""
        w = conv._kernel_param()
        x = conv._x()
        # x is (B, C_in, H, W), w is (C_in, C_out, K, K) -> y = act(conv(x)) * mask (B, C_out, H_out, W_out)
        size = [conv_output_size(n, w.shape[2], conv.stride, *conv_padding(w.shape[2], conv.padding))
                for n in x.shape[2:]]
        first = dropout.first_row * w.shape[1] * size[0] * size[1]
        y, mask = kernels.conv2d_dropout(x, w, dropout.keep_prob, dropout._next_key(), stride=conv.stride,
                                         padding=conv.padding, activation=name, first=first)
        conv.output, act.input_, act.output = None, None, y
        out = self.operations[2].forward(y) if len(self.operations) == 4 else y  # the Flatten: a view
        dropout.input_, dropout.output, dropout.mask = None, out, mask.reshape(out.shape)
        return out

    def _backward_ops(self, grad, need_input_grad=True):
        name = self._fused_activation()
        if name is None:
            return super()._backward_ops(grad, need_input_grad)
        conv, act = self.operations[:2]
        y = act.output  # (B, C_out, H_out, W_out), after the activation (and the dropout, when fused)
        grad = as_float(grad, y.dtype).reshape(y.shape)
        dropout = self.operations[-1] if type(self.operations[-1]) is Dropout else None
        mask = None if dropout is None else dropout.mask.reshape(y.shape)
        for op in self.operations[1:]:
            op.input_grad = None  # folded into the convolution's backward
        # grad is the gradient of act(conv(x)) [* mask]: conv2d_backward takes it through both
        grad_x, grad_w = kernels.conv2d_backward(conv._x(), conv._kernel_param(), grad, stride=conv.stride,
                                                 padding=conv.padding, need_grad_x=need_input_grad,
                                                 activation=name, y=y, mask=mask)
        conv.input_grad, conv.param_grad = grad_x, grad_w
        return grad_x
