"""The rectified linear unit, y = max(0, x), applied elementwise. Brief, section 2.

backward lets dy through where the forward *input* was positive, and blocks it elsewhere (at x == 0
too, as torch does).
"""
from __future__ import annotations

import numpy as np


class ReLU:
    def __init__(self):
        self.mask: np.ndarray | None = None  # keep what backward needs here

    def forward(self, x: np.ndarray) -> np.ndarray:
        """max(0, x), same shape and dtype as x."""
        raise NotImplementedError("ReLU.forward: see brief.md, section 2 (ReLU)")

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """dL/dx from dL/dy, for the x of the last forward call."""
        raise NotImplementedError("ReLU.backward: see brief.md, section 2 (ReLU)")

    def parameters(self) -> list:
        return []

    def __repr__(self) -> str:
        return "ReLU()"
