"""A multilayer perceptron: Linear -> ReLU -> Linear -> ReLU -> ... -> Linear.

    MLP([784, 128, 10]) = Linear(784 -> 128), ReLU, Linear(128 -> 10)

forward runs the layers in order and returns logits (no softmax: the loss does that). backward runs
them in reverse, each layer turning the gradient of its output into the gradient of its input and
setting the gradients of its own parameters on the way.

Not handled: dropout, batch norm, activations other than ReLU.
"""
from __future__ import annotations

import numpy as np

from .linear import Linear, Param
from .relu import ReLU


class MLP:
    def __init__(self, sizes: list[int], rng: np.random.Generator | None = None, dtype=np.float64):
        rng = rng if rng is not None else np.random.default_rng(0)
        self.layers: list = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            self.layers.append(Linear(n_in, n_out, rng, dtype))
            if i < len(sizes) - 2:          # no ReLU after the last layer
                self.layers.append(ReLU())

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Logits (N, sizes[-1]) for a batch x (N, sizes[0])."""
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dlogits: np.ndarray) -> np.ndarray:
        """Backpropagate dL/dlogits through every layer; returns dL/dx (N, sizes[0])."""
        grad = dlogits
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

    def parameters(self) -> list[Param]:
        return [p for layer in self.layers for p in layer.parameters()]

    def __repr__(self) -> str:
        return "MLP(" + ", ".join(map(repr, self.layers)) + ")"
