"""Training a Value-based MLP on the two-moons data set with a max-margin loss.

    loss = mean_i relu(1 - y_i · score_i)  +  alpha · Σ_p p²        (labels y_i ∈ {-1, +1})

Plain gradient descent with a learning rate decaying from 1.0 to 0.1. Not handled: mini-batches
(the data set is small enough for full batches), early stopping.
"""
from __future__ import annotations

import math
import random
import time

from .nn import MLP
from .value import Value


def make_moons(n=100, noise=0.1, seed=0):
    """Two interleaving half circles: n points (x1, x2) with labels -1 / +1. No download needed."""
    rng = random.Random(seed)
    X, y = [], []
    for i in range(n):
        label = i % 2
        t = math.pi * rng.random()
        x1, x2 = (math.cos(t), math.sin(t)) if label == 0 else (1 - math.cos(t), 0.5 - math.sin(t))
        X.append([x1 + rng.gauss(0, noise), x2 + rng.gauss(0, noise)])
        y.append(1 if label else -1)
    return X, y


def loss_and_accuracy(model, X, y, alpha=1e-4):
    """The max-margin loss (a Value) and the fraction of points on the right side (a float)."""
    scores = [model([Value(a) for a in x]) for x in X]
    losses = [(1 + -yi * si).relu() for yi, si in zip(y, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = alpha * sum(p * p for p in model.parameters())
    accuracy = sum((yi > 0) == (si.data > 0) for yi, si in zip(y, scores)) / len(y)
    return data_loss + reg_loss, accuracy


def train(model, X, y, steps=100, metrics=None):
    """Gradient descent; returns the accuracy history. Stops as soon as a step measures 100%."""
    history = []
    for k in range(steps):
        t0 = time.perf_counter()
        loss, acc = loss_and_accuracy(model, X, y)
        history.append(acc)
        if acc == 1.0:                         # every point right: stop before another update moves them
            break
        model.zero_grad()
        loss.backward()
        lr = 1.0 - 0.9 * k / steps
        for p in model.parameters():
            p.data -= lr * p.grad
        if metrics is not None:
            dt = time.perf_counter() - t0
            metrics.step(k, loss.data, lr=lr, tokens=len(X), dt_ms=dt * 1e3, tok_s=len(X) / dt, accuracy=acc)
    return history


def main(steps=100, metrics=None, seed=0):
    """The mission's training job: `llm-lab train micrograd`."""
    random.seed(seed)
    X, y = make_moons(100, seed=seed)
    model = MLP(2, [16, 16, 1])
    if metrics is not None:
        metrics.start(n_params=len(model.parameters()), n_layer=2, d_model=16, device="cpu")
    history = train(model, X, y, steps=steps, metrics=metrics)
    if metrics is not None and history and history[-1] == 1.0 and len(history) < steps:
        metrics.end("done", f"every point classified right at step {len(history) - 1}: stopped early")
    return history
