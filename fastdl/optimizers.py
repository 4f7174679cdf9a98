"""Optimizers (lincoln ``optimizers.py``): ``Optimizer``, ``SGD``, ``SGDMomentum``, ``AdaGrad``,
``RegularizedSGD``.

``Trainer`` injects ``net`` (and ``max_epochs``); ``step()`` walks ``zip(net.params(),
net.param_grads())`` and updates every parameter IN PLACE, so the layers' operations see the new
values. Learning-rate decay (``decay_type`` 'exponential' or 'linear' towards ``final_lr``) is
applied by the Trainer at the end of each epoch, exactly as in the book.

Fixes over the book: ``AdaGrad``'s ``final_lr_exp`` / ``final_lr_linear`` select exponential / linear
decay (the book passed ``final_lr_linear`` as the decay type), ``step(epoch=0)`` is accepted by every
optimizer, and one-epoch decay does not divide by zero. Kept: AdaGrad adds ``eps`` to its running sum
every step, and RegularizedSGD's weight decay ``alpha * param`` is not scaled by ``lr``.

On the cuda backend a fastdl network keeps device copies of its layers' parameters
(``fastdl.device``). The four optimizers here then update those copies on the device
(``fastdl.device.ops``), with their running state (velocities, AdaGrad sums) on the device as
well, so a step moves nothing between host and device. The host arrays that ``net.params()`` returns
are brought up to date whenever outside code reads them. An optimizer whose ``_update_rule`` is not one
of these four (a subclass's own rule), or a network without device copies, updates the host arrays
from ``net.params()`` / ``net.param_grads()`` exactly as before.

On the host, the four rules update every parameter in ONE call (``fastdl.kernels.parameter_update``; on the
cpu backend one C++ pass over all parameters instead of four NumPy passes per parameter), bit-identical to
the rules written out in ``_update_rule``. A subclass that overrides ``_update_rule`` gets its own rule,
called once per parameter, as in the book.
"""

from typing import Optional

import numpy as np

from fastdl import device as dev
from fastdl import kernels


class Optimizer:
    """Base optimizer: learning rate, optional decay schedule, and ``step``."""

    def __init__(self, lr: float = 0.01, final_lr: float = 0, decay_type: Optional[str] = None) -> None:
        self.lr = lr
        self.final_lr = final_lr
        self.decay_type = decay_type
        self.first = True

    def _setup_decay(self) -> None:
        """Compute ``decay_per_epoch`` so that the last of ``max_epochs`` epochs runs at ``final_lr``."""
        if not self.decay_type:
            return
        steps = max(self.max_epochs - 1, 1)
        if self.decay_type == "exponential":
            self.decay_per_epoch = float((self.final_lr / self.lr) ** (1.0 / steps))
        elif self.decay_type == "linear":
            self.decay_per_epoch = float((self.lr - self.final_lr) / steps)
        else:
            raise ValueError(f"decay_type must be 'exponential', 'linear' or None, got {self.decay_type!r}")

    def _decay_lr(self) -> None:
        """One epoch of decay: ``lr *= decay_per_epoch`` or ``lr -= decay_per_epoch``."""
        if not self.decay_type:
            return
        if self.decay_type == "exponential":
            self.lr *= self.decay_per_epoch
        elif self.decay_type == "linear":
            self.lr -= self.decay_per_epoch

    def _arrays(self):
        """``(params, grads)``, two lists in ``net.params()`` order: with a network that keeps device
        copies and a rule that runs on them, the device copies where there are some; else (and on the
        numpy and cpu backends) ``net.params()`` and ``net.param_grads()``."""
        from_net = getattr(self.net, "_optimizer_arrays", None)
        if from_net is not None and type(self)._update_rule in _DEVICE_RULES:
            arrays = from_net()
            if arrays is not None:
                return arrays
        return list(self.net.params()), list(self.net.param_grads())

    def _state(self, name: str, params: list):
        """A per-parameter list of zero arrays kept under ``name``, created on the first step, each on the
        side (host or device) of its parameter in ``params``."""
        if self.first or not hasattr(self, name):
            setattr(self, name, [_zeros_like(param) for param in params])
            self.first = False
        state = getattr(self, name)
        for i, (value, param) in enumerate(zip(state, params)):
            if type(value) is not type(param):  # host and device: the backend changed since the last step
                state[i] = dev.same_side(value, param)
        return state

    def step(self, epoch: int = 0) -> None:
        """Update every parameter of ``self.net`` in place from its gradient."""
        params, grads = self._arrays()
        if self._fused_step(params, grads):
            return
        for param, param_grad in zip(params, grads):
            self._update_rule(param=param, grad=param_grad)

    def _update_rule(self, **kwargs) -> None:
        raise NotImplementedError()

    def _fused_step(self, params: list, grads: list, states: list = ()) -> bool:
        """The whole step in one ``kernels.parameter_update`` call, when the rule is one of the four here
        (not a subclass's own) and the arrays are host NumPy arrays it accepts; returns whether it ran."""
        fused = _FUSED_RULES.get(type(self)._update_rule)
        if fused is None:
            return False
        rule, hyper_name = fused
        hyper = getattr(self, hyper_name) if hyper_name else 0.0
        return kernels.try_parameter_update(rule, params, grads, states, lr=self.lr, hyper=hyper)

    def __getstate__(self):
        """What ``copy.deepcopy`` and pickle copy: the attributes, device state arrays as host copies
        (``_state`` moves them back to the device at the next step on device parameters)."""
        return dev.host_state(self.__dict__)


