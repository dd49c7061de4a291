"""Checkpoint train: the loss, two exact steps of gradient descent, and a real run to 100%.

No check here depends on how a score of exactly 0 is counted. A point is right when y·s > 0; for
s == 0 the rules "s > 0", "s >= 0" and "y·s > 0" disagree, so every problem below keeps each score
(and each ReLU input) away from 0 at every step: the check loads its own starting weights, biases
included and nonzero, through parameters() (the order of brief section 4).
"""
import functools
import random

import numpy as np

from engine.micrograd import nn as ref_nn
from engine.micrograd import train as ref_train
from engine.micrograd.value import Value as RefValue
from grader.checks import (as_float, as_int, check_close, expect_between, expect_equal, expect_type,
                           fail, is_close)
from grader.seam import learner

STEPS = 100        # the real run's budget; on every problem below the reference needs 5-15 steps
MARGIN = 1e-3      # every score used to judge accuracy is at least this far from 0
TOL = 1e-9         # same model, same data, float64 on both sides: only summation order may differ
ALPHA = 1e-4       # the L2 weight of the brief

# The real run's problems: 30 two-moons points (noise 0.08, make_moons seed s) and MLP(2, [16, 16, 1])
# starting from _start_weights(s). On each, the reference reaches 100% within the step count given,
# with every score and every ReLU input at least 1e-4 away from 0 at every step, so rounding and the
# convention for 0 cannot change a verdict. tests/test_seed_sweeps.py grades them all.
PROBLEMS = {2: 9, 13: 8, 27: 12, 34: 11, 38: 5, 44: 14, 45: 8, 51: 13, 55: 14, 61: 9, 65: 10, 81: 12,
            106: 15, 107: 10, 112: 6, 116: 12}


# The real run costs up to STEPS steps; when a check before it already failed, it only says so.
_FAILED_ABOVE: list[str] = []


def _remember_failure(test):
    @functools.wraps(test)
    def run(*args, **kwargs):
        try:
            return test(*args, **kwargs)
        except AssertionError:              # a verdict (errors and NotImplementedError stay as they are)
            _FAILED_ABOVE.append(test.__name__)
            raise
    return run


def _start_weights(s, nin, nouts):
    """Starting weights in parameters() order: per layer, per neuron, weights in [-1, 1] then a bias
    in [-0.1, 0.1] (nonzero, unlike Neuron's 0.0, so that no score sits at exactly 0)."""
    r = random.Random(s)
    out = []
    for n_in, n_out in zip([nin] + nouts[:-1], nouts):
        for _ in range(n_out):
            out += [r.uniform(-1, 1) for _ in range(n_in)]
            out.append(r.uniform(-0.1, 0.1))
    return out


def _ref_model(nin, nouts, weights):
    model = ref_nn.MLP(nin, nouts)
    for p, w in zip(model.parameters(), weights):
        p.data = w
    return model


def _ref_scores(model, X):
    return [model([RefValue(a) for a in x]).data for x in X]


def _learner_model(nin, nouts, weights):
    nn = learner("nn")
    model = nn.MLP(nin, nouts)
    params = model.parameters()
    expect_type(params, list, what=f"MLP({nin}, {nouts}).parameters()")
    expect_equal(len(params), len(weights), what=f"len(MLP({nin}, {nouts}).parameters()) (pass `nn` first)")
    for p, w in zip(params, weights):
        p.data = w
    return model, params


def _accuracy(scores, y):
    return sum(1 for s, yi in zip(scores, y) if yi * s > 0) / len(y)


# -- 1. the loss and the accuracy on a fixed model -------------------------------------------------
def _loss_problem(rng):
    """20 points and MLP(2, [6, 1]) weights with every score at least MARGIN from 0 and an accuracy
    that is neither 0.5 nor 1 (so counting the wrong side, or everything right, shows)."""
    while True:
        s = int(rng.integers(0, 1_000_000))
        X, y = ref_train.make_moons(20, noise=0.1, seed=s)
        weights = _start_weights(s, 2, [6, 1])
        scores = _ref_scores(_ref_model(2, [6, 1], weights), X)
        if min(abs(v) for v in scores) >= MARGIN and _accuracy(scores, y) not in (0.5, 1.0):
            return X, y, weights, scores


