"""Stochastic gradient descent with momentum and (L2) weight decay: the torch.optim.SGD update.

For each parameter p with gradient g (brief, section 6):

    g = g + wd * p
    v = mu * v + g          v starts at zero
    p = p - lr * v
"""
from __future__ import annotations

import numpy as np

from .linear import Param


class SGD:
    def __init__(self, params: list[Param], lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0):
        self.params = list(params)
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.velocity = [np.zeros_like(p.data) for p in self.params]

    def step(self) -> None:
        """Update every parameter from its .grad (p.data changes; p.grad is only read)."""
        raise NotImplementedError("SGD.step: see brief.md, section 6 (SGD with momentum and weight decay)")

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = np.zeros_like(p.data)
