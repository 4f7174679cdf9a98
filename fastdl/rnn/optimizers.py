"""Chapter 6's optimizers: ``RNNOptimizer``, ``SGD``, ``AdaGrad``.

Same names as ``fastdl.optimizers`` but a different API, as in the book: the trainer injects
``model`` (not ``net``), and ``step()`` walks ``layer.params[key]`` dicts of every layer in
``model.layers``. With ``gradient_clipping`` (the default) each ``'deriv'`` is first clipped IN PLACE
to [-2, 2]; then the ``'value'`` array is updated in place. The book's two rules do both for every
parameter in one call (``fastdl.kernels.parameter_update``), bit-identical to the rules written out here.
"""

import numpy as np

from fastdl import kernels

CLIP = 2.0


class RNNOptimizer:
    """Base class: ``lr``, ``gradient_clipping``, ``first``, and ``model`` (set by ``RNNTrainer``)."""

    def __init__(self, lr: float = 0.01, gradient_clipping: bool = True) -> None:
        self.lr = lr
        self.gradient_clipping = gradient_clipping
        self.first = True

    def _entries(self):
        """``(layer_index, key, params[key])`` for every parameter of every layer of ``model``."""
        model = getattr(self, "model", None)
        if model is None:
            raise AttributeError(f"{type(self).__name__}.step(): no model; RNNTrainer sets optim.model, "
                                 "or set it yourself")
        for i, layer in enumerate(model.layers):
            for key, entry in getattr(layer, "params", {}).items():
                yield i, key, entry

    def _clip(self, entry) -> None:
        if self.gradient_clipping:
            np.clip(entry["deriv"], -CLIP, CLIP, out=entry["deriv"])

    def _fused_step(self, entries: list, states: list = ()) -> bool:
        """Clip and update every parameter in one ``kernels.parameter_update`` call, when the rule is the
        book's (not a subclass's own) and the arrays are host NumPy arrays it accepts; returns whether it ran."""
        rule = _FUSED_RULES.get(type(self)._update_rule)
        if rule is None:
            return False
        params, grads = [e["value"] for e in entries], [e["deriv"] for e in entries]
        return kernels.try_parameter_update(rule, params, grads, states, lr=self.lr, hyper=getattr(self, "eps", 0.0),
                                            clip=CLIP if self.gradient_clipping else 0.0)

    def step(self) -> None:
        """Clip (optionally) and apply the update rule to every parameter, in place."""
        if self._fused_step([entry for _, _, entry in self._entries()]):
            return
        for _, _, entry in self._entries():
            self._clip(entry)
            self._update_rule(param=entry["value"], grad=entry["deriv"])

    def _update_rule(self, **kwargs) -> None:
        raise NotImplementedError()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.lr}, gradient_clipping={self.gradient_clipping})"


class SGD(RNNOptimizer):
    """``value -= lr * deriv``."""

    def _update_rule(self, **kwargs) -> None:
        kwargs["param"] -= self.lr * kwargs["grad"]


class AdaGrad(RNNOptimizer):
    """``s += eps + deriv**2``; ``value -= lr / sqrt(s) * deriv`` with ``eps = 1e-7`` (added every step,
    as the book). The running sums ``sum_squares[layer_index][key]`` are created on the first step."""

    def __init__(self, lr: float = 0.01, gradient_clipping: bool = True) -> None:
        super().__init__(lr, gradient_clipping)
        self.eps = 1e-7

    def step(self) -> None:
        if self.first:
            self.sum_squares = {}
            for i, key, entry in self._entries():
                self.sum_squares.setdefault(i, {})[key] = np.zeros_like(entry["value"])
            self.first = False
        entries = list(self._entries())
        if self._fused_step([entry for _, _, entry in entries], [self.sum_squares[i][key] for i, key, _ in entries]):
            return
        for i, key, entry in entries:
            self._clip(entry)
            self._update_rule(param=entry["value"], grad=entry["deriv"], sum_square=self.sum_squares[i][key])

    def _update_rule(self, **kwargs) -> None:
        grad, sum_square = kwargs["grad"], kwargs["sum_square"]
        sum_square += self.eps + grad * grad
        kwargs["param"] -= (self.lr / np.sqrt(sum_square)) * grad


#: the rules that one fused call computes (``kernels.parameter_update``), by their name there
_FUSED_RULES = {SGD._update_rule: "sgd", AdaGrad._update_rule: "adagrad"}
