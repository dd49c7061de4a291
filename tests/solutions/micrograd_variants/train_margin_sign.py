"""Two moons with a hinge loss: a point is right when y·s > 0. The loop measures the accuracy after
each update and stops at the first 100% (an accuracy per step, as the brief asks)."""
import math
import random

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


def _scores(model, X):
    return [model([Value(c) for c in row]) for row in X]


def loss_and_accuracy(model, X, y, alpha=1e-4):
    scores = _scores(model, X)
    hinge = sum((1 - s * label).relu() for s, label in zip(scores, y)) / len(X)
    l2 = sum((p ** 2 for p in model.parameters()), Value(0.0))
    margins = [s.data * label for s, label in zip(scores, y)]
    return hinge + alpha * l2, sum(m > 0 for m in margins) / float(len(margins))


def train(model, X, y, steps=100, metrics=None):
    history = []
    loss, _ = loss_and_accuracy(model, X, y)
    for k in range(steps):
        for p in model.parameters():
            p.grad = 0.0
        loss.backward()
        lr = 1.0 - 0.9 * k / steps
        for p in model.parameters():
            p.data += -lr * p.grad
        if metrics is not None:
            metrics.step(k, loss.data, lr=lr, tokens=len(X))
        loss, acc = loss_and_accuracy(model, X, y)
        history.append(acc)
        if acc == 1.0:
            break
    return history


def main(steps=100, metrics=None, seed=0):
    """The training job behind `llm-lab train micrograd`. Given."""
    random.seed(seed)
    X, y = make_moons(100, seed=seed)
    model = MLP(2, [16, 16, 1])
    if metrics is not None:
        metrics.start(n_params=len(model.parameters()), n_layer=2, d_model=16, device="cpu")
    history = train(model, X, y, steps=steps, metrics=metrics)
    return history
