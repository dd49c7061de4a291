"""A scalar that remembers how it was made, so it can send gradients back to what made it.

Every operation returns a new Value whose `_prev` are its inputs and whose `_backward` applies the
chain rule for that one operation: it adds (never assigns: a value used twice gets two
contributions) local-derivative × out.grad into each input's grad. `backward()` orders the graph
topologically and runs those closures from the output back to the leaves.

Not handled: non-constant exponents (x ** y with y a Value), vectors, higher-order gradients.
"""
from __future__ import annotations

import math


def _no_backward():
    pass


class Value:
    __slots__ = ("data", "grad", "_backward", "_prev", "_op")

    def __init__(self, data, _prev=(), _op=""):
        self.data = float(data)
        self.grad = 0.0
        self._backward = _no_backward     # a leaf has nothing to send back
        self._prev = _prev                # the Values this one was computed from
        self._op = _op

    # -- the operations and their local derivatives ----------------------------------------------
    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():                       # d(a+b)/da = 1, d(a+b)/db = 1
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():                       # d(ab)/da = b, d(ab)/db = a
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

    def __pow__(self, n):
        assert isinstance(n, (int, float)), "only constant exponents are supported"
        out = Value(self.data ** n, (self,), f"**{n}")

        def _backward():                       # d(x^n)/dx = n x^(n-1)
            self.grad += n * self.data ** (n - 1) * out.grad
        out._backward = _backward
        return out

    def relu(self):
        out = Value(self.data if self.data > 0 else 0.0, (self,), "relu")

        def _backward():                       # 1 where the input was positive, else 0
            self.grad += (self.data > 0) * out.grad
        out._backward = _backward
        return out

    def tanh(self):
        t = math.tanh(self.data)
        out = Value(t, (self,), "tanh")

        def _backward():                       # d tanh(x)/dx = 1 - tanh(x)^2
            self.grad += (1 - t * t) * out.grad
        out._backward = _backward
        return out

    def exp(self):
        out = Value(math.exp(self.data), (self,), "exp")

        def _backward():                       # d e^x/dx = e^x
            self.grad += out.data * out.grad
        out._backward = _backward
        return out

    def log(self):
        out = Value(math.log(self.data), (self,), "log")

        def _backward():                       # d ln(x)/dx = 1/x
            self.grad += (1.0 / self.data) * out.grad
        out._backward = _backward
        return out

    # -- everything else is made of the operations above -----------------------------------------
    def __neg__(self):
        return self * -1

    def __sub__(self, other):
        return self + (-other)

    def __truediv__(self, other):
        return self * (other ** -1 if isinstance(other, Value) else Value(other) ** -1)

    def __radd__(self, other):
        return self + other

    def __rmul__(self, other):
        return self * other

    def __rsub__(self, other):
        return Value(other) + (-self)

    def __rtruediv__(self, other):
        return Value(other) * self ** -1

    # -- reverse-mode autodiff -------------------------------------------------------------------
    def backward(self):
        """Fill .grad of every Value this one depends on with d(self)/d(that Value)."""
        topo, visited = [], set()

        def build(v):                          # post-order DFS: inputs before the node that uses them
            if v not in visited:
                visited.add(v)
                for child in v._prev:
                    build(child)
                topo.append(v)
        build(self)

        self.grad = 1.0                        # d(self)/d(self)
        for v in reversed(topo):               # outputs before inputs: each grad is complete when used
            v._backward()

    def __repr__(self):
        return f"Value(data={self.data}, grad={self.grad})"
