"""A multilayer perceptron: Linear -> ReLU -> Linear -> ReLU -> ... -> Linear. Brief, section 5.

    MLP([784, 128, 10]) = Linear(784 -> 128), ReLU, Linear(128 -> 10)

The constructor and parameters() are complete; you write forward and backward.
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
        """Logits (N, sizes[-1]) for a batch x (N, sizes[0]). No softmax here."""
        raise NotImplementedError("MLP.forward: see brief.md, section 5 (The MLP)")

    def backward(self, dlogits: np.ndarray) -> np.ndarray:
        """Backpropagate dL/dlogits through every layer (setting each parameter's .grad);
        return dL/dx (N, sizes[0])."""
        raise NotImplementedError("MLP.backward: see brief.md, section 5 (The MLP)")

    def parameters(self) -> list[Param]:
        return [p for layer in self.layers for p in layer.parameters()]

    def __repr__(self) -> str:
        return "MLP(" + ", ".join(map(repr, self.layers)) + ")"
