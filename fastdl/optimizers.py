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
"""

from typing import Optional

import numpy as np


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

    def _state(self, name: str):
        """A per-parameter list of zero arrays kept under ``name``, created on the first step."""
        if self.first or not hasattr(self, name):
            setattr(self, name, [np.zeros_like(param) for param in self.net.params()])
            self.first = False
        return getattr(self, name)

    def step(self, epoch: int = 0) -> None:
        """Update every parameter of ``self.net`` in place from its gradient."""
        for param, param_grad in zip(self.net.params(), self.net.param_grads()):
            self._update_rule(param=param, grad=param_grad)

    def _update_rule(self, **kwargs) -> None:
        raise NotImplementedError()


class SGD(Optimizer):
    """Plain stochastic gradient descent: ``param -= lr * grad``."""

    def __init__(self, lr: float = 0.01, final_lr: float = 0, decay_type: Optional[str] = None) -> None:
        super().__init__(lr, final_lr, decay_type)

    def _update_rule(self, **kwargs) -> None:
        kwargs["param"] -= self.lr * kwargs["grad"]


class SGDMomentum(Optimizer):
    """SGD with momentum: ``v = momentum * v + lr * grad; param -= v``."""

    def __init__(self, lr: float = 0.01, final_lr: float = 0, decay_type: Optional[str] = None,
                 momentum: float = 0.9) -> None:
        super().__init__(lr, final_lr, decay_type)
        self.momentum = momentum

    def step(self, epoch: int = 0) -> None:
        velocities = self._state("velocities")
        for param, param_grad, velocity in zip(self.net.params(), self.net.param_grads(), velocities):
            self._update_rule(param=param, grad=param_grad, velocity=velocity)

    def _update_rule(self, **kwargs) -> None:
        velocity = kwargs["velocity"]
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
        sum_squares = self._state("sum_squares")
        for param, param_grad, sum_square in zip(self.net.params(), self.net.param_grads(), sum_squares):
            self._update_rule(param=param, grad=param_grad, sum_square=sum_square)

    def _update_rule(self, **kwargs) -> None:
        grad = kwargs["grad"]
        sum_square = kwargs["sum_square"]
        sum_square += self.eps + grad * grad
        kwargs["param"] -= (self.lr / np.sqrt(sum_square)) * grad


class RegularizedSGD(Optimizer):
    """SGD with weight decay: ``param -= lr * grad + alpha * param`` (alpha not scaled by lr, as the book)."""

    def __init__(self, lr: float = 0.01, alpha: float = 0.1) -> None:
        super().__init__(lr)
        self.alpha = alpha

    def _update_rule(self, **kwargs) -> None:
        param = kwargs["param"]
        param -= self.lr * kwargs["grad"] + self.alpha * param