def _loss_slip(got, scores, y, params_sq):
    n = len(y)
    hinge = [max(0.0, 1 - yi * s) for s, yi in zip(scores, y)]
    variants = {
        "the L2 term alpha·Σp² is missing (loss = mean hinge + 1e-4·Σ p²)": sum(hinge) / n,
        "the hinge losses are summed over the points instead of averaged (take the mean)":
            sum(hinge) + ALPHA * params_sq,
        "the relu is missing: the loss is mean(relu(1 - y·s)), each point's term clipped at 0":
            sum(1 - yi * s for s, yi in zip(scores, y)) / n + ALPHA * params_sq,
        "the margin is missing: relu(1 - y·s), not relu(-y·s)":
            sum(max(0.0, -yi * s) for s, yi in zip(scores, y)) / n + ALPHA * params_sq,
        "the L2 term is not scaled by alpha = 1e-4": sum(hinge) / n + params_sq,
    }
    for cause, value in variants.items():
        if is_close(got, value, atol=TOL, rtol=TOL):
            return f"looks like {cause}"
    return None


@_remember_failure
def test_loss_and_accuracy(rng):
    X, y, weights, scores = _loss_problem(rng)
    ref_model = _ref_model(2, [6, 1], weights)
    want_loss, want_acc = ref_train.loss_and_accuracy(ref_model, X, y)
    params_sq = sum(w * w for w in weights)

    model, _ = _learner_model(2, [6, 1], weights)
    out = learner("train").loss_and_accuracy(model, X, y)
    expect_type(out, tuple, what="loss_and_accuracy(...) (a tuple (loss, accuracy))")
    expect_equal(len(out), 2, what="len(loss_and_accuracy(...))")
    loss, acc = out
    Value = learner("value").Value
    expect_type(loss, Value, what="loss_and_accuracy(...)[0] (the loss must be a Value to backprop)")
    got = as_float(loss.data, what="loss_and_accuracy(...)[0].data")
    check_close(got, want_loss.data, what="max-margin loss mean(relu(1 - y·score)) + 1e-4·Σp² on 20 "
                "moons points", atol=TOL, rtol=TOL, diagnose=lambda g, w: _loss_slip(g, scores, y, params_sq))
    got_acc = as_float(acc, what="loss_and_accuracy(...)[1] (the accuracy, a float in [0, 1])")
    right = round(want_acc * len(y))
    check_close(got_acc, want_acc, what=f"accuracy on 20 moons points ({right} of them have y·s > 0; no "
                "score is near 0)", atol=1e-12,   # a fraction k/20 computed exactly: only rounding differs
                diagnose=lambda g, w: "counts the wrong side: a point is right when its score has the sign "
                "of its label, y·s > 0" if is_close(g, 1 - w, atol=1e-12) else "return the fraction of points "
                "that are right (a count divided by len(y))" if is_close(g, float(right), atol=1e-12) else None)


# -- 2. two steps of gradient descent, exactly ------------------------------------------------------
def _step_problem(rng):
    """12 points, MLP(2, [8, 8, 1]): accuracy below 1 before each of two updates, every score at
    least MARGIN from 0, so train(..., steps=2) must update exactly twice under any convention."""
    while True:
        s = int(rng.integers(0, 1_000_000))
        X, y = ref_train.make_moons(12, noise=0.1, seed=s)
        weights = _start_weights(s, 2, [8, 8, 1])
        model = _ref_model(2, [8, 8, 1], weights)
        ok = True
        for k in range(3):
            scores = _ref_scores(model, X)
            if min(abs(v) for v in scores) < MARGIN or (k < 2 and _accuracy(scores, y) == 1.0):
                ok = False
                break
            if k < 2:
                _variant_update(model, X, y, k)
        if ok:
            return X, y, weights


def _variant_update(model, X, y, k, *, zero_grad=True, sign=-1.0, lr=None, steps=2):
    loss, _ = ref_train.loss_and_accuracy(model, X, y)
    if zero_grad:
        model.zero_grad()
    loss.backward()
    rate = (1.0 - 0.9 * k / steps) if lr is None else lr(k)
    for p in model.parameters():
        p.data += sign * rate * p.grad


def _variant_params(X, y, weights, updates=2, **kw):
    model = _ref_model(2, [8, 8, 1], weights)
    for k in range(updates):
        _variant_update(model, X, y, k, **kw)
    return np.array([p.data for p in model.parameters()])


