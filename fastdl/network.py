"""Networks (lincoln ``network.py``): ``LayerBlock`` and ``NeuralNetwork``.

Works with fastdl layers and with any lincoln-style layer (``forward``, ``backward``, ``params`` and
``param_grads`` lists, ``first``, ``seed``), including HEAD-style layers whose ``forward`` takes no
``inference`` argument.

``state_dict()`` names every parameter ``"layers.<i>.params.<j>"`` (layer i, its j-th parameter);
``load_state_dict`` checks names, shapes and dtypes before copying anything (``fastdl.io`` saves and
loads these dicts as ``.npz`` files).

On the cuda backend (see ``fastdl.device``) a batch goes to the device once, when the first
layer is a fastdl layer, and stays there between fastdl layers; ``forward`` and ``backward`` give back
NumPy for NumPy and device arrays for device arrays. ``train_batch`` and ``forward_loss`` keep the
prediction and the loss gradient on the device too (for fastdl's losses), so only the loss comes back.
Layers and losses that are not fastdl's get host arrays.
"""

import functools
import inspect
import re
from typing import Dict, Iterator, List, Mapping, Optional

import numpy as np

from fastdl import device as dev
from fastdl.base import as_caller_dtype, caller_dtype
from fastdl.io import load_params
from fastdl.layers import Dense, Layer
from fastdl.losses import DEVICE_LOSSES, Loss, MeanSquaredError


@functools.lru_cache(maxsize=None)
def _forward_takes_inference(cls) -> bool:
    try:
        params = list(inspect.signature(cls.forward).parameters.values())[1:]  # drop self
    except (TypeError, ValueError):
        return True
    return len(params) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in params)


def _layer_forward(layer, x, inference):
    if _forward_takes_inference(type(layer)):
        return layer.forward(x, inference)
    return layer.forward(x)


def _layer_backward(layer, grad, need_input_grad):
    """``layer.backward(grad)``; a fastdl layer is told when nothing will read its input gradient."""
    if need_input_grad or not isinstance(layer, Layer):
        return layer.backward(grad)
    return layer.backward(grad, need_input_grad=False)


def _dense_chain(net, X_batch):
    """``[(layer, activation name)]`` when ``train_batch`` may run ``net`` as a chain of fused Dense kernels
    (``NeuralNetwork._train_dense_chain``): every layer a set-up fastdl ``Dense`` (not a subclass) whose
    operations are exactly [WeightMultiply, BiasAdd, a fusable activation] on the host, all in one dtype, a
    fastdl loss, the network's own forward and backward, and a 2-D float batch of the first layer's width.
    Otherwise None, and the layers run one by one."""
    cls = type(net)
    if cls._forward is not LayerBlock._forward or cls._backward is not LayerBlock._backward:
        return None
    if not net.layers or not isinstance(net.loss, Loss) or caller_dtype(X_batch) is None:
        return None
    dtype = getattr(net.layers[0], "dtype", None)
    chain = []
    for layer in net.layers:
        if type(layer) is not Dense or layer.first or layer._device is not None or layer.dtype != dtype:
            return None
        if len(layer.operations) != 3:
            return None
        name = layer._fused_activation()
        if name is None:
            return None
        chain.append((layer, name))
    if X_batch.ndim != 2 or X_batch.shape[1] != net.layers[0].operations[0].param.shape[0]:
        return None
    return chain


