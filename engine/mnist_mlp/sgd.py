"""Stochastic gradient descent with momentum and (L2) weight decay: the torch.optim.SGD update.

For each parameter p with gradient g, learning rate lr, momentum mu and weight decay wd:

    g = g + wd * p          weight decay: the gradient of (wd/2)·|p|² pulls weights toward 0
    v = mu * v + g          the velocity: a running sum of past gradients, decayed by mu
    p = p - lr * v          step downhill

v starts at zero, so the first step is plain p - lr·g. With mu = 0 this is vanilla SGD.

Not handled: dampening, Nesterov momentum, per-parameter groups, decoupled weight decay (AdamW-style).
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
        """Update every parameter in place from its .grad."""
        for p, v in zip(self.params, self.velocity):
            g = p.grad + self.weight_decay * p.data
            v *= self.momentum
            v += g
            p.data -= self.lr * v

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = np.zeros_like(p.data)