def _step_slip(got, X, y, weights):
    variants = [
        ("the gradients were not zeroed between the steps: the second update used the sum of both "
         "steps' gradients. Call model.zero_grad() before each loss.backward()", dict(zero_grad=False)),
        ("the update sign is wrong (p.data += lr * p.grad climbs the loss): p.data -= lr * p.grad",
         dict(sign=+1.0)),
        ("the learning rate does not decay: lr = 1.0 - 0.9 * k / steps at step k (k from 0)",
         dict(lr=lambda k: 1.0)),
        ("the learning-rate schedule counts steps from 1: lr = 1.0 - 0.9 * k / steps with k = 0 first",
         dict(lr=lambda k: 1.0 - 0.9 * (k + 1) / 2)),
        ("only one of the two steps updated the parameters (is the loop one short?)", dict(updates=1)),
        ("the update sign is wrong and the gradients are never zeroed", dict(sign=+1.0, zero_grad=False)),
    ]
    for cause, kw in variants:
        if is_close(got, _variant_params(X, y, weights, **kw), atol=TOL, rtol=TOL):
            return f"looks like {cause}"
    if is_close(got, np.array(weights), atol=0.0):
        return ("no parameter changed: after loss.backward(), update every parameter with p.data -= lr * "
                "p.grad (and zero the grads before backward, not between backward and the update)")
    return None


@_remember_failure
def test_two_steps_exactly(rng):
    X, y, weights = _step_problem(rng)
    ref_model = _ref_model(2, [8, 8, 1], weights)
    ref_train.train(ref_model, X, y, steps=2)
    want = np.array([p.data for p in ref_model.parameters()])

    model, params = _learner_model(2, [8, 8, 1], weights)
    history = learner("train").train(model, X, y, steps=2)
    what = "train(MLP(2, [8, 8, 1]), 12 points, steps=2)"
    expect_type(history, list, what=what + " return value (the list of accuracies, one per step)")
    expect_equal(len(history), 2, what=f"len({what}) (one accuracy per step; accuracy stays below 1 here, so "
                 "both steps run)")
    for k, h in enumerate(history):
        expect_between(h, 0.0, 1.0, what=f"{what}[{k}] (an accuracy)")
    got = np.array([as_float(p.data, what=f"parameters()[{k}].data after {what}") for k, p in enumerate(params)])
    check_close(got, want, what=f"the {len(want)} parameters after {what} vs the reference's two steps of "
                "p.data -= lr * p.grad", atol=TOL, rtol=TOL, diagnose=lambda g, w: _step_slip(g, X, y, weights))


# -- 3. a real run to 100% ---------------------------------------------------------------------------
def test_reaches_full_accuracy(seed):
    if _FAILED_ABOVE:
        fail(f"the {STEPS}-step run was not started: {', '.join(_FAILED_ABOVE)} failed above; fix that first")
    problems = sorted(PROBLEMS)
    s = problems[seed % len(problems)]
    X, y = ref_train.make_moons(30, noise=0.08, seed=s)
    weights = _start_weights(s, 2, [16, 16, 1])
    model, _ = _learner_model(2, [16, 16, 1], weights)
    history = learner("train").train(model, X, y, steps=STEPS)
    what = f"train(MLP(2, [16, 16, 1]), 30 moons points of problem {s}, steps={STEPS})"
    expect_type(history, list, what=what + " return value (the list of accuracies)")
    expect_between(len(history), 1, STEPS, what=f"len({what})", why="one accuracy per step, at most `steps`")
    Value = learner("value").Value
    scores = [as_float(model([Value(a) for a in x]).data, what=f"the trained model's score of point {i}")
              for i, x in enumerate(X)]
    right = as_int(sum(1 for v, yi in zip(scores, y) if yi * v > 0), what="points right")
    if right != len(X):
        fail(f"after {what} ran {len(history)} steps, the model has {right}/{len(X)} points right (y·s > 0); "
             f"the reference gets all {len(X)} in {PROBLEMS[s]} steps from the same start. The two exact "
             "steps above were right, so look at the loop around them: does train() stop only when a step "
             "measures accuracy 1.0, and does it run the loss, zero_grad, backward and update every step?")
