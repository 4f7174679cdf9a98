"""``DeviceResident``: the part of fastdl's ``Layer`` that keeps its parameters on the device on the cuda backend.

On the cuda backend a layer whose operations all run on device arrays (Dense and Conv2D with fastdl's
activations, Flatten and Dropout) keeps device copies of its parameters and gradients (one
``DeviceParams``, made on its first forward there) and runs on them. ``params`` and ``param_grads`` still
give host arrays, brought up to date first, and in-place changes to them reach the device before the next
forward. A layer's output is on the side its input came from (NumPy in, NumPy out; device array in,
device array out), and so is ``backward``'s input gradient. On the other backends, or once the layer
leaves the cuda backend, it runs on its host arrays.

``fastdl.layers.Layer`` inherits this class and provides ``_forward_ops`` / ``_backward_ops`` (the
operations in order), ``_runs_on_device()`` and ``_param_operations()`` (the operations that hold a
parameter, each with a ``device_param`` slot that the kernels use when set).
"""

from typing import List

import numpy as np

from fastdl.device.mirrors import DeviceParams
from fastdl.device.moves import cuda_backend, host_state, is_device, same_side, to_device, to_host

__all__ = ["DeviceResident"]


class DeviceResident:
    """Host parameter lists (``_param_arrays`` / ``_grad_arrays``) behind the ``params`` / ``param_grads``
    properties, and ``_device``: None, or the device copies while the layer runs on the cuda backend."""

    _device = None

    # -- parameters (host arrays; device copies on the cuda backend) --------------------------------
    @property
    def params(self) -> List[np.ndarray]:
        """The parameters: host NumPy arrays in the book's order. When the layer keeps device copies,
        the arrays are first brought up to date from them, and since the caller may now change them in
        place they are uploaded again before the layer next uses its device copies."""
        if self._device is None:
            return self._param_arrays
        return self._device.params.on_host(share=True)

    @params.setter
    def params(self, value: List[np.ndarray]) -> None:
        self._release_device()
        self._param_arrays = value

    @property
    def param_grads(self) -> List[np.ndarray]:
        """The gradients of the last backward, host NumPy arrays in the order of ``params`` (downloaded
        first when they were computed on the device)."""
        if self._device is None:
            return self._grad_arrays
        return self._device.grads.on_host(share=True)

    @param_grads.setter
    def param_grads(self, value: List[np.ndarray]) -> None:
        if self._device is None:
            self._grad_arrays = value
        else:
            self._device.set_grads(value)

    def _current_params(self) -> List[np.ndarray]:
        """``params`` for fastdl's own reads and in-place writes (state dicts, deep copies): brought up to
        date from the device, but not handed out (the device copies stay valid)."""
        return self._param_arrays if self._device is None else self._device.params.on_host()

    def _params_written(self) -> None:
        """fastdl wrote ``_current_params()`` in place (``load_state_dict``): upload before the next use."""
        if self._device is not None:
            self._device.params.host_written()

    def _release_device(self) -> None:
        """Bring parameters and gradients up to date on the host and drop the device copies; the layer
        then runs on its host arrays, as on the numpy and cpu backends."""
        if self._device is None:
            return
        self._param_arrays = self._device.params.on_host()
        self._grad_arrays = self._device.grads.on_host()
        self._device = None
        for op in self._param_operations():
            op.device_param = None

    def __getstate__(self):
        """What ``copy.deepcopy`` and pickle copy: current host parameters and gradients, activations as
        host copies, no device copies (a copy makes its own when it next runs on the cuda backend)."""
        state = host_state(self.__dict__)
        if self._device is not None:
            state["_param_arrays"] = self._device.params.on_host()
            state["_grad_arrays"] = self._device.grads.on_host()
            del state["_device"]
        return state

    # -- running on the side the data is on ----------------------------------------------------------
    def _run_forward(self, input_, inference):
        """``_forward_ops`` on the cuda backend's terms when it serves the kernels, else on the host arrays
        (dropping device copies left from an earlier run on the cuda backend)."""
        if cuda_backend():
            return self._forward_cuda(input_, inference)
        if self._device is not None:
            self._release_device()
        return self._forward_ops(input_, inference)

    def _run_backward(self, output_grad, need_input_grad):
        """``_backward_ops`` on the side the forward ran on."""
        if self._device is not None or is_device(output_grad):
            return self._backward_cuda(output_grad, need_input_grad)
        return self._backward_ops(output_grad, need_input_grad)

    def _forward_cuda(self, input_, inference):
        """The forward on the cuda backend: on the device copies when every operation takes device
        arrays, else on the host arrays. The result is on the side ``input_`` came from."""
        if not self._runs_on_device():
            self._release_device()
            return same_side(self._forward_ops(to_host(input_), inference), input_)
        if self._device is None:
            self._device = DeviceParams(self._param_arrays, self._grad_arrays)
        device_of = {id(h): d for h, d in zip(self._param_arrays, self._device.params.on_device())}
        for op in self._param_operations():
            op.device_param = device_of.get(id(op.param))
        return same_side(self._forward_ops(to_device(input_), inference), input_)

    def _backward_cuda(self, output_grad, need_input_grad):
        """The backward after ``_forward_cuda``, on the side that forward ran on; the result is on the
        side ``output_grad`` came from."""
        move = to_host if self._device is None else to_device
        input_grad = self._backward_ops(move(output_grad), need_input_grad)
        return None if input_grad is None else same_side(input_grad, output_grad)