class LayerBlock:
    """An ordered list of layers run forwards and backwards."""

    _batch_dtype = None  # caller_dtype of the last batch forward saw

    def __init__(self, layers: List[Layer]):
        super().__init__()
        self.layers = layers

    def forward(self, X_batch: np.ndarray, inference: bool = False) -> np.ndarray:
        """Run every layer in order; ``inference=True`` switches Dropout to its inference scaling.
        On the cuda backend the result is on the side ``X_batch`` is on (NumPy for NumPy). A float32 or
        float64 host batch gives a result of its dtype, as a fastdl layer's forward does."""
        return as_caller_dtype(self._forward(X_batch, inference), caller_dtype(X_batch))

    def _forward(self, X_batch, inference):
        """``forward`` without the cast back to the batch's dtype: the batch is cast once to the first
        fastdl layer's dtype, so fastdl layers pass their own dtype along and no layer converts twice."""
        self._batch_dtype = caller_dtype(X_batch)
        if dev.cuda_backend():
            return self._forward_cuda(X_batch, inference)
        first = self.layers[0] if self.layers else None
        X_out = first._cast(X_batch) if isinstance(first, Layer) else X_batch
        for layer in self.layers:
            X_out = _layer_forward(layer, X_out, inference)
        return X_out

    def backward(self, loss_grad: np.ndarray) -> np.ndarray:
        """Run every layer's backward in reverse order and return the input gradient (on the cuda
        backend, on the side ``loss_grad`` is on), in the dtype of the batch ``forward`` last saw."""
        return as_caller_dtype(self._backward(loss_grad, need_input_grad=True), self._batch_dtype)

    def _backward(self, loss_grad, need_input_grad):
        """``backward``; with ``need_input_grad`` false a fastdl first layer skips its input gradient
        (``train_batch``: nothing reads it) and None is returned."""
        if dev.cuda_backend():
            return self._backward_cuda(loss_grad, need_input_grad)
        grad = loss_grad
        for i in range(len(self.layers) - 1, -1, -1):
            grad = _layer_backward(self.layers[i], grad, need_input_grad or i > 0)
        return grad

    # -- the cuda backend: one upload per batch, device arrays between fastdl layers ---------------
    def _forward_cuda(self, X_batch, inference):
        X_out = self._to_device(X_batch)
        for layer in self.layers:
            if not isinstance(layer, Layer):
                X_out = dev.to_host(X_out)  # a lincoln-style layer computes with NumPy
            X_out = _layer_forward(layer, X_out, inference)
        return dev.same_side(X_out, X_batch)

    def _backward_cuda(self, loss_grad, need_input_grad):
        grad = self._grad_to_device(loss_grad)
        for i in range(len(self.layers) - 1, -1, -1):
            if not isinstance(self.layers[i], Layer):
                grad = dev.to_host(grad)
            grad = _layer_backward(self.layers[i], grad, need_input_grad or i > 0)
        return None if grad is None else dev.same_side(grad, loss_grad)

    def _to_device(self, X_batch):
        """A host batch for a fastdl first layer as a device array (cast to that layer's dtype, then
        uploaded once); otherwise ``X_batch`` itself."""
        first = self.layers[0] if self.layers else None
        if not isinstance(first, Layer) or dev.is_device(X_batch):
            return X_batch
        return dev.upload(first._cast(X_batch))

    def _grad_to_device(self, loss_grad):
        """A host loss gradient as a device array when the last layer ran on its device copies."""
        last = self.layers[-1] if self.layers else None
        if getattr(last, "_device", None) is None or dev.is_device(loss_grad):
            return loss_grad
        return dev.upload(np.asarray(last._cast(loss_grad)))

    def _optimizer_arrays(self):
        """What fastdl's optimizers update: ``(params, grads)`` in ``params()`` order, with the device
        copies of the layers that keep them; None when no layer does (then they use ``params()``)."""
        return dev.optimizer_arrays(self.layers)

    def params(self) -> Iterator[np.ndarray]:
        """Every layer's parameters, in layer order (Dense: W, B; Conv2D: W)."""
        for layer in self.layers:
            yield from layer.params

    def param_grads(self) -> Iterator[np.ndarray]:
        """Every layer's parameter gradients, in the same order as ``params()``."""
        for layer in self.layers:
            yield from layer.param_grads

    def state_dict(self) -> Dict[str, np.ndarray]:
        """Copies of every parameter, named ``"layers.<i>.params.<j>"``; un-set-up layers contribute none."""
        state = {}
        for i, layer in enumerate(self.layers):
            own = layer.state_dict() if hasattr(layer, "state_dict") else {
                f"params.{j}": np.array(p, copy=True) for j, p in enumerate(layer.params)}
            state.update({f"layers.{i}.{name}": value for name, value in own.items()})
        return state

    def load_state_dict(self, state: Mapping[str, np.ndarray], strict: bool = True) -> None:
        """Load a ``state_dict()`` into the layers (in place). With ``strict`` every name must match;
        shapes and dtypes must always match. Layers that have not seen a batch are set up from the state's
        shapes. Raises ``ValueError`` explaining the first mismatch; then no layer has been changed."""
        if not isinstance(state, Mapping):
            raise TypeError(f"load_state_dict: state must be a mapping of names to arrays, got {type(state).__name__}")
        per_layer = [{} for _ in self.layers]
        unexpected = []
        for name, value in state.items():
            match = re.fullmatch(r"layers\.(\d+)\.(.+)", str(name))
            if match and int(match.group(1)) < len(self.layers):
                per_layer[int(match.group(1))][match.group(2)] = value
            else:
                unexpected.append(name)
        if strict and unexpected:
            raise ValueError(f"load_state_dict: unexpected names {sorted(unexpected)} for a network of "
                             f"{len(self.layers)} layers (names are 'layers.<i>.params.<j>')")
        backup = self.state_dict()
        done = []
        try:
            for i, (layer, own) in enumerate(zip(self.layers, per_layer)):
                was_first = getattr(layer, "first", False)
                load_params(layer, own, strict, prefix=f"layers.{i}.")
                done.append((i, was_first))
        except Exception:
            for i, was_first in done:  # undo: no layer is left half-loaded
                layer = self.layers[i]
                if was_first and isinstance(layer, Layer):
                    layer.first, layer.params, layer.operations = True, [], []
                else:
                    load_params(layer, {k[len(f"layers.{i}."):]: v for k, v in backup.items()
                                        if k.startswith(f"layers.{i}.")}, False)
            raise

    def __iter__(self):
        return iter(self.layers)

    def __repr__(self) -> str:
        layer_strs = [str(layer) for layer in self.layers]
        return f"{type(self).__name__}(\n  " + ",\n  ".join(layer_strs) + ")"


