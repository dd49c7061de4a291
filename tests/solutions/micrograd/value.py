"""A correct micrograd written differently from the reference: no closures; each node keeps
(parent, local derivative) pairs, and backward sorts the graph with an explicit stack."""
import math


class Value:
    def __init__(self, data, _prev=(), _op=""):
        self.data = float(data)
        self.grad = 0.0
        self._edges = ()          # ((parent, d self / d parent), ...)
        self._prev = _prev
        self._op = _op

    @staticmethod
    def _lift(x):
        return x if isinstance(x, Value) else Value(x)

    @classmethod
    def _node(cls, data, *edges):
        v = cls(data, tuple(p for p, _ in edges))
        v._edges = edges
        return v

    def __add__(self, o):
        o = Value._lift(o)
        return Value._node(self.data + o.data, (self, 1.0), (o, 1.0))

    def __mul__(self, o):
        o = Value._lift(o)
        return Value._node(self.data * o.data, (self, o.data), (o, self.data))

    def __pow__(self, n):
        return Value._node(self.data ** n, (self, n * self.data ** (n - 1)))

    def relu(self):
        return Value._node(max(self.data, 0.0), (self, 1.0 if self.data > 0 else 0.0))

    def tanh(self):
        t = math.tanh(self.data)
        return Value._node(t, (self, 1.0 - t ** 2))

    def exp(self):
        e = math.exp(self.data)
        return Value._node(e, (self, e))

    def log(self):
        return Value._node(math.log(self.data), (self, 1.0 / self.data))

    __radd__ = __add__
    __rmul__ = __mul__

    def __neg__(self):
        return self * -1.0

    def __sub__(self, o):
        return self + -Value._lift(o)

    def __rsub__(self, o):
        return Value._lift(o) - self

    def __truediv__(self, o):
        return self * Value._lift(o) ** -1

    def __rtruediv__(self, o):
        return Value._lift(o) * self ** -1

    def backward(self):
        order, seen, stack = [], set(), [(self, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
            elif id(node) not in seen:
                seen.add(id(node))
                stack.append((node, True))
                stack.extend((p, False) for p, _ in node._edges)
        self.grad = 1.0
        for node in reversed(order):
            for parent, local in node._edges:
                parent.grad += local * node.grad