class SGD(Optimizer):
    """Plain stochastic gradient descent: ``param -= lr * grad``."""

    def __init__(self, lr: float = 0.01, final_lr: float = 0, decay_type: Optional[str] = None) -> None:
        super().__init__(lr, final_lr, decay_type)

    def _update_rule(self, **kwargs) -> None:
        if not isinstance(kwargs["param"], np.ndarray):  # a device copy
            dev.ops.sgd(kwargs["param"], kwargs["grad"], self.lr)
            return
        kwargs["param"] -= self.lr * kwargs["grad"]


class SGDMomentum(Optimizer):
    """SGD with momentum: ``v = momentum * v + lr * grad; param -= v``."""

    def __init__(self, lr: float = 0.01, final_lr: float = 0, decay_type: Optional[str] = None,
                 momentum: float = 0.9) -> None:
        super().__init__(lr, final_lr, decay_type)
        self.momentum = momentum

    def step(self, epoch: int = 0) -> None:
        params, grads = self._arrays()
        velocities = self._state("velocities", params)
        if self._fused_step(params, grads, velocities):
            return
        for param, param_grad, velocity in zip(params, grads, velocities):
            self._update_rule(param=param, grad=param_grad, velocity=velocity)

    def _update_rule(self, **kwargs) -> None:
        velocity = kwargs["velocity"]
        if not isinstance(kwargs["param"], np.ndarray):  # a device copy
            dev.ops.sgd_momentum(kwargs["param"], kwargs["grad"], velocity, self.lr, self.momentum)
            return
        velocity *= self.momentum
        velocity += self.lr * kwargs["grad"]
        kwargs["param"] -= velocity


class AdaGrad(Optimizer):
    """AdaGrad: ``s += eps + grad**2; param -= lr / sqrt(s) * grad`` (eps = 1e-7, as the book).

    ``final_lr_exp`` (non-zero) decays the learning rate exponentially to it; ``final_lr_linear``
    linearly. With both zero there is no decay.
    """

    def __init__(self, lr: float = 0.01, final_lr_exp: float = 0, final_lr_linear: float = 0) -> None:
        if final_lr_exp:
            super().__init__(lr, final_lr_exp, "exponential")
        elif final_lr_linear:
            super().__init__(lr, final_lr_linear, "linear")
        else:
            super().__init__(lr)
        self.final_lr_exp = final_lr_exp
        self.final_lr_linear = final_lr_linear
        self.eps = 1e-7

    def step(self, epoch: int = 0) -> None:
        params, grads = self._arrays()
        sum_squares = self._state("sum_squares", params)
        if self._fused_step(params, grads, sum_squares):
            return
        for param, param_grad, sum_square in zip(params, grads, sum_squares):
            self._update_rule(param=param, grad=param_grad, sum_square=sum_square)

    def _update_rule(self, **kwargs) -> None:
        grad = kwargs["grad"]
        sum_square = kwargs["sum_square"]
        if not isinstance(kwargs["param"], np.ndarray):  # a device copy
            dev.ops.adagrad(kwargs["param"], grad, sum_square, self.lr, self.eps)
            return
        sum_square += self.eps + grad * grad
        kwargs["param"] -= (self.lr / np.sqrt(sum_square)) * grad


class RegularizedSGD(Optimizer):
    """SGD with weight decay: ``param -= lr * grad + alpha * param`` (alpha not scaled by lr, as the book)."""

    def __init__(self, lr: float = 0.01, alpha: float = 0.1) -> None:
        super().__init__(lr)
        self.alpha = alpha

    def _update_rule(self, **kwargs) -> None:
        param = kwargs["param"]
        if not isinstance(param, np.ndarray):  # a device copy
            dev.ops.regularized_sgd(param, kwargs["grad"], self.lr, self.alpha)
            return
        param -= self.lr * kwargs["grad"] + self.alpha * param


#: the update rules that one fused call computes for host arrays (``kernels.parameter_update``): the rule's
#: name there and the attribute that holds its hyper-parameter
_FUSED_RULES = {SGD._update_rule: ("sgd", None), SGDMomentum._update_rule: ("sgd_momentum", "momentum"),
                AdaGrad._update_rule: ("adagrad", "eps"), RegularizedSGD._update_rule: ("regularized_sgd", "alpha")}

#: the update rules that also run on device arrays (through ``fastdl.device.ops``)
_DEVICE_RULES = (SGD._update_rule, SGDMomentum._update_rule, AdaGrad._update_rule, RegularizedSGD._update_rule)


def _zeros_like(param):
    """Zeros of ``param``'s shape and dtype, on its side (host or device)."""
    if dev.is_device(param):
        return dev.ops.zeros(param.shape, param.dtype)
    return np.zeros_like(param)
