"""Checkpoint `gradcheck`: numerical_gradient, relative_error and grad_check, including a planted
wrong gradient that grad_check must flag."""
import numpy as np

from grader.checks import expect, expect_close, expect_shape, expect_type, fail
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
    if not np.allclose(x, original, rtol=0, atol=1e-12):
        fail(f"{what}: x was left changed (max change {np.abs(x - original).max():.3g}); restore each "
             "entry to its original value after evaluating f at x ± h")
    expect_type(got, np.ndarray, what=what)
    expect_shape(got, x.shape, what=what)
    if got.dtype == np.float64 and np.allclose(got, 2 * exact, rtol=1e-6):
        fail(f"{what}: twice the true gradient: divide (f(x+h) - f(x-h)) by 2h, not h")
    if got.dtype == np.float64 and np.allclose(got, one_sided, rtol=1e-9, atol=1e-12) \
            and not np.allclose(got, exact, rtol=1e-8, atol=1e-8):
        fail(f"{what}: looks like the one-sided difference (f(x+h) - f(x)) / h, whose error is O(h); "
             "use the central difference (f(x+h) - f(x-h)) / (2h), error O(h²)")
    # tolerance: central differences, truncation ~h²·|f'''|/6 ~ 1e-9 plus round-off ~1e-10
    expect_close(got, exact, what=what + " vs the exact derivative", atol=1e-8)


def test_relative_error(rng):
    a = rng.normal(size=(3, 4))
    b = a + rng.normal(size=a.shape) * 1e-3
    b[0, 0] = a[0, 0] = 0.0                              # 0 vs 0 must not divide by zero
    want = float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-12)))
    with np.errstate(all="ignore"):
        got = learner("gradcheck").relative_error(a.copy(), b.copy())
    expect_type(got, float, what="relative_error(a, b) (a Python float)")
    expect(bool(np.isfinite(got)), "relative_error(a, b) is nan/inf where a = b = 0: guard the denominator "
           "with max(|a| + |b|, TINY)")
    # tolerance: the same elementwise formula, round-off only
    expect_close(got, want, what=f"relative_error(a, b) for arrays of shape {a.shape}", atol=1e-12)


def _linear_problem(rng):
    """A Linear-like function f = sum((x W) * g): dW = x^T g exactly."""
    n, n_in, n_out = 5, 4, 3
    x, g, W = rng.normal(size=(n, n_in)), rng.normal(size=(n, n_out)), rng.normal(size=(n_in, n_out))
    return (lambda: float(((x @ W) * g).sum())), W, x.T @ g


def test_grad_check_accepts_a_right_gradient(rng):
    gc = learner("gradcheck").grad_check
    f, W, dW = _linear_problem(rng)
    ok = gc(f, W, dW.copy())
    expect_type(ok, bool, what="grad_check(...) (a Python bool; wrap numpy results in bool())")
    expect(ok is True, "grad_check rejected a correct gradient (dW = x^T g for f = sum((x W) * g)): "
           "compare |analytic - numerical| <= atol + rtol·|numerical| entry by entry")
    f, x, exact = _smooth_problem(rng)
    expect(gc(f, x, exact) is True, "grad_check rejected the exact gradient of a smooth function "
           "(sin and x²); is the numerical gradient central, and the tolerance applied entry by entry?")
    zero_grad = np.zeros_like(W)                         # a function that does not depend on W
    expect(gc(lambda: 1.0 + 0.0 * W.sum(), W, zero_grad) is True,
           "grad_check rejected an all-zero gradient that is correct: where the true gradient is 0 the "
           "relative error is meaningless, which is what atol is for")


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
        ok = gc(f, W, wrong)
        expect_type(ok, bool, what="grad_check(...) (a Python bool)")
        if ok:
            hint = (" (an error with this sign slipped through: compare the absolute difference "
                    "|analytic - numerical|, not analytic - numerical)") if "small" in name else ""
            fail(f"grad_check accepted a wrong gradient: dW with {name}, W of shape {W.shape}{hint}")
    transposed = np.ascontiguousarray(dW.T)
    try:
        ok = gc(f, W, transposed)
    except ValueError as e:
        fail(f"grad_check raised {type(e).__name__} for an analytic gradient of the wrong shape "
             f"{transposed.shape} (x is {W.shape}); return False instead: {e}")
    expect(ok is False, f"grad_check accepted a gradient of shape {transposed.shape} for x of shape "
           f"{W.shape}; a wrong shape is a wrong gradient")
