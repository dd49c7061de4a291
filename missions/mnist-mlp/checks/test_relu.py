"""Checkpoint `relu`: ReLU.forward and ReLU.backward against torch float64 and finite differences."""
import numpy as np
import torch

from engine.mnist_mlp.gradcheck import numerical_gradient
from grader.checks import check_close, expect_close, expect_type, is_close
from grader.seam import learner


def _input(rng, with_zeros):
    shape = (int(rng.integers(3, 9)), int(rng.integers(3, 9)))
    x = rng.normal(size=shape)
    if with_zeros:
        x.flat[rng.choice(x.size, size=3, replace=False)] = 0.0    # the kink, on purpose
    else:
        x = np.where(np.abs(x) < 1e-2, 0.5, x)                   # keep away from the kink
    return x


def _disagreeing(rng, x):
    """dy with, for sure, entries where dy and x disagree in sign both ways (x > 0 > dy and
    x < 0 < dy), so a mask taken from dy instead of x always shows."""
    dy = rng.normal(size=x.shape)
    pos, neg = np.flatnonzero(x > 0), np.flatnonzero(x < 0)
    dy.flat[pos[0]] = -abs(dy.flat[pos[0]]) - 0.1
    dy.flat[neg[0]] = abs(dy.flat[neg[0]]) + 0.1
    return dy


def test_forward(rng):
    x = _input(rng, with_zeros=True)
    want = np.maximum(x, 0.0)
    got = learner("relu").ReLU().forward(x.copy())
    expect_type(got, np.ndarray, what=f"ReLU().forward(x of shape {x.shape})")
    # tolerance: exact (max with 0 is exact in floating point)
    expect_close(got, want, what=f"ReLU().forward(x of shape {x.shape})", atol=0.0)


def test_backward_matches_torch(rng):
    x = _input(rng, with_zeros=True)
    x.flat[0], x.flat[1] = 0.7, -0.7            # at least one positive and one negative entry
    dy = _disagreeing(rng, x)
    tx = torch.tensor(x, requires_grad=True)
    torch.relu(tx).backward(torch.tensor(dy))
    want = tx.grad.numpy()

    relu = learner("relu").ReLU()
    relu.forward(x.copy())
    got = relu.backward(dy.copy())
    what = f"ReLU.backward(dy of shape {dy.shape})"
    expect_type(got, np.ndarray, what=what)

    def diagnose(got, want):
        for wrong, cause in ((dy * (dy > 0), "looks like the mask comes from dy (dy > 0); it must come from "
                              "the forward input: dx = dy * (x > 0)"),
                             (dy * (x >= 0), "wrong at x == 0: the mask lets the gradient through where x == 0; "
                              "use x > 0 (torch takes the derivative at 0 to be 0)"),
                             (dy, "returned dy unchanged: no mask; block the gradient where x <= 0"),
                             (np.maximum(x, 0) * dy, "multiplied dy by max(0, x); the derivative of ReLU is "
                              "the mask (x > 0), 1 or 0, not the output")):
            if is_close(got, wrong, atol=0.0):   # exact: each slip is a mask times dy too
                return cause
        return None
    # tolerance: exact (a mask times dy)
    check_close(got, want, what=what + " vs torch.relu backward", atol=0.0, diagnose=diagnose)


def test_backward_matches_finite_differences(rng):
    x = _input(rng, with_zeros=False)
    g = rng.normal(size=x.shape)
    relu = learner("relu").ReLU()

    def f():
        return float((relu.forward(x) * g).sum())

    want = numerical_gradient(f, x)
    relu.forward(x)
    got = relu.backward(g.copy())
    expect_type(got, np.ndarray, what="ReLU.backward")
    # tolerance: piecewise linear away from the kink, so only round-off (~1e-10)
    expect_close(got, want, what=f"ReLU.backward vs central finite differences, x of shape {x.shape}",
                 atol=1e-6)
