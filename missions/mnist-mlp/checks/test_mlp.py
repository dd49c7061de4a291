"""Checkpoint `mlp`: MLP.forward and MLP.backward through a whole stack, against torch float64 and
central finite differences."""
import numpy as np
import torch

from engine.mnist_mlp.gradcheck import numerical_gradient
from grader.checks import expect_close, expect_shape, expect_type, fail
from grader.seam import learner


def _weights(rng):
    # four different widths, so a backward pass that visits the layers in the wrong order cannot fit
    sizes = [int(s) for s in rng.choice(np.arange(2, 10), size=4, replace=False)]
    weights = [(rng.normal(size=(a, b)) * np.sqrt(2 / a), rng.normal(size=b) * 0.5)   # biases nonzero
               for a, b in zip(sizes[:-1], sizes[1:])]
    return sizes, weights


def _model(sizes, weights):
    model = learner("mlp").MLP(sizes, np.random.default_rng(0))
    linears = [layer for layer in model.layers if hasattr(layer, "W")]
    if len(linears) != len(weights):
        fail(f"MLP({sizes}) has {len(linears)} Linear layers in self.layers, expected {len(weights)}")
    for layer, (W, b) in zip(linears, weights):
        layer.W.data, layer.b.data = W.copy(), b.copy()
    return model, linears


def _backward(model, dlogits, what):
    try:
        return model.backward(dlogits)
    except ValueError as e:
        fail(f"{what}: raised ValueError ({e}); backward must visit the layers in reverse order "
             "(last layer first), each taking the gradient the layer above returned")


def test_forward_backward_match_torch(rng):
    sizes, weights = _weights(rng)
    n = int(rng.integers(3, 8))
    x, dlogits = rng.normal(size=(n, sizes[0])), rng.normal(size=(n, sizes[-1]))
    tx = torch.tensor(x, requires_grad=True)
    params = [(torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True)) for W, b in weights]
    h = tx
    for k, (W, b) in enumerate(params):
        h = h @ W + b
        if k < len(params) - 1:
            h = torch.relu(h)
    h.backward(torch.tensor(dlogits))
    want_logits = h.detach().numpy()

    model, linears = _model(sizes, weights)
    what = f"MLP({sizes}).forward(x of shape {x.shape})"
    logits = model.forward(x.copy())
    expect_type(logits, np.ndarray, what=what)
    expect_shape(logits, (n, sizes[-1]), what=what)
    # tolerance: float64 matmuls, round-off only
    expect_close(logits, want_logits, what=what + " vs torch", atol=1e-10)
    what = f"MLP({sizes}).backward(dlogits of shape {dlogits.shape})"
    dx = _backward(model, dlogits.copy(), what)
    expect_type(dx, np.ndarray, what=what + " return value dx")
    # tolerance: the spec's 1e-6; float64 error here is ~1e-14
    expect_close(dx, tx.grad.numpy(), what=what + ": dx vs torch", atol=1e-6)
    for k, (layer, (W, b)) in enumerate(zip(linears, params)):
        # tolerance: as for dx
        expect_close(layer.W.grad, W.grad.numpy(), what=f"{what}: W.grad of Linear #{k} vs torch", atol=1e-6)
        expect_close(layer.b.grad, b.grad.numpy(), what=f"{what}: b.grad of Linear #{k} vs torch", atol=1e-6)


def test_backward_matches_finite_differences(rng):
    sizes, weights = _weights(rng)
    n = 4
    for _ in range(20):                   # keep every pre-activation away from ReLU's kink at 0
        x = rng.normal(size=(n, sizes[0]))
        h, near_kink = x, False
        for W, b in weights[:-1]:
            h = h @ W + b
            near_kink |= bool((np.abs(h) < 1e-3).any())
            h = np.maximum(h, 0)
        if not near_kink:
            break
    g = rng.normal(size=(n, sizes[-1]))
    model, linears = _model(sizes, weights)

    def f():
        return float((model.forward(x) * g).sum())

    want = [(numerical_gradient(f, l.W.data), numerical_gradient(f, l.b.data)) for l in linears]
    model.forward(x)
    _backward(model, g.copy(), f"MLP({sizes}).backward")
    for k, (layer, (nW, nb)) in enumerate(zip(linears, want)):
        # tolerance: piecewise-linear function away from kinks: central differences are exact up to
        # round-off (~1e-10)
        expect_close(layer.W.grad, nW, what=f"W.grad of Linear #{k} in MLP({sizes}) vs finite differences",
                     atol=1e-6)
        expect_close(layer.b.grad, nb, what=f"b.grad of Linear #{k} in MLP({sizes}) vs finite differences",
                     atol=1e-6)
