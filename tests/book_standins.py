"""Stand-ins of the book's own (lincoln) network and optimizer, written here in plain NumPy exactly as
the book's loop uses its objects (lincoln is not a dependency). Shared by the tests that drive fastdl
layers with them."""

import numpy as np


class BookNetwork:
    """What lincoln's NeuralNetwork does with its layers."""

    def __init__(self, layers, loss, seed=1):
        self.layers, self.loss, self.seed = layers, loss, seed
        for layer in layers:
            setattr(layer, "seed", seed)

    def forward(self, X, inference=False):
        for layer in self.layers:
            X = layer.forward(X, inference)
        return X

    def backward(self, grad):
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

    def params(self):
        for layer in self.layers:
            yield from layer.params

    def param_grads(self):
        for layer in self.layers:
            yield from layer.param_grads

    def train_batch(self, X, y):
        loss = self.loss.forward(self.forward(X), y)
        self.backward(self.loss.backward())
        return loss


class BookSGDMomentum:
    """lincoln's SGDMomentum: host NumPy arrays from net.params() / net.param_grads(), updated in place."""

    def __init__(self, lr, momentum=0.9):
        self.lr, self.momentum, self.velocities = lr, momentum, None

    def step(self):
        if self.velocities is None:
            self.velocities = [np.zeros_like(p) for p in self.net.params()]
        for param, grad, velocity in zip(self.net.params(), self.net.param_grads(), self.velocities):
            velocity *= self.momentum
            velocity += self.lr * grad
            param -= velocity
