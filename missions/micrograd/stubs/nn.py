"""A tiny neural-network library on top of your Value (brief.md, section 4).

Parameter order matters (the grader loads weights through it): for each layer, for each neuron, its
weights then its bias.
"""
from __future__ import annotations

import random

from .value import Value


class Module:
    def zero_grad(self):
        """Set the grad of every parameter to 0."""
        raise NotImplementedError("Module.zero_grad: see brief.md, section 4")

    def parameters(self):
        return []


class Neuron(Module):
    """out = relu(w · x + b), or w · x + b when nonlin=False. Weights uniform in [-1, 1], bias 0."""

    def __init__(self, nin, nonlin=True):
        raise NotImplementedError("Neuron.__init__: see brief.md, section 4")

    def __call__(self, x):
        raise NotImplementedError("Neuron.__call__: see brief.md, section 4")

    def parameters(self):
        raise NotImplementedError("Neuron.parameters: see brief.md, section 4")


class Layer(Module):
    """nout neurons that all see the same inputs. Returns a list, or a single Value if nout == 1."""

    def __init__(self, nin, nout, **kwargs):
        raise NotImplementedError("Layer.__init__: see brief.md, section 4")

    def __call__(self, x):
        raise NotImplementedError("Layer.__call__: see brief.md, section 4")

    def parameters(self):
        raise NotImplementedError("Layer.parameters: see brief.md, section 4")


class MLP(Module):
    """MLP(2, [16, 16, 1]): 2 inputs, hidden ReLU layers of 16 and 16, one linear output neuron."""

    def __init__(self, nin, nouts):
        raise NotImplementedError("MLP.__init__: see brief.md, section 4")

    def __call__(self, x):
        raise NotImplementedError("MLP.__call__: see brief.md, section 4")

    def parameters(self):
        raise NotImplementedError("MLP.parameters: see brief.md, section 4")
