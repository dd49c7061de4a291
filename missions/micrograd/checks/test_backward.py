"""Checkpoint backward: gradients equal torch's (float64) on random expression graphs, one op at a
time first, so a wrong local derivative is named, then whole graphs with shared nodes."""
import math

import torch

from grader.checks import expect_close, fail
from grader.seam import learner

TOL = 1e-6  # both sides compute in float64; 1e-6 leaves room for summation order only


def _grad_of(op, x):
    """d op(x)/dx from torch in float64."""
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    op(t).backward()
    return float(t.grad)


def test_local_derivatives(rng):
    x = float(rng.uniform(0.3, 1.5))
    n = float(rng.choice([2.0, 3.0, -2.0]))
    want = {"tanh": _grad_of(torch.tanh, x), "exp": _grad_of(torch.exp, x), "log": _grad_of(torch.log, x),
            f"x**{n:g}": _grad_of(lambda t: t ** n, x)}
    Value = learner("value").Value
    for name, make in {"tanh": lambda v: v.tanh(), "exp": lambda v: v.exp(), "log": lambda v: v.log(),
                       f"x**{n:g}": lambda v: v ** n}.items():
        v = Value(x)
        make(v).backward()
        if name == "tanh" and not abs(v.grad - want[name]) <= TOL:
            t = math.tanh(x)
            if abs(v.grad - (1 - x * x)) < TOL or abs(v.grad - t) < TOL or abs(v.grad - (1 + t * t)) < TOL:
                fail(f"tanh backward: d tanh(x)/dx at x={x:.4f} should be 1 - tanh(x)**2 = {want[name]:.6f}, "
                     f"got {v.grad:.6f}: looks like the wrong tanh derivative (use the output t: 1 - t*t)")
        if name.startswith("x**") and not abs(v.grad - want[name]) <= TOL:
            fail(f"power rule: d(x**{n:g})/dx at x={x:.4f} should be n * x**(n-1) = {want[name]:.6f}, "
                 f"got {v.grad:.6f}: the pow rule is wrong")
        expect_close(v.grad, want[name], what=f"grad of {name} at x={x:.4f}", atol=TOL, rtol=TOL)
    v = Value(-x)
    v.relu().backward()
    if v.grad != 0.0:
        fail(f"relu backward: for a negative input ({-x:.4f}) the gradient must be 0, got {v.grad}: "
             "the relu gradient flows through the wrong side (pass it only where the input was > 0)")
    v = Value(x)
    v.relu().backward()
    if v.grad != 1.0:
        fail(f"relu backward: for a positive input ({x:.4f}) the gradient must be 1, got {v.grad}: "
             "the relu gradient flows through the wrong side")


def test_node_used_twice(rng):
    x, y = (float(v) for v in rng.uniform(0.5, 2.0, size=2))
    Value = learner("value").Value
    a = Value(x)
    (a + a).backward()
    if a.grad == 1.0:
        fail("a + a: d(a+a)/da must be 2, got 1: the gradient was assigned instead of accumulated "
             "(use += so every use of a node adds its contribution)")
    expect_close(a.grad, 2.0, what="grad of a in (a + a)", atol=TOL)
    a, b = Value(x), Value(y)
    (a * b + a).backward()
    if not abs(a.grad - (y + 1.0)) <= TOL * (1 + y):   # `not <=`: a NaN fails too
        fail(f"d(a*b + a)/da with a={x:.3f}, b={y:.3f} should be b + 1 = {y + 1:.6f}, got {a.grad:.6f}: "
             "a node with two users must receive both contributions. Since a + a works, look at the "
             "order: backward() must visit nodes in reverse topological order (users before inputs)")


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
        expected.append((float(out), [float(t.grad) if t.grad is not None else 0.0 for t in ts]))
    Value = learner("value").Value
    for g, ((leaves, ops), (want_out, want_grads)) in enumerate(zip(graphs, expected)):
        vs, out = _evaluate(leaves, ops, Value)
        expect_close(out.data, want_out, what=f"graph {g}: forward value", atol=TOL, rtol=TOL)
        out.backward()
        got = [v.grad for v in vs]
        if not all(abs(a - b) <= TOL * (1 + abs(b)) for a, b in zip(got, want_grads)):
            recipe = " -> ".join(k for k, _, _ in ops)
            fail(f"graph {g} ({recipe}): leaf gradients {[round(x, 6) for x in got]} but torch says "
                 f"{[round(x, 6) for x in want_grads]}. If single ops are right, check that backward() "
                 "visits nodes in reverse topological order (every node's grad complete before its "
                 "_backward runs) and visits each node once")


def test_deep_chain_order(rng):
    """A diamond-shaped graph: wrong visiting order leaves the shared node's grad incomplete."""
    x = float(rng.uniform(0.5, 1.5))
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    h = t * 2.0
    (h * h + h.tanh()).backward()
    want = float(t.grad)
    Value = learner("value").Value
    a = Value(x)
    h = a * 2.0
    (h * h + h.tanh()).backward()
    if not abs(a.grad - want) <= TOL:
        fail(f"d/da of (h*h + tanh(h)) with h = 2a at a={x:.4f}: expected {want:.6f}, got {a.grad:.6f}. "
             "Looks like backward() does not follow reverse topological order: a node's _backward ran "
             "before all the gradient from its users arrived")


def test_gradients_accumulate_across_backward_calls(rng):
    x = float(rng.uniform(0.5, 1.5))
    Value = learner("value").Value
    a = Value(x)
    out = a * a
    out.backward()
    out.backward()
    expect_close(a.grad, 4 * x, what=f"a.grad after calling (a*a).backward() twice (a={x:.4f}); grads "
                 "accumulate like torch's until zero_grad", atol=TOL, rtol=TOL)
