"""Checkpoint backward: gradients equal torch's (float64).

The order of the checks matters, because the message you see is the first failing check's:
  1. every primitive op alone (out.grad is 1): a wrong local derivative is named, op by op;
  2. every primitive op under a factor, op(x) * c (out.grad is c): the chain factor out.grad;
  3. the ops built from others (neg, sub, div, the reflected ones), under a factor;
  4. a node used twice, a diamond, random graphs with shared nodes: accumulation and the
     topological order. Only these blame the order, and only after every single op was right.
"""
import math

import numpy as np
import torch

from grader.checks import as_float, check_close, is_close
from grader.seam import learner

TOL = 1e-9  # both sides compute in float64; 1e-9 (absolute and relative) leaves room for the
            # order of summation only, while every mistake named below is off by far more


def _torch_grads(fn, values, factor=1.0):
    """d(fn(*values) * factor)/d(each value), from torch in float64."""
    ts = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]
    (fn(*ts) * factor).backward()
    return np.array([float(t.grad) if t.grad is not None else 0.0 for t in ts])


def _learner_grads(Value, fn, values, names, what, factor=None):
    """The learner's leaf grads of fn(*values) (times `factor` when given), as exact floats."""
    leaves = [Value(v) for v in values]
    out = fn(*leaves)
    if factor is not None:
        out = out * factor
    out.backward()
    return np.array([as_float(v.grad, what=f"{what}: {n}.grad") for v, n in zip(leaves, names)])


def _near(got, want):
    return is_close(got, np.asarray(want, dtype=float), atol=TOL, rtol=TOL)


def _inputs(rng):
    a, b = (float(v) for v in rng.uniform(0.5, 1.5, size=2) * rng.choice([-1.0, 1.0], size=2))
    x = float(rng.uniform(0.3, 1.5))                       # positive: log and fractional powers
    n = float(rng.choice([2.0, 3.0, -1.0, -2.0, 0.5]))
    c = float(rng.uniform(1.5, 3.0) * rng.choice([-1.0, 1.0]))   # the factor of checks 2 and 3
    k = float(rng.uniform(0.5, 3.0))                        # a plain number on one side
    return a, b, x, n, c, k


def _primitives(a, b, x, n):
    """(op, expression, function, inputs, input names, its local derivative in words)."""
    return [
        ("__add__", "a + b", lambda p, q: p + q, (a, b), ("a", "b"), "∂/∂a = 1 and ∂/∂b = 1"),
        ("__mul__", "a * b", lambda p, q: p * q, (a, b), ("a", "b"), "∂/∂a = b and ∂/∂b = a"),
        ("__pow__", f"x ** {n:g}", lambda p: p ** n, (x,), ("x",), f"the pow rule: n·x**(n-1) with n = {n:g}"),
        ("relu", "relu(x), x > 0", lambda p: p.relu(), (x,), ("x",), "1 where the input is > 0"),
        ("relu", "relu(-x), -x < 0", lambda p: p.relu(), (-x,), ("x",), "0 where the input is <= 0"),
        ("tanh", "tanh(a)", lambda p: p.tanh(), (a,), ("a",), "1 - tanh(a)**2 (the output t: 1 - t*t)"),
        ("exp", "exp(a)", lambda p: p.exp(), (a,), ("a",), "exp(a), the output itself"),
        ("log", "log(x)", lambda p: p.log(), (x,), ("x",), "1/x"),
    ]


def _named_slip(op, inputs, n, got):
    """A classic wrong local derivative this op's gradient matches, in words (or None)."""
    v = inputs[0]
    if op == "tanh":
        t = math.tanh(v)
        for wrong in (1 - v * v, t, 1 + t * t, 1 - t):
            if _near(got, [wrong]):
                return "looks like the wrong tanh derivative: use the output t = tanh(a) in 1 - t*t"
    if op == "__pow__":
        for wrong in (n * v ** n, v ** (n - 1), n * v ** (n + 1), v ** n):
            if _near(got, [wrong]):
                return "the pow rule is wrong: d(x**n)/dx = n * x**(n-1)"
    if op == "relu" and _near(got, [0.0 if v > 0 else 1.0]):
        return "the relu gradient flows through the wrong side: pass it only where the input was > 0"
    return None


def test_primitive_ops_local_derivatives(rng):
    a, b, x, n, _, _ = _inputs(rng)
    cases = _primitives(a, b, x, n)
    wants = [_torch_grads(fn, vals) for _, _, fn, vals, _, _ in cases]
    Value = learner("value").Value
    for (op, expr, fn, vals, names, rule), want in zip(cases, wants):
        shown = ", ".join(f"{nm}={v:.4f}" for nm, v in zip(names, vals))
        what = f"{expr} at {shown}, grads of ({', '.join(names)})"
        got = _learner_grads(Value, fn, vals, names, what)

        def diagnose(got, want, op=op, expr=expr, vals=vals, rule=rule):
            slip = _named_slip(op, vals, n, got)
            return (f"wrong local derivative of {op} ({expr}): {rule}; expected {np.round(want, 6).tolist()}, "
                    f"got {np.round(got, 6).tolist()}" + (f": {slip}" if slip else ""))
        check_close(got, want, what=what, atol=TOL, rtol=TOL, diagnose=diagnose)


