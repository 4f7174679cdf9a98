"""``Operation`` and ``ParamOperation``, the building blocks of every layer (lincoln ``base.py``).

An operation is stateful: ``forward`` stores ``input_`` and ``output``, ``backward`` stores
``input_grad`` (and ``param_grad`` for a ``ParamOperation``). Subclasses implement ``_output`` and
``_input_grad`` (and ``_param_grad``). ``backward(output_grad, need_input_grad=False)`` skips the input
gradient (``input_grad`` is None; the first layer of a network in ``train_batch``, where nothing reads it).
``forward(x, inference=False)`` is the L2019 signature; the
call ``forward(x)`` works too, and so do subclasses written HEAD-style, whose ``_output(self)`` takes
no ``inference`` argument.

On the cuda backend an operation inside a ``Dense`` or ``Conv2D`` layer may be handed device arrays
(``fastdl.device``): ``input_``, ``output`` and the gradients are then device arrays, and a
``ParamOperation`` computes with ``device_param``, the layer's device copy of ``param``. A deep copy
(or pickle) holds host copies of them.
"""

import functools
import inspect

import numpy as np

from fastdl import device as dev
from fastdl.utils.np_utils import assert_same_shape

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def as_float(x, dtype=None):
    """``x`` as an ndarray of ``dtype``; without one, keep float32/float64 and turn anything else into
    float64. No copy when nothing changes. A device array stays on the device (cast there if needed)."""
    if type(x) is not np.ndarray:
        if not isinstance(x, np.ndarray) and dev.is_device(x):
            return dev.as_float(x, dtype)
        x = np.asarray(x)
    if dtype is None:
        return x if x.dtype in _FLOATS else x.astype(np.float64)
    return x if x.dtype == dtype else x.astype(dtype)


def caller_dtype(x):
    """The dtype a layer hands back for input ``x``: float32 or float64 when ``x`` is a host array of
    one (a caller's float64 batch gets float64 outputs and gradients back, whatever the layer computes
    in); None for anything else (the layer's own dtype then)."""
    return x.dtype if isinstance(x, np.ndarray) and x.dtype in _FLOATS else None


def as_caller_dtype(x, dtype):
    """``x`` cast to ``dtype`` (from ``caller_dtype``) when it is a host array of another dtype."""
    if dtype is None or not isinstance(x, np.ndarray) or x.dtype == dtype:
        return x
    return x.astype(dtype)


@functools.lru_cache(maxsize=None)
def _output_takes_inference(cls) -> bool:
    """True when ``cls._output`` accepts an ``inference`` argument (L2019 style)."""
    try:
        params = list(inspect.signature(cls._output).parameters.values())[1:]  # drop self
    except (TypeError, ValueError):
        return True
    return len(params) > 0


class Operation:
    """One differentiable step: ``output = f(input_)`` and ``input_grad = df/dinput_ · output_grad``."""

    def __init__(self):
        pass

    def forward(self, input_: np.ndarray, inference: bool = False) -> np.ndarray:
        """Store ``input_``, compute and store ``output``, and return it."""
        self.input_ = input_
        if _output_takes_inference(type(self)):
            self.output = self._output(inference)
        else:
            self.output = self._output()
        return self.output

    def backward(self, output_grad: np.ndarray, need_input_grad: bool = True):
        """Check the gradient's shape, compute and store ``input_grad`` and return it (None, and not
        computed, when ``need_input_grad`` is false)."""
        assert_same_shape(self.output, output_grad)
        self.input_grad = self._input_grad(output_grad) if need_input_grad else None
        if need_input_grad:
            assert_same_shape(self.input_, self.input_grad)
        return self.input_grad

    def _output(self, inference: bool) -> np.ndarray:
        raise NotImplementedError()

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        raise NotImplementedError()

    def __getstate__(self):
        """What ``copy.deepcopy`` and pickle copy: the attributes, device arrays as host copies."""
        return dev.host_state(self.__dict__)


class ParamOperation(Operation):
    """An operation with one parameter array ``param``.

    ``param`` is the very array the layer keeps in ``layer.params``: optimizers update it in place and
    the next ``forward`` sees the new values. While the layer runs on the cuda backend it sets
    ``device_param`` to its device copy of ``param``, and the kernels are given that instead
    (``_kernel_param``); otherwise ``device_param`` is None.
    """

    device_param = None

    def __init__(self, param: np.ndarray):
        super().__init__()
        self.param = param

    def _kernel_param(self):
        """The parameter as the kernels take it: ``device_param`` when set, else ``param``."""
        return self.param if self.device_param is None else self.device_param

    def backward(self, output_grad: np.ndarray, need_input_grad: bool = True):
        """As ``Operation.backward``, and also compute and store ``param_grad`` (param's shape)."""
        assert_same_shape(self.output, output_grad)
        if need_input_grad:
            self.input_grad = self._input_grad(output_grad)
            self.param_grad = self._param_grad(output_grad)
            assert_same_shape(self.input_, self.input_grad)
        else:
            self.input_grad = None
            self.param_grad = self._param_grad_alone(output_grad)
        assert_same_shape(self.param, self.param_grad)
        return self.input_grad

    def _param_grad(self, output_grad: np.ndarray) -> np.ndarray:
        raise NotImplementedError()

    def _param_grad_alone(self, output_grad: np.ndarray) -> np.ndarray:
        """``_param_grad`` when no input gradient is wanted. An operation whose kernel computes both
        gradients in one call overrides it to leave the input gradient's share out."""
        return self._param_grad(output_grad)

    def __getstate__(self):
        """As ``Operation.__getstate__``, without ``device_param`` (a copy runs on ``param`` until its layer
        next runs on the device)."""
        state = super().__getstate__()
        state.pop("device_param", None)
        return state
