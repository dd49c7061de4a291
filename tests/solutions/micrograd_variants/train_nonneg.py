"""Two moons with a hinge loss; the classifier says +1 when s >= 0 (a score of exactly 0 counts as
class +1). One helper per step."""
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


def predict(score):
    return 1 if score.data >= 0 else -1


def loss_and_accuracy(model, X, y, alpha=1e-4):
    losses, hits = [], 0
    for xi, yi in zip(X, y):
        s = model(list(map(Value, xi)))
        losses.append((-yi * s + 1).relu())
        hits += predict(s) == yi
    data_loss = sum(losses[1:], losses[0]) * (1 / len(losses))
    reg = sum(p * p for p in model.parameters()) * alpha
    return data_loss + reg, hits / len(y)


def sgd_step(model, loss, lr):
    model.zero_grad()
    loss.backward()
    for p in model.parameters():
        p.data = p.data - lr * p.grad


def train(model, X, y, steps=100, metrics=None):
    history = []
    for k in range(steps):
        loss, acc = loss_and_accuracy(model, X, y)
        history.append(acc)
        if acc >= 1.0:
            return history
        lr = 1.0 - 0.9 * k / steps
        sgd_step(model, loss, lr)
        if metrics is not None:
            metrics.step(k, loss.data, lr=lr, tokens=len(X))
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
