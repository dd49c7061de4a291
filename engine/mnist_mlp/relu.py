"""The rectified linear unit, y = max(0, x), applied elementwise.

Its derivative is 1 where x > 0 and 0 elsewhere, so backward lets the upstream gradient through
exactly where the *input* was positive:

    dx = dy * (x > 0)

The mask comes from the forward input x, not from dy and not from the sign of anything downstream.
At x == 0 the derivative is undefined; we take 0 there, as torch does.

Not handled: leaky or parametric variants.
"""
from __future__ import annotations

import numpy as np


class ReLU:
    def __init__(self):
        self.mask: np.ndarray | None = None  # where the forward input was positive

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.mask = x > 0
        return x * self.mask

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy * self.mask

    def parameters(self) -> list:
        return []

    def __repr__(self) -> str:
        return "ReLU()"
