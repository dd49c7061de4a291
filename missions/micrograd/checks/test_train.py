"""Checkpoint train: the learner's loss and training loop fit two moons to 100% accuracy.

Problem: 30 points, noise 0.08, MLP(2, [16, 16, 1]), at most 200 steps. Over 64 seeds the reference
reaches 100% in 8-93 steps (engine/micrograd/train.py); untrained models sit near 50%."""
import random

from grader.checks import expect, expect_close, expect_type, fail
from engine.micrograd import nn as ref_nn
from engine.micrograd import train as ref_train
from grader.seam import learner

STEPS = 200
TOL = 1e-9  # loss of a fixed model on fixed data: same float64 arithmetic


def test_loss_and_accuracy(rng):
    seed = int(rng.integers(0, 10_000))
    X, y = ref_train.make_moons(20, seed=seed)
    random.seed(seed)
    ref_model = ref_nn.MLP(2, [4, 1])
    weights = [p.data for p in ref_model.parameters()]
    want_loss, want_acc = ref_train.loss_and_accuracy(ref_model, X, y)

    train, nn = learner("train"), learner("nn")
    model = nn.MLP(2, [4, 1])
    for p, w in zip(model.parameters(), weights):
        p.data = w
    loss, acc = train.loss_and_accuracy(model, X, y)
    Value = learner("value").Value
    expect_type(loss, Value, what="loss_and_accuracy(...)[0] (the loss must be a Value to backprop)")
    expect_type(acc, float, what="loss_and_accuracy(...)[1] (accuracy as a float)")
    expect_close(loss.data, want_loss.data, what="max-margin loss mean(relu(1 - y·score)) + 1e-4·Σp² "
                 "on 20 moons points", atol=TOL, rtol=TOL)
    expect_close(acc, want_acc, what="accuracy on 20 moons points", atol=1e-12)


def test_reaches_full_accuracy(rng):
    seed = int(rng.integers(0, 10_000))
    X, y = ref_train.make_moons(30, noise=0.08, seed=seed)   # the data comes from the reference
    train, nn = learner("train"), learner("nn")
    random.seed(seed)
    model = nn.MLP(2, [16, 16, 1])
    history = train.train(model, X, y, steps=STEPS)
    expect_type(history, list, what="train(...) return value (a list of accuracies)")
    expect(len(history) >= 1, "train(...) returned an empty history")
    if len(set(round(h, 6) for h in history)) == 1 and len(history) > 5:
        fail(f"accuracy never changed in {len(history)} steps ({history[0]:.0%}): are the parameters "
             "updated (p.data -= lr * p.grad) and the grads zeroed before each backward?")
    # The model trained by the learner's loop must really classify the data.
    Value = learner("value").Value
    correct = sum((yi > 0) == (model([Value(a) for a in x]).data > 0) for x, yi in zip(X, y))
    if correct != 30:
        fail(f"after {len(history)} steps the model classifies {correct}/{len(X)} points correctly "
             f"(need all, within {STEPS} steps). Check the update sign (p.data -= lr * p.grad), "
             "model.zero_grad() before loss.backward(), and the learning-rate schedule")
