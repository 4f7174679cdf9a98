"""The book API's one door to the GPU.

``fastdl.layers``, ``network``, ``losses``, ``optimizers``, ``dropout`` and ``base`` reach device residency
only through this package; none of them imports ``fastdl.cuda``. What they use:

* ``cuda_backend()``: whether the cuda backend serves ``fastdl.kernels`` now;
* moves (``moves.py``): ``is_device``, ``upload``, ``download``, ``to_device``, ``to_host``, ``same_side``,
  ``as_float``, ``host_state``;
* mirrors (``mirrors.py``): ``DeviceParams``, a layer's device copies of its parameters and gradients,
  and ``optimizer_arrays``, what fastdl's optimizers update;
* ``DeviceResident`` (``resident.py``): the part of fastdl's ``Layer`` that keeps those copies and runs
  the layer on the side its input is on;
* operations (``ops.py``): ``scale``, ``subtract``, ``copy``, ``sum_squares``, ``zeros`` and the update
  rules ``sgd``, ``sgd_momentum``, ``adagrad``, ``regularized_sgd`` on device arrays.

Importing it never imports numba: the cuda backend is imported when a device array is first met.
"""

from fastdl.device import ops
from fastdl.device.mirrors import DeviceParams, Mirror, optimizer_arrays
from fastdl.device.resident import DeviceResident
from fastdl.device.moves import (as_float, cuda_backend, download, host_state, is_device, same_side, to_device,
                                 to_host, upload)

__all__ = ["cuda_backend", "is_device", "upload", "download", "to_device", "to_host", "same_side", "as_float",
           "host_state", "Mirror", "DeviceParams", "DeviceResident", "optimizer_arrays", "ops"]