def test_primitive_ops_multiply_by_out_grad(rng):
    """op(x) * c: the op's out.grad is c, and the chain rule multiplies its local derivative by it."""
    a, b, x, n, c, _ = _inputs(rng)
    cases = [case for case in _primitives(a, b, x, n) if case[1] != "relu(-x), -x < 0"]   # local 0
    wants = [_torch_grads(fn, vals, c) for _, _, fn, vals, _, _ in cases]
    Value = learner("value").Value
    for (op, expr, fn, vals, names, _), want in zip(cases, wants):
        what = f"({expr}) * {c:.4f}, grads of ({', '.join(names)})"
        got = _learner_grads(Value, fn, vals, names, what, factor=c)
        check_close(got, want, what=what, atol=TOL, rtol=TOL,
                    diagnose=lambda got, want, op=op: _chain_slip(op, got, want, c))


def _chain_slip(op, got, want, c):
    if _near(got, want / c):
        return (f"the local derivative of {op} is right, but it is not multiplied by out.grad (here "
                f"{c:.4f}): the chain rule is x.grad += local_derivative * out.grad")
    if _near(got, np.zeros_like(want)):
        return (f"every grad is 0: the _backward of {op} ran before its out.grad arrived. backward() "
                "must call _backward on the nodes in reverse topological order (the output first); "
                "each op alone was right, so look at the order")
    return None


def _composites(a, b, x, k):
    return [
        ("__neg__", "-a", lambda p: -p, (a,), ("a",), "d(-a)/da = -1"),
        ("__sub__", "a - b", lambda p, q: p - q, (a, b), ("a", "b"), "∂/∂a = 1 and ∂/∂b = -1"),
        ("__sub__", f"a - {k:g}", lambda p: p - k, (a,), ("a",), "∂/∂a = 1"),
        ("__rsub__", f"{k:g} - a", lambda p: k - p, (a,), ("a",), "∂/∂a = -1"),
        ("__truediv__", "a / b", lambda p, q: p / q, (a, b), ("a", "b"), "∂/∂a = 1/b and ∂/∂b = -a/b**2"),
        ("__truediv__", f"a / {k:g}", lambda p: p / k, (a,), ("a",), f"∂/∂a = 1/{k:g}"),
        ("__rtruediv__", f"{k:g} / x", lambda p: k / p, (x,), ("x",), f"∂/∂x = -{k:g}/x**2"),
        ("__radd__", f"{k:g} + a", lambda p: k + p, (a,), ("a",), "∂/∂a = 1"),
        ("__rmul__", f"{k:g} * a", lambda p: k * p, (a,), ("a",), f"∂/∂a = {k:g}"),
    ]


def test_composite_ops(rng):
    """neg, sub, div and the reflected ops, each under a factor c (so out.grad is c, not 1)."""
    a, b, x, _, c, k = _inputs(rng)
    cases = _composites(a, b, x, k)
    wants = [_torch_grads(fn, vals, c) for _, _, fn, vals, _, _ in cases]
    Value = learner("value").Value
    for (op, expr, fn, vals, names, rule), want in zip(cases, wants):
        shown = ", ".join(f"{nm}={v:.4f}" for nm, v in zip(names, vals))
        what = f"({expr}) * {c:.4f} at {shown}, grads of ({', '.join(names)})"
        got = _learner_grads(Value, fn, vals, names, what, factor=c)

        def diagnose(got, want, op=op, expr=expr, rule=rule):
            chain = _chain_slip(op, got, want, c)
            if chain and "not multiplied" in chain:
                return chain
            return (f"wrong local derivative of {op} ({expr}): {rule}; the grads should be "
                    f"{np.round(want, 6).tolist()} (local derivative × {c:.4f}), got {np.round(got, 6).tolist()}. "
                    "Building it from checked ops (a - b = a + (-b), a / b = a * b**-1) needs no calculus "
                    "of its own")
        check_close(got, want, what=what, atol=TOL, rtol=TOL, diagnose=diagnose)