class NeuralNetwork(LayerBlock):
    """Layers plus a loss. ``seed`` is handed to every layer (``layer.seed``) for its initial weights.

    Fixes over the book: the default loss is a fresh ``MeanSquaredError()`` instance (a loss class
    passed in is instantiated too), and any seed other than None, 0 included, is passed on.
    """

    def __init__(self, layers: List[Layer], loss: Optional[Loss] = None, seed: Optional[int] = 1):
        super().__init__(layers)
        if loss is None:
            loss = MeanSquaredError()
        elif isinstance(loss, type):
            loss = loss()
        self.loss = loss
        self.seed = seed
        if seed is not None:
            for layer in self.layers:
                setattr(layer, "seed", self.seed)

    def forward_loss(self, X_batch: np.ndarray, y_batch: np.ndarray, inference: bool = False) -> float:
        """The loss of the network's prediction on ``X_batch`` (no backward pass)."""
        if dev.cuda_backend():
            X_batch = self._to_device(X_batch)
            return self.loss.forward(self._for_loss(self.forward(X_batch, inference)), y_batch)
        return self.loss.forward(self._prediction_for_loss(self._forward(X_batch, inference), X_batch), y_batch)

    def train_batch(self, X_batch: np.ndarray, y_batch: np.ndarray, inference: bool = False) -> float:
        """Forward, loss, and backward on one batch; returns the batch loss. Does not step an optimizer.
        On the cuda backend the batch goes up once and everything but the loss stays on the device."""
        if dev.cuda_backend():
            return self._train_batch_cuda(X_batch, y_batch, inference)
        chain = _dense_chain(self, X_batch)
        if chain is not None:
            return self._train_dense_chain(chain, X_batch, y_batch)
        prediction = self._prediction_for_loss(self._forward(X_batch, inference), X_batch)
        batch_loss = self.loss.forward(prediction, y_batch)
        loss_grad = self.loss.backward()
        self._backward(loss_grad, need_input_grad=False)
        return batch_loss

    def _train_dense_chain(self, chain, X_batch, y_batch):
        """``train_batch`` of a network of plain Dense layers (``_dense_chain``): the same kernel calls with the
        same arguments, and every attribute left as the layer-by-layer path leaves it, without that path's
        per-layer casts and checks, which the chain has already settled for the whole batch."""
        self._batch_dtype = caller_dtype(X_batch)
        x = chain[0][0]._cast(X_batch)  # once, as the layer-by-layer path casts it for the first layer
        for layer, name in chain:
            layer._caller_dtype = x.dtype
            layer.input_ = x
            x = layer.output = layer._fused_forward(x, name)
        batch_loss = self.loss.forward(x, y_batch)
        grad = chain[-1][0]._cast(self.loss.backward())  # a loss may hand back another dtype (shape: checked)
        for i in range(len(chain) - 1, -1, -1):
            layer, name = chain[i]
            grad = layer._fused_backward(grad, name, i > 0)
            layer._param_grads()
        return batch_loss

    def _prediction_for_loss(self, prediction, X_batch):
        """fastdl's losses take the prediction in the layers' dtype; any other loss (the book's own) gets
        it in the batch's dtype, as it would from the book's layers."""
        return prediction if isinstance(self.loss, Loss) else as_caller_dtype(prediction, caller_dtype(X_batch))

    def _train_batch_cuda(self, X_batch, y_batch, inference):
        prediction = self.forward(self._to_device(X_batch), inference)
        batch_loss = self.loss.forward(self._for_loss(prediction), y_batch)
        loss_grad = self.loss.backward()
        self._backward(self._grad_to_device(loss_grad), need_input_grad=False)
        return batch_loss

    def _for_loss(self, prediction):
        """The prediction as the loss takes it: fastdl's losses take device arrays, others get NumPy."""
        return prediction if type(self.loss) in DEVICE_LOSSES else dev.to_host(prediction)
