"""Checkpoint forward: every operation computes the right number (.data), with Values or plain
numbers on either side. Expected values come from Python's math on the same random inputs."""
import math

from grader.checks import expect_close, expect_type
from grader.seam import learner

TOL = 1e-12  # float64 scalar ops: only rounding differences are allowed


def _pair(rng):
    a, b = rng.uniform(0.5, 3.0, size=2) * rng.choice([-1.0, 1.0], size=2)
    return float(a), float(b)


def test_binary_ops(rng):
    a, b = _pair(rng)
    want = {"a + b": a + b, "a - b": a - b, "a * b": a * b, "a / b": a / b}
    Value = learner("value").Value
    got = {"a + b": Value(a) + Value(b), "a - b": Value(a) - Value(b),
           "a * b": Value(a) * Value(b), "a / b": Value(a) / Value(b)}
    for expr, v in got.items():
        expect_type(v, Value, what=f"Value({a:.3f}) {expr[2]} Value({b:.3f})")
        expect_type(v.data, float, what=f"({expr}).data")
        expect_close(v.data, want[expr], what=f"{expr} with a={a:.4f}, b={b:.4f}", atol=TOL, rtol=TOL)


def test_numbers_on_either_side(rng):
    a, b = _pair(rng)
    Value = learner("value").Value
    cases = {"Value(a) + b": (Value(a) + b, a + b), "b + Value(a)": (b + Value(a), b + a),
             "Value(a) * b": (Value(a) * b, a * b), "b * Value(a)": (b * Value(a), b * a),
             "Value(a) - b": (Value(a) - b, a - b), "b - Value(a)": (b - Value(a), b - a),
             "Value(a) / b": (Value(a) / b, a / b), "b / Value(a)": (b / Value(a), b / a),
             "-Value(a)": (-Value(a), -a)}
    for expr, (v, want) in cases.items():
        expect_type(v, Value, what=expr)
        expect_close(v.data, want, what=f"{expr} with a={a:.4f}, b={b:.4f}", atol=TOL, rtol=TOL)


def test_unary_ops(rng):
    x = float(rng.uniform(0.2, 2.0))
    n = float(rng.choice([2, 3, -1, 0.5]))
    Value = learner("value").Value
    cases = {"relu(x)": (Value(x).relu(), x), "relu(-x)": (Value(-x).relu(), 0.0),
             "tanh(x)": (Value(x).tanh(), math.tanh(x)), "exp(x)": (Value(x).exp(), math.exp(x)),
             "log(x)": (Value(x).log(), math.log(x)), f"x ** {n}": (Value(x) ** n, x ** n)}
    for expr, (v, want) in cases.items():
        expect_type(v, Value, what=expr)
        expect_close(v.data, want, what=f"{expr} with x={x:.4f}", atol=TOL, rtol=TOL)
