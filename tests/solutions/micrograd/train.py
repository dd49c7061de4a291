"""Train your MLP on two moons with a max-margin loss (brief.md, section 5).

    loss = mean_i relu(1 - y_i · score_i)  +  alpha · Σ_p p²        (labels y_i ∈ {-1, +1})

Run it yourself:  python -m micrograd.train   (from your workspace folder)
or watch it live: llm-lab train micrograd
"""
from __future__ import annotations

import math
import random
import time

from .nn import MLP
from .value import Value


def make_moons(n=100, noise=0.1, seed=0):
    """Two interleaving half circles: n points (x1, x2) with labels -1 / +1. Given; no need to edit."""
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
    total, right = Value(0.0), 0
    for xi, yi in zip(X, y):
        s = model([Value(v) for v in xi])
        total = total + (1 - yi * s).relu()
        right += (s.data > 0) == (yi > 0)
    reg = Value(0.0)
    for p in model.parameters():
        reg = reg + p * p
    return total / len(X) + alpha * reg, right / len(X)


def train(model, X, y, steps=100, metrics=None):
    accs, k = [], 0
    while k < steps:
        loss, acc = loss_and_accuracy(model, X, y)
        accs.append(acc)
        if acc == 1.0:
            break
        model.zero_grad()
        loss.backward()
        lr = 1.0 - 0.9 * k / steps
        for p in model.parameters():
            p.data = p.data - lr * p.grad
        if metrics is not None:
            metrics.step(k, loss.data, lr=lr, tokens=len(X))
        k += 1
    return accs


def main(steps=100, metrics=None, seed=0):
    """The training job behind `llm-lab train micrograd`. Given."""
    random.seed(seed)
    X, y = make_moons(100, seed=seed)
    model = MLP(2, [16, 16, 1])
    if metrics is not None:
        metrics.start(n_params=len(model.parameters()), n_layer=2, d_model=16, device="cpu")
    history = train(model, X, y, steps=steps, metrics=metrics)
    if metrics is not None:
        metrics.eval(len(history), 1.0 - history[-1], accuracy=history[-1])
    return history


if __name__ == "__main__":
    from engine.shared.telemetry import open_run
    with open_run(mission="micrograd") as metrics:
        history = main(metrics=metrics)
    print(f"steps: {len(history)}  final accuracy: {history[-1]:.1%}")
