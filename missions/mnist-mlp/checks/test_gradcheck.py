"""Checkpoint `gradcheck`: numerical_gradient, relative_error and grad_check, including planted wrong
gradients that grad_check must flag and an exact gradient that is 0 where relative error alone fails."""
import numpy as np

from grader.checks import (check_close, expect_equal, expect_finite, expect_shape, expect_type, fail,
                           is_close)
from grader.seam import learner


def _smooth_problem(rng):
    """f(x) = sum(w · sin(3x)) + 0.5·sum(x²) and its exact gradient."""
    shape = (int(rng.integers(2, 5)), int(rng.integers(2, 5)))
    x, w = rng.normal(size=shape), rng.normal(size=shape)
    f = lambda: float((w * np.sin(3 * x)).sum() + 0.5 * (x ** 2).sum())  # noqa: E731
    exact = 3 * w * np.cos(3 * x) + x
    return f, x, exact


def test_numerical_gradient(rng):
    f, x, exact = _smooth_problem(rng)
    h = 1e-5
    original = x.copy()
    # what two classic slips would return, for the messages below
    one_sided = np.zeros_like(x)
    f0 = f()
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        one_sided[i] = (f() - f0) / h
        x[i] = old

    got = learner("gradcheck").numerical_gradient(f, x, h)
    what = f"numerical_gradient(f, x of shape {x.shape}, h={h})"
    if not is_close(x, original, atol=1e-12):   # round-off of x ± h - h is ~1e-16
        fail(f"{what}: x was left changed (max change {np.abs(x - original).max():.3g}); restore each "
             "entry to its original value after evaluating f at x ± h")
    expect_type(got, np.ndarray, what=what)
    expect_shape(got, x.shape, what=what)

    def diagnose(got, want):
        if is_close(got, 2 * exact, atol=0.0, rtol=1e-6):   # 2× the truth, up to the O(h²) error
            return "twice the true gradient: divide (f(x+h) - f(x-h)) by 2h, not h"
        if is_close(got, one_sided, atol=1e-12, rtol=1e-9):  # the slip itself, computed the same way
            return ("looks like the one-sided difference (f(x+h) - f(x)) / h, whose error is O(h); use the "
                    "central difference (f(x+h) - f(x-h)) / (2h), error O(h²)")
        return None
    # tolerance: central differences, truncation ~h²·|f'''|/6 ~ 1e-9 plus round-off ~1e-10
    check_close(got, exact, what=what + " vs the exact derivative", atol=1e-8, diagnose=diagnose)


def test_relative_error(rng):
    a = rng.normal(size=(3, 4))
    b = a + rng.normal(size=a.shape) * 1e-3
    b[0, 0] = a[0, 0] = 0.0                              # 0 vs 0 must not divide by zero
    want = float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-12)))
    with np.errstate(all="ignore"):
        got = learner("gradcheck").relative_error(a.copy(), b.copy())
    expect_type(got, float, what="relative_error(a, b) (a Python float)")
    what = f"relative_error(a, b) for arrays of shape {a.shape}"
    expect_finite(got, what=what + " where a = b = 0 (guard the denominator with max(|a| + |b|, TINY))")
    # tolerance: the same elementwise formula, round-off only
    check_close(got, want, what=what, atol=1e-12)


def _linear_problem(rng):
    """A Linear-like function f = sum((x W) * g): dW = x^T g exactly."""
    n, n_in, n_out = 5, 4, 3
    x, g, W = rng.normal(size=(n, n_in)), rng.normal(size=(n, n_out)), rng.normal(size=(n_in, n_out))
    return (lambda: float(((x @ W) * g).sum())), W, x.T @ g


def _verdict(gc, f, x, analytic, what):
    ok = gc(f, x, analytic)
    expect_type(ok, bool, what=f"{what}: grad_check(...) (a Python bool; wrap numpy results in bool())")
    return ok


