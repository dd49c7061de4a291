"""A scalar that remembers how it was made, so it can send gradients back to what made it.

Each operation returns a new Value whose `_prev` holds its inputs and whose `_backward` applies the
chain rule for that one operation. `backward()` runs those closures from the output back to the
leaves, in reverse topological order. See brief.md, sections 1-3.
"""
from __future__ import annotations

import math


def _no_backward():
    pass


class Value:
    def __init__(self, data, _prev=(), _op=""):
        self.data = float(data)
        self.grad = 0.0
        self._backward = _no_backward     # a leaf has nothing to send back
        self._prev = _prev                # the Values this one was computed from
        self._op = _op

    # -- operations: compute out.data, and set out._backward (brief.md, section 2) --------------
    def __add__(self, other):
        raise NotImplementedError("Value.__add__: see brief.md, section 2 (the operations)")

    def __mul__(self, other):
        raise NotImplementedError("Value.__mul__: see brief.md, section 2 (the operations)")

    def __pow__(self, n):
        """self ** n for a constant int/float n."""
        raise NotImplementedError("Value.__pow__: see brief.md, section 2 (the power rule)")

    def relu(self):
        raise NotImplementedError("Value.relu: see brief.md, section 2")

    def tanh(self):
        raise NotImplementedError("Value.tanh: see brief.md, section 2")

    def exp(self):
        raise NotImplementedError("Value.exp: see brief.md, section 2")

    def log(self):
        raise NotImplementedError("Value.log: see brief.md, section 2")

    # -- these can be built from the operations above (brief.md, section 2) ---------------------
    def __neg__(self):
        raise NotImplementedError("Value.__neg__: see brief.md, section 2")

    def __sub__(self, other):
        raise NotImplementedError("Value.__sub__: see brief.md, section 2")

    def __truediv__(self, other):
        raise NotImplementedError("Value.__truediv__: see brief.md, section 2")

    def __radd__(self, other):        # 2 + Value
        raise NotImplementedError("Value.__radd__: see brief.md, section 2")

    def __rmul__(self, other):        # 2 * Value
        raise NotImplementedError("Value.__rmul__: see brief.md, section 2")

    def __rsub__(self, other):        # 2 - Value
        raise NotImplementedError("Value.__rsub__: see brief.md, section 2")

    def __rtruediv__(self, other):    # 2 / Value
        raise NotImplementedError("Value.__rtruediv__: see brief.md, section 2")

    # -- reverse-mode autodiff (brief.md, section 3) --------------------------------------------
    def backward(self):
        """Fill .grad of every Value this one depends on with d(self)/d(that Value)."""
        raise NotImplementedError("Value.backward: see brief.md, section 3 (topological order)")

    def __repr__(self):
        return f"Value(data={self.data}, grad={self.grad})"
