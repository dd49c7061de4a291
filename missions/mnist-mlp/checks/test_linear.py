"""Checkpoint `linear`: Linear.forward and Linear.backward against numpy, torch float64 and
central finite differences."""
import numpy as np
import torch

from engine.mnist_mlp.gradcheck import numerical_gradient
from grader.checks import check_close, expect_close, expect_shape, expect_type, fail, is_close
from grader.seam import learner


def _sizes(rng):
    # three different sizes, so a transposed or unsummed gradient has a telltale shape
    n, n_in, n_out = rng.choice(np.arange(3, 12), size=3, replace=False)
    return int(n), int(n_in), int(n_out)


def _layer(n_in, n_out, W, b):
    layer = learner("linear").Linear(n_in, n_out, np.random.default_rng(0))
    layer.W.data, layer.b.data = W.copy(), b.copy()
    return layer


def test_forward(rng):
    n, n_in, n_out = _sizes(rng)
    x, W, b = rng.normal(size=(n, n_in)), rng.normal(size=(n_in, n_out)), rng.normal(size=n_out)
    want = x @ W + b
    layer = _layer(n_in, n_out, W, b)
    got = layer.forward(x.copy())
    expect_type(got, np.ndarray, what=f"Linear({n_in}, {n_out}).forward(x of shape {x.shape})")
    # tolerance: the same matmul in float64, only summation order may differ
    expect_close(got, want, what=f"Linear({n_in}, {n_out}).forward(x of shape {x.shape})", atol=1e-10)


def _check_grad_shapes(layer, dx, n, n_in, n_out):
    W, b = layer.W.grad, layer.b.grad
    expect_type(W, np.ndarray, what="W.grad after Linear.backward")
    expect_type(b, np.ndarray, what="b.grad after Linear.backward")
    expect_type(dx, np.ndarray, what="the return value of Linear.backward (dx)")
    if b.shape == (n, n_out):
        fail(f"b.grad has shape {np.shape(b)} = (N, n_out), expected ({n_out},): the bias is shared by "
             "all N examples, so sum dy over the batch axis: db = dy.sum(axis=0)")
    if W.shape == (n_out, n_in):
        fail(f"W.grad has shape {np.shape(W)} = (n_out, n_in), expected ({n_in}, {n_out}): looks "
             "transposed; dW = x^T dy")
    expect_shape(W, (n_in, n_out), what=f"W.grad for Linear({n_in}, {n_out}), batch N={n}")
    expect_shape(b, (n_out,), what=f"b.grad for Linear({n_in}, {n_out}), batch N={n}")
    expect_shape(dx, (n, n_in), what=f"dx returned by Linear({n_in}, {n_out}).backward, batch N={n}")


def test_backward_matches_torch(rng):
    n, n_in, n_out = _sizes(rng)
    x, dy = rng.normal(size=(n, n_in)), rng.normal(size=(n, n_out))
    W, b = rng.normal(size=(n_in, n_out)), rng.normal(size=n_out)
    tx, tW, tb = (torch.tensor(a, requires_grad=True) for a in (x, W, b))
    (tx @ tW + tb).backward(torch.tensor(dy))
    want_W, want_b, want_x = tW.grad.numpy(), tb.grad.numpy(), tx.grad.numpy()

    layer = _layer(n_in, n_out, W, b)
    layer.forward(x.copy())
    dx = layer.backward(dy.copy())
    _check_grad_shapes(layer, dx, n, n_in, n_out)
    for name, got, want in (("W.grad", layer.W.grad, want_W), ("b.grad", layer.b.grad, want_b),
                            ("dx", dx, want_x)):
        # tolerance: exact formulas in float64 (the spec asks 1e-6; actual error is ~1e-15)
        check_close(got, want, what=f"{name} of Linear({n_in}, {n_out}) for x {x.shape}, vs torch float64",
                    # diagnosis: the same 1e-6 as the check itself, on N·got
                    atol=1e-6, diagnose=lambda g, w: (
                        f"the torch value divided by the batch size N={n}: the 1/N belongs in the loss "
                        "gradient only; a layer just applies the chain rule") if is_close(g * n, w, atol=1e-6) else None)


def test_backward_matches_finite_differences(rng):
    n, n_in, n_out = _sizes(rng)
    x, g = rng.normal(size=(n, n_in)), rng.normal(size=(n, n_out))
    layer = _layer(n_in, n_out, rng.normal(size=(n_in, n_out)), rng.normal(size=n_out))

    def f():  # a scalar whose gradient w.r.t. the output is g
        return float((layer.forward(x) * g).sum())

    num_W = numerical_gradient(f, layer.W.data)
    num_b = numerical_gradient(f, layer.b.data)
    num_x = numerical_gradient(f, x)
    layer.forward(x)
    dx = layer.backward(g.copy())
    _check_grad_shapes(layer, dx, n, n_in, n_out)
    for name, got, want in (("W.grad", layer.W.grad, num_W), ("b.grad", layer.b.grad, num_b),
                            ("dx", dx, num_x)):
        # tolerance: central differences of a linear function, error is round-off ~1e-10
        expect_close(got, want, what=f"{name} of Linear({n_in}, {n_out}) vs central finite differences",
                     atol=1e-6)