def test_grad_check_accepts_a_right_gradient(rng):
    gc = learner("gradcheck").grad_check
    f, W, dW = _linear_problem(rng)
    what = "grad_check on dW = x^T g for f = sum((x W) * g)"
    expect_equal(_verdict(gc, f, W, dW.copy(), what), True,
                 what=f"{what} (a correct gradient; compare |analytic - numerical| <= atol + rtol·|numerical| "
                 "entry by entry)")
    f, x, exact = _smooth_problem(rng)
    what = "grad_check on the exact gradient of sum(w·sin(3x)) + 0.5·sum(x²)"
    expect_equal(_verdict(gc, f, x, exact, what), True,
                 what=f"{what} (a correct gradient; is the numerical gradient central, and the tolerance "
                 "applied entry by entry?)")
    zero_grad = np.zeros_like(W)                         # a function that does not depend on W
    what = "grad_check on the all-zero gradient of a constant function"
    expect_equal(_verdict(gc, lambda: 1.0 + 0.0 * W.sum(), W, zero_grad, what), True,
                 what=f"{what} (a correct gradient)")


def test_grad_check_where_the_true_gradient_is_zero(rng):
    """f(x) = sum(x³) at an x with exact zeros: the analytic gradient 3x² is exactly right, 0 there, but
    the central difference gives h² (1e-10) there, as a gradient check always sees noise where the truth
    is 0. Relative error alone calls that 100% wrong; atol accepts it."""
    x = rng.normal(size=(int(rng.integers(3, 6)), int(rng.integers(3, 6))))
    zeros = rng.choice(x.size, size=3, replace=False)
    x.flat[zeros] = 0.0
    analytic = 3 * x ** 2
    ok = _verdict(learner("gradcheck").grad_check, lambda: float((x ** 3).sum()), x, analytic,
                  "grad_check on sum(x³)")
    if ok is not True:
        fail(f"grad_check rejected the exact gradient 3x² of f(x) = sum(x³), x of shape {x.shape} with 3 "
             "entries exactly 0. There the true gradient is 0 and the numerical one is h² = 1e-10: their "
             "relative error is 1, although nothing is wrong. Looks like grad_check decides by the relative "
             "error alone; decide entry by entry with |analytic - numerical| <= atol + rtol·|numerical| "
             "(brief, section 4: the atol term is for exactly this)")


def test_grad_check_flags_a_planted_wrong_gradient(rng):
    gc = learner("gradcheck").grad_check
    f, W, dW = _linear_problem(rng)
    i = tuple(int(k) for k in rng.integers(0, dW.shape))
    bump = 0.01 * np.abs(dW[i]) + 0.01                   # > atol + rtol·|dW| by far
    planted = {"one entry too large by ~1%": dW.copy(), "one entry too small by ~1%": dW.copy(),
               "every entry too small by ~0.5%": dW - 0.005 * np.abs(dW) - 0.001, "the sign flipped": -dW}
    planted["one entry too large by ~1%"][i] += bump
    planted["one entry too small by ~1%"][i] -= bump
    for name, wrong in planted.items():
        ok = _verdict(gc, f, W, wrong, f"grad_check on dW with {name}")
        if ok is not False:
            hint = (" (an error with this sign slipped through: compare the absolute difference "
                    "|analytic - numerical|, not analytic - numerical)") if "small" in name else ""
            fail(f"grad_check accepted a wrong gradient: dW with {name}, W of shape {W.shape}{hint}")
    transposed = np.ascontiguousarray(dW.T)
    try:
        ok = gc(f, W, transposed)
    except ValueError as e:
        fail(f"grad_check raised {type(e).__name__} for an analytic gradient of the wrong shape "
             f"{transposed.shape} (x is {W.shape}); return False instead: {e}")
    expect_type(ok, bool, what="grad_check(...) (a Python bool)")
    expect_equal(ok, False, what=f"grad_check on a gradient of shape {transposed.shape} for x of shape "
                 f"{W.shape} (a wrong shape is a wrong gradient)")