def test_node_used_twice(rng):
    x, y = (float(v) for v in rng.uniform(0.5, 2.0, size=2))
    Value = learner("value").Value
    a = Value(x)
    (a + a).backward()
    got = as_float(a.grad, what="a.grad after (a + a).backward()")
    check_close(got, 2.0, what=f"d(a + a)/da at a={x:.4f}", atol=TOL,
                diagnose=lambda g, w: ("got 1: the gradient was assigned instead of accumulated (use += so "
                                       "every use of a node adds its contribution)") if is_close(g, 1.0, atol=TOL) else None)
    a, b = Value(x), Value(y)
    (a * b + a).backward()
    got = as_float(a.grad, what="a.grad after (a*b + a).backward()")
    check_close(got, y + 1.0, what=f"d(a*b + a)/da with a={x:.3f}, b={y:.3f} (= b + 1)", atol=TOL, rtol=TOL,
                diagnose=lambda g, w: ("a node with two users must receive both contributions. Every op alone "
                                       "and a + a are right, so look at the order: backward() must visit the "
                                       "nodes in reverse topological order (users before inputs)"))


def test_diamond_order(rng):
    """h = 2a feeds two users: a wrong visiting order leaves h's grad incomplete when it is used."""
    x = float(rng.uniform(0.5, 1.5))
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    h = t * 2.0
    (h * h + h.tanh()).backward()
    want = float(t.grad)
    Value = learner("value").Value
    a = Value(x)
    h = a * 2.0
    (h * h + h.tanh()).backward()
    got = as_float(a.grad, what="a.grad")
    check_close(got, want, what=f"d/da of (h*h + tanh(h)) with h = 2a at a={x:.4f}", atol=TOL, rtol=TOL,
                diagnose=lambda g, w: ("every single op is right, so this is the order: backward() must "
                                       "follow reverse topological order and visit each node once (a "
                                       "node's _backward runs only after all the gradient from its users "
                                       "arrived)"))


def _random_graph(rng, n_leaves=4, n_ops=14):
    """A recipe for a random DAG whose nodes are reused (ops refer back to earlier nodes)."""
    ops = []
    for i in range(n_ops):
        kind = str(rng.choice(["add", "mul", "sub", "div", "tanh", "relu", "exp", "pow2", "neg"]))
        size = n_leaves + i
        ops.append((kind, int(rng.integers(0, size)), int(rng.integers(0, size))))
    leaves = [float(v) for v in rng.uniform(-1.5, 1.5, size=n_leaves)]
    return leaves, ops


def _evaluate(leaves, ops, wrap):
    nodes = [wrap(x) for x in leaves]
    for kind, i, j in ops:
        a, b = nodes[i], nodes[j]
        nodes.append({"add": lambda: a + b, "mul": lambda: a * b, "sub": lambda: a - b,
                      "div": lambda: a / (b * b + 1.0), "tanh": lambda: a.tanh(), "relu": lambda: a.relu(),
                      "exp": lambda: (a * 0.5).exp(), "pow2": lambda: a ** 2, "neg": lambda: -a}[kind]())
    out = nodes[-1]
    for extra in nodes[len(leaves):-1]:  # make every node matter, like a loss built from many parts
        out = out + extra * 0.1
    return nodes[: len(leaves)], out


def test_random_graphs_match_torch(rng):
    graphs = [_random_graph(rng) for _ in range(12)]
    expected = []
    for leaves, ops in graphs:
        ts, out = _evaluate(leaves, ops, lambda x: torch.tensor(x, dtype=torch.float64, requires_grad=True))
        out.backward()
        expected.append((float(out), np.array([float(t.grad) if t.grad is not None else 0.0 for t in ts])))
    Value = learner("value").Value
    for g, ((leaves, ops), (want_out, want_grads)) in enumerate(zip(graphs, expected)):
        vs, out = _evaluate(leaves, ops, Value)
        recipe = " -> ".join(k for k, _, _ in ops)
        check_close(as_float(out.data, what=f"graph {g}: output .data"), want_out,
                    what=f"graph {g} ({recipe}): forward value", atol=TOL, rtol=TOL)
        out.backward()
        got = np.array([as_float(v.grad, what=f"graph {g}: leaf {i}.grad") for i, v in enumerate(vs)])
        check_close(got, want_grads, what=f"graph {g} ({recipe}): leaf gradients vs torch", atol=TOL, rtol=TOL,
                    diagnose=lambda got, want: ("every single op and the chain factor are right, so check that "
                                                "backward() visits the nodes in reverse topological order "
                                                "(every node's grad complete before its _backward runs) and "
                                                "visits each node once"))


def test_gradients_accumulate_across_backward_calls(rng):
    x = float(rng.uniform(0.5, 1.5))
    Value = learner("value").Value
    a = Value(x)
    out = a * a
    out.backward()
    out.backward()
    got = as_float(a.grad, what="a.grad")
    check_close(got, 4 * x, what=f"a.grad after calling (a*a).backward() twice (a={x:.4f}); grads "
                "accumulate like torch's until zero_grad", atol=TOL, rtol=TOL,
                diagnose=lambda g, w: ("got the grad of one call: backward() must not reset the leaves' "
                                       "grads (only zero_grad does); set just the output's grad to 1")
                if is_close(g, 2 * x, atol=TOL, rtol=TOL) else None)
