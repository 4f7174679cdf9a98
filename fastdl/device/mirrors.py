"""Device copies ("mirrors") of the book-API layers' parameters and gradients on the cuda backend.

On the cuda backend a ``Dense`` or ``Conv2D`` layer keeps a device copy of every parameter and of
every parameter gradient (one ``DeviceParams`` per layer, made on its first forward there). Its
forward and backward run on those copies; inside ``NeuralNetwork.train_batch`` the batch goes up once,
activations and gradients stay on the device, and only the loss comes down. fastdl's own optimizers
update the device copies on the device (``fastdl.device.ops``).

The public book API still sees host NumPy arrays, as lincoln's: ``layer.params`` and
``layer.param_grads`` are lists of ndarrays that outside code may change IN PLACE. A ``Mirror`` keeps
the two sides honest:

* ``on_host(share=True)`` (what the public accessors call) first brings the host arrays up to date from
  the device (into the same arrays, so their identity never changes), then marks them *shared*: outside
  code holds them and may change them at any time, so every device use uploads them again, until
  fastdl next writes the device side (an optimizer step for parameters, a backward for gradients;
  arrays handed out before that hold old values, so read ``params`` again after such a step);
* ``on_host()`` (fastdl's own reads: ``state_dict``, ``load_state_dict``, ``copy.deepcopy``) syncs
  without sharing;
* ``on_device()`` uploads when the host side is newer or shared, and returns the device arrays;
* ``device_written()`` / ``host_written()`` record which side an update changed.

Every copy made here goes through ``fastdl.device.moves``.
"""

from typing import List, Optional

import numpy as np

from fastdl.device.moves import is_device, to_host, upload, download

__all__ = ["Mirror", "DeviceParams", "optimizer_arrays"]

HOST, DEVICE = "host", "device"


class Mirror:
    """A list of arrays kept on the host and on the device.

    ``host`` is a list of ndarrays (None until a device-made list is first read on the host); ``device`` a
    list of device arrays of the same shapes (None until first used there). ``newer`` names the side that
    holds values the other lacks (None: both agree). ``shared``: the host arrays were handed to outside
    code, so they are uploaded before every device use until the device side is written again.
    """

    def __init__(self, host: List[np.ndarray]):
        self.host: Optional[List[np.ndarray]] = host
        self.device: Optional[list] = None
        self.newer: Optional[str] = HOST
        self.shared = False

    def on_device(self) -> list:
        """The device arrays, uploaded first when the host side is newer or shared."""
        if self.newer == HOST or self.shared:
            old = self.device
            if old is None or len(old) != len(self.host):
                old = [None] * len(self.host)
            self.device = [upload(h, into=d) for h, d in zip(self.host, old)]
            self.newer = None
        return self.device

    def on_host(self, share: bool = False) -> List[np.ndarray]:
        """The host arrays, brought up to date from the device first (into the same arrays when they
        exist). ``share=True``: they are being handed to outside code (see the class docstring)."""
        if self.newer == DEVICE:
            if self.host is None:
                self.host = [download(d) for d in self.device]
            else:
                for i, (h, d) in enumerate(zip(self.host, self.device)):
                    self.host[i] = download(d, into=h)
            self.newer = None
        self.shared = self.shared or share
        return self.host

    def device_written(self) -> None:
        """The device arrays were changed in place (an optimizer step): the host copies are stale."""
        self.newer = DEVICE
        self.shared = False

    def host_written(self) -> None:
        """The host arrays were changed in place (``load_state_dict``): upload before the next device use."""
        self.newer = HOST

    def set_device(self, arrays: list) -> None:
        """New device arrays (a backward's gradients); host copies are made when first read."""
        self.device = list(arrays)
        self.host = None
        self.newer = DEVICE
        self.shared = False

    def set_host(self, arrays: List[np.ndarray]) -> None:
        """New host arrays; uploaded (into the old device arrays when they fit) at the next device use."""
        self.host = list(arrays)
        self.newer = HOST


class DeviceParams:
    """One layer's mirrors: ``params`` (its host side is the layer's own list of parameter arrays) and
    ``grads`` (the parameter gradients of the last backward)."""

    def __init__(self, params: List[np.ndarray], grads: List[np.ndarray]):
        self.params = Mirror(params)
        self.grads = Mirror(grads)

    def set_grads(self, grads: list) -> None:
        """Record a backward's gradients: device arrays stay on the device; host arrays are kept as such."""
        if all(is_device(g) for g in grads):
            self.grads.set_device(grads)
        else:
            self.grads.set_host([to_host(g) for g in grads])


def optimizer_arrays(layers):
    """``(params, grads)`` for one step of fastdl's own optimizers, two lists in the order of the
    layers: a layer's device copies when it keeps them (marked as written, since the step changes them
    on the device), else its public ``params`` / ``param_grads``. None when no layer keeps device copies."""
    for layer in layers:
        if getattr(layer, "_device", None) is not None:
            break
    else:
        return None
    params, grads = [], []
    for layer in layers:
        mirrors = getattr(layer, "_device", None)
        if mirrors is None:
            params += layer.params
            grads += layer.param_grads
        else:
            params += mirrors.params.on_device()
            grads += mirrors.grads.on_device()
            mirrors.params.device_written()
    return params, grads
